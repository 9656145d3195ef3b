"""Raw ASGI helpers: the request view, JSON answers, and body faults on the wire."""

from __future__ import annotations

import hmac
import json
import socket
import struct
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

import anyio
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from ._config import Timings

__all__ = ["BODY_FAULTS", "Req", "abort", "admitted", "dumps", "send_body", "send_json"]

#: Faults that act on the answer's bytes (any operation).
BODY_FAULTS = (
    "reset_before_answer",
    "reset_mid_body",
    "truncated_body",
    "slow_drip",
    "malformed_json",
)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def admitted(req: Req, token: str | None) -> bool:
    """Whether ``req`` may use the admin paths: no token configured, or it carries the token
    (``Authorization: Bearer`` or ``X-Emulator-Admin-Token``), compared in constant time."""
    if token is None:
        return True
    given = req.headers.get("x-emulator-admin-token") or req.bearer or ""
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode())


class Req:
    """A thin view of one ASGI HTTP request."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope, self.receive, self.send = scope, receive, send
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.headers: dict[str, str] = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
        }
        self._body: bytes | None = None
        self.operation = ""

    @property
    def query(self) -> dict[str, str]:
        qs = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        return {k: v[0] for k, v in qs.items()}

    @property
    def base_url(self) -> str:
        host = self.headers.get("host")
        if not host:
            server = self.scope.get("server") or ("127.0.0.1", 80)
            host = f"{server[0]}:{server[1]}"
        return f"{self.scope.get('scheme', 'http')}://{host}"

    @property
    def bearer(self) -> str | None:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        token = token.strip()
        return token if scheme.lower() == "bearer" and token else None

    @property
    def is_form(self) -> bool:
        ctype = self.headers.get("content-type", "")
        return ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded"))

    async def body(self) -> bytes:
        if self._body is None:
            parts = []
            while True:
                msg = await self.receive()
                if msg["type"] == "http.disconnect":
                    break
                parts.append(msg.get("body", b""))
                if not msg.get("more_body"):
                    break
            self._body = b"".join(parts)
        return self._body

    async def json(self) -> Any:
        """The JSON body; raises ValueError when it is not JSON."""
        return json.loads(await self.body())

    async def form(self) -> FormData:
        return await Request(self.scope, self.receive).form(max_part_size=16 * 1024 * 1024)


def _cycle(send: Send) -> Any:
    # uvicorn's send is a bound method of its RequestResponseCycle, which holds the transport.
    return getattr(send, "__self__", None)


async def abort(send: Send, *, reset: bool) -> None:
    """End the connection now: RST when `reset`, else a clean FIN after buffered bytes."""
    cycle = _cycle(send)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("emulator fault: connection dropped")  # non-uvicorn servers
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()
    # Let connection_lost run so uvicorn knows the client is gone and stays quiet.
    with anyio.move_on_after(2):
        while not getattr(cycle, "disconnected", True):  # noqa: ASYNC110 - uvicorn has no event
            await anyio.sleep(0.005)


def _headers(ctype: str, length: int, extra: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    out = [(b"content-type", ctype.encode()), (b"content-length", str(length).encode())]
    out.extend((k.lower().encode(), v.encode("latin-1")) for k, v in extra.items())
    return out


async def send_body(
    send: Send,
    status: int,
    chunks: Iterable[bytes],
    length: int,
    *,
    content_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
    fault: str | None = None,
    timings: Timings | None = None,
) -> None:
    """Send an answer of `length` bytes from `chunks`, damaged as `fault` says."""
    if fault == "reset_before_answer":
        await abort(send, reset=True)
        return
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": _headers(content_type, length, headers or {}),
        }
    )
    if fault in ("reset_mid_body", "truncated_body"):
        await _send_prefix(send, chunks, max(1, length // 2))
        await abort(send, reset=fault == "reset_mid_body")
        return
    if fault == "slow_drip":
        t = timings or Timings()
        piece = max(1, -(-length // max(1, t.slow_drip_pieces)))
        async for part in _rechunk(chunks, piece):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await anyio.sleep(t.slow_drip_interval)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    for part in chunks:
        if part:
            await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _send_prefix(send: Send, chunks: Iterable[bytes], limit: int) -> None:
    sent = 0
    for part in chunks:
        part = part[: limit - sent]
        await send({"type": "http.response.body", "body": part, "more_body": True})
        sent += len(part)
        if sent >= limit:
            return


async def _rechunk(chunks: Iterable[bytes], size: int) -> AsyncIterator[bytes]:
    buf = bytearray()
    for part in chunks:
        buf += part
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


async def send_json(
    send: Send,
    obj: Any,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    fault: str | None = None,
    timings: Timings | None = None,
) -> None:
    """Send a JSON answer (malformed when `fault` is "malformed_json")."""
    body = dumps(obj)
    if fault == "malformed_json":
        body = body[: max(1, len(body) // 2)]
        fault = None
    await send_body(send, status, [body], len(body), headers=headers, fault=fault, timings=timings)
