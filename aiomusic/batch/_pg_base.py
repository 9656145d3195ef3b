"""The connection side of the batch journal in PostgreSQL: its tables and their migrations,
the pool and the worker's lock, and every statement run with the driver's failures typed.

`PostgresJournal` (``_pg_journal.py``) builds the journal's interface and its claims on it.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

import anyio

from .._core._errors import AiomusicError
from .._core._postgres import conninfo
from ._journal import Journal
from ._journal_db import JournalError, JournalWriteError

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ["Args", "JobLostError", "JournalUnavailableError", "PostgresBase", "is_postgres_url"]

T = TypeVar("T")
Args = Sequence[object] | Mapping[str, object]
SCHEMA = 3
#: The first key of a worker's advisory lock names the database and schema (the second is
#: the worker's id): batches in other schemas of one server never share a lock.
_LOCK_CLASS = "hashtext(current_database() || '.' || current_schema() || '.aiomusic_batch')"

#: Each step brings schema N-1 to N; run under an advisory lock, in one transaction.
MIGRATIONS: tuple[str, ...] = ("""
CREATE OR REPLACE FUNCTION aiomusic_batch_now() RETURNS float8 LANGUAGE sql VOLATILE
  AS 'SELECT extract(epoch FROM clock_timestamp())';
CREATE TABLE IF NOT EXISTS aiomusic_batch_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS aiomusic_batch_workers (
  id serial PRIMARY KEY, host text NOT NULL, pid int NOT NULL,
  started_at float8 NOT NULL, seen_at float8 NOT NULL);
CREATE TABLE IF NOT EXISTS aiomusic_batch_jobs (
  seq bigserial UNIQUE, id text PRIMARY KEY, kind text NOT NULL, fingerprint text NOT NULL,
  state text NOT NULL, task_id text, trace_id text, files jsonb NOT NULL DEFAULT '[]',
  error_type text, error text, dest_existed boolean NOT NULL DEFAULT false,
  updated_at float8 NOT NULL, fate text, owner int, lease_until float8,
  claims int NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS aiomusic_batch_jobs_open ON aiomusic_batch_jobs (seq)
  WHERE owner IS NULL AND state IN ('pending', 'submitting', 'submitted');
CREATE INDEX IF NOT EXISTS aiomusic_batch_jobs_owned ON aiomusic_batch_jobs (owner)
  WHERE owner IS NOT NULL;
CREATE TABLE IF NOT EXISTS aiomusic_batch_attempts (
  id bigserial PRIMARY KEY, job_id text NOT NULL, run int NOT NULL, attempt int NOT NULL,
  operation text NOT NULL, started_at float8 NOT NULL, ended_at float8, fate text NOT NULL,
  trace_id text, task_id text, error_type text, error text);
CREATE INDEX IF NOT EXISTS aiomusic_batch_attempts_job ON aiomusic_batch_attempts (job_id);
CREATE TABLE IF NOT EXISTS aiomusic_batch_uploads (
  key text PRIMARY KEY, payload text NOT NULL, uploaded_at float8 NOT NULL);
""", """
CREATE TABLE IF NOT EXISTS aiomusic_batch_results (
  job_id text PRIMARY KEY, task_id text, tracks jsonb NOT NULL DEFAULT '[]',
  recorded_at float8 NOT NULL);
""", """
CREATE TABLE IF NOT EXISTS aiomusic_batch_spending (
  id bigserial UNIQUE, job_id text NOT NULL, run int NOT NULL, service text NOT NULL,
  kind text, state text NOT NULL, reserved jsonb NOT NULL, amount float8, unit text,
  usd float8, updated_at float8 NOT NULL, PRIMARY KEY (job_id, run));
""")


class JournalUnavailableError(JournalWriteError):
    """PostgreSQL cannot be reached, or was lost mid-run (down, network cut, a timeout).

    The batch stops sending paid requests at once; every job's recorded state is still true,
    and the jobs this worker held are reclaimed by the others (or by the next run) when its
    lease ends. Check that PostgreSQL runs and the URL is right, then run the batch again.
    """


class JobLostError(AiomusicError):
    """This worker no longer owns the job: it hung past its lease (or lost its connection)
    and another worker reclaimed it. Nothing more is sent or written for it here."""

    retryable = False


def is_postgres_url(value: object) -> bool:
    """Whether ``value`` names a PostgreSQL journal rather than a file."""
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))



class _NotOwned(Exception):
    """Rolls back a write whose job this worker no longer owns."""



class PostgresBase(Journal):
    """A journal's connection to PostgreSQL (see `PostgresJournal` for its arguments)."""

    def __init__(self, url: str, *, lease: float = 30.0, timeout: float = 5.0,
                 max_connections: int = 8) -> None:
        if not lease > 0:
            raise ValueError(f"lease must be a positive number of seconds, got {lease!r}")
        info = conninfo(url, what="batch journals")
        import psycopg

        where = (f"PostgreSQL at {info.get('host', 'localhost')}:{info.get('port', 5432)}/"
                 f"{info.get('dbname', '')}")
        self.path = Path(where)  # what messages name (never the password)
        self.where = where
        self.url = url
        # the URL's own options (a search_path, say) are kept beside the statement timeout
        self._options = f"{info.get('options', '')} -c statement_timeout={int(timeout * 1000)}"
        self.lease = lease
        self.timeout = timeout
        self.max_connections = max_connections
        self.run = 0  # this worker's id, once registered
        self.since = 0.0  # when this worker started, on the server's clock
        self._errors: tuple[type[Exception], ...] = (psycopg.Error, OSError)
        self._pool: ConnectionPool[Any] | None = None
        self._lock_conn: psycopg.Connection[Any] | None = None
        self._lock_guard = threading.Lock()
        self._limiter = anyio.CapacityLimiter(max_connections)
        self._aliens: set[str] = set()  # ids in the batch that this worker does not know
        self._lock_class = 0

    def __repr__(self) -> str:
        return f"PostgresJournal({self.where!r}, lease={self.lease})"

    def __str__(self) -> str:
        return self.where

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, *, endpoint: str | None) -> Self:
        """Connect, create or migrate the tables, and register this worker (``endpoint``
        ``None``: only to read it; nothing is written and no worker registers).

        Raises:
            JournalError: it records another endpoint, or a newer schema.
            JournalUnavailableError: PostgreSQL cannot be reached.
        """
        await anyio.to_thread.run_sync(self._start, endpoint)
        return self

    def _start(self, endpoint: str | None) -> None:
        from psycopg_pool import ConnectionPool

        kwargs = {"autocommit": True, "connect_timeout": max(1, round(self.timeout)),
                  "options": self._options.strip()}
        self._pool = ConnectionPool(self.url, min_size=1, max_size=self.max_connections,
                                    timeout=self.timeout, open=False, name="aiomusic-journal",
                                    kwargs=kwargs)
        try:
            self._guard(self._pool.open, wait=True, timeout=self.timeout)
            self._guard(self._migrate, endpoint)
            if endpoint is not None:
                self._guard(self._register, kwargs)
        except BaseException:
            self._close()
            raise

    def _migrate(self, endpoint: str | None) -> None:
        assert self._pool is not None
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('aiomusic_batch_schema'))")
            found = conn.execute("SELECT to_regclass('aiomusic_batch_meta') IS NOT NULL"
                                 ).fetchone()
            meta: dict[str, str] = {}
            if found and found[0]:
                meta = dict(conn.execute("SELECT key, value FROM aiomusic_batch_meta").fetchall())
            elif endpoint is None:
                raise JournalError(f"{self.where} holds no aiomusic batch journal yet: nothing "
                                   "has run with it")
            schema = int(meta.get("schema", "0"))
            if schema > SCHEMA:
                raise JournalError(f"{self.where} was written by a newer aiomusic (journal "
                                   f"schema {schema}); upgrade aiomusic or use another database")
            recorded = meta.get("endpoint")
            if endpoint is not None and recorded is not None and recorded != endpoint:
                raise JournalError(
                    f"{self.where} records a batch against {recorded}, but this run uses "
                    f"{endpoint}; its task and upload ids mean nothing there. Use the same "
                    "endpoint, or another database")
            if endpoint is None:
                return
            for step in MIGRATIONS[schema:]:
                conn.execute(step)
            values = {"schema": str(SCHEMA)}
            if recorded is None:
                values["endpoint"] = endpoint
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO aiomusic_batch_meta VALUES (%s, %s) ON CONFLICT "
                                "(key) DO UPDATE SET value = excluded.value", list(values.items()))

    def _register(self, kwargs: dict[str, Any]) -> None:
        import psycopg

        # the lock is taken in the transaction that makes the worker's row visible: no one
        # can see the row without its lock held
        conn = psycopg.connect(self.url, **kwargs)
        self._lock_conn = conn
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO aiomusic_batch_workers (host, pid, started_at, seen_at) VALUES "
                "(%s, %s, aiomusic_batch_now(), aiomusic_batch_now()) RETURNING id, started_at",
                (socket.gethostname(), os.getpid())).fetchone()
            assert row is not None
            self.run, self.since = int(row[0]), float(row[1])
            lock = conn.execute(f"SELECT {_LOCK_CLASS}").fetchone()
            assert lock is not None
            self._lock_class = int(lock[0])
            conn.execute("SELECT pg_advisory_lock(%s, %s)", (self._lock_class, self.run))

    async def aclose(self) -> None:
        """Leave: give back the jobs still held (by the rules of a reclaim) and close."""
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._leave)

    def _leave(self) -> None:
        try:
            if self._pool is not None and self.run and not self._pool.closed:
                self._guard(self._give_back, None)
        except JournalWriteError:
            pass  # PostgreSQL is gone: the lease ends on its own, the lock with the session
        finally:
            self._close()

    def _close(self) -> None:
        if self._lock_conn is not None:
            self._lock_conn.close()
            self._lock_conn = None
        if self._pool is not None:
            self._pool.close()

    # -- running statements -----------------------------------------------------------------

    def _guard(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(...)`` with the driver's failures as `JournalUnavailableError`."""
        try:
            return fn(*args, **kwargs)
        except (JournalError, JobLostError):
            raise
        except self._errors as exc:
            raise JournalUnavailableError(
                f"the batch journal in {self.where} failed ({type(exc).__name__}: {exc}): the "
                "batch stops sending paid requests; what the journal holds is still true. "
                "Check that PostgreSQL runs and the URL is right, then run the same batch "
                "again", path=self.where) from exc

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._pool is None or self._pool.closed:
            raise JournalUnavailableError(f"the batch journal in {self.where} is closed",
                                          path=self.where)
        return await anyio.to_thread.run_sync(lambda: self._guard(fn, *args),
                                              limiter=self._limiter)

    def _tx(self, statements: Sequence[tuple[str, Args]]
            ) -> list[list[tuple[Any, ...]]]:
        """Run ``statements`` in one transaction; each one's rows (empty when it returns
        none)."""
        assert self._pool is not None
        out: list[list[tuple[Any, ...]]] = []
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            for sql, args in statements:
                cur.execute(sql, args)
                out.append(cur.fetchall() if cur.description is not None else [])
        return out

    async def _write(self, job_id: str,
                     statements: Sequence[tuple[str, Args]]
                     ) -> list[list[tuple[Any, ...]]]:
        """Run ``statements`` if this worker still owns ``job_id`` (the first one must be
        the job's ``UPDATE ... RETURNING``); else nothing is written: `JobLostError`."""
        rows = await self._call(self._tx_owned, statements)
        if rows is None:
            raise JobLostError(f"job {job_id}: this worker (#{self.run}) no longer owns it: it "
                               "hung past its lease or lost PostgreSQL, and another worker "
                               "reclaimed it")
        return rows

    def _tx_owned(self, statements: Sequence[tuple[str, Args]]
                  ) -> list[list[tuple[Any, ...]]] | None:
        assert self._pool is not None
        out: list[list[tuple[Any, ...]]] = []
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                for index, (sql, args) in enumerate(statements):
                    cur.execute(sql, args)
                    out.append(cur.fetchall() if cur.description is not None else [])
                    if index == 0 and not out[0]:
                        raise _NotOwned
        except _NotOwned:
            return None  # rolled back: nothing was written
        return out


    def _give_back(self, job_id: str | None) -> None:
        raise NotImplementedError  # PostgresJournal gives jobs back
