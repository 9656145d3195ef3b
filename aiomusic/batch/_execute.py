"""Running any declared operation as a batch job, by how its result arrives.

The declaration says everything the runner needs: the paid call (`Operation.call`), how its
answer becomes a result (`Delivery`), and what it leaves on disk (`Output`). Each pattern is
written once here, with the journal marks that keep money safe: the intent (``submitting``)
right before the paid request, the task id (or the link) right after, ``completed`` with the
files' digests at the end.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from .._core._call import Call
from .._core._config import Service
from .._core._errors import APIError, ResponseError
from .._core._operation import Context, Delivery, Operation, Output, params_of
from .._core._task import Asset, Phase, TaskSnapshot
from .._io._download import audio_suffix, download_url, safe_filename
from .._io._files import AtomicFile
from .._io._folders import atomic_folder
from ..tasks import Task
from ._jobs import OperationJob, OutputFile
from ._journal import FileRecord, JobState

if TYPE_CHECKING:
    from .._core._session import MusicSession
    from ._outcome import Run
    from ._steps import Steps

__all__ = ["context_for", "execute", "with_uploads"]

#: The deliveries whose paid answer itself is the file (so a file found after a kill is the
#: finished result: the atomic rename happens only once the audio is complete and checked).
WRITES_DURING_CALL = (Delivery.INLINE_HEX, Delivery.SSE_HEX)


def context_for(session: MusicSession, op: Operation, params: Any) -> Context:
    """What the operation's pure builder may know beyond its parameters."""
    if op.service == "minimax":
        return Context(session.minimax_service)
    if op.service == "suno":
        given = getattr(params, "callback_url", None)
        return Context(Service.SUNO, callback_url=session.suno._callback_url(given))
    return Context(Service(op.service))


async def with_uploads(op: Operation, params: Any,
                       upload: Callable[[Path], Awaitable[str]]) -> Any:
    """The parameters ready to send: local sources uploaded first where the service takes
    only URLs (Suno's file host); other services stream local files in the call itself."""
    if op.service != "suno":
        return params
    changes: dict[str, Any] = {}
    for info in params_of(op.params):
        value = getattr(params, info.name)
        if info.kind == "source" and isinstance(value, Path):
            changes[info.name] = await upload(value)
    return attrs.evolve(params, **changes) if changes else params


async def execute(steps: Steps, run: Run, job: OperationJob, *, resume: str | None
                  ) -> tuple[tuple[OutputFile, ...], str | None, Any]:
    """Run ``job`` to its files; returns them, the service's trace or task id, and the
    document of an operation whose result is one (lyrics, a quota), else ``None``.

    ``resume`` is the task id (or link) an earlier run recorded after its paid request was
    taken: the job is followed from there, never paid again. The intent is journaled by the
    transport itself, right before each paid request (`_paid.JobAttempts`); an upload the
    service forgot is uploaded again once (`Steps.healing`).
    """
    op = job.op
    session = steps.session

    async def prepared() -> tuple[Any, Call | None]:
        params = await with_uploads(op, job.params, lambda path: steps.suno_upload(run, path))
        steps.emit(run, "queued")
        # every local check before paying (a client that performs the operation checks its
        # own, local reference files included)
        return params, None if op.perform else op.call(params, context_for(session, op, params))

    if op.perform is not None and op.output is not Output.FILE and resume is None:
        perform = op.perform

        async def document() -> Any:  # a document the client makes (lyrics, a quota)
            return await perform(session, (await prepared())[0], None)

        async with steps.limiter:
            answer = await steps.healing(run, document)
        return await _document(steps, run, job, answer), None, answer
    if op.delivery in WRITES_DURING_CALL or op.perform is not None:
        dest = steps.out / job.out

        async def write() -> Any:
            params, call = await prepared()
            run.dest_existed = await steps.prepare_dest(dest)
            if op.perform is not None:  # the client picks hex, SSE or a link
                return await op.perform(session, params, dest)
            assert call is not None
            return await session.minimax.write(call, dest, timeout=steps.generate_timeout)

        async with steps.limiter:
            result = await steps.healing(run, write)
        assert result.sha256 is not None
        record = FileRecord(job.out, result.sha256, result.bytes_written)
        await steps.mark(run, JobState.COMPLETED, files=(record,), trace_id=result.trace_id)
        return (OutputFile(dest, result.sha256, result.bytes_written),), result.trace_id, None
    handle = resume
    if handle is None:

        async def submit() -> Any:
            params, call = await prepared()
            return await _submit(session, op, params, call, steps.generate_timeout)

        async with steps.limiter:
            answer = await steps.healing(run, submit)
        if op.delivery is Delivery.JSON:
            return await _document(steps, run, job, answer), None, answer
        handle = str(answer.url if op.delivery is Delivery.URL and hasattr(answer, "url")
                     else answer)
        await steps.mark(run, JobState.SUBMITTED, task_id=handle)  # resumable from here
        steps.emit(run, "submitted")
    if op.delivery is Delivery.URL:
        snap = TaskSnapshot(handle, phase=Phase.SUCCEEDED, status="ready",
                            assets=(Asset(url=handle, name=job.id),))
    else:
        assert op.task is not None, f"{op.qualified} declares no task"
        task = Task(session._transport, op.task, handle, submitted=resume is None,
                    hints=steps.hints_for(op.task))
        # the batch's schedule, else the session's for Suno (as SunoTask), else the spec's
        poll = steps.poll or (session.suno.poll_schedule
                              if op.task.service is Service.SUNO else None)
        snap = await task.wait(timeout=steps.task_timeout, poll=poll)
        if op.output is Output.TRACKS:  # their ids, for the jobs that follow this one
            run.tracks = tuple(asset.name for asset in snap.assets)
    files = await _fetch(steps, run, job, snap)
    return files, handle, snap.record if op.output is Output.DOCUMENT else None


async def _fetch(steps: Steps, run: Run, job: OperationJob, snap: TaskSnapshot
                 ) -> tuple[OutputFile, ...]:
    """Download a finished task's outputs where the declaration says they go."""
    if job.op.output is Output.DOCUMENT:
        return await _document(steps, run, job, snap.record)
    assets = snap.assets
    if not assets:
        raise ResponseError(f"job {job.id}: the service finished {snap.task_id} but named "
                            "nothing to download")
    if job.op.output is Output.STEMS:
        files = await _stems(steps, job, assets)
    else:
        targets = [(job.out, assets[0])] if job.op.output is Output.FILE else \
            [(f"{job.out}-{i}{audio_suffix(a.url)}", a) for i, a in enumerate(assets, 1)]
        records: list[FileRecord] = []
        async with steps.limiter:
            for name, asset in targets:
                dest = steps.out / name
                await steps.prepare_dest(dest)
                done = await download_url(steps.session._transport, asset.url, dest,
                                          key=asset.name)
                records.append(FileRecord(name, done.sha256, done.bytes_written))
        files = tuple(records)
    await steps.mark(run, JobState.COMPLETED, files=files)
    return tuple(OutputFile(steps.out / r.path, r.sha256, r.size) for r in files)


async def _submit(session: MusicSession, op: Operation, params: Any, call: Any,
                  timeout: float) -> Any:
    """Send the paid request; its answer as the operation reads it, read within the attempt
    (an answer without its task id or link has an unknown fate). A refusal that means the
    work exists already (Suno's WAV 409) gives the existing task's id instead."""
    assert op.read is not None, f"{op.qualified} declares no answer reader"
    try:
        return await session._transport._submit(call, op.read, timeout=timeout)
    except APIError as error:
        found = await op.on_refused(session, params, error) if op.on_refused else None
        if found is None:
            raise
        return found


async def _stems(steps: Steps, job: OperationJob, assets: tuple[Asset, ...]
                 ) -> tuple[FileRecord, ...]:
    """Every stem into the job's folder, all or nothing: written into a staging folder that
    becomes the job's folder only once every stem is complete (a re-run replaces it)."""
    target = steps.out / job.out
    await steps.prepare_dest(target)
    names = [f"{safe_filename(a.name)}{audio_suffix(a.url)}" for a in assets]
    records = []
    async with steps.limiter, atomic_folder(target, overwrite=True) as staging:
        for name, asset in zip(names, assets, strict=True):
            done = await download_url(steps.session._transport, asset.url, staging / name,
                                      key=asset.name)
            records.append(FileRecord(f"{job.out}/{name}", done.sha256, done.bytes_written))
    return tuple(records)


async def _document(steps: Steps, run: Run, job: OperationJob, value: object
                    ) -> tuple[OutputFile, ...]:
    """Write a JSON result (lyrics, timings, a persona) atomically to the job's output
    (none for an operation that leaves nothing on disk: a quota look-up)."""
    if job.op.output is Output.NOTHING:
        await steps.mark(run, JobState.COMPLETED, files=())
        return ()
    data = json.dumps(_plain(value), indent=2, ensure_ascii=False, default=str).encode()
    dest = steps.out / job.out
    await steps.prepare_dest(dest)
    async with AtomicFile(dest) as out:
        await out.write(data)
    files = (FileRecord(job.out, out.sha256, out.bytes_written),)
    await steps.mark(run, JobState.COMPLETED, files=files)
    return (OutputFile(dest, out.sha256, out.bytes_written),)


def _plain(value: object) -> object:
    if attrs.has(type(value)):
        return attrs.asdict(value)  # type: ignore[arg-type]
    return value
