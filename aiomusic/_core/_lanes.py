"""Lanes: an adaptive concurrency limit, a request-rate window and a shared pause per key.

A lane is what one kind of call (submit, poll, transfer) of one service key may use. The
service can refuse a request for two reasons, and the lane answers each in its own way:

- **Too many at once** (a concurrency limit): only the requests above the service's capacity
  are refused. The lane lowers its limit to the level that was accepted and the refused
  request waits for one of ours to finish. Nobody else waits.
- **Too many per window** (a rate limit): the key's budget is spent, so the whole lane pauses
  until the window has room again, and learns the rate when it was not told it.

The answer names the limit when it can (MiniMax 1041 is a connection limit; 1002, Suno 430 and
a 429 with ``x-ratelimit-remaining-requests: 0`` are rates). When it does not, the level tells:
a refusal at a concurrency already accepted is the rate's; one at a new level is taken as the
concurrency's, and when no rate is known either, one probe a window later tells them apart.

The limit starts at 1 and grows while requests are admitted. A request is admitted when it is
answered, or when it is still unanswered a *grace* after it was sent (refusals come back fast;
the grace is twice the slowest recent refusal). Each step adds 2.5 % of the demand, so an
overshoot costs at most that share of the requests. Above a refused level the lane probes one
more only after 40 accepted requests, twice as many after each refused probe.

The rate window reserves each request's start when it gets its permit, and the request is sent
at exactly that time, so the starts the service sees are the starts the window counted. A guard
(2 % of the window at first) covers the jitter between our clock and the service's, and widens
when a start at the edge of a full window is refused. In a full window starts are also paced,
so a burst does not repeat every window. Nobody holds a permit through a pause.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Literal

import anyio
import attrs

from ._events import Event, LaneLimitChanged, PauseEnded, PauseStarted

__all__ = ["Lane", "LaneConfig", "LimitKind", "Permit"]

#: Which limit refused a request: too many per window, or too many at once.
LimitKind = Literal["rate", "concurrency"]

#: Slow start adds this share of the demand (permits held and awaited) per step, so that one
#: overshoot costs at most this share of the requests.
STEP_SHARE = 0.025
#: A request unanswered this long after it was sent was admitted. Learned as twice the slowest
#: recent refusal, between the bounds.
GRACE_START = 0.01
GRACE_MIN = 0.005
GRACE_MAX = 5.0
#: Requests accepted between two probes above a refused level; doubles per refused probe.
PROBE_REQUESTS = 40
#: The shortest rate window assumed when one is learned from refusals.
MIN_WINDOW = 1.0
#: Starts remembered (for at most HISTORY_SECONDS) while no rate is known, to learn one.
HISTORY = 2048
HISTORY_SECONDS = 300.0
#: The rate window's guard, as a share of the window: where it starts, and its largest value.
GUARD_START = 0.02
GUARD_MAX = 0.1
#: In a full rate window, starts are kept at least window / (PACE * rate) apart.
PACE = 1.5


@attrs.frozen
class LaneConfig:
    """Limits of one lane.

    Attributes:
        max_concurrency: The most requests in flight at once; the adaptive limit never exceeds it.
        initial_concurrency: Where the adaptive limit starts (default 1: it grows within a few
            round trips of a refusal while requests are admitted).
        rate: At most this many requests are *started* per ``per`` seconds (``None``: not told;
            an adaptive lane then learns it from the service's refusals).
        per: The rate window in seconds.
        adaptive: Whether the concurrency limit adapts. Off, it stays at ``max_concurrency``
            and every refusal pauses the lane.
    """

    max_concurrency: int = attrs.field(default=16, validator=attrs.validators.ge(1))
    initial_concurrency: int | None = None
    rate: int | None = attrs.field(default=None)
    per: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))
    adaptive: bool = True

    @rate.validator
    def _check_rate(self, _: object, value: int | None) -> None:
        if value is not None and value < 1:
            raise ValueError(f"rate must be None or at least 1, got {value}")

    @property
    def start(self) -> int:
        """The adaptive limit's starting value."""
        if self.initial_concurrency is not None:
            return max(1, min(self.initial_concurrency, self.max_concurrency))
        return self.max_concurrency if not self.adaptive else 1


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


class Lane:
    """A concurrency limit that adapts, a rate window and a shared pause.

    Use `permit()` around each request attempt, then report the outcome with
    `succeeded()` or `rejected()`.
    """

    def __init__(self, name: str, config: LaneConfig, *,
                 emit: Callable[[Event], None] | None = None) -> None:
        self.name = name
        self.config = config
        self._emit = emit or (lambda _event: None)
        # concurrency: a FIFO of waiters; the head one also wakes when a check is due
        self._limit = config.start
        self._held = 0
        self._queue: deque[_Waiter] = deque()
        self._sending = 0
        self._grace = GRACE_START
        self._inflight: set[Permit] = set()
        self._watch: Permit | None = None  # the oldest request sent and not yet checked
        self._recent: deque[Permit] = deque()  # requests sent within the grace
        self._proven = 0  # the highest level admitted (and not refused since)
        self._ceiling = math.inf  # the lowest level refused for concurrency, not since admitted
        self._cut_at = -math.inf
        self._settle_until = -math.inf  # no refills before: a burst's refusals are arriving
        self._accepted = 0  # requests admitted since the last refusal
        self._failed_probes = 0
        self._suspect: tuple[float, float] | None = None  # (sent_at, wait): maybe the rate's
        self._probe_at = math.inf  # when the probe that tells a suspect apart may go
        self._rtt = 1.0
        # rate: the starts in the window, past and reserved, each in a cell
        self._starts: deque[list[float]] = deque()
        self._replanned = anyio.Event()
        self._guard = GUARD_START * config.per
        self._learned: int | None = None  # a rate taught by refusals (never above the told one)
        self._learned_per = config.per
        self._history: deque[Permit] = deque(maxlen=HISTORY)
        self._lesson: tuple[float, float] | None = None  # (sent_at, wait) of a rate refusal
        # the shared pause
        self._paused_until = 0.0
        self._pause_started = -math.inf
        self._pause_open = False
        self.rejections = 0
        self.consecutive_rejections = 0

    # -- observation -------------------------------------------------------------------------

    @property
    def limit(self) -> int:
        """The current concurrency limit."""
        return self._limit

    @property
    def in_flight(self) -> int:
        """Requests holding a permit now."""
        return self._held

    @property
    def sending(self) -> int:
        """Requests sent and not answered yet (holding a permit, past their rate slot)."""
        return self._sending

    @property
    def rate(self) -> int | None:
        """Starts allowed per `per` seconds: the told rate, or a lower one refusals taught."""
        return self._learned if self._learned is not None else self.config.rate

    @property
    def per(self) -> float:
        """The rate window in seconds (told, or learned with the rate)."""
        return self._learned_per if self._learned is not None else self.config.per

    @property
    def rate_guard(self) -> float:
        """Seconds added to the rate window, against the jitter between our clock and the
        service's (0 when the lane has no rate window)."""
        return self._guard if self.rate is not None else 0.0

    @property
    def paused_for(self) -> float:
        """Seconds left in the shared pause (0 when not paused)."""
        return max(0.0, self._paused_until - anyio.current_time())

    # -- admission ---------------------------------------------------------------------------

    @asynccontextmanager
    async def permit(self) -> AsyncIterator[Permit]:
        """Wait for the pause, a concurrency permit and a start in the rate window, in order."""
        permit = Permit(sent_at=0.0)
        while True:
            await self._wait_pause()
            await self._acquire()
            # A pause may have started while we waited for the permit or the rate slot: never
            # hold a permit through a pause (the limit may be cut meanwhile).
            try:
                sent = (self._paused_until <= anyio.current_time()
                        and await self._wait_rate(permit))
            except BaseException:
                self._release()
                raise
            if sent:
                break
            self._release()
        self._sent(permit)
        try:
            yield permit
        finally:
            self._sending -= 1
            self._inflight.discard(permit)
            if not permit.refused:
                now = anyio.current_time()
                self._answered(now)
                if now - permit.sent_at >= self._grace:
                    self._admit(permit, self._seen(permit))
            if self._watch is permit:
                self._watch = None
            self._release()

    async def _wait_pause(self) -> None:
        # the deadline can move (a new rejection extends it), so re-check after each sleep
        while (left := self._paused_until - anyio.current_time()) > 0:  # noqa: ASYNC110
            await anyio.sleep(left)
        if self._pause_open:
            self._pause_open = False
            self._emit(PauseEnded(lane=self.name))

    async def _acquire(self) -> None:
        """Take a concurrency permit, first come first served."""
        if self._held < self._limit and not self._queue:
            self._held += 1
            return
        waiter = _Waiter()
        self._queue.append(waiter)
        try:
            while not waiter.granted:
                # Only the head waiter wakes for the lane's checks (a grace ending, a probe
                # falling due): one wake-up per check, whatever the number of waiters.
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
                self._release()
            else:
                head = self._queue[0] is waiter
                self._queue.remove(waiter)
                if head:
                    self._nudge()
            raise

    def _release(self) -> None:
        self._held -= 1
        self._grant()

    def _grant(self) -> None:
        granted = False
        settling = anyio.current_time() < self._settle_until
        while self._queue and self._held < self._limit and not settling:
            waiter = self._queue.popleft()
            waiter.granted = True
            self._held += 1
            waiter.event.set()
            granted = True
        if granted:
            self._nudge()

    def _nudge(self) -> None:
        """Wake the head waiter so that it looks at the lane's next check again."""
        if self._queue:
            self._queue[0].event.set()

    def _answered(self, now: float) -> None:
        """An answer came back. Requests sent shortly before may reach the service after this
        one left it, so the service may have seen fewer in flight than their level says."""
        recent = self._recent
        while recent and recent[0].sent_at < now - self._grace:
            recent.popleft()
        for permit in recent:
            permit.clean = False

    def _sent(self, permit: Permit) -> None:
        now = anyio.current_time()
        permit.sent_at = now
        self._sending += 1
        permit.level = self._sending
        recent = self._recent
        while recent and recent[0].sent_at < now - self._grace:
            recent.popleft()
        permit.overlap = len(recent)
        recent.append(permit)
        if self.rate is None:
            history = self._history
            while history and history[0].sent_at < now - HISTORY_SECONDS:
                history.popleft()
            history.append(permit)
        self._inflight.add(permit)
        if self._watch is None:
            self._watch = permit
            self._nudge()
        elif permit.level >= self._limit:
            self._nudge()

    async def _wait_rate(self, permit: Permit) -> bool:
        """Reserve this request's start in the rate window and sleep until it.

        Called with the concurrency permit held, so the reserved time is the time the request
        is sent: a start reserved long before the permit came would let the window count a
        start the service sees later. Holding the permit while sleeping costs nobody anything:
        starts are reserved first come, first served, so no request behind this one could
        start earlier. Returns False, with the reservation given back, when a pause began
        meanwhile.
        """
        if self._lesson is not None and anyio.current_time() >= self._lesson[0] + self._grace:
            # the answers of the requests sent with the refused one are in: count them
            lesson, self._lesson = self._lesson, None
            self._learn_rate(*lesson)
        if self.rate is None:
            return True
        cell = self._reserve(anyio.current_time())
        permit.cell = cell
        try:
            # the start can move earlier (a refused start gave its place back): re-plan wakes us
            while (left := cell[0] - anyio.current_time()) > 0:
                with anyio.move_on_after(left):
                    await self._replanned.wait()
        except BaseException:
            _remove(self._starts, cell)
            raise
        woke = anyio.current_time()
        if self._paused_until > woke:
            _remove(self._starts, cell)  # give the start back
            return False
        permit.at_edge = cell[1] > 0
        # A busy event loop wakes us late: the request 'rate' places later must count from
        # when this one really starts.
        cell[0] = max(cell[0], woke)
        return True

    def _reserve(self, now: float, cell: list[float] | None = None) -> list[float]:
        """Append a start to the window: ``[time, 1 if the window was full else 0]``.

        The n-th start may come no earlier than the (n - rate)-th plus the window and its
        guard. The deque holds the starts, past and future, in order.
        """
        rate = self.rate
        assert rate is not None
        window = self.per + self._guard
        starts = self._starts
        while starts and starts[0][0] <= now - window:
            starts.popleft()
        slot, edge = now, 0.0
        if len(starts) >= rate:
            # A full window: also keep starts apart (a little closer than the average rate
            # allows), so that a burst (all the starts of an empty window at once) is spread out
            # instead of repeating every window, and each request reaches the service alone,
            # with little jitter, while a window's starts still end well before the next one.
            slot = max(now, starts[-rate][0] + window, starts[-1][0] + window / (PACE * rate))
            edge = 1.0
        elif starts:
            slot = max(slot, starts[-1][0])
        if cell is None:
            cell = [slot, edge]
        else:
            cell[0], cell[1] = slot, edge
        starts.append(cell)
        return cell

    def _replan(self, now: float) -> None:
        """Reserve the future starts again, in order (after the window changed)."""
        future: list[list[float]] = []
        while self._starts and self._starts[-1][0] > now:
            future.append(self._starts.pop())
        if future and self.rate is not None:
            for cell in reversed(future):
                self._reserve(now, cell)
            self._replanned.set()
            self._replanned = anyio.Event()

    # -- the checks the head waiter runs ---------------------------------------------------

    def _next_check(self) -> float:
        watch = self._watch
        due = watch.sent_at + self._grace if watch is not None else math.inf
        settled = self._settle_until if self._settle_until > anyio.current_time() else math.inf
        return min(due, settled, self._probe_due())

    def _tick(self) -> None:
        now = anyio.current_time()
        if self._held < self._limit:
            self._grant()  # a settling time ended
        watch = self._watch
        if watch is not None and now >= watch.sent_at + self._grace:
            # Unanswered a grace after it was sent, like every request sent before it that is
            # still in flight: all of them reached the service, and none has left it yet (its
            # answer would be here), so it held all of them at once.
            self._watch = None
            self._admit(watch, sum(1 for p in self._inflight if p.sent_at <= watch.sent_at))
        if self._probe_due() <= now:
            # one more than the service took last time, for one request
            self._probe_at = math.inf
            self._set_limit(int(self._ceiling))

    def _probe_due(self) -> float:
        """When a probe above the refused level may go (infinity: none now)."""
        if (not self.config.adaptive or self._limit + 1 != self._ceiling
                or self._sending < self._limit or not self._queue):
            return math.inf
        if self._suspect is not None:
            return self._probe_at
        if self._accepted >= PROBE_REQUESTS << min(self._failed_probes, 16):
            return -math.inf
        return math.inf

    # -- feedback ----------------------------------------------------------------------------

    def succeeded(self, permit: Permit) -> None:
        """Report an accepted request; may grow the limit (see the module's docstring)."""
        now = anyio.current_time()
        self.consecutive_rejections = 0
        self._rtt = 0.8 * self._rtt + 0.2 * max(now - permit.sent_at, 0.001)
        rate = self.rate
        if permit.at_edge and rate is not None:
            # narrow a widened guard again, slowly: by a factor e over 32 full windows
            self._guard = max(GUARD_START * self.per, self._guard * (1 - 1 / (32 * rate)))
        self._admit(permit, self._seen(permit))

    @staticmethod
    def _seen(permit: Permit) -> int:
        """How many of ours the service surely held at once when it took ``permit``."""
        return permit.level - permit.overlap if permit.clean else 0

    def _admit(self, permit: Permit, seen: int) -> None:
        """``permit`` was taken, with ``seen`` of ours in flight at the service."""
        if permit.admitted or permit.refused:
            return
        permit.admitted = True
        self._accepted += 1
        self._proven = max(self._proven, seen)
        if seen >= self._ceiling:  # a level refused before was admitted
            if self._suspect is not None:
                # admitted with as many in flight as before, one window later: the refusal
                # was the rate's, not the concurrency's
                self._learn_rate(*self._suspect)
                self._ceiling = math.inf
            else:
                self._ceiling = seen + 1
            self._suspect = None
            self._probe_at = math.inf
            self._failed_probes = 0
        if self.config.adaptive and max(seen, permit.level) >= self._limit and self._queue:
            if self._ceiling == math.inf:  # slow start
                demand = self._held + len(self._queue)
                self._set_limit(self._limit + max(1, int(STEP_SHARE * demand)))
            elif self._limit + 1 < self._ceiling:
                self._set_limit(self._limit + 1)
        self._nudge()

    def rejected(self, permit: Permit, *, wait: float, limit: LimitKind | None = None) -> bool:
        """Report a refusal by the service's limits; ``wait`` is what it advised (or a backoff).

        ``limit`` says which limit refused, when the answer said; otherwise the level tells
        (see the module's docstring). A concurrency refusal lowers the limit to the level that
        was accepted and pauses nobody; a rate refusal pauses the lane until the window has
        room (learning the rate when it was not told), or for ``wait`` when nothing is known.

        Returns:
            True when this rejection started (or extended) the pause, False otherwise (no
            pause, or one already under way, to which this request belonged).
        """
        now = anyio.current_time()
        self.rejections += 1
        self.consecutive_rejections += 1
        gave_back = False
        if not permit.refused:
            permit.refused = True
            self._learn_grace(now - permit.sent_at)
            # a refused start uses no room in the window (re-planned below)
            gave_back = permit.cell is not None and _remove(self._starts, permit.cell)
            if permit is self._watch:
                self._watch = None
        paused = self._feedback(permit, wait, limit, now)
        if gave_back:
            self._replan(now)
        return paused

    def _feedback(self, permit: Permit, wait: float, limit: LimitKind | None,
                  now: float) -> bool:
        if permit.sent_at <= self._pause_started:
            return False  # it belongs to the pause under way
        # At most this many of ours were at the service: requests sent at once arrive in any
        # order, so the level alone can be too low.
        level = max(permit.level, self._sending)
        # Unnamed: a refusal at a level the service took before is the rate's (at the edge of
        # the window, when the rate was told); any other is the concurrency's.
        kind = limit or ("rate" if level <= self._proven
                         and (permit.at_edge or self.config.rate is None) else "concurrency")
        if kind == "concurrency" and self.config.adaptive and level > 1:
            self._cut(permit, level, wait, now, guess=limit is None and self.rate is None)
            return False
        pause = wait
        if kind == "rate" and self._rate_refused(permit, wait):
            pause = self._next_start(now) - now
            if pause <= 0:  # the window had room by our count: trust the service's advice
                pause = wait
        return self._pause(now, pause)

    def _cut(self, permit: Permit, level: int, wait: float, now: float, *, guess: bool) -> None:
        """Lower the limit below ``level``, which was refused for concurrency."""
        if permit.sent_at >= self._cut_at:  # news, not an echo of the burst already cut for
            self._accepted = 0
            if level >= self._ceiling:  # a refused probe
                self._failed_probes += 1
                self._suspect = None  # refused again a window later: the concurrency after all
        if level < self._ceiling:
            self._ceiling = level
            self._cut_at = now
            if guess and self._suspect is None:
                # No rate is known and the answer did not say: this may as well have been the
                # rate. Probe this level again once a window has passed to tell them apart.
                self._suspect = (permit.sent_at, wait)
                self._probe_at = now + max(wait, MIN_WINDOW)
        self._proven = min(self._proven, level - 1)
        # Requests sent with this one may be refused too: refill no slot before their answers
        # are in, so that the cut is final before anyone is sent at a level that is refused.
        self._settle_until = max(self._settle_until, permit.sent_at + self._grace)
        self._set_limit(min(self._limit, level - 1))
        self._nudge()

    def _rate_refused(self, permit: Permit, wait: float) -> bool:
        """Adjust the rate window to a rate refusal; whether the lane now has a rate model."""
        rate = self.rate
        if permit.at_edge and rate is not None:
            # Sent at the edge of a full window: the service most likely counted a start of the
            # window before (our clocks and the network disagree by a few ms). Widen the guard;
            # at its widest, take one start less per window.
            widest = GUARD_MAX * self.per
            if self._guard < widest:
                self._guard = min(widest, 2 * self._guard)
            else:
                self._learned, self._learned_per = max(1, rate - 1), self.per
            return True
        if self.rate is None:
            # Learn once the requests sent with this one have their answers (after the pause)
            if self._lesson is None:
                self._lesson = (permit.sent_at, wait)
            return False
        return self._learn_rate(permit.sent_at, wait)

    def _learn_rate(self, at: float, wait: float) -> bool:
        """Take the starts admitted in the window before ``at`` as the rate; whether one is
        known afterwards."""
        now = anyio.current_time()
        told = self.config.rate
        if self.rate is not None:
            per = self.per
            count = sum(1 for cell in self._starts if at - per < cell[0] <= at)
        else:
            per = max(MIN_WINDOW, wait)  # a window is at least as long as the wait it advises
            count = sum(1 for p in self._history if at - per < p.sent_at <= at and not p.refused)
        if count < 1:
            return self.rate is not None
        if told is not None and count >= told:
            return True  # the told rate stands
        if self.rate is None:
            # from now on the window holds the starts: those of the last window first
            for p in self._history:
                if p.sent_at > now - per - self._guard and not p.refused:
                    p.cell = [p.sent_at, 0.0]
                    self._starts.append(p.cell)
            self._history.clear()
        self._learned, self._learned_per = count, per
        self._guard = max(self._guard, GUARD_START * per)
        return True

    def _next_start(self, now: float) -> float:
        """When the window next has room, counting the starts made (not those reserved)."""
        rate = self.rate
        assert rate is not None
        window = self.per + self._guard
        past = [cell[0] for cell in self._starts if now - window < cell[0] <= now]
        return past[-rate] + window if len(past) >= rate else now

    def _learn_grace(self, latency: float) -> None:
        # quick to grow (a slow refusal must not be taken for an admission twice), slow to shrink
        target = 2 * latency
        grace = target if target > self._grace else 0.9 * self._grace + 0.1 * target
        self._grace = min(GRACE_MAX, max(GRACE_MIN, grace))

    def _pause(self, now: float, seconds: float) -> bool:
        until = now + seconds
        if seconds <= 0 or until <= self._paused_until:
            return False
        self._pause_started = now
        self._paused_until = until
        self._pause_open = True
        self._emit(PauseStarted(lane=self.name, seconds=seconds))
        return True

    def _set_limit(self, value: int) -> None:
        new = max(1, min(value, self.config.max_concurrency))
        old = self._limit
        if new != old:
            self._limit = new
            self._emit(LaneLimitChanged(lane=self.name, old=old, new=new))
            if new > old:
                self._grant()


def _remove(starts: deque[list[float]], cell: list[float]) -> bool:
    """Take ``cell`` itself (not an equal one) out of ``starts``; whether it was there."""
    for index in range(len(starts) - 1, -1, -1):  # recent cells are at the end
        if starts[index] is cell:
            del starts[index]
            return True
    return False
