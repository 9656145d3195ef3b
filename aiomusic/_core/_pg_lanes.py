"""Shared lanes in PostgreSQL, for those who run no Redis: the same steps as PL/pgSQL functions.

Three UNLOGGED tables (fast, not crash-safe: losing them costs what losing Redis costs) and one
function per step, each a single statement in its own transaction on the server's clock. The
lane's row is locked (``FOR UPDATE``) by the steps that must see one another (acquire, start),
which serialises them per lane, as Redis serialises its scripts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, cast

from ._errors import ConfigurationError
from ._lane_store import LaneRef, LaneStore, Observation, Step, store_arguments

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

__all__ = ["PostgresLanes"]

SCHEMA = """
SELECT pg_advisory_xact_lock(hashtext('aiomusic_lanes_schema'));
CREATE UNLOGGED TABLE IF NOT EXISTS aiomusic_lanes (
  lane text PRIMARY KEY,
  state jsonb NOT NULL DEFAULT '{}'::jsonb,
  version bigint NOT NULL DEFAULT 0);
CREATE UNLOGGED TABLE IF NOT EXISTS aiomusic_lane_permits (
  lane text NOT NULL, permit text NOT NULL,
  expires float8 NOT NULL, start float8 NOT NULL,
  PRIMARY KEY (lane, permit));
CREATE UNLOGGED TABLE IF NOT EXISTS aiomusic_lane_starts (
  lane text NOT NULL, permit text NOT NULL, at float8 NOT NULL,
  PRIMARY KEY (lane, permit));
CREATE INDEX IF NOT EXISTS aiomusic_lane_starts_at ON aiomusic_lane_starts (lane, at);

CREATE OR REPLACE FUNCTION aiomusic_lane_acquire(
    p_lane text, p_permit text, p_lease float8, p_max int, p_start float8, p_guard float8,
    p_rate int, p_per float8, p_pace float8)
  RETURNS TABLE (kind text, t float8, slot float8, wait float8, edge boolean, level int,
                 held int, lim int, guard float8)
  LANGUAGE plpgsql AS $$
DECLARE
  v_now float8 := extract(epoch FROM clock_timestamp());
  v_state jsonb; v_limit int; v_guard float8; v_paused float8; v_count int;
  v_slot float8; v_edge boolean := false; v_window float8; v_n int; v_last float8;
  v_first float8; v_level int;
BEGIN
  INSERT INTO aiomusic_lanes (lane) VALUES (p_lane) ON CONFLICT DO NOTHING;
  SELECT l.state INTO v_state FROM aiomusic_lanes l WHERE l.lane = p_lane FOR UPDATE;
  v_now := extract(epoch FROM clock_timestamp());  -- after the lock, as Redis runs scripts
  v_limit := greatest(1, least(floor(coalesce((v_state->>'limit')::float8, p_start))::int,
                               p_max));
  v_guard := coalesce((v_state->>'guard')::float8, p_guard);
  v_paused := coalesce((v_state->>'paused_until')::float8, 0);
  -- permits whose holder stopped refreshing them (it died, or hung past its lease)
  DELETE FROM aiomusic_lane_permits p WHERE p.lane = p_lane AND p.expires <= v_now;
  SELECT count(*) INTO v_count FROM aiomusic_lane_permits p WHERE p.lane = p_lane;
  IF v_paused > v_now THEN
    RETURN QUERY SELECT 'pause', v_now, 0::float8, v_paused - v_now, false, 0, v_count,
                        v_limit, v_guard;
    RETURN;
  END IF;
  IF v_count >= v_limit THEN
    RETURN QUERY SELECT 'full', v_now, 0::float8, 0::float8, false, 0, v_count, v_limit,
                        v_guard;
    RETURN;
  END IF;
  -- the in-process rule: the n-th start no earlier than the (n - rate)-th plus the window and
  -- its guard; in a full window, starts also kept window / (pace * rate) apart
  v_slot := v_now;
  IF p_rate > 0 THEN
    v_window := p_per + v_guard;
    DELETE FROM aiomusic_lane_starts s WHERE s.lane = p_lane AND s.at <= v_now - v_window;
    SELECT count(*), max(s.at) INTO v_n, v_last FROM aiomusic_lane_starts s
      WHERE s.lane = p_lane;
    IF v_n >= p_rate THEN
      SELECT s.at INTO v_first FROM aiomusic_lane_starts s WHERE s.lane = p_lane
        ORDER BY s.at DESC OFFSET p_rate - 1 LIMIT 1;
      v_slot := greatest(v_now, v_first + v_window, v_last + v_window / (p_pace * p_rate));
      v_edge := true;
    ELSIF v_n > 0 THEN
      v_slot := greatest(v_now, v_last);
    END IF;
    INSERT INTO aiomusic_lane_starts VALUES (p_lane, p_permit, v_slot)
      ON CONFLICT (lane, permit) DO UPDATE SET at = excluded.at;
  END IF;
  INSERT INTO aiomusic_lane_permits VALUES (p_lane, p_permit, v_slot + p_lease, v_slot)
    ON CONFLICT (lane, permit) DO UPDATE SET expires = excluded.expires, start = excluded.start;
  SELECT count(*) INTO v_level FROM aiomusic_lane_permits p
    WHERE p.lane = p_lane AND p.start <= v_slot;
  RETURN QUERY SELECT 'ok', v_now, v_slot, 0::float8, v_edge, v_level, v_count + 1, v_limit,
                      v_guard;
END $$;

DROP FUNCTION IF EXISTS aiomusic_lane_start(text, text, float8);
DROP FUNCTION IF EXISTS aiomusic_lane_start(text, text, float8, float8);
DROP FUNCTION IF EXISTS aiomusic_lane_start(text, text, float8, boolean);
CREATE OR REPLACE FUNCTION aiomusic_lane_start(p_lane text, p_permit text, p_lease float8,
                                               p_even_late boolean, p_rate int, p_per float8)
  RETURNS TABLE (kind text, t float8, wait float8, level int)
  LANGUAGE plpgsql AS $$
DECLARE
  v_now float8;
  v_paused float8; v_start float8; v_level int; v_times float8[];
BEGIN
  SELECT coalesce((l.state->>'paused_until')::float8, 0) INTO v_paused FROM aiomusic_lanes l
    WHERE l.lane = p_lane FOR UPDATE;
  v_now := extract(epoch FROM clock_timestamp());  -- after the lock: the time it starts
  SELECT p.start INTO v_start FROM aiomusic_lane_permits p
    WHERE p.lane = p_lane AND p.permit = p_permit;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'lost', v_now, 0::float8, 0;
    RETURN;
  END IF;
  IF coalesce(v_paused, 0) > v_now THEN
    DELETE FROM aiomusic_lane_permits p WHERE p.lane = p_lane AND p.permit = p_permit;
    DELETE FROM aiomusic_lane_starts s WHERE s.lane = p_lane AND s.permit = p_permit;
    RETURN QUERY SELECT 'pause', v_now, v_paused - v_now, 0;
    RETURN;
  END IF;
  IF v_start < v_now AND p_rate > 0 THEN
    -- Woke late: starting now must not put more than p_rate starts in any window of p_per
    -- (the starts reserved after this one counted from its slot). If it would, the start and
    -- the permit go back to queue again, unless it was late too often already (p_even_late).
    SELECT array_agg(x ORDER BY x) INTO v_times FROM (
      SELECT s.at AS x FROM aiomusic_lane_starts s
        WHERE s.lane = p_lane AND s.permit <> p_permit
          AND s.at BETWEEN v_now - p_per AND v_now + p_per
      UNION ALL SELECT v_now) q;
    IF NOT p_even_late THEN
      FOR j IN 1 .. array_length(v_times, 1) - p_rate LOOP
        IF v_times[j + p_rate] - v_times[j] < p_per THEN
          DELETE FROM aiomusic_lane_permits p WHERE p.lane = p_lane AND p.permit = p_permit;
          DELETE FROM aiomusic_lane_starts s WHERE s.lane = p_lane AND s.permit = p_permit;
          RETURN QUERY SELECT 'late', v_now, 0::float8, 0;
          RETURN;
        END IF;
      END LOOP;
    END IF;
    UPDATE aiomusic_lane_starts s SET at = v_now WHERE s.lane = p_lane AND s.permit = p_permit;
  END IF;
  v_start := greatest(v_start, v_now);
  UPDATE aiomusic_lane_permits p SET start = v_start, expires = v_now + p_lease
    WHERE p.lane = p_lane AND p.permit = p_permit;
  SELECT count(*) INTO v_level FROM aiomusic_lane_permits p
    WHERE p.lane = p_lane AND p.start <= v_now;
  RETURN QUERY SELECT 'ok', v_now, 0::float8, v_level;
END $$;

CREATE OR REPLACE FUNCTION aiomusic_lane_refresh(p_lane text, p_permits text[], p_lease float8)
  RETURNS int LANGUAGE sql AS $$
  WITH kept AS (
    UPDATE aiomusic_lane_permits p SET expires = extract(epoch FROM clock_timestamp()) + p_lease
      WHERE p.lane = p_lane AND p.permit = ANY (p_permits) RETURNING 1)
  SELECT count(*)::int FROM kept
$$;

CREATE OR REPLACE FUNCTION aiomusic_lane_observe(p_lane text)
  RETURNS TABLE (t float8, sending int, state jsonb, version bigint)
  LANGUAGE sql AS $$
  WITH now AS (SELECT extract(epoch FROM clock_timestamp()) AS t)
  SELECT now.t,
         (SELECT count(*)::int FROM aiomusic_lane_permits p
           WHERE p.lane = p_lane AND p.start <= now.t),
         coalesce((SELECT l.state FROM aiomusic_lanes l WHERE l.lane = p_lane), '{}'::jsonb),
         coalesce((SELECT l.version FROM aiomusic_lanes l WHERE l.lane = p_lane), 0)
  FROM now
$$;

CREATE OR REPLACE FUNCTION aiomusic_lane_apply(p_lane text, p_permit text, p_version bigint,
                                               p_fields jsonb)
  RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO aiomusic_lanes (lane) VALUES (p_lane) ON CONFLICT DO NOTHING;
  UPDATE aiomusic_lanes l SET state = l.state || p_fields, version = l.version + 1
    WHERE l.lane = p_lane AND l.version = p_version;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  DELETE FROM aiomusic_lane_permits p WHERE p.lane = p_lane AND p.permit = p_permit;
  RETURN true;
END $$;
"""


class PostgresLanes(LaneStore):
    """Shared lanes in PostgreSQL (``pip install "aiomusic[postgres]"``), for those who run no
    Redis. The first use creates three UNLOGGED tables and the functions (``aiomusic_lane*``).

    psycopg 3 is used synchronously in worker threads, with a small pool.

    Args:
        url: A ``postgresql://`` URL (or any libpq connection string).
        lease: See `LaneStore`.
        on_unavailable: See `LaneStore`.
        timeout: Seconds to connect, to wait for a pooled connection, and per statement.
        max_connections: The pool's size.
    """

    def __init__(self, url: str, *, lease: float = 15.0,
                 on_unavailable: Literal["fail", "local"] = "fail", timeout: float = 2.0,
                 max_connections: int = 8) -> None:
        super().__init__(lease=lease, on_unavailable=on_unavailable)
        try:
            import psycopg
            from psycopg.conninfo import conninfo_to_dict
            from psycopg_pool import ConnectionPool
        except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
            raise ConfigurationError('shared lanes in PostgreSQL need psycopg: '
                                     'pip install "aiomusic[postgres]"') from exc
        try:
            info = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise ConfigurationError("not a PostgreSQL URL: use postgresql://user@host/db"
                                     ) from exc
        self._where = f"PostgreSQL at {info.get('host', 'localhost')}:{info.get('port', 5432)}"
        self._errors = (psycopg.Error, OSError)
        self._new_pool: Callable[[], ConnectionPool[Any]] = lambda: ConnectionPool(
            url, min_size=1, max_size=max_connections, timeout=timeout, open=False,
            name="aiomusic-lanes",
            kwargs={"autocommit": True, "connect_timeout": max(1, round(timeout)),
                    "options": f"-c statement_timeout={int(timeout * 1000)}"})
        self._pool = self._new_pool()
        self._timeout = timeout
        self._ready = False

    def _connect(self) -> None:
        if not self._ready:
            self._prepare()

    def _prepare(self) -> None:
        if self._pool.closed:
            # a pool whose opening failed cannot be opened again: take a new one
            self._pool.close()
            self._pool = self._new_pool()
            self._pool.open(wait=True, timeout=self._timeout)
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(SCHEMA)
        self._ready = True

    def _one(self, sql: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
        def query() -> tuple[Any, ...]:
            with self._pool.connection() as conn:
                row = conn.execute(sql, args).fetchone()
            assert row is not None
            return cast(tuple[Any, ...], row)

        return self._run(query)

    def check(self) -> None:
        self._run(lambda: None)

    def acquire(self, lane: LaneRef, permit: str) -> Step:
        row = self._one("SELECT * FROM aiomusic_lane_acquire(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        (lane.ident, permit, *store_arguments(lane.config, self.lease)))
        kind, now, slot, wait, edge, level, held, limit, guard = row
        return Step(kind=kind, now=now, slot=slot, wait=wait, at_edge=edge, level=level,
                    held=held, limit=limit, guard=guard)

    def start(self, lane: LaneRef, permit: str, *, even_late: bool = False) -> Step:
        kind, now, wait, level = self._one(
            "SELECT * FROM aiomusic_lane_start(%s, %s, %s, %s, %s, %s)",
            (lane.ident, permit, self.lease, even_late, lane.config.rate or 0,
             lane.config.per))
        return Step(kind=kind, now=now, slot=now, wait=wait, level=level)

    def refresh(self, lane: LaneRef, permits: list[str]) -> int:
        (kept,) = self._one("SELECT aiomusic_lane_refresh(%s, %s, %s)",
                            (lane.ident, permits, self.lease))
        return int(kept)

    def observe(self, lane: LaneRef) -> Observation:
        now, sending, state, version = self._one("SELECT * FROM aiomusic_lane_observe(%s)",
                                                 (lane.ident,))
        return Observation(fields={str(k): str(v) for k, v in state.items()},
                           version=int(version), now=now, sending=sending)

    def apply(self, lane: LaneRef, permit: str, version: int, fields: Mapping[str, str]) -> bool:
        (done,) = self._one("SELECT aiomusic_lane_apply(%s, %s, %s, %s::jsonb)",
                            (lane.ident, permit, version, json.dumps(dict(fields))))
        return bool(done)

    def release(self, lane: LaneRef, permit: str) -> None:
        self._one("WITH gone AS (DELETE FROM aiomusic_lane_permits WHERE lane = %s AND "
                  "permit = %s RETURNING 1) SELECT count(*) FROM gone", (lane.ident, permit))

    def _close_driver(self) -> None:
        self._pool.close()
