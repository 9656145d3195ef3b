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

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

import attrs

from .._core._ledger import Entry
from .._core._task import Cost
from ._jobs import ChainResult
from ._journal import AttemptRecord, FileRecord, JobRecord, JobState, SpendRecord, job_changes
from ._pg_base import (
    JobLostError,
    JournalUnavailableError,
    PostgresBase,
    is_postgres_url,
)

if TYPE_CHECKING:
    import datetime as dt

__all__ = ["JobLostError", "JournalUnavailableError", "PostgresJournal", "Reaped",
           "is_postgres_url"]

_COLUMNS = ("id, kind, fingerprint, state, task_id, trace_id, files::text, error_type, error, "
            "dest_existed, updated_at, fate")
_J_COLUMNS = ", ".join(f"j.{c.strip()}" for c in _COLUMNS.split(","))

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


@attrs.frozen
class Reaped:
    """What one reclaim did: jobs reclaimed, of which made ``unknown``; dead workers found."""

    jobs: int = 0
    unknown: int = 0
    dead: int = 0


class PostgresJournal(PostgresBase):
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


    reclaimed = Reaped()  # what this worker's reclaims did, in all

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

    # -- results of jobs that others follow -------------------------------------------------

    async def record_result(self, job_id: str, task_id: str | None,
                            tracks: tuple[str, ...]) -> None:
        from psycopg.types.json import Jsonb

        await self._call(self._tx, [(
            "INSERT INTO aiomusic_batch_results VALUES (%s, %s, %s, aiomusic_batch_now()) "
            "ON CONFLICT (job_id) DO UPDATE SET task_id = excluded.task_id, "
            "tracks = excluded.tracks, recorded_at = excluded.recorded_at",
            (job_id, task_id, Jsonb(list(tracks))))])

    async def result(self, job_id: str) -> ChainResult | None:
        rows = await self._call(lambda: self._tx([(
            "SELECT task_id, tracks FROM aiomusic_batch_results WHERE job_id = %s",
            (job_id,))])[0])
        return ChainResult(rows[0][0], tuple(rows[0][1])) if rows else None

    # -- what each paid job spent ------------------------------------------------------------

    async def spend(self, job_id: str, run: int, entry: Entry) -> None:
        """Keep what paid job ``job_id`` spent (or has reserved) in run ``run``."""
        from psycopg.types.json import Jsonb

        cost = entry.cost
        await self._call(self._tx, [(
            "INSERT INTO aiomusic_batch_spending (job_id, run, service, kind, state, reserved, "
            "amount, unit, usd, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "aiomusic_batch_now()) ON CONFLICT (job_id, run) DO UPDATE SET "
            "service = excluded.service, kind = excluded.kind, state = excluded.state, "
            "reserved = excluded.reserved, amount = excluded.amount, unit = excluded.unit, "
            "usd = excluded.usd, updated_at = excluded.updated_at",
            (job_id, run, entry.service, entry.kind, entry.state.value, Jsonb(entry.reserved),
             None if cost is None else cost.amount, None if cost is None else cost.unit,
             None if cost is None else cost.usd))])

    async def spending(self) -> list[SpendRecord]:
        """What every paid job spent, run by run (every worker's)."""
        rows = await self._call(lambda: self._tx([(
            "SELECT job_id, run, service, kind, state, reserved, amount, unit, usd "
            "FROM aiomusic_batch_spending ORDER BY run, id", ())])[0])
        return [SpendRecord(job_id=r[0], run=r[1], service=r[2], kind=r[3], state=r[4],
                            reserved=dict(r[5]),
                            cost=None if r[6] is None or r[7] is None else
                            Cost(r[6], r[7], r[2], usd=r[8])) for r in rows]

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


def _record(row: Sequence[Any]) -> JobRecord:
    import json

    files = row[6] if not isinstance(row[6], str) else json.loads(row[6])
    return JobRecord(id=row[0], kind=row[1], fingerprint=row[2], state=JobState(row[3]),
                     task_id=row[4], trace_id=row[5],
                     files=tuple(FileRecord(**f) for f in cast(list[dict[str, Any]], files)),
                     error_type=row[7], error=row[8], dest_existed=bool(row[9]),
                     updated_at=row[10], fate=row[11])
