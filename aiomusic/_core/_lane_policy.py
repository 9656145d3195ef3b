"""The shared lanes' control loop as pure functions: when to grow, cut, widen the guard and pause.

A lane's adaptive state (`Control`) changes only on feedback: an accepted request grows the
concurrency limit, a refusal cuts it or widens the rate window's guard, and starts a shared
pause. These functions decide that from the state and what the lane knows about the request
(`Sent`), with every time on one clock passed in: the shared lanes (`_shared_lanes.py`) run
them on the store's clock against the state they read from Redis or PostgreSQL, then write the
result back only if nobody changed it meanwhile.

This is the loop the in-process `Lane` ran before it moved to `_limit.py` and `_window.py`
(AIMD with slow start, a widening guard, every refusal pausing the lane). The in-process lane
no longer follows it: its state (a FIFO of waiters, per-request evidence, reserved starts)
does not yet fit a record that processes share by compare and set. ``docs/scale.md`` says what
that costs; ``tests/test_lane_policy.py`` checks this loop on its own.
"""

from __future__ import annotations

import math
from typing import Literal

import attrs

from ._lanes import LaneConfig

__all__ = ["PACE", "Control", "Sent", "after_rejection", "after_success", "initial", "limit_of"]

#: Multiplicative decrease on a concurrency refusal.
BETA = 0.7
#: Round trips between probes above the level the service last refused.
PROBE_RTTS = 8
#: The rate window's guard, as a share of the window: where it starts, and its largest value.
GUARD_START = 0.02
GUARD_MAX = 0.1
#: In a full rate window, starts are kept at least window / (PACE * rate) apart.
PACE = 1.5

#: What the service said was exceeded, when it said so.
Exceeded = Literal["rate", "concurrency"] | None


@attrs.frozen
class Control:
    """The adaptive state of one lane (the same for every process sharing the lane).

    Times are seconds on the clock of whoever keeps the state (the store's for shared lanes).
    """

    limit: float
    guard: float
    slow_start: bool
    ceiling: float = math.inf  # the limit at which the service last refused
    proven: int = 0  # the highest level accepted since the last cut
    rtt: float = 1.0
    last_cut: float = -math.inf
    paused_until: float = 0.0
    pause_started: float = -math.inf
    consecutive: int = 0  # rejections in a row, for the backoff when no Retry-After came


@attrs.frozen
class Sent:
    """What the lane knows about one request: when it was sent, how many requests were in
    flight then (itself included), and whether it took a start at the edge of a full window."""

    sent_at: float
    level: int = 0
    at_edge: bool = False


def initial(config: LaneConfig) -> Control:
    """The state of a lane nobody used yet."""
    return Control(limit=float(config.start), guard=GUARD_START * config.per,
                   slow_start=config.adaptive)


def limit_of(control: Control, config: LaneConfig) -> int:
    """The whole number of permits the state allows."""
    return max(1, min(int(control.limit), config.max_concurrency))


def after_success(control: Control, config: LaneConfig, sent: Sent, *, now: float,
                  sending: int) -> Control:
    """The state after an accepted request (``sending``: requests sent and not answered,
    this one included)."""
    c = control
    rtt = 0.8 * c.rtt + 0.2 * max(now - sent.sent_at, 0.001)
    guard = c.guard
    if sent.at_edge and config.rate is not None:
        # narrow a widened guard again, slowly: by a factor e over 32 full windows
        guard = max(GUARD_START * config.per, guard * (1 - 1 / (32 * config.rate)))
    c = attrs.evolve(c, rtt=rtt, guard=guard, proven=max(c.proven, sent.level), consecutive=0)
    if not config.adaptive or c.limit >= config.max_concurrency:
        return c
    # Grow only while the limit is actually used (by requests sent, not by requests waiting
    # for their rate slot), so an idle or rate-bound lane does not inflate.
    if sending + 1 < limit_of(c, config):
        return c
    if c.slow_start:
        return attrs.evolve(c, limit=c.limit + 0.5)
    if c.limit + 1 < c.ceiling:
        return attrs.evolve(c, limit=c.limit + 1.0 / c.limit)
    if now - c.last_cut >= PROBE_RTTS * c.rtt:
        return attrs.evolve(c, limit=c.limit + 1.0, last_cut=now)  # one probe per period
    return c


def after_rejection(control: Control, config: LaneConfig, sent: Sent, *, now: float,
                    sending: int, wait: float, limit: Exceeded = None
                    ) -> tuple[Control, bool]:
    """The state after a refusal, and whether it started (or extended) the pause.

    ``limit`` is what the service said was exceeded, when it said so: ``"rate"`` widens the
    guard and keeps the concurrency limit, ``"concurrency"`` cuts it; ``None`` guesses (a
    request sent at the edge of a full window, at a level accepted since the last cut, was
    refused for its rate).
    """
    c = attrs.evolve(control, consecutive=control.consecutive + 1)
    if sent.sent_at < c.pause_started:
        return c, False  # it belongs to a pause already under way
    widest = GUARD_MAX * config.per
    rate_guess = sent.at_edge and sent.level <= c.proven
    if (limit == "rate" or (limit is None and rate_guess)) and c.guard < widest:
        # The rate was too high, not the concurrency: widen the guard, keep the limit. A
        # second refusal at this level is taken as a concurrency limit after all.
        c = attrs.evolve(c, guard=min(widest, 2 * c.guard), proven=sent.level - 1)
    elif config.adaptive and limit != "rate":
        c = attrs.evolve(c, slow_start=False)
        if now - c.last_cut >= c.rtt:
            # Requests sent after this one count too: they may have reached the service first.
            ceiling = min(c.limit, float(sending))
            c = attrs.evolve(c, last_cut=now, ceiling=ceiling, limit=max(1.0, ceiling * BETA),
                             proven=0)
    until = now + wait
    if until <= c.paused_until:
        return c, False
    return attrs.evolve(c, pause_started=now, paused_until=until), True

