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

A learned rate is only what the service took when it refused (a transient fault refuses at any
rate), so it is probed upward again, never above the told rate: after a full window of starts
accepted at its edge (and at least PROBE_STARTS of them) it rises, on trial for a window and a
half: by 1 at first, twice as much after each probe that held (up to a quarter of the rate).
A real limit refuses at least the added starts during the trial, over the refusals usual
before it, and the rate goes back to where it was, the next probe adding 1 after twice as many
windows (at most 16). Fewer refusals are transient faults, and the raised rate stays. For the
same reason a refusal below a learned rate, or with no rate known, teaches nothing and pauses
nobody while fewer than a tenth of the window's starts are refused.
"""

from __future__ import annotations

import math
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
#: A probe adds 1 start to a learned rate, twice as many after each probe that held, up to
#: this share of the rate; each refused probe doubles the windows before the next (up to
#: 2 ** PROBE_BACKOFF).
PROBE_SHARE = 0.25
#: ... and a probe waits for at least this many starts accepted at the edge (a probe refused
#: costs a refusal: at most one in PROBE_STARTS).
PROBE_STARTS = 40
PROBE_BACKOFF = 4
#: A raised rate is on trial for this many windows.
TRIAL = 1.5
#: Rate refusals below the window's rate are transient while fewer than this share of starts.
TRANSIENT = 0.1
#: Refusals are counted over this many windows to know how many transient faults are usual.
USUAL = 4
#: Starts remembered (for at most HISTORY_SECONDS) while no rate is known, to learn one.
HISTORY = 2048
HISTORY_SECONDS = 300.0


class Start(Protocol):
    """What the window needs to know of a request (a lane's `Permit`)."""

    sent_at: float
    refused: bool
    admitted: bool
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
        self._credit = 0.0  # windows of starts accepted at the edge, towards the next probe
        # (rate before a probe, refusals in the window before it, end of its trial)
        self._trial: tuple[int, float, float] | None = None
        self._step = 1  # what the next probe adds
        self._refused_rate = math.inf  # the lowest probe refused (until one at it holds)
        self._trial_refusals = 0
        self.failed_probes = 0
        self._refusals: deque[float] = deque()  # when rate refusals came, for one window

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
        # (nearly at its widest counts as widest: accepted starts narrow it a little at once)
        if self.guard < 0.9 * widest:
            self.guard = min(widest, 2 * self.guard)
        else:
            self.guard = widest
            self._learned, self._learned_per = max(1, rate - 1), self.per

    def accepted_at_edge(self, now: float) -> None:
        """Narrow a widened guard again, slowly: by a factor e over 32 full windows; and probe a
        learned rate upward after each full window accepted at its edge."""
        rate = self.rate
        assert rate is not None
        self.guard = max(GUARD_START * self.per, self.guard * (1 - 1 / (32 * rate)))
        ceiling = self.told if self.told is not None else math.inf
        if self._learned is None or rate >= ceiling:
            return
        # climbing (the last probe held): one window; else at least PROBE_STARTS starts
        starts = rate << min(self.failed_probes, PROBE_BACKOFF)
        self._credit += 1 / (starts if self._step > 1 else max(starts, PROBE_STARTS))
        if self._trial is not None:
            if now < self._trial[2]:
                return
            self._trial = None  # the raised rate held through its trial: climb faster
            self._step = min(2 * self._step, max(1, int(PROBE_SHARE * rate)))
            if rate >= self._refused_rate:  # a rate refused before holds now: the limit rose
                self._refused_rate, self.failed_probes = math.inf, 0
        if self._credit >= 1:
            self._credit = 0.0
            # the refusals per window before the probe: transient faults, expected again
            usual = self._recent_refusals(now, USUAL) / USUAL
            self._trial = (rate, usual, now + TRIAL * (self.per + self.guard))
            self._trial_refusals = 0
            # no further than the rate refused last (then one more, after the backoff)
            step = self._step if rate + self._step < self._refused_rate else 1
            self._learned = int(min(ceiling, rate + step))

    def refusal(self, now: float) -> None:
        """Count a rate refusal."""
        self._refusals.append(now)

    def _recent_refusals(self, now: float, windows: int = 1) -> int:
        """Rate refusals in the last ``windows`` windows."""
        refusals = self._refusals
        while refusals and refusals[0] <= now - USUAL * self.per:
            refusals.popleft()
        return sum(1 for t in refusals if t > now - windows * self.per)

    def transient(self, now: float) -> bool:
        """Whether a rate refusal (counted by `refusal` first), with no rate or below a learned
        one, is a transient fault: fewer than a tenth of the window's starts were refused (a
        real limit refuses every start above it). A told rate is the user's word: every
        refusal below it counts."""
        if self.told is not None:
            return False
        if self.rate is None:
            # only starts already taken: the first refusal of a burst is no transient fault
            starts = sum(1 for s in self._history
                         if now - self.per < s.sent_at <= now and s.admitted)
        else:
            starts = sum(1 for cell in self._starts if now - self.per < cell[0] <= now)
        return self._recent_refusals(now) < TRANSIENT * starts

    def probe_refused(self) -> bool:
        """A rate refusal while a raised rate is on trial: whether the trial accounts for it.

        As many refusals as the starts the probe added, above the transient ones usual before
        it (per window over USUAL windows, and one standard deviation), mean a real limit: back
        to the rate before it; the next probe adds one start, after twice as many windows.
        Fewer are transient faults, which teach nothing.
        """
        if self._trial is None:
            return False
        before, usual, _ = self._trial
        self._trial_refusals += 1
        expected = TRIAL * usual  # transient faults during the trial, and their spread
        if self._trial_refusals >= (self.rate or before) - before + expected + math.sqrt(expected):
            self._refused_rate = min(self._refused_rate, self._learned or before)
            self._learned, self._trial = before, None
            self.failed_probes += 1
            self._step = 1
        return True

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
        """Take the starts the service took in the window before ``at`` as the rate (never
        below half the rate known: less is no evidence against it); whether a rate is known
        afterwards."""
        if self.rate is not None:
            per = self.per
            count = sum(1 for cell in self._starts if at - per < cell[0] <= at)
        else:
            per = max(MIN_WINDOW, wait)  # a window is at least as long as the wait it advises
            count = sum(1 for s in self._history if at - per < s.sent_at <= at and not s.refused)
        if count < 1:
            return self.rate is not None
        if self.rate is not None and count < self.rate / 2:
            # We used less than half the window: the refusal is not about our pace (another
            # client of the key, or a fault). A lower rate would not stop it; the pause does.
            return True
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
