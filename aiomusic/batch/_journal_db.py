"""The SQLite side of the journal: the schema, its migrations, and every statement.

Everything here runs in the journal's worker thread (see ``_journal.py``). SQLite failures come
out typed: `JournalError` when the file cannot be used, `JournalWriteError` when a write (or
read) fails mid-run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .._core._errors import ConfigurationError, LocalFileError

if TYPE_CHECKING:
    import sqlite3

__all__ = ["JournalError", "JournalWriteError", "connect", "fetch_result", "fetch_upload",
           "ledger_rows", "run_sql", "select_jobs", "write"]

T = TypeVar("T")
SCHEMA = 2
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
#: Schema 1 -> 2: the ledger of paid attempts, and each job's latest fate.
_LEDGER = """
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    run INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    operation TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    fate TEXT NOT NULL,
    trace_id TEXT,
    task_id TEXT,
    error_type TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS attempts_by_job ON attempts (job_id);
"""
#: The results jobs that others follow leave them (``batch/_chain.py``): written before the
#: job's ``completed``, so a completed parent always has one. A table of its own, created when
#: missing: an older journal gains it without a new schema number.
_RESULTS = """
CREATE TABLE IF NOT EXISTS results (
    job_id TEXT PRIMARY KEY,
    task_id TEXT,
    tracks TEXT NOT NULL DEFAULT '[]',
    recorded_at REAL NOT NULL
);
"""


class JournalError(ConfigurationError):
    """The journal cannot be used for this run (another endpoint, a newer schema, a file
    that is not a journal, a job that changed under the same id, or another run using it)."""


class JournalWriteError(LocalFileError):
    """The journal could not be written (a full disk, a read-only folder, an I/O error).

    The batch stops sending paid requests at once; what the journal holds is still true.
    Free some space (or fix the folder), then run the same batch again to resume.
    """


def run_sql(path: Path, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, with SQLite's failures as `JournalWriteError`."""
    import sqlite3

    try:
        return fn(*args)
    except sqlite3.Error as exc:
        raise JournalWriteError(
            f"the journal {path} could not be written ({exc}): the batch stops sending paid "
            "requests; what the journal holds is still true. Free some space (or make the "
            "folder writable), then run the same batch again to resume", path=str(path)
        ) from exc


def connect(path: Path, endpoint: str | None) -> tuple[sqlite3.Connection, int]:
    """Open the journal for a run against ``endpoint`` (``None``: read-only, for a report).

    Returns the connection and this run's number (1 for the first run of the journal).
    """
    import sqlite3  # here, so that `import aiomusic` stays light

    try:
        if endpoint is None:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                 check_same_thread=False, isolation_level=None,
                                 timeout=_LOCK_WAIT)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                 timeout=_LOCK_WAIT)
    except (OSError, sqlite3.Error) as exc:
        raise JournalError(f"cannot open the journal {path}: {exc}") from exc
    try:
        meta, run = _prepare(db, endpoint)
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
    schema = int(meta.get("schema", SCHEMA))
    recorded = meta.get("endpoint")
    problem = None
    if schema > SCHEMA:
        problem = (f"{path} was written by a newer aiomusic (journal schema {schema}); "
                   "upgrade aiomusic or use another journal")
    elif endpoint is not None and recorded is not None and recorded != endpoint:
        problem = (f"{path} records a batch against {recorded}, but this run uses {endpoint}; "
                   "its task and upload ids mean nothing there. Use the same endpoint, or "
                   "another journal")
    if problem is not None:
        db.close()
        raise JournalError(problem)
    if endpoint is not None:
        try:
            _start_run(db, meta, endpoint, schema, run)
        except sqlite3.Error as exc:  # a full disk, a read-only folder
            db.close()
            raise JournalError(f"cannot write the journal {path} ({exc}); free some space "
                               "or fix the folder, then run again. Nothing was sent") from exc
    return db, run


def _prepare(db: sqlite3.Connection, endpoint: str | None) -> tuple[dict[str, str], int]:
    import sqlite3

    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE "
                                           "type = 'table'")}
    if tables and "meta" not in tables:
        raise sqlite3.DatabaseError("it is another program's database")
    if endpoint is not None:
        # Held until the connection closes (or the process dies): a second run of the same
        # journal would send the same paid requests again.
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_DDL)
        db.executescript(_RESULTS)
        db.execute("BEGIN IMMEDIATE")  # takes the lock for writing now, not mid-run
        db.execute("COMMIT")
    elif not tables:
        raise sqlite3.DatabaseError("it is empty")
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    int(meta.get("schema", SCHEMA))  # a garbled schema is not a journal
    return meta, int(meta.get("runs", "0")) + 1


def _start_run(db: sqlite3.Connection, meta: dict[str, str], endpoint: str, schema: int,
               run: int) -> None:
    """Migrate forward, close what a killed run left in flight, and count this run."""
    with db:
        if schema < 2 or "attempts" not in {r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}:
            db.executescript(_LEDGER)
            columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
            if "fate" not in columns:
                db.execute("ALTER TABLE jobs ADD COLUMN fate TEXT")
        # an attempt still "sending" is one whose process died while it was in flight
        db.execute("UPDATE attempts SET fate = 'unknown' WHERE fate = 'sending'")
        db.execute("UPDATE jobs SET fate = 'unknown' WHERE fate = 'sending'")
        values = {"schema": str(SCHEMA), "runs": str(run)}
        if meta.get("endpoint") is None:
            values |= {"endpoint": endpoint, "created": dt.datetime.now(dt.UTC).isoformat()}
        db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values.items())


def write(db: sqlite3.Connection, statements: Sequence[tuple[str, tuple[object, ...]]]) -> int:
    """Run ``statements`` in one transaction, all or none; the last inserted row's id.

    The connection is in autocommit mode (``isolation_level=None``), where ``with db:``
    opens no transaction: each statement would commit alone, and a kill between two (the
    intent and its ledger row) would keep one without the other.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        last = 0
        for sql, values in statements:
            last = db.execute(sql, values).lastrowid or last
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return last


def select_jobs(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
    fate = "fate" if _has_column(db, "jobs", "fate") else "NULL"
    return db.execute("SELECT id, kind, fingerprint, state, task_id, trace_id, files, "  # noqa: S608
                      f"error_type, error, dest_existed, updated_at, {fate} FROM jobs"
                      ).fetchall()


def ledger_rows(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
    if not _has_table(db, "attempts"):
        return []  # a journal written before the ledger existed
    return db.execute("SELECT id, job_id, run, attempt, operation, started_at, ended_at, fate, "
                      "trace_id, task_id, error_type, error FROM attempts ORDER BY id"
                      ).fetchall()


def fetch_result(db: sqlite3.Connection, job_id: str) -> tuple[str | None, str] | None:
    if not _has_table(db, "results"):
        return None  # a journal opened only to read, written before chains existed
    row = db.execute("SELECT task_id, tracks FROM results WHERE job_id = ?", (job_id,)
                     ).fetchone()
    return None if row is None else (row[0], row[1])


def fetch_upload(db: sqlite3.Connection, key: str) -> tuple[str, float] | None:
    row = db.execute("SELECT payload, uploaded_at FROM uploads WHERE key = ?", (key,)).fetchone()
    return None if row is None else (row[0], row[1])


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                      (name,)).fetchone() is not None


def _has_column(db: sqlite3.Connection, table: str, column: str) -> bool:
    return any(row[1] == column for row in db.execute(f"PRAGMA table_info({table})"))
