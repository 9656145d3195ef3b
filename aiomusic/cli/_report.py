"""``aiomusic batch JOBS --report``: a past run's ledger, read from its journal.

Every paid attempt and its fate, the jobs by state, and the ones to check before paying
again, with their trace and task ids. It opens the journal read-only and sends nothing (no
key is needed).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import anyio

from ..batch._journal import AttemptRecord, JobRecord, Journal, JournalError
from ._common import Output

__all__ = ["print_report"]

#: A row a killed run left in flight reads as what it is once the journal is opened again.
_SHOWN = {"sending": "unknown"}
_CHECK = ("unknown", "failed after taken")


def print_report(journal: Path | None, jobs_file: Path, output: Output) -> int:
    """Print the ledger of ``journal``; 0, or 2 when there is no journal to read."""
    if journal is None:
        output.error("--report reads the journal: drop --no-journal")
        return 2
    if not journal.is_file():
        output.error(f"no journal at {journal}: nothing has run with it yet (give --journal "
                     "FILE, or the --out DIR of the run)")
        return 2
    try:
        records, ledger = anyio.run(_read, journal)
    except JournalError as exc:
        output.error(f"{type(exc).__name__}: {exc}")
        return 2
    fates = Counter(_SHOWN.get(a.fate, a.fate) for a in ledger)
    states = Counter(r.state.value for r in records.values())
    check = [r for r in records.values() if r.fate in _CHECK or (
        r.state.value == "unknown" and r.fate is None)]
    if output.json:
        for attempt in ledger:
            output.data({"event": "attempt", "job": attempt.job_id, "run": attempt.run,
                         "attempt": attempt.attempt, "operation": attempt.operation,
                         "started_at": _when(attempt.started_at),
                         "fate": _SHOWN.get(attempt.fate, attempt.fate),
                         "trace_id": attempt.trace_id, "task_id": attempt.task_id,
                         "error_type": attempt.error_type})
        output.data({"event": "report", "journal": str(journal), "job_file": str(jobs_file),
                     "jobs": dict(states), "submissions": dict(fates),
                     "to_check": [_check(r) for r in check]})
        return 0
    output.say(f"journal {journal}: {len(records)} jobs "
               f"({', '.join(f'{n} {s}' for s, n in sorted(states.items()))})")
    output.say("paid attempts: " + (", ".join(f"{n} {f}" for f, n in sorted(fates.items()))
                                    or "none yet"))
    for attempt in ledger:
        output.say(_line(attempt))
    if check:
        output.say(f"{len(check)} job(s) may have been charged without their audio; check "
                   "your account (quote the ids) before paying again with --pay-again:")
        for record in check:
            item = _check(record)
            output.say(f"  {item['job']}: {item['fate']}" + "".join(
                f", {name} {item[key]}" for key, name in (("trace_id", "trace"),
                                                           ("task_id", "task")) if item[key]))
    return 0


async def _read(path: Path) -> tuple[dict[str, JobRecord], list[AttemptRecord]]:
    journal = await Journal.open(path, endpoint=None)
    try:
        return await journal.records(), await journal.ledger()
    finally:
        await journal.aclose()


def _when(stamp: float) -> str:
    return dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat(timespec="seconds")


def _line(attempt: AttemptRecord) -> str:
    ids = "".join(f"  {name} {value}" for name, value in (("trace", attempt.trace_id),
                                                          ("task", attempt.task_id)) if value)
    said = f"  ({attempt.error_type})" if attempt.error_type else ""
    fate = _SHOWN.get(attempt.fate, attempt.fate)
    return (f"  {attempt.job_id:<20} run {attempt.run} attempt {attempt.attempt}  "
            f"{_when(attempt.started_at)}  {fate:<18}{ids}{said}")


def _check(record: JobRecord) -> dict[str, str | None]:
    return {"job": record.id, "fate": record.fate or "unknown", "trace_id": record.trace_id,
            "task_id": record.task_id}
