"""examples/fastapi_app.py end to end: a real uvicorn server on 127.0.0.1, the emulator behind it.

Each test serves a fresh app (its own lifespan, session and task group) on a free loopback port
in a background thread, and talks to it with an httpx client, as any client would. The app
runs on uvicorn's own asyncio loop whatever the test's backend, so these tests pin the client
to asyncio: trio would test nothing more and double the time. Every test ends by checking that
the app's shutdown left no background task running.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import attrs
import httpx
import mutagen
import pytest
import uvicorn

from aiomusic import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContentPolicyError,
    DeadlineExceededError,
    InputError,
    InsufficientCreditsError,
    MaintenanceError,
    MusicSession,
    RateLimitError,
    RetryPolicy,
    ServerError,
    SubmissionUnknownError,
    UsageLimitError,
)
from aiomusic.emulator import Emulator, EmulatorConfig, Limits, Timings
from aiomusic.suno import PollSchedule

from .conftest import make_wav
from .reliability_helpers import FAST, assert_released

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-example-test-key"
LYRICS = "##Side by side, through thick and thin,\n\nFriends forever, me and you!##"
SUNO_ARGS = {"title": "Night Drive", "tags": "synthwave, warm pads", "negative_tags": "metal"}
GUARD = 20  # seconds: a hang guard for waits on background work, not a timing assertion


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fastapi_app",
                                                  ROOT / "examples" / "fastapi_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pydantic resolve annotations through it
    spec.loader.exec_module(module)
    return module


example = _load_example()


@pytest.fixture(scope="module")
def strict_emu() -> Iterator[Emulator]:
    """A private emulator that accepts only ``KEY`` and drips slow bodies slowly."""
    timings = attrs.evolve(Timings.instant(), slow_drip_interval=0.25)
    config = EmulatorConfig(api_keys={KEY}, timings=timings, limits=Limits.off(),
                            track_seconds=(3.0, 4.0))
    with Emulator(config) as emu:
        yield emu


@pytest.fixture
def strict(strict_emu: Emulator) -> Iterator[Emulator]:
    strict_emu.reset()
    yield strict_emu
    strict_emu.reset()


@attrs.define
class Served:
    url: str
    app: Any
    songs: Path

    @property
    def music(self) -> Any:
        return self.app.state.music


@contextmanager
def serve(emulator: Emulator, tmp_path: Path, **settings: Any) -> Iterator[Served]:
    """Serve the example on 127.0.0.1:<free port> with uvicorn, in a thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    songs = tmp_path / "songs"
    settings = {"base_url": emulator.url, "public_url": url, "songs_dir": songs,
                "aimlapi_key": KEY, "minimax_key": KEY, "suno_key": KEY, "retry": FAST,
                "poll": PollSchedule(initial=0.02, maximum=0.1), **settings}
    app = example.create_app(example.Settings(**settings))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning",
                                           access_log=False, ws="none",
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the app did not start"
        time.sleep(0.005)
    served = Served(url, app, songs)
    try:
        yield served
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert not thread.is_alive()
    assert served.music.active == 0  # the lifespan finished every background task
    assert served.music.session.closed


def client(served: Served) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=served.url, timeout=30)


async def references(http: httpx.AsyncClient) -> dict[str, str]:
    answer = await http.post("/references", data={"purpose": "song"},
                             files={"file": ("reference.wav", make_wav(12.0), "audio/wav")})
    assert answer.status_code == 201, answer.text
    ids: dict[str, str] = answer.json()
    assert ids["voice_id"] and ids["instrumental_id"]
    return ids


async def until(http: httpx.AsyncClient, path: str, done: Any) -> dict[str, Any]:
    """GET ``path`` until ``done(json)``; the guard only stops a hang."""
    with anyio.fail_after(GUARD):
        while True:
            answer = await http.get(path)
            assert answer.status_code == 200, answer.text
            body: dict[str, Any] = answer.json()
            if done(body):
                return body
            await anyio.sleep(0.02)


def finished(body: dict[str, Any]) -> bool:
    return body["status"] not in ("running", "ready", "streaming")


async def test_reference_song_status_and_file(emulator: Emulator, tmp_path: Path) -> None:
    with serve(emulator, tmp_path) as served:
        async with client(served) as http:
            ids = await references(http)
            answer = await http.post("/songs", json={
                "lyrics": LYRICS, "refer_voice": ids["voice_id"],
                "refer_instrumental": ids["instrumental_id"]})
            assert answer.status_code == 202
            job = answer.json()
            assert job["status"] == "running" and job["delivery"] == "file"
            body = await until(http, f"/songs/{job['id']}", finished)
            assert body["status"] == "done" and body["error"] is None
            audio = await http.get(body["audio_url"])
            assert audio.status_code == 200
            assert audio.headers["content-type"] == "audio/mpeg"
            assert hashlib.sha256(audio.content).hexdigest() == body["result"]["sha256"]
            assert (await http.get("/songs/nope")).status_code == 404
            assert (await http.get("/instrumentals/nope")).status_code == 404
        song = mutagen.File(io.BytesIO(audio.content))
        assert song is not None and song.info.length > 1
        assert [p.name for p in served.songs.iterdir()] == [f"{job['id']}.mp3"]
    assert emulator.counters.paid(operation="aiml.generate") == 1


async def test_live_song_streams_once_and_leaves_no_file(emulator: Emulator,
                                                         tmp_path: Path) -> None:
    with serve(emulator, tmp_path) as served:
        async with client(served) as http:
            ids = await references(http)
            job = (await http.post("/songs", json={
                "lyrics": LYRICS, "refer_voice": ids["voice_id"], "format": "wav",
                "delivery": "live"})).json()
            assert job["status"] == "ready"  # a live song starts when its listener connects
            async with http.stream("GET", job["audio_url"]) as audio:
                assert audio.status_code == 200
                assert audio.headers["content-type"] == "audio/wav"
                data = b"".join([chunk async for chunk in audio.aiter_bytes()])
            body = (await http.get(f"/songs/{job['id']}")).json()
            assert body["status"] == "done"
            assert body["result"]["bytes"] == len(data)
            assert body["result"]["sha256"] == hashlib.sha256(data).hexdigest()
            assert data[:4] == b"RIFF"
            again = await http.get(job["audio_url"])
            assert again.status_code == 409 and "plays once" in again.json()["detail"]
        assert list(served.songs.iterdir()) == []
    assert emulator.counters.paid(operation="aiml.generate") == 1


async def test_fifty_concurrent_songs(emulator: Emulator, tmp_path: Path) -> None:
    with serve(emulator, tmp_path) as served:
        async with client(served) as http:
            voice = (await references(http))["voice_id"]
            jobs: list[dict[str, Any]] = []

            async def order(i: int) -> None:
                # five different songs, ten times each: the emulator renders each song once
                lyrics = f"##Song number {i % 5}##"
                answer = await http.post("/songs", json={"lyrics": lyrics, "refer_voice": voice})
                assert answer.status_code == 202
                jobs.append({**answer.json(), "lyrics": lyrics})

            async with anyio.create_task_group() as group:
                for i in range(50):
                    group.start_soon(order, i)
            bodies = [await until(http, f"/songs/{job['id']}", finished) for job in jobs]
            assert [b["status"] for b in bodies] == ["done"] * 50
            songs = {(job["lyrics"], body["result"]["sha256"])
                     for job, body in zip(jobs, bodies, strict=True)}
            assert len(songs) == 5  # each job got its own lyrics' song, no mix-up
            for body in bodies[:3]:
                audio = await http.get(body["audio_url"])
                assert hashlib.sha256(audio.content).hexdigest() == body["result"]["sha256"]
        assert len(list(served.songs.iterdir())) == 50
        assert not list(served.songs.glob(".*.part"))
    assert emulator.counters.paid(operation="aiml.generate") == 50


async def test_client_leaving_mid_stream_stops_the_generation(strict: Emulator,
                                                              tmp_path: Path) -> None:
    with serve(strict, tmp_path) as served:
        async with client(served) as http:
            ids = await references(http)
            # the answer trickles in over 2.5 s: the listener leaves long before its end
            strict.inject("slow_drip", operation="aiml.generate")
            job = (await http.post("/songs", json={
                "lyrics": LYRICS, "refer_voice": ids["voice_id"], "format": "wav",
                "delivery": "live"})).json()
            async with http.stream("GET", job["audio_url"]) as audio:
                assert audio.status_code == 200
                async for chunk in audio.aiter_raw():
                    assert chunk
                    break  # leaving the block closes the connection
            body = await until(http, f"/songs/{job['id']}", finished)
            assert body["status"] == "cancelled" and body["result"] is None
            with anyio.fail_after(GUARD):
                while served.music.active:
                    await anyio.sleep(0.01)
            assert_released(served.music.session)  # no connection or permit held
            assert list(served.songs.iterdir()) == []
            # the app goes on serving
            job = (await http.post("/songs", json={"lyrics": LYRICS,
                                                   "refer_voice": ids["voice_id"]})).json()
            assert (await until(http, f"/songs/{job['id']}", finished))["status"] == "done"
    assert strict.counters.paid(operation="aiml.generate") == 2  # nothing was re-sent


async def test_shutdown_cancels_background_songs(strict: Emulator, tmp_path: Path) -> None:
    with serve(strict, tmp_path) as served:
        async with client(served) as http:
            ids = await references(http)
            strict.inject("slow_drip", operation="aiml.generate")
            job = (await http.post("/songs", json={
                "lyrics": LYRICS, "refer_voice": ids["voice_id"], "format": "wav"})).json()
            with anyio.fail_after(GUARD):  # wait until the audio is being written
                while not list(served.songs.iterdir()):
                    await anyio.sleep(0.01)
    # the server stopped: its lifespan cancelled the generation before closing the session
    assert served.music.songs[job["id"]].status == "cancelled"
    assert list(served.songs.iterdir()) == []  # no song, no temporary file


async def test_callbacks_arrive_at_the_mounted_receiver(emulator: Emulator,
                                                        tmp_path: Path) -> None:
    async with MusicSession(suno_key=KEY, base_url=emulator.url) as direct:
        vocals = (await direct.suno.upload(make_wav(3.0), name="vocals.wav")).download_url
    # polls only every minute: within the guard, only a callback can finish the task (then
    # one record-info call confirms it: callbacks are hints)
    slow_polls = PollSchedule(initial=60, maximum=60)
    with serve(emulator, tmp_path, poll=slow_polls) as served:
        async with client(served) as http:
            answer = await http.post("/instrumentals", json={"source_url": vocals,
                                                             **SUNO_ARGS})
            assert answer.status_code == 202, answer.text
            task_id = answer.json()["id"]
            body = await until(http, f"/instrumentals/{task_id}", lambda b: b["done"])
            assert body["status"] == "SUCCESS" and body["learnt_by"] == "callback"
            assert len(body["tracks"]) == 2 and all(t["audio_url"] for t in body["tracks"])
            assert (await http.get("/healthz")).json()["callbacks_accepted"] >= 1
    param = emulator.app.state.tasks[task_id].param
    assert param["callBackUrl"].startswith(f"{served.url}/suno/callbacks/")
    assert emulator.counters.requests.get("/api/v1/generate/record-info", 0) == 1
    assert emulator.counters.paid(operation="suno.add_instrumental") == 1


async def test_rate_limits_become_503_with_retry_after(emulator: Emulator,
                                                       tmp_path: Path) -> None:
    emulator.set_limits(Limits(enabled=False, retry_after=7))  # 429s say "Retry-After: 7"
    quick = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02,
                           max_retry_after=0.05)
    with serve(emulator, tmp_path, retry=quick) as served:
        async with client(served) as http:
            ids = await references(http)
            emulator.inject("rate_limit", operation="aiml.generate", count=2)
            job = (await http.post("/songs", json={"lyrics": LYRICS, "delivery": "live",
                                                   "refer_voice": ids["voice_id"]})).json()
            answer = await http.get(job["audio_url"])
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == "7"
            assert answer.json()["error"] == "RateLimitError"
            assert (await http.get(f"/songs/{job['id']}")).json()["status"] == "failed"

            emulator.inject("rate_limit", operation="aiml.generate", count=2)
            job = (await http.post("/songs", json={"lyrics": LYRICS,
                                                   "refer_voice": ids["voice_id"]})).json()
            body = await until(http, f"/songs/{job['id']}", finished)
            assert body["status"] == "failed"
            assert body["error"]["error"] == "RateLimitError"
            assert body["error"]["retry_after"] == "7"
            assert (await http.get(body["audio_url"])).status_code == 409

            async with MusicSession(suno_key=KEY, base_url=emulator.url) as direct:
                vocals = (await direct.suno.upload(make_wav(3.0))).download_url
            emulator.inject("rate_limit", operation="suno.add_instrumental", count=2)
            answer = await http.post("/instrumentals", json={"source_url": vocals,
                                                             **SUNO_ARGS})
            assert answer.status_code == 503  # Suno's body code 430, twice
            assert int(answer.headers["retry-after"]) >= 1
    assert emulator.counters.paid(operation="aiml.generate") == 0
    assert emulator.counters.paid(operation="suno.add_instrumental") == 0


async def test_bad_input_is_422(emulator: Emulator, tmp_path: Path) -> None:
    with serve(emulator, tmp_path) as served:
        async with client(served) as http:
            ids = await references(http)
            voice = ids["voice_id"]
            for body in ({}, {"lyrics": LYRICS}, {"lyrics": "x" * 601, "refer_voice": voice},
                         {"lyrics": LYRICS, "refer_voice": voice, "format": "flac"},
                         {"lyrics": LYRICS, "refer_voice": voice, "colour": "blue"}):
                assert (await http.post("/songs", json=body)).status_code == 422, body
            # the library's own checks and the service's refusals are 422 too, in their words
            answer = await http.post("/references", data={"purpose": "song"},
                                     files={"file": ("short.wav", make_wav(8.0))})
            assert answer.status_code == 422
            assert answer.json()["error"] == "AudioValidationError"
            assert "8.0 s" in answer.json()["detail"] and answer.json()["field"] == "source"
            answer = await http.post("/references", data={"purpose": "chorus"},
                                     files={"file": ("ref.wav", make_wav(12.0))})
            assert answer.status_code == 422
            answer = await http.post("/instrumentals", json={
                "source_url": "https://example.com/v.mp3", "style_weight": 0.123, **SUNO_ARGS})
            assert answer.status_code == 422
            assert answer.json()["field"] == "style_weight"
            job = (await http.post("/songs", json={"lyrics": LYRICS, "delivery": "live",
                                                   "refer_voice": "vocal-unknown"})).json()
            answer = await http.get(job["audio_url"])
            assert answer.status_code == 422 and answer.json()["error"] == "BadRequestError"
    assert emulator.counters.paid(operation="suno.add_instrumental") == 0


async def test_key_and_set_up_problems_are_500_and_say_nothing(
        strict: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUNO_API_KEY", raising=False)
    wrong = "sk-wrong-and-secret-0123456789"
    with serve(strict, tmp_path, aimlapi_key=wrong, suno_key=None) as served:
        async with client(served) as http:
            answer = await http.post("/references", data={"purpose": "voice"},
                                     files={"file": ("ref.wav", make_wav(12.0))})
            assert answer.status_code == 500
            assert answer.json()["error"] == "ServiceMisconfigured"
            assert wrong not in answer.text and "sk-" not in answer.text
            answer = await http.post("/instrumentals", json={
                "source_url": "https://example.com/v.mp3", **SUNO_ARGS})
            assert answer.status_code == 500  # no Suno key anywhere: ConfigurationError
            assert answer.json()["error"] == "ServiceMisconfigured"


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        pytest.param(RateLimitError("busy", provider="aimlapi", status_code=429,
                                    retry_after=2.2), 503, "3", id="rate-limit-hint"),
        pytest.param(UsageLimitError("window", provider="minimax", status_code=200), 503,
                     "600", id="usage-limit"),
        pytest.param(MaintenanceError("down", provider="suno", status_code=200), 503, "30",
                     id="maintenance"),
        pytest.param(InputError("bad", field="lyrics"), 422, None, id="input"),
        pytest.param(BadRequestError("bad", provider="suno", status_code=200), 422, None,
                     id="service-bad-request"),
        pytest.param(ContentPolicyError("flagged", provider="minimax", status_code=200), 422,
                     None, id="content-policy"),
        pytest.param(AuthenticationError(f"key {KEY} refused", provider="aimlapi",
                                         status_code=401), 500, None, id="auth"),
        pytest.param(ConfigurationError("no key"), 500, None, id="configuration"),
        pytest.param(InsufficientCreditsError("broke", provider="suno", status_code=200), 500,
                     None, id="credits"),
        pytest.param(DeadlineExceededError("late", timeout=1.0), 504, None, id="deadline"),
        pytest.param(SubmissionUnknownError("lost", operation="minimax.generate",
                                            reason="read timeout"), 502, None, id="unknown"),
        pytest.param(ServerError("oops", provider="aimlapi", status_code=500), 502, None,
                     id="server"),
    ],
)
def test_error_mapping(error: Any, status: int, retry_after: str | None) -> None:
    got, body, headers = example.problem(error)
    assert (got, headers.get("Retry-After")) == (status, retry_after)
    if status == 500:
        assert KEY not in str(body) and error.message not in str(body)
    else:
        assert body["detail"] == error.message


# -- the current models: a track heard while it is generated ----------------------------------


@pytest.fixture(scope="module")
def paced_emu() -> Iterator[Emulator]:
    """An emulator that takes 1 s per generation and streams it over that second."""
    config = EmulatorConfig(timings=Timings(generate=1.0), limits=Limits.off(),
                            generate_audio_bytes=160_000)
    with Emulator(config) as emu:
        yield emu


async def test_listen_plays_a_track_while_it_is_generated(paced_emu: Emulator,
                                                          tmp_path: Path) -> None:
    paced_emu.reset()
    with serve(paced_emu, tmp_path) as served:
        async with client(served) as http, http.stream(
                "GET", "/listen", params={"prompt": "dream pop, hazy", "instrumental": "true"}
        ) as audio:
            assert audio.status_code == 200
            assert audio.headers["content-type"] == "audio/mpeg"
            chunks = aiter(audio.aiter_raw())
            first = await anext(chunks)
            # the first audio is here while the service is still generating the song
            assert paced_emu.app.state.in_flight[KEY] == 1
            data = first + b"".join([chunk async for chunk in chunks])
            (job,) = served.music.songs.values()
            view = await until(http, f"/songs/{job.id}", finished)
        assert view["status"] == "done"
        assert view["result"]["bytes"] == len(data)
        assert view["result"]["time_to_first_audio"] > 0
        song = mutagen.File(io.BytesIO(data))
        assert song is not None and song.info.length > 1
        assert list(served.songs.iterdir()) == []
    assert paced_emu.counters.paid(operation="minimax.generate") == 1


async def test_tracks_live_and_to_a_file(emulator: Emulator, tmp_path: Path) -> None:
    with serve(emulator, tmp_path) as served:
        async with client(served) as http:
            live = (await http.post("/tracks", json={"prompt": "city pop",
                                                     "lyrics": "[Verse]\nneon rain"})).json()
            assert (live["status"], live["delivery"]) == ("ready", "live")
            played = await http.get(live["audio_url"])
            assert played.status_code == 200 and len(played.content) > 1000
            stored = (await http.post("/tracks", json={
                "prompt": "lo-fi", "is_instrumental": True, "format": "wav",
                "delivery": "file", "model": "music-2.6-free"})).json()
            body = await until(http, f"/songs/{stored['id']}", finished)
            assert body["status"] == "done"
            assert body["result"]["time_to_first_audio"] is not None  # written as streamed
            audio = await http.get(body["audio_url"])
            assert audio.headers["content-type"] == "audio/wav"
            assert hashlib.sha256(audio.content).hexdigest() == body["result"]["sha256"]
            # the library's checks answer before anything is paid: 422 in its own words
            refused = await http.get("/listen", params={"prompt": "no lyrics"})
            assert refused.status_code == 422 and refused.json()["field"] == "lyrics"
            assert (await http.get("/listen", params={"prompt": ""})).status_code == 422
    assert emulator.counters.paid(operation="minimax.generate") == 2
