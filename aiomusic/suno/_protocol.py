"""Pure request builders and answer parsers for sunoapi.org (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._call import Call
from .._config import LaneKind, Service
from .._errors import ResponseError

__all__ = ["credits_call", "parse_credits"]


def credits_call() -> Call:
    """``GET /api/v1/generate/credit``."""
    return Call(service=Service.SUNO, lane=LaneKind.POLL, operation="suno.credits",
                method="GET", url="/api/v1/generate/credit")


def parse_credits(body: Mapping[str, Any]) -> int:
    """The remaining credits from a classified credit answer."""
    data = body.get("data")
    if isinstance(data, bool) or not isinstance(data, int | float):
        raise ResponseError(f"Suno's credit answer has no numeric data (got {data!r})")
    return int(data)
