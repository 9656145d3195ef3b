"""The rate window of a lane: starts reserved in order, a guard, and a rate learned if untold.

Each request's start is reserved when it gets its concurrency permit, and the request is sent
at exactly that time, so the starts the service sees are the starts the window counted. The
n-th start may come no earlier than the (n - rate)-th plus the window and a guard: 2 % of the
window at first, against the jitter between our clock and the service's, doubled (up to 10 %)
each time a start at the edge of a full window is refused. In a full window starts are also
paced, so a burst does not repeat every window. A refused start gives its place back, and the
starts reserved after it move earlier.

When no rate was told, the first rate refusal teaches one: the starts the service took in the
window before it (a window as long as the wait it advised, and at least a second), counted
once the requests sent with the refused one have their answers.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

import anyio

__all__ = ["GUARD_MAX", "GUARD_START", "MIN_WINDOW", "RateWindow"]

#: The guard, as a share of the window: where it starts, and its largest value.
GUARD_START = 0.02
GUARD_MAX = 0.1
#: In a full window, starts are kept at least window / (PACE * rate) apart.
PACE = 1.5
#: The shortest window assumed when one is learned from refusals.
MIN_WINDOW = 1.0
#: Starts remembered (for at most HISTORY_SECONDS) while no rate is known, to learn one.
HISTORY = 2048
HISTORY_SECONDS = 300.0


class Start(Protocol):
    """What the window needs to know of a request (a lane's `Permit`)."""

    sent_at: float
    refused: bool
    cell: list[float] | None


class RateWindow:
    """Starts per window: told, or learned from refusals (never above the told rate)."""

    def __init__(self, rate: int | None, per: float) -> None:
        self.told = rate
        self.told_per = per
        self.guard = GUARD_START * per
        self._learned: int | None = None
        self._learned_per = per
        # the starts in the window, past and reserved, in order: [time, 1.0 if at the edge]
        self._starts: deque[list[float]] = deque()
        self._replanned = anyio.Event()
        self._history: deque[Start] = deque(maxlen=HISTORY)
        self._lesson: tuple[float, float] | None = None  # (sent_at, wait) of a rate refusal

    @property
    def rate(self) -> int | None:
        """Starts allowed per `per` seconds (None: none known)."""
        return self._learned if self._learned is not None else self.told

    @property
    def per(self) -> float:
        """The window in seconds."""
        return self._learned_per if self._learned is not None else self.told_per

    # -- reservations ------------------------------------------------------------------------

    def reserve(self, now: float, cell: list[float] | None = None) -> list[float]:
        """Append a start to the window: ``[time, 1.0 if the window was full else 0.0]``."""
        rate = self.rate
        assert rate is not None
        window = self.per + self.guard
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

    async def sleep_until(self, cell: list[float]) -> None:
        """Sleep until the start in ``cell``, which can move earlier while we sleep."""
        while (left := cell[0] - anyio.current_time()) > 0:
            with anyio.move_on_after(left):
                await self._replanned.wait()

    def remove(self, cell: list[float]) -> bool:
        """Take ``cell`` itself (not an equal one) out of the window; whether it was there."""
        starts = self._starts
        for index in range(len(starts) - 1, -1, -1):  # recent cells are at the end
            if starts[index] is cell:
                del starts[index]
                return True
        return False

    def replan(self, now: float) -> None:
        """Reserve the future starts again, in order (a start was given back)."""
        future: list[list[float]] = []
        while self._starts and self._starts[-1][0] > now:
            future.append(self._starts.pop())
        for cell in reversed(future):
            self.reserve(now, cell)
        if future:
            self._replanned.set()
            self._replanned = anyio.Event()

    def next_start(self, now: float) -> float:
        """When the window next has room, counting the starts made (not those reserved)."""
        rate = self.rate
        assert rate is not None
        window = self.per + self.guard
        past = [cell[0] for cell in self._starts if now - window < cell[0] <= now]
        return past[-rate] + window if len(past) >= rate else now

    # -- what refusals and answers teach ----------------------------------------------------

    def record(self, start: Start, now: float) -> None:
        """Remember a request sent while no rate is known."""
        history = self._history
        while history and history[0].sent_at < now - HISTORY_SECONDS:
            history.popleft()
        history.append(start)

    def refused_at_edge(self) -> None:
        """A start at the edge of a full window was refused: the service most likely counted
        a start of the window before (our clocks and the network disagree by a few ms). Widen
        the guard; at its widest, allow one start less per window."""
        rate = self.rate
        assert rate is not None
        widest = GUARD_MAX * self.per
        if self.guard < widest:
            self.guard = min(widest, 2 * self.guard)
        else:
            self._learned, self._learned_per = max(1, rate - 1), self.per

    def accepted_at_edge(self) -> None:
        """Narrow a widened guard again, slowly: by a factor e over 32 full windows."""
        rate = self.rate
        assert rate is not None
        self.guard = max(GUARD_START * self.per, self.guard * (1 - 1 / (32 * rate)))

    def note(self, at: float, wait: float) -> None:
        """A rate refusal while no rate is known: learn from it once it is safe (`lesson`)."""
        if self._lesson is None:
            self._lesson = (at, wait)

    def lesson(self, now: float, grace: float) -> None:
        """Learn from the noted refusal, once the requests sent with it have their answers."""
        if self._lesson is not None and now >= self._lesson[0] + grace:
            at, wait = self._lesson
            self._lesson = None
            self.learn(at, wait, now)

    def learn(self, at: float, wait: float, now: float) -> bool:
        """Take the starts the service took in the window before ``at`` as the rate; whether
        a rate is known afterwards."""
        if self.rate is not None:
            per = self.per
            count = sum(1 for cell in self._starts if at - per < cell[0] <= at)
        else:
            per = max(MIN_WINDOW, wait)  # a window is at least as long as the wait it advises
            count = sum(1 for s in self._history if at - per < s.sent_at <= at and not s.refused)
        if count < 1:
            return self.rate is not None
        if self.told is not None and count >= self.told:
            return True  # the told rate stands
        if self.rate is None:
            # from now on the window holds the starts: those of the last window first
            for s in self._history:
                if s.sent_at > now - per - self.guard and not s.refused:
                    s.cell = [s.sent_at, 0.0]
                    self._starts.append(s.cell)
            self._history.clear()
        self._learned, self._learned_per = count, per
        self.guard = max(self.guard, GUARD_START * per)
        return True
