"""FLAC probing (MiniMax covers take FLAC references): STREAMINFO, and a frame after it.

The duration is STREAMINFO's sample count over its sample rate; a file whose metadata ends
early, or that has no audio frame right after its metadata, is refused. Synchronous, like
``_audio``: callers run it in a worker thread.
"""

from __future__ import annotations

from typing import IO

from .._core._errors import AudioValidationError

__all__ = ["probe_flac"]

_FLAC_SYNC = 0xFFF8  # a frame header's first 15 bits (the 16th is the blocking strategy)


def probe_flac(f: IO[bytes], label: str) -> tuple[float, int, int]:
    """(duration, sample rate, channels) from STREAMINFO, once the other metadata blocks are
    skipped and the first audio frame found."""
    pos = 4
    info: tuple[int, int, int] | None = None  # sample rate, channels, total samples
    last = False
    while not last:
        f.seek(pos)
        header = f.read(4)
        if len(header) < 4:
            raise AudioValidationError(f"{label}: truncated FLAC: its metadata ends early",
                                       source=label)
        last, kind = bool(header[0] & 0x80), header[0] & 0x7F
        length = int.from_bytes(header[1:4], "big")
        if kind == 0 and length >= 18:  # STREAMINFO: 20 bits rate, 3 channels, 36 samples
            block = f.read(18)
            if len(block) < 18:
                raise AudioValidationError(f"{label}: truncated FLAC: STREAMINFO is cut off",
                                           source=label)
            bits = int.from_bytes(block[10:18], "big")
            info = (bits >> 44, ((bits >> 41) & 7) + 1, bits & 0xFFFFFFFFF)
        pos += 4 + length
    if info is None:
        raise AudioValidationError(f"{label}: damaged FLAC: no STREAMINFO block", source=label)
    rate, channels, samples = info
    f.seek(pos)
    sync = f.read(2)
    if len(sync) < 2 or int.from_bytes(sync, "big") & 0xFFFE != _FLAC_SYNC:
        raise AudioValidationError(f"{label}: truncated FLAC: no audio after its metadata",
                                   source=label)
    if not rate or not samples:
        raise AudioValidationError(f"{label}: FLAC without a sample rate or a sample count in "
                                   "STREAMINFO: its length cannot be told", source=label)
    return samples / rate, rate, channels
