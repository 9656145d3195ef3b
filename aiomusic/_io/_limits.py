"""Bounds on the JSON that comes with the audio, shared by every reader of hex answers.

`HexAudioScanner` applies them to a whole answer; an SSE reader applies the same `JsonLimits`
to each ``data:`` event (a fresh scanner per event costs a few microseconds), so no answer,
however hostile, makes memory grow with anything but the audio.
"""

from __future__ import annotations

import attrs

from aiomusic._core._errors import ResponseError

__all__ = ["JsonLimits"]


@attrs.frozen
class JsonLimits:
    """Bounds on the JSON around the audio; passing one raises a `ResponseError`.

    The defaults are far above any documented answer (a MiniMax generation holds under 1 kB of
    JSON besides its audio; a streamed event about 200 bytes) and keep a hostile or broken
    answer's cost small: the kept JSON is at most ``max_bytes``, and `json.loads()` of it, with
    at most ``max_values`` values, takes a few MiB.

    Attributes:
        max_bytes: Bytes of the document besides the audio string's content.
        max_depth: Objects and arrays open at once.
        max_values: Objects, arrays and comma-separated values (a bound on what `json.loads()`
            builds: 1 MiB of ``{},`` alone would be 25 MiB of Python objects).
    """

    max_bytes: int = attrs.field(default=1 << 20)
    max_depth: int = attrs.field(default=64)
    max_values: int = attrs.field(default=50_000)

    def __attrs_post_init__(self) -> None:
        for name in ("max_bytes", "max_depth", "max_values"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")

    def too_large(self, what: str, *, offset: int) -> ResponseError:
        """The error for more than ``max_bytes`` of JSON besides ``what``."""
        return _refused(f"holds more than {self.max_bytes} bytes of JSON besides {what}",
                        offset, "max_bytes")

    def too_deep(self, *, offset: int) -> ResponseError:
        """The error for more than ``max_depth`` nested objects and arrays."""
        return _refused(f"nests objects and arrays more than {self.max_depth} deep", offset,
                        "max_depth")

    def too_many(self, *, offset: int) -> ResponseError:
        """The error for more than ``max_values`` values."""
        return _refused(f"holds more than {self.max_values} JSON values", offset, "max_values")


def _refused(what: str, offset: int, limit: str) -> ResponseError:
    return ResponseError(
        f"the answer {what} (at byte {offset} of the body), far beyond any documented answer; "
        f"it was refused without reading further. If this service really answers so, raise "
        f"JsonLimits.{limit}; otherwise report the answer to the service")
