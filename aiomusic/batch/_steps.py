"""The steps of batch jobs: shared uploads, a generation, a Suno task, journal marks.

Split from ``_batch.py``, which orchestrates; each step here journals what it did.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import attrs

from .._core._config import Service
from .._core._errors import AiomusicError, APIError, BadRequestError, LocalFileError, NotFoundError
from .._core._events import JobProgress
from .._core._fate import Fate
from .._core._log import logger, redact
from .._core._models import (
    UPLOAD_RETENTION,
    GenerationResult,
    Purpose,
    ReferenceUpload,
    UploadedFile,
)
from .._io._download import audio_suffix
from ..suno._tasks import hints_of
from ._jobs import ChainResult, MiniMaxJob, OutputFile, SunoJob
from ._journal import FileRecord, JobState, Journal
from ._leftovers import remove_leftovers, sha256_file
from ._outcome import Run
from ._paid import Paid, Room, is_stale

if TYPE_CHECKING:
    from .._core._session import MusicSession
    from .._core._task import TaskSpec
    from ..suno import PollSchedule, SunoTask
    from ..tasks import HintSource

__all__ = ["Steps", "emit_stage", "remove_leftovers", "sha256_file"]

T = TypeVar("T")

_REUSE_MARGIN = dt.timedelta(hours=1)


@attrs.define
class Steps:
    """What jobs share: the session, the output folder, the journal, the work limiter and the
    uploads made once per file."""

    session: MusicSession
    out: Path
    journal: Journal | None
    limiter: anyio.CapacityLimiter
    poll: PollSchedule | None = None
    generate_timeout: float = 600.0
    task_timeout: float = 900.0
    halt: AiomusicError | None = None  # why the batch sends no more paid requests
    room: Room = attrs.field(factory=Room)
    paid: list[Paid] = attrs.field(factory=list)  # this run's paid attempts
    results: dict[str, ChainResult] = attrs.field(factory=dict)  # for jobs that follow
    _locks: dict[str, anyio.Lock] = attrs.field(factory=dict)
    _uploads: dict[str, Any] = attrs.field(factory=dict)
    _digests: dict[Path, str] = attrs.field(factory=dict)
    _recorded: set[str] = attrs.field(factory=set)  # uploads reused from an earlier run

    def stop(self, error: AiomusicError) -> None:
        """Send no more paid requests (the first reason wins); jobs in flight end normally."""
        if self.halt is None:
            logger.warning("batch: sending no more paid requests: %s", error)
            self.halt = error

    async def settle(self, run: Run, fate: Fate) -> None:
        """Give ``run``'s taken (or unknown) paid request its later fate."""
        run.fate = fate
        for index in range(len(self.paid) - 1, -1, -1):
            if self.paid[index].job == run.job.id:
                self.paid[index] = attrs.evolve(self.paid[index], fate=fate)
                break
        if self.journal is not None:
            await self.journal.settle(run.job.id, fate.value)

    async def healing(self, run: Run, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt``; if the service refuses an id or a URL an earlier run uploaded
        (unknown or expired: a refusal, not a charge), upload again once and retry."""
        try:
            return await attempt()
        except (BadRequestError, NotFoundError) as exc:
            if not run.reused or not is_stale(exc):
                raise
            logger.info("batch job %s: %s; uploading again", run.job.id, exc)
        for key in run.reused:
            self._uploads.pop(key, None)
            self._recorded.discard(key)
            if self.journal is not None:
                await self.journal.forget_upload(key)
        run.reused.clear()
        self.emit(run, "uploading", detail="the service forgot an earlier upload")
        return await attempt()

    # -- journal ----------------------------------------------------------------------------

    async def mark(self, run: Run, state: JobState, *, error: AiomusicError | None = None,
                   files: tuple[FileRecord, ...] | None = None, task_id: str | None = None,
                   trace_id: str | None = None, dest_existed: bool | None = None) -> None:
        """Move ``run`` to ``state``, in the journal and then in memory.

        In that order: a write cancelled while it waits for the journal's thread never
        happens, and the state in memory must stay the one the journal holds, which is what
        a stop (`Batch._interrupted`) repairs. A job that others follow leaves them its
        result before it is ``completed`` (a kill in between leaves it resumable).
        """
        if state is JobState.COMPLETED and run.keep_result:
            result = ChainResult(task_id or run.task_id, run.tracks)
            if self.journal is not None:
                await self.journal.record_result(run.job.id, result.task_id, result.tracks)
            self.results[run.job.id] = result
        if self.journal is not None:
            said = None
            if error is not None:
                said = (type(error).__name__, redact(str(error), self.session._keys.secrets()))
            await self.journal.update(run.job.id, state, task_id=task_id, trace_id=trace_id,
                                      files=files, error=said, dest_existed=dest_existed)
        run.state = state
        if task_id is not None:
            run.task_id = task_id

    async def verify(self, files: tuple[FileRecord, ...]) -> tuple[OutputFile, ...] | None:
        """The recorded files, if every one is still there with its SHA-256."""

        found: list[OutputFile] = []
        for record in files:
            path = self.out / record.path
            try:
                digest, size = await anyio.to_thread.run_sync(sha256_file, path)
            except OSError:
                return None
            if digest != record.sha256:
                return None
            found.append(OutputFile(path, digest, size))
        return tuple(found) if found else None

    # -- MiniMax ----------------------------------------------------------------------------

    async def minimax(self, run: Run, job: MiniMaxJob
                      ) -> tuple[tuple[OutputFile, ...], str | None]:

        dest = self.out / job.out

        async def generate() -> GenerationResult:
            voice, instrumental = job.refer_voice, job.refer_instrumental
            for path, purpose in ((job.reference, job.purpose),
                                  (job.voice_reference, Purpose.VOICE),
                                  (job.instrumental_reference, Purpose.INSTRUMENTAL)):
                if path is not None:
                    ref = await self._reference(run, path, purpose)
                    voice = voice or ref.voice_id
                    instrumental = instrumental or ref.instrumental_id
            run.dest_existed = await anyio.to_thread.run_sync(_prepare_dest, dest)
            self.emit(run, "queued")  # the intent is journaled right before the request
            return await self.session.minimax.generate(
                dest, lyrics=job.lyrics, refer_voice=voice, refer_instrumental=instrumental,
                audio_setting=job.audio_setting, timeout=self.generate_timeout)

        async with self.limiter:
            result = await self.healing(run, generate)
        assert result.sha256 is not None
        files = (FileRecord(job.out, result.sha256, result.bytes_written),)
        await self.mark(run, JobState.COMPLETED, files=files, trace_id=result.trace_id)
        return (OutputFile(dest, result.sha256, result.bytes_written),), result.trace_id

    async def _reference(self, run: Run, path: Path, purpose: Purpose) -> ReferenceUpload:
        service = self.session.minimax_service.value

        async def upload() -> tuple[dict[str, Any], dt.datetime]:
            self.emit(run, "uploading")
            ref = await self.session.minimax.upload_reference(path, purpose=purpose)
            return _plain(ref), dt.datetime.now(dt.UTC)

        payload = await self._once(run, f"{service}:{purpose.value}", path, upload)
        return ReferenceUpload(purpose=Purpose(payload["purpose"]),
                               voice_id=payload.get("voice_id"),
                               instrumental_id=payload.get("instrumental_id"),
                               trace_id=payload.get("trace_id"))

    # -- Suno -------------------------------------------------------------------------------

    async def suno(self, run: Run, job: SunoJob, *, resume: str | None
                   ) -> tuple[OutputFile, ...]:
        suno = self.session.suno
        if resume is not None:
            self.emit(run, "submitted", detail="resumed by task id")
            task = suno.task(resume)
        else:
            async def submit() -> SunoTask:
                source = job.source if isinstance(job.source, str) else \
                    await self.suno_upload(run, job.source)
                self.emit(run, "queued")  # the intent is journaled right before the request
                return await suno.add_instrumental(
                    source, title=job.title, tags=job.tags, negative_tags=job.negative_tags,
                    callback_url=job.callback_url, vocal_gender=job.vocal_gender,
                    style_weight=job.style_weight,
                    weirdness_constraint=job.weirdness_constraint,
                    audio_weight=job.audio_weight, model=job.model,
                    timeout=self.generate_timeout)

            async with self.limiter:
                task = await self.healing(run, submit)
            await self.mark(run, JobState.SUBMITTED, task_id=task.task_id)
            self.emit(run, "submitted")
        try:
            result = await task.wait(timeout=self.task_timeout, poll=self.poll)
        except (BadRequestError, NotFoundError) as exc:
            if resume is None:
                raise
            raise _lost(job.id, resume, exc) from exc
        run.tracks = tuple(track.id for track in result.tracks)
        return await self._download(run, job, result.tracks)

    async def _download(self, run: Run, job: SunoJob, tracks: tuple[Any, ...]
                        ) -> tuple[OutputFile, ...]:

        records: list[FileRecord] = []
        async with self.limiter:
            for index, track in enumerate(tracks, 1):
                name = f"{job.out}-{index}{audio_suffix(track.audio_url)}"
                dest = self.out / name
                await anyio.to_thread.run_sync(_prepare_dest, dest)
                done = await self.session.suno.download(track, dest)
                records.append(FileRecord(name, done.sha256, done.bytes_written))
        files = tuple(records)
        await self.mark(run, JobState.COMPLETED, files=files)
        return tuple(OutputFile(self.out / r.path, r.sha256, r.size) for r in files)

    async def suno_upload(self, run: Run, path: Path) -> str:
        """The URL of ``path`` on Suno's file host (uploaded once per content)."""
        async def upload() -> tuple[dict[str, Any], dt.datetime]:
            self.emit(run, "uploading")
            done = await self.session.suno.upload(path)
            assert done.uploaded_at is not None  # the client fills it in
            return _plain(done), done.uploaded_at

        payload = await self._once(run, "suno", path, upload)
        return str(payload["download_url"])

    # -- shared uploads ---------------------------------------------------------------------

    async def _once(self, run: Run, kind: str, path: Path,
                    upload: Callable[[], Awaitable[tuple[dict[str, Any], dt.datetime]]]
                    ) -> dict[str, Any]:
        """Upload ``path`` once per content and kind; reuse it while the service keeps it
        (``run`` notes that it relies on an earlier run's upload)."""
        digest = self._digests.get(path)
        if digest is None:
            try:
                digest = (await anyio.to_thread.run_sync(sha256_file, path))[0]
            except OSError as exc:
                raise LocalFileError(f"cannot read {path}: {exc.strerror or exc}",
                                     path=str(path)) from exc
            self._digests[path] = digest
        key = f"{kind}:{digest}"
        lock = self._locks.setdefault(key, anyio.Lock())
        async with lock:
            cached = self._uploads.get(key)
            if cached is None and self.journal is not None:
                found = await self.journal.upload(key)
                if found is not None and _fresh(found[1]):
                    cached = self._uploads[key] = found[0]
                    self._recorded.add(key)
            if cached is not None:
                if key in self._recorded:
                    run.reused.append(key)
                return dict(cached)
            payload, when = await upload()
            if self.journal is not None:
                await self.journal.record_upload(key, payload, when)
            self._uploads[key] = payload
            return payload

    async def prepare_dest(self, dest: Path) -> bool:
        """Create ``dest``'s folder; whether the file exists already."""
        return await anyio.to_thread.run_sync(_prepare_dest, dest)

    def hints_for(self, spec: TaskSpec) -> Callable[[], HintSource | None]:
        """Where tasks of ``spec`` hear callbacks (the Suno client's receiver), if anywhere."""
        if spec.service is not Service.SUNO:
            return lambda: None
        return hints_of(self.session.suno)

    def emit(self, run: Run, stage: str, *, detail: str | None = None) -> None:
        emit_stage(self.session, run, stage, detail=detail)


def emit_stage(session: MusicSession, run: Run, stage: str, *, done: int | None = None,
               total: int | None = None, detail: str | None = None) -> None:
    """Remember ``run``'s stage and tell the session's listeners (a ``JobProgress``)."""
    run.stage = stage
    session.emit(JobProgress(job=run.job.id, stage=stage, done=done, total=total,
                             detail=detail))


def _fresh(uploaded_at: dt.datetime) -> bool:
    """Whether an upload is still kept by the service (3 days), with an hour to spare."""
    return dt.datetime.now(dt.UTC) + _REUSE_MARGIN < uploaded_at + UPLOAD_RETENTION


def _plain(value: ReferenceUpload | UploadedFile) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, dt.datetime) else
                v.value if isinstance(v, Purpose) else v)
            for k, v in attrs.asdict(value, recurse=False).items()}


def _prepare_dest(dest: Path) -> bool:
    """Create the destination's folder; return whether the file exists already."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        return dest.exists()
    except OSError as exc:
        raise LocalFileError(f"cannot create the folder {dest.parent}: {exc.strerror or exc}",
                             path=str(dest.parent)) from exc


def _lost(job_id: str, task_id: str, refusal: APIError) -> NotFoundError:
    """The error for a task that an earlier run submitted and the service no longer knows."""
    said = refusal.provider_message or refusal.message
    return NotFoundError(
        f"job {job_id}: the service does not know task {task_id}, which an earlier run "
        f"submitted ({said}). Suno keeps tasks for about 14 days, and an embedded emulator "
        "(--emulator) forgets its tasks when its command ends. The submission was paid; to "
        "generate the job again, give it a new id or use a new journal",
        provider=refusal.provider, status_code=refusal.status_code,
        provider_code=refusal.provider_code, provider_message=refusal.provider_message,
        trace_id=refusal.trace_id, body=refusal.body)
