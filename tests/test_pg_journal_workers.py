"""Worker processes sharing one batch through PostgreSQL: several at once, kill -9, SIGSTOP.

Each worker is the CLI (``aiomusic batch --journal postgresql://...``), as users run it,
against an emulator served in this process behind the recorder of ``tests/test_kill_loop.py``,
which counts the charges for each job: a job charged twice is a duplicate paid submission and
must never happen. The journal says which jobs were reclaimed and which became ``unknown``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiomusic.emulator import EmulatorApp, EmulatorConfig, Limits, Timings

from .pg_journal_helpers import sql
from .reliability_helpers import serve
from .test_batch import write_jobs
from .test_cli_batch import CLI, batch_args, env
from .test_kill_loop import Recorder

pytestmark = pytest.mark.slow
CONFIG = EmulatorConfig(
    timings=Timings(generate=1.0, suno_text=0.2, suno_first=0.4, suno_complete=0.6),
    limits=Limits.off(), track_seconds=(1.0, 2.0), generate_audio_bytes=20_000)


@pytest.fixture
def recorder() -> Iterator[tuple[Recorder, str]]:
    app = Recorder(EmulatorApp(CONFIG))
    with serve(app) as url:
        yield app, url


def start(jobs: Path, out: Path, url: str, journal: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*CLI, *batch_args(jobs, out, url, "--json", "--journal", journal,
                                               *extra)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env())


def outcomes(stdout: str) -> dict[str, str]:
    return {d["id"]: d["status"] for d in map(json.loads, stdout.splitlines())
            if d["event"] == "job"}


def wait_for_held(journal: str, proc: subprocess.Popen[str], state: str = "submitting"
                  ) -> int:
    """Wait until some job is held in ``state``; the worker's id."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        rows = sql(journal, "SELECT owner FROM aiomusic_batch_jobs WHERE owner IS NOT NULL "
                            "AND state = %s", state) if _ready(journal) else []
        if rows:
            return int(rows[0][0])
        time.sleep(0.02)
    raise AssertionError(f"no job was held {state} in time")


def _ready(journal: str) -> bool:
    return bool(sql(journal, "SELECT to_regclass('aiomusic_batch_jobs') IS NOT NULL")[0][0])


def check_paid_once(recorder: Recorder, journal: str, jobs: int) -> dict[str, int]:
    """Every job ended; no job charged twice; the journal's states by count."""
    assert {job: n for job, n in recorder.charged.items() if n > 1} == {}
    states = dict(sql(journal, "SELECT state, count(*) FROM aiomusic_batch_jobs GROUP BY 1"))
    assert sum(states.values()) == jobs
    assert set(states) <= {"completed", "unknown"}, states
    assert sql(journal, "SELECT count(*) FROM aiomusic_batch_jobs WHERE owner IS NOT NULL"
               ) == [(0,)]
    # an unknown job is one whose paid request was on its way: its intent is in the ledger
    unknown = {r[0] for r in sql(journal, "SELECT id FROM aiomusic_batch_jobs WHERE "
                                          "state = 'unknown'")}
    ledger = {r[0] for r in sql(journal, "SELECT job_id FROM aiomusic_batch_attempts WHERE "
                                         "fate IN ('unknown', 'taken')")}
    assert unknown <= ledger
    return states


def test_several_processes_share_one_batch(recorder: tuple[Recorder, str], tmp_path: Path,
                                           pg_journal: str) -> None:
    app, url = recorder
    jobs = write_jobs(tmp_path, songs=8, instrumentals=4)
    out = tmp_path / "out"
    procs = [start(jobs, out, url, pg_journal, "--concurrency", "3") for _ in range(3)]
    done = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e for _, e in done]
    seen = [job for stdout, _ in done for job in outcomes(stdout)]
    assert sorted(seen) == sorted([f"song-{i}" for i in range(8)] +
                                  [f"inst-{i}" for i in range(4)])  # each job by one worker
    assert sum(1 for stdout, _ in done if outcomes(stdout)) >= 2  # the work was shared
    assert check_paid_once(app, pg_journal, 12) == {"completed": 12}
    assert sum(app.charged.values()) == 12
    report = subprocess.run([*CLI, "batch", str(jobs), "--report", "--journal", pg_journal],
                            capture_output=True, text=True, env=env(), timeout=60, check=True)
    assert "12 jobs (12 completed)" in report.stdout and "12 taken" in report.stdout


def test_a_killed_worker_s_jobs_are_reclaimed_and_never_paid_twice(
        recorder: tuple[Recorder, str], tmp_path: Path, pg_journal: str) -> None:
    app, url = recorder
    jobs = write_jobs(tmp_path, songs=10, instrumentals=2)
    out = tmp_path / "out"
    first = start(jobs, out, url, pg_journal, "--concurrency", "4", "--lease", "30")
    dead = wait_for_held(pg_journal, first)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    held = sql(pg_journal, "SELECT state, count(*) FROM aiomusic_batch_jobs WHERE owner = %s "
                           "GROUP BY 1", dead)
    assert dict(held).get("submitting", 0) >= 1
    # the lease is long: the dead worker is found by its advisory lock, not by waiting
    second = start(jobs, out, url, pg_journal, "--concurrency", "4", "--lease", "30")
    _, stderr = second.communicate(timeout=60)
    assert second.returncode == 0, stderr
    states = check_paid_once(app, pg_journal, 12)
    assert states.get("unknown", 0) == dict(held)["submitting"]  # never re-sent
    assert sql(pg_journal, "SELECT count(*) FROM aiomusic_batch_workers WHERE id = %s",
               dead) == [(0,)]


def test_a_hung_worker_s_jobs_are_reclaimed_after_its_lease(
        recorder: tuple[Recorder, str], tmp_path: Path, pg_journal: str) -> None:
    app, url = recorder
    jobs = write_jobs(tmp_path, songs=8, instrumentals=2)
    out = tmp_path / "out"
    hung = start(jobs, out, url, pg_journal, "--concurrency", "3", "--lease", "1.5")
    wait_for_held(pg_journal, hung)
    hung.send_signal(signal.SIGSTOP)
    try:
        other = start(jobs, out, url, pg_journal, "--concurrency", "3", "--lease", "1.5")
        _, stderr = other.communicate(timeout=60)
        assert other.returncode == 0, stderr
    finally:
        hung.send_signal(signal.SIGCONT)
    _, hung_err = hung.communicate(timeout=60)  # it wakes up owning nothing, and ends
    states = check_paid_once(app, pg_journal, 10)
    assert states.get("unknown", 0) >= 1
    assert "no longer owns it" in hung_err
