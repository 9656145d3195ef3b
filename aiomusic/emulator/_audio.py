"""Deterministic, musical audio synthesis for the emulator (pure Python, cached).

Pure Python cannot afford per-sample work for minutes of 44.1 kHz stereo, so every note is
a harmonic of one base frequency ``sample_rate / period``: a beat then repeats exactly every
``period`` samples and is built from one computed period, scaled to a few envelope levels
and concatenated. One 4-bar loop (chords, bass, melody, kick and snare) is computed per
(seed, rate, channels) and tiled; MP3 encodings are cached and tiled for huge outputs.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
import struct
from array import array

import attrs
import lameenc

__all__ = ["FORMATS", "Rendered", "render", "seed_of"]

FORMATS = ("mp3", "wav", "pcm")
_BEATS_PER_BAR = 4
_BARS = 4
_LEVELS = (1.0, 0.72, 0.52, 0.38, 0.28, 0.2, 0.15)
# Chords as harmonic numbers of the base (24 = tonic): I, ii, IV, V, vi.
_CHORDS = {
    "I": (24, 30, 36),
    "ii": (27, 32, 40),
    "IV": (32, 40, 48),
    "V": (36, 45, 54),
    "vi": (40, 48, 60),
}
_PROGRESSIONS = (
    ("I", "V", "vi", "IV"),
    ("vi", "IV", "I", "V"),
    ("I", "vi", "IV", "V"),
    ("I", "IV", "ii", "V"),
)
_SCALE = (24, 27, 30, 32, 36, 40, 45, 48)
_KEYS_HZ = (10.9, 11.55, 12.2, 10.3, 9.72, 13.0)  # base frequencies: tonic = 24 x base
_MP3_BLOCK_SECONDS = 60
# MPEG-2 (16/24 kHz) frames top out at 160 kbit/s.
_MPEG2_MAX_KBPS = 160
_BITRATES_V1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_BITRATES_V2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


@attrs.frozen
class Rendered:
    """Encoded audio plus the facts `extra_info` reports about it."""

    data: bytes
    format: str
    sample_rate: int
    channels: int
    bitrate: int  # bits per second actually used
    duration_ms: int


def seed_of(*parts: object) -> int:
    """A stable 64-bit seed from any printable parts."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


@functools.lru_cache(maxsize=64)
def _sine_table(period: int) -> tuple[float, ...]:
    step = 2 * math.pi / period
    return tuple(math.sin(step * j) for j in range(period))


@functools.lru_cache(maxsize=512)
def _beat_blocks(period: int, chord: str, note: int, channels: int) -> tuple[bytes, ...]:
    """One period of chord + bass + melody, as int16 bytes at each envelope level."""
    table = _sine_table(period)
    tones = _CHORDS[chord]
    bass = tones[0] // 2
    mel = note * 2
    left: list[float] = []
    right: list[float] = []
    for i in range(period):
        c = table[tones[0] * i % period] + table[tones[1] * i % period]
        c += table[tones[2] * i % period]
        b = table[bass * i % period]
        m = table[mel * i % period] + 0.3 * table[mel * 2 * i % period]
        left.append(0.16 * c + 0.3 * b + 0.18 * m)
        right.append(0.1 * c + 0.3 * b + 0.3 * m)
    if channels == 1:
        mixed = [(a + b) * 0.5 for a, b in zip(left, right, strict=True)]
    else:
        mixed = [0.0] * (2 * period)
        mixed[0::2] = left
        mixed[1::2] = right
    return tuple(array("h", [int(v * lvl * 20000) for v in mixed]).tobytes() for lvl in _LEVELS)


@functools.lru_cache(maxsize=32)
def _drum(period: int, channels: int, kind: str) -> tuple[float, ...]:
    n = period
    rng = random.Random(period)
    out: list[float] = []
    if kind == "kick":
        phase = 0.0
        for i in range(n):
            t = i / n
            phase += 2 * math.pi * (55 + 90 * math.exp(-t * 12)) * 0.09 / n
            out.append(math.sin(phase) * math.exp(-t * 5) * 0.55)
    else:
        out = [(rng.random() * 2 - 1) * math.exp(-i / n * 9) * 0.25 for i in range(n)]
    if channels == 2:
        out = [v for v in out for _ in (0, 1)]
    return tuple(out)


def _with_drum(block: bytes, drum: tuple[float, ...]) -> bytes:
    samples = array("h")
    samples.frombytes(block)
    for i, d in enumerate(drum):
        v = samples[i] + int(d * 20000)
        samples[i] = 32767 if v > 32767 else (-32768 if v < -32768 else v)
    return samples.tobytes()


@functools.lru_cache(maxsize=32)
def _loop(seed: int, sample_rate: int, channels: int) -> bytes:
    """A 4-bar loop of 16-bit PCM (interleaved when stereo)."""
    rng = random.Random(seed)
    period = round(sample_rate / rng.choice(_KEYS_HZ))
    blocks_per_beat = rng.choice((5, 6))
    progression = rng.choice(_PROGRESSIONS)
    kick = _drum(period, channels, "kick")
    snare = _drum(period, channels, "snare")
    note_idx = rng.randrange(len(_SCALE))
    parts: list[bytes] = []
    for bar in range(_BARS):
        chord = progression[bar % len(progression)]
        for beat in range(_BEATS_PER_BAR):
            note_idx = max(0, min(len(_SCALE) - 1, note_idx + rng.choice((-2, -1, 0, 1, 1, 2))))
            if beat == 0:  # land on a chord tone at each bar
                note_idx = _SCALE.index(_CHORDS[chord][0]) if chord != "vi" else 5
            levels = _beat_blocks(period, chord, _SCALE[note_idx], channels)
            first = _with_drum(levels[0], kick if beat % 2 == 0 else snare)
            parts.append(first)
            parts.extend(levels[1 : min(blocks_per_beat, len(levels))])
    return b"".join(parts)


def _pcm(seed: int, samples: int, sample_rate: int, channels: int) -> bytes:
    loop = _loop(seed, sample_rate, channels)
    size = samples * channels * 2
    reps = -(-size // len(loop))
    return (loop * reps)[:size]


def _wav(pcm: bytes, sample_rate: int, channels: int) -> bytes:
    byte_rate = sample_rate * channels * 2
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(pcm),
        b"WAVE",
        b"fmt ",
        16,
        1,
        channels,
        sample_rate,
        byte_rate,
        channels * 2,
        16,
        b"data",
        len(pcm),
    )
    return header + pcm


def _mp3_kbps(sample_rate: int, bitrate: int) -> int:
    kbps = bitrate // 1000
    return min(kbps, _MPEG2_MAX_KBPS) if sample_rate < 32000 else kbps


@functools.lru_cache(maxsize=64)
def _mp3(seed: int, samples: int, sample_rate: int, channels: int, kbps: int) -> bytes:
    enc = lameenc.Encoder()
    enc.set_bit_rate(kbps)
    enc.set_in_sample_rate(sample_rate)
    enc.set_out_sample_rate(sample_rate)
    enc.set_channels(channels)
    enc.set_quality(7)
    return bytes(enc.encode(_pcm(seed, samples, sample_rate, channels)) + enc.flush())


def mp3_frames(data: bytes) -> tuple[int, int, int]:
    """Walk MPEG audio frames: (frame count, samples per frame, sample rate)."""
    pos, frames, spf, rate = 0, 0, 1152, 0
    n = len(data)
    while pos + 4 <= n:
        h = int.from_bytes(data[pos : pos + 4], "big")
        if h >> 21 != 0x7FF:
            break
        version = (h >> 19) & 3
        br_idx, sr_idx, pad = (h >> 12) & 15, (h >> 10) & 3, (h >> 9) & 1
        if version == 1 or sr_idx == 3 or br_idx in (0, 15):
            break
        rate = _RATES[version][sr_idx]
        if version == 3:
            spf, size = 1152, 144000 * _BITRATES_V1[br_idx] // rate + pad
        else:
            spf, size = 576, 72000 * _BITRATES_V2[br_idx] // rate + pad
        frames += 1
        pos += size
    return frames, spf, rate


def render(
    seed: int, seconds: float, *, fmt: str, sample_rate: int, channels: int, bitrate: int
) -> Rendered:
    """Audio of about `seconds` in `fmt`; the result states the exact duration produced."""
    samples = max(1, round(seconds * sample_rate))
    if fmt in ("wav", "pcm"):
        pcm = _pcm(seed, samples, sample_rate, channels)
        data = _wav(pcm, sample_rate, channels) if fmt == "wav" else pcm
        return Rendered(
            data,
            fmt,
            sample_rate,
            channels,
            sample_rate * channels * 16,
            samples * 1000 // sample_rate,
        )
    kbps = _mp3_kbps(sample_rate, bitrate)
    block = _MP3_BLOCK_SECONDS * sample_rate
    reps, rest = divmod(samples, block) if samples > 2 * block else (0, samples)
    # Each block is a complete LAME stream, so tiled blocks stay a valid MP3 file.
    data = _mp3(seed, block, sample_rate, channels, kbps) * reps if reps else b""
    if rest:
        data += _mp3(seed, rest, sample_rate, channels, kbps)
    frames, spf, _rate = mp3_frames(data)
    return Rendered(
        data, "mp3", sample_rate, channels, kbps * 1000, frames * spf * 1000 // sample_rate
    )


def sample_track(seconds: float = 14.0, *, format: str = "wav", seed: int = 0) -> bytes:
    """A synthetic music track (``"wav"`` or ``"mp3"`` bytes) for tests and examples.

    It passes the reference checks of ``upload_reference`` when longer than 10 s.
    """
    if format not in ("wav", "mp3"):
        raise ValueError(f"format must be 'wav' or 'mp3', got {format!r}")
    rate = 22050 if format == "wav" else 44100
    return render(seed, seconds, fmt=format, sample_rate=rate, channels=1, bitrate=128000).data
