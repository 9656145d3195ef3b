"""The batch journal: each job's state and every paid attempt's fate, in SQLite (WAL).

A job goes ``pending`` → ``submitting`` (the intent, written immediately before a paid request
is written, after its lane's permit and rate window) → ``submitted`` (with the service's task
id, written right after) → ``completed`` (files with their SHA-256) or ``failed`` (the error).
``unknown`` marks a paid submission whose fate cannot be known (the process stopped, or the
answer was lost, while it was in flight). A job waiting in a queue, a pause or a backoff is
``pending``: an attempt the service refused (or that never left) puts it back there.

The ledger (table ``attempts``) has one row per paid attempt: its operation, when it started
and ended, its fate (``sending`` while in flight; then ``not sent``, ``refused``, ``taken``,
``failed after taken`` or ``unknown``, see ``aiomusic._core._fate``), the service's trace id
and the task id. A row a killed run left ``sending`` is ``unknown`` when the journal is opened
again. The job's ``fate`` column is its latest attempt's.

Every write is its own committed transaction with ``synchronous=FULL``, so a killed process
loses nothing that was written. An open journal is locked (SQLite's exclusive locking mode)
until it is closed or its process dies: a second run of it is refused. All SQLite calls run
one at a time in a worker thread; an awaited write finishes even if the caller is cancelled
meanwhile. A write that fails (a full disk, a read-only folder) raises `JournalWriteError`,
never a raw ``sqlite3`` error. Keys never reach it.

The interface a batch uses (a PostgreSQL journal shared by many workers will implement the
same methods, all ``async``):

* ``open(path, endpoint=...)`` (classmethod), ``aclose()``;
* ``records() -> dict[str, JobRecord]``; ``add(job_id, kind=, fingerprint=)``;
  ``update(job_id, state, task_id=, trace_id=, files=, error=, dest_existed=, keep_task=)``;
* ``sending(job_id, operation, attempt, dest_existed=) -> attempt id``: the intent and a
  ledger row, in one transaction;
  ``ended(attempt_id, job_id, fate, trace_id=, error=)``: the attempt's fate (a refused or
  unsent attempt puts the job back to ``pending``, in the same transaction);
  ``settle(job_id, fate)``: a taken attempt's later fate (its task failed; a file adopted);
  ``ledger() -> list[AttemptRecord]``;
* ``upload(key)``, ``record_upload(key, payload, uploaded_at)``, ``forget_upload(key)``;
* ``record_result(job_id, task_id, tracks)``, ``result(job_id)``: what a job that others
  follow (``after``) leaves them (table ``results``), written before its ``completed``.

Schema 2 added the ledger; a schema-1 journal is migrated forward when it is opened.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import attrs

from ._jobs import ChainResult
from ._journal_db import (
    JournalError,
    JournalWriteError,
    connect,
    fetch_result,
    fetch_upload,
    ledger_rows,
    run_sql,
    select_jobs,
    write,
)

if TYPE_CHECKING:
    import sqlite3

__all__ = ["AttemptRecord", "FileRecord", "JobRecord", "JobState", "Journal", "JournalError",
           "JournalWriteError"]

T = TypeVar("T")


class JobState(enum.StrEnum):
    PENDING = "pending"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    COMPLETED = "completed"
    FAILED = "failed"
    UNKNOWN = "unknown"


@attrs.frozen
class FileRecord:
    """An output file: its path relative to the batch's folder, SHA-256 and size."""

    path: str
    sha256: str
    size: int


@attrs.frozen
class JobRecord:
    """What the journal knows of one job.

    Attributes:
        fate: The fate of the job's latest paid attempt (``None``: none was made), a value
            of `aiomusic._core._fate.Fate`, or ``"sending"``.
    """

    id: str
    kind: str
    fingerprint: str
    state: JobState
    task_id: str | None = None
    trace_id: str | None = None
    files: tuple[FileRecord, ...] = ()
    error_type: str | None = None
    error: str | None = None
    dest_existed: bool = False
    updated_at: float = 0.0
    fate: str | None = None


@attrs.frozen
class AttemptRecord:
    """One paid attempt in the ledger."""

    id: int
    job_id: str
    run: int
    attempt: int
    operation: str
    started_at: float
    ended_at: float | None
    fate: str
    trace_id: str | None = None
    task_id: str | None = None
    error_type: str | None = None
    error: str | None = None


class Journal:
    """One batch's journal file. Open it with `open()`; close it with `aclose()`."""

    def __init__(self, path: Path, connection: sqlite3.Connection,
                 limiter: anyio.CapacityLimiter, run: int) -> None:
        self.path = path
        self._db = connection
        self._limiter = limiter
        self.run = run

    @classmethod
    async def open(cls, path: str | Path, *, endpoint: str | None) -> Journal:
        """Open (or create) the journal at ``path`` for a batch against ``endpoint``
        (``None``: only to read it, whatever its endpoint; nothing is written).

        Raises:
            JournalError: the file belongs to another endpoint or is not a journal.
        """
        file = Path(path)
        limiter = anyio.CapacityLimiter(1)
        db, run = await anyio.to_thread.run_sync(connect, file, endpoint, limiter=limiter)
        return cls(file, db, limiter, run)

    async def aclose(self) -> None:
        await self._run(self._db.close)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(run_sql, self.path, fn, *args,
                                              limiter=self._limiter)

    # -- jobs -------------------------------------------------------------------------------

    async def records(self) -> dict[str, JobRecord]:
        """Every job's record, by id."""
        rows = await self._run(select_jobs, self._db)
        return {row[0]: JobRecord(id=row[0], kind=row[1], fingerprint=row[2],
                                  state=JobState(row[3]), task_id=row[4], trace_id=row[5],
                                  files=tuple(FileRecord(**f) for f in json.loads(row[6])),
                                  error_type=row[7], error=row[8], dest_existed=bool(row[9]),
                                  updated_at=row[10], fate=row[11]) for row in rows}

    async def add(self, job_id: str, *, kind: str, fingerprint: str) -> None:
        """Record a new job as pending (a no-op when it is known)."""
        await self._run(write, self._db, [(
            "INSERT OR IGNORE INTO jobs (id, kind, fingerprint, state, updated_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (job_id, kind, fingerprint, JobState.PENDING.value, time.time()))])

    async def update(self, job_id: str, state: JobState, *, task_id: str | None = None,
                     trace_id: str | None = None, files: tuple[FileRecord, ...] | None = None,
                     error: tuple[str, str] | None = None, dest_existed: bool | None = None,
                     keep_task: bool = True) -> None:
        """Move a job to ``state``; ``error`` is ``(type name, message)``.

        The task id is kept unless another is given or ``keep_task`` is false; the error is
        cleared unless one is given. A task id is also written on the job's latest taken
        attempt in the ledger.
        """
        sets = ["state = ?", "updated_at = ?", "error_type = ?", "error = ?"]
        values: list[object] = [state.value, time.time(), *(error or (None, None))]
        if task_id is not None or not keep_task:
            sets.append("task_id = ?")
            values.append(task_id)
        if trace_id is not None:
            sets.append("trace_id = ?")
            values.append(trace_id)
        if files is not None:
            sets.append("files = ?")
            values.append(json.dumps([attrs.asdict(f) for f in files]))
        if dest_existed is not None:
            sets.append("dest_existed = ?")
            values.append(int(dest_existed))
        values.append(job_id)
        statements = [(f"UPDATE jobs SET {', '.join(sets)} WHERE id = ?",  # noqa: S608
                       tuple(values))]
        if task_id is not None:
            statements.append((
                "UPDATE attempts SET task_id = ? WHERE id = (SELECT max(id) FROM attempts "
                "WHERE job_id = ? AND fate = 'taken')", (task_id, job_id)))
        await self._run(write, self._db, statements)

    # -- the ledger -------------------------------------------------------------------------

    async def sending(self, job_id: str, operation: str, attempt: int, *,
                      dest_existed: bool | None = None) -> int:
        """The intent: the job is ``submitting`` and a paid attempt starts now.

        Returns the attempt's id in the ledger (for `ended()`).
        """
        now = time.time()
        sets, values = "state = ?, updated_at = ?, fate = 'sending'", [
            JobState.SUBMITTING.value, now]
        if dest_existed is not None:
            sets += ", dest_existed = ?"
            values.append(int(dest_existed))
        statements = [
            (f"UPDATE jobs SET {sets} WHERE id = ?", (*values, job_id)),  # noqa: S608
            ("INSERT INTO attempts (job_id, run, attempt, operation, started_at, fate) "
             "VALUES (?, ?, ?, ?, ?, 'sending')", (job_id, self.run, attempt, operation, now))]
        return await self._run(write, self._db, statements)

    async def ended(self, attempt_id: int, job_id: str, fate: str, *,
                    trace_id: str | None = None, error: tuple[str, str] | None = None,
                    pending: bool = False) -> None:
        """Record how paid attempt ``attempt_id`` ended; ``pending`` puts the job back to
        ``pending`` (the attempt was refused or never left: nothing was taken)."""
        now = time.time()
        statements = [
            ("UPDATE attempts SET ended_at = ?, fate = ?, trace_id = ?, error_type = ?, "
             "error = ? WHERE id = ?", (now, fate, trace_id, *(error or (None, None)),
                                         attempt_id)),
            ("UPDATE jobs SET fate = ?, updated_at = ?, trace_id = COALESCE(?, trace_id) "
             "WHERE id = ?", (fate, now, trace_id, job_id))]
        if pending:
            statements.append(("UPDATE jobs SET state = ? WHERE id = ?",
                               (JobState.PENDING.value, job_id)))
        await self._run(write, self._db, statements)

    async def settle(self, job_id: str, fate: str) -> None:
        """Give the job's latest taken (or unknown) attempt its later fate: ``failed after
        taken`` when its task failed, ``taken`` when its file was found after a kill."""
        await self._run(write, self._db, [
            ("UPDATE attempts SET fate = ? WHERE id = (SELECT max(id) FROM attempts WHERE "
             "job_id = ? AND fate IN ('taken', 'unknown'))", (fate, job_id)),
            ("UPDATE jobs SET fate = ? WHERE id = ?", (fate, job_id))])

    async def ledger(self) -> list[AttemptRecord]:
        """Every paid attempt, oldest first."""
        rows = await self._run(ledger_rows, self._db)
        return [AttemptRecord(*row) for row in rows]

    # -- results of jobs that others follow -------------------------------------------------

    async def record_result(self, job_id: str, task_id: str | None,
                            tracks: tuple[str, ...]) -> None:
        """Keep what ``job_id`` leaves the jobs that follow it (before it is ``completed``)."""
        await self._run(write, self._db, [(
            "INSERT OR REPLACE INTO results (job_id, task_id, tracks, recorded_at) "
            "VALUES (?, ?, ?, ?)", (job_id, task_id, json.dumps(list(tracks)), time.time()))])

    async def result(self, job_id: str) -> ChainResult | None:
        """What ``job_id`` left the jobs that follow it, if it was recorded."""
        row = await self._run(fetch_result, self._db, job_id)
        return None if row is None else ChainResult(row[0], tuple(json.loads(row[1])))

    # -- uploads ----------------------------------------------------------------------------

    async def upload(self, key: str) -> tuple[dict[str, Any], dt.datetime] | None:
        """A recorded upload (its result and when it was made), if any."""
        row = await self._run(fetch_upload, self._db, key)
        if row is None:
            return None
        payload, when = row
        return json.loads(payload), dt.datetime.fromtimestamp(when, dt.UTC)

    async def record_upload(self, key: str, payload: dict[str, Any],
                            uploaded_at: dt.datetime) -> None:
        await self._run(write, self._db, [
            ("INSERT OR REPLACE INTO uploads (key, payload, uploaded_at) VALUES (?, ?, ?)",
             (key, json.dumps(payload), uploaded_at.timestamp()))])

    async def forget_upload(self, key: str) -> None:
        """Drop a recorded upload (the service no longer knows it)."""
        await self._run(write, self._db, [("DELETE FROM uploads WHERE key = ?", (key,))])
