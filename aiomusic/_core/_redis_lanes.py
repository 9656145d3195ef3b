"""Shared lanes in Redis: one Lua script per step, on Redis's own clock.

Each lane of each key has four keys, named ``aiomusic:lanes:{<key fingerprint>:<lane>}:*``
(the braces keep them in one Redis Cluster slot; the API key itself never appears):

- ``state``: a hash with the adaptive state (`Control` as text) and its ``version``;
- ``held``: a sorted set of permits, scored by when their lease expires;
- ``sending``: the same permits, scored by their start (the requests sent and not answered);
- ``starts``: the rate window, the starts reserved (past and future), scored by time.

Every key expires after a day without use. Scripts return times as text, since Redis turns
Lua numbers into integers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, cast

from ._errors import ConfigurationError
from ._lane_store import LaneRef, LaneStore, Observation, Step, store_arguments

if TYPE_CHECKING:
    import redis

__all__ = ["RedisLanes"]

#: Milliseconds an unused lane's keys live.
TTL_MS = 86_400_000

_PRELUDE = """
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function f(x) return string.format('%.6f', x) end
-- every key of the lane lives a day after its last use (those the call created too)
local function touch(ttl)
  for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ttl) end
end
"""

# KEYS: state, held, sending, starts
# ARGV: permit, lease, max_concurrency, start limit, start guard, rate (0: none), per, pace, ttl
ACQUIRE = _PRELUDE + """
local state, held, sending, starts = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id = ARGV[1]
local now = clock()
redis.call('HSETNX', state, 'limit', ARGV[4])
redis.call('HSETNX', state, 'guard', ARGV[5])
redis.call('HSETNX', state, 'version', 0)
touch(ARGV[9])
local st = redis.call('HMGET', state, 'limit', 'guard', 'paused_until')
local limit = math.max(1, math.min(math.floor(tonumber(st[1])), tonumber(ARGV[3])))
local guard = tonumber(st[2])
local paused = tonumber(st[3] or '0')
-- permits whose holder stopped refreshing them (it died, or hung past its lease)
local dead = redis.call('ZRANGEBYSCORE', held, '-inf', now)
for _, gone in ipairs(dead) do
  redis.call('ZREM', held, gone)
  redis.call('ZREM', sending, gone)
end
local count = redis.call('ZCARD', held)
if paused > now then return {'pause', f(now), f(paused - now), tostring(count), tostring(limit)} end
if count >= limit then return {'full', f(now), '0', tostring(count), tostring(limit)} end
-- The n-th start may be no earlier than the (n - rate)-th plus the window and its guard; in a
-- full window starts are also kept window / (pace * rate) apart (the in-process rule).
local slot, edge = now, 0
local rate = tonumber(ARGV[6])
if rate > 0 then
  local window = tonumber(ARGV[7]) + guard
  redis.call('ZREMRANGEBYSCORE', starts, '-inf', now - window)
  local n = redis.call('ZCARD', starts)
  if n > 0 then
    local last = tonumber(redis.call('ZRANGE', starts, -1, -1, 'WITHSCORES')[2])
    if n >= rate then
      local first = tonumber(redis.call('ZRANGE', starts, n - rate, n - rate, 'WITHSCORES')[2])
      slot = math.max(now, first + window, last + window / (tonumber(ARGV[8]) * rate))
      edge = 1
    else
      slot = math.max(now, last)
    end
  end
  redis.call('ZADD', starts, slot, id)
end
redis.call('ZADD', held, slot + tonumber(ARGV[2]), id)
redis.call('ZADD', sending, slot, id)
local level = redis.call('ZCOUNT', sending, '-inf', slot)
touch(ARGV[9])
return {'ok', f(now), f(slot), tostring(edge), tostring(level), tostring(count + 1),
        tostring(limit), f(guard)}
"""

# KEYS: state, held, sending, starts
# ARGV: permit, lease, go even if late (1) or not (0), rate (0: none), per
START = _PRELUDE + """
local state, held, sending, starts = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id = ARGV[1]
local now = clock()
if not redis.call('ZSCORE', held, id) then return {'lost', f(now)} end
local paused = tonumber(redis.call('HGET', state, 'paused_until') or '0')
local function give_back()
  redis.call('ZREM', held, id)
  redis.call('ZREM', sending, id)
  redis.call('ZREM', starts, id)
end
if paused > now then
  give_back()
  return {'pause', f(now), f(paused - now)}
end
local slot = tonumber(redis.call('ZSCORE', sending, id))
local rate, per = tonumber(ARGV[4]), tonumber(ARGV[5])
if slot < now and rate > 0 then
  -- Woke late: starting now must not put more than 'rate' starts in any window of 'per'
  -- (the starts reserved after this one counted from its slot). If it would, the start and
  -- the permit go back to queue again, unless it was late too often already (ARGV[3]).
  local around = redis.call('ZRANGEBYSCORE', starts, now - per, now + per, 'WITHSCORES')
  local times = {now}
  for i = 2, #around, 2 do
    if around[i - 1] ~= id then times[#times + 1] = tonumber(around[i]) end
  end
  table.sort(times)
  for j = 1, #times - rate do
    if times[j + rate] - times[j] < per and ARGV[3] == '0' then
      give_back()
      return {'late', f(now)}
    end
  end
  redis.call('ZADD', starts, now, id)
end
if slot < now then redis.call('ZADD', sending, now, id) end
redis.call('ZADD', held, now + tonumber(ARGV[2]), id)
return {'ok', f(now), tostring(redis.call('ZCOUNT', sending, '-inf', now))}
"""

# KEYS: held   ARGV: lease, permit...
REFRESH = _PRELUDE + """
local now = clock()
local kept = 0
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[i])
    kept = kept + 1
  end
end
return kept
"""

# KEYS: state, sending
OBSERVE = _PRELUDE + """
local now = clock()
return {f(now), tostring(redis.call('ZCOUNT', KEYS[2], '-inf', now)),
        redis.call('HGETALL', KEYS[1])}
"""

# KEYS: state, held, sending   ARGV: permit, version, ttl, field, value, ...
APPLY = """
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'version', version + 1)
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
"""

# KEYS: held, sending   ARGV: permit
RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""


def _keys(lane: LaneRef) -> list[str]:
    base = f"aiomusic:lanes:{{{lane.ident}}}:"
    return [base + name for name in ("state", "held", "sending", "starts")]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisLanes(LaneStore):
    """Shared lanes in Redis (``pip install "aiomusic[redis]"``).

    ``MusicSession(lane_store=RedisLanes("redis://host:6379/0"))`` makes every process using
    the same key and the same Redis share the key's limits. redis-py is used synchronously in
    worker threads (its asyncio client does not run under trio).

    Args:
        url: A ``redis://``, ``rediss://`` or ``unix://`` URL.
        lease: See `LaneStore`.
        on_unavailable: See `LaneStore`.
        timeout: Seconds to connect and to wait for each answer.
    """

    def __init__(self, url: str, *, lease: float = 15.0,
                 on_unavailable: Literal["fail", "local"] = "fail",
                 timeout: float = 2.0) -> None:
        super().__init__(lease=lease, on_unavailable=on_unavailable)
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
            raise ConfigurationError('shared lanes in Redis need redis-py: '
                                     'pip install "aiomusic[redis]"') from exc
        self._errors = (redis.RedisError, OSError)
        try:
            # No retries inside redis-py: a script whose answer was lost must not run twice.
            self._client: redis.Redis = redis.Redis.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0), health_check_interval=30)
        except ValueError as exc:
            raise ConfigurationError(f"not a Redis URL ({exc}): use redis://host:port/db"
                                     ) from exc
        kwargs = self._client.connection_pool.connection_kwargs
        where = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
        self._where = f"Redis at {where}"
        self._acquire = self._client.register_script(ACQUIRE)
        self._start = self._client.register_script(START)
        self._refresh = self._client.register_script(REFRESH)
        self._observe = self._client.register_script(OBSERVE)
        self._apply = self._client.register_script(APPLY)
        self._release = self._client.register_script(RELEASE)

    def check(self) -> None:
        self._run(self._client.ping)

    def acquire(self, lane: LaneRef, permit: str) -> Step:
        args: list[str | int | float] = [permit, *store_arguments(lane.config, self.lease),
                                         TTL_MS]
        got = [_text(v) for v in self._run(self._acquire, keys=_keys(lane), args=args)]
        kind = cast(Literal["ok", "pause", "full"], got[0])
        if kind != "ok":
            return Step(kind=kind, now=float(got[1]), wait=float(got[2]), held=int(got[3]),
                        limit=int(got[4]))
        return Step(kind="ok", now=float(got[1]), slot=float(got[2]), at_edge=got[3] == "1",
                    level=int(got[4]), held=int(got[5]), limit=int(got[6]),
                    guard=float(got[7]))

    def start(self, lane: LaneRef, permit: str, *, even_late: bool = False) -> Step:
        args: list[str | int | float] = [permit, self.lease, int(even_late),
                                         lane.config.rate or 0, lane.config.per]
        got = [_text(v) for v in self._run(self._start, keys=_keys(lane), args=args)]
        if got[0] == "ok":
            return Step(kind="ok", now=float(got[1]), slot=float(got[1]), level=int(got[2]))
        if got[0] == "pause":
            return Step(kind="pause", now=float(got[1]), wait=float(got[2]))
        return Step(kind=cast(Literal["late", "lost"], got[0]), now=float(got[1]))

    def refresh(self, lane: LaneRef, permits: list[str]) -> int:
        return int(self._run(self._refresh, keys=_keys(lane)[1:2], args=[self.lease, *permits]))

    def observe(self, lane: LaneRef) -> Observation:
        state, _, sending, _ = _keys(lane)
        now, count, flat = self._run(self._observe, keys=[state, sending])
        fields = {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}
        version = int(fields.pop("version", "0"))
        return Observation(fields=fields, version=version, now=float(_text(now)),
                           sending=int(_text(count)))

    def apply(self, lane: LaneRef, permit: str, version: int, fields: Mapping[str, str]) -> bool:
        flat = [item for pair in fields.items() for item in pair]
        done = self._run(self._apply, keys=_keys(lane)[:3], args=[permit, version, TTL_MS,
                                                                    *flat])
        return bool(done)

    def release(self, lane: LaneRef, permit: str) -> None:
        self._run(self._release, keys=_keys(lane)[1:3], args=[permit])

    def _close_driver(self) -> None:
        self._client.close()
