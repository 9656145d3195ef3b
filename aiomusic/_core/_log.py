"""The ``aiomusic`` logger, switched on by ``AIOMUSIC_LOG``, and redaction of secrets."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable

__all__ = ["configure_from_env", "logger", "redact"]

logger = logging.getLogger("aiomusic")

_BEARER = re.compile(r"(?i)(bearer\s+)[^\s'\"]+")
_configured = False


#: Shorter "keys" are placeholders (tests, examples): no real key is that short, and
#: replacing every such substring would turn "check" into "chec***" for a key "k".
MIN_SECRET_LENGTH = 8
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (of 8 characters or more) and any ``Bearer <token>``
    replaced by ``***``."""
    for secret in secrets:
        if len(secret) >= MIN_SECRET_LENGTH:
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
    if not level or logger.handlers:
        return
    if level not in LEVELS:
        # said once, on stderr: a mistyped level must not silently log nothing
        print(f"aiomusic: AIOMUSIC_LOG={os.environ['AIOMUSIC_LOG']!r} is not one of "
              f"{', '.join(n.lower() for n in LEVELS)}; logging stays off", file=sys.stderr)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
