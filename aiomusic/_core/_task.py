"""What every operation followed by id shares: its snapshot, its outputs, its status reader.

Suno tasks of every endpoint, the AI/ML API's generations and MiniMax's URL outputs are all
"submitted, then followed by id". Each service supplies only a `TaskSpec`: how to ask for the
status and how to read the answer (and a callback body, where the service calls back) into a
`TaskSnapshot`. Waiting, watching, refreshing, resuming by id, the poll schedule, callback
hints and deadlines are one model (``aiomusic.tasks``) for all of them. Nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
import enum
import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._config import Service

if TYPE_CHECKING:
    from ._call import Call

__all__ = ["Asset", "Cost", "Phase", "PollSchedule", "TaskSnapshot", "TaskSpec"]

_RNG = random.Random()


class Phase(enum.StrEnum):
    """Where a followed task is, whatever the service calls it."""

    PENDING = "pending"
    """Accepted, not started (queued)."""
    RUNNING = "running"
    """Under way; the service's own stage is in `TaskSnapshot.status`."""
    SUCCEEDED = "succeeded"
    """Done: its outputs can be downloaded."""
    FAILED = "failed"
    """Ended without a result; the snapshot says why."""

    @property
    def terminal(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED)


@attrs.frozen
class Cost:
    """What a call cost, in the service's own unit.

    A service that reports one charge in two units (the AI/ML API's ``credits_used`` and
    ``usd_spent``) gives one `Cost` in its own unit (credits) with the dollar figure beside
    it in ``usd``; `in_unit()` reads either. Credits of different services are different
    currencies: costs are added up per service, never across services.

    Attributes:
        amount: How much.
        unit: ``credits``, ``usd`` or ``submissions``.
        service: Which account paid.
        usd: The same charge in US dollars, when the service says so besides ``amount``.
    """

    amount: float
    unit: str
    service: str
    usd: float | None = None

    def in_unit(self, unit: str) -> float | None:
        """The charge in ``unit`` when the service reported it in that unit, else ``None``
        (aiomusic never converts between units: the rate is the service's business)."""
        if unit == self.unit:
            return self.amount
        if unit == "usd":
            return self.usd
        return None


@attrs.frozen
class Asset:
    """One downloadable output of a task.

    Attributes:
        url: Where to fetch it (confirmed by the service's status endpoint).
        name: What it is within the task: a track id, a stem name (``vocals``), ``wav``...
        kind: ``audio``, ``video``, ``midi``, ``image`` or ``document``.
        title: A title to name the file by, when the service gives one.
        duration: Seconds, when known.
        expires_at: When the link stops working, when known.
    """

    url: str
    name: str
    kind: str = "audio"
    title: str | None = None
    duration: float | None = None
    expires_at: dt.datetime | None = None


@attrs.frozen
class TaskSnapshot:
    """A task as one status answer (or callback) describes it.

    Attributes:
        task_id: The task.
        phase: Where it is.
        status: The service's own status string, exactly as sent.
        rank: Its progress, so reports that arrive out of order never move a task back
            (0 = accepted; terminal phases rank highest).
        assets: The outputs known so far (complete when the phase is ``SUCCEEDED``).
        error_code: The service's error code on failure.
        error_message: The service's message on failure.
        cost: What it cost, where the service says.
        record: The service's own typed record (a Suno ``TaskRecord``...), for callers who
            want every field.
    """

    task_id: str
    phase: Phase
    status: str
    rank: int = 0
    assets: tuple[Asset, ...] = ()
    error_code: int | None = None
    error_message: str | None = None
    cost: Cost | None = None
    record: Any = None


@attrs.frozen
class PollSchedule:
    """When to ask for a task's status: ``initial`` seconds, then ``factor`` times longer
    each time up to ``maximum``, each wait shortened by a random part of up to ``jitter``.

    Suno advises polling every 30 s (tasks take 2-4 minutes); the AI/ML API every 10-15 s.
    Tests use tiny values.
    """

    initial: float = attrs.field(default=3.0, validator=attrs.validators.gt(0))
    maximum: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    factor: float = attrs.field(default=1.5, validator=attrs.validators.ge(1))
    jitter: float = attrs.field(default=0.2, validator=[attrs.validators.ge(0),
                                                        attrs.validators.le(1)])

    def delay(self, polls: int, *, rng: random.Random | None = None) -> float:
        """The wait before the next poll, after ``polls`` polls."""
        base = min(self.maximum, self.initial * self.factor ** min(polls, 64))
        return base * (1.0 - self.jitter * (rng or _RNG).random())


@attrs.frozen
class TaskSpec:
    """How one kind of task is followed.

    Attributes:
        name: A stable name (``suno.music``, ``suno.wav``, ``aimlapi.audio``).
        service: The service (and so the key and the poll lane) that answers status calls.
        status_call: Builds the free status call for a task id (poll lane).
        read_status: Reads a classified status answer into a snapshot; raises
            [`ResponseError`][aiomusic.ResponseError] for an answer it cannot read (a poll
            is free: the task model asks again within the deadline).
        read_callback: Reads a callback body into a snapshot (a *hint*: the status endpoint
            confirms it before anything is downloaded), for services that call back.
        poll: The default poll schedule.
        timeout: The default overall wait, in seconds.
        retention: How long the service keeps the outputs, when documented.
        resume_hint: How a user resumes a task by id (shown when a wait gives up), with
            ``{task_id}`` in it.
        label: How messages name such a task (``Suno task``).
        initial_status: The status a task has right after its submission was accepted.
        needs_assets: Whether success must name something to download (a lyrics task's
            result is in its record, not in a file).
    """

    name: str
    service: Service
    status_call: Callable[[str], Call]
    read_status: Callable[[Mapping[str, Any], str], TaskSnapshot]
    read_callback: Callable[[Mapping[str, Any]], TaskSnapshot] | None = None
    poll: PollSchedule = PollSchedule()
    timeout: float = 900.0
    retention: dt.timedelta | None = None
    resume_hint: str = "resume it by its id ({task_id})"
    label: str = "task"
    initial_status: str = "PENDING"
    needs_assets: bool = True
