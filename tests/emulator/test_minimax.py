from __future__ import annotations

import io
import json
import re

import httpx
import mutagen
import pytest
from emu_helpers import reference, upload

from aiomusic.emulator import Emulator, EmulatorConfig, Timings

AIML_GEN = "/v2/generate/audio/minimax/generate"
AIML_UP = "/v2/generate/audio/minimax/upload"
ID_RE = r"{}-\d{{16}}-[A-Za-z0-9]{{8}}"


@pytest.mark.parametrize("native", [False, True], ids=["aiml", "minimax"])
@pytest.mark.parametrize(
    ("purpose", "keys"),
    [
        pytest.param("song", {"voice_id", "instrumental_id"}, id="song"),
        pytest.param("voice", {"voice_id"}, id="voice"),
        pytest.param("instrumental", {"instrumental_id"}, id="instrumental"),
    ],
)
def test_upload_returns_ids_for_purpose(
    client: httpx.Client, purpose: str, keys: set[str], native: bool
) -> None:
    body = upload(client, purpose, native=native)
    assert set(body) == keys | {"trace_id", "base_resp"}
    assert body["base_resp"] == {"status_code": 0, "status_msg": "success"}
    if "voice_id" in keys:
        assert re.fullmatch(ID_RE.format("vocal"), body["voice_id"])
    if "instrumental_id" in keys:
        assert re.fullmatch(ID_RE.format("instrumental"), body["instrumental_id"])


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        pytest.param(b"not audio at all" * 100, "WAV or MP3", id="not-audio"),
        pytest.param(reference(5.0, "wav"), "longer than 10 s", id="too-short"),
        pytest.param(reference(601.0, "wav"), "at most 10 min", id="too-long"),
        pytest.param(reference(12.0, "wav")[:20000], "longer than 10 s", id="truncated-wav"),
    ],
)
def test_upload_rejects_bad_audio_with_2013(
    client: httpx.Client, content: bytes, needle: str
) -> None:
    resp = client.post(AIML_UP, files={"file": ("x.wav", content)}, data={"purpose": "song"})
    body = resp.json()
    assert body["base_resp"]["status_code"] == 2013
    assert needle in body["base_resp"]["status_msg"]


def test_upload_accepts_wav(client: httpx.Client) -> None:
    resp = client.post(
        "/v1/music_upload",
        files={"file": ("x.wav", reference(11.0, "wav"))},
        data={"purpose": "voice"},
    )
    assert resp.json()["base_resp"]["status_code"] == 0


def test_aiml_schema_errors_use_http_400_shape(client: httpx.Client) -> None:
    resp = client.post(AIML_UP, files={"file": ("x.mp3", reference())}, data={"purpose": "x"})
    assert resp.status_code == 400
    body = resp.json()
    assert set(body) == {"message", "path", "requestId", "statusCode", "timestamp"}
    assert body["statusCode"] == 400
    assert body["path"] == AIML_UP
    assert "purpose" in body["message"]
    # JSON instead of multipart
    assert client.post(AIML_UP, json={"purpose": "song"}).status_code == 400


def test_native_schema_errors_are_2013_on_http_200(client: httpx.Client) -> None:
    resp = client.post("/v1/music_upload", json={"purpose": "song"})
    assert resp.status_code == 200
    assert resp.json()["base_resp"]["status_code"] == 2013


def _probe(data: bytes) -> mutagen.FileType:
    return mutagen.File(io.BytesIO(data))


@pytest.mark.parametrize("fmt", ["mp3", "wav", "pcm"])
@pytest.mark.parametrize("rate", [16000, 24000, 32000, 44100])
def test_generate_real_audio_matches_extra_info(client: httpx.Client, fmt: str, rate: int) -> None:
    ids = upload(client)
    resp = client.post(
        AIML_GEN,
        json={
            "model": "music-01",
            "lyrics": f"##{fmt} at {rate}##",
            "refer_voice": ids["voice_id"],
            "refer_instrumental": ids["instrumental_id"],
            "audio_setting": {"format": fmt, "sample_rate": rate, "bitrate": 128000},
        },
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["data"]["status"] == 2
    assert body["base_resp"] == {"status_code": 0, "status_msg": "success"}
    assert resp.headers["trace-id"] == body["trace_id"]
    audio = bytes.fromhex(body["data"]["audio"])
    info = body["extra_info"]
    assert info["music_size"] == info["audio_size"] == len(audio)
    assert info["music_sample_rate"] == info["audio_sample_rate"] == rate
    assert info["music_duration"] == info["audio_length"]
    assert info["music_channel"] == 2
    if fmt == "pcm":
        assert abs(len(audio) / 4 / rate * 1000 - info["music_duration"]) < 1
        return
    probed = _probe(audio)
    assert probed.info.sample_rate == rate
    assert abs(probed.info.length * 1000 - info["music_duration"]) < 2
    assert probed.info.bitrate == info["bitrate"]


def test_generate_streams_audio_first_and_key_order_is_configurable(
    client: httpx.Client, emulator_factory: object
) -> None:
    ids = upload(client, "instrumental")
    payload = {"model": "music-01", "lyrics": "la", "refer_instrumental": ids["instrumental_id"]}
    raw = client.post(AIML_GEN, json=payload).content
    assert raw.startswith(b'{"data":{"audio":"')
    factory = emulator_factory
    assert callable(factory)
    other: Emulator = factory(
        EmulatorConfig(
            timings=Timings.instant(),
            key_order=("base_resp", "trace_id", "extra_info", "analysis_info", "data"),
        )
    )
    with httpx.Client(base_url=other.url, headers=client.headers) as c2:
        ids2 = upload(c2, "instrumental")
        payload["refer_instrumental"] = ids2["instrumental_id"]
        raw2 = c2.post(AIML_GEN, json=payload).content
    assert raw2.startswith(b'{"base_resp"')
    assert json.loads(raw2)["data"]["status"] == 2


def test_generate_is_deterministic(client: httpx.Client) -> None:
    ids = upload(client, "instrumental")
    payload = {"model": "music-01", "lyrics": "same", "refer_instrumental": ids["instrumental_id"]}
    first = client.post(AIML_GEN, json=payload).json()["data"]["audio"]
    second = client.post(AIML_GEN, json=payload).json()["data"]["audio"]
    assert first == second


@pytest.mark.parametrize(
    ("change", "aiml_status"),
    [
        pytest.param({"model": "music-02"}, 400, id="model"),
        pytest.param({"lyrics": "x" * 601}, 400, id="lyrics-too-long"),
        pytest.param({"lyrics": 5}, 400, id="lyrics-type"),
        pytest.param({"audio_setting": {"sample_rate": 44100}}, 400, id="format-required"),
        pytest.param({"audio_setting": {"format": "ogg"}}, 400, id="format-enum"),
        pytest.param({"audio_setting": {"format": "mp3", "sample_rate": 48000}}, 400, id="rate"),
        pytest.param({"audio_setting": {"format": "mp3", "bitrate": 96000}}, 400, id="bitrate"),
        pytest.param({"refer_voice": None, "refer_instrumental": None}, 200, id="no-reference"),
        pytest.param({"refer_voice": "vocal-2025082518145625-unknown0"}, 200, id="unknown-ref"),
        pytest.param({"refer_voice": "$instrumental"}, 200, id="ref-of-wrong-kind"),
    ],
)
@pytest.mark.parametrize("native", [False, True], ids=["aiml", "minimax"])
def test_generate_validation(
    client: httpx.Client, change: dict[str, object], aiml_status: int, native: bool
) -> None:
    ids = upload(client)
    payload: dict[str, object] = {
        "model": "music-01",
        "lyrics": "hello",
        "refer_voice": ids["voice_id"],
        "refer_instrumental": ids["instrumental_id"],
    }
    payload |= change
    if payload["refer_voice"] == "$instrumental":
        payload["refer_voice"] = ids["instrumental_id"]
    resp = client.post("/v1/music_generation" if native else AIML_GEN, json=payload)
    if native or aiml_status == 200:
        assert resp.status_code == 200
        assert resp.json()["base_resp"]["status_code"] == 2013
    else:
        assert resp.status_code == 400
        assert resp.json()["message"].startswith("Body validation error!")
    assert emulator_paid(client) == 0


def emulator_paid(client: httpx.Client) -> int:
    counters = client.get("/_emulator/counters").json()
    return sum(item["count"] for item in counters["submissions"])


def test_native_accepts_multipart_with_audio_setting_string(client: httpx.Client) -> None:
    ids = upload(client, "voice", native=True)
    resp = client.post(
        "/v1/music_generation",
        data={
            "model": "music-01",
            "lyrics": "hi",
            "refer_voice": ids["voice_id"],
            "audio_setting": json.dumps({"format": "wav", "sample_rate": 24000}),
        },
    )
    body = resp.json()
    assert body["extra_info"]["music_sample_rate"] == 24000
    assert bytes.fromhex(body["data"]["audio"])[:4] == b"RIFF"


def test_native_lyrics_optional_with_instrumental_only(client: httpx.Client) -> None:
    ids = upload(client, "instrumental", native=True)
    payload = {"model": "music-01", "refer_instrumental": ids["instrumental_id"]}
    assert client.post("/v1/music_generation", json=payload).json()["data"]["status"] == 2
    assert client.post(AIML_GEN, json=payload).status_code == 400  # required on AI/ML


def test_native_output_format_url(client: httpx.Client) -> None:
    ids = upload(client, "instrumental", native=True)
    payload = {
        "model": "music-01",
        "refer_instrumental": ids["instrumental_id"],
        "output_format": "url",
    }
    body = client.post("/v1/music_generation", json=payload).json()
    audio = httpx.get(body["data"]["audio"]).content
    assert len(audio) == body["extra_info"]["music_size"]
    assert _probe(audio).info.sample_rate == 44100


def test_native_stream_is_sse_with_final_status_2(client: httpx.Client) -> None:
    ids = upload(client, "instrumental", native=True)
    payload = {"model": "music-01", "refer_instrumental": ids["instrumental_id"], "stream": True}
    resp = client.post("/v1/music_generation", json=payload)
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in resp.text.split("\n\n") if line]
    assert all(e["data"]["status"] == 1 and e["extra_info"] is None for e in events[:-1])
    assert events[-1]["data"]["status"] == 2
    audio = bytes.fromhex("".join(e["data"]["audio"] for e in events[:-1]))
    assert len(audio) == events[-1]["extra_info"]["music_size"]


def test_size_knob_makes_big_valid_tracks(client: httpx.Client) -> None:
    ids = upload(client, "instrumental")
    payload = {"model": "music-01", "lyrics": "big", "refer_instrumental": ids["instrumental_id"]}
    resp = client.post(AIML_GEN, json=payload, headers={"X-Emulator-Audio-Bytes": "5000000"})
    info = resp.json()["extra_info"]
    audio = bytes.fromhex(resp.json()["data"]["audio"])
    assert abs(len(audio) - 5_000_000) < 100_000
    assert abs(_probe(audio).info.length * 1000 - info["music_duration"]) < 2
