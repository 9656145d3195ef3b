"""The emulator as a host on a network: admin token, keys never shown, no fetching for others.

Findings (issue 16): the admin paths needed no auth, ``/_emulator/counters`` returned API keys
in clear (a real key left in the environment leaked), and ``/api/file-url-upload`` fetched and
served back any loopback URL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import httpx
import pytest
from emu_helpers import reference, suno_upload

from aiomusic.emulator import Emulator, EmulatorConfig, Timings
from aiomusic.emulator._cli import build_parser, config_from_args
from tests.hostile import Answer, hostile_server

REAL_LOOKING_KEY = "sk-live-0123456789abcdef0123456789abcdef"
ADMIN = "admin-s3cret-token"
FINGERPRINT = "sha256:" + hashlib.sha256(REAL_LOOKING_KEY.encode()).hexdigest()[:8]


@pytest.mark.parametrize("path", ["counters", "reset", "inject"])
def test_admin_paths_need_the_token_when_one_is_set(path: str) -> None:
    emu = Emulator(admin_token=ADMIN)
    with emu:
        method = "GET" if path == "counters" else "POST"
        body = {"fault": "server_error"} if path == "inject" else None
        url = f"{emu.url}/_emulator/{path}"
        assert httpx.request(method, url, json=body).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert httpx.request(method, url, json=body, headers=wrong).status_code == 401
        for headers in ({"Authorization": f"Bearer {ADMIN}"},
                        {"X-Emulator-Admin-Token": ADMIN}):
            assert httpx.request(method, url, json=body, headers=headers).status_code == 200
        assert httpx.get(f"{emu.url}/_emulator/health").json() == {"ok": True}  # probes
        assert ADMIN not in repr(emu.config)


def test_the_cli_takes_an_admin_token_and_fetch_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(["--admin-token", ADMIN, "--fetch-host", "CDN.local:80"])
    config = config_from_args(args)
    assert config.admin_token == ADMIN and config.fetch_hosts == frozenset({"cdn.local:80"})
    monkeypatch.setenv("AIOMUSIC_EMULATOR_ADMIN_TOKEN", "from-env")
    assert config_from_args(build_parser().parse_args([])).admin_token == "from-env"
    monkeypatch.delenv("AIOMUSIC_EMULATOR_ADMIN_TOKEN")
    assert config_from_args(build_parser().parse_args([])).admin_token is None


def test_no_answer_shows_a_key_in_clear() -> None:
    config = EmulatorConfig(timings=Timings.instant())
    with Emulator(config) as emu, httpx.Client(
            base_url=emu.url, headers={"Authorization": f"Bearer {REAL_LOOKING_KEY}"},
            timeout=30) as client:
        answers: list[httpx.Response] = []
        answers.append(client.post("/v2/generate/audio/minimax/upload",
                                   files={"file": ("r.mp3", reference(), "audio/mpeg")},
                                   data={"purpose": "song"}))
        voice = answers[-1].json()["voice_id"]
        answers.append(client.post("/v2/generate/audio/minimax/generate",
                                   json={"model": "music-01", "lyrics": "la",
                                         "refer_voice": voice}))
        stored = suno_upload(client)
        answers.append(client.post("/api/v1/generate/add-instrumental", json={
            "uploadUrl": stored, "title": "t", "tags": "t", "negativeTags": "n",
            "callBackUrl": "http://127.0.0.1:9/cb"}))
        task = answers[-1].json()["data"]["taskId"]
        answers.append(client.get("/api/v1/generate/record-info", params={"taskId": task}))
        answers.append(client.get("/api/v1/generate/credit"))
        answers.append(client.get("/_emulator/counters"))
        answers.append(client.get("/nope"))
    for answer in answers:
        assert REAL_LOOKING_KEY not in answer.text, answer.request.url
        assert REAL_LOOKING_KEY[3:20] not in answer.text
    counters = answers[-2].json()
    assert {s["key"] for s in counters["submissions"]} == {FINGERPRINT}
    assert set(counters["max_concurrent"]) <= {FINGERPRINT}


def test_url_uploads_fetch_only_the_emulator_own_files(client: httpx.Client,
                                                       emulator: Emulator) -> None:
    audio = reference(3.0)
    with hostile_server(lambda p, h: Answer(headers={"Content-Type": "audio/mpeg"},
                                            body=audio)) as outside:
        body = client.post("/api/file-url-upload", json={
            "fileUrl": f"{outside.url}/internal/secret.mp3", "uploadPath": "x"}).json()
        assert body["success"] is False and "--fetch-host" in body["msg"]
        submit = client.post("/api/v1/generate/add-instrumental", json={
            "uploadUrl": f"{outside.url}/a.mp3", "title": "t", "tags": "t",
            "negativeTags": "n", "callBackUrl": "http://127.0.0.1:9/cb"}).json()
        assert submit["code"] == 400 and "--fetch-host" in submit["msg"]
        assert outside.seen == []  # nothing was fetched from it
        own = suno_upload(client)  # the emulator's own files still work
        copied = client.post("/api/file-url-upload",
                             json={"fileUrl": own, "uploadPath": "copies"}).json()
        assert copied["success"] is True


def test_url_uploads_fetch_configured_hosts(
        emulator_factory: Callable[[EmulatorConfig], Emulator]) -> None:
    audio = reference(3.0)
    with hostile_server(lambda p, h: Answer(headers={"Content-Type": "audio/mpeg"},
                                            body=audio)) as outside:
        emu = emulator_factory(EmulatorConfig(fetch_hosts={f"127.0.0.1:{outside.port}"}))
        with httpx.Client(base_url=emu.url, headers={"Authorization": "Bearer k"}) as client:
            body = client.post("/api/file-url-upload", json={
                "fileUrl": f"{outside.url}/a.mp3", "uploadPath": "x"}).json()
            other = client.post("/api/file-url-upload", json={
                "fileUrl": f"http://127.0.0.1:{outside.port + 1}/a.mp3", "uploadPath": "x"})
    assert body["success"] is True and body["data"]["fileSize"] == len(audio)
    assert other.json()["success"] is False
    assert [path for path, _ in outside.seen] == ["/a.mp3"]
