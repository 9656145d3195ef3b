"""Shared fixtures. Async tests are marked ``pytest.mark.anyio`` and run on asyncio and trio."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


#: Where ``*.example`` names resolve in tests: a public address, as a real CDN's name would.
PUBLIC_ADDRESS = "93.184.215.14"


@pytest.fixture(autouse=True)
def public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Names under ``.example`` (RFC 2606: never real) resolve to a public address.

    Downloads resolve a URL's host before fetching it (the SSRF check), and the tests that
    answer through ``httpx.MockTransport`` or respx use such names; every other name (and
    ``localhost``) resolves for real.
    """
    import socket

    import anyio

    from aiomusic._core import _guard

    real = anyio.getaddrinfo

    async def resolve(host: object, port: object, **kwargs: object) -> object:
        if isinstance(host, str) and host.rstrip(".").endswith(".example"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_ADDRESS, port))]
        return await real(host, port, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_guard, "getaddrinfo", resolve)


# -- the emulator, shared by the client integration tests ----------------------------------

import io  # noqa: E402
import math  # noqa: E402
import struct  # noqa: E402
import wave  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

from aiomusic.emulator import Emulator, EmulatorConfig, Faults, Limits, Timings  # noqa: E402


def make_wav(seconds: float, *, rate: int = 8000) -> bytes:
    """A mono 16-bit WAV of a 440 Hz tone, small enough for tests."""
    frames = int(seconds * rate)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i * 0.3454)))
                               for i in range(frames)))
    return buf.getvalue()


def make_flac(seconds: float, *, rate: int = 44100, channels: int = 2,
              frames: bytes = b"\xff\xf8\x69\x08" + bytes(200)) -> bytes:
    """A FLAC file as far as its metadata goes: STREAMINFO for ``seconds``, then ``frames``
    (a frame's sync code and padding: what probing reads, not decodable audio)."""
    samples = int(seconds * rate)
    bits = (rate << 44) | ((channels - 1) << 41) | (15 << 36) | samples
    info = struct.pack(">HH", 4096, 4096) + bytes(6) + bits.to_bytes(8, "big") + bytes(16)
    return b"fLaC" + bytes([0x80, 0, 0, 34]) + info + frames


@pytest.fixture(scope="session")
def reference_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("refs") / "reference.wav"
    path.write_bytes(make_wav(12.0))
    return path


@pytest.fixture(scope="session")
def emu() -> Iterator[Emulator]:
    """One emulator for the whole run (starting one costs ~200 ms); tests reset it."""
    config = EmulatorConfig(timings=Timings.instant(), limits=Limits.off(),
                            track_seconds=(3.0, 5.0))
    with Emulator(config) as emulator:
        yield emulator


@pytest.fixture
def emulator(emu: Emulator) -> Iterator[Emulator]:
    emu.reset()
    emu.set_faults(Faults())
    emu.set_limits(Limits.off())
    yield emu
    emu.reset()


# -- real servers (Redis, PostgreSQL): skipped locally when absent, failing on CI ----------

from .servers import postgres_url, redis_url  # noqa: E402, F401
