"""Pure builders and readers of the AI/ML API's asynchronous audio family (no I/O).

A generation is ``POST /v2/generate/audio`` (paid; answers ``{id, status}``), followed by
``GET /v2/generate/audio?generation_id=`` (free, polled) until its ``status`` is
``completed`` (``audio_file.url`` holds a signed link that expires, about 24 h after
creation) or ``error`` (``error{name, message}``). ``meta.usage{credits_used, usd_spent}``
says what it cost, on some models already in the submission's answer. The service has no
callbacks. The readers are tolerant of what varies in practice (numbers sent as strings, a
``waiting`` status, new statuses) and strict where guessing could lose a paid result.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import attrs
import httpx

from .._core._call import Call
from .._core._config import LaneKind, Service
from .._core._errors import ResponseError, SubmissionUnknownError
from .._core._task import Asset, Cost, Phase, TaskSnapshot

__all__ = [
    "PATH",
    "Generation",
    "parse_generation",
    "parse_submission",
    "read_cost",
    "read_status",
    "snapshot",
    "status_call",
    "submit_call",
]

PATH = "/v2/generate/audio"
SUBMIT = "aimlapi.generate"
STATUS = "aimlapi.status"

#: Status -> (phase, rank). ``waiting`` is not in the schema, but the docs' own loops treat it
#: as unfinished; any other unknown status keeps the task running (a service upgrade must not
#: end a paid task early).
_STATUSES: Mapping[str, tuple[Phase, int]] = {
    "queued": (Phase.PENDING, 0),
    "waiting": (Phase.PENDING, 0),
    "generating": (Phase.RUNNING, 1),
    "completed": (Phase.SUCCEEDED, 2),
    "error": (Phase.FAILED, 2),
}
_UNKNOWN = (Phase.RUNNING, 1)


def submit_call(payload: Mapping[str, Any], *, key: str | None = None) -> Call:
    """The paid submission (never re-sent blindly)."""
    return Call(service=Service.AIMLAPI, lane=LaneKind.SUBMIT, operation=SUBMIT, method="POST",
                url=PATH, paid=True, json=dict(payload), key=key)


def status_call(generation_id: str) -> Call:
    """``GET /v2/generate/audio?generation_id=`` in the poll lane (free)."""
    return Call(service=Service.AIMLAPI, lane=LaneKind.POLL, operation=STATUS, method="GET",
                url=PATH, params={"generation_id": generation_id}, key=generation_id)


def parse_submission(body: Mapping[str, Any]) -> str:
    """The generation id of an accepted submission.

    Raises:
        SubmissionUnknownError: the service said yes but gave no id, so a generation may be
            running (and charged) that aiomusic cannot follow.
    """
    generation_id = body.get("id")
    if isinstance(generation_id, int) and not isinstance(generation_id, bool):
        generation_id = str(generation_id)
    if not isinstance(generation_id, str) or not generation_id.strip():
        raise SubmissionUnknownError(
            f"{SUBMIT}: the service accepted the submission but its answer has no generation "
            f"id (id={body.get('id')!r}); a generation may be running and charged. Check your "
            "AI/ML API usage before re-submitting", operation=SUBMIT, reason="no generation id")
    return generation_id.strip()


# -- the status answer ------------------------------------------------------------------------


@attrs.frozen
class Generation:
    """One generation as the status endpoint describes it.

    Attributes:
        id: The generation id (``<uuid>:<model>`` on some models).
        status: The service's status, exactly as sent (``queued``, ``generating``,
            ``completed``, ``error``...).
        audio_url: The signed link to the audio, once completed.
        expires_at: When that link stops working (its ``Expires=``), when it says.
        content_type: The audio's type, when the service says (older models).
        file_name: The file's name, when the service says (older models).
        file_size: Its size in bytes, when the service says (older models).
        duration: Seconds (``extra_info.music_duration``), when the service says.
        error_name: The error's name, when the generation failed.
        error_message: The error's message, when the generation failed.
        credits_used: ``meta.usage.credits_used``, when reported.
        usd_spent: ``meta.usage.usd_spent``, when reported.
        trace_id: The upstream trace id, when given.
    """

    id: str
    status: str
    audio_url: str | None = None
    expires_at: dt.datetime | None = None
    content_type: str | None = None
    file_name: str | None = None
    file_size: int | None = None
    duration: float | None = None
    error_name: str | None = None
    error_message: str | None = None
    credits_used: float | None = None
    usd_spent: float | None = None
    trace_id: str | None = None

    @property
    def cost(self) -> Cost | None:
        """What it cost, in AI/ML credits (with the dollars beside), where reported."""
        if self.credits_used is not None:
            return Cost(self.credits_used, "credits", "aimlapi", usd=self.usd_spent)
        if self.usd_spent is not None:
            return Cost(self.usd_spent, "usd", "aimlapi")
        return None


def number(value: object) -> float | None:
    """A finite, non-negative number, also from a string (``"0.06"``); else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    try:
        result = float(value)
    except OverflowError:
        return None
    return result if math.isfinite(result) and result >= 0 else None


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _usage(body: Mapping[str, Any]) -> tuple[float | None, float | None]:
    meta = body.get("meta")
    usage = meta.get("usage") if isinstance(meta, Mapping) else None
    if not isinstance(usage, Mapping):
        return None, None
    return number(usage.get("credits_used")), number(usage.get("usd_spent"))


def read_cost(body: Mapping[str, Any]) -> Cost | None:
    """``meta.usage`` of a submission or status answer, or ``None`` when it says nothing
    readable (a missing or odd cost never costs the user their result)."""
    credits, usd = _usage(body)
    return Generation(id="", status="", credits_used=credits, usd_spent=usd).cost


def link_expiry(url: str) -> dt.datetime | None:
    """When a signed link stops working, from its ``Expires=`` (epoch seconds)."""
    try:
        params = httpx.URL(url).params
    except (httpx.InvalidURL, TypeError, ValueError):
        return None
    raw = next((v for k, v in params.multi_items() if k.lower() == "expires"), None)
    seconds = number(raw)
    if seconds is None:
        return None
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _same_id(sent: str, asked: str) -> bool:
    # some answers drop (or add) the ":<model>" suffix the submission's id carried
    return sent == asked or sent.partition(":")[0] == asked.partition(":")[0]


def _audio(body: Mapping[str, Any], status: str) -> dict[str, Any]:
    audio = body.get("audio_file")
    if not isinstance(audio, Mapping):
        if status == "completed":
            raise ResponseError("the AI/ML API says the generation is completed but its answer "
                                "has no audio_file")
        return {}
    url = _text(audio.get("url"))
    if url is None or not url.lower().startswith(("https://", "http://")):
        if status == "completed":
            raise ResponseError("the AI/ML API says the generation is completed but gives no "
                                f"usable audio_file.url (got {audio.get('url')!r})"[:300])
        return {}
    size = number(audio.get("file_size"))
    return {"audio_url": url, "expires_at": link_expiry(url),
            "content_type": _text(audio.get("content_type")),
            "file_name": _text(audio.get("file_name")),
            "file_size": None if size is None else int(size)}


def parse_generation(body: Mapping[str, Any], generation_id: str) -> Generation:
    """The generation of a classified status answer.

    Raises:
        ResponseError: no readable status, an answer about another generation, or
            ``completed`` without a usable link (the poll is free: the task model asks again).
    """
    raw = body.get("status")
    if not isinstance(raw, str) or not raw.strip():
        raise ResponseError(f"the AI/ML API's status answer for {generation_id!r} has no "
                            f"status (got {raw!r})"[:300])
    status = raw.strip().lower()
    sent = body.get("id")
    if isinstance(sent, str) and sent.strip() and not _same_id(sent.strip(), generation_id):
        raise ResponseError(f"the status answer for generation {generation_id!r} is about "
                            f"{sent!r}"[:300])
    error = body.get("error")
    name = message = None
    if isinstance(error, Mapping):
        name, message = _text(error.get("name")), _text(error.get("message"))
    elif isinstance(error, str):
        message = _text(error)
    extra = body.get("extra_info")
    ms = number(extra.get("music_duration")) if isinstance(extra, Mapping) else None
    credits, usd = _usage(body)
    return Generation(id=generation_id, status=raw, error_name=name, error_message=message,
                      duration=None if ms is None else ms / 1000, credits_used=credits,
                      usd_spent=usd, trace_id=_text(body.get("trace_id")),
                      **_audio(body, status))


def snapshot(generation: Generation) -> TaskSnapshot:
    """A generation as a task snapshot (its one asset once completed)."""
    phase, rank = _STATUSES.get(generation.status.strip().lower(), _UNKNOWN)
    assets: tuple[Asset, ...] = ()
    if generation.audio_url and phase is Phase.SUCCEEDED:
        assets = (Asset(url=generation.audio_url, name=generation.id, kind="audio",
                        title=generation.file_name, duration=generation.duration,
                        expires_at=generation.expires_at),)
    message = None
    if phase is Phase.FAILED:
        said = ": ".join(p for p in (generation.error_name, generation.error_message) if p)
        message = said or "the generation failed (the service gave no reason)"
    return TaskSnapshot(task_id=generation.id, phase=phase, status=generation.status,
                        rank=rank, assets=assets, error_message=message,
                        cost=generation.cost, record=generation)


def read_status(body: Mapping[str, Any], generation_id: str) -> TaskSnapshot:
    """A classified status answer as a task snapshot (see `parse_generation`)."""
    return snapshot(parse_generation(body, generation_id))
