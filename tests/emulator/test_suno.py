from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable

import httpx
import mutagen
import pytest
from emu_helpers import KEY, CallbackSink, instrumental_body, reference, suno_upload

from aiomusic.emulator import Emulator, EmulatorConfig, Timings

SUBMIT = "/api/v1/generate/add-instrumental"
INFO = "/api/v1/generate/record-info"


def _wait_final(client: httpx.Client, task_id: str, seen: list[str] | None = None) -> dict:  # type: ignore[type-arg]
    for _ in range(500):  # bounded
        data = client.get(INFO, params={"taskId": task_id}).json()["data"]
        if seen is not None and (not seen or seen[-1] != data["status"]):
            seen.append(data["status"])
        if data["status"] not in ("PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS"):
            return data  # type: ignore[no-any-return]
        time.sleep(0.02)
    raise AssertionError("task never finished")


def test_stream_base64_and_url_uploads(client: httpx.Client) -> None:
    audio = reference()
    body = client.post(
        "/api/file-stream-upload",
        files={"file": ("a.mp3", audio, "audio/mpeg")},
        data={"uploadPath": "my/dir", "fileName": "take1.mp3"},
    ).json()
    assert body["success"] is True
    assert body["code"] == 200
    data = body["data"]
    assert set(data) == {
        "fileName",
        "filePath",
        "downloadUrl",
        "fileSize",
        "mimeType",
        "uploadedAt",
    }
    assert data["filePath"] == "my/dir/take1.mp3"
    assert data["fileSize"] == len(audio)
    assert data["mimeType"] == "audio/mpeg"
    assert httpx.get(data["downloadUrl"]).content == audio

    b64 = "data:audio/mpeg;base64," + base64.b64encode(audio).decode()
    body = client.post(
        "/api/file-base64-upload",
        json={"base64Data": b64, "uploadPath": "b64", "fileName": "x.mp3"},
    ).json()
    assert httpx.get(body["data"]["downloadUrl"]).content == audio

    body = client.post(
        "/api/file-url-upload", json={"fileUrl": data["downloadUrl"], "uploadPath": "copies"}
    ).json()
    assert body["data"]["fileName"] == "take1.mp3"
    assert body["data"]["fileSize"] == len(audio)


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        pytest.param("/api/file-base64-upload", {"base64Data": "!!!", "uploadPath": "x"}, id="b64"),
        pytest.param("/api/file-base64-upload", {"base64Data": "AAAA"}, id="no-path"),
        pytest.param(
            "/api/file-url-upload",
            {"fileUrl": "https://example.com/a.mp3", "uploadPath": "x"},
            id="remote-url",
        ),
    ],
)
def test_upload_errors(client: httpx.Client, path: str, payload: dict[str, str]) -> None:
    body = client.post(path, json=payload).json()
    assert body["success"] is False
    assert body["code"] == 400


def test_download_range(client: httpx.Client) -> None:
    url = suno_upload(client)
    full = httpx.get(url)
    assert full.headers["accept-ranges"] == "bytes"
    size = len(full.content)
    part = httpx.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 10-19/{size}"
    assert part.content == full.content[10:20]
    tail = httpx.get(url, headers={"Range": "bytes=-5"})
    assert tail.content == full.content[-5:]
    assert httpx.get(url, headers={"Range": f"bytes={size}-"}).status_code == 416
    head = httpx.head(url)
    assert int(head.headers["content-length"]) == size
    assert httpx.get(url + "nope").status_code == 404


def test_task_moves_through_stages_and_serves_tracks(
    client: httpx.Client, emulator_factory: Callable[[EmulatorConfig], Emulator]
) -> None:
    emu = emulator_factory(
        EmulatorConfig(timings=Timings(suno_text=0.1, suno_first=0.2, suno_complete=0.3))
    )
    with httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        resp = c.post(SUBMIT, json=instrumental_body(suno_upload(c)) | {"model": "V5"}).json()
        assert resp["code"] == 200
        assert resp["msg"] == "success"
        task_id = resp["data"]["taskId"]
        seen: list[str] = []
        data = _wait_final(c, task_id, seen)
    order = ["PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS", "SUCCESS"]
    assert seen == sorted(seen, key=order.index)
    assert data["status"] == "SUCCESS"
    assert data["taskId"] == task_id
    assert data["errorCode"] is None
    assert '"title": "Night Drive"' in data["param"]
    tracks = data["response"]["sunoData"]
    assert len(tracks) == 2
    for track in tracks:
        assert isinstance(track["createTime"], int)
        assert track["title"] == "Night Drive"
        assert track["tags"] == "synthwave, warm"
        audio = httpx.get(track["audioUrl"])
        assert audio.headers["content-type"] == "audio/mpeg"
        probed = mutagen.File(io.BytesIO(audio.content))
        assert abs(probed.info.length - track["duration"]) < 0.002
        assert httpx.get(track["streamAudioUrl"]).content == audio.content
        assert httpx.get(track["imageUrl"]).headers["content-type"] == "image/jpeg"
    assert emu.counters.paid(key=KEY, operation="suno.add_instrumental") == 1


def test_create_time_as_string_option(
    emulator_factory: Callable[[EmulatorConfig], Emulator],
) -> None:
    emu = emulator_factory(EmulatorConfig(timings=Timings.instant(), suno_time_as_string=True))
    with httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        task_id = c.post(SUBMIT, json=instrumental_body(suno_upload(c))).json()["data"]["taskId"]
        data = _wait_final(c, task_id)
    assert isinstance(data["createTime"], str)
    assert len(data["createTime"]) == len("2025-01-01 00:00:00")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        pytest.param({"title": None}, 400, id="title-missing"),
        pytest.param({"title": "x" * 101}, 413, id="title-too-long"),
        pytest.param({"tags": ""}, 400, id="tags-empty"),
        pytest.param({"negativeTags": None}, 400, id="negative-missing"),
        pytest.param({"callBackUrl": None}, 400, id="callback-missing"),
        pytest.param({"vocalGender": "x"}, 400, id="gender"),
        pytest.param({"styleWeight": 1.5}, 400, id="weight-range"),
        pytest.param({"audioWeight": 0.555}, 400, id="weight-step"),
        pytest.param({"weirdnessConstraint": "0.5"}, 400, id="weight-type"),
        pytest.param({"model": "V9"}, 400, id="model"),
        pytest.param({"uploadUrl": "https://example.com/a.mp3"}, 400, id="not-loopback"),
    ],
)
def test_add_instrumental_validation(
    client: httpx.Client, emulator: Emulator, change: dict[str, object], code: int
) -> None:
    payload = instrumental_body(suno_upload(client)) | change
    body = client.post(SUBMIT, json=payload).json()
    assert body["code"] == code
    assert emulator.counters.paid() == 0


def test_add_instrumental_accepts_optional_fields(client: httpx.Client) -> None:
    payload = instrumental_body(suno_upload(client)) | {
        "vocalGender": "f",
        "styleWeight": 0.61,
        "weirdnessConstraint": 0,
        "audioWeight": 1,
        "model": "V5_5",
    }
    assert client.post(SUBMIT, json=payload).json()["code"] == 200


@pytest.mark.parametrize(
    ("fault", "status", "error_code"),
    [
        ("create_task_failed", "CREATE_TASK_FAILED", 500),
        ("sensitive_word_error", "SENSITIVE_WORD_ERROR", 400),
        ("generate_audio_failed", "GENERATE_AUDIO_FAILED", 501),
        ("callback_exception", "CALLBACK_EXCEPTION", 500),
    ],
)
def test_task_failures(
    client: httpx.Client, emulator: Emulator, fault: str, status: str, error_code: int
) -> None:
    emulator.inject(fault, operation="suno.add_instrumental")
    task_id = client.post(SUBMIT, json=instrumental_body(suno_upload(client))).json()["data"][
        "taskId"
    ]
    data = _wait_final(client, task_id)
    assert data["status"] == status
    assert data["errorCode"] == error_code
    assert data["errorMessage"]
    assert emulator.counters.fired(fault) == 1


def test_unknown_task(client: httpx.Client) -> None:
    assert client.get(INFO, params={"taskId": "nope"}).json()["code"] == 400


def test_credits_go_down_and_run_out(client: httpx.Client, emulator: Emulator) -> None:
    before = client.get("/api/v1/generate/credit").json()
    assert before["code"] == 200
    url = suno_upload(client)
    assert client.post(SUBMIT, json=instrumental_body(url)).json()["code"] == 200
    after = client.get("/api/v1/generate/credit").json()["data"]
    assert after < before["data"]
    emulator.set_credits(0, key=KEY)
    assert client.post(SUBMIT, json=instrumental_body(url)).json()["code"] == 429
    assert emulator.counters.paid() == 1


def test_callbacks_at_each_stage_with_retries(client: httpx.Client, emulator: Emulator) -> None:
    sink = CallbackSink(fail_first=2)
    try:
        body = instrumental_body(suno_upload(client), callback=sink.url)
        task_id = client.post(SUBMIT, json=body).json()["data"]["taskId"]
        for _ in range(500):  # bounded wait for the three callbacks
            if emulator.counters.callbacks_sent >= 3:
                break
            time.sleep(0.01)
    finally:
        sink.close()
    kinds = [b["data"]["callbackType"] for b in sink.bodies]  # type: ignore[index]
    assert kinds == ["text", "first", "complete"]
    last = sink.bodies[-1]
    assert last["code"] == 200
    assert last["data"]["task_id"] == task_id  # type: ignore[index]
    item = last["data"]["data"][0]  # type: ignore[index]
    assert {"audio_url", "stream_audio_url", "image_url", "source_audio_url", "model_name"} <= set(
        item
    )
    assert "audioUrl" not in item
    counters = emulator.counters
    assert counters.callbacks_failed == 2
    assert counters.callbacks_sent == 3


@pytest.mark.parametrize(
    ("fault", "expected"), [("callback_duplicate", 4), ("callback_failure", 2)]
)
def test_callback_faults(
    client: httpx.Client, emulator: Emulator, fault: str, expected: int
) -> None:
    emulator.inject(fault, operation="suno.callback")
    sink = CallbackSink()
    try:
        body = instrumental_body(suno_upload(client), callback=sink.url)
        client.post(SUBMIT, json=body)
        for _ in range(500):  # bounded
            if emulator.counters.callbacks_sent + emulator.counters.callbacks_failed >= 3 + (
                fault == "callback_duplicate"
            ):
                break
            time.sleep(0.01)
    finally:
        sink.close()
    assert len(sink.bodies) == expected
    assert emulator.counters.fired(fault) == 1


def test_error_callback_on_failure(client: httpx.Client, emulator: Emulator) -> None:
    emulator.inject("generate_audio_failed")
    sink = CallbackSink()
    try:
        body = instrumental_body(suno_upload(client), callback=sink.url)
        client.post(SUBMIT, json=body)
        for _ in range(500):  # bounded
            if sink.bodies and sink.bodies[-1]["data"]["callbackType"] == "error":  # type: ignore[index]
                break
            time.sleep(0.01)
    finally:
        sink.close()
    assert sink.bodies[-1]["code"] == 501
    assert sink.bodies[-1]["data"]["data"] is None  # type: ignore[index]


def test_callback_finishing_after_reset_is_not_counted() -> None:
    from aiomusic.emulator._state import State

    state = State(seed=0)
    old = state.epoch
    state.reset(0)
    state.count_callback(ok=True, epoch=old)  # a delivery that began before the reset
    state.count_callback(ok=False, epoch=old)
    assert (state.counters.callbacks_sent, state.counters.callbacks_failed) == (0, 0)
    state.count_callback(ok=True, epoch=state.epoch)
    assert state.counters.callbacks_sent == 1
