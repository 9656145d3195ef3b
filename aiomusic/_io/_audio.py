"""Probing and validating reference audio (WAV, MP3 or FLAC) before it is uploaded.

The format is told from the content, never from the name. Nothing reads a whole file into memory:
a WAV needs only its chunk headers and the file's size; an MP3 is measured from its Xing/Info/VBRI
header (through mutagen) or, when it has none, by walking its MPEG frames in 64 KiB reads, four
header bytes per frame (mutagen's estimate from the first frame's bitrate can be minutes off on a
VBR file without a header).

File objects are read from their current position, which is restored afterwards; they must be
seekable. Everything here is synchronous: callers run it in a worker thread.
"""

from __future__ import annotations

import io
import os
import struct
from typing import IO, Any, BinaryIO, Literal

import attrs
import mutagen
import mutagen.mp3

from aiomusic._core._errors import AudioValidationError

from ._flac import probe_flac

__all__ = ["AudioInfo", "probe_audio", "validate_reference"]

_READ = 64 * 1024
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
_MUTAGEN_TOLERANCE = 0.2  # seconds; LAME's delay + padding is under 0.1 s
_UNKNOWN_SIZE = 0xFFFFFFFF  # streaming writers put this in the data chunk's size


@attrs.frozen
class AudioInfo:
    """What a reference file holds.

    Attributes:
        format: ``"wav"``, ``"mp3"`` or ``"flac"``, from the content.
        duration: Seconds of audio.
        sample_rate: Samples per second, when known.
        channels: 1 for mono, 2 for stereo, ..., when known.
        size: Bytes of the file (from the file object's position for file objects).
    """

    format: Literal["wav", "mp3", "flac"]
    duration: float
    sample_rate: int | None
    channels: int | None
    size: int


Source = str | os.PathLike[str] | bytes | BinaryIO


def probe_audio(source: Source, *, name: str | None = None) -> AudioInfo:
    """Tell a WAV or MP3 file's format and measure its duration.

    Args:
        source: A path, the file's bytes, or a seekable binary file object (read from its current
            position, which is restored).
        name: How to name the file in errors (default: its path, or ``"<bytes>"``).

    Raises:
        AudioValidationError: The content is not WAV or MP3, is empty or truncated, or the file
            object is not seekable.
        OSError: The path cannot be opened.
    """
    label = name or _label(source)
    if isinstance(source, bytes | bytearray | memoryview):
        return _probe(io.BytesIO(source), label)
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fileobj:
            return _probe(fileobj, label)
    try:
        seekable = source.seekable()
    except (AttributeError, ValueError, OSError):
        seekable = False
    if not seekable:
        raise AudioValidationError(
            f"{label}: the file object is not seekable; pass a path or the bytes instead",
            source=label)
    start = source.tell()
    try:
        return _probe(io.BufferedReader(_Window(source, start), _READ), label)
    finally:
        source.seek(start)


def validate_reference(source: Source, *, name: str | None = None, min_duration: float = 10.0,
                       max_duration: float = 600.0,
                       formats: tuple[str, ...] = ("wav", "mp3")) -> AudioInfo:
    """Check that a file is usable as a MiniMax reference: audio of ``formats``, of an accepted
    length (the defaults are music-01's: WAV or MP3, more than 10 s, at most 10 minutes).

    Args:
        source: As for `probe_audio()`.
        name: How to name the file in errors.
        min_duration: The duration must be more than this (seconds).
        max_duration: The duration must be at most this (seconds).
        formats: The formats accepted (``wav``, ``mp3``, ``flac``).

    Returns:
        What `probe_audio()` found.

    Raises:
        AudioValidationError: The file is not audio, is truncated, or lasts too little or too long.
    """
    label = name or _label(source)
    info = probe_audio(source, name=label)
    if info.format not in formats:
        raise AudioValidationError(
            f"{label}: is {info.format.upper()} audio; this call takes "
            f"{' or '.join(f.upper() for f in formats)}", source=label, duration=info.duration)
    if not min_duration < info.duration <= max_duration:
        most = f"{max_duration / 60:g} min" if max_duration >= 60 else f"{max_duration:g} s"
        raise AudioValidationError(
            f"{label}: lasts {info.duration:.1f} s; MiniMax needs more than {min_duration:g} s "
            f"and at most {most}", source=label, duration=info.duration)
    return info


def _label(source: object) -> str:
    if isinstance(source, bytes | bytearray | memoryview):
        return "<bytes>"
    if isinstance(source, str | os.PathLike):
        return os.fsdecode(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else "<file object>"


class _Window(io.RawIOBase):
    """A read-only view of a file object that starts at ``base`` (for mutagen and us)."""

    def __init__(self, fileobj: IO[bytes], base: int) -> None:
        super().__init__()
        self._f = fileobj
        self._base = base

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            offset += self._base
        return self._f.seek(offset, whence) - self._base

    def tell(self) -> int:
        return self._f.tell() - self._base

    def readinto(self, buffer: Any) -> int:
        data = self._f.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _probe(f: IO[bytes], label: str) -> AudioInfo:
    size = f.seek(0, os.SEEK_END)
    f.seek(0)
    head = f.read(12)
    if not head:
        raise AudioValidationError(f"{label}: the file is empty", source=label)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return _probe_wav(f, size, label)
    if head[:4] == b"fLaC":
        duration, rate, channels = probe_flac(f, label)
        return AudioInfo(format="flac", duration=duration, sample_rate=rate,
                         channels=channels, size=size)
    info = _probe_mp3(f, size, label)
    if info is None:
        raise AudioValidationError(
            f"{label}: is not WAV or MP3 audio (judged by its content, not its name)",
            source=label)
    return info


# -- WAV ----------------------------------------------------------------------------------

def _probe_wav(f: IO[bytes], size: int, label: str) -> AudioInfo:
    pos = 12
    fmt: tuple[int, int, int, int] | None = None  # format tag, channels, rate, byte rate
    data: tuple[int, int] | None = None  # declared size, bytes present
    while pos + 8 <= size and (fmt is None or data is None):
        f.seek(pos)
        chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
        body = pos + 8
        if chunk_id == b"fmt ":
            raw = f.read(min(chunk_size, 40))
            if len(raw) < 16:
                raise AudioValidationError(
                    f"{label}: WAV fmt chunk is truncated or too short", source=label)
            tag, channels, rate, byte_rate = struct.unpack("<HHII", raw[:12])
            if tag == _WAVE_FORMAT_EXTENSIBLE and len(raw) >= 26:
                tag = struct.unpack("<H", raw[24:26])[0]  # the sub-format GUID's first field
            fmt = (tag, channels, rate, byte_rate)
        elif chunk_id == b"data":
            present = size - body
            declared = present if chunk_size == _UNKNOWN_SIZE else chunk_size
            if declared > present:
                raise AudioValidationError(
                    f"{label}: truncated WAV: its data chunk declares {declared} bytes but only "
                    f"{present} are present", source=label)
            data = (declared, present)
        pos = body + chunk_size + (chunk_size & 1)  # chunks are padded to an even size
    if fmt is None or data is None:
        missing = "fmt" if fmt is None else "data"
        raise AudioValidationError(
            f"{label}: truncated or damaged WAV: no {missing} chunk", source=label)
    _tag, channels, rate, byte_rate = fmt
    if not byte_rate or not rate or not channels:
        raise AudioValidationError(
            f"{label}: damaged WAV: its fmt chunk gives a zero rate or channel count",
            source=label)
    return AudioInfo(format="wav", duration=data[0] / byte_rate, sample_rate=rate,
                     channels=channels, size=size)


# -- MP3 ----------------------------------------------------------------------------------

# Bitrates in kbit/s by [mpeg1?][layer 1..3][index]; sample rates by version bits.
_BITRATES = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_SIGNATURE = 0xFFFE0C00  # sync, version, layer and sample-rate bits: constant across frames


@attrs.frozen
class _Frame:
    length: int
    samples: int
    sample_rate: int
    channels: int
    side_info: int  # bytes of side information after the header (Layer III)


_frames: dict[int, _Frame | None] = {}


def _frame(header: int) -> _Frame | None:
    """Decode a 4-byte MPEG audio frame header (cached by its meaningful bits)."""
    key = header >> 6  # everything but mode extension, copyright, original and emphasis
    try:
        return _frames[key]
    except KeyError:
        pass
    frame = None
    version = (header >> 19) & 3
    layer = 4 - ((header >> 17) & 3)
    bitrate_index = (header >> 12) & 15
    rate_index = (header >> 10) & 3
    if ((header >> 21) == 0x7FF and version != 1 and layer != 4
            and bitrate_index not in (0, 15) and rate_index != 3):
        mpeg1 = version == 3
        bitrate = _BITRATES[mpeg1, min(layer, 3) if mpeg1 else (1 if layer == 1 else 2)]
        kbps = bitrate[bitrate_index]
        rate = _RATES[version][rate_index]
        padding = (header >> 9) & 1
        mono = (header >> 6) & 3 == 3
        if layer == 1:
            length, samples = (12000 * kbps // rate + padding) * 4, 384
        elif layer == 2 or mpeg1:
            length, samples = 144000 * kbps // rate + padding, 1152
        else:
            length, samples = 72000 * kbps // rate + padding, 576
        side = (17 if mono else 32) if mpeg1 else (9 if mono else 17)
        frame = _Frame(length, samples, rate, 1 if mono else 2, side if layer == 3 else 0)
    _frames[key] = frame
    return frame


def _skip_id3(f: IO[bytes]) -> int:
    """Return the offset after any ID3v2 tags at the start."""
    pos = 0
    while True:
        f.seek(pos)
        head = f.read(10)
        if len(head) < 10 or head[:3] != b"ID3" or any(b & 0x80 for b in head[6:10]):
            return pos
        length = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
        pos += 10 + length + (10 if head[5] & 0x10 else 0)  # a footer follows when flagged


def _first_frame(f: IO[bytes], start: int, size: int) -> tuple[int, int, _Frame] | None:
    """Find the first frame whose successor (or the end of file) confirms it."""
    f.seek(start)
    buf = f.read(_READ)
    i = buf.find(b"\xff")
    while 0 <= i <= len(buf) - 4:
        header = int.from_bytes(buf[i:i + 4], "big")
        frame = _frame(header)
        if frame is not None:
            after = start + i + frame.length
            if after >= size:
                return start + i, header, frame  # a lone frame ending the file
            f.seek(after)
            nxt = f.read(4)
            if len(nxt) == 4 and (int.from_bytes(nxt, "big") & _SIGNATURE) == (
                    header & _SIGNATURE) and _frame(int.from_bytes(nxt, "big")) is not None:
                return start + i, header, frame
        i = buf.find(b"\xff", i + 1)
    return None


def _xing_frames(f: IO[bytes], pos: int, frame: _Frame) -> tuple[int | None, int | None] | None:
    """Read a Xing/Info or VBRI header in the first frame: ``(frames, bytes)`` or ``None``."""
    f.seek(pos)
    data = f.read(min(frame.length, 200))
    xing = 4 + frame.side_info
    if data[xing:xing + 4] in (b"Xing", b"Info"):
        (flags,) = struct.unpack(">I", data[xing + 4:xing + 8])
        fields = data[xing + 8:]
        frames = nbytes = None
        if flags & 1 and len(fields) >= 4:
            frames = int.from_bytes(fields[:4], "big")
            fields = fields[4:]
        if flags & 2 and len(fields) >= 4:
            nbytes = int.from_bytes(fields[:4], "big")
        return frames, nbytes
    if data[36:40] == b"VBRI" and len(data) >= 54:
        nbytes, frames = struct.unpack(">II", data[46:54])
        return frames, nbytes
    return None


def _probe_mp3(f: IO[bytes], size: int, label: str) -> AudioInfo | None:
    start = _skip_id3(f)
    found = _first_frame(f, start, size)
    if found is None:
        return None
    pos, header, first = found
    rate, channels = first.sample_rate, first.channels
    tag = _xing_frames(f, pos, first)
    if tag is not None and tag[0]:
        frames, nbytes = tag
        if nbytes is not None and pos + nbytes > size:
            raise AudioValidationError(
                f"{label}: truncated MP3: its header promises {nbytes} bytes of audio but only "
                f"{size - pos} are present", source=label)
        duration = (frames or 0) * first.samples / rate
        try:
            f.seek(0)
            mp3: Any = mutagen.mp3.MP3(f)  # type: ignore[no-untyped-call]
        except mutagen.MutagenError:  # pragma: no cover - our header parse is the fallback
            pass
        else:
            # mutagen also removes LAME's encoder delay and padding (a few ms), so prefer it when
            # it read the same header; when it missed it (it can miss a VBRI header) and fell
            # back to a bitrate estimate, the two disagree by more than that: keep ours.
            refined = float(mp3.info.length)
            if abs(refined - duration) <= _MUTAGEN_TOLERANCE:
                duration = refined
        return AudioInfo(format="mp3", duration=duration, sample_rate=rate, channels=channels,
                         size=size)
    samples = _walk_frames(f, pos, header, size, label)
    return AudioInfo(format="mp3", duration=samples / rate, sample_rate=rate, channels=channels,
                     size=size)


def _walk_frames(f: IO[bytes], pos: int, header: int, size: int, label: str) -> int:
    """Sum the samples of consecutive frames from ``pos``; stop at the first non-frame."""
    signature = header & _SIGNATURE
    samples = 0
    buf = b""
    buf_start = pos
    while pos + 4 <= size:
        i = pos - buf_start
        if i + 4 > len(buf):
            f.seek(pos)
            buf = f.read(_READ)
            buf_start, i = pos, 0
            if len(buf) < 4:  # pragma: no cover - the size said there was more
                break
        header = int.from_bytes(buf[i:i + 4], "big")
        frame = _frame(header) if header & _SIGNATURE == signature else None
        if frame is None:
            break  # ID3v1/APE tag or junk after the audio
        if pos + frame.length > size:
            raise AudioValidationError(
                f"{label}: truncated MP3: its last frame needs {frame.length} bytes but only "
                f"{size - pos} are present", source=label)
        samples += frame.samples
        pos += frame.length
    return samples
