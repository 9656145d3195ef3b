"""Spending: a ledger of what paid jobs cost, and budgets that stop new paid submissions.

Nothing here does I/O: a batch (or your own loop) asks the `BudgetGuard` before each paid
submission and tells the `Ledger` how each job ended.

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

from ._task import Cost

__all__ = ["UNITS", "Admission", "Budget", "BudgetGuard", "Entry", "EntryState", "Ledger",
           "Spending", "Verdict", "format_amount", "spent_between"]

UNITS = ("credits", "usd", "submissions")
_SLACK = 1e-9  # float sums: $0.1 + $0.2 must fit a $0.3 budget


def format_amount(amount: float, unit: str) -> str:
    """``$0.195``, ``390,000 credits``, ``12 submissions``."""
    if unit == "usd":
        return "$" + f"{amount:,.4f}".rstrip("0").rstrip(".")
    if unit == "submissions":
        return f"{amount:,.0f} paid submission" + ("" if amount == 1 else "s")
    text = f"{amount:,.0f}" if float(amount).is_integer() else f"{amount:,.2f}"
    return f"{text} {unit}"


def spent_between(before: float, after: float, *, unit: str, service: str) -> Cost | None:
    """What an account's balance says was spent between two readings (Suno's credits before
    and after a job, MiniMax's plan remains), or ``None`` when it cannot say (the balance
    grew: a top-up, or a refund, happened in between)."""
    spent = float(before) - float(after)
    if not math.isfinite(spent) or spent < 0:
        return None
    return Cost(spent, unit, service)


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


class EntryState(enum.StrEnum):
    """Where a paid job stands in the ledger."""

    RESERVED = "reserved"
    """Submitted; its cost is not known yet (its reservation counts)."""
    CHARGED = "charged"
    """The service reported what it cost."""
    ESTIMATED = "estimated"
    """Ended (or its fate is unknown) without a reported cost: its reservation counts."""
    RELEASED = "released"
    """Refused before any work: not charged, not counted."""


@attrs.define
class Entry:
    """One paid job in the ledger.

    Attributes:
        job: The job's id.
        service: The service it was submitted to.
        kind: What it is (a model or operation), for estimates of similar jobs.
        state: Where it stands.
        reserved: What was reserved for it, per unit (``None``: unknown, a probe).
        cost: The cost the service reported, once known.
    """

    job: str
    service: str
    kind: str | None
    state: EntryState
    reserved: dict[str, float | None]
    cost: Cost | None = None

    def reported(self, unit: str) -> bool:
        """Whether its amount in ``unit`` is known for certain (not an estimate)."""
        return unit == "submissions" or (self.cost is not None and
                                         self.cost.in_unit(unit) is not None)

    def amount(self, unit: str) -> float | None:
        """What it counts for in ``unit``: ``None`` when that cannot be told."""
        if self.state is EntryState.RELEASED:
            return 0.0
        if unit == "submissions":
            return 1.0
        reported = self.cost.in_unit(unit) if self.cost is not None else None
        if reported is not None:
            return reported
        return self.reserved.get(unit)


@attrs.frozen
class Spending:
    """One service's spending in one unit, for summaries.

    Attributes:
        service: The service.
        unit: The unit.
        charged: What the service reported.
        estimated: Reservations standing in for costs not (yet) reported.
        unknown: Jobs whose cost in this unit cannot be told.
        jobs: Paid jobs counted (refused ones excepted).
    """

    service: str
    unit: str
    charged: float
    estimated: float
    unknown: int
    jobs: int

    @property
    def total(self) -> float:
        return self.charged + self.estimated


class Ledger:
    """What was spent, per service and per job (see the module docs)."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def submitted(self, job: str, service: str, *, kind: str | None = None,
                  reserve: Mapping[str, float | None] | None = None) -> Entry:
        """Record a paid submission of ``job`` (just before it is sent), reserving
        ``reserve`` per unit until its cost is known.

        Raises:
            ValueError: the job is already in the ledger and was not released.
        """
        known = self._entries.get(job)
        if known is not None and known.state is not EntryState.RELEASED:
            raise ValueError(f"job {job!r} was already submitted ({known.state.value})")
        entry = Entry(job, service, kind, EntryState.RESERVED, dict(reserve or {}))
        self._entries[job] = entry
        return entry

    def _get(self, job: str) -> Entry:
        try:
            return self._entries[job]
        except KeyError:
            raise KeyError(f"job {job!r} is not in the ledger") from None

    def charged(self, job: str, cost: Cost) -> None:
        """The service reported what ``job`` cost: it replaces the reservation."""
        entry = self._get(job)
        if cost.service != entry.service:
            raise ValueError(f"job {job!r} ran on {entry.service}, not {cost.service}")
        entry.state, entry.cost = EntryState.CHARGED, cost

    def finished(self, job: str) -> None:
        """``job`` ended, or its fate is unknown, without a reported cost: its reservation
        stands as its estimated cost."""
        entry = self._get(job)
        if entry.state is EntryState.RESERVED:
            entry.state = EntryState.ESTIMATED

    def released(self, job: str) -> None:
        """``job`` was refused before any work: it costs nothing and is not counted."""
        entry = self._get(job)
        entry.state, entry.cost = EntryState.RELEASED, None

    def entry(self, job: str) -> Entry | None:
        """The ledger's entry of ``job``, if any."""
        return self._entries.get(job)

    def entries(self) -> tuple[Entry, ...]:
        """Every entry, in submission order."""
        return tuple(self._entries.values())

    def _scope(self, service: str | None) -> Iterable[Entry]:
        return (e for e in self._entries.values() if service is None or e.service == service)

    def spent(self, service: str | None, unit: str) -> tuple[float, int]:
        """(what counts against a budget, jobs whose amount cannot be told) in ``unit``."""
        total, unknown = 0.0, 0
        for entry in self._scope(service):
            amount = entry.amount(unit)
            if amount is None:
                unknown += entry.state is not EntryState.RESERVED
            else:
                total += amount
        return total, unknown

    def probing(self, service: str | None, unit: str) -> bool:
        """Whether a job of unknown expected cost is still running (a probe)."""
        return any(e.state is EntryState.RESERVED and e.amount(unit) is None
                   for e in self._scope(service))

    def largest(self, service: str, unit: str, kind: str | None = None) -> float | None:
        """The largest cost the service reported for a job of ``kind`` (of any kind, while
        that kind has none), in ``unit``."""
        seen = [(e.kind, a) for e in self._scope(service)
                if e.state is EntryState.CHARGED and (a := e.amount(unit)) is not None]
        same = [a for k, a in seen if kind is not None and k == kind]
        pool = same or [a for _k, a in seen]
        return max(pool) if pool else None

    def summary(self) -> tuple[Spending, ...]:
        """Spending per service and unit (each unit a job reported or reserved)."""
        lines = []
        for service in dict.fromkeys(e.service for e in self._entries.values()):
            entries = [e for e in self._scope(service) if e.state is not EntryState.RELEASED]
            units = dict.fromkeys(u for e in entries for u in
                                  (*e.reserved, *((e.cost.unit,) if e.cost else ()),
                                   *(("usd",) if e.cost and e.cost.usd is not None else ())))
            for unit in (*units, "submissions"):
                charged = estimated = 0.0
                unknown = 0
                for e in entries:
                    amount = e.amount(unit)
                    if amount is None:
                        unknown += 1
                    elif e.reported(unit):
                        charged += amount
                    else:
                        estimated += amount
                lines.append(Spending(service, unit, charged, estimated, unknown, len(entries)))
        return tuple(lines)


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
