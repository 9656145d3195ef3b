"""The emulator's current MiniMax models, as a vendor-style client sees them (plain httpx)."""

from __future__ import annotations

import base64
import concurrent.futures
import io
import json
import time
from typing import Any

import httpx
import mutagen
import pytest
from emu_helpers import KEY, reference, upload

from aiomusic.emulator import Emulator, EmulatorConfig, Limits, Timings
from aiomusic.emulator._music_state import MusicState
from tests.conftest import make_flac

GEN = "/v1/music_generation"
OK = {"status_code": 0, "status_msg": "success"}
SONG = {"model": "music-2.6", "prompt": "indie folk, warm", "lyrics": "[Verse]\nStreetlights hum"}


def code(resp: httpx.Response) -> int:
    assert resp.status_code == 200
    value: int = resp.json()["base_resp"]["status_code"]
    return value


def events(text: str) -> list[dict[str, Any]]:
    return [json.loads(block.removeprefix("data: ")) for block in text.split("\n\n") if block]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def paid(emulator: Emulator, operation: str = "minimax.generate") -> int:
    return emulator.counters.paid(operation=operation)


# -- songs: hex ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["music-2.6", "music-2.6-free", "music-2.5+", "music-2.5",
                                   "music-3.0", "music-3.0-free"])
def test_every_model_answers_real_audio(client: httpx.Client, model: str) -> None:
    resp = client.post(GEN, json=SONG | {"model": model})
    body = resp.json()
    assert list(body) == ["data", "extra_info", "analysis_info", "trace_id", "base_resp"]
    assert (body["data"]["status"], body["base_resp"]) == (2, OK)
    assert resp.headers["trace-id"] == body["trace_id"]
    audio = bytes.fromhex(body["data"]["audio"])
    assert len(audio) == body["extra_info"]["music_size"]
    probed: Any = mutagen.File(io.BytesIO(audio))
    assert abs(probed.info.length * 1000 - body["extra_info"]["music_duration"]) < 2


@pytest.mark.parametrize(("setting", "channels", "magic"), [
    pytest.param({"format": "wav", "sample_rate": 24000, "channel": 1}, 1, b"RIFF", id="wav"),
    pytest.param({"format": "mp3", "bitrate": 128000, "channel": 2}, 2, b"\xff", id="mp3"),
])
def test_audio_setting_with_channel(client: httpx.Client, setting: dict[str, Any],
                                    channels: int, magic: bytes) -> None:
    body = client.post(GEN, json=SONG | {"audio_setting": setting}).json()
    assert bytes.fromhex(body["data"]["audio"]).startswith(magic)
    assert body["extra_info"]["music_channel"] == channels


@pytest.mark.parametrize(("change", "needle"), [
    pytest.param({"model": "music-9"}, "unknown model", id="unknown-model"),
    pytest.param({"lyrics": None}, "lyrics: required", id="no-lyrics"),
    pytest.param({"prompt": "p" * 2001}, "prompt", id="long-prompt"),
    pytest.param({"lyrics": "l" * 3501}, "lyrics", id="long-lyrics"),
    pytest.param({"model": "music-2.0", "prompt": "short"}, "prompt", id="2.0-short-prompt"),
    pytest.param({"lyrics": 7}, "lyrics: expected string", id="lyrics-type"),
    pytest.param({"is_instrumental": True}, "exclude each other", id="instrumental+lyrics"),
    pytest.param({"is_instrumental": True, "lyrics": None, "prompt": None}, "prompt: required",
                 id="instrumental-needs-prompt"),
    pytest.param({"model": "music-2.5", "is_instrumental": True, "lyrics": None},
                 "not supported by music-2.5", id="2.5-instrumental"),
    pytest.param({"lyrics_optimizer": True}, "exclude each other", id="optimizer+lyrics"),
    pytest.param({"lyrics_optimizer": "yes"}, "expected boolean", id="flag-type"),
    pytest.param({"audio_url": "http://x/a.mp3"}, "for cover models", id="song-with-audio"),
    pytest.param({"audio_setting": {"channel": 3}}, "channel", id="channel"),
    pytest.param({"audio_setting": {"format": "ogg"}}, "format", id="format"),
    pytest.param({"audio_setting": "mp3"}, "expected object", id="setting-type"),
    pytest.param({"output_format": "link"}, "output_format", id="output-format"),
    pytest.param({"stream": True, "output_format": "url"}, "stream only supports hex",
                 id="stream+url"),
    pytest.param({"cover_feature_id": "nope"}, "unknown", id="unknown-feature"),
])
def test_invalid_songs_are_2013_and_not_charged(client: httpx.Client, emulator: Emulator,
                                                change: dict[str, Any], needle: str) -> None:
    payload = {k: v for k, v in (SONG | change).items() if v is not None}
    resp = client.post(GEN, json=payload)
    assert code(resp) == 2013
    assert needle in resp.json()["base_resp"]["status_msg"]
    assert paid(emulator) == 0


def test_music_01_still_answers_on_the_same_path(client: httpx.Client) -> None:
    ids = upload(client, "instrumental", native=True)
    body = client.post(GEN, json={"model": "music-01",
                                  "refer_instrumental": ids["instrumental_id"]}).json()
    assert body["data"]["status"] == 2
    missing = client.post(GEN, json={"prompt": "no model"}).json()
    assert "expected 'music-01'" in missing["base_resp"]["status_msg"]  # as music-01 said
    assert code(client.post(GEN, content=b"not json")) == 2013


# -- songs: links -------------------------------------------------------------------------------


def test_url_output_is_a_signed_link_that_serves_the_song(client: httpx.Client) -> None:
    body = client.post(GEN, json=SONG | {"output_format": "url"}).json()
    link = body["data"]["audio"]
    assert set(body["data"]) == {"audio", "status"}
    assert "Expires=" in link and "Signature=" in link
    got = httpx.get(link)
    assert got.headers["content-type"] == "audio/mpeg"
    assert len(got.content) == body["extra_info"]["music_size"]
    head = httpx.head(link)
    assert (head.status_code, head.headers["content-length"]) == (200, str(len(got.content)))
    part = httpx.get(link, headers={"Range": "bytes=10-19"})
    assert (part.status_code, part.content) == (206, got.content[10:20])


def test_links_expire_and_must_be_signed(client: httpx.Client) -> None:
    old = client.post(GEN, json=SONG | {"output_format": "url"},
                      headers={"X-Emulator-Link-Seconds": "-5"}).json()["data"]["audio"]
    gone = httpx.get(old)
    assert gone.status_code == 403
    assert b"<Code>AccessDenied</Code><Message>Request has expired.</Message>" in gone.content
    fresh = client.post(GEN, json=SONG | {"output_format": "url"}).json()["data"]["audio"]
    forged = httpx.get(fresh.replace("Signature=", "Signature=x"))
    assert forged.status_code == 403
    assert b"signature" in forged.content


def test_the_link_may_come_as_audio_url(client: httpx.Client) -> None:
    body = client.post(GEN, json=SONG | {"output_format": "url"},
                       headers={"X-Emulator-Url-Key": "audio_url"}).json()
    assert set(body["data"]) == {"audio_url", "status"}
    assert httpx.get(body["data"]["audio_url"]).status_code == 200


# -- songs: streams -----------------------------------------------------------------------------


def test_a_stream_is_hex_events_then_a_final_status_2(client: httpx.Client) -> None:
    resp = client.post(GEN, json=SONG | {"stream": True},
                       headers={"X-Emulator-Audio-Bytes": "200000"})
    assert resp.headers["content-type"] == "text/event-stream"
    assert "content-length" not in resp.headers
    got = events(resp.text)
    assert len(got) > 3
    assert all(e["data"]["status"] == 1 and e["extra_info"] is None for e in got[:-1])
    assert all(e["base_resp"] == OK and e["trace_id"] == got[-1]["trace_id"] for e in got)
    final = got[-1]
    assert (final["data"], set(final)) == ({"audio": "", "status": 2}, {
        "data", "extra_info", "analysis_info", "trace_id", "base_resp"})
    audio = bytes.fromhex("".join(e["data"]["audio"] for e in got[:-1]))
    assert len(audio) == final["extra_info"]["music_size"]


def test_the_final_event_can_repeat_the_whole_song(client: httpx.Client) -> None:
    got = events(client.post(GEN, json=SONG | {"stream": True},
                             headers={"X-Emulator-Final-Audio": "full"}).text)
    assert got[-1]["data"]["audio"] == "".join(e["data"]["audio"] for e in got[:-1])


def test_a_stream_can_stop_with_an_error_event(client: httpx.Client) -> None:
    got = events(client.post(GEN, json=SONG | {"stream": True},
                             headers={"X-Emulator-Stream-Error": "1027",
                                      "X-Emulator-Audio-Bytes": "200000"}).text)
    assert got[-1]["base_resp"]["status_code"] == 1027
    assert all(e["data"]["status"] == 1 for e in got[:-1])


@pytest.mark.parametrize(("fault", "check"), [
    pytest.param("truncated_body", "no-final", id="truncated"),
    pytest.param("malformed_json", "broken", id="malformed"),
    pytest.param("invalid_hex", "zz", id="invalid-hex"),
    pytest.param("slow_drip", "whole", id="slow-drip"),
])
def test_body_faults_act_on_the_events(client: httpx.Client, emulator: Emulator, fault: str,
                                       check: str) -> None:
    emulator.inject(fault, operation="minimax.generate")
    text = client.post(GEN, json=SONG | {"stream": True},
                       headers={"X-Emulator-Audio-Bytes": "200000"}).text
    blocks = [b for b in text.split("\n\n") if b]
    if check == "no-final":
        assert all(json.loads(b[6:])["data"]["status"] == 1 for b in blocks)
    elif check == "broken":
        with pytest.raises(json.JSONDecodeError):
            events(text)
    elif check == "zz":
        assert "zz" in text
    else:
        assert json.loads(blocks[-1][6:])["data"]["status"] == 2
    assert emulator.counters.fired(fault) == 1


@pytest.mark.parametrize("fault", ["reset_mid_body", "reset_before_answer"])
def test_a_reset_stream_is_cut(client: httpx.Client, emulator: Emulator, fault: str) -> None:
    emulator.inject(fault, operation="minimax.generate")
    with pytest.raises(httpx.TransportError):
        client.post(GEN, json=SONG | {"stream": True}, headers={"X-Emulator-Audio-Bytes": "200000"})
    assert paid(emulator) == 1  # charged: the service was generating when the line dropped


def test_a_stream_is_paced_over_the_generation_time(emulator_factory: Any) -> None:
    emu: Emulator = emulator_factory(EmulatorConfig(timings=Timings(generate=0.5),
                                                    limits=Limits.off()))
    stamps: list[float] = []
    with httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {KEY}"},
                      timeout=30) as c, c.stream("POST", GEN, json=SONG | {"stream": True},
                                                  headers={"X-Emulator-Audio-Bytes": "150000"}
                                                  ) as resp:
        started = time.monotonic()
        for _ in resp.iter_raw():
            stamps.append(time.monotonic() - started)
    assert len(stamps) > 3  # events arrive one by one, not as one body


# -- covers -------------------------------------------------------------------------------------


def test_a_cover_from_base64_lasts_as_long_as_its_reference(client: httpx.Client,
                                                            emulator: Emulator) -> None:
    ref = reference(7.0)
    body = client.post(GEN, json={"model": "music-cover", "prompt": "jazz", "seed": 7,
                                  "audio_base64": b64(ref)}).json()
    assert body["base_resp"] == OK
    probed: Any = mutagen.File(io.BytesIO(ref))
    assert abs(body["extra_info"]["music_duration"] - probed.info.length * 1000) < 50
    assert paid(emulator) == 1


def test_a_cover_from_a_url_and_from_flac(client: httpx.Client) -> None:
    stored = client.post("/api/file-stream-upload", files={"file": ("a.mp3", reference(7.0))},
                         data={"uploadPath": "refs"}).json()["data"]["downloadUrl"]
    by_url = client.post(GEN, json={"model": "music-cover-free", "prompt": "jazz",
                                    "audio_url": stored}).json()
    assert by_url["base_resp"] == OK
    flac = client.post(GEN, json={"model": "music-cover", "prompt": "jazz",
                                  "audio_base64": b64(make_flac(9.0))}).json()
    assert flac["base_resp"] == OK


@pytest.mark.parametrize(("change", "needle"), [
    pytest.param({"audio_base64": None}, "exactly one", id="no-reference"),
    pytest.param({"audio_url": "http://127.0.0.1:9/x.mp3"}, "exactly one", id="both"),
    pytest.param({"prompt": None}, "prompt: required", id="no-prompt"),
    pytest.param({"audio_base64": "!!!"}, "not valid base64", id="bad-base64"),
    pytest.param({"audio_base64": b64(b"not audio" * 100)}, "mp3, wav or flac", id="not-audio"),
    pytest.param({"audio_base64": b64(reference(5.0))}, "6 s to 6 min", id="too-short"),
    pytest.param({"audio_base64": b64(make_flac(361))}, "6 s to 6 min", id="too-long"),
    pytest.param({"audio_base64": b64(b"fLaC" + bytes(20))}, "flac", id="broken-flac"),
    pytest.param({"seed": 1_000_001}, "seed", id="seed"),
    pytest.param({"is_instrumental": True}, "not supported", id="instrumental"),
    pytest.param({"lyrics_optimizer": True}, "not supported", id="optimizer"),
    pytest.param({"audio_base64": 12}, "expected string", id="base64-type"),
])
def test_invalid_covers(client: httpx.Client, change: dict[str, Any], needle: str) -> None:
    payload = {"model": "music-cover", "prompt": "jazz", "audio_base64": b64(reference(7.0))}
    payload = {k: v for k, v in (payload | change).items() if v is not None}
    resp = client.post(GEN, json=payload)
    assert code(resp) == 2013
    assert needle in resp.json()["base_resp"]["status_msg"]


def test_a_cover_url_the_emulator_cannot_fetch(client: httpx.Client) -> None:
    resp = client.post(GEN, json={"model": "music-cover", "prompt": "jazz",
                                  "audio_url": "https://example.com/song.mp3"})
    assert "could not be downloaded" in resp.json()["base_resp"]["status_msg"]


def test_a_reference_over_50_mb_is_refused(client: httpx.Client) -> None:
    big = make_flac(60, frames=b"\xff\xf8" + bytes(50 * 1024 * 1024))
    resp = client.post(GEN, json={"model": "music-cover", "prompt": "jazz",
                                  "audio_base64": b64(big)})
    assert "at most 50 MB" in resp.json()["base_resp"]["status_msg"]


def test_two_step_cover(client: httpx.Client, emulator: Emulator) -> None:
    pre = client.post("/v1/music_cover_preprocess",
                      json={"model": "music-cover", "audio_base64": b64(reference(8.0))}).json()
    assert pre["base_resp"] == OK
    assert pre["cover_feature_id"].startswith("cover-feature-")
    assert pre["formatted_lyrics"].startswith("[Verse]\n")
    assert abs(pre["audio_duration"] - 8.0) < 0.2
    assert paid(emulator, "minimax.cover_preprocess") == 1
    for model in ("music-2.6", "music-cover"):
        song = client.post(GEN, json={"model": model, "prompt": "bossa nova",
                                      "lyrics": pre["formatted_lyrics"],
                                      "cover_feature_id": pre["cover_feature_id"]}).json()
        assert song["base_resp"] == OK
        assert abs(song["extra_info"]["music_duration"] - 8000) < 200


@pytest.mark.parametrize(("payload", "needle"), [
    pytest.param({"model": "music-2.6", "audio_base64": "eA=="}, "music-cover", id="model"),
    pytest.param({"model": "music-cover"}, "exactly one", id="no-audio"),
    pytest.param({"model": "music-cover", "audio_base64": b64(reference(3.0))}, "6 s",
                 id="short"),
])
def test_invalid_preprocess(client: httpx.Client, payload: dict[str, Any], needle: str) -> None:
    resp = client.post("/v1/music_cover_preprocess", json=payload)
    assert needle in resp.json()["base_resp"]["status_msg"]
    assert code(client.post("/v1/music_cover_preprocess", content=b"[]")) == 2013
    assert code(client.post("/v1/music_cover_preprocess", content=b"not json")) == 2013


# -- lyrics and quota ---------------------------------------------------------------------------


def test_lyrics_are_written_and_edited(client: httpx.Client, emulator: Emulator) -> None:
    written = client.post("/v1/lyrics_generation",
                          json={"mode": "write_full_song", "prompt": "a summer road trip"}
                          ).json()
    assert set(written) == {"song_title", "style_tags", "lyrics", "trace_id", "base_resp"}
    assert written["lyrics"].startswith("[Verse]\n") and "[Chorus]" in written["lyrics"]
    assert len(written["style_tags"].split(", ")) == 3
    edited = client.post("/v1/lyrics_generation",
                         json={"mode": "edit", "lyrics": "[Verse]\nmine", "title": "Mine"}).json()
    assert (edited["song_title"], edited["lyrics"].split("\n")[:2]) == ("Mine",
                                                                        ["[Verse]", "mine"])
    assert paid(emulator, "minimax.lyrics") == 2


@pytest.mark.parametrize("payload", [
    pytest.param({"mode": "compose"}, id="mode"),
    pytest.param({"mode": "edit"}, id="edit-without-lyrics"),
    pytest.param({"mode": "write_full_song", "prompt": "p" * 2001}, id="long-prompt"),
    pytest.param({"mode": "write_full_song", "title": 5}, id="title-type"),
])
def test_invalid_lyrics_requests(client: httpx.Client, payload: dict[str, Any]) -> None:
    assert code(client.post("/v1/lyrics_generation", json=payload)) == 2013


def test_quota_counts_the_paid_models_only(client: httpx.Client, emulator: Emulator) -> None:
    client.post(GEN, json=SONG)
    client.post(GEN, json=SONG | {"model": "music-2.6-free"})
    body = client.get("/v1/token_plan/remains").json()
    remains = {m["model_name"]: m for m in body["model_remains"]}
    assert set(remains) == {"music-2.6", "music-cover", "music-2.5+", "music-2.5"}
    assert remains["music-2.6"]["current_interval_usage_count"] == 1
    assert remains["music-2.6"]["current_interval_total_count"] == 500
    assert remains["music-2.6"]["end_time"] > remains["music-2.6"]["start_time"]
    assert paid(emulator) == 2  # the free model was generated too, just not counted in quota


def test_plan_and_quota_refusals(emulator: Emulator) -> None:
    def post(key: str, model: str = "music-2.6") -> dict[str, Any]:
        resp = httpx.post(emulator.url + GEN, json=SONG | {"model": model},
                          headers={"Authorization": f"Bearer {key}"})
        base: dict[str, Any] = resp.json()["base_resp"]
        return base

    assert post("k-plus-1")["status_code"] == 2061
    assert post("k-plus-1", "music-2.6-free") == OK
    assert post("k-quota-1") == OK
    assert post("k-quota-1")["status_code"] == 1028
    assert post("k-weekly-1") == OK
    assert post("k-weekly-1")["status_code"] == 1030
    plus = httpx.get(emulator.url + "/v1/token_plan/remains",
                     headers={"Authorization": "Bearer k-plus-1"}).json()
    assert "music-2.6" not in {m["model_name"] for m in plus["model_remains"]}
    assert emulator.counters.rejected[("minimax.generate", "plan")] == 1
    assert emulator.counters.paid() == 3


def test_free_models_have_the_free_plans_limits(emulator_factory: Any) -> None:
    emu: Emulator = emulator_factory(EmulatorConfig(
        timings=Timings.instant(), limits=Limits(minimax_requests=40, minimax_window=60)))
    with httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        free = [code(c.post(GEN, json=SONG | {"model": "music-2.6-free"})) for _ in range(3)]
        assert free == [0, 0, 1002]  # 40 / 20 per window
        assert code(c.post(GEN, json=SONG)) == 0  # paid models keep theirs


def test_concurrent_generations_beyond_the_limits_are_refused(emulator_factory: Any) -> None:
    emu: Emulator = emulator_factory(EmulatorConfig(
        timings=Timings(generate=0.6), limits=Limits(minimax_concurrent=7)))
    with httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {KEY}"},
                      timeout=30) as c, concurrent.futures.ThreadPoolExecutor(16) as pool:
        paid_codes = list(pool.map(lambda _: code(c.post(GEN, json=SONG)), range(8)))
        free_codes = list(pool.map(
            lambda _: code(c.post(GEN, json=SONG | {"model": "music-2.6-free"})), range(2)))
    assert sorted(paid_codes) == [0] * 7 + [1041]  # the connection limit
    assert sorted(free_codes) == [0, 1002]  # 3/20 of 7: one at a time, a rate refusal
    assert emu.counters.rejected[("minimax.generate", "concurrency")] == 1


# -- faults on every path -----------------------------------------------------------------------


@pytest.mark.parametrize(("operation", "method", "path", "payload"), [
    pytest.param("minimax.generate", "POST", GEN, SONG, id="generate"),
    pytest.param("minimax.cover_preprocess", "POST", "/v1/music_cover_preprocess",
                 {"model": "music-cover", "audio_base64": b64(reference(7.0))}, id="preprocess"),
    pytest.param("minimax.lyrics", "POST", "/v1/lyrics_generation",
                 {"mode": "write_full_song"}, id="lyrics"),
    pytest.param("minimax.quota", "GET", "/v1/token_plan/remains", None, id="quota"),
])
def test_rejection_and_body_faults_on_every_path(client: httpx.Client, emulator: Emulator,
                                                 operation: str, method: str, path: str,
                                                 payload: Any) -> None:
    emulator.inject("server_error", operation=operation)
    assert code(client.request(method, path, json=payload)) == 1024
    emulator.inject("malformed_json", operation=operation)
    with pytest.raises(json.JSONDecodeError):
        client.request(method, path, json=payload).json()
    assert emulator.counters.fired(operation=operation) == 2


def test_faults_on_links(client: httpx.Client, emulator: Emulator) -> None:
    link = client.post(GEN, json=SONG | {"output_format": "url"}).json()["data"]["audio"]
    emulator.inject("truncated_body", operation="minimax.files")
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(link)
    assert httpx.get(link).status_code == 200


def test_the_free_window_slides_and_is_off_without_limits() -> None:
    state, limits = MusicState(0), Limits(minimax_requests=20, minimax_window=0.05)
    assert state.enter_free("k", limits) is None
    state.leave_free("k", limits)
    wait = state.enter_free("k", limits)
    assert wait is not None and 0 < wait <= 0.05
    time.sleep(0.06)
    assert state.enter_free("k", limits) is None
    assert state.enter_free("k", Limits.off()) is None
    state.leave_free("k", Limits.off())
