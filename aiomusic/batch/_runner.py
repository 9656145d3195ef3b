"""The batch runner: many jobs concurrently within a session's lanes, resumable by journal.

One job's failure never stops the others. Outcomes arrive as jobs end. With a journal, the
intent to submit is written before every paid request and the task id right after, so a run
that was killed can be run again without paying twice (see ``docs/batch.md``).
"""

from __future__ import annotations

import contextvars
import math
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from .._core._errors import AiomusicError, LocalFileError, SubmissionUnknownError, TaskFailedError
from .._core._events import Event, JobProgress, Progress, RequestStarted, RetryScheduled
from .._core._log import logger
from .._core._operation import Delivery
from ._execute import WRITES_DURING_CALL, execute
from ._jobs import Job, MiniMaxJob, OutputFile, SunoJob
from ._journal import FileRecord, JobRecord, JobState, Journal, JournalError
from ._outcome import BatchSummary, JobOutcome, Run, Status, summarize
from ._steps import Steps, emit_stage, remove_leftovers, sha256_file

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
        resubmit_unknown: Send again the paid submissions whose fate is unknown (you may pay
            twice for them).
        generate_timeout: Seconds for one MiniMax generation, retries included.
        task_timeout: Seconds to wait for one Suno task.
        poll: The polling schedule of Suno tasks (default: the session's).
        endpoint: What the journal records as the service endpoint (default: the session's
            base URLs); a journal refuses a run against another endpoint.
    """

    def __init__(self, session: MusicSession, jobs: Sequence[Job], *, out: str | os.PathLike[str],
                 journal: str | os.PathLike[str] | None = None, concurrency: int = 8,
                 resubmit_unknown: bool = False, generate_timeout: float = 600.0,
                 task_timeout: float = 900.0, poll: PollSchedule | None = None,
                 endpoint: str | None = None) -> None:
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
        self._session = session
        self.jobs = tuple(jobs)
        self.out = Path(out)
        self.journal_path = None if journal is None else Path(journal)
        self.concurrency = concurrency
        self.resubmit_unknown = resubmit_unknown
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
            ConfigurationError: Suno jobs but no callback URL anywhere (nothing was sent).
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
                        outcome = await self._job(steps, job, records.get(job.id))
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
                self._summary = summarize(self.jobs, outcomes, counters,
                                           time.perf_counter() - started,
                                           interrupted=not finished)

    async def _prepare(self, journal: Journal | None) -> dict[str, JobRecord]:
        if any(job.op.service == "suno" and not getattr(job.params, "callback_url", 1)
               for job in self.jobs):
            self._session.suno._callback_url(None)  # raises ConfigurationError if none
        await anyio.to_thread.run_sync(lambda: self.out.mkdir(parents=True, exist_ok=True))
        await anyio.to_thread.run_sync(remove_leftovers, self.out, self.jobs)
        if journal is None:
            return {}
        records = await journal.records()
        changed = [job.id for job in self.jobs
                   if job.id in records and records[job.id].fingerprint != job.fingerprint()]
        if changed:
            raise JournalError(
                f"{journal.path} records other jobs under the ids {', '.join(changed[:5])}"
                f"{' ...' if len(changed) > 5 else ''}: a job changed since the journal was "
                "written. Give changed jobs new ids, or use another journal")
        for job in self.jobs:
            if job.id not in records:
                await journal.add(job.id, kind=job.kind, fingerprint=job.fingerprint())
        return records

    # -- one job ----------------------------------------------------------------------------

    async def _job(self, steps: Steps, job: Job, record: JobRecord | None) -> JobOutcome:
        run = Run(job)
        if record is not None:
            run.state, run.task_id = record.state, record.task_id
        token = _CURRENT.set(run)
        try:
            outcome = await self._attempt(steps, run, record)
        except SubmissionUnknownError as exc:
            outcome = await self._ended(steps, run, "unknown", exc, JobState.UNKNOWN)
        except (AiomusicError, OSError) as exc:
            error = exc if isinstance(exc, AiomusicError) else _os_error(exc)
            outcome = await self._ended(steps, run, "failed", error, JobState.FAILED)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._interrupted(steps, run)
            raise
        except Exception as exc:  # noqa: BLE001 - one job's surprise must not stop the others
            logger.error("batch job %s: unexpected %s", job.id, type(exc).__name__,
                         exc_info=exc)
            outcome = await self._unexpected(steps, run, exc)
        except BaseExceptionGroup:  # a cancellation through a task group of the step (trio)
            with anyio.CancelScope(shield=True):
                await self._interrupted(steps, run)
            raise
        finally:
            _CURRENT.reset(token)
        self._session.emit(JobProgress(job=job.id, stage=outcome.status,
                                       detail=type(outcome.error).__name__
                                       if outcome.error else outcome.note or None))
        return outcome

    async def _unexpected(self, steps: Steps, run: Run, exc: Exception) -> JobOutcome:
        """A failure no typed error describes (a bug, or an answer nothing anticipated)."""
        what = f"{type(exc).__name__}: {str(exc)[:200]}"
        if run.sent and run.state is JobState.SUBMITTING:
            error: AiomusicError = SubmissionUnknownError(
                f"job {run.job.id}: an unexpected error ({what}) ended it after its paid "
                "request was sent, so whether it was generated (and charged) is unknown. "
                "Check your account; run again with --resubmit-unknown to send it again",
                operation=run.job.kind, reason="unexpected error")
            error.__cause__ = exc
            return await self._ended(steps, run, "unknown", error, JobState.UNKNOWN)
        error = AiomusicError(f"job {run.job.id}: an unexpected error ({what}); please report "
                              "it with the log")
        error.__cause__ = exc
        return await self._ended(steps, run, "failed", error, JobState.FAILED)

    async def _attempt(self, steps: Steps, run: Run, record: JobRecord | None) -> JobOutcome:
        job = run.job
        note = ""
        if record is not None and record.state is JobState.COMPLETED:
            self._stage(run, "verifying")
            files = await steps.verify(record.files)
            if files is not None:
                return JobOutcome(job, "skipped", files=files, task_id=record.task_id,
                                  trace_id=record.trace_id, note="done in an earlier run")
            note = "a file of an earlier run is missing or changed: made again"
            logger.info("batch job %s: %s", job.id, note)
        if record is not None and record.state in (JobState.SUBMITTING, JobState.UNKNOWN):
            adopted = await self._adopt(steps, run, record)
            if adopted is not None:
                return adopted
            if not self.resubmit_unknown:
                error = SubmissionUnknownError(
                    f"job {job.id}: an earlier run stopped while its paid submission was in "
                    "flight, so it may have been generated (and charged). Check your account; "
                    "run again with --resubmit-unknown (resubmit_unknown=True) to send it again",
                    operation=job.kind, reason="interrupted")
                if run.state is JobState.SUBMITTING:
                    await steps.mark(run, JobState.UNKNOWN, error=error)
                return JobOutcome(job, "unknown", error=error, task_id=record.task_id)
            note = "re-submitted after an unknown fate, as asked"
        if isinstance(job, MiniMaxJob):
            result = await steps.minimax(run, job)
            return JobOutcome(job, "completed", files=result[0], trace_id=result[1],
                              retries=run.retries, note=note)
        # a task id (or a link) recorded after the paid request was taken: follow it, never
        # pay again; unless the task itself failed, which a re-run submits anew
        resumable = run.task_id is not None and (
            record is None or record.state is not JobState.FAILED
            or record.error_type != TaskFailedError.__name__)
        resumed = resumable and run.state is not JobState.SUBMITTING
        resume = run.task_id if resumed else None
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

    async def _adopt(self, steps: Steps, run: Run, record: JobRecord) -> JobOutcome | None:
        """A generation that completed just before its process died is kept, not re-paid."""
        job = run.job
        if job.op.delivery not in WRITES_DURING_CALL or record.dest_existed:
            return None
        path = self.out / job.out
        if not await anyio.to_thread.run_sync(path.is_file):
            return None
        digest, size = await anyio.to_thread.run_sync(sha256_file, path)
        files = (FileRecord(job.out, digest, size),)
        await steps.mark(run, JobState.COMPLETED, files=files)
        return JobOutcome(job, "completed", files=(OutputFile(path, digest, size),),
                          note="its file was written just before the earlier run stopped")

    async def _ended(self, steps: Steps, run: Run, status: Status, error: AiomusicError,
                     state: JobState) -> JobOutcome:
        await steps.mark(run, state, error=error)
        logger.info("batch job %s %s: %s", run.job.id, status, type(error).__name__)
        return JobOutcome(run.job, status, error=error, task_id=run.task_id,
                          retries=run.retries)

    async def _interrupted(self, steps: Steps, run: Run) -> None:
        """Leave the journal consistent when the batch is stopped mid-job."""
        if run.state is not JobState.SUBMITTING:
            return  # pending, submitted (resumable) or ended: nothing to fix
        if run.sent:
            error = SubmissionUnknownError(
                f"job {run.job.id}: stopped while its paid submission was in flight",
                operation=run.job.kind, reason="interrupted")
            await steps.mark(run, JobState.UNKNOWN, error=error)
        else:
            await steps.mark(run, JobState.PENDING)

    # -- progress ---------------------------------------------------------------------------

    def _stage(self, run: Run, stage: str, *, done: int | None = None,
               total: int | None = None, detail: str | None = None) -> None:
        emit_stage(self._session, run, stage, done=done, total=total, detail=detail)

    def _translate(self, run: Run, event: Event) -> None:
        if isinstance(event, RequestStarted):
            if event.paid:
                run.sent = True
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


def _os_error(exc: OSError) -> AiomusicError:
    where = exc.filename if isinstance(exc.filename, str) else None
    error = LocalFileError(f"{type(exc).__name__}: {exc.strerror or exc}"
                           f"{f' ({where})' if where else ''}; check the output folder's "
                           "space and permissions, then run again", path=where)
    error.__cause__ = exc
    return error
