"""File names and media kinds: names safe and portable on every system, audio by its first bytes.

A track's title, a job's ``out`` and a file's first bytes all come from someone else; these pure
functions decide what may become a file name and what counts as audio.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath

import httpx

__all__ = ["SNIFF_BYTES", "audio_suffix", "name_problem", "safe_filename", "sniff_media"]

_AUDIO_SUFFIXES = (".mp3", ".wav", ".m4a", ".flac", ".ogg", ".aac")
# Windows' reserved device names, also with a superscript digit (as CPython 3.12 lists them)
_DEVICE_NAMES = frozenset({"CON", "PRN", "AUX", "NUL", "CLOCK$", "CONIN$", "CONOUT$",
                           *(f"COM{i}" for i in "123456789\u00b9\u00b2\u00b3"),
                           *(f"LPT{i}" for i in "123456789\u00b9\u00b2\u00b3")})
_UNSAFE = re.compile(r'[<>:"/\\|?*]')
# Characters that reorder or hide text (U+202E shows "evil\u202egpj.exe" as "evilexe.jpg")
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                  "\u2066\u2067\u2068\u2069")
#: Bytes needed to tell every accepted format by its start.
SNIFF_BYTES = 12


def safe_filename(text: str | None, *, fallback: str = "track", max_length: int = 120) -> str:
    """A file name from a title or id: no folders, control characters, or device names.

    Path separators and characters Windows refuses become ``_``; leading/trailing dots and
    spaces go (so ``..`` cannot climb); ``CON``, ``NUL``, ``COM1``... get a ``_`` prefix.
    """
    cleaned = unicodedata.normalize("NFC", text or "")
    cleaned = "".join("_" if unicodedata.category(ch).startswith("C") else ch
                      for ch in cleaned)
    cleaned = _UNSAFE.sub("_", cleaned)
    cleaned = re.sub(r"\s+", " ", cleaned).strip(" .")
    while len(cleaned.encode()) > max_length:
        cleaned = cleaned[:-1]
    cleaned = cleaned.rstrip(" .")
    if not cleaned:
        return fallback if fallback == safe_filename(fallback, fallback="track") else "track"
    # Windows ignores spaces before the extension: "CON .mp3" is the console too
    if cleaned.split(".")[0].rstrip(" ").upper() in _DEVICE_NAMES:
        cleaned = "_" + cleaned
    return cleaned


def name_problem(name: str, *, max_bytes: int = 255) -> str | None:
    """Why ``name`` (one path component) is not a portable file name, or ``None``.

    Portable means usable as it is on Windows, macOS and Linux, and shown as it is: no
    Windows device name (``CON``, ``nul.mp3``, ``COM1``...), no control, line-separator or
    bidirectional-override character, none of ``<>:"|?*``, no trailing dot or space, at most
    ``max_bytes`` bytes of UTF-8.
    """
    for char in name:
        if unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in _BIDI:
            return (f"it holds the invisible character U+{ord(char):04X} "
                    f"({unicodedata.name(char, 'a control character')})")
        if char in '<>:"|?*':
            return f"Windows does not allow {char!r} in file names"
    if name != name.rstrip(" ."):
        return "Windows drops a trailing dot or space, so the name would change"
    if name.split(".")[0].rstrip(" ").upper() in _DEVICE_NAMES:
        return f"{name.split('.')[0]!r} is a reserved device name on Windows"
    if len(name.encode("utf-8", "surrogatepass")) > max_bytes:
        return f"it is longer than {max_bytes} bytes"
    return None


def audio_suffix(url: str | None, content_type: str | None = None) -> str:
    """``.mp3``, ``.wav``... from a URL's path (default ``.mp3``, what Suno serves)."""
    if url:
        try:
            suffix = PurePosixPath(httpx.URL(url).path).suffix.lower()
        except (httpx.InvalidURL, TypeError, ValueError):
            suffix = ""
        if suffix in _AUDIO_SUFFIXES:
            return suffix
    if content_type and "wav" in content_type:
        return ".wav"
    return ".mp3"


def sniff_media(head: bytes) -> str | None:
    """The kind of media ``head`` (the first bytes of a file) starts, or ``None``.

    MP3 (an ID3 tag or an MPEG audio frame, which ADTS AAC shares), WAV (RIFF/WAVE), FLAC,
    OGG, and the ISO media family (``ftyp``: M4A, and MP4 video for music videos).
    """
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[4:8] == b"ftyp":
        return "mp4"
    return None
