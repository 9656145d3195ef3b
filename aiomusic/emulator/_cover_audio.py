"""The reference track of a MiniMax cover: fetched or decoded, and checked as the service does.

A cover takes ``audio_url``, ``audio_base64`` or a ``cover_feature_id`` from a preprocess.
The audio must be mp3, wav or flac, last 6 s to 6 min, and be at most 50 MB; anything else is
code 2013, before any charge.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import TYPE_CHECKING, Any

import mutagen
import mutagen.flac

from ._audio import seed_of
from ._minimax import Invalid, probe
from ._music_state import music_state
from ._suno import _fetch

if TYPE_CHECKING:
    from ._context import App
    from ._http import Req

__all__ = ["MAX_BYTES", "load_reference", "probe_reference", "reference_audio"]

MAX_BYTES = 50 * 1024 * 1024
MIN_SECONDS, MAX_SECONDS = 6.0, 360.0


def probe_reference(data: bytes) -> float:
    """Seconds of an mp3, wav or flac reference; raises Invalid when it is not usable."""
    if data[:4] == b"fLaC":
        try:
            info: Any = mutagen.flac.FLAC(io.BytesIO(data)).info  # type: ignore[no-untyped-call]
            seconds = float(info.length)
        except (mutagen.MutagenError, ValueError, ZeroDivisionError) as exc:
            raise Invalid(f"audio: not a readable flac file ({exc})", schema=False) from exc
    else:
        try:
            _fmt, seconds = probe(data)
        except Invalid as exc:
            raise Invalid(f"audio: must be mp3, wav or flac ({exc})", schema=False) from exc
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise Invalid(f"audio: must last 6 s to 6 min, got {seconds:.2f} s", schema=False)
    return seconds


async def load_reference(app: App, req: Req, p: dict[str, Any], which: str) -> bytes:
    """The bytes of ``audio_base64`` or ``audio_url`` (which the emulator fetches on
    loopback only); raises Invalid when they cannot be had or are too large."""
    value = p.get(which)
    if not isinstance(value, str):
        raise Invalid(f"{which}: expected string", schema=True)
    if which == "audio_base64":
        try:
            data = base64.b64decode(value, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise Invalid(f"audio_base64: not valid base64 ({exc})", schema=False) from exc
    else:
        fetched = await _fetch(app, req, value)
        if not fetched:
            raise Invalid("audio_url could not be downloaded (the emulator fetches only its "
                          "own files and http URLs on loopback)", schema=False)
        data = fetched
    if len(data) > MAX_BYTES:
        raise Invalid(f"audio: at most 50 MB, got {len(data)} bytes", schema=False)
    return data


async def reference_audio(app: App, req: Req, p: dict[str, Any], which: str | None
                          ) -> tuple[int | None, float | None]:
    """(seed, seconds) of a request's reference track, or (None, None) without one."""
    if which is None:
        return None, None
    if which == "cover_feature_id":
        feature_id = p[which]
        found = music_state(app.state).features.get(feature_id) \
            if isinstance(feature_id, str) else None
        if found is None:
            raise Invalid(f"cover_feature_id {feature_id!r} is unknown", schema=False)
        return found.seed, found.seconds
    data = await load_reference(app, req, p, which)
    return seed_of(data[:65536], len(data)), probe_reference(data)
