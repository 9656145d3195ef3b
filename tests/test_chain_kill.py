"""kill -9 at every step of a chained job (generate -> stems -> MIDI, generate -> WAV), then
resume: no paid request is ever sent twice without the user's say.

The batch runs in a subprocess (the CLI, as users run it) against an emulator in its own
process. Each round watches the batch's plain output and kills it with SIGKILL right after the
next step of the chain shows (a paid request on its way, a task id just journaled, a download,
the parent's completion, the children's...), or at a random time, then the next round resumes
from the journal.
A round after a kill that left a paid request of unknown fate passes ``--pay-again unknown``
(the user's explicit say). At the end, every job is complete, each file matches its journaled
digest, and the emulator's paid counters show one submission per job, or at most one more
for each attempt the journal marked ``unknown`` (the only requests ever sent again).
"""

from __future__ import annotations

import json
import random
import re
import signal
import sqlite3
import subprocess
import threading
from contextlib import closing
from pathlib import Path

import pytest

from .test_batch import journal_rows, no_partials, sha
from .test_cli_batch import CLI, batch_args, emulator_process, env, paid

pytestmark = pytest.mark.slow

LINES = [
    {"id": "g", "service": "suno", "op": "generate", "prompt": "rain on the road"},
    {"id": "s", "service": "suno", "op": "stems", "after": "g", "track": 2},
    {"id": "w", "service": "suno", "op": "wav", "after": "g", "out": "g.wav"},
    {"id": "x", "service": "suno", "op": "midi", "after": "s", "out": "notes.json"},
]
OPERATION = {"g": "suno.generate", "s": "suno.stems", "w": "suno.wav", "x": "suno.midi"}
#: Where each round kills: right after this line of the plain output (in chain order).
STEPS = [r"g: queued", r"g: submitting", r"g: submitted", r"g: downloading", r"ok\s+g:",
         r"s: submitting", r"w: submitted", r"s: downloading", r"ok\s+s:", r"x: submitting",
         r"x: submitted"]


def unknown_attempts(journal: Path) -> dict[str, int]:
    """Paid attempts of unknown fate by job (``sending``: a killed run's, unknown from the
    next run on)."""
    with closing(sqlite3.connect(journal, timeout=5)) as db:
        rows = db.execute("SELECT job_id, count(*) FROM attempts WHERE fate IN ('unknown', "
                          "'sending') GROUP BY job_id").fetchall()
    return dict(rows)


def pay_again(journal: Path) -> list[str]:
    """``--pay-again unknown`` where a killed run left a paid request of unknown fate (the
    journal's ledger and its jobs agree: both are written in one transaction)."""
    if not journal.exists():
        return []
    states = {r["state"] for r in journal_rows(journal).values()}
    maybe = bool(states & {"submitting", "unknown"})
    assert maybe == bool(unknown_attempts(journal))
    return ["--pay-again", "unknown"] if maybe else []


@pytest.mark.parametrize("kills", [pytest.param(None, id="at-every-step"),
                                   pytest.param(15, id="at-random-times")])
def test_a_chain_survives_kill_9(tmp_path: Path, kills: int | None) -> None:
    """``kills``: the seed of random kill times (``None``: right after each of ``STEPS``)."""
    jobs = tmp_path / "chain.jsonl"
    jobs.write_text("\n".join(json.dumps(line) for line in LINES) + "\n")
    out = tmp_path / "out"
    journal = out / "aiomusic-journal.sqlite"
    rng = random.Random(kills)
    killed: list[str] = []
    seen: list[str] = []
    with emulator_process("--speed", "0.5", "--no-limits") as url:
        for step in STEPS if kills is None else [rng.uniform(0.6, 3.0) for _ in range(6)]:
            proc = subprocess.Popen([*CLI, *batch_args(jobs, out, url, "--plain",
                                                       *pay_again(journal))],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    text=True, env=env())
            assert proc.stdout is not None
            if isinstance(step, float):  # past the start (about 0.5 s), somewhere in the chain
                timer = threading.Timer(step, proc.send_signal, (signal.SIGKILL,))
                timer.start()
                seen += [line.rstrip() for line in proc.stdout]
                timer.cancel()
            else:
                for line in proc.stdout:
                    seen.append(line.rstrip())
                    if re.search(step, line):
                        proc.send_signal(signal.SIGKILL)
                        break
            proc.stdout.close()
            code = proc.wait(timeout=30)
            seen.append(f"--- exit {code}")
            if code == -signal.SIGKILL:
                killed.append(str(step))
            # between rounds: a paid counter never above the journal's attempts that may
            # have been taken
            unknown = unknown_attempts(journal) if journal.exists() else {}
            for job, operation in OPERATION.items():
                assert paid(url, operation) <= 1 + unknown.get(job, 0), (job, seen)
        final = subprocess.run([*CLI, *batch_args(jobs, out, url, "--json",
                                                  *pay_again(journal))],
                               capture_output=True, text=True, env=env(), timeout=120,
                               check=False)
        counts = {job: paid(url, operation) for job, operation in OPERATION.items()}
    outcomes = {d["id"]: d for d in map(json.loads, final.stdout.splitlines())
                if d["event"] == "job"}
    assert final.returncode == 0, "\n".join(seen) + final.stdout[-900:]
    assert {d["status"] for d in outcomes.values()} <= {"completed", "skipped"}
    unknown = unknown_attempts(journal)
    print(f"chain kills at {killed}; paid {counts}; unknown {unknown}")
    if kills is None:
        assert len(killed) >= 8, killed  # most steps were reached (a fast one may be missed)
    for job, count in counts.items():
        # one submission per job; one more only where the user said so after an unknown fate
        assert 1 <= count <= 1 + unknown.get(job, 0), (job, count, unknown)
    rows = journal_rows(journal)
    assert {r["state"] for r in rows.values()} == {"completed"}
    for r in rows.values():
        for f in json.loads(r["files"]):
            assert sha(out / f["path"]) == f["sha256"]
    no_partials(out)
    assert sorted(p.name for p in (out / "s").iterdir()) == ["instrumental.mp3", "vocals.mp3"]
