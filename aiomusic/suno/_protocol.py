"""Pure request builders, argument checks and answer parsers for sunoapi.org (no I/O).

Add Instrumental is ``POST /api/v1/generate/add-instrumental`` (paid, answers a task id),
followed by ``GET /api/v1/generate/record-info?taskId=`` (cheap, polled) or callbacks. Local
files go first to the File Upload API host (``POST /api/file-stream-upload``, multipart).
"""

from __future__ import annotations

import math
import mimetypes
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import IO, Any

import httpx

from .._core._call import Call
from .._core._config import LaneKind, Service
from .._core._converter import optional_int, structure
from .._core._errors import InputError, MissingTracksError, ResponseError, SubmissionUnknownError
from .._core._models import TaskRecord, TaskStatus, UploadedFile
from .._io._names import sniff_media

__all__ = [
    "KNOWN_MODELS",
    "MAX_TITLE",
    "add_instrumental_call",
    "check_add_instrumental",
    "check_http_url",
    "credits_call",
    "parse_credits",
    "parse_record",
    "parse_submission",
    "parse_upload",
    "record_info_call",
    "require_tracks",
    "stream_upload_call",
]

#: Models the Add Instrumental docs list; newer ``V...`` names pass through unchecked.
KNOWN_MODELS = ("V4_5PLUS", "V5")
DEFAULT_MODEL = "V4_5PLUS"
MAX_TITLE = 100
Opener = Callable[[], AbstractContextManager[IO[bytes]]]
_MODEL = re.compile(r"V\d[A-Z0-9_]*")
_WEIGHTS = (("style_weight", "styleWeight"), ("weirdness_constraint", "weirdnessConstraint"),
            ("audio_weight", "audioWeight"))


def credits_call() -> Call:
    """``GET /api/v1/generate/credit``."""
    return Call(service=Service.SUNO, lane=LaneKind.POLL, operation="suno.credits",
                method="GET", url="/api/v1/generate/credit")


def parse_credits(body: Mapping[str, Any]) -> int:
    """The remaining credits from a classified credit answer (a number, or digits in a string)."""
    data = body.get("data")
    try:
        credits = optional_int(data)
    except ValueError:
        credits = None
    if credits is None:
        raise ResponseError(f"Suno's credit answer has no whole number as data "
                            f"(got {data!r})"[:300])
    return credits


# -- checks ------------------------------------------------------------------------------------


def check_http_url(value: object, *, field: str) -> str:
    """``value`` if it is an absolute http(s) URL with a host, else an
    [`InputError`][aiomusic.InputError]."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{field} must be an absolute http(s) URL, got {value!r}", field=field)
    try:
        url = httpx.URL(value.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise InputError(f"{field} is not a valid URL ({exc})", field=field) from exc
    if url.scheme not in ("http", "https") or not url.host or "%" in url.host or \
            re.search(r"\s", value.strip()):
        raise InputError(f"{field} must be an absolute http(s) URL such as "
                         f"'https://example.com/x', got {value!r}", field=field)
    return value.strip()


def _text(value: object, *, field: str, limit: int | None = None) -> str:
    if not isinstance(value, str):
        raise InputError(f"{field} must be a string, got {type(value).__name__}", field=field)
    if not value.strip():
        raise InputError(f"{field} is required and must not be empty", field=field)
    if limit is not None and len(value) > limit:
        raise InputError(f"{field} must be at most {limit} characters, got {len(value)}",
                         field=field)
    return value


def check_weight(value: object, *, field: str) -> float:
    """A weight in 0..1 that is a multiple of 0.01, returned rounded to two decimals.

    Floats such as ``0.1 + 0.2`` are accepted: the check allows the binary rounding error
    (1e-9) but not a third decimal.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{field} must be a number from 0 to 1, got {value!r}", field=field)
    number = float(value)
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise InputError(f"{field} must be from 0 to 1, got {value!r}", field=field)
    hundredths = number * 100
    if abs(hundredths - round(hundredths)) > 1e-9 * max(1.0, abs(hundredths)):
        raise InputError(f"{field} must be a multiple of 0.01 (two decimals), got {value!r}",
                         field=field)
    return round(hundredths) / 100


def check_model(model: object) -> str:
    """``V4_5PLUS`` or ``V5``, or any newer ``V<digit>...`` name (the enum grows)."""
    if not isinstance(model, str) or not _MODEL.fullmatch(model):
        raise InputError(f"model must be one of {', '.join(KNOWN_MODELS)} (or a newer Suno "
                         f"model name such as 'V5_5'), got {model!r}", field="model")
    return model


def check_add_instrumental(
    *,
    upload_url: str,
    title: str,
    tags: str,
    negative_tags: str,
    callback_url: str,
    vocal_gender: str | None = None,
    style_weight: float | None = None,
    weirdness_constraint: float | None = None,
    audio_weight: float | None = None,
    model: str = DEFAULT_MODEL,
) -> dict[str, Any]:
    """The JSON body of an Add Instrumental submission, every field checked.

    Raises:
        InputError: a field is missing or invalid (the message names it).
    """
    problems: list[InputError] = []  # every problem, not the first: a job file lists all

    def checked(check: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return check(*args, **kwargs)
        except InputError as exc:
            problems.append(exc)
            return None

    payload: dict[str, Any] = {
        "uploadUrl": checked(check_http_url, upload_url, field="upload_url"),
        "title": checked(_text, title, field="title", limit=MAX_TITLE),
        "tags": checked(_text, tags, field="tags"),
        "negativeTags": checked(_text, negative_tags, field="negative_tags"),
        "callBackUrl": checked(check_http_url, callback_url, field="callback_url"),
        "model": checked(check_model, model),
    }
    if vocal_gender is not None:
        if vocal_gender not in ("m", "f"):
            problems.append(InputError(f"vocal_gender must be 'm' or 'f', got {vocal_gender!r}",
                                       field="vocal_gender"))
        payload["vocalGender"] = vocal_gender
    values = {"style_weight": style_weight, "weirdness_constraint": weirdness_constraint,
              "audio_weight": audio_weight}
    for name, wire in _WEIGHTS:
        if values[name] is not None:
            payload[wire] = checked(check_weight, values[name], field=name)
    if problems:
        first = problems[0]
        error = InputError(first.message, field=first.field)
        error.problems = tuple(problems)  # type: ignore[attr-defined]
        raise error
    return payload


# -- submission and record-info ----------------------------------------------------------------


def add_instrumental_call(payload: Mapping[str, Any]) -> Call:
    """The paid submission (never re-sent blindly)."""
    return Call(service=Service.SUNO, lane=LaneKind.SUBMIT, operation="suno.add_instrumental",
                method="POST", url="/api/v1/generate/add-instrumental", paid=True,
                json=dict(payload), key=str(payload.get("title")))


def parse_submission(body: Mapping[str, Any]) -> str:
    """The task id of an accepted submission.

    Raises:
        SubmissionUnknownError: the service said yes but gave no task id, so a task may exist
            (and be charged) that aiomusic cannot follow.
    """
    data = body.get("data")
    task_id = data.get("taskId") if isinstance(data, Mapping) else None
    if task_id is None and isinstance(data, Mapping):
        task_id = data.get("task_id")
    if not isinstance(task_id, str) or not task_id:
        raise SubmissionUnknownError(
            "suno.add_instrumental: the service accepted the submission (code 200) but its "
            f"answer has no task id (data={data!r}); a task may be running and charged. Check "
            "your account before re-submitting", operation="suno.add_instrumental",
            reason="no task id")
    return task_id


def record_info_call(task_id: str) -> Call:
    """``GET /api/v1/generate/record-info`` in the poll lane."""
    return Call(service=Service.SUNO, lane=LaneKind.POLL, operation="suno.record_info",
                method="GET", url="/api/v1/generate/record-info", params={"taskId": task_id},
                key=task_id)


#: How to go on with a task whose answer could not be used (the CLI renders it as a command).
LOOK_AGAIN = "look it up again later with session.suno.task({task_id!r})"


def parse_record(body: Mapping[str, Any], *, task_id: str) -> TaskRecord:
    """The task of a classified record-info answer, read strictly.

    Numbers sent as strings (``"183.5"``, ``"1027"``) are read as numbers; a value that is
    not what its field documents (``"NaN"`` as a duration, ``data: null``) makes the whole
    answer unreadable rather than half-read. Such an answer says nothing about the task, which
    goes on at the service, so the error is retryable: a later look-up may read fine.

    Raises:
        ResponseError: the answer has no readable task data, or it is about another task.
    """
    try:
        record = structure(body.get("data"), TaskRecord, what=f"the record of task {task_id}")
    except ResponseError as exc:
        raise ResponseError(f"{exc}; the task goes on at the service: "
                            f"{LOOK_AGAIN.format(task_id=task_id)}", retryable=True) from exc
    if record.task_id != task_id:
        raise ResponseError(f"record-info for task {task_id!r} answered about task "
                            f"{record.task_id!r}", retryable=True)
    return record


def require_tracks(record: TaskRecord) -> TaskRecord:
    """``record`` if it is not a ``SUCCESS`` without audio.

    A ``SUCCESS`` with no tracks (or no ``response`` at all), or with a track that has no
    ``audioUrl``, is not a success a caller can use.

    Raises:
        MissingTracksError: the record says ``SUCCESS`` but holds no downloadable track.
    """
    if record.status is not TaskStatus.SUCCESS:
        return record
    hint = LOOK_AGAIN.format(task_id=record.task_id)
    if not record.tracks:
        raise MissingTracksError(
            f"Suno reported task {record.task_id} as SUCCESS but its answer holds no track; "
            f"{hint}", task_id=record.task_id)
    bare = [track.id for track in record.tracks if not track.audio_url]
    if bare:
        raise MissingTracksError(
            f"Suno reported task {record.task_id} as SUCCESS but track(s) "
            f"{', '.join(bare)} have no audio URL; {hint}", task_id=record.task_id)
    return record


# -- File Upload API ---------------------------------------------------------------------------


_SUFFIXES = {"audio/wav": ".wav", "audio/mpeg": ".mp3", "audio/flac": ".flac",
             "audio/ogg": ".ogg", "audio/mp4": ".m4a"}


def upload_file_name(name: str, mime_type: str = "application/octet-stream") -> str:
    """A unique name for the upload host (the same name would overwrite another file),
    with a suffix matching the content when the name has none."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "audio"
    suffix = _SUFFIXES.get(mime_type, "")
    if suffix and not stem.lower().endswith(suffix):
        stem += suffix
    return f"{secrets.token_hex(6)}-{stem[-80:]}"


def stream_upload_call(*, opener: Opener,
                       file_name: str, upload_path: str, mime_type: str) -> Call:
    """``POST /api/file-stream-upload``: multipart ``file``, ``uploadPath``, ``fileName``.

    ``opener`` gives a fresh readable file per attempt, so a retry re-sends from the start.
    """
    path = upload_path.strip("/ ")
    if not path:
        raise InputError("upload_path must not be empty (nor only slashes)", field="upload_path")

    @contextmanager
    def body() -> Iterator[dict[str, Any]]:
        with opener() as handle:
            yield {"files": {"file": (file_name, handle, mime_type)},
                   "data": {"uploadPath": path, "fileName": file_name}}

    return Call(service=Service.SUNO_UPLOAD, lane=LaneKind.TRANSFER, operation="suno.upload",
                method="POST", url="/api/file-stream-upload", body=body, key=file_name)


def parse_upload(body: Mapping[str, Any]) -> UploadedFile:
    """The stored file of a classified upload answer (``data.downloadUrl`` is required).

    Raises:
        ResponseError: the answer says the upload failed or has no usable download URL.
    """
    if body.get("success") is False:
        raise ResponseError(f"the File Upload API said the upload failed: {body.get('msg')!r}")
    data = body.get("data")
    uploaded = structure(data, UploadedFile, what="the uploaded file")
    try:
        check_http_url(uploaded.download_url, field="downloadUrl")
    except InputError as exc:
        raise ResponseError(f"the File Upload API gave an unusable downloadUrl: {exc}") from exc
    return uploaded


def sniff_mime(head: bytes, name: str) -> str:
    """A MIME type for the upload, from the first bytes (WAV, MP3, FLAC, OGG, M4A)."""
    kind = sniff_media(head)
    if kind is not None:
        return _MIME_OF[kind]
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


_MIME_OF = {"mp3": "audio/mpeg", "wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg",
            "mp4": "audio/mp4"}
