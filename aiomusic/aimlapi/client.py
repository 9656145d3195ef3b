"""The AI/ML API's asynchronous music models: ``session.aimlapi``."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from .._core._config import Service
from .._core._errors import DownloadError, InputError
from .._core._events import Progress
from .._core._log import logger
from .._core._models import DownloadResult
from .._core._operation import Context
from .._core._task import Cost, Phase, PollSchedule, TaskSnapshot
from .._io._download import audio_suffix, download_url, safe_filename
from ..tasks import Task
from . import _protocol as proto
from ._ops import AUDIO_TASK, GENERATE, POLL, GenerateParams, known

if TYPE_CHECKING:
    from .._core._retry import RetryPolicy
    from .._core._transport import Transport

__all__ = ["AimlapiClient", "AimlapiResult", "AimlapiTask"]

#: A link that expires sooner than this is looked up again before downloading.
EXPIRY_MARGIN = dt.timedelta(seconds=30)


@attrs.frozen
class AimlapiResult:
    """A finished generation, downloaded.

    Attributes:
        generation_id: The service's id.
        model: The model that made it, when known.
        path: Where the audio now is (complete: it was renamed into place).
        download: The download's details (size, SHA-256, content type).
        cost: What it cost, where the service reported it.
        duration: Seconds, when the service said.
        snapshot: The status answer that confirmed it (its ``record`` has every field).
    """

    generation_id: str
    model: str | None
    path: Path
    download: DownloadResult
    cost: Cost | None
    duration: float | None
    snapshot: TaskSnapshot


class AimlapiTask(Task):
    """A generation followed by id: `wait()`, `watch()`, `refresh()`, then `download()`.

    Get one from `AimlapiClient.submit()`, or resume one from its id alone with
    `AimlapiClient.task()` (after a restart, say): the service keeps a result about 24 hours.

    Attributes:
        model: The model, when known (ids of some models end in ``:<model>``).
    """

    def __init__(self, client: AimlapiClient, generation_id: str, *, model: str | None = None,
                 submitted: bool = False, cost: Cost | None = None) -> None:
        super().__init__(client._session, AUDIO_TASK, generation_id, submitted=submitted)
        self._client = client
        self.model = model or _model_of(self.task_id)
        self._submitted_cost = cost

    @property
    def generation_id(self) -> str:
        """The service's id (the same as ``task_id``)."""
        return self.task_id

    @property
    def generation(self) -> proto.Generation | None:
        """The last status answer, read (``None`` before the first)."""
        snap = self.last_status
        return snap.record if snap is not None else None

    @property
    def cost(self) -> Cost | None:
        """What it costs, as the service last reported it (some models say so at once)."""
        for snap in (self.last_status, self.snapshot):
            if snap is not None and snap.cost is not None:
                return snap.cost
        return self._submitted_cost

    async def wait(self, *, timeout: float | None = None,
                   poll: PollSchedule | None = None) -> TaskSnapshot:
        """Wait until the generation ends; return the confirmed snapshot of its success.

        Args:
            timeout: Seconds to wait in all (default: what the service's docs wait for this
                model, 600 or 1000 s; ``math.inf``: no limit). When it passes, the generation
                goes on at the service: resume it later with ``session.aimlapi.task(id)``.
            poll: The poll schedule (default: the client's, every 10-15 s as advised).

        Raises:
            TaskFailedError: the generation ended in ``error``.
            DeadlineExceededError: ``timeout`` passed first.
        """
        return await super().wait(timeout=self._timeout(timeout),
                                  poll=poll or self._client.poll_schedule)

    def watch(self, *, timeout: float | None = None,
              poll: PollSchedule | None = None) -> AsyncIterator[TaskSnapshot]:
        """Yield a snapshot each time the generation moves on (``queued``, ``generating``,
        ``completed``), with the same defaults as `wait()`.

        A failure is yielded, then [`TaskFailedError`][aiomusic.TaskFailedError] is raised.
        """
        return super().watch(timeout=self._timeout(timeout),
                             poll=poll or self._client.poll_schedule)

    def _timeout(self, timeout: float | None) -> float:
        if timeout is not None:
            return timeout
        spec = known(self.model) if self.model else None
        return spec.timeout if spec is not None else AUDIO_TASK.timeout

    async def download(self, destination: str | os.PathLike[str], *, overwrite: bool = True,
                       max_bytes: int | None = None, timeout: float | None = None,
                       retry: RetryPolicy | None = None) -> AimlapiResult:
        """Download the finished generation to ``destination`` (a file, or a folder to put
        ``<generation id>.<ext>`` in), atomically: nothing appears there unless complete.

        A link about to expire is looked up again first. A task not known to be finished is
        looked up once; it is not waited for.

        Raises:
            DownloadError: not completed, the link expired, or the transfer failed.
        """
        snap = self.snapshot
        if snap is None or snap.phase is not Phase.SUCCEEDED:
            snap = await self.refresh(timeout=timeout, retry=retry)
        if snap.phase is not Phase.SUCCEEDED:
            raise DownloadError(f"AI/ML generation {self.task_id} is {snap.status}, not "
                                "completed: wait() for it first", url="")
        if _expiring(snap):
            snap = await self.refresh(timeout=timeout, retry=retry)
            if _expiring(snap):
                when = snap.assets[0].expires_at
                raise DownloadError(
                    f"the link of AI/ML generation {self.task_id} expired at "
                    f"{when:%Y-%m-%d %H:%M:%S} UTC and the service did not renew it; its "
                    "results are kept about 24 hours: generate it again", url="")
        asset = snap.assets[0]
        path = Path(destination)
        if await anyio.Path(path).is_dir():
            path = path / (safe_filename(self.task_id.partition(":")[0], fallback="generation")
                           + audio_suffix(asset.url, _content_type(snap)))
        done = await download_url(self._session, asset.url, path, key=self.task_id,
                                  overwrite=overwrite, max_bytes=max_bytes, timeout=timeout,
                                  retry=retry, service=Service.AIMLAPI,
                                  operation="aimlapi.download")
        return AimlapiResult(generation_id=self.task_id, model=self.model, path=done.path,
                             download=done, cost=self.cost, duration=asset.duration,
                             snapshot=snap)


def _model_of(generation_id: str) -> str | None:
    suffix = generation_id.partition(":")[2]
    return suffix or None


def _content_type(snap: TaskSnapshot) -> str | None:
    record = snap.record
    return record.content_type if isinstance(record, proto.Generation) else None


def _expiring(snap: TaskSnapshot) -> bool:
    when = snap.assets[0].expires_at if snap.assets else None
    return when is not None and when <= dt.datetime.now(dt.UTC) + EXPIRY_MARGIN


class AimlapiClient:
    """The AI/ML API's asynchronous music models of one [`MusicSession`][aiomusic.MusicSession].

    Attributes:
        poll_schedule: How generations are polled unless a call says otherwise (every
            10-15 s, as the service advises).
    """

    def __init__(self, session: Transport) -> None:
        self._session = session
        self.poll_schedule = POLL
        self._warned: set[str] = set()

    def _params(self, model: str, fields: dict[str, Any]) -> GenerateParams:
        try:
            params = GenerateParams(model=model, **fields)
        except TypeError as exc:
            names = sorted(set(fields) - set(attrs.fields_dict(GenerateParams)))
            raise TypeError(f"unknown field(s) {', '.join(names)}: pass fields this version "
                            "does not declare as extra={...}") from exc
        GENERATE.check(params)
        if known(model) is None and model not in self._warned:
            self._warned.add(model)
            logger.warning("aimlapi: model %r is not one aiomusic knows; its fields are sent "
                           "as given, and the service decides", model)
        return params

    async def submit(self, model: str, *, timeout: float | None = None,
                     retry: RetryPolicy | None = None, **fields: Any) -> AimlapiTask:
        """Submit a generation (paid) and return its handle at once.

        Args:
            model: The model id (``minimax/music-2.6``, ``stable-audio``...; others pass
                through to the service).
            timeout: Seconds for the submission itself.
            retry: Overrides the session's retry policy. The submission is paid: after an
                ambiguous failure it is not re-sent unless ``resubmit_unknown=True``.
            **fields: The model's fields (``prompt=``, ``lyrics=``, ``seconds_total=``...,
                ``extra={...}`` for anything else); see docs/aimlapi.md.

        Raises:
            InputError: a field breaks the model's rules (every problem in ``problems``;
                nothing was sent).
            TypeError: a field no model declares (pass it in ``extra``).
            InsufficientCreditsError: out of credits (HTTP 403; not retried).
            SubmissionUnknownError: the submission may have been taken without an answer.
            APIError: the service refused it.
        """
        params = self._params(model, fields)
        call = GENERATE.call(params, Context(Service.AIMLAPI))
        read = GENERATE.read
        assert read is not None
        # read within the attempt: an answer without its generation id has an unknown fate
        task_id, cost = await self._session._submit(
            call, lambda body: (read(body), proto.read_cost(body)), timeout=timeout, retry=retry)
        task = AimlapiTask(self, task_id, model=model, submitted=True, cost=cost)
        self._session.emit(Progress(operation=GENERATE.qualified, key=task.task_id,
                                    stage="submitted"))
        return task

    async def generate(self, model: str, destination: str | os.PathLike[str], *,
                       overwrite: bool = True, timeout: float | None = None,
                       poll: PollSchedule | None = None, retry: RetryPolicy | None = None,
                       max_bytes: int | None = None, **fields: Any) -> AimlapiResult:
        """Submit a generation, wait for it, and download it to ``destination``.

        Args:
            model: The model id.
            destination: A file path, or an existing folder (the file is then named after
                the generation).
            overwrite: Replace an existing file.
            timeout: Seconds for all of it (default: no bound on the submission and the
                download, and the model's advised wait, 600-1000 s, for the generation).
            poll: The poll schedule (default: ``poll_schedule``).
            retry: Overrides the session's retry policy.
            max_bytes: The largest file accepted (default 512 MiB).
            **fields: The model's fields, as for `submit()`.

        Raises:
            InputError: a field breaks the model's rules (nothing was sent).
            TaskFailedError: the generation ended in ``error``.
            DeadlineExceededError: ``timeout`` passed (the generation goes on at the service;
                the message says how to resume it).
            DownloadError: the audio could not be fetched.
        """
        deadline = None if timeout is None else anyio.current_time() + timeout
        task = await self.submit(model, timeout=timeout, retry=retry, **fields)
        await task.wait(timeout=_left(deadline), poll=poll)
        return await task.download(destination, overwrite=overwrite, max_bytes=max_bytes,
                                   timeout=_left(deadline), retry=retry)

    def task(self, generation_id: str, *, model: str | None = None) -> AimlapiTask:
        """A handle on an existing generation, from its id alone (e.g. after a restart).

        Its first `wait()` or `watch()` looks it up at once.
        """
        given: object = generation_id
        if not isinstance(given, str) or not given.strip():
            raise InputError(f"generation_id must be a non-empty string, got "
                             f"{generation_id!r}", field="generation_id")
        return AimlapiTask(self, generation_id.strip(), model=model)


def _left(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    return max(deadline - anyio.current_time(), 1e-3)
