"""A batch's spending: the ledger of its paid jobs, the budget guard, and their journal rows.

Every paid job of a batch is in the ledger (``aiomusic._core._ledger``), budgets or not, so
the summary, ``--json`` and ``aiomusic batch --report`` can say what was spent per service and
per job. With budgets, the guard (``aiomusic._core._budget``) is asked around each paid
submission:

* **reserve** (`Spending.admit`): right before the request is written (the transport's
  paid-attempt hook, after the lane's permit, before the journal's intent), the job's expected
  cost is reserved in the ledger: the budget's ``estimate``, else the largest cost the service
  reported for the same model in this batch (its earlier runs included), else the job is a
  *probe* sent alone while the others wait. A job the guard stops is never sent: it stays
  ``pending`` in the journal, held back (run the batch again with a bigger budget);
* **release** (`Spending.attempt_ended`): an attempt the service refused before any work (or
  that never left) gives its reservation back; an attempt of unknown fate keeps it, as its
  estimated cost (it may have been charged);
* **settle** (`Spending.job_ended`): when the job ends, the cost the service reported (the
  AI/ML API's ``meta.usage``) replaces the reservation; without one (Suno, MiniMax), the
  reservation stands as the job's estimated cost. Suno reports no cost per task, but a Suno
  *probe* for a budget in credits runs alone: Suno's balance (``get_credits()``, free) read
  before it is sent and after it ends is its cost, and the jobs after it reserve that much.

A job that had to wait for a probe waits without holding any permit: the hook raises
`BudgetWait` (nothing was sent, nothing journaled) and the runner starts the job again once a
cost is known. The spending of a journal's earlier runs counts against the budget, so a batch
resumed with a bigger budget spends up to the new limit in all, not that much more.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

import anyio
import attrs

from .._core._budget import Budget, BudgetGuard, Verdict
from .._core._errors import AiomusicError
from .._core._fate import Fate
from .._core._ledger import EntryState, Ledger, spent_between
from .._core._log import logger
from ._journal import JournalWriteError
from ._outcome import BatchSummary, spent

if TYPE_CHECKING:
    from .._core._session import MusicSession
    from ._jobs import Job
    from ._journal import Journal, SpendRecord
    from ._outcome import Run

__all__ = ["BUDGET_SYNTAX", "BudgetHeld", "BudgetWait", "Spending", "admitted", "budgets_of",
           "fill", "kind_of", "parse_budget", "service_of"]

T = TypeVar("T")

#: How ``--budget`` is written (the CLI's help and its errors say it).
BUDGET_SYNTAX = "[SERVICE=]AMOUNT[UNIT][~ESTIMATE]"
_SERVICES = ("aimlapi", "minimax", "suno")
_UNIT_WORDS = {"usd": "usd", "$": "usd", "credits": "credits", "credit": "credits",
               "submissions": "submissions", "submission": "submissions", "": "submissions"}
_SPEC = re.compile(r"^(?:(?P<service>[a-z]+)=)?(?P<dollar>\$)?(?P<amount>[0-9][0-9_.,]*)"
                   r"(?P<unit>[a-z$]*)(?:~(?P<estimate>[0-9][0-9_.,]*))?$")


def parse_budget(text: str) -> Budget:
    """A `Budget` from ``--budget``'s words: ``aimlapi=5usd`` (or ``aimlapi=$5``),
    ``suno=500credits~12`` (12 credits expected per job), ``200`` (paid submissions, every
    service), ``minimax=40submissions``.

    Raises:
        ValueError: it is not written that way, or names an unknown service or unit.
    """
    match = _SPEC.match(text.strip().lower().replace(" ", ""))
    if match is None:
        raise ValueError(f"cannot read the budget {text!r}: write {BUDGET_SYNTAX}, e.g. "
                         "aimlapi=5usd, suno=500credits~12, 200")
    service, unit = match["service"], match["unit"]
    if match["dollar"]:
        unit = unit or "usd"
    if unit not in _UNIT_WORDS:
        raise ValueError(f"budget {text!r}: unknown unit {unit!r}; use usd, credits or "
                         "submissions")
    if service is not None and service not in _SERVICES:
        raise ValueError(f"budget {text!r}: unknown service {service!r}; use "
                         f"{', '.join(_SERVICES)}")

    def number(value: str) -> float:
        return float(value.replace("_", "").replace(",", ""))

    estimate = None if match["estimate"] is None else number(match["estimate"])
    return Budget(number(match["amount"]), _UNIT_WORDS[unit], service=service,
                  estimate=estimate)



class BudgetHeld(Exception):
    """A budget stopped this job before its paid request was sent: it stays pending."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BudgetWait(Exception):
    """The guard waits for a running job's cost before sending this one (nothing was sent).

    Attributes:
        changed: Set once a cost is known (or a reservation given back): try again then.
    """

    def __init__(self, reason: str | None, changed: anyio.Event) -> None:
        super().__init__(reason)
        self.changed = changed


_BALANCE_WAIT = 30.0  # seconds for one reading of Suno's balance

#: The account a paid request's operation bills (music-01 through the AI/ML API is
#: ``minimax.generate`` sent to the AI/ML host: its session's ``minimax_service`` says).
_BILLED = {"aiml": "aimlapi", "aimlapi": "aimlapi", "suno": "suno", "minimax": "minimax"}


def service_of(session: MusicSession, job: Job, operation: str) -> str:
    """The account that pays for ``operation``, a paid request of ``job``."""
    if job.op.qualified == "minimax.music-01":
        return session.minimax_service.value
    return _BILLED.get(operation.partition(".")[0], job.op.service)


def kind_of(job: Job) -> str:
    """What the guard estimates a job by: its model where it names one, else its operation."""
    model = getattr(job.params, "model", None)
    return f"{job.op.qualified}:{model}" if isinstance(model, str) and model else \
        job.op.qualified


class Spending:
    """What a batch's paid jobs cost, and the guard that keeps its budgets."""

    def __init__(self, session: MusicSession, budgets: Iterable[Budget] = (),
                 journal: Journal | None = None) -> None:
        self.session = session
        self.guard = BudgetGuard(budgets)
        self.journal = journal
        self.run = journal.run if journal is not None else 1
        self.held: dict[str, str] = {}  # job id -> why a budget held it back
        self._latest: dict[str, str] = {}  # job id -> its latest ledger key
        self._before: dict[str, float | None] = {}  # a Suno probe's key -> credits before it
        self._balance: dict[str, float | None] = {}  # Suno's, "before" and "after" the batch
        self._changed = anyio.Event()

    @property
    def ledger(self) -> Ledger:
        return self.guard.ledger

    @property
    def stopped(self) -> tuple[str, ...]:
        """Why budgets stopped new paid submissions, one reason per budget."""
        return tuple(self.guard.stopped.values())

    async def load(self) -> None:
        """Count what the journal's earlier runs spent (resumed jobs may still report it)."""
        if self.journal is None:
            return
        rows = await self.journal.spending()
        fill(self.ledger, rows)
        self._latest.update((row.job_id, _key(row.job_id, row.run)) for row in rows)

    async def admit(self, run: Run, operation: str) -> None:
        """Reserve ``run``'s expected cost before its paid request is sent.

        Raises:
            BudgetHeld: a budget would be passed; the request must not be sent.
            BudgetWait: a probe's cost comes first; start the job again after `changed()`.
        """
        job = run.job
        key = _key(job.id, self.run)
        entry = self.ledger.entry(key)
        if entry is not None and entry.state is not EntryState.RELEASED:
            return  # another attempt of an admitted job (the first was not refused)
        service = service_of(self.session, job, operation)
        answer = self.guard.admit(key, service, kind=kind_of(job))
        if answer.verdict is Verdict.WAIT:
            raise BudgetWait(answer.reason, self._changed)
        if answer.verdict is Verdict.STOP:
            self.held[job.id] = answer.reason or "a budget was reached"
            raise BudgetHeld(self.held[job.id])
        self._latest[job.id] = key
        if self._probing_suno_credits(key):
            self._before[key] = await self._suno_credits()
        await self._write(job.id, key)

    async def read_balance(self, jobs: Iterable[Job], when: str) -> None:
        """Read Suno's balance ``when`` (``before`` or ``after`` the batch; a free call) if
        the batch has paid Suno jobs: the summary shows both readings."""
        if any(job.op.paid and job.op.service == "suno" for job in jobs):
            self._balance[when] = await self._suno_credits()

    @property
    def balances(self) -> tuple[dict[str, object], ...]:
        """Each account's balance before and after the batch (Suno's credits), where read;
        ``spent`` is their difference (``None`` when it grew: a top-up or a refund)."""
        if not self._balance:
            return ()
        before, after = self._balance.get("before"), self._balance.get("after")
        measured = None if before is None or after is None else \
            spent_between(before, after, unit="credits", service="suno")
        return ({"service": "suno", "unit": "credits", "before": before, "after": after,
                 "spent": None if measured is None else measured.amount},)

    def _probing_suno_credits(self, key: str) -> bool:
        """Whether ``key`` is a Suno job sent alone to learn what it costs in credits."""
        entry = self.ledger.entry(key)
        return entry is not None and entry.service == "suno" and \
            "credits" in entry.reserved and entry.reserved["credits"] is None

    async def _suno_credits(self) -> float | None:
        """Suno's balance (a free call), or ``None`` when it cannot be read."""
        with anyio.move_on_after(_BALANCE_WAIT):
            try:
                return await self.session.suno.get_credits(timeout=_BALANCE_WAIT)
            except AiomusicError as exc:
                logger.info("batch: Suno's credits could not be read (%s): the probe's cost "
                            "stays unknown", type(exc).__name__)
        return None

    async def attempt_ended(self, run: Run, fate: Fate) -> None:
        """A paid attempt's fate: a refused (or unsent) one gives its reservation back."""
        key = _key(run.job.id, self.run)
        entry = self.ledger.entry(key)
        if entry is None or entry.state is not EntryState.RESERVED:
            return
        if fate in (Fate.NOT_SENT, Fate.REFUSED):
            self.ledger.released(key)
        elif fate is Fate.TAKEN:
            return  # its cost comes with its result
        else:  # unknown, or failed after taken: it may have been charged
            self.ledger.finished(key)
        await self._write(run.job.id, key)

    async def job_ended(self, run: Run, *,
                        stop: Callable[[AiomusicError], None] | None = None) -> None:
        """``run`` ended (or stopped): its reported cost, else its reservation, counts.
        A journal that cannot be written is given to ``stop`` (else raised)."""
        try:
            await self._job_ended(run)
        except JournalWriteError as exc:
            if stop is None:
                raise
            stop(exc)

    async def _job_ended(self, run: Run) -> None:
        key = self._latest.get(run.job.id)
        entry = None if key is None else self.ledger.entry(key)
        if key is None or entry is None or entry.state is EntryState.RELEASED:
            return
        before = self._before.pop(key, None)
        if run.cost is None and before is not None and entry.state is EntryState.RESERVED:
            # Suno reports no cost per task: while its probe ran alone, the balance's change
            # was its cost (the service charges on submission; nothing else was sent)
            after = await self._suno_credits()
            measured = None if after is None else spent_between(
                before, after, unit="credits", service="suno")
            if measured is not None:
                run.cost = measured
        if run.cost is not None and run.cost.service == entry.service:
            self.ledger.charged(key, run.cost)
        elif entry.state is EntryState.RESERVED:
            self.ledger.finished(key)
        else:
            return
        await self._write(run.job.id, key)

    def summarized(self, summary: BatchSummary) -> BatchSummary:
        """``summary`` with what the batch spent, held back and read of balances."""
        lines, per_job = spent(self.ledger)
        return attrs.evolve(summary, spending=lines, jobs_spent=per_job,
                            held_back=len(self.held), budget=self.stopped,
                            balances=self.balances)

    async def _write(self, job_id: str, key: str) -> None:
        self._changed.set()
        self._changed = anyio.Event()
        entry = self.ledger.entry(key)
        if self.journal is not None and entry is not None:
            with anyio.CancelScope(shield=True):  # the money's record outlives a cancel
                await self.journal.spend(job_id, int(key.rpartition("@")[2]), entry)


def budgets_of(budget: Budget | Iterable[Budget] | None) -> tuple[Budget, ...]:
    """``Batch(budget=...)``'s value as a tuple of budgets.

    Raises:
        TypeError: something else than a `Budget` was given.
    """
    budgets = (budget,) if isinstance(budget, Budget) else tuple(budget or ())
    for item in budgets:
        if not isinstance(item, Budget):
            raise TypeError(f"budget must be a Budget or Budgets, got {item!r}")
    return budgets


async def admitted(attempt: Callable[[], Awaitable[T]]) -> T:
    """``attempt()``, started again whenever the guard had it wait for another job's cost
    (`BudgetWait`: nothing was sent, no permit is held while it waits)."""
    while True:
        try:
            return await attempt()
        except BudgetWait as wait:
            await wait.changed.wait()


def fill(ledger: Ledger, rows: Iterable[SpendRecord]) -> Ledger:
    """``ledger`` with the journal's spending rows (keys ``job@run``)."""
    for row in rows:
        key = _key(row.job_id, row.run)
        ledger.submitted(key, row.service, kind=row.kind, reserve=row.reserved)
        if row.cost is not None:
            ledger.charged(key, row.cost)
        elif row.state == EntryState.RELEASED:
            ledger.released(key)
        else:  # a reservation a killed run left counts as an estimate
            ledger.finished(key)
    return ledger


def _key(job_id: str, run: int) -> str:
    return f"{job_id}@{run}"
