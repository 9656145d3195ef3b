"""Budgets and the ledger: the rule "stop new paid jobs before a limit would be passed"."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from aiomusic._core._budget import Admission, Budget, BudgetGuard, Verdict
from aiomusic._core._ledger import EntryState, Ledger, Spending, format_amount, spent_between
from aiomusic._core._task import Cost

AIML = "aimlapi"


def aiml(credits: float, usd: float | None = None) -> Cost:
    return Cost(credits, "credits", AIML, usd=usd)


Step = Callable[[BudgetGuard], object]


def admit(job: str, service: str = AIML, **kw: object) -> Step:
    return lambda g: g.admit(job, service, **kw).verdict  # type: ignore[arg-type]


def charge(job: str, cost: Cost) -> Step:
    return lambda g: g.ledger.charged(job, cost)


def finish(job: str) -> Step:
    return lambda g: g.ledger.finished(job)


def release(job: str) -> Step:
    return lambda g: g.ledger.released(job)


A, W, S = Verdict.ADMIT, Verdict.WAIT, Verdict.STOP


@pytest.mark.parametrize(("budgets", "steps", "verdicts"), [
    pytest.param([Budget(3, "submissions")],
                 [admit("a"), admit("b", "suno"), admit("c"), admit("d")],
                 [A, A, A, S], id="a-count-of-submissions-across-services"),
    pytest.param([Budget(2, "submissions", service="suno")],
                 [admit("a", "suno"), admit("b", AIML), admit("c", "suno"), admit("d", "suno"),
                  admit("e", AIML)],
                 [A, A, A, S, A], id="a-count-on-one-service-ignores-the-others"),
    pytest.param([Budget(2, "submissions")],
                 [admit("a"), admit("b"), admit("c"), release("a"), admit("d")],
                 [A, A, S, None, S], id="stopped-stays-stopped-even-after-a-release"),
    pytest.param([Budget(2, "submissions")],
                 [admit("a"), release("a"), admit("b"), admit("c")],
                 [A, None, A, A], id="a-refused-job-is-not-counted"),
    pytest.param([Budget(1.0, "usd", service=AIML, estimate=0.3)],
                 [admit("a"), admit("b"), admit("c"), admit("d")],
                 [A, A, A, S], id="estimates-reserved-while-running"),
    pytest.param([Budget(1.0, "usd", service=AIML, estimate=0.3)],
                 [admit("a"), charge("a", aiml(200_000, 0.1)), admit("b"), admit("c"),
                  admit("d"), admit("e")],
                 [A, None, A, A, A, S], id="a-real-cost-replaces-its-reservation"),
    pytest.param([Budget(0.3, "usd", service=AIML, estimate=0.1)],
                 [admit("a"), admit("b"), admit("c"), admit("d")],
                 [A, A, A, S], id="float-sums-fit-exactly"),
    pytest.param([Budget(1.0, "usd", service=AIML)],
                 [admit("a"), admit("b"), charge("a", aiml(800_000, 0.4)), admit("b"),
                  admit("c"), admit("d")],
                 [A, W, None, A, S, S], id="probe-then-the-largest-seen"),
    pytest.param([Budget(0.2, "usd", service=AIML)],
                 [admit("a"), charge("a", aiml(800_000, 0.4)), admit("b")],
                 [A, None, S], id="a-probe-can-pass-a-tiny-limit-once"),
    pytest.param([Budget(1.0, "usd", service=AIML)],
                 [admit("a", kind="small"), charge("a", aiml(1, 0.1)),
                  admit("b", kind="big"), charge("b", aiml(1, 0.5)),
                  admit("c", kind="small"), admit("d", kind="small"), admit("e", kind="new"),
                  admit("f", kind="small")],
                 [A, None, A, None, A, A, S, S], id="the-largest-seen-per-kind-then-any"),
    pytest.param([Budget(1.0, "usd", service=AIML)],
                 [admit("a", estimate={"usd": 0.6}), admit("b", estimate={"usd": 0.3}),
                  admit("c", estimate={"usd": 0.2})],
                 [A, A, S], id="a-jobs-own-estimate"),
    pytest.param([Budget(1.0, "usd", service=AIML, estimate=0.1)],
                 [admit("a", estimate={"usd": 0.6}), admit("b", estimate={"usd": 0.5})],
                 [A, S], id="the-larger-of-the-estimates"),
    pytest.param([Budget(1.0, "usd", service=AIML, estimate=0.4)],
                 [admit("a"), finish("a"), admit("b"), admit("c")],
                 [A, None, A, S], id="unknown-fate-keeps-its-reservation"),
    pytest.param([Budget(1.0, "usd", service=AIML)],
                 [admit("a"), charge("a", aiml(1000)), admit("b")],
                 [A, None, S], id="a-cost-not-in-the-budgets-unit-stops-it"),
    pytest.param([Budget(1.0, "usd", service=AIML)],
                 [admit("a"), finish("a"), admit("b")],
                 [A, None, S], id="a-probe-that-never-reports-stops-it"),
    pytest.param([Budget(100, "credits", service="suno")],
                 [admit("a", "suno"), charge("a", spent_between(1000, 988, unit="credits",
                                                                 service="suno")),
                  *[admit(f"j{i}", "suno") for i in range(8)]],
                 [A, None, A, A, A, A, A, A, A, S], id="suno-credits-measured-by-the-probe"),
    pytest.param([Budget(0, "usd", service=AIML)], [admit("a")], [S], id="zero-limit"),
    pytest.param([Budget(1.0, "usd", service=AIML, estimate=0)],
                 [admit("a"), admit("b")], [A, A], id="free-jobs-are-free"),
    pytest.param([Budget(1, "submissions"), Budget(10.0, "usd", service=AIML, estimate=1)],
                 [admit("a"), admit("b", "suno")], [A, S], id="every-covering-budget-counts"),
    pytest.param([Budget(5.0, "usd", service=AIML, estimate=1),
                  Budget(1_000_000, "credits", service=AIML, estimate=400_000)],
                 [admit("a"), admit("b"), admit("c")], [A, A, S], id="two-units-one-service"),
])
def test_the_budget_rule(budgets: list[Budget], steps: list[Step],
                         verdicts: list[Verdict | None]) -> None:
    guard = BudgetGuard(budgets)
    assert [step(guard) for step in steps] == verdicts


def test_a_stop_says_why_and_stays() -> None:
    guard = BudgetGuard([Budget(1.0, "usd", service=AIML, estimate=0.6)])
    assert guard.admit("a", AIML)
    refused = guard.admit("b", AIML)
    assert not refused and refused.budget is guard.budgets[0]
    assert refused.reason is not None
    assert "$0.6 spent or reserved" in refused.reason
    assert "expected to cost $0.6" in refused.reason
    assert "already submitted are followed to the end" in refused.reason
    guard.ledger.released("a")
    assert guard.admit("c", AIML).reason == refused.reason
    assert guard.stopped == {guard.budgets[0]: refused.reason}
    assert guard.admit("d", "suno")  # another service is not stopped by it


def test_wait_and_unknown_messages() -> None:
    guard = BudgetGuard([Budget(1.0, "usd", service=AIML)])
    guard.admit("a", AIML)
    wait = guard.admit("b", AIML)
    assert wait.verdict is Verdict.WAIT and "Budget(estimate=...)" in (wait.reason or "")
    assert guard.ledger.entry("b") is None  # nothing reserved for a job not admitted
    guard.ledger.charged("a", aiml(5))
    stop = guard.admit("b", AIML)
    assert "1 finished job(s)" in (stop.reason or "") and "in usd" in (stop.reason or "")
    full = BudgetGuard([Budget(1.0, "usd", service=AIML)])
    full.admit("a", AIML)
    full.ledger.charged("a", aiml(5, usd=0.0))  # reported, free: still a probe next
    assert full.admit("b", AIML).verdict is Verdict.ADMIT
    assert full.ledger.entry("b").reserved == {"usd": 0.0}  # type: ignore[union-attr]


def test_a_probe_is_refused_at_the_limit() -> None:
    guard = BudgetGuard([Budget(1.0, "usd", service=AIML)])
    guard.ledger.submitted("old", AIML, reserve={"usd": 1.0})
    guard.ledger.finished("old")
    refused = guard.admit("new", AIML, kind="other")
    # the largest seen is unknown (nothing charged), spending is at the limit: no probe
    assert refused.verdict is Verdict.STOP and "the limit is reached" in (refused.reason or "")


def test_the_ledger_records_and_sums() -> None:
    ledger = Ledger()
    ledger.submitted("a", AIML, kind="minimax/music-2.6", reserve={"usd": 0.2})
    ledger.submitted("b", AIML, reserve={"usd": 0.2})
    ledger.submitted("c", AIML, reserve={"usd": 0.2})
    ledger.submitted("s", "suno", reserve={"credits": 12})
    ledger.charged("a", aiml(390_000, 0.195))
    ledger.finished("b")
    ledger.released("c")
    ledger.finished("a")  # already charged: stays charged
    assert [e.state for e in ledger.entries()] == [EntryState.CHARGED, EntryState.ESTIMATED,
                                                   EntryState.RELEASED, EntryState.RESERVED]
    assert ledger.spent(AIML, "usd") == (pytest.approx(0.395), 0)
    assert ledger.spent(None, "submissions") == (3.0, 0)
    assert ledger.largest(AIML, "usd", "minimax/music-2.6") == 0.195
    assert ledger.largest("suno", "credits") is None
    assert ledger.summary() == (
        Spending(AIML, "usd", charged=0.195, estimated=0.2, unknown=0, jobs=2),
        Spending(AIML, "credits", charged=390_000, estimated=0, unknown=1, jobs=2),
        Spending(AIML, "submissions", charged=2, estimated=0, unknown=0, jobs=2),
        Spending("suno", "credits", charged=0, estimated=12, unknown=0, jobs=1),
        Spending("suno", "submissions", charged=1, estimated=0, unknown=0, jobs=1),
    )
    assert ledger.summary()[0].total == pytest.approx(0.395)


def test_ledger_misuse_is_refused() -> None:
    ledger = Ledger()
    ledger.submitted("a", AIML)
    with pytest.raises(ValueError, match="already submitted"):
        ledger.submitted("a", AIML)
    with pytest.raises(KeyError, match="not in the ledger"):
        ledger.charged("zz", aiml(1))
    with pytest.raises(ValueError, match="ran on aimlapi, not suno"):
        ledger.charged("a", Cost(1, "credits", "suno"))
    ledger.released("a")
    assert ledger.submitted("a", AIML).state is EntryState.RESERVED  # a refused job may retry


@pytest.mark.parametrize(("kwargs", "match"), [
    pytest.param({"limit": 1, "unit": "euro", "service": AIML}, "unit must be one of",
                 id="unit"),
    pytest.param({"limit": -1, "unit": "usd", "service": AIML}, ">= 0", id="negative"),
    pytest.param({"limit": float("inf"), "unit": "usd", "service": AIML}, "finite", id="inf"),
    pytest.param({"limit": True, "unit": "usd", "service": AIML}, "finite", id="bool"),
    pytest.param({"limit": 1, "unit": "usd"}, "needs a service", id="no-service"),
    pytest.param({"limit": 1, "unit": "usd", "service": AIML, "estimate": -2}, ">= 0",
                 id="estimate"),
])
def test_budgets_are_checked(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Budget(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("amount", "unit", "text"), [
    pytest.param(0.195, "usd", "$0.195", id="usd"),
    pytest.param(5, "usd", "$5", id="usd-whole"),
    pytest.param(390000, "credits", "390,000 credits", id="credits"),
    pytest.param(12.5, "credits", "12.50 credits", id="credits-fraction"),
    pytest.param(1, "submissions", "1 paid submission", id="one"),
    pytest.param(200, "submissions", "200 paid submissions", id="many"),
])
def test_amounts_read_well(amount: float, unit: str, text: str) -> None:
    assert format_amount(amount, unit) == text
    assert str(Budget(5, "usd", service=AIML)) == "$5 on aimlapi"
    assert str(Budget(200, "submissions")) == "200 paid submissions on every service"


@pytest.mark.parametrize(("before", "after", "spent"), [
    pytest.param(1000, 988, 12.0, id="spent"),
    pytest.param(1000, 1000, 0.0, id="nothing"),
    pytest.param(1000, 1200, None, id="top-up"),
    pytest.param(float("nan"), 3, None, id="nan"),
])
def test_spent_between_balance_readings(before: float, after: float,
                                        spent: float | None) -> None:
    cost = spent_between(before, after, unit="credits", service="suno")
    assert (cost.amount if cost else None) == spent
    if cost is not None:
        assert (cost.unit, cost.service) == ("credits", "suno")


def test_admission_is_truthy_only_when_admitted() -> None:
    assert Admission(Verdict.ADMIT) and not Admission(Verdict.WAIT)
    assert not Admission(Verdict.STOP, "no")
