"""Lanes: an adaptive concurrency limit, a request-rate window and a shared pause per key.

A lane is what one kind of call (submit, poll, transfer) of one service key may use. Rate limits
belong to the key, so when one request is rejected the whole lane pauses once, instead of every
in-flight request discovering the limit by itself, and the concurrency limit is cut (AIMD).
Nobody holds a permit through a pause: the pause is waited out first, and a permit is given
back when a pause begins while its holder waits.

The rate window reserves each request's start when it gets its concurrency permit, and the
request is sent at exactly that time, so the starts the service sees are the starts the window
counted. A small guard (2 % of the window at first) covers the jitter between our clock and the
service's; a rejection of a request sent at the edge of a full window, at a concurrency the
service accepted before, widens the guard instead of cutting the concurrency limit, because it
says the rate, not the concurrency, was too high. In a full window starts are also paced, so a
burst does not repeat every window and each request reaches the service on its own.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import attrs

from ._events import Event, LaneLimitChanged, PauseEnded, PauseStarted

__all__ = ["Lane", "LaneConfig", "Permit"]

#: Multiplicative decrease on a rejection.
BETA = 0.7
#: Round trips between probes above the level the service last refused.
PROBE_RTTS = 8
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
        initial_concurrency: Where the adaptive limit starts (defaults to a quarter of the maximum,
            at least 1); it grows quickly until the first rejection, then slowly.
        rate: At most this many requests are *started* per ``per`` seconds (``None``: no window).
        per: The rate window in seconds.
        adaptive: Whether rejections cut the concurrency limit (AIMD). Off, the limit stays at
            ``max_concurrency`` and only the shared pause applies.
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
        if not self.adaptive:
            return self.max_concurrency
        return max(1, self.max_concurrency // 4)


@attrs.define(eq=False)
class Permit:
    """One request's place in a lane.

    ``sent_at`` tells which pause it belongs to; ``level`` how many requests were in flight
    when it was sent, itself included; ``at_edge`` that it was sent when the rate window was
    full (it waited for, or took, the last free start in the window).
    """

    sent_at: float
    level: int = 0
    at_edge: bool = False


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
        self._limit = float(config.start)
        self._limiter = anyio.CapacityLimiter(config.start)
        self._starts: deque[list[float]] = deque()  # [start time] per request, in order
        self._guard = GUARD_START * config.per
        self._sending = 0
        self._paused_until = 0.0
        self._pause_started = -math.inf
        self._pause_open = False
        self._last_cut = -math.inf
        self._slow_start = config.adaptive
        self._ceiling = math.inf  # the limit at which the service last refused
        self._proven = 0  # the highest level accepted since the last cut
        self._rtt = 1.0
        self.rejections = 0
        self.consecutive_rejections = 0

    # -- observation -------------------------------------------------------------------------

    @property
    def limit(self) -> int:
        """The current concurrency limit."""
        return int(self._limiter.total_tokens)

    @property
    def in_flight(self) -> int:
        """Requests holding a permit now."""
        return int(self._limiter.borrowed_tokens)

    @property
    def sending(self) -> int:
        """Requests sent and not answered yet (holding a permit, past their rate slot)."""
        return self._sending

    @property
    def rate_guard(self) -> float:
        """Seconds added to the rate window, against the jitter between our clock and the
        service's (0 when the lane has no rate window)."""
        return self._guard if self.config.rate is not None else 0.0

    @property
    def paused_for(self) -> float:
        """Seconds left in the shared pause (0 when not paused)."""
        return max(0.0, self._paused_until - anyio.current_time())

    # -- admission ---------------------------------------------------------------------------

    @asynccontextmanager
    async def permit(self) -> AsyncIterator[Permit]:
        """Wait for the pause, a concurrency permit and a start in the rate window, in order."""
        permit = Permit(sent_at=0.0)  # the token: one task may hold several permits
        while True:
            await self._wait_pause()
            await self._limiter.acquire_on_behalf_of(permit)
            # A pause may have started while we waited for the permit or the rate slot: never
            # hold a permit through a pause (the limit may be cut meanwhile).
            try:
                sent = (self._paused_until <= anyio.current_time()
                        and await self._wait_rate(permit))
            except BaseException:
                self._limiter.release_on_behalf_of(permit)
                raise
            if sent:
                break
            self._limiter.release_on_behalf_of(permit)
        permit.sent_at = anyio.current_time()
        self._sending += 1
        permit.level = self._sending
        try:
            yield permit
        finally:
            self._sending -= 1
            self._limiter.release_on_behalf_of(permit)

    async def _wait_pause(self) -> None:
        # the deadline can move (a new rejection extends it), so re-check after each sleep
        while (left := self._paused_until - anyio.current_time()) > 0:  # noqa: ASYNC110
            await anyio.sleep(left)
        if self._pause_open:
            self._pause_open = False
            self._emit(PauseEnded(lane=self.name))

    async def _wait_rate(self, permit: Permit) -> bool:
        """Reserve this request's start in the rate window and sleep until it.

        Called with the concurrency permit held, so the reserved time is the time the request
        is sent: a start reserved long before the permit came would let the window count a
        start the service sees later. Holding the permit while sleeping costs nobody anything:
        starts are reserved first come, first served, so no request behind this one could
        start earlier. Returns False, with the reservation given back, when a pause began
        meanwhile.
        """
        rate = self.config.rate
        if rate is None:
            return True
        # The n-th reservation may start no earlier than the (n - rate)-th plus the window and
        # its guard. The deque holds the starts, past and future, in order; each in a cell, so
        # that a request that wakes late can record when it really started.
        now = anyio.current_time()
        window = self.config.per + self._guard
        starts = self._starts
        while starts and starts[0][0] <= now - window:
            starts.popleft()
        slot = now
        if len(starts) >= rate:
            # A full window: also keep starts apart (a little closer than the average rate
            # allows), so that a burst (all the starts of an empty window at once) is spread out
            # instead of repeating every window, and each request reaches the service alone,
            # with little jitter, while a window's starts still end well before the next one.
            slot = max(now, starts[-rate][0] + window, starts[-1][0] + window / (PACE * rate))
            permit.at_edge = True
        elif starts:
            slot = max(slot, starts[-1][0])
        cell = [slot]
        starts.append(cell)
        if slot <= now:
            return True
        try:
            await anyio.sleep(slot - now)
        except BaseException:
            _remove(starts, cell)
            raise
        woke = anyio.current_time()
        if self._paused_until > woke:
            _remove(starts, cell)  # give the start back
            return False
        # A busy event loop wakes us late: the request 'rate' places later must count from
        # when this one really starts.
        cell[0] = max(slot, woke)
        return True

    # -- feedback ----------------------------------------------------------------------------

    def succeeded(self, permit: Permit) -> None:
        """Report an accepted request; grows the limit.

        Before any rejection the limit grows by half a permit per success (x1.5 per round
        trip); afterwards by one permit per round trip up to just below the level that was
        refused, and above it only one probe every ``PROBE_RTTS`` round trips.
        """
        now = anyio.current_time()
        self.consecutive_rejections = 0
        self._rtt = 0.8 * self._rtt + 0.2 * max(now - permit.sent_at, 0.001)
        rate = self.config.rate
        if permit.at_edge and rate is not None:
            # narrow a widened guard again, slowly: by a factor e over 32 full windows
            self._guard = max(GUARD_START * self.config.per,
                              self._guard * (1 - 1 / (32 * rate)))
        self._proven = max(self._proven, permit.level)
        if not self.config.adaptive or self._limit >= self.config.max_concurrency:
            return
        # Grow only while the limit is actually used (by requests sent, not by requests
        # waiting for their rate slot), so an idle or rate-bound lane does not inflate.
        if self._sending + 1 < self.limit:
            return
        if self._slow_start:
            self._limit += 0.5
        elif self._limit + 1 < self._ceiling:
            self._limit += 1.0 / self._limit
        elif now - self._last_cut >= PROBE_RTTS * self._rtt:
            self._limit += 1.0
            self._last_cut = now  # one probe per period
        self._set_limit(self._limit)

    def rejected(self, permit: Permit, *, wait: float) -> bool:
        """Report a rate-limit rejection; pauses the lane and cuts the limit once per RTT.

        A request sent at the edge of a full rate window, at a concurrency already accepted since
        the last cut, widens the window's guard instead of cutting the limit (up to
        ``GUARD_MAX`` of the window; past that it cuts as usual).

        Returns:
            True when this rejection started (or extended) the pause, False when it belonged to
            a pause already under way (the request was sent before that pause began).
        """
        now = anyio.current_time()
        self.rejections += 1
        self.consecutive_rejections += 1
        if permit.sent_at < self._pause_started:
            return False
        widest = GUARD_MAX * self.config.per
        if permit.at_edge and permit.level <= self._proven and self._guard < widest:
            # Sent at the edge of a full rate window, at a concurrency the service accepted
            # since the last cut: it most likely counted this start in the window before (our
            # clocks and the network disagree by a few ms). The rate was too high, not the
            # concurrency: widen the guard, keep the limit. A second refusal at this level
            # is taken as a concurrency limit after all.
            self._guard = min(widest, 2 * self._guard)
            self._proven = permit.level - 1
        elif self.config.adaptive:
            self._slow_start = False
            if now - self._last_cut >= self._rtt:
                self._last_cut = now
                # Requests sent after this one count too: they may have reached the service
                # first (so the level this one was sent at would be too low a ceiling).
                self._ceiling = min(self._limit, self._sending)
                self._limit = max(1.0, self._ceiling * BETA)
                self._proven = 0
                self._set_limit(self._limit)
        until = now + wait
        if until <= self._paused_until:
            return False
        self._pause_started = now
        self._paused_until = until
        self._pause_open = True
        self._emit(PauseStarted(lane=self.name, seconds=wait))
        return True

    def _set_limit(self, value: float) -> None:
        new = max(1, min(int(value), self.config.max_concurrency))
        old = int(self._limiter.total_tokens)
        if new != old:
            self._limiter.total_tokens = new
            self._emit(LaneLimitChanged(lane=self.name, old=old, new=new))


def _remove(starts: deque[list[float]], cell: list[float]) -> None:
    """Take ``cell`` itself (not an equal one) out of ``starts``; a start that was still in the
    future cannot have left the window, so it is there."""
    for index, other in enumerate(starts):  # pragma: no branch - it is always found
        if other is cell:
            del starts[index]
            return
