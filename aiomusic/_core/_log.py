"""The ``aiomusic`` logger, switched on by ``AIOMUSIC_LOG``, and redaction of secrets."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable

__all__ = ["configure_from_env", "logger", "redact"]

logger = logging.getLogger("aiomusic")

_BEARER = re.compile(r"(?i)(bearer\s+)[^\s'\"]+")
_configured = False


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret and any ``Bearer <token>`` replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _BEARER.sub(r"\1***", text)


def configure_from_env() -> None:
    """Attach a stderr handler at the level ``AIOMUSIC_LOG`` names (``debug`` or ``info``).

    Does nothing when the variable is unset or the logger already has handlers (the
    application configured logging itself), and only once per process.
    """
    global _configured
    if _configured:
        return
    _configured = True
    level = os.environ.get("AIOMUSIC_LOG", "").strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR") or logger.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
