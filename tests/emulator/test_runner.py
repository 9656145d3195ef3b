from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from aiomusic.emulator import Emulator, EmulatorConfig, Timings
from aiomusic.emulator._cli import build_parser, config_from_args


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_async_context_manager(anyio_backend: str) -> None:
    async with Emulator(EmulatorConfig(timings=Timings.instant())) as emu:
        thread = emu._thread
        assert thread is not None
        async with httpx.AsyncClient(base_url=emu.url) as client:
            resp = await client.get(
                "/api/v1/generate/credit", headers={"Authorization": "Bearer k"}
            )
        assert resp.json()["code"] == 200
    assert not thread.is_alive()


def test_sync_lifecycle_and_errors() -> None:
    emu = Emulator()
    with pytest.raises(RuntimeError):
        _ = emu.url
    with emu:
        assert emu.url.startswith("http://127.0.0.1:")
        assert "127.0.0.1" in repr(emu)
        with pytest.raises(RuntimeError):
            emu.start()
    with pytest.raises(RuntimeError):
        _ = emu.url


def test_cli_options() -> None:
    args = build_parser().parse_args(
        ["--api-key", "a", "--api-key", "b", "--speed", "0.5", "--fault", "server_error=0.1",
         "--seed", "7", "--rate", "40", "--concurrency", "16", "--suno-rate", "5",
         "--retry-after", "2"]
    )  # fmt: skip
    config = config_from_args(args)
    assert config.api_keys == frozenset({"a", "b"})
    assert config.timings.scale == 0.5
    assert config.faults.rates == {"server_error": 0.1}
    assert config.faults.seed == 7
    assert (config.limits.minimax_requests, config.limits.minimax_concurrent) == (40, 16)
    assert config.limits.suno_requests == 5
    assert config.limits.retry_after == 2
    for speed, generate in (("fast", 0.5), ("instant", 0), ("real", 60)):
        parsed = config_from_args(build_parser().parse_args(["--speed", speed]))
        assert parsed.timings.generate == generate
    assert not config_from_args(build_parser().parse_args(["--no-limits"])).limits.enabled


def test_cli_serves_and_prints_url() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiomusic.emulator", "--port", "0", "--speed", "instant"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(url + "/_emulator/health").json() == {"ok": True}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_cli_rejects_bad_fault() -> None:
    from aiomusic.emulator._cli import main

    assert main(["--fault", "nope=1"]) == 2


def test_stopping_with_requests_in_flight_logs_no_error() -> None:
    """A client stopped mid-request (Ctrl-C on `--emulator`) must not print tracebacks."""
    import logging
    import threading

    from emu_helpers import reference

    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    errors = logging.getLogger("uvicorn.error")
    answers: list[object] = []
    emu = Emulator(EmulatorConfig(timings=Timings(upload=30))).start()
    errors.addHandler(handler)
    try:
        def stuck() -> None:  # an upload that the emulator holds for 30 s
            with httpx.Client(base_url=emu.url, headers={"Authorization": "Bearer k"}) as c:
                try:
                    answers.append(c.post("/v2/generate/audio/minimax/upload",
                                          files={"file": ("r.mp3", reference(), "audio/mpeg")},
                                          data={"purpose": "song"}).status_code)
                except httpx.HTTPError as exc:
                    answers.append(type(exc))

        thread = threading.Thread(target=stuck)
        thread.start()
        while emu.counters.requests["/v2/generate/audio/minimax/upload"] == 0:
            thread.join(0.01)
        thread.join(0.2)
        emu.stop()  # cancels the held request after its grace second
        thread.join(10)
    finally:
        errors.removeHandler(handler)
        emu.stop()
    assert answers in ([500], [httpx.RemoteProtocolError])  # the client saw it end
    assert [r.getMessage() for r in records] == []
    real = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "a real failure",
                             None, (ValueError, ValueError("boom"), None))
    assert all(f.filter(real) for f in errors.filters)  # real errors still show
