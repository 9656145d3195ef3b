"""Chains: a job that takes another job's result (generate, then separate stems, then WAV).

A job-file line names the job it follows with ``after`` (an id of the same batch); the chain
fills the parameters the line leaves out from that parent's result:

* ``task_id``: the parent's task id (a task of the same service that made tracks or stems);
* ``audio_id``: the id of the parent's ``track``-th track (1-based, default 1; the parent makes
  tracks: the generation family, Add Instrumental), the track saved as ``<out>-<track>.<ext>``.

Checked before anything runs (`link`), each a problem of the child's line: an unknown parent,
a cycle, a parent whose result fills nothing the child takes (or not a field it needs), a
field given both by hand and by the chain, ``track`` where no ``audio_id`` is filled.

While the batch runs (`Chains`), a child waits until its parent ended: it runs once the parent
completed (now, or in an earlier run: the parent's result is in the journal, written before
its ``completed``), and is not run (``blocked``, `ParentFailedError`; nothing sent, the journal
keeps it ``pending``) when the parent did not complete. A child that an earlier run already
took further (submitted, unknown, completed) is decided by its journal like any job, with the
parent's recorded result.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from .._core._errors import AiomusicError, InputError
from .._core._events import JobProgress
from .._core._operation import Checks, Delivery, Operation, Output, ParamInfo, params_of
from .._core._paid_errors import ParentFailedError
from ..tasks import Task
from ._fields import Fields
from ._jobs import Chain, ChainResult, Job, OperationJob
from ._journal import JobRecord, JobState
from ._outcome import JobOutcome

if TYPE_CHECKING:
    from ._steps import Steps

__all__ = ["CHAIN_FIELDS", "Chains", "chain_of", "link", "read_chain"]

#: The job-file fields of a chain.
CHAIN_FIELDS = ("after", "track")
#: The parameters a chain fills, and from what of the parent's result.
_FILLS = {"task_id": "task id", "audio_id": "tracks"}
_RULE = ("a chain fills task_id from a task of the same service that made tracks or stems, "
         "and audio_id from its tracks (the generation family)")

Problem = tuple[int, str | None, str]


def chain_of(job: Job) -> Chain | None:
    return job.chain if isinstance(job, OperationJob) else None


def _takes(op: Operation) -> dict[str, ParamInfo]:
    return {p.name: p for p in params_of(op.params) if p.name in _FILLS}


def gives(parent: Operation, child: Operation) -> tuple[str, ...]:
    """The parameters of ``child`` that ``parent``'s result can fill."""
    # a follow-up takes the task of a generation (tracks) or of a separation (stems, for MIDI)
    if parent.service != child.service or parent.delivery is not Delivery.TASK:
        return ()
    return {Output.TRACKS: ("task_id", "audio_id"), Output.STEMS: ("task_id",)}.get(
        parent.output, ())


def read_chain(fields: Fields, op: Operation | None) -> Chain | None:
    """A line's ``after`` and ``track`` (problems go to ``fields``); the filled parameters
    get placeholders in ``fields.data`` until the parent's result is known."""
    data = fields.data
    track = fields.number("track", int)
    if track is not None and track < 1:
        fields.bad("track", f"must be 1 or more (the parent's first track is 1), got {track}")
    if data.get("after") is None:
        if track is not None:
            fields.bad("track", "applies only with 'after': which of that job's tracks "
                                "fills audio_id")
        return None
    parent = fields.text("after", required=True)
    if op is None:
        return None
    takes = _takes(op)
    if not takes:
        fields.bad("after", f"{op.qualified} takes nothing from another job's result: {_RULE}")
        return None
    hand = tuple(name for name in takes if data.get(name) is not None)
    chain = Chain(parent or "?", track, tuple(name for name in takes if name not in hand), hand)
    # filled later: no "is required" for them (an unusable 'after' is its own problem)
    fields.data = {**data, **{name: chain.placeholder(name) for name in chain.fills}}
    return None if parent is None else chain


def link(jobs: Sequence[Job], *, elsewhere: Collection[str] = ()
         ) -> tuple[list[Job], list[Problem]]:
    """Check every chain against its parent; the jobs with exactly the parameters their
    parent fills (an optional one it cannot fill is left empty), and the problems.
    ``elsewhere``: ids of lines with problems of their own (no second problem for them)."""
    by_id = {job.id: job for job in jobs}
    problems: list[Problem] = []
    linked: list[Job] = []
    for job in jobs:
        chain = chain_of(job)
        if chain is None or not isinstance(job, OperationJob):
            linked.append(job)
            continue
        parent = by_id.get(chain.after)
        if parent is None:
            if chain.after not in elsewhere:
                problems.append((job.line, "after", f"{chain.after!r} is not a job of this "
                                 "batch; name the job whose result this one takes"))
            linked.append(job)
            continue
        linked.append(_link(job, chain, parent, problems))
    problems += _cycles(jobs)
    return linked, sorted(problems, key=lambda p: p[0])


def _link(job: OperationJob, chain: Chain, parent: Job, problems: list[Problem]
          ) -> OperationJob:
    given = gives(parent.op, job.op)
    what = f"job {parent.id!r} ({parent.op.qualified})"
    fills = tuple(name for name in chain.fills if name in given)
    both = [name for name in chain.hand if name in given]
    for name in both:
        problems.append((job.line, name, f"is given here and by 'after' (the {_FILLS[name]} "
                                         f"of {what}); remove one of them"))
    takes = _takes(job.op)
    missing = [n for n in chain.fills if n not in given and takes[n].required]
    if not fills and not both:
        problems.append((job.line, "after", f"{what} gives nothing {job.op.qualified} takes: "
                                            f"{_RULE}"))
    else:
        for name in missing:
            problems.append((job.line, name, f"is required, and {what} has no "
                                             f"{_FILLS[name]} to fill it: give it by hand or "
                                             "follow another job"))
    if chain.track is not None and "audio_id" not in fills:
        problems.append((job.line, "track", f"applies only when the tracks of the job it "
                                            f"follows fill audio_id, and {what} does not"))
    empty = {name: None for name in chain.fills if name not in given}
    params = attrs.evolve(job.params, **empty) if empty else job.params
    return attrs.evolve(job, params=params, chain=attrs.evolve(chain, fills=fills))


def _cycles(jobs: Sequence[Job]) -> list[Problem]:
    parent_of = {job.id: c.after for job in jobs if (c := chain_of(job)) is not None}
    problems: list[Problem] = []
    for job in jobs:
        path, node = [job.id], parent_of.get(job.id)
        while node is not None and node not in path:
            path.append(node)
            node = parent_of.get(node)
        if node == job.id:
            loop = " -> ".join([*path, job.id])
            problems.append((job.line, "after", f"{loop} is a cycle: none of these jobs could "
                                                "ever start"))
    return problems


class Chains:
    """Holds each child until its parent ended, then fills it from the parent's result."""

    def __init__(self, jobs: Sequence[Job]) -> None:
        self._jobs = {job.id: job for job in jobs}
        parents = {c.after for job in jobs if (c := chain_of(job)) is not None}
        self._ended = {job_id: anyio.Event() for job_id in parents}
        self._outcomes: dict[str, JobOutcome | None] = {}

    def is_parent(self, job_id: str) -> bool:
        """Whether a job's result is taken by another (then it is journaled)."""
        return job_id in self._ended

    def ended(self, job_id: str, outcome: JobOutcome | None) -> None:
        """``job_id`` ended (``None``: it was not run); its children may go on."""
        if job_id in self._ended:
            self._outcomes[job_id] = outcome
            self._ended[job_id].set()

    async def ready(self, steps: Steps, job: Job, record: JobRecord | None
                    ) -> Job | JobOutcome | None:
        """``job`` ready to run (filled from its parent's result), or its outcome when it
        cannot run (``None``: the batch stopped before it)."""
        chain = chain_of(job)
        if chain is None or not isinstance(job, OperationJob):
            return job
        steps.session.emit(JobProgress(job=job.id, stage="waiting", detail=f"for {chain.after}"))
        await self._ended[chain.after].wait()
        parent = self._jobs[chain.after]
        outcome = self._outcomes.get(chain.after)
        done = outcome is not None and outcome.ok
        further = record is not None and record.state is not JobState.PENDING
        result = steps.results.get(parent.id)
        if result is None and steps.journal is not None and (done or further):
            result = await steps.journal.result(parent.id)
        if result is None and done:
            assert outcome is not None
            result = await _ask(steps, parent, outcome)
        if result is not None and (done or further):
            try:
                return _fill(job, chain, result)
            except InputError as exc:
                return JobOutcome(job, "failed", error=exc)
        if outcome is None and steps.halt is not None:
            return None
        return _blocked(job, chain, outcome, lost=done)


async def _ask(steps: Steps, parent: Job, outcome: JobOutcome) -> ChainResult | None:
    """The result of a parent an earlier version finished (its journal has no result):
    asked of the service by its task id (a status call: free)."""
    spec = parent.op.task
    if outcome.task_id is None or spec is None:
        return None
    try:
        snap = await Task(steps.session._transport, spec, outcome.task_id).refresh()
    except AiomusicError:
        return None
    tracks = tuple(a.name for a in snap.assets) if parent.op.output is Output.TRACKS else ()
    return ChainResult(outcome.task_id, tracks)


def _fill(job: OperationJob, chain: Chain, result: ChainResult) -> OperationJob:
    values: dict[str, Any] = {}
    for name in chain.fills:
        if name == "task_id":
            values[name] = result.task_id
        elif chain.index < len(result.tracks):
            values[name] = result.tracks[chain.index]
        else:
            raise InputError(
                f"job {job.id}: {chain.after} made {len(result.tracks)} track(s), so it has "
                f"no track {chain.index + 1}; nothing was sent. Give 'track' a number from 1 "
                f"to {len(result.tracks)}, under a new id", field="track")
    params = attrs.evolve(job.params, **values)
    checks = Checks()
    job.op.validate(params, checks)
    if checks.problems:
        said = "; ".join(f"{p.field}: {p.message}" for p in checks.problems)
        raise InputError(f"job {job.id}: the result of {chain.after} does not fit it ({said}); "
                         "nothing was sent", field=checks.problems[0].field)
    return attrs.evolve(job, params=params)


def _blocked(job: Job, chain: Chain, outcome: JobOutcome | None, *, lost: bool
             ) -> JobOutcome:
    if outcome is None:
        how, status = "was not run", "not run"
    elif lost:  # completed, but its ids are neither journaled nor known to the service now
        how, status = ("completed, but its result (its task id and tracks) is neither in the "
                       "journal nor known to the service any more"), outcome.status
    else:
        status = outcome.status
        said = f" ({type(outcome.error).__name__}: {str(outcome.error)[:300]})" \
            if outcome.error else ""
        how = {"failed": f"failed{said}", "unknown": f"has an unknown fate{said}",
               "blocked": "was not run either"}.get(status, status)
    then = (f"give {job.id} the ids by hand instead of 'after'" if lost else
            f"it runs when the same batch runs again once {chain.after} completes")
    error = ParentFailedError(
        f"job {job.id} was not run: the job it follows, {chain.after}, {how}. Nothing was "
        f"sent for {job.id}; it stays pending: {then}", job_id=job.id, parent=chain.after,
        parent_status=status)
    return JobOutcome(job, "blocked", error=error)
