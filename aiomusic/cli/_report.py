"""``aiomusic batch JOBS --report``: a past run's ledger, read from its journal.

Every paid attempt and its fate, the jobs by state, and the ones to check before paying
again, with their trace and task ids. It opens the journal read-only and sends nothing (no
key is needed).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from .._core._ledger import Ledger, format_amount
from ..batch._jobfile import JobFileError, load_jobs
from ..batch._journal import AttemptRecord, JobRecord, JournalError, SpendRecord
from ..batch._outcome import spending_lines, spent
from ..batch._shared import JournalSpec, open_journal
from ..batch._spend import fill
from ._common import Output

__all__ = ["last_sent", "print_report"]

#: A row a killed run left in flight reads as what it is once the journal is opened again.
_SHOWN = {"sending": "unknown"}
_CHECK = ("unknown", "failed after taken")


def print_report(journal: JournalSpec | None, jobs_file: Path, output: Output) -> int:
    """Print the ledger of ``journal``; 0, or 2 when there is no journal to read."""
    if journal is None:
        output.error("--report reads the journal: drop --no-journal")
        return 2
    if isinstance(journal, Path) and not journal.is_file():
        output.error(f"no journal at {journal}: nothing has run with it yet (give --journal "
                     "FILE, or the --out DIR of the run)")
        return 2
    try:
        records, ledger, rows = anyio.run(_read, journal)
    except JournalError as exc:  # a journal in PostgreSQL: JournalUnavailableError too
        output.error(f"{type(exc).__name__}: {exc}")
        return 2
    fates = Counter(_SHOWN.get(a.fate, a.fate) for a in ledger)
    states = Counter(r.state.value for r in records.values())
    check = [r for r in records.values() if r.fate in _CHECK or (
        r.state.value == "unknown" and r.fate is None)]
    changed = _changed(records, jobs_file)
    per_service, per_job = spent(fill(Ledger(), rows))
    if output.json:
        for attempt in ledger:
            output.data({"event": "attempt", "job": attempt.job_id, "run": attempt.run,
                         "attempt": attempt.attempt, "operation": attempt.operation,
                         "started_at": _when(attempt.started_at),
                         "fate": _SHOWN.get(attempt.fate, attempt.fate),
                         "trace_id": attempt.trace_id, "task_id": attempt.task_id,
                         "error_type": attempt.error_type})
        for item in reversed(per_job):
            output.data({"event": "spent", **item})
        output.data({"event": "report", "journal": str(journal), "job_file": str(jobs_file),
                     "jobs": dict(states), "submissions": dict(fates),
                     "to_check": [_check(r) for r in check], "changed": changed,
                     "spending": list(per_service)})
        return 0
    output.say(f"journal {journal}: {len(records)} jobs "
               f"({', '.join(f'{n} {s}' for s, n in sorted(states.items()))})")
    output.say("paid attempts: " + (", ".join(f"{n} {f}" for f, n in sorted(fates.items()))
                                    or "none yet"))
    for attempt in ledger:
        output.say(_line(attempt))
    if changed:
        output.say(f"{len(changed)} job(s) of {jobs_file} differ from what the journal "
                   f"recorded: {', '.join(changed)}. The next run replaces those the service "
                   "never saw, and reports the others: --pay-again changed makes their new "
                   "version (it may cost money)")
    if per_job:
        output.say("spent: " + "; ".join(spending_lines(per_service)))
        for item in reversed(per_job):
            output.say(_spent(item))
    if check:
        output.say(f"{len(check)} job(s) may have been charged without their audio; check "
                   "your account (quote the ids) before paying again with --pay-again:")
        for record in check:
            item = _check(record)
            output.say(f"  {item['job']}: {item['fate']}" + "".join(
                f", {name} {item[key]}" for key, name in (("trace_id", "trace"),
                                                           ("task_id", "task")) if item[key]))
    return 0


def last_sent(journal: JournalSpec | None) -> dict[str, str]:
    """When each job of ``journal`` sent its last paid request: ``"run 2, sent <time>"``
    (nothing when there is no journal to read)."""
    if journal is None or (isinstance(journal, Path) and not journal.is_file()):
        return {}
    try:
        _records, ledger, _rows = anyio.run(_read, journal)
    except JournalError:
        return {}
    return {a.job_id: f"run {a.run}, sent {_when(a.started_at)}" for a in ledger}


def _changed(records: dict[str, JobRecord], jobs_file: Path) -> list[str]:
    """The jobs of ``jobs_file`` the service saw in another version (none if it is
    unreadable: the report reads the journal, and the job file is only compared)."""
    try:
        jobs = load_jobs(jobs_file)
    except (JobFileError, OSError):
        return []
    return [job.id for job in jobs if job.id in records
            and records[job.id].fingerprint != job.fingerprint()]


async def _read(spec: JournalSpec
                ) -> tuple[dict[str, JobRecord], list[AttemptRecord], list[SpendRecord]]:
    journal = await open_journal(spec, endpoint=None)
    try:
        return await journal.records(), await journal.ledger(), await journal.spending()
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


def _spent(item: Mapping[str, Any]) -> str:
    amount = "cost not known" if item["amount"] is None else \
        format_amount(item["amount"], item["unit"])
    how = {"charged": "", "reserved": " (reserved)", "estimated": " (estimated)",
           "released": " (refused: not charged)"}[item["state"]]
    return f"  {item['job']:<20} run {item['run']}  {item['service']:<8} {amount}{how}"


def _check(record: JobRecord) -> dict[str, str | None]:
    return {"job": record.id, "fate": record.fate or "unknown", "trace_id": record.trace_id,
            "task_id": record.task_id}
