"""Real Redis and PostgreSQL servers (and a real browser) for the tests that need them.

``.ci/run`` starts both servers on loopback and exports their URLs as ``AIOMUSIC_TEST_REDIS_URL``
and ``AIOMUSIC_TEST_POSTGRES_URL``; it also installs Debian's Chromium for the browser test.
Locally a test that needs something that is absent is skipped with the reason
(:func:`unavailable`); when ``CI=true`` it fails instead, so a missing install step in CI can
never pass green.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import pytest

REDIS_ENV = "AIOMUSIC_TEST_REDIS_URL"
POSTGRES_ENV = "AIOMUSIC_TEST_POSTGRES_URL"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def require(env: str, what: str, probe: Callable[[str], None]) -> str:
    """The URL of a running server from ``env``; skip (or fail on CI) when there is none."""
    url = os.environ.get(env, "").strip()
    reason = None
    if not url:
        reason = f"no {what} for this test: set {env} (.ci/run starts one)"
    else:
        try:
            probe(url)
        except Exception as exc:  # noqa: BLE001 - any failure means: no usable server
            reason = f"{what} at {env} does not answer: {type(exc).__name__}: {exc}"
    if reason is not None:
        unavailable(reason)
    return url


def unavailable(reason: str) -> NoReturn:
    """Skip the test with ``reason``, or fail it when ``CI=true``."""
    if in_ci():
        pytest.fail(f"{reason}; CI=true, so this is a failure, not a skip", pytrace=False)
    pytest.skip(reason)


def _ping_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


def _ping_postgres(url: str) -> None:
    import psycopg

    with psycopg.connect(url, connect_timeout=2) as conn:
        conn.execute("SELECT 1")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A running Redis (``AIOMUSIC_TEST_REDIS_URL``)."""
    return require(REDIS_ENV, "Redis server", _ping_redis)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A running PostgreSQL (``AIOMUSIC_TEST_POSTGRES_URL``)."""
    return require(POSTGRES_ENV, "PostgreSQL server", _ping_postgres)


class Proxy:
    """A loopback TCP proxy to a server that the test can cut (``down()``) and restore
    (``up()``): the server as the client sees it when its network or the server fails."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._up = True
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def url(self, template: str) -> str:
        """``template`` (a URL of the real server) pointed at this proxy."""
        parts = urlsplit(template)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth + '@' if auth else ''}127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass  # the other side went away
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def down(self) -> None:
        """Drop every connection and refuse new ones."""
        self._up = False
        with self._lock:
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._open.clear()

    def up(self) -> None:
        self._up = True

    def close(self) -> None:
        self.down()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self._listener.close()
        self._thread.join(timeout=5)
