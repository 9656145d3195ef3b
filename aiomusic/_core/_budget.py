"""Budgets that stop new paid submissions before a limit would be passed.

Nothing here does I/O: a batch (or your own loop) asks the `BudgetGuard` before each paid
submission and tells its `Ledger` (``_ledger.py``) how each job ended.

**Units.** A budget is in a service's own unit: ``credits`` (that service's credits; AI/ML
credits and Suno credits are different currencies), ``usd``, or ``submissions`` (paid
submissions, on one service or on all of them). aiomusic never converts between units.

**The rule.** A new paid submission is admitted only if, for every budget that covers its
service, *spent + expected <= limit*, where *spent* adds up

- the costs the service reported (``charged``),
- for finished jobs whose cost was never reported, what was reserved for them (``estimated``:
  a job whose fate is unknown counts too: it may have been charged),
- and the reservations of jobs still running (``reserved``);

and *expected*, reserved for the new job until its real cost is known, is the largest of: the
budget's ``estimate``, the estimate given for the job (its model's expected cost), and the
largest real cost seen so far for the same service and model (any model of the service, while
that model has none). With none of these known, the job is a *probe*: it is admitted alone
(while it runs, others wait) if spending is below the limit, so the limit can be passed by
that one job; an ``estimate`` avoids even that. A finished job whose cost cannot be told in the
budget's unit (neither reported nor reserved) stops the budget: it cannot be kept. A job
refused before any work (`Ledger.released`) is not counted. Once a budget refuses, it stays
stopped: jobs already submitted are followed to the end, no new paid job starts.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ._ledger import UNITS, Ledger, format_amount

__all__ = ["Admission", "Budget", "BudgetGuard", "Verdict"]

_SLACK = 1e-9  # float sums: $0.1 + $0.2 must fit a $0.3 budget


def _check_unit(_inst: object, _attr: object, unit: str) -> None:
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")


def _check_limit(_inst: object, _attr: object, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value) or value < 0:
        raise ValueError(f"must be a finite number >= 0, got {value!r}")


@attrs.frozen
class Budget:
    """A limit on what paid submissions may spend, in one unit.

    Attributes:
        limit: The most to spend.
        unit: ``credits``, ``usd`` or ``submissions``.
        service: The service whose spending it limits (``aimlapi``, ``suno``, ``minimax``);
            ``None`` counts the paid submissions of every service (unit ``submissions`` only).
        estimate: What one submission is expected to cost, in ``unit``: reserved for each job
            until its real cost is known (see the module docs for what is used without it).
    """

    limit: float = attrs.field(validator=_check_limit)
    unit: str = attrs.field(validator=_check_unit)
    service: str | None = None
    estimate: float | None = attrs.field(default=None, validator=_check_limit)

    def __attrs_post_init__(self) -> None:
        if self.service is None and self.unit != "submissions":
            raise ValueError(f"a budget in {self.unit} needs a service: credits and dollars "
                             "are counted per service")

    def covers(self, service: str) -> bool:
        """Whether submissions to ``service`` count against this budget."""
        return self.service is None or self.service == service

    def __str__(self) -> str:
        return f"{format_amount(self.limit, self.unit)} on {self.service or 'every service'}"


class Verdict(enum.StrEnum):
    """What the guard says to a new paid submission."""

    ADMIT = "admit"
    """Send it (its reservation is in the ledger)."""
    WAIT = "wait"
    """Not yet: a probe of unknown cost is running; ask again when a job of it ends."""
    STOP = "stop"
    """No: a budget would be passed. No new paid job starts on that budget."""


@attrs.frozen
class Admission:
    """The guard's answer.

    Attributes:
        verdict: Admit, wait, or stop.
        reason: Why not, in words for the user (``None`` when admitted).
        budget: The budget that said no.
    """

    verdict: Verdict
    reason: str | None = None
    budget: Budget | None = None

    def __bool__(self) -> bool:
        return self.verdict is Verdict.ADMIT


class BudgetGuard:
    """Admits paid submissions while every budget allows them (the rule: module docs).

    Args:
        budgets: The budgets to keep.
        ledger: The ledger to count in (a new one by default).
    """

    def __init__(self, budgets: Iterable[Budget], ledger: Ledger | None = None) -> None:
        self.budgets = tuple(budgets)
        self.ledger = ledger if ledger is not None else Ledger()
        self.stopped: dict[Budget, str] = {}

    def expected(self, budget: Budget, service: str, *, kind: str | None = None,
                 estimate: Mapping[str, float] | None = None) -> float | None:
        """What a new job is expected to cost in ``budget``'s unit (``None``: unknown)."""
        if budget.unit == "submissions":
            return 1.0
        known = [budget.estimate, (estimate or {}).get(budget.unit),
                 self.ledger.largest(service, budget.unit, kind)]
        values = [v for v in known if v is not None]
        return max(values) if values else None

    def admit(self, job: str, service: str, *, kind: str | None = None,
              estimate: Mapping[str, float] | None = None) -> Admission:
        """Ask before submitting ``job`` to ``service``; an admitted job is in the ledger
        with its reservation (tell the ledger later how it ended)."""
        reserve: dict[str, float | None] = {}
        for budget in (b for b in self.budgets if b.covers(service)):
            answer = self._check(budget, service, kind, estimate)
            if answer.verdict is Verdict.STOP:
                self.stopped.setdefault(budget, answer.reason or "")
            if answer.verdict is not Verdict.ADMIT:
                return answer
            if budget.unit != "submissions":
                expected = self.expected(budget, service, kind=kind, estimate=estimate)
                old = reserve.get(budget.unit)
                reserve[budget.unit] = expected if old is None or expected is None else \
                    max(old, expected)
        self.ledger.submitted(job, service, kind=kind, reserve=reserve)
        return Admission(Verdict.ADMIT)

    def _check(self, budget: Budget, service: str, kind: str | None,
               estimate: Mapping[str, float] | None) -> Admission:
        if budget in self.stopped:
            return Admission(Verdict.STOP, self.stopped[budget], budget)
        scope = budget.service
        spent, unknown = self.ledger.spent(scope, budget.unit)
        shown = format_amount(spent, budget.unit)
        if unknown:
            return Admission(Verdict.STOP, (
                f"budget {budget}: what {unknown} finished job(s) cost in {budget.unit} is not "
                f"known (the service did not report it in that unit), so the budget cannot be "
                "kept; stopping new paid submissions. Give Budget(estimate=...) or a budget in "
                "a unit the service reports"), budget)
        expected = self.expected(budget, service, kind=kind, estimate=estimate)
        if expected is None:
            if self.ledger.probing(scope, budget.unit):
                return Admission(Verdict.WAIT, (
                    f"budget {budget}: waiting for the first job's cost before sending more "
                    "(give Budget(estimate=...) to send them at once)"), budget)
            if spent < budget.limit:
                return Admission(Verdict.ADMIT)  # the probe, alone
            return Admission(Verdict.STOP, (
                f"budget {budget}: {shown} spent or reserved, the limit is reached; stopping "
                "new paid submissions (jobs already submitted are followed to the end)"), budget)
        if spent + expected > budget.limit * (1 + _SLACK) + _SLACK:
            return Admission(Verdict.STOP, (
                f"budget {budget}: {shown} spent or reserved, and the next job is expected to "
                f"cost {format_amount(expected, budget.unit)}; stopping new paid submissions "
                "(jobs already submitted are followed to the end)"), budget)
        return Admission(Verdict.ADMIT)
