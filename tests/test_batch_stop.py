"""Stopping a batch at random moments under load (issue 16: the Ctrl-C race).

A job that ended just as the reader left used to send its outcome into the closed results
stream: ``anyio.BrokenResourceError`` crashed the batch (2 of 43 Ctrl-C tries under load).
Here many batches are stopped at random moments, in each way a caller can stop one, and every
stop must end quietly with a consistent journal and no partial file. The count and the moments
are bounded and seeded, so a failure repeats.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from aiomusic import Batch, JobOutcome, MusicSession, load_jobs
from aiomusic.emulator import Emulator

from .reliability_helpers import FAST, FAST_CONFIG, busy_connections
from .test_batch import journal_rows, write_jobs

pytestmark = pytest.mark.anyio
KEY = "sk-stop-test-key"
STOPS = 14  # per backend; each batch runs for a few tens of milliseconds
MODES = ("break-and-close", "cancel-reader", "cancel-all")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(FAST_CONFIG) as emulator:
        yield emulator


async def stop_once(emu: Emulator, folder: Path, rng: random.Random, mode: str) -> None:
    jobs = load_jobs(write_jobs(folder, songs=16, instrumentals=0))
    out = folder / "out"
    async with MusicSession(aimlapi_key=KEY, base_url=emu.url, retry=FAST,
                            allow_http_hosts=("127.0.0.1",)) as s:
        batch = Batch(s, jobs, out=out, journal=folder / "journal.sqlite", concurrency=8)
        seen: list[JobOutcome] = []
        after = rng.randrange(0, 6)
        pause = rng.uniform(0, 0.03)
        if mode == "cancel-all":  # a Ctrl-C that cancels the whole block
            with anyio.move_on_after(rng.uniform(0.005, 0.2)):
                async with batch.results() as results:
                    async for outcome in results:
                        seen.append(outcome)
        else:
            async with batch.results() as results:
                if mode == "break-and-close":  # leave the loop, close the iterator, linger
                    async for outcome in results:
                        seen.append(outcome)
                        if len(seen) > after:
                            break
                    await results.aclose()  # type: ignore[attr-defined]
                    await anyio.sleep(pause)  # jobs go on ending meanwhile
                else:  # cancel only the reading, then leave the block
                    with anyio.move_on_after(pause):
                        async for outcome in results:
                            seen.append(outcome)
        assert busy_connections(s) == []
    try:
        summary = batch.summary
    except RuntimeError:  # stopped while the journal opened, before any job started
        assert mode == "cancel-all"
    else:
        assert summary.completed + sum(summary.failed.values()) + summary.unknown <= len(jobs)
        assert summary.interrupted == (summary.completed < len(jobs))
    states = {row["state"] for row in journal_rows(folder / "journal.sqlite").values()}
    assert states <= {"pending", "submitted", "unknown", "completed"}, states
    assert [p.name for p in out.rglob("*") if p.name.startswith(".")] == []


async def test_stopping_at_random_moments_under_load_is_always_quiet(
        emu: Emulator, tmp_path: Path, anyio_backend: str) -> None:
    rng = random.Random(f"stop-{anyio_backend}")
    for index in range(STOPS):
        await stop_once(emu, tmp_path / f"run-{index}", rng, MODES[index % len(MODES)])


async def test_a_job_that_raises_something_unexpected_fails_alone(
        emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A surprise in one job (here a RecursionError from deep inside a reader) must not
    cancel the others with an ExceptionGroup; a paid request in flight becomes unknown."""
    from aiomusic.batch import _steps

    real = _steps.Steps.minimax

    async def flaky(self: Any, run: Any, job: Any) -> Any:
        if job.id == "song-1":
            raise RecursionError("maximum recursion depth exceeded")
        if job.id == "song-2":
            raise ExceptionGroup("a reader's task group", [ValueError("odd")])
        return await real(self, run, job)

    monkeypatch.setattr(_steps.Steps, "minimax", flaky)
    jobs = load_jobs(write_jobs(tmp_path, songs=4, instrumentals=0))
    async with MusicSession(aimlapi_key=KEY, base_url=emu.url, retry=FAST) as s:
        summary = await Batch(s, jobs, out=tmp_path / "out", journal=tmp_path / "j").run()
    assert summary.completed == 2 and summary.failed == {"AiomusicError": 2}
    rows = journal_rows(tmp_path / "j")
    assert rows["song-1"]["state"] == "failed" and "RecursionError" in rows["song-1"]["error"]
    assert rows["song-2"]["state"] == "failed" and "ExceptionGroup" in rows["song-2"]["error"]
    assert rows["song-0"]["state"] == rows["song-3"]["state"] == "completed"


async def test_a_hostile_generation_answer_fails_one_job_not_the_batch(
        tmp_path: Path) -> None:
    """Finding: valid audio plus JSON nested 200,000 deep aborted ``Batch.run()`` with an
    ExceptionGroup that cancelled every other job."""
    deep = "[" * 200_000 + "]" * 200_000
    audio = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(500)
    data = {"status": 2, "audio": audio.hex()}
    good = json.dumps({"data": data, "base_resp": {"status_code": 0}})
    bad = json.dumps({"data": data, "junk": 0, "base_resp": {"status_code": 0}}).replace(
        '"junk": 0', f'"junk": {deep}')

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/upload"):
            return httpx.Response(200, json={"voice_id": "v", "instrumental_id": "i",
                                             "base_resp": {"status_code": 0}})
        body = bad if b"La la 1#" in request.content else good
        return httpx.Response(200, content=body.encode())

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    jobs = load_jobs(write_jobs(tmp_path, songs=4, instrumentals=0))
    async with MusicSession(aimlapi_key=KEY, http_client=client, retry=FAST) as s:
        batch = Batch(s, jobs, out=tmp_path / "out", journal=tmp_path / "j")
        summary = await batch.run()
    await client.aclose()
    assert summary.completed == 3 and summary.failed.get("AiomusicError", 0) + \
        summary.unknown + sum(summary.failed.values()) >= 1
    rows = journal_rows(tmp_path / "j")
    assert rows["song-1"]["state"] in ("failed", "unknown")
    assert {rows[f"song-{i}"]["state"] for i in (0, 2, 3)} == {"completed"}


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_a_stop_through_a_nursery_of_a_step_still_repairs_the_journal(
        emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On trio a cancellation can leave a step as a BaseExceptionGroup of Cancelled (trio's
    own ``open_tcp_stream`` nursery does, when a connect is cancelled), not as the
    cancellation itself: the stop must still turn 'submitting' into 'unknown'."""
    import trio

    from aiomusic.batch import _journal, _steps

    async def connecting(self: Any, run: Any, job: Any) -> Any:
        await self.mark(run, _journal.JobState.SUBMITTING)
        run.sent = True  # as when the paid request went out
        async with trio.open_nursery() as nursery:  # as open_tcp_stream's happy eyeballs
            nursery.start_soon(trio.sleep_forever)
            await trio.sleep_forever()

    monkeypatch.setattr(_steps.Steps, "minimax", connecting)
    jobs = load_jobs(write_jobs(tmp_path, songs=3, instrumentals=0))
    async with MusicSession(aimlapi_key=KEY, base_url=emu.url, retry=FAST) as s:
        batch = Batch(s, jobs, out=tmp_path / "out", journal=tmp_path / "j")
        with anyio.move_on_after(1):
            await batch.run()
    states = {row["state"] for row in journal_rows(tmp_path / "j").values()}
    assert states == {"unknown"}
