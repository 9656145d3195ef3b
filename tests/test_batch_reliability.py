"""Batches under stress: a soak under faults, and SIGKILL at random points then resume."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import pytest

from aiomusic import AiomusicError, Batch, JobOutcome, load_jobs
from aiomusic.emulator import Emulator, EmulatorConfig, Faults, Limits, Timings

from .reliability_helpers import busy_connections
from .test_batch import PAID, TINY, journal_rows, no_partials, session, sha, write_jobs
from .test_cli_batch import CLI, batch_args, emulator_process, env, paid

pytestmark = pytest.mark.slow

#: About one request in five is faulted, spread over every kind the emulator has.
SOAK_FAULTS = {"rate_limit": 0.05, "maintenance": 0.03, "server_error": 0.03,
               "reset_before_answer": 0.015, "reset_mid_body": 0.02, "truncated_body": 0.02,
               "malformed_json": 0.01, "slow_drip": 0.01, "generate_audio_failed": 0.01,
               "callback_failure": 0.005}


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_soak_300_jobs_under_faults(tmp_path: Path) -> None:
    config = EmulatorConfig(timings=Timings.instant(), limits=Limits.off(),
                            faults=Faults(rates=SOAK_FAULTS, seed=2026),
                            track_seconds=(2.0, 3.0))
    jobs = write_jobs(tmp_path, songs=200, instrumentals=100)
    out = tmp_path / "out"
    async with Emulator(config) as emu:
        async with session(emu) as s:
            batch = Batch(s, load_jobs(jobs), out=out, journal=tmp_path / "j", poll=TINY,
                          concurrency=32)
            outcomes: list[JobOutcome] = []
            async with batch.results() as results:
                async for outcome in results:
                    outcomes.append(outcome)
            assert busy_connections(s) == []  # the pool holds no busy connection
        counters = emu.counters
    assert len(outcomes) == 300
    for outcome in outcomes:
        assert outcome.status in ("completed", "failed", "unknown")
        if outcome.status != "completed":
            assert isinstance(outcome.error, AiomusicError), outcome
        for f in outcome.files:
            assert sha(f.path) == f.sha256
    faulted = counters.fired()
    requests = sum(counters.requests.values())
    assert faulted / requests > 0.1, (faulted, requests)
    # zero duplicate paid submissions: one accepted submission per job at most
    assert counters.paid() <= 300
    done = [o for o in outcomes if o.status == "completed"]
    assert counters.paid() >= len(done) and len(done) >= 240
    assert sum(counters.paid(operation=op) for op in PAID) == counters.paid()
    no_partials(out)
    assert batch.summary.retries > 30


def integrity(journal: Path) -> str:
    with closing(sqlite3.connect(journal)) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_at_random_points_then_resume(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    jobs = write_jobs(tmp_path, songs=4, instrumentals=4)
    out = tmp_path / "out"
    journal = out / "aiomusic-journal.sqlite"
    faults = ["--fault", "rate_limit=0.05", "--fault", "maintenance@suno=0.05",
              "--fault", "reset_mid_body@files=0.1", "--seed", str(seed)]
    with emulator_process("--speed", "2", "--no-limits", *faults) as url:
        proc = subprocess.Popen([*CLI, *batch_args(jobs, out, url, "--plain")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
        time.sleep(rng.uniform(0.8, 3.5))  # somewhere between uploads and downloads
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        assert not journal.exists() or integrity(journal) == "ok"
        before = journal_rows(journal) if journal.exists() else {}
        with_task = {j: r["task_id"] for j, r in before.items() if r["task_id"]}
        maybe_sent = {j for j, r in before.items()
                      if r["state"] in ("submitting", "unknown") and j.startswith("inst-")}
        suno_paid = paid(url, "suno.add_instrumental")

        again = subprocess.run([*CLI, *batch_args(jobs, out, url, "--json",
                                                  "--resubmit-unknown",
                                                  "--pay-again", "failed")],
                               capture_output=True, text=True, env=env(), timeout=120,
                               check=False)
        assert again.returncode == 0, again.stdout + again.stderr
        lines = [json.loads(line) for line in again.stdout.splitlines()]
        outcomes = {d["id"]: d for d in lines if d["event"] == "job"}
        assert {d["status"] for d in outcomes.values()} <= {"completed", "skipped"}
        for job, task_id in with_task.items():
            assert outcomes[job]["task_id"] == task_id  # followed, never submitted again
        not_yet = {f"inst-{i}" for i in range(4)} - set(with_task) - maybe_sent
        new_suno = paid(url, "suno.add_instrumental") - suno_paid
        assert len(not_yet) <= new_suno <= len(not_yet) + len(maybe_sent)
        final = journal_rows(journal)
    assert integrity(journal) == "ok"
    assert {r["state"] for r in final.values()} == {"completed"}
    for r in final.values():
        for f in json.loads(r["files"]):
            assert sha(out / f["path"]) == f["sha256"]
    no_partials(out)
