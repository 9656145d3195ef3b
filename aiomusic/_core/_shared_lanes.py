"""Lanes shared by every process that uses one key: the state lives in Redis or PostgreSQL.

A `SharedLane` has the interface of the in-process `Lane` (``permit()``, ``succeeded()``,
``rejected()``), but its rate window, pause and adaptive limit live in a `LaneStore`, so any
number of processes on any number of machines stay together within one key's budget. Each step
is one atomic operation in the store (a Lua script, a PL/pgSQL function) on the store's own
clock; the drivers are synchronous and run in worker threads, which works on asyncio and trio
alike.

The steps of one request:

1. *acquire*: past the pause, take one of the limit's permits (a lease that expires unless its
   holder refreshes it), and reserve the request's start in the rate window: the store answers
   with the exact time to send. One process-local door lets one task per process and lane poll
   while the limit is full; the others wait in order behind it.
2. *start* (only when the start is in the future): after sleeping until it, check that no pause
   began meanwhile, and that starting now (late, perhaps) does not crowd the starts reserved
   after this one (else give the start and the permit back and begin again).
3. *settle*: on release, read the lane's state, run the pure control policy
   (`_lane_policy`) on it, and write the result back only if nobody changed it meanwhile
   (compare and set on a version), releasing the permit in the same step.

`succeeded()` and `rejected()` only record the outcome on the permit; the release settles it,
so the interface stays synchronous. A release that cannot reach the store is logged and the
lease expires on its own: the answer the caller already has is never lost to it.
"""

from __future__ import annotations

import itertools
import math
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import ParamSpec, TypeVar

import anyio
import attrs

from . import _lane_policy as policy
from ._events import Event, LaneLimitChanged, PauseEnded, PauseStarted
from ._lane_store import LaneRef, LaneStore, LaneStoreError, Step, from_fields, to_fields
from ._lanes import Lane, LaneConfig, Permit
from ._log import logger

__all__ = ["SharedLane", "SharedPermit"]

P = ParamSpec("P")
T = TypeVar("T")

#: How often a task waiting for a full limit asks the store again (it also wakes when a permit
#: of its own process is released): from the first value, x1.5 per try, up to the second.
POLL = (0.002, 0.02)
#: Tries of the compare-and-set that settles an outcome before the outcome is dropped.
SETTLE_TRIES = 20
#: Times a caller that woke too late for its start queues again before it goes all the same
#: (a process too busy to keep any start must still make progress).
LATE_TRIES = 3
#: Seconds before a lane that fell back to in-process lanes asks the store again.
RECHECK = 5.0


@attrs.define(eq=False)
class SharedPermit(Permit):
    """A permit of a shared lane: its id in the store and the outcome to settle on release
    (or the in-process permit it wraps while the store is unavailable)."""

    ident: str = ""
    local: Permit | None = None
    outcome: tuple[float, policy.Exceeded] | None = None  # (wait, limit) of a rejection
    accepted: bool = False


class SharedLane:
    """A lane whose rate window, pause and adaptive limit live in a `LaneStore`.

    The observation properties show what this process last learnt from the store.
    """

    def __init__(self, name: str, config: LaneConfig, store: LaneStore, ref: LaneRef, *,
                 emit: Callable[[Event], None] | None = None) -> None:
        self.name = name
        self.config = config
        self._store = store
        self._ref = ref
        self._emit = emit or (lambda _event: None)
        self._local = Lane(name, config, emit=self._emit)  # while the store is unavailable
        self._door = anyio.Lock()
        self._freed = anyio.Event()
        self._ids = itertools.count()
        self._token = secrets.token_hex(6)
        self._limit = config.start
        self._in_flight = 0
        self._sending = 0
        self._guard = policy.initial(config).guard
        self._paused_until = 0.0  # on this process's clock
        self._pause_open = False
        self._down_until = -math.inf
        self.rejections = 0
        self.consecutive_rejections = 0

    # -- observation -------------------------------------------------------------------------

    @property
    def limit(self) -> int:
        """The concurrency limit shared by every process, as last seen."""
        return self._local.limit if self._falling_back() else self._limit

    @property
    def in_flight(self) -> int:
        """Permits held by every process, as last seen."""
        return self._in_flight

    @property
    def sending(self) -> int:
        """Requests of this process sent and not answered yet."""
        return self._sending + self._local.sending

    @property
    def rate_guard(self) -> float:
        """The rate window's guard in seconds, as last seen (0 without a rate window)."""
        return self._guard if self.config.rate is not None else 0.0

    @property
    def paused_for(self) -> float:
        """Seconds left in the shared pause, as last seen."""
        return max(0.0, self._paused_until - anyio.current_time(), self._local.paused_for)

    # -- admission ---------------------------------------------------------------------------

    @asynccontextmanager
    async def permit(self) -> AsyncIterator[Permit]:
        """Wait for the pause, a permit of the shared limit and a start in the shared window."""
        permit = SharedPermit(sent_at=0.0, ident=f"{self._token}:{next(self._ids)}")
        if not self._falling_back():
            try:
                await self._take(permit)
            except LaneStoreError as error:
                if self._store.on_unavailable != "local":
                    raise
                self._fall_back(error)
            else:
                async with self._holding(permit):
                    yield permit
                return
        async with self._local.permit() as local:
            permit.local = local
            yield permit

    def _falling_back(self) -> bool:
        return anyio.current_time() < self._down_until

    def _fall_back(self, error: LaneStoreError) -> None:
        logger.warning("lanes: %s; lane %s falls back to in-process lanes for %g s: this "
                       "process alone may now exceed the key's limits", error, self.name,
                       RECHECK)
        self._down_until = anyio.current_time() + RECHECK

    async def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

    async def _take(self, permit: SharedPermit) -> None:
        """Hold a permit in the store and sleep until its start; the store's state is
        cleaned up when anything (a cancellation, the store) fails on the way."""
        late = 0
        while True:
            step = await self._grant(permit)
            try:
                if step.slot <= step.now:
                    break
                await anyio.sleep(step.slot - step.now)
                started = await self._call(self._store.start, self._ref, permit.ident,
                                           even_late=late >= LATE_TRIES)
                if started.kind == "ok":
                    step = attrs.evolve(step, now=started.now, level=started.level)
                    break
                if started.kind == "pause":
                    self._note_pause(started.wait)
                elif started.kind == "late":
                    late += 1
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._release_quietly(permit)
                raise
        permit.sent_at = step.now
        permit.level = step.level
        permit.at_edge = step.at_edge

    async def _grant(self, permit: SharedPermit) -> Step:
        """One task per process polls while the limit is full; the others queue at the door."""
        async with self._door:
            delay = POLL[0]
            while True:
                step = await self._call(self._store.acquire, self._ref, permit.ident)
                if step.kind == "ok":
                    self._limit, self._in_flight, self._guard = step.limit, step.held, step.guard
                    if self._pause_open:
                        self._pause_open = False
                        self._emit(PauseEnded(lane=self.name))
                    return step
                if step.kind == "pause":
                    self._note_pause(step.wait)
                    await anyio.sleep(step.wait)
                    continue
                self._limit, self._in_flight = step.limit, step.held
                with anyio.move_on_after(delay):
                    await self._freed.wait()
                delay = min(POLL[1], delay * 1.5)

    def _note_pause(self, wait: float) -> None:
        self._paused_until = max(self._paused_until, anyio.current_time() + wait)
        self._pause_open = True

    @asynccontextmanager
    async def _holding(self, permit: SharedPermit) -> AsyncIterator[None]:
        self._store.hold(self._ref, permit.ident)
        self._sending += 1
        try:
            yield
        finally:
            self._sending -= 1
            self._store.unhold(self._ref, permit.ident)
            with anyio.CancelScope(shield=True):
                await self._settle(permit)
            self._freed.set()
            self._freed = anyio.Event()

    async def _release_quietly(self, permit: SharedPermit) -> None:
        try:
            await self._call(self._store.release, self._ref, permit.ident)
        except LaneStoreError as exc:
            logger.warning("lanes: could not give back a permit of %s (%s); it expires within "
                           "%g s", self.name, exc, self._store.lease)

    # -- feedback ----------------------------------------------------------------------------

    def succeeded(self, permit: Permit) -> None:
        """Record an accepted request; settled in the store when the permit is released."""
        assert isinstance(permit, SharedPermit)
        self.consecutive_rejections = 0
        if permit.local is not None:
            self._local.succeeded(permit.local)
        else:
            permit.accepted = True

    def rejected(self, permit: Permit, *, wait: float,
                 limit: policy.Exceeded = None) -> bool:
        """Record a rate-limit refusal; the pause and the cut are settled in the store when the
        permit is released (before the caller's next attempt asks for a permit).

        Returns:
            Whether this refusal will start or extend the pause, as far as this process
            knows (the store decides).
        """
        assert isinstance(permit, SharedPermit)
        self.rejections += 1
        self.consecutive_rejections += 1
        if permit.local is not None:
            return self._local.rejected(permit.local, wait=wait, limit=limit)
        permit.outcome = (wait, limit)
        return anyio.current_time() + wait > self._paused_until

    async def _settle(self, permit: SharedPermit) -> None:
        if permit.outcome is None and not permit.accepted:
            await self._release_quietly(permit)
            return
        try:
            settled = await self._call(self._settle_sync, permit)
        except LaneStoreError as exc:
            logger.warning("lanes: could not record the outcome of a request of %s (%s); "
                           "its permit expires within %g s", self.name, exc, self._store.lease)
            return
        if settled is None:
            return
        before, after, started, now = settled
        self.consecutive_rejections = after.consecutive
        self._guard = after.guard
        old, new = policy.limit_of(before, self.config), policy.limit_of(after, self.config)
        self._limit = new
        if new != old:
            self._emit(LaneLimitChanged(lane=self.name, old=old, new=new))
        if started and permit.outcome is not None:
            self._note_pause(after.paused_until - now)
            self._emit(PauseStarted(lane=self.name, seconds=permit.outcome[0]))

    def _settle_sync(self, permit: SharedPermit
                     ) -> tuple[policy.Control, policy.Control, bool, float] | None:
        """Compare and set: read the state, apply the policy, write it if nobody else did."""
        config = self.config
        sent = policy.Sent(sent_at=permit.sent_at, level=permit.level, at_edge=permit.at_edge)
        for _ in range(SETTLE_TRIES):
            seen = self._store.observe(self._ref)
            before = from_fields(seen.fields, config)
            started = False
            if permit.outcome is None:
                after = policy.after_success(before, config, sent, now=seen.now,
                                             sending=seen.sending)
            else:
                wait, limit = permit.outcome
                after, started = policy.after_rejection(before, config, sent, now=seen.now,
                                                        sending=seen.sending, wait=wait,
                                                        limit=limit)
            old = to_fields(before)
            changed = {k: v for k, v in to_fields(after).items() if old[k] != v}
            if self._store.apply(self._ref, permit.ident, seen.version, changed):
                return before, after, started, seen.now
        logger.warning("lanes: the outcome of a request of %s was dropped after %d tries "
                       "(heavy contention)", self.name, SETTLE_TRIES)
        self._store.release(self._ref, permit.ident)
        return None
