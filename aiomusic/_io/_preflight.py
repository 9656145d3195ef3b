"""Local checks made before the first paid byte (DESIGN invariant 8).

A paid generation whose audio cannot be stored is money spent for nothing. These functions
check what can be checked on this machine: that a destination's folder exists (or may be
created), that a file can be written there, that the disk has room for the audio the call is
expected to return, that an extension matches the format asked for, and that a local source
is audio by its content. They are synchronous: run them in a worker thread.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, BinaryIO

from .._core._errors import AudioValidationError
from .._core._paid_errors import PreflightError
from ._audio import probe_audio

__all__ = ["MARGIN", "check_audio_source", "check_destination", "check_extension",
           "check_folder", "expected_audio_bytes", "expected_from_params", "free_bytes"]

#: Room kept free beyond the audio: the journal's next writes and the file system's own needs.
MARGIN = 1 << 20
#: The longest songs the services document: about a minute for music-01, five for the rest.
_SECONDS = {"music-01": 60.0}
_LONGEST = 300.0
#: What an extension says about the content (the formats the services write).
AUDIO_EXTENSIONS = {".mp3": "mp3", ".wav": "wav", ".pcm": "pcm", ".flac": "flac",
                    ".ogg": "ogg", ".m4a": "m4a", ".aac": "aac", ".opus": "opus"}
_MAGIC = ((b"fLaC", 0, "flac"), (b"OggS", 0, "ogg"), (b"ftyp", 4, "m4a"))


def expected_audio_bytes(body: Mapping[str, Any] | None) -> int:
    """About how many bytes the audio of a generation request ``body`` will take at most.

    From its ``audio_setting`` (format, sample rate, bitrate, channels) and the longest song
    its model documents; mp3 at its bitrate, wav and pcm as 16-bit samples.
    """
    body = body or {}
    setting = body.get("audio_setting")
    setting = setting if isinstance(setting, Mapping) else {}
    seconds = _SECONDS.get(str(body.get("model")), _LONGEST)
    fmt = setting.get("format", "mp3")
    if fmt == "mp3":
        bitrate = _number(setting.get("bitrate"), 256_000)
        return int(bitrate / 8 * seconds)
    rate = _number(setting.get("sample_rate", setting.get("audio_sample_rate")), 44_100)
    channels = _number(setting.get("channel"), 2)
    return int(rate * channels * 2 * seconds)


def expected_from_params(params: object, *, model: str | None = None) -> int:
    """`expected_audio_bytes()` of an operation's parameters (``format``, ``sample_rate``,
    ``bitrate``, ``channel``, ``model``; ``model`` when they name none)."""
    setting = {name: getattr(params, name) for name in ("format", "sample_rate", "bitrate",
                                                        "channel")
               if getattr(params, name, None) is not None}
    return expected_audio_bytes({"model": getattr(params, "model", None) or model,
                                 "audio_setting": setting})


def _number(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else default


def free_bytes(folder: Path) -> int:
    """Bytes free for this process in ``folder``'s file system."""
    return shutil.disk_usage(folder).free


def check_destination(path: Path, *, expected: int = 0, overwrite: bool = True,
                      create: bool = False, reserved: int = 0) -> None:
    """Check that a file can be written at ``path`` before paying for its content.

    Args:
        path: The destination file.
        expected: About how many bytes it will take.
        overwrite: Whether an existing file there may be replaced.
        create: Create a missing folder (else a missing folder is refused: a typo in a path
            should not scatter folders around).
        reserved: Bytes of the same disk that other work in flight will take.

    Raises:
        PreflightError: what is wrong, and what to do; nothing was sent.
    """
    folder = path.parent
    if not folder.is_dir():
        if not create:
            raise PreflightError(
                f"the folder {folder} does not exist; create it (or write elsewhere), then run "
                "again. Nothing was sent", path=str(folder))
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PreflightError(f"cannot create the folder {folder}: {exc.strerror or exc}; "
                                 "nothing was sent", path=str(folder)) from exc
    if path.is_dir():
        raise PreflightError(f"{path} is a folder, not a file name; nothing was sent",
                             path=str(path))
    if not overwrite and path.exists():
        raise PreflightError(f"{path} exists and overwrite is off; remove it or choose another "
                             "name. Nothing was sent", path=str(path))
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".aiomusic-check-", suffix=".part")
    except OSError as exc:
        raise PreflightError(
            f"cannot write in {folder} ({exc.strerror or exc}); fix its permissions or choose "
            "another folder, then run again. Nothing was sent", path=str(folder)) from exc
    os.close(fd)
    os.unlink(probe)
    free = free_bytes(folder)
    needed = expected + reserved + MARGIN
    if free < needed:
        raise PreflightError(
            f"{folder} has {_mib(free)} free, but the audio needs about {_mib(expected)}"
            f"{f' (and work in flight {_mib(reserved)})' if reserved else ''}; free some "
            "space, then run again. Nothing was sent", path=str(folder))


def check_folder(folder: Path, *, expected: int = 0) -> None:
    """Check that files can be written in ``folder`` (created if missing) before paying for
    them; see `check_destination()`."""
    check_destination(folder / ".aiomusic-preflight", expected=expected, create=True)


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def check_extension(name: str, fmt: str | None) -> str | None:
    """The problem with naming a ``fmt`` file ``name`` (``None``: none).

    Only a known audio extension that says another format is a problem: ``song.wav`` holding
    MP3 would mislead every player. No extension, or an unknown one, is the caller's choice.
    """
    said = AUDIO_EXTENSIONS.get(Path(name).suffix.lower())
    if fmt is None or said is None or said == fmt:
        return None
    return (f"{name!r} says {said} but the output format is {fmt}: name it "
            f"{Path(name).stem}.{fmt}, or ask for format {said}")


def check_audio_source(source: str | os.PathLike[str] | bytes | BinaryIO, *,
                       name: str | None = None) -> str:
    """The audio format of a local source, judged by its content (never by its name).

    WAV and MP3 are measured (an empty or truncated file is refused); FLAC, Ogg and MP4/M4A
    are recognised by their signature.

    Raises:
        AudioValidationError: the content is not audio (a text file renamed ``.mp3``, ...).
    """
    label = name or (os.fsdecode(source) if isinstance(source, str | os.PathLike) else "audio")
    head = _head(source)
    for magic, offset, fmt in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return fmt
    try:
        return probe_audio(source, name=label).format
    except AudioValidationError as exc:
        raise AudioValidationError(
            f"{exc.message}; it would be uploaded and a paid task submitted for nothing, so "
            "nothing was sent", source=label) from exc


def _head(source: str | os.PathLike[str] | bytes | BinaryIO) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source[:12])
    if isinstance(source, str | os.PathLike):
        handle: IO[bytes]
        with open(source, "rb") as handle:
            return handle.read(12)
    start = source.tell()
    try:
        return source.read(12)
    finally:
        source.seek(start)
