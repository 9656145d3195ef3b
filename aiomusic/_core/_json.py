"""The one JSON-reading edge: every JSON document from the network or a callback is read here.

A document is refused with a typed [`ResponseError`][aiomusic.ResponseError] when it is larger
than `JsonLimits.max_bytes` (counted as it arrives, after any decompression, so memory stays
flat whatever the server sends), nested deeper than `JsonLimits.max_depth`, or not JSON in any
encoding JSON allows. No ``RecursionError``, ``UnicodeDecodeError`` or ``ValueError`` escapes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import attrs
import httpx

from ._encoding import ContentDecoder, raw_body
from ._errors import JsonError

__all__ = ["DEFAULT_JSON_LIMITS", "JsonLimits", "aclose", "loads", "read_body", "read_json"]

#: The documented JSON answers and callbacks are a few KiB; a megabyte is far more than any.
DEFAULT_MAX_BYTES = 1024 * 1024
#: The documented answers nest 5 levels at most.
DEFAULT_MAX_DEPTH = 64


@attrs.frozen
class JsonLimits:
    """Bounds on a JSON answer or callback body; beyond them it is refused as unreadable.

    Set them for a whole session with ``MusicSession(json_limits=...)``; the defaults are far
    above what the services document. The readers of hex answers (MiniMax) apply them to
    everything that is not the audio.

    Attributes:
        max_bytes: The largest document, in bytes after any decompression (default 1 MiB);
            for a hex answer, the bytes besides the audio string's content.
        max_depth: The deepest nesting of objects and arrays (default 64).
        max_values: The most objects, arrays and comma-separated values in the JSON around
            a hex answer's audio (a bound on what `json.loads()` builds: 1 MiB of ``{},``
            alone would be 25 MiB of Python objects).
    """

    max_bytes: int = attrs.field(default=DEFAULT_MAX_BYTES, validator=attrs.validators.gt(0))
    max_depth: int = attrs.field(default=DEFAULT_MAX_DEPTH, validator=attrs.validators.gt(0))
    max_values: int = attrs.field(default=50_000, validator=attrs.validators.gt(0))

    def too_large(self, what: str, *, offset: int) -> JsonError:
        """The error for more than ``max_bytes`` of JSON besides ``what``."""
        return _refused(f"holds more than {self.max_bytes} bytes of JSON besides {what}",
                        offset, "max_bytes", "too large")

    def too_deep(self, *, offset: int) -> JsonError:
        """The error for more than ``max_depth`` nested objects and arrays."""
        return _refused(f"nests objects and arrays more than {self.max_depth} deep", offset,
                        "max_depth", "too deep")

    def too_many(self, *, offset: int) -> JsonError:
        """The error for more than ``max_values`` values."""
        return _refused(f"holds more than {self.max_values} JSON values", offset,
                        "max_values", "too many values")


def _refused(what: str, offset: int, limit: str, reason: str) -> JsonError:
    return JsonError(
        f"the answer {what} (at byte {offset} of the body), far beyond any documented answer; "
        f"it was refused without reading further. If this service really answers so, raise "
        f"JsonLimits.{limit}; otherwise report the answer to the service", reason=reason)


DEFAULT_JSON_LIMITS = JsonLimits()


async def aclose(iterator: AsyncIterator[Any]) -> None:
    """Close an async generator we stopped early (trio insists, and rightly)."""
    closer = getattr(iterator, "aclose", None)
    if closer is not None:
        await closer()


async def read_body(response: httpx.Response, *, limit: int, what: str = "the answer") -> bytes:
    """The whole (small) body, decoded, refusing more than ``limit`` bytes as it arrives.

    Raises:
        JsonError: more than ``limit`` bytes (``reason="too large"``).
        EncodingError: a ``Content-Encoding`` that cannot be decoded.
        httpx.HTTPError: the transport failed.
    """
    stream, encoding = raw_body(response)
    chunks: list[bytes] = []
    size = 0

    def take(pieces: Iterator[bytes]) -> None:
        nonlocal size
        for piece in pieces:
            size += len(piece)
            if size > limit:
                raise _too_large(what, limit, response.status_code)
            chunks.append(piece)

    try:
        decoder = ContentDecoder(encoding)
        async for raw in stream:
            take(decoder.pieces(raw))
        take(decoder.finish())
    finally:
        await aclose(stream)
    return b"".join(chunks)


def _too_large(what: str, limit: int, status: int | None) -> JsonError:
    return JsonError(f"{what} is larger than {limit} bytes, which no documented answer is "
                     "(raise JsonLimits.max_bytes if a service really sends more)",
                     reason="too large", status_code=status)


def loads(raw: bytes | bytearray | memoryview | str, *,
          limits: JsonLimits = DEFAULT_JSON_LIMITS, what: str = "the answer",
          status_code: int | None = None) -> object:
    """Decode one JSON document within ``limits``.

    Raises:
        JsonError: too large, too deep, or not JSON (UTF-8, -16 or -32, as JSON allows).
    """
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > limits.max_bytes:
        raise _too_large(what, limits.max_bytes, status_code)
    data = bytes(raw) if isinstance(raw, bytearray | memoryview) else raw
    try:
        document = json.loads(data)
    except RecursionError:  # nested past the interpreter's stack: far past max_depth
        raise _too_deep(what, limits.max_depth, status_code) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, a 5,000-digit integer
        raise JsonError(f"{what} is not JSON ({_short(exc)})", reason="not JSON",
                        status_code=status_code) from exc
    if _deeper_than(document, limits.max_depth):
        raise _too_deep(what, limits.max_depth, status_code)
    return document


async def read_json(response: httpx.Response, *, limits: JsonLimits = DEFAULT_JSON_LIMITS,
                    what: str = "the answer") -> object:
    """`read_body()` then `loads()`."""
    raw = await read_body(response, limit=limits.max_bytes, what=what)
    return loads(raw, limits=limits, what=what, status_code=response.status_code)


def _too_deep(what: str, depth: int, status: int | None) -> JsonError:
    return JsonError(f"{what} nests JSON more than {depth} levels deep, which no documented "
                     "answer does", reason="too deep", status_code=status)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def _deeper_than(document: object, limit: int) -> bool:
    """Whether ``document`` nests containers more than ``limit`` levels (a loop, no recursion)."""
    pending: list[tuple[object, int]] = [(document, 0)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        depth += 1
        if depth > limit:
            return True
        pending.extend((child, depth) for child in children
                       if isinstance(child, dict | list))
    return False
