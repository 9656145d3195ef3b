"""Suno callbacks: parse the bodies Suno POSTs to ``callBackUrl``, and receive them over ASGI.

`parse_callback()` turns a body (``{code, msg, data: {callbackType, task_id, data}}``, items
in snake_case, ``createTime`` as a string or epoch milliseconds) into a
[`CallbackEvent`][aiomusic.CallbackEvent], or raises [`ResponseError`][aiomusic.ResponseError].

`CallbackReceiver` is a plain ASGI app (no web framework needed) that mounts in FastAPI
or Starlette, or runs alone under any ASGI server::

    receiver = CallbackReceiver()                      # a random secret token
    app.mount("/suno/callbacks", receiver)             # FastAPI / Starlette
    url = session.suno.attach_receiver(receiver, "https://example.com/suno/callbacks")

Every submission of that session then passes ``url`` (which ends with the secret token) as
``callBackUrl``, and tasks waiting in any session attached to the receiver wake up as soon as a
callback arrives. The receiver answers at once (Suno gives up after 15 s), accepts only POSTs
whose path holds the token (compared in constant time), caps the body size and nesting depth,
cuts off a body that does not arrive within a deadline (408), answers 400 to a malformed body,
and is idempotent: duplicates and stages that arrive out of order are harmless.

The receiver reads the callbacks of every Suno endpoint (lyrics, WAV, stems, MIDI, videos too:
``aiomusic.suno._hooks``), keeps each task's most advanced one as a `TaskSnapshot` hint
(`snapshot()`), and wakes the tasks waiting for it. Pass ``verifier=WebhookVerifier(key)`` to
accept only callbacks signed the kie.ai way (off by default: sunoapi.org does not sign).
"""

from __future__ import annotations

import hmac
import json
import math
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import anyio
import anyio.lowlevel

from ._core._converter import structure
from ._core._errors import ResponseError
from ._core._json import JsonLimits, loads
from ._core._log import logger
from ._core._models import CallbackEvent, CallbackType
from ._core._task import TaskSnapshot
from ._core._webhook import WebhookVerifier

__all__ = ["CallbackReceiver", "WebhookVerifier", "parse_callback"]

#: A callback with two tracks is a few KiB; anything far larger is not from Suno.
DEFAULT_MAX_BODY = 256 * 1024
#: Seconds a client has to send the whole body; Suno sends a few KiB at once.
DEFAULT_BODY_TIMEOUT = 10.0
_TOKEN = re.compile(r"[A-Za-z0-9_\-.~]{16,256}")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def parse_callback(body: bytes | bytearray | memoryview | str | Mapping[str, Any], *,
                   limits: JsonLimits | None = None) -> CallbackEvent:
    """Parse one callback body (raw JSON or already decoded).

    Unknown fields are ignored; both ``createTime`` forms are read; numbers sent as strings
    are read as numbers.

    Args:
        body: The raw body, or the mapping a web framework decoded from it.
        limits: Bounds on a raw body (default: 256 KiB, 64 levels deep).

    Raises:
        ResponseError: the body is not JSON, too large or too deep, or not a Suno callback.
        TypeError: ``body`` is of another type.
    """
    if isinstance(body, bytes | bytearray | memoryview | str):
        data: object = loads(body, limits=limits or _CALLBACK_LIMITS, what="a Suno callback body")
    elif isinstance(body, Mapping):
        data = body
    else:
        raise TypeError(f"parse_callback() takes bytes, str or a mapping, "
                        f"not {type(body).__name__}")
    return structure(data, CallbackEvent, what="a Suno callback")


_CALLBACK_LIMITS = JsonLimits(max_bytes=DEFAULT_MAX_BODY)


def is_failure(event: CallbackEvent) -> bool:
    """Whether a callback reports a failed task (an ``error`` stage or a non-200 code)."""
    return event.callback_type is CallbackType.ERROR or event.code != 200


class _Waker:
    """Wakes one waiting task, from its own event loop or from any other thread."""

    def __init__(self) -> None:
        self._token = anyio.lowlevel.current_token()
        self._thread = threading.get_ident()
        self._event = anyio.Event()

    def reset(self) -> None:
        if self._event.is_set():
            self._event = anyio.Event()

    async def wait(self, seconds: float) -> None:
        with anyio.move_on_after(seconds):
            await self._event.wait()

    def _fire(self) -> None:
        self._event.set()

    def wake(self) -> None:
        if threading.get_ident() == self._thread:
            self._fire()
            return
        native = self._token.native_token
        try:
            call_soon = getattr(native, "call_soon_threadsafe", None)  # asyncio
            if call_soon is not None:
                call_soon(self._fire)
            else:
                native.run_sync_soon(self._fire)  # type: ignore[attr-defined]  # trio
        except RuntimeError:  # that loop has finished: nobody is waiting any more
            pass


class CallbackReceiver:
    """An ASGI app receiving Suno callbacks, and the place waiting tasks learn of them.

    Args:
        token: The secret part of the callback URL (16-256 URL-safe characters); a random
            one by default. Keep it stable across restarts if tasks outlive the process.
        max_body_bytes: Larger bodies are refused with 413.
        body_timeout: Seconds a client has to send the whole body; a slower one (a client
            trickling bytes to hold connections open) is answered 408 and cut off.
        max_depth: Deeper JSON nesting is refused with 400.
        max_tasks: How many tasks' latest callbacks are remembered (oldest forgotten first).
        on_event: Called with every new (not duplicate, not stale) callback of the generation
            family; it runs before the answer is sent, so it must be quick and must not block.
        verifier: Accept only callbacks it verifies (HMAC-signed, fresh); others get 401.
    """

    def __init__(self, token: str | None = None, *, max_body_bytes: int = DEFAULT_MAX_BODY,
                 body_timeout: float = DEFAULT_BODY_TIMEOUT, max_depth: int = 64,
                 max_tasks: int = 10_000,
                 on_event: Callable[[CallbackEvent], object] | None = None,
                 verifier: WebhookVerifier | None = None) -> None:
        token = secrets.token_urlsafe(32) if token is None else token
        given: object = token
        if not isinstance(given, str) or not _TOKEN.fullmatch(given):
            raise ValueError("token must be 16-256 URL-safe characters (letters, digits, "
                             "'-', '_', '.', '~'); omit it to get a random one")
        if max_body_bytes < 1024 or max_tasks < 1 or max_depth < 4:
            raise ValueError("max_body_bytes must be at least 1024, max_depth at least 4 and "
                             "max_tasks positive")
        if not math.isfinite(body_timeout) or body_timeout <= 0:
            raise ValueError(f"body_timeout must be a positive number of seconds, "
                             f"got {body_timeout!r}")
        self._token = token.encode()
        self.max_body_bytes = max_body_bytes
        self.body_timeout = float(body_timeout)
        self.limits = JsonLimits(max_bytes=max_body_bytes, max_depth=max_depth)
        self.max_tasks = max_tasks
        self.on_event = on_event
        self.verifier = verifier
        self._lock = threading.Lock()
        self._latest: OrderedDict[str, tuple[TaskSnapshot, CallbackEvent | None]] = \
            OrderedDict()
        self._waiters: dict[str, set[_Waker]] = {}
        self.accepted = 0
        """Callbacks that moved a task on."""
        self.ignored = 0
        """Duplicates and stale stages (answered 200, changed nothing)."""
        self.refused = 0
        """Requests answered 4xx (wrong token, method, size, body or a body too slow)."""

    def __repr__(self) -> str:
        return (f"<CallbackReceiver tasks={len(self._latest)} accepted={self.accepted} "
                f"ignored={self.ignored} refused={self.refused}>")

    def callback_url(self, public_base: str) -> str:
        """The ``callBackUrl`` to give Suno: where the receiver is mounted, plus the token.

        Args:
            public_base: The public URL of the mount point, e.g.
                ``"https://example.com/suno/callbacks"``.
        """
        if not public_base.startswith(("https://", "http://")):
            raise ValueError(f"public_base must be an absolute http(s) URL, got {public_base!r}")
        return f"{public_base.rstrip('/')}/{self._token.decode()}"

    # -- the store --------------------------------------------------------------------------

    def latest(self, task_id: str) -> CallbackEvent | None:
        """The most advanced generation-family callback received for ``task_id``, if any."""
        with self._lock:
            known = self._latest.get(task_id)
        return None if known is None else known[1]

    def snapshot(self, task_id: str) -> TaskSnapshot | None:
        """The most advanced callback of any endpoint received for ``task_id``, as a task
        snapshot (a hint: the status endpoint confirms it), if any."""
        with self._lock:
            known = self._latest.get(task_id)
        return None if known is None else known[0]

    def record(self, event: CallbackEvent | TaskSnapshot) -> bool:
        """Take in a callback (the ASGI app does this; call it if you parse bodies yourself).

        Returns:
            True if it moved the task on; False for a duplicate or an older stage.
        """
        from .suno._hooks import event_snapshot  # the suno package imports this module

        snapshot = event if isinstance(event, TaskSnapshot) else event_snapshot(event)
        with self._lock:
            known = self._latest.get(event.task_id)
            if known is not None and snapshot.rank <= known[0].rank:
                self.ignored += 1
                return False
            self._latest[event.task_id] = (snapshot, snapshot.record if isinstance(
                snapshot.record, CallbackEvent) else None)
            self._latest.move_to_end(event.task_id)
            while len(self._latest) > self.max_tasks:
                self._latest.popitem(last=False)
            waiters = tuple(self._waiters.get(event.task_id, ()))
            self.accepted += 1
        for waker in waiters:
            waker.wake()
        if self.on_event is not None and isinstance(event, CallbackEvent):
            try:
                self.on_event(event)
            except Exception:  # noqa: BLE001 - a user hook must not fail Suno's delivery
                logger.exception("CallbackReceiver on_event hook failed on %r", event)
        return True

    def _subscribe(self, task_id: str) -> _Waker:
        waker = _Waker()
        with self._lock:
            self._waiters.setdefault(task_id, set()).add(waker)
        return waker

    def _unsubscribe(self, task_id: str, waker: _Waker) -> None:
        with self._lock:
            waiters = self._waiters.get(task_id)
            if waiters is not None:
                waiters.discard(waker)
                if not waiters:
                    del self._waiters[task_id]

    # -- ASGI -------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope.get("path", "")
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        if not hmac.compare_digest(path.strip("/").encode("utf-8", "replace"), self._token):
            await self._answer(send, 404, "not found")
            return
        if scope.get("method") != "POST":
            await self._answer(send, 405, "use POST", extra=[(b"allow", b"POST")])
            return
        body: bytes | None = b""
        with anyio.move_on_after(self.body_timeout) as late:
            body = await self._read(scope, receive)
        if late.cancelled_caught:
            logger.info("cut off a Suno callback whose body took over %g s", self.body_timeout)
            await self._answer(send, 408, "body too slow", extra=[(b"connection", b"close")])
            return
        if body is None:
            await self._answer(send, 413, "body too large")
            return
        from .suno._hooks import route  # the suno package imports this module

        kind = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("kind", [None])[0]
        try:
            event, snapshot = route(loads(body, limits=self.limits,
                                          what="a Suno callback body"), kind)
        except ResponseError as exc:
            logger.info("refused a malformed Suno callback: %s", exc)
            await self._answer(send, 400, "malformed callback")
            return
        if self.verifier is not None:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                       for k, v in scope.get("headers", ())}
            problem = self.verifier.problem(snapshot.task_id, headers)
            if problem is not None:
                logger.info("refused a callback for task %s: %s", snapshot.task_id, problem)
                await self._answer(send, 401, "unverified callback")
                return
        self.record(event if event is not None else snapshot)
        await _send_json(send, 200, {"code": 200, "msg": "received"})

    async def _read(self, scope: Scope, receive: Receive) -> bytes | None:
        for name, value in scope.get("headers", ()):
            if name.lower() == b"content-length" and value.isdigit() and \
                    int(value) > self.max_body_bytes:
                return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client left; the answer goes nowhere
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)

    async def _answer(self, send: Send, status: int, msg: str,
                      extra: list[tuple[bytes, bytes]] | None = None) -> None:
        with self._lock:
            self.refused += 1
        await _send_json(send, status, {"code": status, "msg": msg}, extra)


async def _send_json(send: Send, status: int, body: Mapping[str, Any],
                     extra: list[tuple[bytes, bytes]] | None = None) -> None:
    raw = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
               *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
