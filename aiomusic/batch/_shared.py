"""The claim loop of a batch shared through PostgreSQL: work on the jobs this worker claims.

``concurrency`` tasks each claim a job, run it, and give it back, until no job needs work and
no other worker holds one (a worker that dies gives its jobs back through a reclaim, so the
others wait for the batch to end, not only for their own jobs). A beat renews this worker's
leases and reclaims the jobs of dead or hung workers every third of the lease, or every second
if that is sooner; an idle task reclaims too before it looks again.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import anyio
import attrs

from .._core._errors import AiomusicError
from .._core._log import logger
from ._jobs import Job
from ._journal import JobRecord, JobState, Journal, JournalError
from ._pg_journal import JobLostError, JournalUnavailableError, PostgresJournal, is_postgres_url

__all__ = ["Claims", "JournalSpec", "check_shared", "journal_spec", "open_journal",
           "work_claimed"]

JournalSpec = Path | PostgresJournal
_OPEN = (JobState.PENDING, JobState.SUBMITTING, JobState.SUBMITTED)


def journal_spec(journal: str | os.PathLike[str] | PostgresJournal | None) -> JournalSpec | None:
    """What ``Batch(journal=...)`` names: a file, or a journal in PostgreSQL (a URL)."""
    if journal is None or isinstance(journal, PostgresJournal):
        return journal
    if is_postgres_url(journal):
        return PostgresJournal(str(journal))
    return Path(journal)


async def open_journal(spec: JournalSpec, *, endpoint: str | None) -> Journal:
    """Open the journal ``spec`` names for a run against ``endpoint`` (``None``: to read)."""
    if isinstance(spec, PostgresJournal):
        return await spec.start(endpoint=endpoint)
    return await Journal.open(spec, endpoint=endpoint)


@attrs.define
class Claims:
    """What this worker claimed and worked, and whether the batch ran out of work."""

    worked: list[Job] = attrs.field(factory=list)
    finished: bool = False


async def work_claimed(journal: PostgresJournal, jobs: Sequence[Job],
                       records: Mapping[str, JobRecord],
                       one: Callable[[Job, JobRecord], Awaitable[None]], claims: Claims, *,
                       concurrency: int, halted: Callable[[], bool],
                       stop: Callable[[AiomusicError], None]) -> None:
    """Run the jobs this worker claims, ``concurrency`` at once, until the batch is done."""
    by_id = {job.id: job for job in jobs}
    # jobs that ended before this worker started are looked at once, as a re-run does
    ended = [job.id for job in jobs if job.id in records
             and records[job.id].state not in _OPEN
             and records[job.id].updated_at < journal.since]
    # renewals, reclaims and idle looks at least every second: a dead worker (its lock
    # freed) is found within about a second whatever the lease
    period = min(1.0, journal.lease / 3)

    async def next_job() -> JobRecord | None:
        record = await journal.claim()
        while record is None and ended:
            record = await journal.claim_ended(ended.pop(0))
        return record

    async def worker() -> bool:
        """Claim and run jobs; ``True`` when the batch has no more work."""
        while not halted():
            record = await next_job()
            if record is None:
                if not await journal.others_working():
                    return True
                await journal.reap()
                await anyio.sleep(period)
                continue
            job = by_id.get(record.id)
            if job is None:
                await journal.disown(record.id)  # another job file's job
                continue
            claims.worked.append(job)
            try:
                await one(job, record)
            except JobLostError as exc:
                logger.warning("batch job %s: %s", job.id, exc)
            finally:
                with anyio.CancelScope(shield=True):
                    await journal.release(job.id)
        return False

    async def beat() -> None:
        while True:
            await anyio.sleep(period)
            await journal.renew()
            await journal.reap()

    done: list[bool] = []

    async def guarded(fn: Callable[[], Awaitable[object]]) -> None:
        try:
            done.append(bool(await fn()))
        except JournalUnavailableError as exc:  # PostgreSQL lost: nothing more is sent
            stop(exc)

    try:
        async with anyio.create_task_group() as beats:
            async with anyio.create_task_group() as workers:
                for _ in range(concurrency):
                    workers.start_soon(guarded, worker)
                beats.start_soon(guarded, beat)
            beats.cancel_scope.cancel()
    finally:
        claims.finished = not halted() and len(done) == concurrency and all(done)


def check_shared(jobs: Sequence[Job], changed: Sequence[Job], *, budgeted: bool) -> None:
    """Refuse, before anything is sent, what a batch shared through PostgreSQL cannot do yet:
    jobs that follow others (a child here would wait for a parent another worker may hold),
    edited jobs (another worker may hold the old version right now: replacing it here would
    race), and a budget (each worker would reserve against it alone: together they could
    pass it)."""
    from ._chain import chain_of

    if budgeted:
        raise JournalError(
            "a budget cannot be kept by the workers of a batch shared through PostgreSQL yet "
            "(each would count only its own spending): drop --budget, or run the batch with a "
            "journal file")
    followed = [job.id for job in jobs if chain_of(job) is not None]
    if followed:
        raise JournalError(
            f"jobs that follow others ({', '.join(followed[:5])}) cannot run in a batch "
            "shared through PostgreSQL yet: run them with a journal file")
    if changed:
        raise JournalError(
            f"the shared batch records other jobs under the ids "
            f"{', '.join(job.id for job in changed[:5])}: in a batch shared through "
            "PostgreSQL an edited job is not replaced; give changed jobs new ids")
