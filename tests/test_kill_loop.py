"""kill -9 loops over a mixed batch with the emulator's faults on (issue 15).

The batch runs in a subprocess (the CLI, as users run it) against an emulator served in this
process behind a recorder: the recorder reads every paid request's body, tells which job it
belongs to, notes when it arrived, and counts the charges the emulator makes for each job.
After each SIGKILL the journal says which jobs may have been charged (``submitting`` or
``unknown``); the recorder says whether their request ever reached the service.

Two numbers come out: duplicate charges (a job charged twice) must be 0, and the share of
"may have been charged" jobs that never reached the service must stay at most 5 % (issue 15
measured 43 % when the intent was written before a job waited in the queue or a backoff).
``AIOMUSIC_KILL_LOOPS`` runs more rounds over a bigger batch, ``AIOMUSIC_KILL_SEED`` picks
other kill times (the measurement in docs/reliability.md).
"""

from __future__ import annotations

import contextvars
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from aiomusic.emulator import EmulatorApp, EmulatorConfig, Faults, Limits, Timings

from .reliability_helpers import serve
from .test_batch import write_jobs
from .test_cli_batch import CLI, batch_args, env

pytestmark = pytest.mark.slow

_JOB = contextvars.ContextVar[str | None]("job", default=None)
_PAID = {"/v2/generate/audio/minimax/generate", "/api/v1/generate/add-instrumental"}


class Recorder:
    """ASGI middleware: which job each paid request is, when it arrived, what was charged."""

    def __init__(self, app: EmulatorApp) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.arrived: dict[str, list[float]] = {}
        self.charged: Counter[str] = Counter()
        count = app.state.count_submission

        def charging(key: str, operation: str) -> None:
            job = _JOB.get()
            if job is not None:
                with self.lock:
                    self.charged[job] += 1
            count(key, operation)

        app.state.count_submission = charging  # type: ignore[method-assign]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] not in _PAID:
            await self.app(scope, receive, send)
            return
        messages, body = [], b""
        while True:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        job = _job_of(body)
        with self.lock:
            self.arrived.setdefault(job, []).append(time.time())
        _JOB.set(job)

        async def replay() -> Any:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


_SONG = re.compile(r"La la (\d+)")


def _job_of(body: bytes) -> str:
    """The job a paid request belongs to (``write_jobs`` numbers lyrics and titles)."""
    data = json.loads(body)
    found = _SONG.search(str(data.get("lyrics", "")))
    return f"song-{found.group(1)}" if found else f"inst-{data['title'].split()[-1]}"


FAULTS = Faults(rates={"rate_limit": 0.08, "maintenance": 0.04, "server_error": 0.04,
                       "reset_before_answer": 0.03, "reset_mid_body@aiml.generate": 0.03,
                       "truncated_body@files.download": 0.1,
                       "generate_audio_failed": 0.03}, seed=15)
CONFIG = EmulatorConfig(
    timings=Timings(generate=1.0, suno_text=0.2, suno_first=0.5, suno_complete=0.8),
    # few slots: jobs queue in their lanes and wait in pauses, where the intent used to lie
    limits=Limits(minimax_concurrent=3, minimax_requests=40, minimax_window=1.0,
                  suno_requests=10, suno_window=1.0),
    faults=FAULTS, track_seconds=(1.0, 2.0), generate_audio_bytes=20_000)


IN_FLIGHT = 0.5  # seconds between an intent and a kill within which the request was on its way


def unknown_intents(journal: Path, jobs: set[str]) -> list[tuple[str, float]]:
    """(job, when its last intent was written) of each job the final run reported unknown."""
    with closing(sqlite3.connect(journal, timeout=5)) as db:
        rows = db.execute("SELECT job_id, max(started_at) FROM attempts WHERE fate = "
                          "'unknown' GROUP BY job_id").fetchall()
    return [(job, started) for job, started in rows if job in jobs]


def test_kill_loops_never_pay_twice_and_unknown_means_sent(tmp_path: Path) -> None:
    rounds = int(os.environ.get("AIOMUSIC_KILL_LOOPS", "6"))
    rng = random.Random(int(os.environ.get("AIOMUSIC_KILL_SEED", "15")))
    songs, instrumentals = 3 * rounds, rounds  # enough work left for every kill
    jobs = write_jobs(tmp_path, songs=songs, instrumentals=instrumentals)
    out = tmp_path / "out"
    journal = out / "aiomusic-journal.sqlite"
    recorder = Recorder(EmulatorApp(CONFIG))
    with serve(recorder) as url:
        kills: list[float] = []  # when each kill was sent (time.time(), as the journal's)
        for _ in range(rounds):
            proc = subprocess.Popen([*CLI, *batch_args(jobs, out, url, "--plain",
                                                       "--concurrency", "12")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    env=env())
            time.sleep(rng.uniform(1.0, 3.0))  # past the start: amid paid requests
            killed_at = time.time()
            proc.send_signal(signal.SIGKILL)
            if proc.wait(timeout=10) != -signal.SIGKILL:
                break  # every job ended before the kill: nothing left to interrupt
            kills.append(killed_at)
        time.sleep(0.3)  # a request on its way is read by the server, or never will be
        final = subprocess.run([*CLI, *batch_args(jobs, out, url, "--json")],
                               capture_output=True, text=True, env=env(), timeout=120,
                               check=False)
    outcomes = {d["id"]: d for d in map(json.loads, final.stdout.splitlines())
                if d["event"] == "job"}
    assert len(outcomes) == songs + instrumentals, final.stderr
    assert {d["status"] for d in outcomes.values()} <= {"completed", "skipped", "unknown",
                                                         "failed"}
    duplicates = {job: n for job, n in recorder.charged.items() if n > 1}
    assert duplicates == {}  # 0 duplicate paid submissions
    unknown = {job for job, d in outcomes.items() if d["status"] == "unknown"}
    intents = unknown_intents(journal, unknown)
    assert {job for job, _ in intents} == unknown  # each unknown job's intent is journaled
    never = [job for job, started in intents
             if not any(t >= started - 0.05 for t in recorder.arrived.get(job, ()))]
    # An intent written just before a kill is a request that was on its way: its bytes were
    # still in the process (more so on a loaded machine). The fault this test guards against
    # is an intent written while the job still waited in a queue, a pause or a backoff, which
    # lasts a second or more here (3 slots, 1 s generations).
    waited = [job for job, started in intents if job in never
              and not any(0 <= killed - started <= IN_FLIGHT for killed in kills)]
    print(f"kill loops: {len(kills)} kills, {len(unknown)} jobs reported unknown, {len(never)} of "
          f"them never reached the service {sorted(never)}, {len(waited)} of those written "
          f"more than {IN_FLIGHT} s before a kill; {sum(recorder.charged.values())} "
          f"charges for {len(recorder.charged)} jobs")
    # at most 5 %; a bounded run sees a dozen unknown jobs, so one miss is let through there
    # (120-kill runs measure the rate itself: docs/reliability.md)
    assert len(waited) <= max(1, 0.05 * len(unknown)), (waited, never, unknown)
