"""The batch runner: many jobs concurrently within a session's lanes, resumable by journal.

One job's failure never stops the others; what stops the batch is what would fail every job
(the journal or the disk cannot be written, a key is refused): then no more paid requests
are sent. Outcomes arrive as jobs end. With a journal, the intent to submit is written
immediately before every paid request and the task id right after, so a run that was killed
can be run again without paying twice; a re-run pays again only where the user said so (see
``docs/batch.md``).
"""

from __future__ import annotations

import contextvars
import math
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from .._core._errors import AiomusicError
from .._core._events import Event, JobProgress, Progress, RequestStarted, RetryScheduled
from .._core._fate import PAID_ATTEMPTS
from .._core._log import logger
from .._core._operation import Delivery
from .._core._paid_errors import BatchStoppedError, PreflightError
from ._chain import Chains, link
from ._ending import failed, interrupted, unexpected
from ._execute import WRITES_DURING_CALL, execute
from ._jobs import Job, MiniMaxJob, OutputFile, SunoJob
from ._journal import JobRecord, JobState, Journal, JournalError, JournalWriteError
from ._outcome import BatchSummary, JobOutcome, Run, summarize
from ._paid import Halted, JobAttempts, Resubmit, expected_bytes
from ._preflight import preflight
from ._rerun import decide
from ._steps import Steps, emit_stage, remove_leftovers

if TYPE_CHECKING:
    from .._core._session import MusicSession
    from ..suno import PollSchedule

__all__ = ["Batch", "BatchSummary", "JobOutcome", "OutputFile"]

_CURRENT: contextvars.ContextVar[Run] = contextvars.ContextVar("aiomusic_batch_job")
_TASK_STAGES = {"PENDING": "pending", "TEXT_SUCCESS": "text", "FIRST_SUCCESS": "first",
                "SUCCESS": "complete"}


class Batch:
    """Run many jobs in one session: MiniMax generations and Suno tasks, mixed.

    ::

        jobs = aiomusic.load_jobs("jobs.jsonl")
        async with aiomusic.MusicSession() as session:
            batch = aiomusic.Batch(session, jobs, out="songs", journal="songs/journal.sqlite")
            async with batch.results() as results:
                async for outcome in results:
                    print(outcome.job.id, outcome.status)
        print(batch.summary)

    Args:
        session: The session whose lanes, retries and keys the jobs use.
        jobs: The jobs (see `load_jobs()`); ids must be unique.
        out: The folder for the audio (created if missing).
        journal: A journal file: run the same batch again with it to resume (see
            ``docs/batch.md``). ``None`` runs without one.
        concurrency: Jobs working at once (uploading, generating, downloading). Suno tasks
            waiting for the service do not count.
        resubmit: Jobs of earlier runs to **pay for again** (you may pay twice): any of
            ``"unknown"`` (a paid request whose fate is unknown), ``"failed-after-taken"``
            (the service took it, then it failed), ``"missing"`` (a finished job's file is
            gone) and job ids. Without it, a re-run pays only for jobs never taken.
        resubmit_unknown: The same as ``resubmit="unknown"``.
        job_file: The job file the jobs came from: no output may overwrite it.
        generate_timeout: Seconds for one MiniMax generation, retries included.
        task_timeout: Seconds to wait for one Suno task.
        poll: The polling schedule of Suno tasks (default: the session's).
        endpoint: What the journal records as the service endpoint (default: the session's
            base URLs); a journal refuses a run against another endpoint.
    """

    def __init__(self, session: MusicSession, jobs: Sequence[Job], *, out: str | os.PathLike[str],
                 journal: str | os.PathLike[str] | None = None, concurrency: int = 8,
                 resubmit: str | Iterable[str] | None = None, resubmit_unknown: bool = False,
                 job_file: str | os.PathLike[str] | None = None,
                 generate_timeout: float = 600.0, task_timeout: float = 900.0,
                 poll: PollSchedule | None = None, endpoint: str | None = None) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        for name, value in (("generate_timeout", generate_timeout),
                            ("task_timeout", task_timeout)):
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        ids = [job.id for job in jobs]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise ValueError(f"job ids must be unique; {dup!r} appears more than once")
        problems = link(jobs)[1]
        if problems:
            raise ValueError("chained jobs: " + "; ".join(
                f"{field}: {text}" if field else text for _line, field, text in problems))
        self._session = session
        self.jobs = tuple(jobs)
        self.out = Path(out)
        self.journal_path = None if journal is None else Path(journal)
        self.concurrency = concurrency
        self.resubmit = Resubmit.parse(resubmit, job_ids=ids, unknown=resubmit_unknown)
        self.resubmit_unknown = self.resubmit.unknown
        self.job_file = None if job_file is None else Path(job_file)
        self.generate_timeout = generate_timeout
        self.task_timeout = task_timeout
        self.poll = poll
        self.endpoint = endpoint or _endpoint(session)
        self._summary: BatchSummary | None = None

    @property
    def summary(self) -> BatchSummary:
        """The summary of the last run (raises before a run ended)."""
        if self._summary is None:
            raise RuntimeError("the batch has not run yet: use `await batch.run()` or "
                               "`async with batch.results() as results: ...` first")
        return self._summary

    async def run(self) -> BatchSummary:
        """Run every job to its end and return the summary."""
        async with self.results() as results:
            async for _outcome in results:
                pass
        return self.summary

    @asynccontextmanager
    async def results(self) -> AsyncIterator[AsyncIterator[JobOutcome]]:
        """Run the batch; iterate over the outcomes as jobs end.

        Leaving the block early stops the jobs still running: their journal entries stay
        consistent (a submitted Suno task is resumed next time; a paid request that was in
        flight is marked unknown), and no partial file is left.

        Raises:
            JournalError: the journal belongs to another endpoint or a job changed under
                the same id (nothing was sent).
            PreflightError: a local check failed: a key, a callback URL, the output folder,
                an output that would overwrite the journal, the job file or an input, an
                extension, a source that is not audio, a key the service refused (nothing
                was sent).
            BatchStoppedError: the batch stopped sending paid requests (the journal or the
                disk could not be written, a key was refused, no room left); its
                ``__cause__`` says why. The summary is set.
        """
        started = time.perf_counter()
        outcomes: list[JobOutcome] = []
        counters = Counter[str]()
        async with AsyncExitStack() as stack:
            journal = None
            if self.journal_path is not None:
                journal = await Journal.open(self.journal_path, endpoint=self.endpoint)
                stack.push_async_callback(_shielded_close, journal)
            records = await self._prepare(journal)
            steps = Steps(self._session, self.out, journal, anyio.CapacityLimiter(
                self.concurrency), poll=self.poll, generate_timeout=self.generate_timeout,
                task_timeout=self.task_timeout)
            chains = Chains(self.jobs)

            def listen(event: Event) -> None:
                if isinstance(event, RetryScheduled):
                    counters[event.reason] += 1
                run = _CURRENT.get(None)
                if run is not None and not isinstance(event, JobProgress):
                    self._translate(run, event)

            stack.callback(self._session.subscribe(listen))
            send, receive = anyio.create_memory_object_stream[JobOutcome](len(self.jobs) or 1)
            stack.callback(send.close)
            stack.callback(receive.close)
            finished = False
            try:
                async with anyio.create_task_group() as tg:

                    async def one(job: Job) -> None:
                        outcome = None
                        try:  # a job another follows tells it when it ended, however
                            outcome = await self._chained(steps, chains, job,
                                                          records.get(job.id))
                        finally:
                            chains.ended(job.id, outcome)
                        if outcome is None:
                            return  # the batch stopped before this job sent anything
                        outcomes.append(outcome)
                        # the reader may have left (Ctrl-C, a break) while this job was ending:
                        # the outcome still counts in the summary and the journal
                        with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                            send.send_nowait(outcome)

                    async def all_jobs() -> None:
                        async with send, anyio.create_task_group() as jobs_tg:
                            for job in self.jobs:
                                jobs_tg.start_soon(one, job)

                    tg.start_soon(all_jobs)
                    try:
                        yield _iterate(receive)
                    finally:
                        tg.cancel_scope.cancel()
                finished = len(outcomes) == len(self.jobs)
            finally:
                halt = steps.halt
                self._summary = summarize(self.jobs, outcomes, counters,
                                          time.perf_counter() - started,
                                          interrupted=not finished,
                                          paid=[p.fate for p in steps.paid],
                                          stopped=None if halt is None else str(halt))
            if halt is not None:
                raise BatchStoppedError(
                    f"the batch stopped sending paid requests: {halt} "
                    f"({self._summary.not_run} job(s) not run; they stay pending)",
                    reason=type(halt).__name__) from halt

    async def _prepare(self, journal: Journal | None) -> dict[str, JobRecord]:
        records = {} if journal is None else await journal.records()
        changed = [job.id for job in self.jobs
                   if job.id in records and records[job.id].fingerprint != job.fingerprint()]
        if changed:
            assert journal is not None
            raise JournalError(
                f"{journal.path} records other jobs under the ids {', '.join(changed[:5])}"
                f"{' ...' if len(changed) > 5 else ''}: a job changed since the journal was "
                "written. Give changed jobs new ids, or use another journal")
        sending = [job for job in self.jobs if job.id not in records
                   or records[job.id].state is not JobState.COMPLETED
                   or self.resubmit.allows(job.id, "missing")]
        await preflight(self._session, sending, out=self.out, journal=self.journal_path,
                        job_file=self.job_file)
        await anyio.to_thread.run_sync(remove_leftovers, self.out, self.jobs)
        if journal is not None:
            for job in self.jobs:
                if job.id not in records:
                    await journal.add(job.id, kind=job.kind, fingerprint=job.fingerprint())
        return records

    # -- one job ----------------------------------------------------------------------------

    async def _chained(self, steps: Steps, chains: Chains, job: Job,
                       record: JobRecord | None) -> JobOutcome | None:
        """Run one job once the job it follows (if any) ended; see `_job`."""
        try:
            ready = await chains.ready(steps, job, record)
        except JournalWriteError as exc:  # the parent's result could not be read
            steps.stop(exc)
            return None
        if ready is None or isinstance(ready, JobOutcome):
            if ready is not None:  # not run: its parent did not complete (or cannot fill it)
                self._session.emit(JobProgress(job=job.id, stage=ready.status,
                                               detail=type(ready.error).__name__))
            return ready
        return await self._job(steps, ready, record, keep=chains.is_parent(job.id))

    async def _job(self, steps: Steps, job: Job, record: JobRecord | None, *,
                   keep: bool = False) -> JobOutcome | None:
        """Run one job; ``None`` when the batch stopped before it sent anything. ``keep``:
        another job follows it, so its result is kept (`Steps.mark`)."""
        if steps.halt is not None:
            return None
        run = Run(job, expected=expected_bytes(job), keep_result=keep)
        if record is not None:
            run.state, run.task_id, run.trace_id = record.state, record.task_id, \
                record.trace_id
        token = _CURRENT.set(run)
        hook = PAID_ATTEMPTS.set(JobAttempts(steps, run))
        try:
            outcome = await self._attempt(steps, run, record)
        except Halted:
            return None  # nothing was sent; the journal still says what it said
        except (JournalWriteError, PreflightError) as exc:  # it would stop every job
            steps.stop(exc)  # nothing was sent for this one: it stays as it was (pending)
            return None
        except (AiomusicError, OSError) as exc:
            outcome = await failed(steps, run, exc)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await interrupted(steps, run)
            raise
        except Exception as exc:  # noqa: BLE001 - one job's surprise must not stop the others
            logger.error("batch job %s: unexpected %s", job.id, type(exc).__name__,
                         exc_info=exc)
            outcome = await unexpected(steps, run, exc)
        except BaseExceptionGroup:  # a cancellation through a task group of the step (trio)
            with anyio.CancelScope(shield=True):
                await interrupted(steps, run)
            raise
        finally:
            PAID_ATTEMPTS.reset(hook)
            _CURRENT.reset(token)
            steps.room.release(job.id)
        self._session.emit(JobProgress(job=job.id, stage=outcome.status,
                                       detail=type(outcome.error).__name__
                                       if outcome.error else outcome.note or None))
        return outcome

    async def _attempt(self, steps: Steps, run: Run, record: JobRecord | None) -> JobOutcome:
        job = run.job
        note, resume = "", None
        if record is not None:
            decided = await decide(steps, run, record, self.resubmit)
            if isinstance(decided, JobOutcome):
                return decided
            note, resume = decided
        if isinstance(job, MiniMaxJob):
            result = await steps.minimax(run, job)
            return JobOutcome(job, "completed", files=result[0], trace_id=result[1],
                              retries=run.retries, note=note)
        resumed = resume is not None
        if isinstance(job, SunoJob):
            files = await steps.suno(run, job, resume=resume)
            return JobOutcome(job, "completed", files=files, task_id=run.task_id,
                              retries=run.retries, resumed=resumed, note=note)
        files, handle, document = await execute(steps, run, job, resume=resume)
        is_task = job.op.delivery is Delivery.TASK
        return JobOutcome(job, "completed", files=files, retries=run.retries, note=note,
                          task_id=handle if is_task else None,
                          trace_id=None if is_task else handle, resumed=resumed,
                          document=document)

    # -- progress ---------------------------------------------------------------------------

    def _stage(self, run: Run, stage: str, *, done: int | None = None,
               total: int | None = None, detail: str | None = None) -> None:
        emit_stage(self._session, run, stage, done=done, total=total, detail=detail)

    def _translate(self, run: Run, event: Event) -> None:
        if isinstance(event, RequestStarted):
            if event.paid:  # the journal's hook (_paid.JobAttempts) marks it sent
                self._stage(run, "generating" if run.job.op.delivery in WRITES_DURING_CALL
                            else "submitting")
            elif event.operation.endswith("upload"):
                self._stage(run, "uploading")
        elif isinstance(event, RetryScheduled):
            run.retries += 1
            self._stage(run, run.stage, detail=f"retrying after {event.reason}")
        elif isinstance(event, Progress):
            if event.stage == "decoding":
                self._stage(run, "decoding", done=event.done)
            elif event.operation == "suno.download":  # every download (any service)
                self._stage(run, "downloading", done=event.done, total=event.total)
            elif run.task_id is not None and event.key == run.task_id:
                # a task moved on: Suno's stages by their short names, others as they are
                self._stage(run, _TASK_STAGES.get(event.stage, event.stage.lower()))


def _iterate(receive: anyio.abc.ObjectReceiveStream[JobOutcome]) -> AsyncIterator[JobOutcome]:
    async def outcomes() -> AsyncIterator[JobOutcome]:
        async with receive:
            async for outcome in receive:
                yield outcome

    return outcomes()


async def _shielded_close(journal: Journal) -> None:
    with anyio.CancelScope(shield=True):
        await journal.aclose()


def _endpoint(session: MusicSession) -> str:
    e = session.endpoints
    return f"minimax={e.for_service(session.minimax_service)} suno={e.suno}"
