"""Suno callbacks: parsing, the ASGI receiver, and tasks woken by callbacks over loopback."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiomusic import (
    CallbackEvent,
    CallbackType,
    MusicSession,
    ResponseError,
    RetryPolicy,
    TaskFailedError,
    TaskStatus,
)
from aiomusic.callbacks import CallbackReceiver, parse_callback
from aiomusic.emulator import Emulator
from aiomusic.suno._tasks import PollSchedule

from .conftest import make_wav
from .reliability_helpers import serve

pytestmark = pytest.mark.anyio
KEY = "sk-suno-test"
TOKEN = "test-token-0123456789abcdef"
ARGS = {"title": "Iron Man", "tags": "electrifying, rock", "negative_tags": "jazz"}
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05)
NEVER = PollSchedule(initial=3600, maximum=3600, jitter=0)  # callbacks only: no poll in time
TINY = PollSchedule(initial=0.005, maximum=0.02)

# -- the documented example bodies (docs.sunoapi.org, Add Instrumental callbacks) ---------------

COMPLETE = {
    "code": 200,
    "msg": "All generated successfully.",
    "data": {
        "callbackType": "complete",
        "task_id": "2fac****9f72",
        "data": [
            {
                "id": "e231****-****-****-****-****8cadc7dc",
                "audio_url": "https://example.cn/****.mp3",
                "source_audio_url": "https://example.cn/****.mp3",
                "stream_audio_url": "https://example.cn/****",
                "source_stream_audio_url": "https://example.cn/****",
                "image_url": "https://example.cn/****.jpeg",
                "source_image_url": "https://example.cn/****.jpeg",
                "prompt": "[Verse] Night city lights shining bright",
                "model_name": "chirp-v3-5",
                "title": "Iron Man",
                "tags": "electrifying, rock",
                "createTime": "2025-01-01 00:00:00",
                "duration": 198.44,
            },
            {
                "id": "bd15****1873",
                "audio_url": "https://example.cn/****.mp3",
                "source_audio_url": "https://example.cn/****.mp3",
                "stream_audio_url": "https://example.cn/****",
                "source_stream_audio_url": "https://example.cn/****",
                "image_url": "https://example.cn/****.jpeg",
                "source_image_url": "https://example.cn/****.jpeg",
                "prompt": "[Verse] Night city lights shining bright",
                "model_name": "chirp-v3-5",
                "title": "Iron Man",
                "tags": "electrifying, rock",
                "createTime": 1735689600000,
                "duration": 228.28,
            },
        ],
    },
}
ERROR = {"code": 501, "msg": "Audio generation failed.",
         "data": {"callbackType": "error", "task_id": "2fac****9f72", "data": None}}
TEXT = {"code": 200, "msg": "Text generation completed.",
        "data": {"callbackType": "text", "task_id": "2fac****9f72", "data": []}}


def test_parse_documented_complete_body() -> None:
    event = parse_callback(json.dumps(COMPLETE).encode())
    assert event.task_id == "2fac****9f72" and event.callback_type is CallbackType.COMPLETE
    assert event.code == 200 and event.msg == "All generated successfully."
    first, second = event.tracks
    assert first.audio_url == "https://example.cn/****.mp3"
    assert first.model_name == "chirp-v3-5" and first.duration == 198.44
    both = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    assert first.create_time == second.create_time == both  # both createTime forms
    assert parse_callback(COMPLETE) == event  # an already-decoded mapping too
    assert parse_callback(json.dumps(COMPLETE)) == event


def test_parse_error_text_and_unknown_fields() -> None:
    error = parse_callback(ERROR)
    assert error.callback_type is CallbackType.ERROR and error.tracks == ()
    assert error.code == 501
    text = parse_callback(TEXT)
    assert text.callback_type is CallbackType.TEXT and text.tracks == ()
    extra = json.loads(json.dumps(COMPLETE))
    extra["new_top"] = {"x": 1}
    extra["data"]["newField"] = [1, 2]
    extra["data"]["data"][0]["brand_new"] = "ignored"
    extra["data"]["error"] = "ignored too"
    assert parse_callback(extra).tracks == parse_callback(COMPLETE).tracks


@pytest.mark.parametrize("body", [
    pytest.param(b"", id="empty"),
    pytest.param(b"{not json", id="not-json"),
    pytest.param(b"\xff\xfe", id="not-utf8"),
    pytest.param(b"[1, 2]", id="array"),
    pytest.param(b'{"code": 200}', id="no-data"),
    pytest.param(b'{"data": {"callbackType": "complete"}}', id="no-task"),
    pytest.param(b'{"data": {"task_id": "t"}}', id="no-type"),
    pytest.param(b'{"data": {"task_id": "t", "callbackType": "weird"}}', id="bad-type"),
    pytest.param(b'{"data": {"task_id": "t", "callbackType": "first", "data": {}}}',
                 id="items-not-list"),
    pytest.param(b'{"data": {"task_id": "t", "callbackType": "first", "data": [{}]}}',
                 id="item-no-id"),
    pytest.param(b'{"data": {"task_id": "t", "callbackType": "first", '
                 b'"data": [{"id": "a", "createTime": "yesterday"}]}}', id="bad-time"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep"),
])
def test_malformed_bodies_are_response_errors(body: bytes) -> None:
    with pytest.raises(ResponseError):
        parse_callback(body)


def test_parse_rejects_other_types() -> None:
    with pytest.raises(TypeError):
        parse_callback(42)  # type: ignore[arg-type]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=20)
_ITEM = st.dictionaries(
    st.sampled_from(["id", "audio_url", "audioUrl", "duration", "createTime", "title", "x"]),
    _JSON, max_size=6)
_BODY = st.fixed_dictionaries({
    "code": _JSON,
    "msg": _JSON,
    "data": st.one_of(_JSON, st.fixed_dictionaries({
        "callbackType": st.one_of(st.sampled_from(["text", "first", "complete", "error"]),
                                  _JSON),
        "task_id": st.one_of(st.text(max_size=10), _JSON),
        "data": st.one_of(st.lists(_ITEM, max_size=3), _JSON),
    })),
})


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(body=st.one_of(_BODY, _JSON))
def test_parse_never_raises_anything_but_response_error(body: Any) -> None:
    forms: list[Any] = [json.dumps(body), *([body] if isinstance(body, dict) else [])]
    for form in forms:
        try:
            event = parse_callback(form)
        except ResponseError:
            continue
        assert isinstance(event, CallbackEvent) and event.task_id


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=200))
def test_parse_random_bytes(raw: bytes) -> None:
    with contextlib.suppress(ResponseError):
        parse_callback(raw)


# -- the receiver as a bare ASGI app -----------------------------------------------------------


def test_receiver_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="token"):
        CallbackReceiver("short")
    with pytest.raises(ValueError, match="token"):
        CallbackReceiver("has/a/slash-and-is-long-enough")
    with pytest.raises(ValueError):
        CallbackReceiver(max_body_bytes=10)
    receiver = CallbackReceiver()
    assert receiver.callback_url("https://example.com/cb/").startswith("https://example.com/cb/")
    assert len(receiver.callback_url("https://e.com").rsplit("/", 1)[1]) >= 32
    with pytest.raises(ValueError):
        receiver.callback_url("example.com")
    assert TOKEN not in repr(CallbackReceiver(TOKEN))


class Chunks:
    """``count`` pieces of 1000 bytes, as an async iterator."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __aiter__(self) -> Chunks:
        return self

    async def __anext__(self) -> bytes:
        if not self.count:
            raise StopAsyncIteration
        self.count -= 1
        return b"y" * 1000


@asynccontextmanager
async def asgi_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as client:
        yield client


async def test_receiver_answers_without_raising() -> None:
    hooked: list[CallbackEvent] = []

    def hook(event: CallbackEvent) -> None:
        hooked.append(event)
        raise RuntimeError("a broken hook must not fail the delivery")

    receiver = CallbackReceiver(TOKEN, max_body_bytes=2048, on_event=hook)
    async with asgi_client(receiver) as client:
        assert (await client.post(f"/{TOKEN}x", json=TEXT)).status_code == 404
        assert (await client.post("/", json=TEXT)).status_code == 404
        assert (await client.post(f"/{TOKEN[:-1]}", json=TEXT)).status_code == 404
        got = await client.get(f"/{TOKEN}")
        assert got.status_code == 405 and got.headers["allow"] == "POST"
        assert (await client.post(f"/{TOKEN}", content=b"{bad")).status_code == 400
        assert (await client.post(f"/{TOKEN}", content=b"x" * 4096)).status_code == 413

        # no Content-Length: counted as it comes (an iterator, not a generator, since the
        # receiver stops reading it early)
        assert (await client.post(f"/{TOKEN}", content=Chunks(5))).status_code == 413
        ok = await client.post(f"/{TOKEN}/", json=TEXT)
        assert ok.status_code == 200 and ok.json()["code"] == 200
        assert (await client.post(f"/{TOKEN}", json=TEXT)).status_code == 200  # duplicate
        assert (await client.post(f"/{TOKEN}", json=ERROR)).status_code == 200
        assert (await client.post(f"/{TOKEN}", json=TEXT)).status_code == 200  # stale
    assert receiver.refused == 7 and receiver.accepted == 2 and receiver.ignored == 2
    assert [e.callback_type for e in hooked] == [CallbackType.TEXT, CallbackType.ERROR]
    latest = receiver.latest("2fac****9f72")
    assert latest is not None and latest.callback_type is CallbackType.ERROR
    assert receiver.latest("other") is None


async def test_receiver_forgets_oldest_tasks_and_ignores_other_scopes() -> None:
    receiver = CallbackReceiver(TOKEN, max_tasks=2)
    for name in ("a", "b", "c"):
        body = json.loads(json.dumps(TEXT))
        body["data"]["task_id"] = name
        assert receiver.record(parse_callback(body))
    assert receiver.latest("a") is None and receiver.latest("c") is not None
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"} if not sent else {"type": "lifespan.shutdown"}

    async def send(message: Any) -> None:
        sent.append(message)

    await receiver({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete",
                                         "lifespan.shutdown.complete"]
    await receiver({"type": "websocket"}, receive, send)  # ignored
    assert len(sent) == 2


# -- mounted in a FastAPI app served by uvicorn, with the emulator calling back ---------------


class Switch:
    """The app mounted once per module; each test plugs in a fresh receiver."""

    def __init__(self) -> None:
        self.target: CallbackReceiver = CallbackReceiver(TOKEN)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.target(scope, receive, send)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Switch, str]]:
    switch = Switch()
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    app.mount("/suno/callbacks", switch)
    with serve(app) as url:
        yield switch, f"{url}/suno/callbacks"


@pytest.fixture
def app_server(server: tuple[Switch, str]) -> tuple[CallbackReceiver, str]:
    """A fresh receiver with a fresh token per test.

    The emulator may still be posting callbacks for an earlier test's tasks; with their old
    token those are refused, as a real receiver refuses callbacks it did not ask for.
    """
    switch, public = server
    switch.target = CallbackReceiver(f"{TOKEN}-{secrets.token_hex(8)}")
    return switch.target, public


def session(emulator: Emulator, receiver: CallbackReceiver | None = None,
            public: str | None = None) -> MusicSession:
    s = MusicSession(suno_key=KEY, base_url=emulator.url, allow_http_hosts=("127.0.0.1",),
                     retry=FAST)
    if receiver is not None and public is not None:
        s.suno.attach_receiver(receiver, public)
    return s


async def source_url(s: MusicSession) -> str:
    return (await s.suno.upload(make_wav(3.0))).download_url


async def test_callbacks_only(emulator: Emulator,
                              app_server: tuple[CallbackReceiver, str]) -> None:
    receiver, public = app_server
    async with session(emulator, receiver, public) as s:
        assert s.suno.receiver is receiver
        task = await s.suno.add_instrumental(await source_url(s), **ARGS)
        seen = [status async for status in task.watch(timeout=20, poll=NEVER)]
        result = await task.wait(timeout=20, poll=NEVER)
    # learnt by callback, but only record-info decides that it succeeded and which URLs to
    # fetch: one confirmation, no polling otherwise (callbacks are hints)
    assert result.source == "callback" and result.record is not None
    assert result.record.status is TaskStatus.SUCCESS
    assert seen[0] is TaskStatus.PENDING and seen[-1] is TaskStatus.SUCCESS
    assert [t.audio_url for t in result.tracks] and all(t.audio_url for t in result.tracks)
    assert [t.audio_url for t in result.tracks] == [t.audio_url for t in result.record.tracks]
    assert emulator.counters.requests["/api/v1/generate/record-info"] == 1
    param = emulator.app.state.tasks[task.task_id].param
    assert param["callBackUrl"] == receiver.callback_url(public)


async def test_callbacks_and_polling_race(emulator: Emulator,
                                          app_server: tuple[CallbackReceiver, str]) -> None:
    receiver, public = app_server
    async with session(emulator, receiver, public) as s:
        url = await source_url(s)
        tasks = [await s.suno.add_instrumental(url, **ARGS) for _ in range(4)]
        results: dict[str, set[str]] = {}

        async def follow(index: int) -> None:
            statuses = [st.value async for st in tasks[index].watch(timeout=20, poll=TINY)]
            result = await tasks[index].wait(poll=TINY)
            assert statuses[-1] == "SUCCESS" and len(result.tracks) == 2
            results.setdefault(result.source, set()).add(tasks[index].task_id)

        async with anyio.create_task_group() as group:
            for i in range(len(tasks)):
                group.start_soon(follow, i)
    assert sum(len(v) for v in results.values()) == 4
    assert set(results) <= {"poll", "callback"}


async def test_duplicate_callbacks_are_harmless(emulator: Emulator,
                                                app_server: tuple[CallbackReceiver, str]
                                                ) -> None:
    receiver, public = app_server
    async with session(emulator, receiver, public) as s:
        url = await source_url(s)
        emulator.inject("callback_duplicate", operation="suno.callback", count=3)
        task = await s.suno.add_instrumental(url, **ARGS)
        result = await task.wait(timeout=20, poll=NEVER)
        with anyio.fail_after(10):  # the emulator posts the last copy right after
            while receiver.ignored < 3:
                await anyio.sleep(0.01)
    assert result.source == "callback" and len(result.tracks) == 2
    assert receiver.accepted == 3 and receiver.ignored == 3
    assert emulator.counters.fired("callback_duplicate") == 3


async def test_error_callback_raises_task_failed(emulator: Emulator,
                                                 app_server: tuple[CallbackReceiver, str]
                                                 ) -> None:
    receiver, public = app_server
    async with session(emulator, receiver, public) as s:
        url = await source_url(s)
        emulator.inject("generate_audio_failed", operation="suno.add_instrumental")
        task = await s.suno.add_instrumental(url, **ARGS)
        with pytest.raises(TaskFailedError) as caught:
            await task.wait(timeout=20, poll=NEVER)
    # the callback does not name the status: one record-info look-up does
    assert caught.value.status == "GENERATE_AUDIO_FAILED" and caught.value.error_code == 501
    assert emulator.counters.requests["/api/v1/generate/record-info"] == 1


async def test_error_callback_trusted_when_record_info_disagrees(
        emulator: Emulator, app_server: tuple[CallbackReceiver, str]) -> None:
    receiver, public = app_server
    async with session(emulator, receiver, public) as s:
        task = s.suno.task("made-up-task")
        task._immediate = False  # as if just submitted: no look-up before the callback
        body = json.loads(json.dumps(ERROR))
        body["data"]["task_id"] = "made-up-task"
        async with httpx.AsyncClient() as client:
            assert (await client.post(receiver.callback_url(public), json=body)
                    ).status_code == 200
        with pytest.raises(TaskFailedError) as caught:
            await task.wait(timeout=20, poll=NEVER)
    assert caught.value.status == "error" and caught.value.error_code == 501
    assert caught.value.error_message == "Audio generation failed."
