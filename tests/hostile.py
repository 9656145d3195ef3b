"""A small hostile HTTP server of the tests' own: it answers exactly the bytes a test scripts.

Not the emulator: the emulator speaks the services' contracts, and these tests need answers no
contract allows (a body shorter than its Content-Length, gzip despite ``identity``, an HTML page
served as ``audio/mpeg``, a body trickled one byte at a time). It runs in a thread on
127.0.0.1:<free port>, so it works whatever async backend the test uses.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import attrs


@attrs.define
class Answer:
    """What the server does for one request: send ``head`` and ``body`` (split into ``pieces``
    with ``pause`` seconds between them), then close the connection if ``close``."""

    status: int = 200
    headers: dict[str, str] = attrs.Factory(dict)
    body: bytes = b""
    length: int | None = None  # the Content-Length to announce (default: the body's)
    pieces: int = 1
    pause: float = 0.0
    close: bool = True

    def head(self) -> bytes:
        headers = {"Content-Length": str(len(self.body) if self.length is None else self.length),
                   **self.headers}
        lines = [f"HTTP/1.1 {self.status} X", *(f"{k}: {v}" for k, v in headers.items()),
                 "Connection: close" if self.close else "Connection: keep-alive", "", ""]
        return "\r\n".join(lines).encode("latin-1")


Script = Callable[[str, dict[str, str]], Answer]


@attrs.define
class Hostile:
    """The running server: its base URL and the requests it saw (path, headers)."""

    url: str
    port: int
    seen: list[tuple[str, dict[str, str]]]


class _Handler(socketserver.StreamRequestHandler):
    script: Script
    seen: list[tuple[str, dict[str, str]]]

    def handle(self) -> None:
        while True:
            line = self.rfile.readline(65536)
            if not line:
                return
            path = line.split()[1].decode() if len(line.split()) > 1 else "/"
            headers: dict[str, str] = {}
            while (header := self.rfile.readline(65536)) not in (b"\r\n", b"\n", b""):
                name, _, value = header.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            self.seen.append((path, headers))
            answer = self.script(path, headers)
            try:
                self.wfile.write(answer.head())
                size = max(1, -(-len(answer.body) // answer.pieces))
                for start in range(0, len(answer.body), size):
                    if start and answer.pause:
                        time.sleep(answer.pause)
                    self.wfile.write(answer.body[start:start + size])
                    self.wfile.flush()
            except OSError:  # the client left
                return
            if answer.close:
                return


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


@contextmanager
def hostile_server(script: Script, *, host: str = "127.0.0.1", port: int = 0
                   ) -> Iterator[Hostile]:
    """Serve ``script`` on ``host``:``port`` (a free one by default) until the block ends."""
    seen: list[tuple[str, dict[str, str]]] = []
    handler = type("Handler", (_Handler,), {"script": staticmethod(script), "seen": seen})
    server = _Server((host, port), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        yield Hostile(url=f"http://{host}:{port}", port=port, seen=seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def slow_client(url: str, body: bytes, *, interval: float) -> Iterator[socket.socket]:
    """A client that sends a POST's head at once, then its body one byte per ``interval``
    from a thread, until the server answers or closes (the socket is yielded to read from)."""
    parsed = url.removeprefix("http://")
    hostport, _, path = parsed.partition("/")
    host, _, port = hostport.partition(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(f"POST /{path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json"
                 f"\r\nContent-Length: {len(body)}\r\n\r\n".encode())
    stop = threading.Event()

    def drip() -> None:
        for byte in body:
            if stop.wait(interval):
                return
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        yield sock
    finally:
        stop.set()
        thread.join(timeout=10)
        sock.close()
