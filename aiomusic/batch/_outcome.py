"""How jobs and batches end: outcomes, the summary, and a job's state while it runs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

import attrs

from .._core._errors import AiomusicError
from .._core._fate import Fate
from .._core._ledger import Ledger, format_amount
from .._core._task import Cost
from ._jobs import Job, OutputFile
from ._journal import JobState

__all__ = ["BatchSummary", "JobOutcome", "Run", "Status", "spending_lines", "spent",
           "summarize"]

Status = Literal["completed", "skipped", "failed", "unknown", "blocked"]


@attrs.frozen
class JobOutcome:
    """How one job ended.

    Attributes:
        job: The job.
        status: ``completed`` (done now), ``skipped`` (done in an earlier run; files verified),
            ``failed`` (``error`` says why), ``unknown`` (a paid submission whose fate
            cannot be known; left alone unless the batch re-submits unknown jobs) or
            ``blocked`` (not run: the job it follows did not complete; `ParentFailedError`).
        files: The audio files, with their SHA-256.
        error: The typed error of a failed or unknown job.
        task_id: The Suno task id, when there is one.
        trace_id: MiniMax's trace id of the generation, when known.
        retries: Retries absorbed by this job's requests.
        resumed: Whether a Suno task was resumed by its id instead of being submitted.
        note: A remark, e.g. why a completed job was redone.
        fate: For a job that may have been charged without giving its audio, the fate of its
            paid request: ``"unknown"``, ``"failed after taken"`` or ``"missing"`` (a
            finished job's file is gone); else ``None``.
        document: The result of an operation whose result is a document (lyrics, a quota),
            as the service's answer was read.
        cost: What the job cost, where its service reported it (the AI/ML API's usage).
    """

    job: Job
    status: Status
    files: tuple[OutputFile, ...] = ()
    error: AiomusicError | None = None
    task_id: str | None = None
    trace_id: str | None = None
    retries: int = 0
    resumed: bool = False
    note: str = ""
    fate: str | None = None
    document: Any = None
    cost: Cost | None = None

    @property
    def ok(self) -> bool:
        """Whether the job's audio is on disk."""
        return self.status in ("completed", "skipped")


@attrs.frozen
class BatchSummary:
    """The end of a batch.

    Attributes:
        total: Jobs in the batch.
        completed: Jobs done in this run.
        skipped: Jobs done in an earlier run (files verified).
        failed: Failed jobs by error type name.
        unknown: Jobs whose paid submission has an unknown fate.
        retries: Retries absorbed, all requests counted.
        retry_reasons: The same retries by the error type that caused them.
        files: Audio files written in this run.
        bytes: Bytes of audio written in this run.
        seconds: Wall time.
        interrupted: Whether the batch was stopped before every job ended.
        submissions: This run's paid attempts by fate: ``taken``, ``refused``, ``unknown``
            and ``failed_after_taken``.
        to_check: Jobs that may have been charged without giving their audio (this run's,
            those stopped while their paid request was in flight, and the earlier runs'
            that were not sent again), and jobs edited since an earlier run sent them (fate
            ``"changed"``: their new version was not made); each a mapping with ``job``,
            ``fate``, ``trace_id`` and ``task_id``: quote the ids to the service's support.
        stopped: Why the batch stopped sending paid requests early, if it did.
        not_run: Jobs without an outcome in this run (the batch stopped early).
        blocked: Jobs not run because the job they follow (``after``) did not complete;
            nothing was sent for them and they stay pending.
        spending: What the batch's paid jobs cost (its earlier runs included), one mapping
            per service and unit: ``service``, ``unit``, ``charged`` (what the service
            reported), ``estimated`` (reservations standing in for costs not reported),
            ``total``, ``unknown`` (jobs whose cost in that unit cannot be told), ``jobs``.
        jobs_spent: Per paid job: ``job``, ``service``, ``state`` and what it counts for
            (``amount`` and ``unit``, ``usd`` where reported), latest run first.
        held_back: Jobs a budget kept from being sent: still pending, a re-run with a bigger
            budget sends them.
        budget: Why budgets stopped new paid submissions (one line per budget), if they did.
        balances: Accounts whose balance was read before and after the batch (Suno's
            credits, for a batch with paid Suno jobs): ``service``, ``unit``, ``before``,
            ``after`` and ``spent`` (the difference: other use of the account included;
            ``None`` when a reading failed or the balance grew).
    """

    total: int
    completed: int
    skipped: int
    failed: Mapping[str, int]
    unknown: int
    retries: int
    retry_reasons: Mapping[str, int]
    files: int
    bytes: int
    seconds: float
    interrupted: bool = False
    submissions: Mapping[str, int] = attrs.field(factory=dict)
    to_check: tuple[Mapping[str, str | None], ...] = ()
    stopped: str | None = None
    not_run: int = 0
    blocked: int = 0
    spending: tuple[Mapping[str, Any], ...] = ()
    jobs_spent: tuple[Mapping[str, Any], ...] = ()
    held_back: int = 0
    budget: tuple[str, ...] = ()
    balances: tuple[Mapping[str, Any], ...] = ()

    @property
    def ok(self) -> bool:
        """Whether every job's audio is on disk."""
        return self.completed + self.skipped == self.total

    @property
    def songs_per_minute(self) -> float:
        """Audio files written per minute of wall time."""
        return self.files / self.seconds * 60 if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        return {"total": self.total, "completed": self.completed, "skipped": self.skipped,
                "failed": dict(self.failed), "unknown": self.unknown, "retries": self.retries,
                "retry_reasons": dict(self.retry_reasons),
                "files": self.files, "bytes": self.bytes, "seconds": round(self.seconds, 3),
                "songs_per_minute": round(self.songs_per_minute, 2),
                "interrupted": self.interrupted, "ok": self.ok,
                "submissions": dict(self.submissions),
                "to_check": [dict(item) for item in self.to_check],
                "stopped": self.stopped, "not_run": self.not_run, "blocked": self.blocked,
                "spending": [dict(line) for line in self.spending],
                "jobs_spent": [dict(line) for line in self.jobs_spent],
                "held_back": self.held_back, "budget": list(self.budget),
                "balances": [dict(item) for item in self.balances]}

    def spending_lines(self) -> list[str]:
        """What was spent, per service, in words (``aimlapi: $0.975 (5 jobs)``)."""
        return spending_lines(self.spending)


@attrs.define
class Run:
    """A job in progress: its journal state as this process knows it, and its counters."""

    job: Job
    state: JobState = JobState.PENDING
    task_id: str | None = None
    sent: bool = False  # a paid request of this job is on its way (or was, unanswered)
    retries: int = 0
    stage: str = "waiting"
    expected: int = 0  # bytes its outputs take, about (claimed before its paid request)
    dest_existed: bool | None = None  # whether its file existed before its paid request
    fate: Fate | None = None  # its latest paid attempt's, in this run
    trace_id: str | None = None  # that attempt's trace id
    reused: list[str] = attrs.field(factory=list)  # uploads of an earlier run it relies on
    cost: Cost | None = None  # what the service reported it cost
    keep_result: bool = False  # another job follows it: its result is journaled (_chain.py)
    tracks: tuple[str, ...] = ()  # its tracks' ids, when its task made tracks


class Attempt(Protocol):
    """One paid attempt of this run (``_paid.Paid``), as the summary reads it."""

    @property
    def job(self) -> str: ...
    @property
    def fate(self) -> Fate: ...
    @property
    def trace_id(self) -> str | None: ...
    @property
    def task_id(self) -> str | None: ...


#: The fates the summary counts (the ledger's words, as JSON keys).
_COUNTED = {Fate.TAKEN: "taken", Fate.REFUSED: "refused", Fate.UNKNOWN: "unknown",
            Fate.FAILED_AFTER_TAKEN: "failed_after_taken"}


def summarize(jobs: Sequence[Job], outcomes: list[JobOutcome], retries: Counter[str],
              seconds: float, *, interrupted: bool, paid: Sequence[Attempt] = (),
              stopped: str | None = None) -> BatchSummary:
    status = Counter(o.status for o in outcomes)
    failed = Counter(type(o.error).__name__ for o in outcomes if o.status == "failed")
    made = [f for o in outcomes if o.status == "completed" for f in o.files]
    fates = Counter(p.fate for p in paid)
    check = tuple({"job": o.job.id, "fate": o.fate, "trace_id": o.trace_id,
                   "task_id": o.task_id} for o in outcomes if o.fate is not None)
    # a job stopped while its paid request was in flight has no outcome, and may be charged
    ended, last = {o.job.id for o in outcomes}, {p.job: p for p in paid}
    check += tuple({"job": p.job, "fate": Fate.UNKNOWN.value, "trace_id": p.trace_id,
                    "task_id": p.task_id} for p in last.values()
                   if p.job not in ended and p.fate is Fate.UNKNOWN)
    return BatchSummary(total=len(jobs), completed=status["completed"],
                        skipped=status["skipped"], failed=dict(sorted(failed.items())),
                        unknown=status["unknown"], retries=retries.total(),
                        retry_reasons=dict(sorted(retries.items())), files=len(made),
                        bytes=sum(f.size for f in made), seconds=seconds,
                        interrupted=interrupted,
                        submissions={name: fates[fate] for fate, name in _COUNTED.items()},
                        to_check=check, stopped=stopped, not_run=len(jobs) - len(outcomes),
                        blocked=status["blocked"])




def spent(ledger: Ledger) -> tuple[tuple[dict[str, Any], ...], tuple[dict[str, Any], ...]]:
    """A ledger as the summary reports it: per service and unit, and per job."""
    lines = tuple({"service": line.service, "unit": line.unit,
                   "charged": round(line.charged, 6), "estimated": round(line.estimated, 6),
                   "total": round(line.total, 6), "unknown": line.unknown, "jobs": line.jobs}
                  for line in ledger.summary())
    jobs = []
    for entry in reversed(ledger.entries()):
        cost = entry.cost
        unit = cost.unit if cost is not None else next(
            (u for u, a in entry.reserved.items() if a is not None), None)
        job, _, run = entry.job.rpartition("@")  # ledger keys are "job@run"
        jobs.append({"job": job, "run": int(run), "service": entry.service, "kind": entry.kind,
                     "state": entry.state.value, "unit": unit,
                     "amount": None if unit is None else entry.amount(unit),
                     "usd": None if cost is None else cost.in_unit("usd")})
    return lines, tuple(jobs)


def spending_lines(spending: Sequence[Mapping[str, Any]]) -> list[str]:
    """Per service: what was charged and estimated, in each unit it was counted in."""
    out = []
    for service in dict.fromkeys(line["service"] for line in spending):
        parts = []
        for line in (x for x in spending if x["service"] == service):
            if line["unit"] == "submissions":
                parts.append(format_amount(line["total"], "submissions"))
                continue
            text = format_amount(line["charged"], line["unit"])
            if line["estimated"]:
                text += f" + {format_amount(line['estimated'], line['unit'])} estimated"
            if line["unknown"]:
                text += f" ({line['unknown']} job(s) not reported)"
            parts.append(text)
        out.append(f"{service}: {', '.join(parts)}")
    return out
