"""`Emulator`: the ASGI app served by uvicorn in a background thread."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from types import TracebackType

import anyio
import attrs
import uvicorn

from ._app import EmulatorApp
from ._config import EmulatorConfig, Faults, Limits
from ._state import Counters

__all__ = ["Emulator"]


class _ShutdownNoise(logging.Filter):
    """Drops what uvicorn logs when it stops with requests in flight (a client was stopped
    mid-request, e.g. by Ctrl-C): "Cancel N running task(s)" and the cancelled handlers'
    tracebacks. Real errors still show."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Cancel ") and "graceful shutdown" in \
                record.getMessage():
            return False
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, asyncio.CancelledError)


_QUIET = _ShutdownNoise()


class Emulator:
    """A running local emulator of the AI/ML API, MiniMax and Suno.

    Use it as a context manager, sync or async::

        with Emulator() as emu:
            print(emu.url)  # http://127.0.0.1:54321

    Args:
        config: what to do differently from the defaults.
        host: interface to bind (loopback by default).
        port: 0 picks a free port.
        admin_token: required on the admin paths (``/_emulator/...``); overrides the config's.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_token: str | None = None,
    ) -> None:
        if admin_token is not None:
            config = attrs.evolve(config or EmulatorConfig(), admin_token=admin_token)
        self.app = EmulatorApp(config)
        self._host, self._port = host, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def __repr__(self) -> str:
        return f"<Emulator url={self.url if self._sock else None!r}>"

    @property
    def config(self) -> EmulatorConfig:
        return self.app.config

    @property
    def url(self) -> str:
        """Base URL of every service, e.g. ``http://127.0.0.1:54321``."""
        if self._sock is None:
            raise RuntimeError("the emulator is not running")
        host, port = self._sock.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def counters(self) -> Counters:
        """A snapshot of what happened so far."""
        with self.app.state.lock:
            return self.app.state.counters.copy()

    def inject(self, fault: str, *, operation: str = "", count: int = 1) -> None:
        """Hit the next `count` requests of `operation` (or a prefix like "suno") with `fault`."""
        self.app.faults.inject(fault, operation=operation, count=count)

    def set_faults(self, faults: Faults) -> None:
        """Replace the random fault rates (the random stream restarts from its seed)."""
        self.app.set_faults(faults)

    def set_limits(self, limits: Limits) -> None:
        """Replace the limits (the rate windows start empty)."""
        self.app.set_limits(limits)

    def set_credits(self, credits: int, *, key: str) -> None:
        """Set the Suno credits left for one key."""
        with self.app.state.lock:
            self.app.state.credits[key] = credits

    def reset(self) -> None:
        """Back to the config: forget uploads, tasks, counters, credits, injected faults,
        rate windows, and undo `set_faults` / `set_limits`."""
        self.app.reset()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Emulator:
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        sock = socket.socket(socket.AF_INET6 if ":" in self._host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit TCP_NODELAY: headers and body go out as separate writes.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self._host, self._port))
        sock.listen(2048)
        sock.setblocking(False)
        config = uvicorn.Config(
            self.app,
            lifespan="on",
            access_log=False,
            log_level="warning",
            backlog=2048,
            timeout_graceful_shutdown=1,
            ws="none",
            timeout_keep_alive=30,
        )
        uvicorn_errors = logging.getLogger("uvicorn.error")  # configured by uvicorn.Config
        if _QUIET not in uvicorn_errors.filters:
            uvicorn_errors.addFilter(_QUIET)
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="aiomusic-emulator", daemon=True
        )
        self._sock, self._server, self._thread = sock, server, thread
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the emulator failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving and join the server thread."""
        server, thread, sock = self._server, self._thread, self._sock
        self._server = self._thread = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=10)
        if sock is not None:
            sock.close()
        self._sock = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Emulator:
        return await anyio.to_thread.run_sync(self.start)

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await anyio.to_thread.run_sync(self.stop)

    def run_forever(self) -> None:
        """Serve until interrupted (the CLI); starts the server if needed."""
        if self._thread is None:
            self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()
