"""The batch journal: each job's state in SQLite (WAL), written off the event loop.

A job goes ``pending`` → ``submitting`` (the intent, written *before* a paid request) →
``submitted`` (with the service's task id, written right after) → ``completed`` (files with
their SHA-256) or ``failed`` (the error). ``unknown`` marks a paid submission whose fate
cannot be known (the process stopped, or the answer was lost, while it was in flight).

Every write is its own committed transaction with ``synchronous=FULL``, so a killed process
loses nothing that was written. An open journal is locked (SQLite's exclusive locking mode)
until it is closed or its process dies: a second run of it is refused. All SQLite calls run
one at a time in a worker thread; an awaited write finishes even if the caller is cancelled
meanwhile. Keys never reach it.
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

from .._core._errors import ConfigurationError

if TYPE_CHECKING:
    import sqlite3

__all__ = ["FileRecord", "JobRecord", "JobState", "Journal", "JournalError"]

T = TypeVar("T")
_SCHEMA = 1
_LOCK_WAIT = 2.0  # seconds to wait for a journal that another run is closing
_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    task_id TEXT,
    trace_id TEXT,
    files TEXT NOT NULL DEFAULT '[]',
    error_type TEXT,
    error TEXT,
    dest_existed INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS uploads (
    key TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    uploaded_at REAL NOT NULL
);
"""


class JournalError(ConfigurationError):
    """The journal cannot be used for this run (another endpoint, a newer schema, a file
    that is not a journal, a job that changed under the same id, or another run using it)."""


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
    """What the journal knows of one job."""

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


class Journal:
    """One batch's journal file. Open it with `open()`; close it with `aclose()`."""

    def __init__(self, path: Path, connection: sqlite3.Connection,
                 limiter: anyio.CapacityLimiter) -> None:
        self.path = path
        self._db = connection
        self._limiter = limiter

    @classmethod
    async def open(cls, path: str | Path, *, endpoint: str) -> Journal:
        """Open (or create) the journal at ``path`` for a batch against ``endpoint``.

        Raises:
            JournalError: the file belongs to another endpoint or is not a journal.
        """
        file = Path(path)
        limiter = anyio.CapacityLimiter(1)
        db = await anyio.to_thread.run_sync(_connect, file, endpoint, limiter=limiter)
        return cls(file, db, limiter)

    async def aclose(self) -> None:
        await self._run(self._db.close)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    # -- jobs -------------------------------------------------------------------------------

    async def records(self) -> dict[str, JobRecord]:
        """Every job's record, by id."""
        rows = await self._run(_select, self._db)
        return {row.id: row for row in rows}

    async def add(self, job_id: str, *, kind: str, fingerprint: str) -> None:
        """Record a new job as pending (a no-op when it is known)."""
        await self._run(_write, self._db,
                        "INSERT OR IGNORE INTO jobs (id, kind, fingerprint, state, updated_at) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (job_id, kind, fingerprint, JobState.PENDING.value, time.time()))

    async def update(self, job_id: str, state: JobState, *, task_id: str | None = None,
                     trace_id: str | None = None, files: tuple[FileRecord, ...] | None = None,
                     error: tuple[str, str] | None = None, dest_existed: bool | None = None,
                     keep_task: bool = True) -> None:
        """Move a job to ``state``; ``error`` is ``(type name, message)``.

        The task id is kept unless another is given or ``keep_task`` is false; the error is
        cleared unless one is given.
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
        await self._run(_write, self._db, f"UPDATE jobs SET {', '.join(sets)} WHERE id = ?",  # noqa: S608
                        tuple(values))

    # -- uploads ----------------------------------------------------------------------------

    async def upload(self, key: str) -> tuple[dict[str, Any], dt.datetime] | None:
        """A recorded upload (its result and when it was made), if any."""
        row = await self._run(_fetch_upload, self._db, key)
        if row is None:
            return None
        payload, when = row
        return json.loads(payload), dt.datetime.fromtimestamp(when, dt.UTC)

    async def record_upload(self, key: str, payload: dict[str, Any],
                            uploaded_at: dt.datetime) -> None:
        await self._run(_write, self._db,
                        "INSERT OR REPLACE INTO uploads (key, payload, uploaded_at) "
                        "VALUES (?, ?, ?)", (key, json.dumps(payload), uploaded_at.timestamp()))


# -- worker-thread side ------------------------------------------------------------------------


def _connect(path: Path, endpoint: str) -> sqlite3.Connection:
    import sqlite3  # here, so that `import aiomusic` stays light

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                             timeout=_LOCK_WAIT)
    except (OSError, sqlite3.Error) as exc:
        raise JournalError(f"cannot open the journal {path}: {exc}") from exc
    try:
        # Held until the connection closes (or the process dies): a second run of the same
        # journal would send the same paid requests again.
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE "
                                               "type = 'table'")}
        if tables and "meta" not in tables:
            raise sqlite3.DatabaseError("it is another program's database")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_DDL)
        db.execute("BEGIN IMMEDIATE")  # takes the lock for writing now, not mid-run
        db.execute("COMMIT")
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        schema = int(meta.get("schema", _SCHEMA))
    except (sqlite3.DatabaseError, ValueError) as exc:
        db.close()
        if getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise JournalError(
                f"the journal {path} is in use: another run of this batch has it (in this or "
                "another process), or another program holds it open. Two runs of one journal "
                "would send the same paid requests twice: wait for the other run to end, or "
                "stop it (or close the program), then run again") from exc
        raise JournalError(f"{path} is not an aiomusic journal ({exc}); give another "
                           "--journal path") from exc
    if schema > _SCHEMA:
        db.close()
        raise JournalError(f"{path} was written by a newer aiomusic (journal schema {schema}); "
                           "upgrade aiomusic or use another journal")
    recorded = meta.get("endpoint")
    if recorded is not None and recorded != endpoint:
        db.close()
        raise JournalError(
            f"{path} records a batch against {recorded}, but this run uses {endpoint}; its "
            "task and upload ids mean nothing there. Use the same endpoint, or another journal")
    if recorded is None:
        with db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(_SCHEMA),))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('endpoint', ?)", (endpoint,))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('created', ?)",
                       (dt.datetime.now(dt.UTC).isoformat(),))
    return db


def _write(db: sqlite3.Connection, sql: str, values: tuple[object, ...]) -> None:
    with db:
        db.execute(sql, values)


def _select(db: sqlite3.Connection) -> list[JobRecord]:
    rows = db.execute("SELECT id, kind, fingerprint, state, task_id, trace_id, files, "
                      "error_type, error, dest_existed, updated_at FROM jobs").fetchall()
    return [JobRecord(id=r[0], kind=r[1], fingerprint=r[2], state=JobState(r[3]), task_id=r[4],
                      trace_id=r[5], files=tuple(FileRecord(**f) for f in json.loads(r[6])),
                      error_type=r[7], error=r[8], dest_existed=bool(r[9]), updated_at=r[10])
            for r in rows]


def _fetch_upload(db: sqlite3.Connection, key: str) -> tuple[str, float] | None:
    row = db.execute("SELECT payload, uploaded_at FROM uploads WHERE key = ?", (key,)).fetchone()
    return None if row is None else (row[0], row[1])
