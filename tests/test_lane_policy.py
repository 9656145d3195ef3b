"""The shared lanes' control loop (`_lane_policy`), on its own.

Which loop runs where: the in-process `Lane` runs the control loop of `_limit.py` and
`_window.py` (``tests/test_lanes.py``); the shared lanes (`SharedLane` over Redis or
PostgreSQL, ``tests/test_shared_lanes.py``) run this one, the in-process lane's earlier loop
(AIMD with slow start, a widening guard, a pause on every refusal). docs/scale.md says so.
"""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from aiomusic import LaneConfig
from aiomusic._core import _lane_policy as policy

# (seconds since the last step, accepted?, requests in flight, level, at the edge,
#  sent how long ago, wait asked by the refusal, what the refusal named)
FEEDBACK = st.tuples(st.floats(0, 3), st.booleans(), st.integers(1, 30), st.integers(1, 30),
                     st.booleans(), st.floats(0, 2), st.floats(0, 5),
                     st.sampled_from([None, "rate", "concurrency"]))
CONFIGS = st.builds(LaneConfig, max_concurrency=st.integers(1, 24),
                    initial_concurrency=st.none() | st.integers(1, 24),
                    rate=st.none() | st.integers(1, 40), per=st.floats(0.5, 10),
                    adaptive=st.booleans())


@settings(max_examples=150, deadline=None)
@given(config=CONFIGS, feedback=st.lists(FEEDBACK, min_size=1, max_size=40))
def test_the_policy_keeps_its_bounds_under_any_feedback(
        config: LaneConfig,
        feedback: list[tuple[float, bool, int, int, bool, float, float, policy.Exceeded]]
) -> None:
    control = policy.initial(config)
    assert policy.limit_of(control, config) == config.start
    now = 0.0
    for step, accepted, sending, level, at_edge, age, wait, named in feedback:
        now += step
        sent = policy.Sent(sent_at=now - age, level=level, at_edge=at_edge and bool(config.rate))
        before = control
        if accepted:
            control = policy.after_success(control, config, sent, now=now, sending=sending)
            assert control.consecutive == 0
            assert control.limit >= before.limit  # success never cuts
            assert control.paused_until == before.paused_until
        else:
            control, started = policy.after_rejection(control, config, sent, now=now,
                                                      sending=sending, wait=wait, limit=named)
            assert control.consecutive == before.consecutive + 1
            assert control.limit <= before.limit  # a refusal never grows the limit
            if named == "rate" or not config.adaptive:
                assert control.limit == before.limit
            # the pause only ever lengthens, and 'started' says when it did
            assert control.paused_until >= before.paused_until
            assert started == (control.paused_until > before.paused_until)
            if started:
                assert control.paused_until == pytest.approx(now + wait)
        assert 1 <= policy.limit_of(control, config) <= config.max_concurrency
        assert (policy.GUARD_START * config.per - 1e-12 <= control.guard
                <= policy.GUARD_MAX * config.per + 1e-12)


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

