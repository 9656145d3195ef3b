"""The ledger: what paid jobs cost, per job and per service (see ``_budget.py`` for budgets).

Nothing here does I/O. Costs are kept in each service's own unit and added up per service,
never across services: AI/ML credits and Suno credits are different currencies.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping

import attrs

from ._task import Cost

__all__ = ["UNITS", "Entry", "EntryState", "Ledger", "Spending", "format_amount",
           "spent_between"]

UNITS = ("credits", "usd", "submissions")


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
