"""What the emulator's Suno follow-ups produce: WAV files, stems, videos, MIDI notes, lyrics
and word timings, all deterministic from a seed (pure, apart from the synthesis cache)."""

from __future__ import annotations

import random
import struct
from typing import Any

from ._audio import render

__all__ = ["STEMS_BY_TYPE", "lyrics_lines", "midi_data", "mp4_file", "stem_audio", "variants",
           "wav_audio", "words"]

#: The stems each vocal-removal type yields (split_stem_advanced: the named stem + the rest).
STEMS_BY_TYPE = {
    "separate_vocal": ("vocals", "instrumental"),
    "split_stem": ("vocals", "backing_vocals", "drums", "bass", "guitar", "keyboard",
                   "percussion", "strings", "synth", "fx", "brass", "woodwinds"),
}
_WORDS = ("night", "city", "lights", "shining", "bright", "dreams", "burning", "fire", "wind",
          "calling", "name", "steel", "heart", "beating", "road", "home", "rain", "falling",
          "slow", "gold", "river", "running", "wild", "sky", "open", "young", "forever")
_INSTRUMENTS = (("Drums", (36, 38, 42)), ("Electric Bass (finger)", (36, 40, 43)),
                ("Acoustic Grand Piano", (60, 64, 67, 72)))


def wav_audio(seed: int, seconds: float) -> bytes:
    """The track as a 44.1 kHz stereo WAV."""
    return render(seed, seconds, fmt="wav", sample_rate=44100, channels=2, bitrate=0).data


def stem_audio(seed: int, seconds: float, index: int) -> bytes:
    """One stem as MP3 (each stem its own seed, so they differ)."""
    return render(seed + 7919 * (index + 1), seconds, fmt="mp3", sample_rate=44100, channels=2,
                  bitrate=128000).data


def mp4_file(audio: bytes) -> bytes:
    """A small ISO media file: an ``ftyp`` box and the audio in an ``mdat`` box."""
    ftyp = b"isom" + struct.pack(">I", 512) + b"isomiso2mp41"
    boxes = [(b"ftyp", ftyp), (b"free", b""), (b"mdat", audio)]
    return b"".join(struct.pack(">I", 8 + len(body)) + name + body for name, body in boxes)


def lyrics_lines(seed: int, prompt: str, count: int = 8) -> list[str]:
    """Song lines: the prompt's own words first, then words chosen by ``seed``."""
    rng = random.Random(seed)
    own = [w.strip(".,!?;:").lower() for w in prompt.split() if len(w) > 2][:6]
    pool = own + list(_WORDS)
    return [" ".join(rng.choice(pool) for _ in range(rng.randint(4, 7))).capitalize()
            for _ in range(count)]


def variants(seed: int, prompt: str) -> list[dict[str, Any]]:
    """Two lyrics variants as a lyrics task answers them (camelCase)."""
    out = []
    for i in range(2):
        lines = lyrics_lines(seed + i, prompt)
        text = "[Verse]\n" + "\n".join(lines[:4]) + "\n\n[Chorus]\n" + "\n".join(lines[4:])
        title = " ".join(prompt.split()[:3]).title() or "Untitled"
        out.append({"text": text, "title": title, "status": "complete", "errorMessage": ""})
    return out


def words(lyrics: str, seconds: float) -> list[dict[str, Any]]:
    """``alignedWords`` for ``lyrics`` sung over ``seconds`` (section tags kept, as Suno does:
    they ride on the next word, with the line breaks)."""
    tokens: list[str] = []
    pending = ""
    for line in lyrics.splitlines():
        text = line.strip()
        if not text:
            continue
        if text.startswith("[") and text.endswith("]"):
            pending += text + "\n"
            continue
        parts = text.split()
        for i, part in enumerate(parts):
            tokens.append(pending + part + ("\n" if i == len(parts) - 1 else " "))
            pending = ""
    if not tokens:
        return []
    step = max(0.05, (seconds * 0.9) / len(tokens))
    return [{"word": token, "success": True, "startS": round(0.5 + i * step, 3),
             "endS": round(0.5 + (i + 0.8) * step, 3), "palign": 0}
            for i, token in enumerate(tokens)]


def midi_data(seed: int, seconds: float) -> dict[str, Any]:
    """``midiData``: a few instruments with notes (some times sent as strings, as seen)."""
    rng = random.Random(seed)
    instruments = []
    for name, pitches in _INSTRUMENTS:
        notes = []
        t = 0.0
        while t < seconds - 0.25:
            length = rng.choice((0.125, 0.25, 0.5))
            start: float | str = round(t, 6)
            end: float | str = round(t + length * 0.9, 6)
            if rng.random() < 0.5:
                start, end = str(start), str(end)  # the docs' example mixes both
            notes.append({"pitch": rng.choice(pitches), "start": start, "end": end,
                          "velocity": round(rng.uniform(0.6, 1.0), 2)})
            t += length
        instruments.append({"name": name, "notes": notes})
    return {"state": "complete", "instruments": instruments}
