"""Lanes: an adaptive concurrency limit, a request-rate window and a shared pause per key.

A lane is what one kind of call (submit, poll, transfer) of one service key may use. The
service can refuse a request for two reasons, and the lane answers each in its own way:

- **Too many at once** (a concurrency limit): only the requests above the service's capacity
  are refused. The lane lowers its limit below the level that was refused, and the refused
  request waits for one of ours to finish. Nobody else waits (`_limit.py`).
- **Too many per window** (a rate limit): the key's budget is spent, so the whole lane pauses
  until the window has room again, and learns the rate when it was not told (`_window.py`).

The answer names the limit when it can (MiniMax 1041 is a connection limit; 1002, Suno 430 and
a 429 with ``x-ratelimit-remaining-requests: 0`` are rates). When it does not, the level tells:
a refusal with no more of ours in flight than the service took at once before is the rate's
(when the rate was told: only at the edge of a full window); any other is the concurrency's.
When no rate is known either, one probe a window later tells them apart.

Nobody holds a permit through a pause: the pause is waited out first, and a permit (with its
reserved start) is given back when a pause begins while its holder waits for its start.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Literal

import anyio
import attrs

from ._events import Event, PauseEnded, PauseStarted
from ._limit import AdaptiveLimit, Permit
from ._window import MIN_WINDOW, RateWindow

__all__ = ["Lane", "LaneConfig", "LimitKind", "Permit"]

#: Which limit refused a request: too many per window, or too many at once.
LimitKind = Literal["rate", "concurrency"]


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
        self._window = RateWindow(config.rate, config.per)
        self._limit = AdaptiveLimit(name, start=config.start, maximum=config.max_concurrency,
                                    adaptive=config.adaptive, emit=self._emit,
                                    rate_lesson=self._rate_lesson)
        self._paused_until = 0.0
        self._pause_started = -math.inf
        self._pause_open = False
        self.rejections = 0
        self.consecutive_rejections = 0

    # -- observation -------------------------------------------------------------------------

    @property
    def limit(self) -> int:
        """The current concurrency limit."""
        return self._limit.value

    @property
    def in_flight(self) -> int:
        """Requests holding a permit now."""
        return self._limit.held

    @property
    def sending(self) -> int:
        """Requests sent and not answered yet (holding a permit, past their rate slot)."""
        return self._limit.sending

    @property
    def rate(self) -> int | None:
        """Starts allowed per `per` seconds: the told rate, or a lower one refusals taught."""
        return self._window.rate

    @property
    def per(self) -> float:
        """The rate window in seconds (told, or learned with the rate)."""
        return self._window.per

    @property
    def rate_guard(self) -> float:
        """Seconds added to the rate window, against the jitter between our clock and the
        service's (0 when the lane has no rate window)."""
        return self._window.guard if self.rate is not None else 0.0

    @property
    def paused_for(self) -> float:
        """Seconds left in the shared pause (0 when not paused)."""
        return max(0.0, self._paused_until - anyio.current_time())

    # -- admission ---------------------------------------------------------------------------

    @asynccontextmanager
    async def permit(self) -> AsyncIterator[Permit]:
        """Wait for the pause, a concurrency permit and a start in the rate window, in order."""
        permit = Permit(sent_at=0.0)
        limit = self._limit
        while True:
            await self._wait_pause()
            await limit.acquire()
            # A pause may have started while we waited for the permit or the rate slot: never
            # hold a permit through a pause (the limit may be cut meanwhile).
            try:
                sent = (self._paused_until <= anyio.current_time()
                        and await self._wait_rate(permit))
            except BaseException:
                limit.release()
                raise
            if sent:
                break
            limit.release()
        permit.sent_at = now = anyio.current_time()
        limit.sent(permit, now)
        if self.rate is None:
            self._window.record(permit, now)
        try:
            yield permit
        finally:
            limit.done(permit, anyio.current_time())
            limit.release()

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
        window = self._window
        window.lesson(anyio.current_time(), self._limit.grace)
        if window.rate is None:
            return True
        cell = permit.cell = window.reserve(anyio.current_time())
        try:
            await window.sleep_until(cell)
        except BaseException:
            window.remove(cell)
            raise
        woke = anyio.current_time()
        if self._paused_until > woke:
            window.remove(cell)  # give the start back
            return False
        permit.at_edge = cell[1] > 0
        # A busy event loop wakes us late: the request 'rate' places later must count from
        # when this one really starts.
        cell[0] = max(cell[0], woke)
        return True

    # -- feedback ----------------------------------------------------------------------------

    def succeeded(self, permit: Permit) -> None:
        """Report an accepted request; may grow the limit."""
        self.consecutive_rejections = 0
        if permit.at_edge and self.rate is not None:
            self._window.accepted_at_edge(anyio.current_time())
        self._limit.admit(permit, self._limit.seen(permit))

    def rejected(self, permit: Permit, *, wait: float, limit: LimitKind | None = None) -> bool:
        """Report a refusal by the service's limits; ``wait`` is what it advised (or a backoff).

        ``limit`` says which limit refused, when the answer said; otherwise the lane infers it
        (see the module's docstring). A concurrency refusal lowers the limit and pauses
        nobody; a rate refusal pauses the lane until the window has room (learning the rate
        when it was not told), or for ``wait`` when nothing better is known.

        Returns:
            True when this rejection started (or extended) the pause, False otherwise (no
            pause, or one already under way, to which this request belonged).
        """
        now = anyio.current_time()
        self.rejections += 1
        self.consecutive_rejections += 1
        gave_back = False
        if not permit.refused:
            self._limit.refused(permit, now)
            # a refused start uses no room in the window (the others move up, below)
            gave_back = permit.cell is not None and self._window.remove(permit.cell)
        paused = self._feedback(permit, wait, limit, now)
        if gave_back:
            self._window.replan(now)
        return paused

    def _feedback(self, permit: Permit, wait: float, limit: LimitKind | None,
                  now: float) -> bool:
        if permit.sent_at <= self._pause_started:
            return False  # it belongs to the pause under way
        # At most this many of ours were at the service: requests sent at once arrive in any
        # order, so the level alone can be too low.
        level = max(permit.level, self._limit.sending)
        kind = limit or self._guess(permit, level)
        if kind == "concurrency" and self.config.adaptive and level > 1:
            # Named by neither the answer nor a known rate, it may as well have been the rate:
            # then a probe of this level once a window has passed is taken.
            guess = limit is None and self.rate is None
            self._limit.cut(permit, level,
                            suspect_until=now + max(wait, MIN_WINDOW) if guess else None)
            return False
        pause = self._rate_refused(permit, wait, now) if kind == "rate" else wait
        return self._pause(now, pause)

    def _guess(self, permit: Permit, level: int) -> LimitKind:
        """Which limit refused ``permit``, sent with at most ``level`` in flight, when the
        answer did not say."""
        if permit.at_edge and (level <= self._limit.worked or not self._limit.capped):
            # The window was full, and this many at once were being served a moment ago (or
            # no level was ever refused for concurrency).
            return "rate"
        if level <= self._limit.proven and (permit.at_edge or self.config.rate is None):
            return "rate"  # the service held this many at once, surely
        return "concurrency"

    def _rate_refused(self, permit: Permit, wait: float, now: float) -> float:
        """Adjust the rate window to a rate refusal; how long the lane pauses."""
        window = self._window
        window.refusal(now)
        if window.rate is None:
            if window.transient(now):
                return 0.0  # one refusal among many starts: a transient fault, no lesson
            window.note(permit.sent_at, wait)  # learned after the pause, when the burst is over
            return wait
        if window.probe_refused():
            return max(window.next_start(now) - now, 0.0)  # a probe's (or a transient) refusal
        if permit.at_edge:
            window.refused_at_edge()
            # Until the widened window has room. By our count it may have room already (the
            # service counts a start when it gets to it, a little later than we sent it).
            return max(window.next_start(now) - now, window.guard)
        if window.transient(now):
            return 0.0  # one refusal where the window had room: nothing to learn, no pause
        window.learn(permit.sent_at, wait, now)
        room = window.next_start(now) - now
        return room if room > 0 else wait  # room by our count: the service knows better

    def _rate_lesson(self, at: float, wait: float) -> None:
        self._window.learn(at, wait, anyio.current_time())

    def _pause(self, now: float, seconds: float) -> bool:
        until = now + seconds
        if seconds <= 0 or until <= self._paused_until:
            return False
        self._pause_started = now
        self._paused_until = until
        self._pause_open = True
        self._emit(PauseStarted(lane=self.name, seconds=seconds))
        return True
