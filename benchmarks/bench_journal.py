"""J1-J3: one batch shared by worker processes through a journal in PostgreSQL.

``python -m benchmarks --journal-scale --postgres URL`` (or ``python -m benchmarks.bench_journal``;
``AIOMUSIC_TEST_POSTGRES_URL`` is used when ``--postgres`` is not given). Each round runs in a
schema of its own, dropped afterwards. At least 3 rounds each; the median, min and max.

- **J1, claims.** 10,000 jobs claimed by 8 worker processes, 4 tasks each. A claim is the whole
  cycle of a job as the journal sees it: ``claim()`` (``SELECT ... FOR UPDATE SKIP LOCKED``),
  the ``completed`` mark (conditional on owning it), ``release()``; no service is called.
  Claims per second (from the first claim to the last), the database's load over the round
  (transactions and rows written per claim, from ``pg_stat_database``), and how many jobs were
  claimed more than once (must be 0).
- **J2, kill -9.** Two CLI workers (``aiomusic batch --journal URL --lease 30``) share 24 jobs
  against an emulator whose generations take 1 s; once the first holds a job in flight
  (``submitting``), it is killed with SIGKILL. Reclaim time: from the kill until none of its
  jobs is held (found by its advisory lock, not the 30 s lease). Duplicate charges (the
  emulator's own count per job, must be 0), and the share of the batch left ``unknown``.
- **J3, SIGSTOP.** The same with SIGSTOP and a 3 s lease: the stopped worker's jobs come back
  when the lease runs out. It is resumed once the other has finished: it owns nothing then,
  and must send nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import ROOT, machine

__all__ = ["main"]

JOBS, WORKERS, TASKS = 10_000, 8, 4


def _sql(url: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        cur = conn.execute(query, args or None)
        return cur.fetchall() if cur.description is not None else []


@contextmanager
def _schema(server: str) -> Iterator[str]:
    """A journal URL in a fresh schema of ``server``, dropped afterwards."""
    name = f"aiomusic_bench_{uuid.uuid4().hex[:10]}"
    _sql(server, f"CREATE SCHEMA {name}")
    sep = "&" if "?" in server else "?"
    try:
        yield f"{server}{sep}options={quote(f'-csearch_path={name}')}"
    finally:
        _sql(server, f"DROP SCHEMA {name} CASCADE")


def _spread(values: Sequence[float], digits: int = 2) -> dict[str, float]:
    return {"median": round(statistics.median(values), digits),
            "min": round(min(values), digits), "max": round(max(values), digits)}


# -- J1: claims ---------------------------------------------------------------------------------


async def _claimer(url: str, tasks: int) -> dict[str, Any]:
    """One worker process: claim, complete and give back jobs until none is left."""
    import anyio

    from aiomusic import PostgresJournal
    from aiomusic.batch._journal import FileRecord, JobState

    journal = await PostgresJournal(url, lease=30).start(endpoint="bench")
    times: list[float] = []

    async def task() -> None:
        while (record := await journal.claim()) is not None:
            times.append(time.time())
            await journal.update(record.id, JobState.COMPLETED,
                                 files=(FileRecord(f"{record.id}.mp3", "0" * 64, 1),))
            await journal.release(record.id)

    try:
        async with anyio.create_task_group() as tg:
            for _ in range(tasks):
                tg.start_soon(task)
    finally:
        await journal.aclose()
    return {"claims": len(times), "first": min(times, default=0), "last": max(times, default=0)}


def _load(url: str) -> dict[str, int]:
    row = _sql(url, "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted, "
                    "tup_returned + tup_fetched FROM pg_stat_database "
                    "WHERE datname = current_database()")[0]
    return {"commits": int(row[0]), "written": int(row[1]), "read": int(row[2])}


def claims_round(server: str, jobs: int, workers: int) -> dict[str, Any]:
    import anyio

    from aiomusic import PostgresJournal

    with _schema(server) as url:
        async def seed() -> None:
            journal = await PostgresJournal(url).start(endpoint="bench")
            await journal.add_many((f"job-{i}", "minimax", "f") for i in range(jobs))
            await journal.aclose()

        anyio.run(seed)
        _sql(url, "SELECT pg_stat_force_next_flush()")
        time.sleep(1.0)  # statistics reach pg_stat_database within about a second
        before = _load(url)
        procs = [subprocess.Popen([sys.executable, "-m", "benchmarks.bench_journal",
                                   "--claim-child", url, str(TASKS)],
                                  stdout=subprocess.PIPE, text=True, cwd=ROOT)
                 for _ in range(workers)]
        results = [json.loads(p.communicate(timeout=600)[0]) for p in procs]
        time.sleep(1.0)
        after = _load(url)
        claimed = sum(r["claims"] for r in results)
        twice = _sql(url, "SELECT count(*) FROM aiomusic_batch_jobs WHERE claims > 1")[0][0]
        done = _sql(url, "SELECT count(*) FROM aiomusic_batch_jobs WHERE state = 'completed' "
                         "AND owner IS NULL")[0][0]
    span = max(r["last"] for r in results) - min(r["first"] for r in results if r["claims"])
    return {"claims": claimed, "completed": done, "claimed_twice": twice,
            "seconds": round(span, 2), "per_second": round(claimed / span, 1),
            "busiest_worker": max(r["claims"] for r in results),
            "idlest_worker": min(r["claims"] for r in results),
            "commits_per_claim": round((after["commits"] - before["commits"]) / claimed, 2),
            "rows_written_per_claim": round((after["written"] - before["written"]) / claimed, 2),
            "rows_read_per_claim": round((after["read"] - before["read"]) / claimed, 1),
            "commits_per_second": round((after["commits"] - before["commits"]) / span)}


# -- J2, J3: a worker killed or stopped -----------------------------------------------------------


def failure_round(server: str, how: str, songs: int = 20, instrumentals: int = 4
                  ) -> dict[str, Any]:
    """Two CLI workers; the first is killed (``kill``) or stopped (``stop``) mid-flight."""
    import tempfile

    from aiomusic.emulator import EmulatorApp, EmulatorConfig, Limits, Timings
    from tests.reliability_helpers import serve
    from tests.test_batch import write_jobs
    from tests.test_cli_batch import CLI, batch_args, env
    from tests.test_kill_loop import Recorder

    config = EmulatorConfig(
        timings=Timings(generate=1.0, suno_text=0.2, suno_first=0.4, suno_complete=0.6),
        limits=Limits.off(), track_seconds=(1.0, 2.0), generate_audio_bytes=20_000)
    lease = "30" if how == "kill" else "3"
    total = songs + instrumentals
    recorder = Recorder(EmulatorApp(config))
    with tempfile.TemporaryDirectory() as tmp, _schema(server) as url, serve(recorder) as base:
        jobs = write_jobs(Path(tmp), songs=songs, instrumentals=instrumentals)
        out = Path(tmp) / "out"

        def worker() -> subprocess.Popen[str]:
            return subprocess.Popen(
                [*CLI, *batch_args(jobs, out, base, "--json", "--journal", url, "--lease",
                                   lease, "--concurrency", "4")],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=ROOT)

        first, second = worker(), worker()
        owner = _wait(lambda: _held(url))
        held = _sql(url, "SELECT count(*) FROM aiomusic_batch_jobs WHERE owner = %s", owner)[0][0]
        first_owner = owner
        victim = first if _pid_of(url, owner) == first.pid else second
        other = second if victim is first else first
        victim.send_signal(signal.SIGKILL if how == "kill" else signal.SIGSTOP)
        stopped_at = time.monotonic()
        _wait(lambda: not _sql(url, "SELECT 1 FROM aiomusic_batch_jobs WHERE owner = %s",
                               first_owner) or None, timeout=120)
        reclaim = time.monotonic() - stopped_at
        other.communicate(timeout=300)
        if how == "stop":
            victim.send_signal(signal.SIGCONT)
        victim.communicate(timeout=120)
        states = dict(_sql(url, "SELECT state, count(*) FROM aiomusic_batch_jobs GROUP BY 1"))
        charged = dict(recorder.charged)
    duplicates = sum(n - 1 for n in charged.values() if n > 1)
    return {"how": how, "lease": float(lease), "jobs": total, "held_when_stopped": held,
            "reclaim_seconds": round(reclaim, 2), "duplicates": duplicates,
            "charges": sum(charged.values()), "completed": states.get("completed", 0),
            "unknown": states.get("unknown", 0),
            "unknown_share": round(states.get("unknown", 0) / total, 3),
            "left": {s: n for s, n in states.items() if s not in ("completed", "unknown")}}


def _held(url: str) -> int | None:
    if not _sql(url, "SELECT to_regclass('aiomusic_batch_jobs') IS NOT NULL")[0][0]:
        return None
    rows = _sql(url, "SELECT owner FROM aiomusic_batch_jobs WHERE owner IS NOT NULL AND "
                     "state = 'submitting' LIMIT 1")
    return int(rows[0][0]) if rows else None


def _pid_of(url: str, worker: int) -> int:
    return int(_sql(url, "SELECT pid FROM aiomusic_batch_workers WHERE id = %s", worker)[0][0])


def _wait(probe: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.01)
    raise RuntimeError("timed out")


# -- the table ----------------------------------------------------------------------------------


def run(server: str, *, rounds: int, jobs: int, workers: int,
        log: Callable[[str], None]) -> dict[str, Any]:
    started = time.perf_counter()
    claims = []
    for i in range(rounds):
        claims.append(claims_round(server, jobs, workers))
        log(f"J1 round {i + 1}: {claims[-1]}")
    failures: dict[str, list[dict[str, Any]]] = {"kill": [], "stop": []}
    for how in failures:
        for i in range(rounds):
            failures[how].append(failure_round(server, how))
            log(f"J{2 if how == 'kill' else 3} round {i + 1}: {failures[how][-1]}")
    doc: dict[str, Any] = {"machine": machine(), "rounds": rounds, "jobs": jobs,
                           "workers": workers, "claims": claims, "failures": failures}
    doc["summary"] = {
        "J1": {key: _spread([r[key] for r in claims], 2) for key in (
            "per_second", "seconds", "commits_per_claim", "rows_written_per_claim",
            "rows_read_per_claim", "commits_per_second")}
        | {"claimed_twice": sum(r["claimed_twice"] for r in claims)},
        **{("J2" if how == "kill" else "J3"): {
            key: _spread([r[key] for r in rows], 3) for key in (
                "reclaim_seconds", "unknown_share", "held_when_stopped")}
           | {"duplicates": sum(r["duplicates"] for r in rows)}
           for how, rows in failures.items()}}
    doc["seconds"] = round(time.perf_counter() - started, 1)
    doc["table"] = markdown(doc)
    return doc


def markdown(doc: dict[str, Any]) -> str:
    def cell(spread: dict[str, float]) -> str:
        return f"{spread['median']} ({spread['min']}, {spread['max']})"

    s = doc["summary"]
    j1 = s["J1"]
    lines = ["| case | result: median (min, max) over the rounds | goal | met |",
             "|---|---|---|---|",
             f"| J1: {doc['jobs']:,} jobs claimed by {doc['workers']} processes | "
             f"{cell(j1['per_second'])} claims/s; {cell(j1['commits_per_second'])} commits/s; "
             f"per claim {cell(j1['commits_per_claim'])} commits, "
             f"{cell(j1['rows_written_per_claim'])} rows written, "
             f"{cell(j1['rows_read_per_claim'])} rows read | each job claimed once | "
             f"{'yes' if j1['claimed_twice'] == 0 else '**no**'} |"]
    for ident, what in (("J2", "kill -9, lease 30 s"), ("J3", "SIGSTOP, lease 3 s")):
        row = s[ident]
        lines.append(
            f"| {ident}: {what}, {cell(row['held_when_stopped'])} jobs held | reclaimed in "
            f"{cell(row['reclaim_seconds'])} s; unknown {cell(row['unknown_share'])} of the "
            f"batch; {row['duplicates']} duplicate charges | 0 duplicates | "
            f"{'yes' if row['duplicates'] == 0 else '**no**'} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks --journal-scale",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("AIOMUSIC_TEST_POSTGRES_URL"),
                        help="a PostgreSQL server (default: $AIOMUSIC_TEST_POSTGRES_URL)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=JOBS)
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--quick", action="store_true", help="1 round of 1,000 jobs")
    parser.add_argument("--json", type=Path, help="where to write the results")
    parser.add_argument("--claim-child", nargs=2, metavar=("URL", "TASKS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.claim_child:
        import anyio

        print(json.dumps(anyio.run(_claimer, args.claim_child[0], int(args.claim_child[1]))))
        return 0
    if not args.postgres:
        parser.error("give --postgres URL (or set AIOMUSIC_TEST_POSTGRES_URL)")
    rounds, jobs = (1, 1000) if args.quick else (args.rounds, args.jobs)
    doc = run(args.postgres, rounds=rounds, jobs=jobs, workers=args.workers,
              log=lambda line: print(line, file=sys.stderr, flush=True))
    target = args.json or ROOT / "benchmarks" / "results" / "journal-scale.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(doc["table"])
    print(f"\n{rounds} round(s) in {doc['seconds']} s; results in {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
