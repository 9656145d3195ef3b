"""The emulator's Suno routes beyond Add Instrumental, over plain HTTP (no aiomusic client).

Each operation: its checks and codes, its record (``generate/record-info`` or its own), its
callback body, its failure states, faults on its path, retention, and the paid counters.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from emu_helpers import KEY, CallbackSink, reference, suno_upload

from aiomusic.callbacks import WebhookVerifier
from aiomusic.emulator import Emulator, EmulatorConfig, Limits, Timings
from aiomusic.emulator._suno_family import audio_seconds

CB = "http://127.0.0.1:9/none"
CONFIG = EmulatorConfig(timings=Timings.instant(), limits=Limits.off(),
                        track_seconds=(8.0, 9.0))
Json = dict[str, Any]


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(CONFIG) as emulator:
        yield emulator


@pytest.fixture
def c(emu: Emulator) -> Iterator[httpx.Client]:
    emu.reset()
    with httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {KEY}"},
                      timeout=30) as client:
        yield client


def poll(c: httpx.Client, path: str, task_id: str, **query: str) -> Json:
    for _ in range(300):  # bounded
        body: Json = c.get(path, params={"taskId": task_id, **query}).json()
        data = body["data"]
        state = data.get("successFlag", data.get("status"))
        if state not in ("PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS", 0):
            return data
        time.sleep(0.01)
    raise AssertionError("the task never ended")


def generated(c: httpx.Client, **extra: Any) -> tuple[str, list[Json]]:
    body = {"prompt": "a calm song about rain", "customMode": False, "instrumental": False,
            "model": "V5", "callBackUrl": CB} | extra
    answer = c.post("/api/v1/generate", json=body).json()
    assert answer["code"] == 200, answer
    task_id = answer["data"]["taskId"]
    data = poll(c, "/api/v1/generate/record-info", task_id)
    assert data["status"] == "SUCCESS"
    return task_id, data["response"]["sunoData"]


def wait_for(check: Callable[[], bool]) -> None:
    for _ in range(3000):  # bounded (30 s: slow machines render the files first)
        if check():
            return
        time.sleep(0.01)
    raise AssertionError("condition never held")


# -- the generation family --------------------------------------------------------------------


def test_generate_extend_and_sounds_share_record_info(c: httpx.Client, emu: Emulator) -> None:
    _task_id, tracks = generated(c)
    assert [t["title"] for t in tracks] == ["A Calm Song About"] * 2
    assert tracks[0]["prompt"] == "a calm song about rain"
    custom, _ = generated(c, customMode=True, prompt="[Verse] la", style="jazz", title="Tune")
    assert poll(c, "/api/v1/generate/record-info", custom)["response"]["sunoData"][0][
        "tags"] == "jazz"
    ext = c.post("/api/v1/generate/extend", json={
        "audioId": tracks[0]["id"], "defaultParamFlag": True, "prompt": "more", "style": "s",
        "title": "T", "continueAt": 2.5, "model": "V5", "callBackUrl": CB}).json()
    record = poll(c, "/api/v1/generate/record-info", ext["data"]["taskId"])
    assert (record["operationType"], record["parentMusicId"]) == ("extend", tracks[0]["id"])
    sounds = c.post("/api/v1/generate/sounds", json={
        "prompt": "rain", "model": "V5", "soundTempo": 90, "soundKey": "Am",
        "callBackUrl": CB}).json()
    record = poll(c, "/api/v1/generate/record-info", sounds["data"]["taskId"])
    assert record["operationType"] == "sounds" and len(record["response"]["sunoData"]) == 2
    assert emu.counters.paid(operation="suno.generate") == 2
    assert emu.counters.paid(operation="suno.extend") == 1
    assert emu.counters.paid(operation="suno.sounds") == 1


def test_uploads_covers_mashups_and_sections(c: httpx.Client, emu: Emulator) -> None:
    upload = suno_upload(c)
    task_id, tracks = generated(c)
    cover = c.post("/api/v1/generate/upload-cover", json={
        "uploadUrl": upload, "prompt": "jazzy", "customMode": False, "model": "V5",
        "callBackUrl": CB}).json()
    assert cover["code"] == 200
    extend = c.post("/api/v1/generate/upload-extend", json={
        "uploadUrl": tracks[0]["audioUrl"], "defaultParamFlag": True, "style": "s",
        "title": "T", "instrumental": True, "continueAt": 3, "model": "V5",
        "callBackUrl": CB}).json()
    assert extend["code"] == 200
    vocals = c.post("/api/v1/generate/add-vocals", json={
        "uploadUrl": upload, "prompt": "la", "title": "T", "style": "soul",
        "negativeTags": "metal", "callBackUrl": CB}).json()
    assert vocals["code"] == 200
    mashup = c.post("/api/v1/generate/mashup", json={
        "uploadUrlList": [upload, tracks[1]["audioUrl"]], "customMode": False,
        "prompt": "blend", "model": "V4_5PLUS", "callBackUrl": CB}).json()
    assert mashup["code"] == 200
    section = c.post("/api/v1/generate/replace-section", json={
        "taskId": task_id, "audioId": tracks[0]["id"], "prompt": "new", "tags": "pop",
        "title": "T", "fullLyrics": "all", "infillStartS": 1, "infillEndS": 7.5,
        "callBackUrl": CB}).json()
    assert section["code"] == 200
    own = c.post("/api/v1/generate/replace-section", json={
        "uploadUrl": upload, "model": "V5", "prompt": "new", "tags": "pop", "title": "T",
        "fullLyrics": "all", "infillStartS": 0, "infillEndS": 6, "callBackUrl": CB}).json()
    assert own["code"] == 200
    record = poll(c, "/api/v1/generate/record-info", mashup["data"]["taskId"])
    assert record["operationType"] == "mashup"
    assert emu.counters.paid() == 7  # the generation, and the six above


def _family_body(path: str, upload: str, audio_id: str) -> Json:
    return {
        "generate": {"prompt": "x", "customMode": False, "model": "V5"},
        "upload-cover": {"uploadUrl": upload, "prompt": "x", "model": "V5"},
        "mashup": {"uploadUrlList": [upload, upload], "prompt": "x", "model": "V5"},
        "extend": {"audioId": audio_id, "model": "V5"},
        "sounds": {"prompt": "x", "model": "V5"},
    }[path] | {"callBackUrl": CB}


@pytest.mark.parametrize(("path", "change", "code"), [
    pytest.param("generate", {"model": None}, 400, id="generate-model-missing"),
    pytest.param("generate", {"prompt": "x" * 501}, 413, id="generate-description-long"),
    pytest.param("generate", {"customMode": True, "style": "s", "title": "t" * 81,
                              "model": "V4"}, 413, id="generate-v4-title"),
    pytest.param("generate", {"customMode": True, "title": "t"}, 400, id="custom-no-style"),
    pytest.param("generate", {"callBackUrl": "nope"}, 400, id="no-callback"),
    pytest.param("generate", {"styleWeight": 2}, 400, id="weight"),
    pytest.param("generate", {"vocalGender": "x"}, 400, id="gender"),
    pytest.param("generate", {"personaModel": "x"}, 400, id="persona-model"),
    pytest.param("mashup", {"model": "V5_5"}, 400, id="mashup-no-v5_5"),
    pytest.param("mashup", {"uploadUrlList": ["x"]}, 400, id="mashup-one-url"),
    pytest.param("sounds", {"model": "V4_5"}, 400, id="sounds-v5-only"),
    pytest.param("sounds", {"soundTempo": 301}, 400, id="sounds-tempo"),
    pytest.param("sounds", {"soundKey": "H"}, 400, id="sounds-key"),
    pytest.param("extend", {"audioId": "nope"}, 400, id="extend-unknown-track"),
    pytest.param("extend", {"defaultParamFlag": True, "style": "s", "title": "t",
                            "prompt": "p", "continueAt": 99}, 400, id="extend-past-the-end"),
    pytest.param("extend", {"defaultParamFlag": True, "style": "s", "title": "t",
                            "continueAt": 1}, 400, id="extend-no-lyrics"),
    pytest.param("upload-cover", {"uploadUrl": "https://example.com/a.mp3"}, 400,
                 id="cover-not-fetchable"),
])
def test_family_checks(c: httpx.Client, emu: Emulator, path: str, change: Json,
                       code: int) -> None:
    _task_id, tracks = generated(c)
    payload = _family_body(path, suno_upload(c), tracks[0]["id"]) | change
    payload = {k: v for k, v in payload.items() if v is not None}
    url = "/api/v1/generate" if path == "generate" else f"/api/v1/generate/{path}"
    answer = c.post(url, json=payload).json()
    assert answer["code"] == code, answer
    assert emu.counters.paid() == 1  # only the generation the test made


def test_cover_length_limits(c: httpx.Client) -> None:
    resp = c.post("/api/file-stream-upload", files={"file": ("a.mp3", reference(70.0))},
                  data={"uploadPath": "t"}).json()
    url = resp["data"]["downloadUrl"]
    body = {"uploadUrl": url, "prompt": "x", "callBackUrl": CB}
    assert c.post("/api/v1/generate/upload-cover",
                  json=body | {"model": "V4_5ALL"}).json()["code"] == 400
    assert c.post("/api/v1/generate/upload-cover",
                  json=body | {"model": "V5"}).json()["code"] == 200
    assert audio_seconds(b"not audio") is None
    assert 69 < (audio_seconds(reference(70.0, fmt="wav")) or 0) < 71


def test_replace_section_window_and_mode(c: httpx.Client) -> None:
    task_id, tracks = generated(c)
    base = {"prompt": "n", "tags": "t", "title": "T", "fullLyrics": "f", "callBackUrl": CB}
    for change in ({"taskId": task_id, "audioId": tracks[0]["id"], "infillStartS": 0,
                    "infillEndS": 5},
                   {"taskId": "other", "audioId": tracks[0]["id"], "infillStartS": 0,
                    "infillEndS": 6},
                   {"uploadUrl": suno_upload(c), "infillStartS": 0, "infillEndS": 6},
                   {"taskId": task_id, "audioId": tracks[0]["id"], "infillStartS": "0"},
                   {"taskId": task_id, "audioId": tracks[0]["id"], "fullLyrics": ""}):
        assert c.post("/api/v1/generate/replace-section",
                      json=base | change).json()["code"] == 400, change


# -- follow-ups -------------------------------------------------------------------------------


def test_wav_conversion_409_and_the_look_up(c: httpx.Client, emu: Emulator) -> None:
    task_id, tracks = generated(c)
    pair = {"taskId": task_id, "audioId": tracks[0]["id"], "callBackUrl": CB}
    first = c.post("/api/v1/wav/generate", json=pair).json()
    wav_id = first["data"]["taskId"]
    data = poll(c, "/api/v1/wav/record-info", wav_id)
    assert (data["successFlag"], data["musicId"]) == ("SUCCESS", tracks[0]["id"])
    wav = httpx.get(data["response"]["audioWavUrl"])
    assert wav.headers["content-type"] == "audio/wav" and wav.content[:4] == b"RIFF"
    again = c.post("/api/v1/wav/generate", json=pair).json()
    assert (again["code"], again["msg"], again["data"]) == (
        409, "WAV record already exists", None)
    found = c.get("/api/v1/wav/record-info",
                  params={"taskId": task_id, "audioId": tracks[0]["id"]}).json()
    assert found["data"]["taskId"] == wav_id
    assert c.get("/api/v1/wav/record-info", params={"taskId": task_id}).json()["code"] == 400
    assert emu.counters.paid(operation="suno.wav") == 1


def test_stems_records_files_and_midi(c: httpx.Client) -> None:
    task_id, tracks = generated(c)
    pair = {"taskId": task_id, "audioId": tracks[1]["id"], "callBackUrl": CB}
    split = c.post("/api/v1/vocal-removal/generate", json=pair | {"type": "split_stem"}).json()
    data = poll(c, "/api/v1/vocal-removal/record-info", split["data"]["taskId"])
    response = data["response"]
    assert response["vocalUrl"] and response["drumsUrl"] and response["instrumentalUrl"] is None
    assert "originData" not in response
    assert httpx.get(response["bassUrl"]).content[:3] == b"ID3" or \
        httpx.get(response["bassUrl"]).content[:1] == b"\xff"
    vocal = c.post("/api/v1/vocal-removal/generate", json=pair).json()
    data = poll(c, "/api/v1/vocal-removal/record-info", vocal["data"]["taskId"])
    assert [d["stem_type_group_name"] for d in data["response"]["originData"]] == [
        "Vocals", "Instrumental"]
    advanced = c.post("/api/v1/vocal-removal/generate", json=pair | {
        "type": "split_stem_advanced", "stemName": "guitar"}).json()
    data = poll(c, "/api/v1/vocal-removal/record-info", advanced["data"]["taskId"])
    assert data["response"]["guitarUrl"] and data["response"]["instrumentalUrl"]
    assert c.post("/api/v1/vocal-removal/generate",
                  json=pair | {"type": "nope"}).json()["code"] == 400
    midi = c.post("/api/v1/midi/generate", json={"taskId": vocal["data"]["taskId"],
                                                  "callBackUrl": CB}).json()
    data = poll(c, "/api/v1/midi/record-info", midi["data"]["taskId"])
    assert data["successFlag"] == 1 and data["midiData"]["instruments"][0]["notes"]
    assert c.post("/api/v1/midi/generate", json={"taskId": task_id,
                                                  "callBackUrl": CB}).json()["code"] == 400


def test_video_lyrics_timestamps_and_personas(c: httpx.Client, emu: Emulator) -> None:
    task_id, tracks = generated(c, customMode=True, prompt="[Verse]\nRain on the road",
                                style="folk", title="Rain")
    pair = {"taskId": task_id, "audioId": tracks[0]["id"]}
    video = c.post("/api/v1/mp4/generate", json=pair | {"callBackUrl": CB,
                                                        "author": "me"}).json()
    data = poll(c, "/api/v1/mp4/record-info", video["data"]["taskId"])
    got = httpx.get(data["response"]["videoUrl"])
    assert got.headers["content-type"] == "video/mp4" and got.content[4:8] == b"ftyp"
    assert c.post("/api/v1/mp4/generate", json=pair | {
        "callBackUrl": CB, "author": "a" * 51}).json()["code"] == 400
    lyrics = c.post("/api/v1/lyrics", json={"prompt": "the sea", "callBackUrl": CB}).json()
    data = poll(c, "/api/v1/lyrics/record-info", lyrics["data"]["taskId"])
    assert data["type"] == "LYRICS" and len(data["response"]["data"]) == 2
    assert c.post("/api/v1/lyrics", json={"callBackUrl": CB}).json()["code"] == 400
    words = c.post("/api/v1/generate/get-timestamped-lyrics", json=pair).json()["data"]
    assert [w["word"] for w in words["alignedWords"]] == ["[Verse]\nRain ", "on ", "the ",
                                                          "road\n"]
    instrumental, itracks = generated(c, instrumental=True)
    empty = c.post("/api/v1/generate/get-timestamped-lyrics", json={
        "taskId": instrumental, "audioId": itracks[0]["id"]}).json()["data"]
    assert empty["alignedWords"] == []
    persona = pair | {"name": "Rainy", "description": "soft folk voice", "vocalEnd": 20}
    made = c.post("/api/v1/generate/generate-persona", json=persona).json()
    assert made["code"] == 200 and made["data"]["personaId"]
    assert c.post("/api/v1/generate/generate-persona", json=persona).json()["code"] == 409
    assert c.post("/api/v1/generate/generate-persona",
                  json=pair | {"name": "x"}).json()["code"] == 400
    assert emu.counters.paid(operation="suno.persona") == 1
    assert emu.counters.paid(operation="suno.timestamped_lyrics") == 0


@pytest.mark.parametrize(("path", "extra"), [
    pytest.param("/api/v1/wav/generate", {}, id="wav"),
    pytest.param("/api/v1/vocal-removal/generate", {}, id="stems"),
    pytest.param("/api/v1/mp4/generate", {}, id="mp4"),
    pytest.param("/api/v1/generate/get-timestamped-lyrics", {}, id="timestamps"),
    pytest.param("/api/v1/generate/generate-persona", {"name": "n", "description": "d"},
                 id="persona"),
])
def test_follow_ups_need_a_finished_track_of_yours(c: httpx.Client, emu: Emulator, path: str,
                                                   extra: Json) -> None:
    task_id, tracks = generated(c)
    body = {"taskId": task_id, "audioId": "nope", "callBackUrl": CB} | extra
    assert c.post(path, json=body).json()["code"] == 400
    other = httpx.post(emu.url + path, json=body | {"audioId": tracks[0]["id"]},
                       headers={"Authorization": "Bearer another-key"}).json()
    assert other["code"] == 400
    assert c.post(path, content=b"{bad").json()["code"] == 400


@pytest.mark.parametrize(("path", "record", "fault", "state"), [
    pytest.param("/api/v1/wav/generate", "/api/v1/wav/record-info", "generate_audio_failed",
                 "GENERATE_WAV_FAILED", id="wav"),
    pytest.param("/api/v1/vocal-removal/generate", "/api/v1/vocal-removal/record-info",
                 "generate_audio_failed", "GENERATE_AUDIO_FAILED", id="stems"),
    pytest.param("/api/v1/mp4/generate", "/api/v1/mp4/record-info", "create_task_failed",
                 "CREATE_TASK_FAILED", id="mp4"),
    pytest.param("/api/v1/mp4/generate", "/api/v1/mp4/record-info", "generate_audio_failed",
                 "GENERATE_MP4_FAILED", id="mp4-own"),
    pytest.param("/api/v1/lyrics", "/api/v1/lyrics/record-info", "generate_audio_failed",
                 "GENERATE_LYRICS_FAILED", id="lyrics-own"),
    pytest.param("/api/v1/lyrics", "/api/v1/lyrics/record-info", "sensitive_word_error",
                 "SENSITIVE_WORD_ERROR", id="lyrics"),
])
def test_failure_states_and_their_callbacks(c: httpx.Client, emu: Emulator, path: str,
                                            record: str, fault: str, state: str) -> None:
    task_id, tracks = generated(c)
    emu.inject(fault)
    sink = CallbackSink()
    try:
        body = {"taskId": task_id, "audioId": tracks[0]["id"], "prompt": "sea",
                "callBackUrl": sink.url}
        follow = c.post(path, json=body).json()["data"]["taskId"]
        data = poll(c, record, follow)
        wait_for(lambda: bool(sink.bodies))
    finally:
        sink.close()
    assert data.get("successFlag", data.get("status")) == state
    assert data["errorCode"] in (400, 500, 501) and data["errorMessage"]
    assert sink.bodies[0]["code"] == data["errorCode"]


def test_single_shot_callbacks_and_their_signature(
        emulator_factory: Callable[[EmulatorConfig], Emulator]) -> None:
    emu = emulator_factory(EmulatorConfig(timings=Timings.instant(), limits=Limits.off(),
                                          track_seconds=(3.0, 4.0),
                                          webhook_hmac_key="kie-key"))
    sink = CallbackSink()
    seen: list[tuple[dict[str, str], Json]] = []

    def record(handler: Any) -> None:  # headers and body together (requests may interleave)
        body = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
        seen.append(({k.lower(): v for k, v in handler.headers.items()}, body))
        sink.bodies.append(body)
        handler.send_response(200)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    sink.server.RequestHandlerClass.do_POST = record  # type: ignore[attr-defined]
    try:
        with httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {KEY}"}) as c:
            task_id, tracks = generated(c)
            pair = {"taskId": task_id, "audioId": tracks[0]["id"], "callBackUrl": sink.url}
            for path in ("/api/v1/wav/generate", "/api/v1/vocal-removal/generate",
                         "/api/v1/mp4/generate"):
                c.post(path, json=pair)
            c.post("/api/v1/lyrics", json={"prompt": "sea", "callBackUrl": sink.url})
            wait_for(lambda: len(seen) == 4)
    finally:
        sink.close()
    data = sorted(sink.bodies, key=lambda b: sorted(b["data"]))  # type: ignore[index]
    kinds = {next(k for k in b["data"] if k not in ("task_id", "taskId"))  # type: ignore[union-attr]
             for b in data}
    assert kinds == {"audioWavUrl", "vocal_removal_info", "video_url", "callbackType"}
    verifier = WebhookVerifier("kie-key")
    for headers, body in seen:
        the_id = body["data"].get("task_id") or body["data"]["taskId"]
        assert verifier.problem(str(the_id), headers) is None


def test_faults_on_follow_up_paths_and_credits(c: httpx.Client, emu: Emulator) -> None:
    task_id, tracks = generated(c)
    pair = {"taskId": task_id, "audioId": tracks[0]["id"], "callBackUrl": CB}
    emu.inject("maintenance", operation="suno.stems")
    assert c.post("/api/v1/vocal-removal/generate", json=pair).json()["code"] == 455
    stems = c.post("/api/v1/vocal-removal/generate", json=pair).json()["data"]["taskId"]
    emu.inject("malformed_json", operation="suno.stems_record")
    with pytest.raises(ValueError):  # json's own error
        c.get("/api/v1/vocal-removal/record-info", params={"taskId": stems}).json()
    assert emu.counters.fired("malformed_json", operation="suno.stems_record") == 1
    emu.set_credits(0, key=KEY)
    assert c.post("/api/v1/wav/generate", json=pair).json()["code"] == 429
    assert c.post("/api/v1/lyrics", json={"prompt": "x", "callBackUrl": CB}).json()[
        "code"] == 429
    assert c.post("/api/v1/generate/generate-persona", json=pair | {
        "name": "n", "description": "d"}).json()["code"] == 429
    assert emu.counters.paid(operation="suno.wav") == 0


def test_retention_forgets_records_and_files(
        emulator_factory: Callable[[EmulatorConfig], Emulator]) -> None:
    emu = emulator_factory(EmulatorConfig(
        timings=Timings(generate=0, suno_text=0, suno_first=0, suno_complete=0,
                        suno_retention=0.3), limits=Limits.off(), track_seconds=(2.0, 3.0)))
    with httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        task_id, tracks = generated(c)
        wav = c.post("/api/v1/wav/generate", json={"taskId": task_id, "audioId": tracks[0]["id"],
                                                   "callBackUrl": CB}).json()["data"]["taskId"]
        url = poll(c, "/api/v1/wav/record-info", wav)["response"]["audioWavUrl"]
        assert httpx.get(url).status_code == 200
        time.sleep(0.4)
        assert c.get("/api/v1/wav/record-info", params={"taskId": wav}).json()["code"] == 400
        assert httpx.get(url).status_code == 404
