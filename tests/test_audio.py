"""Tests of reference audio probing and validation, on files made here (wave, lameenc)."""

from __future__ import annotations

import array
import functools
import io
import math
import random
import struct
import wave
from pathlib import Path
from typing import Any

import lameenc
import mutagen.mp3
import pytest

from aiomusic._core._errors import AudioValidationError
from aiomusic._io._audio import AudioInfo, probe_audio, validate_reference


def make_wav(seconds: float, *, rate: int = 8000, width: int = 1, channels: int = 1) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(b"\x80" * int(seconds * rate) * width * channels)
    return out.getvalue()


def riff(*chunks: tuple[bytes, bytes]) -> bytes:
    body = b"WAVE"
    for chunk_id, data in chunks:
        body += chunk_id + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def fmt_pcm(rate: int = 8000, channels: int = 1, width: int = 2) -> bytes:
    return struct.pack("<HHIIHH", 1, channels, rate, rate * channels * width,
                       channels * width, width * 8)


def fmt_extensible(rate: int = 16000, channels: int = 2, width: int = 2) -> bytes:
    guid_pcm = struct.pack("<H", 1) + bytes.fromhex("000000001000800000aa00389b71")
    return (struct.pack("<HHIIHH", 0xFFFE, channels, rate, rate * channels * width,
                        channels * width, width * 8)
            + struct.pack("<HHI", 22, width * 8, 3) + guid_pcm)


@functools.cache
def make_mp3(seconds: int = 12, *, vbr: bool = False, rate: int = 16000,
             channels: int = 1) -> bytes:
    encoder = lameenc.Encoder()
    encoder.set_in_sample_rate(rate)
    encoder.set_channels(channels)
    encoder.set_quality(7)
    if vbr:
        encoder.set_vbr(4)
        encoder.set_vbr_quality(2)
    else:
        encoder.set_bit_rate(32)
    # loud and near-silent stretches, so a VBR encoder really varies its bitrate
    pcm = array.array("h", [
        int(8000 * math.sin(i * 0.05 * (1 + (i // 4000) % 5)) * (1 if (i // 8000) % 2 else 0.01))
        for i in range(rate * seconds) for _ in range(channels)
    ])
    return bytes(encoder.encode(pcm.tobytes()) + encoder.flush())


def with_xing(mp3: bytes, frames: int, nbytes: int | None = None) -> bytes:
    """Prepend a Xing frame (as LAME writes for VBR) to a 16 kHz mono MPEG-2 stream."""
    header = mp3[:4]
    length = 144  # 72000 * 32 kbps / 16000 Hz, MPEG-2 Layer III
    header = bytes((header[0], header[1], (header[2] & 0x0D) | 0x40, header[3]))  # 32 kbps
    total = len(mp3) + length if nbytes is None else nbytes
    tag = b"Xing" + struct.pack(">III", 3, frames, total)
    frame = header + b"\0" * 9 + tag
    return frame + b"\0" * (length - len(frame)) + mp3


def id3v2(payload: bytes = b"TIT2\x00\x00\x00\x05\x00\x00\x03Song") -> bytes:
    size = len(payload)
    syncsafe = bytes(((size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F))
    return b"ID3\x04\x00\x00" + syncsafe + payload


def mpeg_frames(count: int, header: int) -> bytes:
    """Synthetic frames: valid headers, silent bodies (padding bit off)."""
    from aiomusic._io._audio import _frame

    frame = _frame(header)
    assert frame is not None
    return (header.to_bytes(4, "big") + b"\0" * (frame.length - 4)) * count


# -- WAV ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(make_wav(11), AudioInfo("wav", 11.0, 8000, 1, 88044), id="pcm-8bit"),
        pytest.param(make_wav(12.5, rate=16000, width=2, channels=2),
                     AudioInfo("wav", 12.5, 16000, 2, 800044), id="pcm-16bit-stereo"),
        pytest.param(riff((b"fmt ", fmt_extensible()), (b"data", b"\0" * 64000 * 11)),
                     AudioInfo("wav", 11.0, 16000, 2, 64000 * 11 + 68), id="extensible"),
        pytest.param(riff((b"fmt ", fmt_pcm()), (b"LIST", b"INFOISFT\x03\x00\x00\x00ab\0"),
                          (b"odd ", b"x"), (b"data", b"\0" * 16000 * 11)),
                     AudioInfo("wav", 11.0, 8000, 1, 16000 * 11 + 78), id="list-and-padding"),
        pytest.param(riff((b"data", b"\0" * 16000 * 11), (b"fmt ", fmt_pcm())),
                     AudioInfo("wav", 11.0, 8000, 1, 16000 * 11 + 44), id="data-before-fmt"),
        pytest.param(riff((b"fmt ", fmt_pcm()), (b"data", b"\0" * 16000 * 11))[:40]
                     + b"\xff\xff\xff\xff" + b"\0" * 16000 * 11,
                     AudioInfo("wav", 11.0, 8000, 1, 16000 * 11 + 44), id="streamed-size"),
    ],
)
def test_probe_wav(data: bytes, expected: AudioInfo) -> None:
    assert probe_audio(data) == expected
    assert validate_reference(data) == expected


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(make_wav(11)[:-100], "truncated WAV: its data chunk declares 88000 bytes "
                     "but only 87900 are present", id="truncated-data"),
        pytest.param(make_wav(11)[:30], "fmt chunk is truncated", id="truncated-fmt"),
        pytest.param(make_wav(11)[:16], "no fmt chunk", id="truncated-fmt-header"),
        pytest.param(riff((b"fmt ", fmt_pcm())), "no data chunk", id="no-data"),
        pytest.param(riff((b"fmt ", b"\x01\x00"), (b"data", b"")),
                     "fmt chunk is truncated or too short", id="short-fmt"),
        pytest.param(riff((b"fmt ", struct.pack("<HHIIHH", 1, 1, 8000, 0, 1, 8)),
                          (b"data", b"\0" * 100)), "zero rate", id="zero-byte-rate"),
        pytest.param(b"RIFF\x04\x00\x00\x00AVI LIST", "not WAV or MP3", id="riff-avi"),
    ],
)
def test_bad_wav(data: bytes, match: str) -> None:
    with pytest.raises(AudioValidationError, match=match) as info:
        probe_audio(data, name="voice.wav")
    assert info.value.source == "voice.wav"
    assert str(info.value).startswith("voice.wav: ")


# -- MP3 ----------------------------------------------------------------------------------

def test_probe_cbr_mp3() -> None:
    info = probe_audio(make_mp3())
    assert info.duration == pytest.approx(12.0, abs=0.15)
    assert info == AudioInfo("mp3", info.duration, 16000, 1, len(make_mp3()))


def test_probe_stereo_mp3() -> None:
    data = make_mp3(11, rate=44100, channels=2)
    info = probe_audio(data)
    assert info.format == "mp3"
    assert info.duration == pytest.approx(11.0, abs=0.15)
    assert info.channels == 2


def test_frame_walk_beats_mutagen_on_vbr_without_header() -> None:
    data = make_mp3(vbr=True)
    assert data[:2] == b"\xff\xf3"  # lameenc writes no Xing/Info frame
    mutagen_guess = mutagen.mp3.MP3(io.BytesIO(data)).info.length  # type: ignore[no-untyped-call,attr-defined]
    assert abs(mutagen_guess - 12.0) > 2  # estimated from the first frame's bitrate
    assert probe_audio(data).duration == pytest.approx(12.0, abs=0.15)


def test_xing_header_is_used() -> None:
    # The Xing frame's count wins over the frames present: proof that mutagen read it.
    data = with_xing(make_mp3(vbr=True), frames=500)
    assert probe_audio(data).duration == pytest.approx(500 * 576 / 16000)


def with_vbri(mp3: bytes, frames: int) -> bytes:
    """Prepend a Fraunhofer VBRI frame to a 16 kHz mono MPEG-2 stream."""
    header = mp3[:4]
    header = bytes((header[0], header[1], (header[2] & 0x0D) | 0x40, header[3]))  # 32 kbps
    tag = b"VBRI" + struct.pack(">HHHII", 1, 0, 75, len(mp3) + 144, frames)
    frame = header + b"\0" * 32 + tag
    return frame + b"\0" * (144 - len(frame)) + mp3


def test_vbri_header_is_used() -> None:
    data = with_vbri(make_mp3(vbr=True), frames=400)
    assert probe_audio(data).duration == pytest.approx(400 * 576 / 16000, abs=0.1)


def test_xing_without_byte_count() -> None:
    data = with_xing(make_mp3(vbr=True), frames=500)
    flags_at = 4 + 9 + 4
    data = data[:flags_at] + struct.pack(">I", 1) + data[flags_at + 4:]
    assert probe_audio(data).duration == pytest.approx(500 * 576 / 16000)


def test_xing_header_promising_more_bytes_is_truncated() -> None:
    data = with_xing(make_mp3(vbr=True), frames=500, nbytes=10**6)
    with pytest.raises(AudioValidationError, match="truncated MP3: its header promises"):
        probe_audio(data)


def test_id3_tags_are_skipped() -> None:
    data = id3v2() + id3v2() + make_mp3() + b"TAG" + b"\0" * 125
    assert probe_audio(data).duration == pytest.approx(probe_audio(make_mp3()).duration)


def test_junk_before_first_frame_is_skipped() -> None:
    data = b"\0\xff\x00junk" + make_mp3()
    assert probe_audio(data).duration == pytest.approx(probe_audio(make_mp3()).duration)


def test_truncated_last_frame() -> None:
    with pytest.raises(AudioValidationError, match="its last frame needs 144 bytes but only"):
        probe_audio(make_mp3()[:-50])
    whole_frames = make_mp3()[:-144]
    assert probe_audio(whole_frames).duration == pytest.approx(12.096 - 0.036)


@pytest.mark.parametrize(
    ("header", "count", "seconds"),
    [
        pytest.param(0xFFFD9000, 400, 400 * 1152 / 44100, id="mpeg1-layer2-128k"),
        pytest.param(0xFFFF9000, 1200, 1200 * 384 / 44100, id="mpeg1-layer1-128k"),
        pytest.param(0xFFFB90C0, 400, 400 * 1152 / 44100, id="mpeg1-layer3-mono"),
        pytest.param(0xFFE318C0, 200, 200 * 576 / 8000, id="mpeg25-layer3-8k"),
        pytest.param(0xFFF51000, 300, 300 * 1152 / 22050, id="mpeg2-layer2"),
    ],
)
def test_frame_walk_arithmetic(header: int, count: int, seconds: float) -> None:
    info = probe_audio(mpeg_frames(count, header))
    assert info.duration == pytest.approx(seconds)


def test_lone_frame_is_audio() -> None:
    assert probe_audio(mpeg_frames(1, 0xFFFD9000)).duration == pytest.approx(1152 / 44100)


# -- not audio, sources -------------------------------------------------------------------

@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(b"", "the file is empty", id="empty"),
        pytest.param(b"just some text, not a song\n" * 40, "not WAV or MP3", id="text"),
        pytest.param(random.Random(1).randbytes(20000), "not WAV or MP3", id="garbage"),
        pytest.param(id3v2(), "not WAV or MP3", id="id3-only"),
        pytest.param(b"\xff\xfb", "not WAV or MP3", id="two-bytes"),
    ],
)
def test_not_audio(data: bytes, match: str, tmp_path: Path) -> None:
    path = tmp_path / "song.mp3"
    path.write_bytes(data)
    with pytest.raises(AudioValidationError, match=f"{path}: .*{match}"):
        validate_reference(path)


@pytest.mark.parametrize(
    ("data", "duration"),
    [
        pytest.param(make_wav(8.2), 8.2, id="short-wav"),
        pytest.param(make_wav(10), 10.0, id="exactly-10s"),
        pytest.param(make_mp3(5), 5.0, id="short-mp3"),
        pytest.param(make_wav(601, rate=1000), 601.0, id="long-wav"),
    ],
)
def test_duration_limits(data: bytes, duration: float) -> None:
    with pytest.raises(AudioValidationError) as info:
        validate_reference(data, name="voice.wav")
    assert info.value.duration == pytest.approx(duration, abs=0.15)
    assert str(info.value) == (
        f"voice.wav: lasts {info.value.duration:.1f} s; MiniMax needs more than 10 s and at "
        "most 10 min")


def test_duration_limits_accept_the_edges_and_custom_limits(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    path.write_bytes(make_wav(600, rate=8000))  # a real 4.8 MB file, read by headers only
    assert validate_reference(path).duration == 600.0
    with pytest.raises(AudioValidationError, match="more than 1 s and at most 5 s"):
        validate_reference(make_wav(11), min_duration=1, max_duration=5)


def test_sources_agree(tmp_path: Path) -> None:
    data = make_mp3()
    path = tmp_path / "ref.bin"
    path.write_bytes(data)
    expected = probe_audio(data)
    assert probe_audio(path) == expected
    assert probe_audio(str(path)) == expected
    assert probe_audio(bytearray(data)) == expected  # type: ignore[arg-type]
    with path.open("rb") as f:
        assert probe_audio(f) == expected
        assert f.tell() == 0


@pytest.mark.parametrize("make", [make_mp3, lambda: make_wav(11)], ids=["mp3", "wav"])
def test_file_object_is_read_from_its_position_and_restored(make: Any) -> None:
    data = make()
    f = io.BytesIO(b"prefix junk" + data)
    f.seek(11)
    assert probe_audio(f) == probe_audio(data)
    assert f.tell() == 11


def test_file_object_name_and_errors() -> None:
    f = io.BufferedReader(io.BytesIO(b"hello"))
    with pytest.raises(AudioValidationError, match="<file object>: is not WAV"):
        probe_audio(f)
    with pytest.raises(AudioValidationError, match="<bytes>: the file is empty"):
        probe_audio(b"")


class Pipe(io.RawIOBase):
    name = "pipe.wav"

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def test_non_seekable_file_object() -> None:
    with pytest.raises(AudioValidationError, match=r"pipe\.wav: the file object is not seekable"):
        probe_audio(Pipe())  # type: ignore[arg-type]
    with pytest.raises(AudioValidationError, match="not seekable"):
        probe_audio(object(), name="x")  # type: ignore[arg-type]


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        probe_audio(tmp_path / "nope.wav")
