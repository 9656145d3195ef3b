"""Helpers shared by the reliability tests: the invariants every outcome must keep.

The checks here are what DESIGN.md's invariants mean for one finished (or cancelled) call:
no busy pooled connection, no lane permit held, no lane left paused, no temporary file beside
a destination and no spooled upload left in the system's temporary folder.
"""

from __future__ import annotations

import glob
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from aiomusic import MusicSession, RetryPolicy
from aiomusic.callbacks import CallbackReceiver
from aiomusic.emulator import EmulatorConfig, Limits, Timings

from .conftest import make_wav

#: Retries that wait (almost) nothing, so a fault costs no time.
FAST = RetryPolicy(base_delay=0.001, max_delay=0.005, maintenance_delay=0.001)

#: An emulator that waits for nothing and sends small answers in several pieces.
FAST_CONFIG = EmulatorConfig(
    timings=Timings(generate=0, upload=0, suno_text=0, suno_first=0, suno_complete=0,
                    slow_drip_interval=0.002, slow_drip_pieces=5),
    limits=Limits.off(),
    track_seconds=(1.0, 1.5),
    generate_audio_bytes=12_000,
    hex_chunk_bytes=2048,
)

#: A reference track music-01 accepts (more than 10 s), kept small by a low sample rate.
REFERENCE = make_wav(10.5, rate=4000)
#: A vocal stem for Suno (any length is accepted).
STEM = make_wav(1.0, rate=4000)
LYRICS = "##Side by side, through thick and thin,\n\nFriends forever, me and you!##"
SUNO_ARGS: dict[str, Any] = {"title": "Relaxing Piano", "tags": "piano, ambient",
                             "negative_tags": "metal"}
NOWHERE = "http://127.0.0.1:9/no-op"


def busy_connections(session: MusicSession) -> list[Any]:
    """Pooled connections still checked out (or requests still queued) in the session."""
    client = session._client
    assert client is not None
    pool = client._transport._pool  # type: ignore[attr-defined]
    busy = [c for c in pool.connections if not (c.is_idle() or c.is_closed())]
    return busy + list(pool._requests)


def held_lanes(session: MusicSession) -> dict[str, tuple[int, float]]:
    """Lanes that still hold a permit or are paused: name -> (in flight, pause left)."""
    return {lane.name: (lane.in_flight, lane.paused_for)
            for lane in session._lanes.values() if lane.in_flight or lane.paused_for}


def spooled_uploads(folder: Path | None = None) -> set[str]:
    """Temporary copies of async-iterable upload sources (in the temporary folder)."""
    where = tempfile.gettempdir() if folder is None else str(folder)
    return set(glob.glob(os.path.join(where, "aiomusic-*.upload")))


def partial_files(folder: Path) -> list[str]:
    """Temporary files of unfinished atomic writes in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def assert_released(session: MusicSession, *, paused_ok: bool = False) -> None:
    """No connection checked out and no permit held (nor, unless allowed, a pause)."""
    assert busy_connections(session) == []
    held = held_lanes(session)
    if paused_ok:
        held = {name: v for name, v in held.items() if v[0]}
    assert held == {}


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on 127.0.0.1:<free port> (any test backend)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           lifespan="on", ws="none"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


class Switch:
    """An ASGI app whose target receiver each test replaces (one server per module)."""

    def __init__(self) -> None:
        self.target = CallbackReceiver()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.target(scope, receive, send)
