"""A batch's checks before its first paid byte (DESIGN invariant 8).

Everything that can be known on this machine is checked before any job starts, and every
problem is reported at once as one `PreflightError`: a key for every service the batch uses,
an output folder that takes files, outputs that overwrite neither each other nor the journal,
the job file or an input, extensions that match the formats asked for, and local sources that
are audio by their content. Then each key is tried once with a free call where the service
has one (Suno's credits), so that a wrong key stops the batch before it pays for anything.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from .._core._config import Service
from .._core._errors import (
    AiomusicError,
    AuthenticationError,
    ConfigurationError,
    InsufficientCreditsError,
)
from .._core._log import logger
from .._core._operation import Output, params_of
from .._core._paid_errors import PreflightError
from .._io._audio import validate_reference
from .._io._preflight import check_audio_source, check_extension, check_folder
from ._jobs import TRACK_NAME, Job

if TYPE_CHECKING:
    from .._core._session import MusicSession

__all__ = ["preflight"]

_JOURNAL_FILES = ("", "-wal", "-shm", "-journal")


async def preflight(session: MusicSession, jobs: Sequence[Job], *, out: Path,
                    journal: Path | None, job_file: Path | None) -> None:
    """Check ``jobs`` (the ones this run may send) before anything is paid.

    Raises:
        PreflightError: every problem found, and what to do; nothing was sent.
    """
    problems = [*_keys(session, jobs)]
    problems += await anyio.to_thread.run_sync(_local, jobs, out, journal, job_file)
    if problems:
        raise _error(problems)
    if any(job.op.service == "suno" for job in jobs):
        problems += await _suno_key(session)
    if problems:
        raise _error(problems)


def _error(problems: list[str]) -> PreflightError:
    noun = "problem" if len(problems) == 1 else "problems"
    listed = "\n".join(f"  {p}" for p in problems[:20])
    more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
    return PreflightError(f"{len(problems)} {noun} found before anything was sent; nothing "
                          f"was sent (nor paid for). Fix them and run again:\n{listed}{more}",
                          problems=tuple(problems))


def service_of(session: MusicSession, job: Job) -> Service:
    """The service (and so the key) a job's paid request goes to: music-01 where the session
    sends it (the AI/ML API or MiniMax), MiniMax's current models (performed by the client)
    to MiniMax itself."""
    if job.op.service == "minimax":
        return Service.MINIMAX if job.op.perform is not None else session.minimax_service
    return Service(job.op.service)


def _keys(session: MusicSession, jobs: Sequence[Job]) -> Iterator[str]:
    needed: dict[Service, list[str]] = {}
    for job in jobs:
        needed.setdefault(service_of(session, job), []).append(job.id)
    for service, ids in needed.items():
        try:
            session._keys.for_service(service)
        except ConfigurationError as exc:
            shown = ", ".join(ids[:3]) + (" ..." if len(ids) > 3 else "")
            yield f"{exc} ({len(ids)} job(s) need it: {shown})"
    if any(job.op.service == "suno" and not getattr(job.params, "callback_url", None)
           for job in jobs):
        try:
            session.suno._callback_url(None)
        except ConfigurationError as exc:
            yield str(exc)


def _local(jobs: Sequence[Job], out: Path, journal: Path | None,
           job_file: Path | None) -> list[str]:
    """The checks on this machine (run in a worker thread)."""
    problems: list[str] = []
    try:
        check_folder(out)
    except PreflightError as exc:
        problems.append(exc.message)
    protected: dict[str, str] = {}
    if journal is not None:
        for suffix in _JOURNAL_FILES:
            protected[_key(Path(f"{journal}{suffix}"))] = f"the batch's journal {journal}"
    if job_file is not None:
        protected[_key(job_file)] = f"the job file {job_file}"
    for job in jobs:
        for _name, path, _kind in _inputs(job):
            protected.setdefault(_key(path), f"an input of job {job.id} ({path})")
    outputs: dict[str, str] = {}
    judged: dict[tuple[str, Path], str | None] = {}
    for job in jobs:
        problems += _collisions(job, out, protected, outputs)
        fmt = getattr(job.params, "format", None)
        if job.op.output is Output.FILE and isinstance(fmt, str):
            said = check_extension(job.out, fmt)
            if said is not None:
                problems.append(f"job {job.id}: {said}")
        problems += _sources(job, judged)
    return problems


def _key(path: Path) -> str:
    return os.path.normcase(os.path.realpath(path)).casefold()


def _inputs(job: Job) -> Iterator[tuple[str, Path, str]]:
    for info in params_of(job.op.params):
        value = getattr(job.params, info.name, None)
        if info.kind in ("file", "source") and isinstance(value, Path):
            yield info.name, value, info.kind


def _collisions(job: Job, out: Path, protected: Mapping[str, str],
                outputs: dict[str, str]) -> list[str]:
    dest = out / job.out
    shape = job.op.output
    found: list[str] = []
    if shape in (Output.FILE, Output.DOCUMENT):
        key = _key(dest)
        if key in protected:
            found.append(f"job {job.id}: its output {dest} would overwrite {protected[key]}; "
                         "give it another out")
        elif key in outputs:
            found.append(f"job {job.id}: its output {dest} is also the output of job "
                         f"{outputs[key]}; give one of them another out")
        outputs[key] = job.id
    elif shape is Output.TRACKS:
        stem = _key(dest)
        for key, what in protected.items():
            folder, _, name = key.rpartition(os.sep)
            track = TRACK_NAME.fullmatch(name)
            if track and f"{folder}{os.sep}{track.group(1)}" == stem:
                found.append(f"job {job.id}: its tracks ({dest}-<n>.<ext>) would overwrite "
                             f"{what}; give it another out")
    elif shape is Output.STEMS:
        folder = _key(dest) + os.sep
        found += [f"job {job.id}: its stems folder {dest} holds {what}; give it another out"
                  for key, what in protected.items() if key.startswith(folder)]
    return found


def _sources(job: Job, judged: dict[tuple[str, Path], str | None]) -> list[str]:
    """Local inputs judged by their content (a text file renamed .mp3 is not audio); each
    file once per rule (``judged``)."""
    problems = []
    for name, path, _kind in _inputs(job):
        rule = "music-01" if job.op.qualified == "minimax.music-01" else "audio"
        if (rule, path) not in judged:
            judged[rule, path] = _judge(rule, path)
        said = judged[rule, path]
        if said is not None:
            problems.append(f"job {job.id}: {name}: {said}")
    return problems


def _judge(rule: str, path: Path) -> str | None:
    try:
        if rule == "music-01":
            validate_reference(path, name=str(path))  # music-01's lengths, too
        else:
            check_audio_source(path, name=str(path))
    except AiomusicError as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot read {path} ({exc.strerror or exc})"
    return None


async def _suno_key(session: MusicSession) -> list[str]:
    """Try the Suno key once with the free credits call."""
    try:
        credits = await session.suno.get_credits(timeout=60)
    except AuthenticationError as exc:
        return [f"the Suno key was refused ({exc.provider_message or exc.message}); check "
                "SUNO_API_KEY"]
    except InsufficientCreditsError as exc:
        return [f"the Suno account has no credits left ({exc.provider_message or exc})"]
    except AiomusicError as exc:  # a free check that failed proves nothing: go on
        logger.warning("batch: could not check the Suno key (%s); going on", exc)
        return []
    if credits <= 0:
        return ["the Suno account has no credits left; top it up, then run again"]
    return []
