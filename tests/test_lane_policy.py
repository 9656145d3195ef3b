"""The pure control policy (`_lane_policy`) decides exactly as the in-process `Lane` does.

Both are driven with the same random feedback on trio's virtual clock and compared field by
field after every step: the shared lanes run the pure functions, so a change to one that the
other does not follow fails here.
"""

from __future__ import annotations

import math

import hypothesis.strategies as st
import pytest
import trio
import trio.testing
from hypothesis import given, settings

from aiomusic import LaneConfig
from aiomusic._core import _lane_policy as policy
from aiomusic._core._lanes import Lane, Permit

# (seconds to wait first, accepted?, requests in flight, level, at the edge, sent how long ago,
#  wait asked by the refusal)
FEEDBACK = st.tuples(st.floats(0, 3), st.booleans(), st.integers(1, 30), st.integers(1, 30),
                     st.booleans(), st.floats(0, 2), st.floats(0, 5))
CONFIGS = st.builds(LaneConfig, max_concurrency=st.integers(1, 24),
                    initial_concurrency=st.none() | st.integers(1, 24),
                    rate=st.none() | st.integers(1, 40), per=st.floats(0.5, 10),
                    adaptive=st.booleans())


def _state(lane: Lane) -> policy.Control:
    return policy.Control(limit=lane._limit, guard=lane._guard, slow_start=lane._slow_start,
                          ceiling=lane._ceiling, proven=lane._proven, rtt=lane._rtt,
                          last_cut=lane._last_cut, paused_until=lane._paused_until,
                          pause_started=lane._pause_started,
                          consecutive=lane.consecutive_rejections)


def _same(a: policy.Control, b: policy.Control) -> None:
    for name in policy.Control.__attrs_attrs__:
        x, y = getattr(a, name.name), getattr(b, name.name)
        assert x == pytest.approx(y) or (math.isinf(x) and x == y), name.name


@settings(max_examples=150, deadline=None)
@given(config=CONFIGS, feedback=st.lists(FEEDBACK, min_size=1, max_size=40))
def test_the_policy_decides_as_the_in_process_lane(
        config: LaneConfig, feedback: list[tuple[float, bool, int, int, bool, float, float]]
) -> None:
    async def drive() -> None:
        lane = Lane("x", config)
        control = policy.initial(config)
        _same(control, _state(lane))
        for pause, accepted, sending, level, at_edge, age, wait in feedback:
            await trio.sleep(pause)
            now = trio.current_time()
            permit = Permit(sent_at=now - age, level=level, at_edge=at_edge and bool(config.rate))
            sent = policy.Sent(sent_at=permit.sent_at, level=level, at_edge=permit.at_edge)
            lane._sending = sending
            if accepted:
                lane.succeeded(permit)
                control = policy.after_success(control, config, sent, now=now, sending=sending)
            else:
                started = lane.rejected(permit, wait=wait)
                control, predicted = policy.after_rejection(control, config, sent, now=now,
                                                            sending=sending, wait=wait)
                assert predicted == started
            _same(control, _state(lane))
            assert policy.limit_of(control, config) == lane.limit

    trio.run(drive, clock=trio.testing.MockClock(autojump_threshold=0))


def _rejected(limit: policy.Exceeded, *, at_edge: bool = False) -> policy.Control:
    config = LaneConfig(max_concurrency=16, initial_concurrency=8, rate=10, per=1.0)
    control = policy.initial(config)
    control = policy.after_success(control, config, policy.Sent(0.0, level=4), now=0.1,
                                   sending=4)
    after, _ = policy.after_rejection(control, config, policy.Sent(1.0, level=3,
                                                                   at_edge=at_edge),
                                      now=2.0, sending=8, wait=1.0, limit=limit)
    return after


@pytest.mark.parametrize(("limit", "at_edge", "guard", "cut"), [
    pytest.param(None, True, 0.04, False, id="guess-rate"),
    pytest.param(None, False, 0.02, True, id="guess-concurrency"),
    pytest.param("rate", False, 0.04, False, id="said-rate"),
    pytest.param("concurrency", True, 0.02, True, id="said-concurrency"),
])
def test_what_the_service_says_was_exceeded_decides(
        limit: policy.Exceeded, at_edge: bool, guard: float, cut: bool) -> None:
    after = _rejected(limit, at_edge=at_edge)
    assert after.guard == pytest.approx(guard)
    assert (after.limit < 8) is cut


def test_a_rate_refusal_at_the_widest_guard_keeps_the_limit() -> None:
    config = LaneConfig(max_concurrency=16, initial_concurrency=8, rate=10, per=1.0)
    control = policy.Control(limit=8.0, guard=0.1, slow_start=False)
    after, started = policy.after_rejection(control, config, policy.Sent(1.0), now=2.0,
                                            sending=8, wait=1.0, limit="rate")
    assert (after.limit, after.guard, started) == (8.0, 0.1, True)

