"""A small hostile HTTP server of the tests' own: canned raw answers, counted requests.

Each answer is the exact bytes sent back (status line, headers, body), so a test can send what
no well-behaved server would: an HTML 502 from a gateway, a body shorter than its
``Content-Length``, an empty 200. Requests are read whole (by their ``Content-Length``) and
counted by path, so a test can assert that a paid request reached the server exactly once.
"""

from __future__ import annotations

import socketserver
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["Hostile", "html", "json_answer", "raw", "serve_hostile"]

Answer = Callable[[str, bytes], bytes]
"""(path, request body) -> the raw answer."""


def raw(status: str, body: bytes, *, content_type: str = "application/json",
        length: int | None = None, extra: str = "") -> bytes:
    """An HTTP/1.1 answer; ``length`` may lie about the body's size."""
    size = len(body) if length is None else length
    head = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {size}\r\n"
            f"{extra}Connection: close\r\n\r\n")
    return head.encode() + body


def html(status: str) -> bytes:
    """What a gateway in front of the service sends: an HTML page."""
    return raw(status, f"<html><body><h1>{status}</h1>nginx</body></html>".encode(),
               content_type="text/html")


def json_answer(status: str, text: str) -> bytes:
    return raw(status, text.encode())


class Hostile:
    """The running server: its URL, and the requests it received by path."""

    def __init__(self, url: str, requests: Counter[str], bodies: list[tuple[str, bytes]]
                 ) -> None:
        self.url = url
        self.requests = requests
        self.bodies = bodies


@contextmanager
def serve_hostile(answer: Answer) -> Iterator[Hostile]:
    """Serve ``answer`` on 127.0.0.1:<free port> in a thread."""
    requests: Counter[str] = Counter()
    bodies: list[tuple[str, bytes]] = []
    lock = threading.Lock()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline().decode("latin-1")
            if not line:
                return
            path = line.split(" ")[1].split("?")[0]
            length = 0
            while (header := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = header.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = self.rfile.read(length)
            with lock:
                requests[path] += 1
                bodies.append((path, body))
            self.wfile.write(answer(path, body))
            self.wfile.flush()

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Hostile(f"http://127.0.0.1:{server.server_address[1]}", requests, bodies)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
