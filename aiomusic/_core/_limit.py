"""A lane's adaptive concurrency limit: a FIFO of waiters and the control loop that sizes it.

The limit starts at 1 and grows while requests are *admitted*: answered, or still unanswered
a grace after they were sent (refusals come back fast; the grace is twice the slowest recent
refusal). Each step adds 1.5 % of the demand (at least 2), so that one overshoot costs at most
that share of the requests (or one refusal). What the service took is known from evidence that
survives requests arriving out of order: a grace after a request was sent, if it is still in
flight, it and every other request still in flight that was sent before it reached the
service, and none of them has left it (its answer would be here), so the service held all of
them at once.

A concurrency refusal lowers the limit below the level refused: the larger of the request's
level and what is in flight when the refusal arrives, since requests sent at once reach the
service in any order. No slot is refilled until the refusals of the requests sent with it are
in, so the cut is final before anyone is sent at a level that is refused. Above the refused
level the limit probes one more only after 40 accepted requests, twice as many after each
refused probe. When the refusal may as well have been the rate's (no rate known, nothing named
in the answer), the first probe comes one window later instead, and tells them apart.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import anyio
import attrs

from ._events import Event, LaneLimitChanged

__all__ = ["AdaptiveLimit", "Permit"]

#: Slow start adds this share of the demand (permits held and awaited) per step, and at least
#: STEP_MIN (an overshoot then costs at most one refusal more than the step's share).
STEP_SHARE = 0.015
STEP_MIN = 2
#: A request unanswered this long after it was sent was admitted. Learned as twice the slowest
#: recent refusal, between the bounds, and brought back below the answers' own time.
GRACE_START = 0.01
GRACE_MIN = 0.005
GRACE_MAX = 5.0
#: Requests accepted between two probes above a refused level; doubles per refused probe.
PROBE_REQUESTS = 40


@attrs.define(eq=False)
class Permit:
    """One request's place in a lane.

    ``sent_at`` tells which pause it belongs to; ``level`` how many requests were in flight
    when it was sent, itself included; ``at_edge`` that it was sent when the rate window was
    full (it waited for, or took, the last free start in the window); ``admitted`` and
    ``refused`` what the lane knows of its fate. The service saw at least ``level - overlap``
    in flight (``overlap``: requests sent just before, which may arrive after it), and exactly
    that many when the request is ``clean``: no answer to another came back soon after it was
    sent.
    """

    sent_at: float
    level: int = 0
    at_edge: bool = False
    admitted: bool = False
    refused: bool = False
    clean: bool = True
    overlap: int = 0
    cell: list[float] | None = attrs.field(default=None, repr=False)


@attrs.define(eq=False)
class _Waiter:
    event: anyio.Event = attrs.field(factory=anyio.Event)
    granted: bool = False


class AdaptiveLimit:
    """How many requests of a lane may be in flight, and who waits for a place."""

    def __init__(self, name: str, *, start: int, maximum: int, adaptive: bool,
                 emit: Callable[[Event], None],
                 rate_lesson: Callable[[float, float], None]) -> None:
        self._name = name
        self._maximum = maximum
        self._adaptive = adaptive
        self._emit = emit
        self._rate_lesson = rate_lesson  # (sent_at, wait) of a refusal that was the rate's
        self.value = start
        self.held = 0
        self.sending = 0
        self._queue: deque[_Waiter] = deque()
        self._inflight: set[Permit] = set()
        self._recent: deque[Permit] = deque()  # requests sent within the grace
        self._check_at = math.inf  # when the oldest request not yet admitted has its grace
        self.grace = GRACE_START
        self._trusted_from = -math.inf  # requests sent earlier were judged by too short a grace
        self.proven = 0  # the most of ours the service surely took at once (since a cut)
        self.worked = 0  # the most of ours in flight when one was taken (since a cut)
        self._ceiling = math.inf  # the lowest level refused, and not since taken
        self._cut_at = -math.inf
        self._settle_until = -math.inf  # no refills before: a burst's refusals are arriving
        self._cuts: list[list[Permit]] = []  # what was in flight when each refusal came
        self._accepted = 0  # requests admitted since the last refusal
        self.failed_probes = 0
        self._probing = False  # the limit was raised above the refused level for one probe
        self._suspect: tuple[float, float] | None = None  # (sent_at, wait): maybe the rate's
        self._probe_at = math.inf  # when the probe that tells a suspect apart may go

    # -- places ------------------------------------------------------------------------------

    async def acquire(self) -> None:
        """Take a place, first come first served."""
        self._settled()
        settling = anyio.current_time() < self._settle_until
        if self.held < self.value and not self._queue and not settling:
            self.held += 1
            return
        waiter = _Waiter()
        self._queue.append(waiter)
        try:
            while not waiter.granted:
                # Only the head waiter wakes for the checks (a grace ending, a probe falling
                # due): one wake-up per check, whatever the number of waiters.
                head = self._queue[0] is waiter
                delay = self._next_check() - anyio.current_time() if head else math.inf
                with anyio.move_on_after(delay):
                    await waiter.event.wait()
                if not waiter.granted:
                    waiter.event = anyio.Event()
                    if self._queue[0] is waiter:
                        self._tick()
        except BaseException:
            if waiter.granted:
                self.release()
            else:
                head = self._queue[0] is waiter
                self._queue.remove(waiter)
                if head:
                    self._nudge()
            raise

    def release(self) -> None:
        self.held -= 1
        self._grant()

    def _grant(self) -> None:
        granted = False
        settling = anyio.current_time() < self._settle_until
        while self._queue and self.held < self.value and not settling:
            waiter = self._queue.popleft()
            waiter.granted = True
            self.held += 1
            waiter.event.set()
            granted = True
        if granted:
            self._nudge()

    def _nudge(self) -> None:
        """Wake the head waiter so that it looks at the next check again."""
        if self._queue:
            self._queue[0].event.set()

    def _set(self, value: int) -> None:
        new = max(1, min(value, self._maximum))
        old = self.value
        if new != old:
            self.value = new
            self._emit(LaneLimitChanged(lane=self._name, old=old, new=new))
            if new > old:
                self._grant()

    # -- requests sent and answered ----------------------------------------------------------

    def sent(self, permit: Permit, now: float) -> None:
        self.sending += 1
        permit.level = self.sending
        recent = self._recent
        while recent and recent[0].sent_at < now - self.grace:
            recent.popleft()
        permit.overlap = len(recent)
        recent.append(permit)
        self._inflight.add(permit)
        if self._check_at == math.inf:
            self._check_at = now + self.grace
            self._nudge()
        elif permit.level >= self.value:
            self._nudge()

    def done(self, permit: Permit, now: float) -> None:
        """``permit`` left the service (answered, refused or abandoned)."""
        self.sending -= 1
        self._inflight.discard(permit)
        if not permit.refused:
            # Requests sent shortly before may reach the service after this one left it, so
            # the service may have seen fewer in flight than their level says.
            recent = self._recent
            while recent and recent[0].sent_at < now - self.grace:
                recent.popleft()
            for other in recent:
                other.clean = False
            took = now - permit.sent_at
            if took >= self.grace:
                self.admit(permit, self.seen(permit))
            if self.grace > took / 2:
                # A grace as long as the answers leaves no request clean and none old enough
                # to count, so no evidence at all (a burst of slow refusals taught it): bring
                # it back down, slowly, towards half the answers' time.
                self.grace = max(GRACE_MIN, 0.9 * self.grace + 0.05 * took)

    def seen(self, permit: Permit) -> int:
        """How many of ours the service surely held at once when it took ``permit``."""
        trusted = permit.clean and permit.sent_at >= self._trusted_from
        return permit.level - permit.overlap if trusted else 0

    def admit(self, permit: Permit, seen: int) -> None:
        """``permit`` was taken, with ``seen`` of ours in flight at the service."""
        if permit.admitted or permit.refused:
            return
        permit.admitted = True
        self._accepted += 1
        self.worked = max(self.worked, permit.level - permit.overlap)
        self._took(seen, filled=permit.level >= self.value)

    @property
    def capped(self) -> bool:
        """Whether the service has refused a level for concurrency (and not taken it since)."""
        return self._ceiling != math.inf

    def _took(self, seen: int, *, filled: bool) -> None:
        """The service held ``seen`` of ours at once; ``filled``: they used the whole limit."""
        self.proven = max(self.proven, seen)
        self.worked = max(self.worked, seen)
        if seen >= self._ceiling:  # a level refused before was taken
            if self._suspect is not None:
                # taken with as many in flight as before, one window later: the refusal was
                # the rate's, not the concurrency's
                self._rate_lesson(*self._suspect)
                self._ceiling = math.inf
            else:
                self._ceiling = seen + 1
            self._suspect = None
            self._probe_at = math.inf
            self.failed_probes = 0
            self._probing = False
        if self._adaptive and (filled or seen >= self.value) and self._queue:
            if self._ceiling == math.inf:  # slow start
                demand = self.held + len(self._queue)
                self._set(self.value + max(STEP_MIN, int(STEP_SHARE * demand)))
            elif self.value + 1 < self._ceiling:
                self._set(self.value + 1)
        self._nudge()

    def refused(self, permit: Permit, now: float) -> None:
        """``permit`` was refused (for either limit): learn how fast refusals come back."""
        permit.refused = True
        latency = now - permit.sent_at
        if latency > self.grace:
            # The grace was too short: requests sent so far may have been taken as admitted, or
            # as alone at the service, when they were not. Their evidence does not hold.
            self.proven = 0
            self._trusted_from = now
            self._check_at = min(self._check_at, now + 2 * latency)  # evidence anew
        # twice the slowest recent refusal: quick to grow, slow to shrink
        target = 2 * latency
        grace = target if target > self.grace else 0.9 * self.grace + 0.1 * target
        self.grace = min(GRACE_MAX, max(GRACE_MIN, grace))

    def cut(self, permit: Permit, level: int, *, suspect_until: float | None) -> None:
        """``permit`` was refused for concurrency with at most ``level`` of ours in flight.

        ``suspect_until``: the refusal may as well have been the rate's; probe its level again
        at that time to tell them apart.
        """
        now = anyio.current_time()
        if permit.sent_at >= self._cut_at:  # news, not an echo of the burst already cut for
            self._accepted = 0
            if self._probing and level >= self._ceiling:  # the probe was refused
                self._probing = False
                self.failed_probes += 1
                self._suspect = None  # refused again a window later: the concurrency after all
        if level < self._ceiling:
            self._ceiling = level
            self._cut_at = now
            if suspect_until is not None and self._suspect is None:
                self._suspect = (permit.sent_at, suspect_until - now)
                self._probe_at = suspect_until
        self.proven = min(self.proven, level - 1)
        self.worked = min(self.worked, level - 1)
        self._settle_until = max(self._settle_until, permit.sent_at + self.grace)
        self._cuts.append([p for p in self._inflight if p is not permit])
        self._set(min(self.value, level - 1))
        self._nudge()

    def _settled(self) -> None:
        """Once a burst's refusals are all in, cut to what the service really held: of the
        requests in flight when a refusal came, those that were not refused."""
        if self._cuts and anyio.current_time() >= self._settle_until:
            held = min(sum(1 for p in snapshot if not p.refused) for snapshot in self._cuts)
            # A refusal with only refused requests of ours in flight says nothing about how
            # many the service holds, which is at least one: a ceiling of 1 would never probe.
            held = max(1, held)
            self._cuts.clear()
            if held + 1 < self._ceiling:
                self._ceiling = held + 1
                self._set(min(self.value, held))

    # -- the checks the head waiter runs -----------------------------------------------------

    def _next_check(self) -> float:
        settled = self._settle_until if self._settle_until > anyio.current_time() else math.inf
        return min(self._check_at, settled, self._probe_due())

    def _tick(self) -> None:
        now = anyio.current_time()
        self._settled()
        if self.held < self.value:
            self._grant()  # a settling time ended
        if now >= self._check_at:
            # Every request still unanswered a grace after it was sent reached the service, and
            # none of them has left it (its answer would be here): it held all of them at once.
            old = [p for p in self._inflight if p.sent_at + self.grace <= now and not p.refused]
            fresh = [p for p in old if not p.admitted]
            for permit in fresh:
                permit.admitted = True
            self._accepted += len(fresh)
            self._took(len(old), filled=bool(fresh) and len(old) >= self.value)
            self._check_at = min((p.sent_at + self.grace for p in self._inflight
                                  if not p.admitted and not p.refused), default=math.inf)
        if self._probe_due() <= now:
            # one more than the service took last time, for one request
            self._probe_at = math.inf
            self._probing = True
            self._set(int(self._ceiling))

    def _probe_due(self) -> float:
        """When a probe above the refused level may go (infinity: none now)."""
        # (none at the maximum: the limit could not rise, and the check would fall due again
        # at once, for ever)
        if (not self._adaptive or self.value >= self._maximum or self.value + 1 != self._ceiling
                or self.sending < self.value or not self._queue):
            return math.inf
        if self._suspect is not None:
            return self._probe_at
        if self._accepted >= PROBE_REQUESTS << min(self.failed_probes, 16):
            return -math.inf
        return math.inf
