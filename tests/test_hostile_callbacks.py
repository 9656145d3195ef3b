"""Hostile callback clients: slow bodies, deep or huge JSON (issue 16).

The receiver runs under a real uvicorn on loopback and the hostile clients are raw sockets,
because a body trickled one byte at a time is what an in-process transport cannot show.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest

from aiomusic import CallbackType
from aiomusic.callbacks import CallbackReceiver

from .hostile import slow_client
from .reliability_helpers import serve

pytestmark = pytest.mark.anyio
TOKEN = "t" * 32
BODY = json.dumps({"code": 200, "msg": "ok", "data": {
    "callbackType": "complete", "task_id": "task-1",
    "data": [{"id": "a", "audio_url": "https://cdn.example/a.mp3"}]}}).encode()


def answer_of(sock: socket.socket, *, wait: float = 20.0) -> bytes:
    """What the server answered (until it closes, or ``wait`` seconds pass)."""
    sock.settimeout(wait)
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return got


def test_a_slow_body_is_cut_off_with_408() -> None:
    """Finding: 30 of 30 clients sending 1 byte/s were held open for as long as they liked."""
    receiver = CallbackReceiver(TOKEN, body_timeout=0.5)
    with serve(receiver) as url:
        clients = [slow_client(f"{url}/{TOKEN}", BODY, interval=0.2) for _ in range(5)]
        socks = [c.__enter__() for c in clients]
        try:
            answers = [answer_of(sock) for sock in socks]
        finally:
            for client in clients:
                client.__exit__(None, None, None)
    for got in answers:
        assert got.startswith(b"HTTP/1.1 408"), got[:80]
    assert receiver.refused == 5 and receiver.accepted == 0


def test_a_body_in_time_is_taken() -> None:
    receiver = CallbackReceiver(TOKEN, body_timeout=30)
    with serve(receiver) as url, slow_client(f"{url}/{TOKEN}", BODY, interval=0) as sock:
        got = answer_of(sock, wait=10)
    assert got.startswith(b"HTTP/1.1 200")
    event = receiver.latest("task-1")
    assert event is not None and event.callback_type is CallbackType.COMPLETE


async def post(receiver: CallbackReceiver, body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver),
                                 base_url="http://testserver") as client:
        return await client.post(f"/{TOKEN}", content=body)


@pytest.mark.parametrize(("body", "status"), [
    pytest.param(b'{"code": 200, "data": ' + b"[" * 100 + b"]" * 100 + b"}", 400,
                 id="deep"),
    pytest.param(b'{"code": 200, "data": ' + b"[" * 300_000 + b"]" * 300_000 + b"}", 413,
                 id="deep-and-large"),
    pytest.param(b"\xff\xfe\xfd", 400, id="not-utf"),
    pytest.param(b'{"code": "200", "data": {"callbackType": "complete", "task_id": "t", '
                 b'"data": [{"id": "a", "duration": "12.5"}]}}', 200, id="numbers-as-text"),
])
async def test_callback_bodies_end_in_an_answer_never_a_crash(body: bytes, status: int) -> None:
    receiver = CallbackReceiver(TOKEN)
    got = await post(receiver, body)
    assert got.status_code == status


async def test_depth_and_deadline_are_settable() -> None:
    receiver = CallbackReceiver(TOKEN, max_depth=4)
    got = await post(receiver, BODY)  # body > data > list > track: 4 levels
    assert got.status_code == 200
    shallow = CallbackReceiver(TOKEN, max_depth=4)
    deeper = json.loads(BODY)
    deeper["data"]["data"][0]["extra"] = {"x": [1]}
    assert (await post(shallow, json.dumps(deeper).encode())).status_code == 400
    for bad in ({"body_timeout": 0}, {"body_timeout": float("nan")}, {"max_depth": 2}):
        kwargs: dict[str, Any] = bad
        with pytest.raises(ValueError, match=r"body_timeout|max_depth"):
            CallbackReceiver(TOKEN, **kwargs)
