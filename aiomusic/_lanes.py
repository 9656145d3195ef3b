"""Lanes: an adaptive concurrency limit, a request-rate window and a shared pause per key.

A lane is what one kind of call (submit, poll, transfer) of one service key may use. Rate limits
belong to the key, so when one request is rejected the whole lane pauses once, instead of every
in-flight request discovering the limit by itself, and the concurrency limit is cut (AIMD).
Nobody holds a permit while sleeping: the pause and the rate window are waited out first.
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
    """One request's place in a lane; ``sent_at`` tells which pause it belongs to."""

    sent_at: float


class Lane:
    """A concurrency limit that adapts, a rate window and a shared pause.

    Use :meth:`permit` around each request attempt, then report the outcome with
    :meth:`succeeded` or :meth:`rejected`.
    """

    def __init__(self, name: str, config: LaneConfig, *,
                 emit: Callable[[Event], None] | None = None) -> None:
        self.name = name
        self.config = config
        self._emit = emit or (lambda _event: None)
        self._limit = float(config.start)
        self._limiter = anyio.CapacityLimiter(config.start)
        self._starts: deque[float] = deque()
        self._paused_until = 0.0
        self._pause_started = -math.inf
        self._pause_open = False
        self._last_cut = -math.inf
        self._slow_start = config.adaptive
        self._ceiling = math.inf  # the limit at which the service last refused
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
    def paused_for(self) -> float:
        """Seconds left in the shared pause (0 when not paused)."""
        return max(0.0, self._paused_until - anyio.current_time())

    # -- admission ---------------------------------------------------------------------------

    @asynccontextmanager
    async def permit(self) -> AsyncIterator[Permit]:
        """Wait for the pause, the rate window and a concurrency permit, in that order."""
        permit = Permit(sent_at=0.0)  # the token: one task may hold several permits
        while True:
            await self._wait_pause()
            await self._wait_rate()
            await self._limiter.acquire_on_behalf_of(permit)
            # A pause may have started while we waited for the permit: never hold a permit
            # through a pause (others could use it the moment it ends).
            if self._paused_until <= anyio.current_time():
                break
            self._limiter.release_on_behalf_of(permit)
        permit.sent_at = anyio.current_time()
        try:
            yield permit
        finally:
            self._limiter.release_on_behalf_of(permit)

    async def _wait_pause(self) -> None:
        # the deadline can move (a new rejection extends it), so re-check after each sleep
        while (left := self._paused_until - anyio.current_time()) > 0:  # noqa: ASYNC110
            await anyio.sleep(left)
        if self._pause_open:
            self._pause_open = False
            self._emit(PauseEnded(lane=self.name))

    async def _wait_rate(self) -> None:
        rate = self.config.rate
        if rate is None:
            return
        # Reserve a start time in FIFO order: the n-th reservation may start no earlier than
        # the (n - rate)-th plus the window. The deque holds reserved times, past and future.
        now = anyio.current_time()
        window = self.config.per
        while self._starts and self._starts[0] <= now - window:
            self._starts.popleft()
        slot = now
        if len(self._starts) >= rate:
            slot = max(now, self._starts[-rate] + window)
        self._starts.append(slot)
        if slot > now:
            await anyio.sleep(slot - now)

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
        if not self.config.adaptive or self._limit >= self.config.max_concurrency:
            return
        # Grow only while the limit is actually used, so an idle lane does not inflate.
        if self.in_flight + 1 < self.limit:
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

        Returns:
            True when this rejection started (or extended) the pause, False when it belonged to
            a pause already under way (the request was sent before that pause began).
        """
        now = anyio.current_time()
        self.rejections += 1
        self.consecutive_rejections += 1
        self._slow_start = False
        if permit.sent_at < self._pause_started:
            return False
        if self.config.adaptive and now - self._last_cut >= self._rtt:
            self._last_cut = now
            self._ceiling = min(self._limit, self.in_flight)
            self._limit = max(1.0, self._ceiling * BETA)
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
