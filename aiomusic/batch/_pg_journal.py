"""A batch journal in PostgreSQL, shared by any number of workers (``aiomusic[postgres]``).

The same interface as the SQLite journal (`Journal`, see its module), plus claims. Each job is
**claimed** (``SELECT ... FOR UPDATE SKIP LOCKED``) by one worker, which becomes its owner with
a lease on the server's clock; every change of a job's state is conditional on still owning it
(else `JobLostError`), and the intent (``submitting``) is the last write before a paid request.

A worker registers in ``aiomusic_batch_workers`` and holds a session-level advisory lock on its
id on a connection of its own for as long as it runs: when its process dies, PostgreSQL ends
the session and frees the lock, and the next worker to look reclaims its jobs. A worker that
hangs (SIGSTOP, a frozen VM) or a host that is lost stops renewing its leases: its jobs are
reclaimed when they expire. The reclaim rules keep money safe: a claimed job (``pending``)
is pending again; ``submitting`` (the paid request may have left) becomes ``unknown``, never
re-sent; ``submitted`` is followed by its task id by the next owner.

psycopg 3 runs synchronously in worker threads (its asyncio client does not run under trio),
from a pool, with a connect timeout and a statement timeout. When PostgreSQL cannot be reached
(or is lost mid-run) a call raises `JournalUnavailableError`: the batch stops sending paid
requests, and what the journal holds stays true. Keys never reach it.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anyio
import attrs

from .._core._errors import AiomusicError
from .._core._postgres import conninfo
from ._journal import AttemptRecord, FileRecord, JobRecord, JobState, Journal, job_changes
from ._journal_db import JournalError, JournalWriteError

if TYPE_CHECKING:
    import datetime as dt

    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ["JobLostError", "JournalUnavailableError", "PostgresJournal", "is_postgres_url"]

T = TypeVar("T")
Args = Sequence[object] | Mapping[str, object]
SCHEMA = 1
#: The first key of a worker's advisory lock names the database and schema (the second is
#: the worker's id): batches in other schemas of one server never share a lock.
_LOCK_CLASS = "hashtext(current_database() || '.' || current_schema() || '.aiomusic_batch')"
_COLUMNS = ("id, kind, fingerprint, state, task_id, trace_id, files::text, error_type, error, "
            "dest_existed, updated_at, fate")
_J_COLUMNS = ", ".join(f"j.{c.strip()}" for c in _COLUMNS.split(","))

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
""",)

_RECLAIM_ERROR = ("the worker that sent its paid request stopped (it died, or hung past its "
                  "lease) before the answer was kept: it may have been generated (and charged)")

#: Jobs of dead workers (their advisory lock is free) or expired leases: reclaimed by the
#: rules that keep money safe. The worker rows of dead workers go too.
_REAP = """
WITH now AS (SELECT aiomusic_batch_now() AS t),
dead AS (SELECT w.id FROM aiomusic_batch_workers w
         WHERE w.id <> %(me)s AND pg_try_advisory_xact_lock(%(lock)s, w.id)),
cand AS (
  SELECT j.id, j.state FROM aiomusic_batch_jobs j, now
  WHERE j.owner IS NOT NULL AND j.owner <> %(me)s
    AND (j.lease_until < now.t OR j.owner IN (SELECT id FROM dead))
  FOR UPDATE OF j),
gone AS (
  UPDATE aiomusic_batch_jobs j SET owner = NULL, lease_until = NULL, updated_at = now.t,
    state = CASE j.state WHEN 'submitting' THEN 'unknown' ELSE j.state END,
    fate = CASE j.state WHEN 'submitting' THEN 'unknown' ELSE j.fate END,
    error_type = CASE j.state WHEN 'submitting' THEN 'SubmissionUnknownError'
                 ELSE j.error_type END,
    error = CASE j.state WHEN 'submitting' THEN %(why)s ELSE j.error END
  FROM now, cand WHERE j.id = cand.id
  RETURNING j.id, cand.state = 'submitting' AS lost),
sent AS (
  UPDATE aiomusic_batch_attempts a SET fate = 'unknown', ended_at = now.t FROM now
  WHERE a.fate = 'sending' AND a.job_id IN (SELECT id FROM gone WHERE lost)
  RETURNING 1),
buried AS (DELETE FROM aiomusic_batch_workers w WHERE w.id IN (SELECT id FROM dead)
           RETURNING 1)
SELECT (SELECT count(*) FROM gone)::int, (SELECT count(*) FROM gone WHERE lost)::int,
       (SELECT count(*) FROM buried)::int
"""


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


@attrs.frozen
class Reaped:
    """What one reclaim did: jobs reclaimed, of which made ``unknown``; dead workers found."""

    jobs: int = 0
    unknown: int = 0
    dead: int = 0


class PostgresJournal(Journal):
    """A batch's journal in PostgreSQL, shared by every worker that runs the batch.

    ::

        batch = aiomusic.Batch(session, jobs, out="songs",
                               journal=PostgresJournal("postgresql://user@db/songs", lease=30))

    ``Batch(journal="postgresql://...")`` makes one with the defaults. One database (or one
    schema: ``?options=-csearch_path%3Dname``) holds one batch. The tables (``aiomusic_batch_*``)
    are created on first use.

    Args:
        url: A ``postgresql://`` URL (any libpq connection string).
        lease: Seconds a claimed job stays this worker's without a renewal (renewed every
            second, or every third of it if sooner): how long a hung worker's jobs wait
            before others reclaim them (a dead worker's come back within about a second).
        timeout: Seconds to connect, to wait for a pooled connection, and per statement.
        max_connections: The pool's size (one more connection holds the worker's lock).
    """

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
        self.reclaimed = Reaped()  # what this worker's reclaims did, in all
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

    async def start(self, *, endpoint: str | None) -> PostgresJournal:
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

    # -- jobs -------------------------------------------------------------------------------

    async def records(self) -> dict[str, JobRecord]:
        rows = await self._call(lambda: self._tx([(
            f"SELECT {_COLUMNS} FROM aiomusic_batch_jobs ORDER BY seq", ())])[0])  # noqa: S608
        return {row[0]: _record(row) for row in rows}

    async def add(self, job_id: str, *, kind: str, fingerprint: str) -> None:
        await self.add_many([(job_id, kind, fingerprint)])

    async def add_many(self, jobs: Iterable[tuple[str, str, str]]) -> None:
        """Record new jobs as pending, in their order (known ones are left as they are)."""
        rows = [(i, k, f, JobState.PENDING.value) for i, k, f in jobs]

        def insert() -> None:
            assert self._pool is not None
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO aiomusic_batch_jobs (id, kind, fingerprint, state, "
                    "updated_at) VALUES (%s, %s, %s, %s, aiomusic_batch_now()) "
                    "ON CONFLICT (id) DO NOTHING", rows)

        if rows:
            await self._call(insert)

    async def update(self, job_id: str, state: JobState, *, task_id: str | None = None,
                     trace_id: str | None = None, files: tuple[FileRecord, ...] | None = None,
                     error: tuple[str, str] | None = None, dest_existed: bool | None = None,
                     keep_task: bool = True) -> None:
        from psycopg.types.json import Jsonb

        changes = job_changes(state, task_id=task_id, trace_id=trace_id, files=files,
                              error=error, dest_existed=dest_existed, keep_task=keep_task)
        if "files" in changes:
            changes["files"] = Jsonb(changes["files"])
        sets = [f"{column} = %s" for column in changes] + ["updated_at = aiomusic_batch_now()"]
        values = list(changes.values())
        statements: list[tuple[str, Sequence[object]]] = [(
            f"UPDATE aiomusic_batch_jobs SET {', '.join(sets)} "  # noqa: S608
            "WHERE id = %s AND owner = %s RETURNING 1", (*values, job_id, self.run))]
        if task_id is not None:
            statements.append((
                "UPDATE aiomusic_batch_attempts SET task_id = %s WHERE id = (SELECT max(id) "
                "FROM aiomusic_batch_attempts WHERE job_id = %s AND fate = 'taken')",
                (task_id, job_id)))
        await self._write(job_id, statements)

    # -- the ledger -------------------------------------------------------------------------

    async def sending(self, job_id: str, operation: str, attempt: int, *,
                      dest_existed: bool | None = None) -> int:
        """The intent, written only if this worker still owns the job (and its lease has
        not run out): else `JobLostError`, and the request is not sent."""
        extra = "" if dest_existed is None else ", dest_existed = %(dest)s"
        rows = await self._write(job_id, [
            ("UPDATE aiomusic_batch_jobs SET state = 'submitting', fate = 'sending', "  # noqa: S608
             f"updated_at = aiomusic_batch_now(){extra} WHERE id = %(job)s "
             "AND owner = %(me)s AND lease_until > aiomusic_batch_now() RETURNING 1",
             {"job": job_id, "me": self.run, "dest": dest_existed}),
            ("INSERT INTO aiomusic_batch_attempts (job_id, run, attempt, operation, "
             "started_at, fate) VALUES (%(job)s, %(me)s, %(n)s, %(op)s, "
             "aiomusic_batch_now(), 'sending') RETURNING id",
             {"job": job_id, "me": self.run, "n": attempt, "op": operation})])
        return int(rows[1][0][0])

    async def ended(self, attempt_id: int, job_id: str, fate: str, *,
                    trace_id: str | None = None, error: tuple[str, str] | None = None,
                    pending: bool = False) -> None:
        """How this worker's attempt ended: always recorded in the ledger (it is a fact);
        the job's state and fate only while this worker owns it."""
        state = ", state = 'pending'" if pending else ""
        await self._call(self._tx, [
            ("UPDATE aiomusic_batch_attempts SET ended_at = aiomusic_batch_now(), fate = %s, "
             "trace_id = %s, error_type = %s, error = %s WHERE id = %s AND run = %s",
             (fate, trace_id, *(error or (None, None)), attempt_id, self.run)),
            ("UPDATE aiomusic_batch_jobs SET fate = %s, updated_at = aiomusic_batch_now(), "  # noqa: S608
             f"trace_id = COALESCE(%s, trace_id){state} WHERE id = %s AND owner = %s",
             (fate, trace_id, job_id, self.run))])

    async def settle(self, job_id: str, fate: str) -> None:
        await self._write(job_id, [
            ("UPDATE aiomusic_batch_jobs SET fate = %s WHERE id = %s AND owner = %s "
             "RETURNING 1", (fate, job_id, self.run)),
            ("UPDATE aiomusic_batch_attempts SET fate = %s WHERE id = (SELECT max(id) FROM "
             "aiomusic_batch_attempts WHERE job_id = %s AND fate IN ('taken', 'unknown'))",
             (fate, job_id))])

    async def ledger(self) -> list[AttemptRecord]:
        rows = await self._call(lambda: self._tx([(
            "SELECT id, job_id, run, attempt, operation, started_at, ended_at, fate, trace_id, "
            "task_id, error_type, error FROM aiomusic_batch_attempts ORDER BY id", ())])[0])
        return [AttemptRecord(*row) for row in rows]

    # -- uploads ----------------------------------------------------------------------------

    async def upload(self, key: str) -> tuple[dict[str, Any], dt.datetime] | None:
        import datetime as dt
        import json

        rows = await self._call(lambda: self._tx([(
            "SELECT payload, uploaded_at FROM aiomusic_batch_uploads WHERE key = %s",
            (key,))])[0])
        if not rows:
            return None
        return json.loads(rows[0][0]), dt.datetime.fromtimestamp(rows[0][1], dt.UTC)

    async def record_upload(self, key: str, payload: dict[str, Any],
                            uploaded_at: dt.datetime) -> None:
        import json

        await self._call(self._tx, [(
            "INSERT INTO aiomusic_batch_uploads VALUES (%s, %s, %s) ON CONFLICT (key) DO "
            "UPDATE SET payload = excluded.payload, uploaded_at = excluded.uploaded_at",
            (key, json.dumps(payload), uploaded_at.timestamp()))])

    async def forget_upload(self, key: str) -> None:
        await self._call(self._tx, [("DELETE FROM aiomusic_batch_uploads WHERE key = %s",
                                     (key,))])

    # -- claims -----------------------------------------------------------------------------

    async def claim(self) -> JobRecord | None:
        """Take the next unowned job that needs work (pending, or submitted: followed by its
        task id), in the batch's order; ``None`` when there is none right now."""
        rows = await self._call(lambda: self._tx([(
            "WITH next AS (SELECT id FROM aiomusic_batch_jobs WHERE owner IS NULL "  # noqa: S608
            "AND state IN ('pending', 'submitting', 'submitted') AND NOT (id = ANY(%s)) "
            "ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) "
            "UPDATE aiomusic_batch_jobs j SET owner = %s, "
            "lease_until = aiomusic_batch_now() + %s, claims = claims + 1 FROM next "
            "WHERE j.id = next.id RETURNING " + _J_COLUMNS,
            (list(self._aliens), self.run, self.lease))])[0])
        if not rows:
            return None
        return _record(rows[0])

    async def claim_ended(self, job_id: str) -> JobRecord | None:
        """Take ``job_id`` if it ended before this worker started and nobody holds it (to
        look at it once, as a re-run of the SQLite journal does)."""
        rows = await self._call(lambda: self._tx([(
            "WITH it AS (SELECT id FROM aiomusic_batch_jobs WHERE id = %s "  # noqa: S608
            "AND owner IS NULL AND state NOT IN ('pending', 'submitting', 'submitted') "
            "AND updated_at < %s FOR UPDATE SKIP LOCKED) UPDATE aiomusic_batch_jobs j "
            "SET owner = %s, lease_until = aiomusic_batch_now() + %s, "
            "claims = claims + 1 FROM it WHERE j.id = it.id RETURNING " + _J_COLUMNS,
            (job_id, self.since, self.run, self.lease))])[0])
        return _record(rows[0]) if rows else None

    async def disown(self, job_id: str) -> None:
        """Give back a claimed job this worker does not know (another job file's)."""
        self._aliens.add(job_id)
        await self.release(job_id)

    async def release(self, job_id: str) -> None:
        """Give back a job this worker is done with (by the reclaim rules: a ``submitting``
        job left so becomes ``unknown``)."""
        await self._call(self._give_back, job_id)

    def _give_back(self, job_id: str | None) -> None:
        which = "owner = %(me)s" + ("" if job_id is None else " AND id = %(job)s")
        args = {"me": self.run, "job": job_id, "why": _RECLAIM_ERROR}
        self._tx([
            ("UPDATE aiomusic_batch_attempts SET fate = 'unknown', ended_at = "  # noqa: S608
             "aiomusic_batch_now() WHERE fate = 'sending' AND run = %(me)s AND job_id IN "
             f"(SELECT id FROM aiomusic_batch_jobs WHERE {which} AND state = 'submitting')", args),
            ("UPDATE aiomusic_batch_jobs SET owner = NULL, lease_until = NULL, "  # noqa: S608
             "fate = CASE state WHEN 'submitting' THEN 'unknown' ELSE fate END, "
             "error_type = CASE state WHEN 'submitting' THEN 'SubmissionUnknownError' "
             "ELSE error_type END, error = CASE state WHEN 'submitting' THEN %(why)s "
             "ELSE error END, state = CASE state WHEN 'submitting' THEN 'unknown' "
             f"ELSE state END WHERE {which}", args)])

    async def renew(self) -> int:
        """Extend the lease of every job this worker holds; check that its lock's session
        lives. Returns how many jobs it still holds."""

        def beat() -> int:
            with self._lock_guard:
                assert self._lock_conn is not None
                self._lock_conn.execute(
                    "UPDATE aiomusic_batch_workers SET seen_at = aiomusic_batch_now() "
                    "WHERE id = %s",
                    (self.run,))
            rows = self._tx([("UPDATE aiomusic_batch_jobs SET lease_until = "
                              "aiomusic_batch_now() + %s WHERE owner = %s RETURNING 1",
                              (self.lease, self.run))])
            return len(rows[0])

        return await self._call(beat)

    async def reap(self) -> Reaped:
        """Reclaim the jobs of dead workers (their lock is free) and of expired leases."""
        rows = await self._call(lambda: self._tx([(_REAP, {
            "me": self.run, "why": _RECLAIM_ERROR, "lock": self._lock_class})])[0])
        jobs, unknown, dead = rows[0]
        found = Reaped(jobs, unknown, dead)
        if jobs or dead:
            self.reclaimed = Reaped(self.reclaimed.jobs + jobs,
                                    self.reclaimed.unknown + unknown,
                                    self.reclaimed.dead + dead)
        return found

    async def others_working(self) -> bool:
        """Whether another worker holds a job (which may come back if that worker dies)."""
        rows = await self._call(lambda: self._tx([(
            "SELECT EXISTS (SELECT 1 FROM aiomusic_batch_jobs WHERE owner IS NOT NULL AND "
            "owner <> %s)", (self.run,))])[0])
        return bool(rows[0][0])


class _NotOwned(Exception):
    """Rolls back a write whose job this worker no longer owns."""


def _record(row: Sequence[Any]) -> JobRecord:
    import json

    files = row[6] if not isinstance(row[6], str) else json.loads(row[6])
    return JobRecord(id=row[0], kind=row[1], fingerprint=row[2], state=JobState(row[3]),
                     task_id=row[4], trace_id=row[5],
                     files=tuple(FileRecord(**f) for f in cast(list[dict[str, Any]], files)),
                     error_type=row[7], error=row[8], dest_existed=bool(row[9]),
                     updated_at=row[10], fate=row[11])
