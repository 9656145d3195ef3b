"""What the Suno operations share: their common fields, and the checks that build their bodies.

Every builder here is pure and adds *every* problem it finds to a `Checks`, then returns the
JSON body it would send. An operation's ``validate`` runs it with placeholders for what is not
known yet (a local file's upload URL, the session's callback URL); its ``call`` runs it again
on the final parameters. A local source (a path, not a URL) is uploaded by the client first,
which then puts the upload's URL into the parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._core._call import Call
from .._core._config import LaneKind, Service
from .._core._errors import ConfigurationError, InputError, SubmissionUnknownError
from .._core._operation import Checks, param
from . import _catalog as cat
from . import _protocol as proto

__all__ = [
    "PLACEHOLDER_CALLBACK",
    "PLACEHOLDER_URL",
    "check_controls",
    "check_lyrics_mode",
    "check_model",
    "check_persona",
    "check_source",
    "check_url",
    "is_url",
    "submit_call",
]

#: Stands in for a local source's upload URL while checking, before anything is uploaded.
PLACEHOLDER_URL = "https://upload.invalid/pending"
#: Stands in for the session's callback URL while checking.
PLACEHOLDER_CALLBACK = "https://callback.invalid/check"

_WEIGHTS = (("style_weight", "styleWeight"), ("weirdness_constraint", "weirdnessConstraint"),
            ("audio_weight", "audioWeight"))


# -- the fields many operations share (one definition each) -----------------------------------


def model(known: tuple[str, ...], default: str) -> Any:
    return param(help=f"the model: {', '.join(known)} (default {default}); newer names pass "
                      "with a warning", kind="choice", choices=known, default=default)


def source(help: str) -> Any:
    return param(help=help + ": an http(s) URL the service can fetch, or a local file "
                              "(uploaded first)", kind="source", wire="uploadUrl",
                 positional=True)


def negative_tags() -> Any:
    return param(help="styles to avoid", default=None, wire="negativeTags")


def vocal_gender() -> Any:
    return param(help="a hint: m or f (custom mode only)", kind="choice", choices=("m", "f"),
                 default=None, wire="vocalGender")


def style_weight() -> Any:
    return param(help="how closely to follow the style: 0-1 in steps of 0.01", kind="weight",
                 default=None, wire="styleWeight")


def weirdness_constraint() -> Any:
    return param(help="how adventurous: 0-1 in steps of 0.01", kind="weight", default=None,
                 wire="weirdnessConstraint")


def audio_weight() -> Any:
    return param(help="how much the input audio weighs: 0-1 in steps of 0.01", kind="weight",
                 default=None, wire="audioWeight")


def persona_id() -> Any:
    return param(help="a persona (from `suno persona`) to sing or style the music (custom mode)",
                 kind="id", default=None, wire="personaId")


def persona_model() -> Any:
    return param(help="how the persona is used: style_persona (default) or voice_persona",
                 kind="choice", choices=cat.PERSONA_MODELS, default=None, wire="personaModel")


def callback_url() -> Any:
    return param(help="Suno's callBackUrl (default: the session's); progress is polled either "
                      "way", kind="url", default=None, wire="callBackUrl")


def task_id(what: str = "the finished generation") -> Any:
    return param(help=f"the task id of {what}", kind="id", wire="taskId", positional=True)


def audio_id(what: str = "the track (one of the task's two)") -> Any:
    return param(help=f"the audio id of {what}", kind="id", wire="audioId", positional=True)


# -- checks ------------------------------------------------------------------------------------


def is_url(value: object) -> bool:
    """Whether a source is a URL (else it is a local file, uploaded first)."""
    return isinstance(value, str) and "://" in value


def check_url(checks: Checks, field: str, value: object) -> str | None:
    """An absolute http(s) URL."""
    try:
        return proto.check_http_url(value, field=field)
    except InputError as exc:
        checks.fail(field, exc.message.removeprefix(f"{field} "))
        return None


def check_source(checks: Checks, field: str, value: object) -> str | None:
    """A URL the service fetches, or a local file (checked as the placeholder URL: the
    client uploads it first and puts the upload's URL in its place)."""
    if value is None:
        checks.fail(field, "is required")
        return None
    if isinstance(value, Path) or (isinstance(value, str) and not is_url(value)):
        if not str(value).strip():
            checks.fail(field, "is required and must not be empty")
            return None
        return PLACEHOLDER_URL
    return check_url(checks, field, value)


def check_model(checks: Checks, value: object, known: Sequence[str]) -> str | None:
    """A model name: a documented one, or any other name (sent as given, with a warning)."""
    return checks.choice("model", value, tuple(known), open_ended=True)


def check_controls(checks: Checks, p: Any) -> dict[str, Any]:
    """``negativeTags``, ``vocalGender`` and the three weights, where the parameters have them."""
    body: dict[str, Any] = {}
    tags = getattr(p, "negative_tags", None)
    if tags is not None and not checks.failed("negative_tags") and \
            checks.text("negative_tags", tags, required=False) is not None:
        body["negativeTags"] = tags
    gender = getattr(p, "vocal_gender", None)
    if gender is not None and checks.choice("vocal_gender", gender, ("m", "f")) is not None:
        body["vocalGender"] = gender
    for name, wire in _WEIGHTS:
        value = getattr(p, name, None)
        if value is None:
            continue
        try:
            body[wire] = proto.check_weight(value, field=name)
        except InputError as exc:
            checks.fail(name, exc.message.removeprefix(f"{name} "))
    return body


def check_persona(checks: Checks, p: Any, *, custom: bool) -> dict[str, Any]:
    """``personaId``/``personaModel``: a persona applies in custom mode only."""
    body: dict[str, Any] = {}
    pid, model = getattr(p, "persona_id", None), getattr(p, "persona_model", None)
    if pid is not None and checks.text("persona_id", pid) is not None:
        if not custom:
            checks.fail("persona_id", "applies in custom mode only (set custom_mode)")
        body["personaId"] = pid
    if model is not None and checks.choice("persona_model", model, cat.PERSONA_MODELS):
        if pid is None:
            checks.fail("persona_model", "needs persona_id")
        body["personaModel"] = model
    return body


def check_lyrics_mode(checks: Checks, *, model: str | None, custom: bool, instrumental: bool,
                      prompt: object, style: object, title: object,
                      prompt_required: bool = True) -> dict[str, Any]:
    """``prompt``/``style``/``title`` under the rules of custom and non-custom mode.

    Custom mode: ``style`` and ``title`` are required, and ``prompt`` (the lyrics) too unless
    the music is instrumental; each within the model's limits. Non-custom mode: only a
    ``prompt`` (a description) of at most 500 characters; style and title are refused (the
    service would ignore them silently).
    """
    body: dict[str, Any] = {}
    if custom:
        limits = cat.limits_for(model or "")
        needs_prompt = prompt_required and not instrumental
        if checks.text("prompt", prompt, required=needs_prompt, max_length=limits.prompt):
            body["prompt"] = prompt
        if checks.text("style", style, max_length=limits.style):
            body["style"] = style
        if checks.text("title", title, max_length=limits.title):
            body["title"] = title
        return body
    if checks.text("prompt", prompt, required=prompt_required,
                   max_length=cat.NON_CUSTOM_PROMPT) is not None:
        body["prompt"] = prompt
    for name, value in (("style", style), ("title", title)):
        if value is not None:
            checks.fail(name, "is only sent in custom mode (set custom_mode, or leave it out)")
    return body


def check_callback(checks: Checks, explicit: str | None, fallback: str | None) -> str | None:
    """The callback URL to send: the parameter's, else the session's."""
    return check_url(checks, "callback_url", explicit or fallback or PLACEHOLDER_CALLBACK)


def check_bool(checks: Checks, field: str, value: object) -> bool:
    if not isinstance(value, bool):
        checks.fail(field, f"must be true or false, got {value!r}"[:200])
        return False
    return value


def built(checks: Checks, body: dict[str, Any]) -> dict[str, Any]:
    """``body``, or an `InputError` naming every problem (a call built from unchecked
    parameters, or with a local file not uploaded yet)."""
    listed = body.get("uploadUrlList") or [None, None]
    for field, upload in (("source", body.get("uploadUrl", listed[0])),
                          ("second_source", listed[-1])):
        if upload == PLACEHOLDER_URL:
            checks.fail(field, "a local file must be uploaded first (the SunoClient methods "
                               "do that, then pass its URL)")
    checks.raise_first()
    return body


def require_callback(url: str | None) -> None:
    """Suno requires a ``callBackUrl`` on every submission, even from pollers.

    Raises:
        ConfigurationError: none was given and the session has none.
    """
    if not url:
        raise ConfigurationError(
            "Suno requires a callBackUrl on every submission, even if you only poll. Pass "
            "callback_url=..., set MusicSession(suno_callback_url=...) (any endpoint "
            "answering 200, e.g. a no-op route), or mount a CallbackReceiver and call "
            "session.suno.attach_receiver(receiver, public_url)")


def task_id_reader(operation: str) -> Callable[[Mapping[str, Any]], str]:
    """The answer reader of a submission: the task id in ``data.taskId`` (or ``task_id``).

    Its `SubmissionUnknownError` says that the service accepted a paid request without
    giving a task id to follow.
    """
    def read(body: Mapping[str, Any]) -> str:
        data = body.get("data")
        found = None
        if isinstance(data, Mapping):
            found = data.get("taskId", data.get("task_id"))
        if not isinstance(found, str) or not found.strip():
            raise SubmissionUnknownError(
                f"suno.{operation}: the service accepted the submission (code 200) but its "
                f"answer has no task id (data={data!r}"[:300] + "); a task may be running and "
                "charged. Check your account before re-submitting",
                operation=f"suno.{operation}", reason="no task id")
        return found.strip()
    read.__name__ = f"read_{operation.replace('-', '_')}_task_id"
    return read


def submit_call(operation: str, path: str, body: dict[str, Any], *, key: str | None = None
                ) -> Call:
    """A paid submission in the submit lane (never re-sent blindly)."""
    return Call(service=Service.SUNO, lane=LaneKind.SUBMIT, operation=f"suno.{operation}",
                method="POST", url=path, paid=True, json=body, key=key)
