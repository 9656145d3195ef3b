"""The AI/ML API's asynchronous audio family, declared once (see ``aiomusic._core._operation``).

One operation, ``aimlapi.generate``, covers every model on ``POST /v2/generate/audio``: its
parameters are the union of the models' documented fields, and the validator checks a request
against its own model's rules (``_models.py``): a field another model takes is named as such,
a model id this version does not know passes through with only type checks, and ``extra`` sends
any other field as it is. One job-file line or one command line says ``model`` plus that
model's fields.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any

import attrs
import httpx

from .._core._call import Call
from .._core._config import LaneKind, Service
from .._core._operation import (
    Checks,
    Context,
    Delivery,
    Operation,
    Output,
    param,
    params_of,
    register,
)
from .._core._task import PollSchedule, TaskSpec
from . import _protocol as proto
from ._models import FORMATS, MODELS, Model, Rule

__all__ = ["AUDIO_TASK", "GENERATE", "MODEL_NAMES", "POLL", "GenerateParams", "payload"]

#: The documented model ids, in the docs' order; others pass through.
MODEL_NAMES = tuple(MODELS)
#: A reference given inline (base64) may decode to at most this many bytes (music-cover).
MAX_REFERENCE_BYTES = 50 * 1024 * 1024
#: The service's advice: poll every 10-15 s. Jitter only shortens a wait, so the first wait is
#: 10.2-12 s and later ones 12.75-15 s.
POLL = PollSchedule(initial=12.0, maximum=15.0, factor=1.25, jitter=0.15)


@attrs.frozen
class GenerateParams:
    """A generation on the AI/ML API: ``model`` plus that model's fields."""

    model: str = param(help="the model id: " + ", ".join(MODEL_NAMES) + "; others pass "
                       "through", kind="choice", choices=MODEL_NAMES)
    prompt: str | None = param(help="what to generate (style, mood, instruments...); "
                               "minimax-music sings it", default=None)
    lyrics: str | None = param(help="the song's lyrics (MiniMax models); \\n separates lines, "
                               "[Verse], [Chorus]... tags shape it", default=None)
    negative_prompt: str | None = param(help="what to avoid (google/lyria2)", default=None)
    seed: int | None = param(help="a seed >= 0 for repeatable results (google/lyria2)",
                             kind="int", default=None, minimum=0)
    seconds_start: int | None = param(help="where the clip starts, 1-47 s (stable-audio)",
                                      kind="int", default=None, minimum=1, maximum=47)
    seconds_total: int | None = param(help="the clip's length, 1-47 s (stable-audio; "
                                      "default 30)", kind="int", default=None, minimum=1,
                                      maximum=47)
    steps: int | None = param(help="denoising steps, 1-1000 (stable-audio; default 100)",
                              kind="int", default=None, minimum=1, maximum=1000)
    music_length_ms: int | None = param(
        help="the song's length, 10000-300000 ms (elevenlabs/eleven_music; a hint)",
        kind="int", default=None, minimum=10_000, maximum=300_000)
    is_instrumental: bool | None = param(help="no vocals, no lyrics (minimax/music-2.6)",
                                         kind="bool", default=None)
    lyrics_optimizer: bool | None = param(
        help="write the lyrics from the prompt (minimax/music-2.6)", kind="bool", default=None)
    reference_audio_url: str | None = param(
        help="the reference track: an http(s) URL the service can fetch (music-cover also "
             "takes base64), 6 s-6 min and <= 50 MB for music-cover, > 15 s for minimax-music",
        default=None)
    format: str | None = param(help="mp3, wav or pcm (MiniMax models; default mp3)",
                               kind="choice", choices=FORMATS, default=None)
    sample_rate: int | None = param(help="16000, 24000, 32000 or 44100 (MiniMax models)",
                                    kind="int", default=None)
    bitrate: int | None = param(help="32000, 64000, 128000 or 256000 (MiniMax models)",
                                kind="int", default=None)
    extra: Mapping[str, Any] | None = param(
        help="more fields to send exactly as given (a JSON object), for what this version "
             "does not declare", kind="mapping", default=None)


_KINDS = {p.name: p.kind for p in params_of(GenerateParams)}
#: The fields that are sent as they are (the rest: model, audio_setting, extra).
_PLAIN = ("prompt", "lyrics", "negative_prompt", "seed", "seconds_start", "seconds_total",
          "steps", "music_length_ms", "is_instrumental", "lyrics_optimizer",
          "reference_audio_url")
_AUDIO = ("format", "sample_rate", "bitrate")
_BASE64 = re.compile(r"[A-Za-z0-9+/\s]*={0,2}\s*")


def known(model: str) -> Model | None:
    """The declaration of ``model``, if this version knows it."""
    return MODELS.get(model)


def _given(p: GenerateParams) -> dict[str, Any]:
    return {name: getattr(p, name) for name in (*_PLAIN, *_AUDIO)
            if getattr(p, name) is not None}


def _check_value(checks: Checks, name: str, value: object, rule: Rule | None) -> None:
    kind = _KINDS[name]
    if kind == "bool":
        if not isinstance(value, bool):
            checks.fail(name, f"must be true or false, got {value!r}"[:200])
    elif kind == "int":
        number = checks.number(name, value, integer=True,
                               minimum=rule.minimum if rule else None,
                               maximum=rule.maximum if rule else None)
        if number is not None and rule and rule.choices and value not in rule.choices:
            allowed = ", ".join(map(str, rule.choices))
            checks.fail(name, f"must be one of {allowed}, got {value!r}")
    elif kind == "choice":
        checks.choice(name, value, FORMATS, open_ended=rule is None)
    else:
        checks.text(name, value, required=bool(rule and rule.required),
                    max_length=rule.max_length if rule else None,
                    min_length=rule.min_length if rule else None)


def _check_reference(checks: Checks, value: str, spec: Model | None) -> None:
    try:
        url = httpx.URL(value.strip())
        if url.scheme in ("http", "https") and url.host and not re.search(r"\s", value.strip()):
            return
    except (httpx.InvalidURL, TypeError, ValueError):
        pass
    if spec is not None and spec.name != "minimax/music-cover":
        checks.fail("reference_audio_url", f"must be an absolute http(s) URL for {spec.name}, "
                                           f"got {value[:60]!r}")
        return
    data = value.partition(",")[2] if value.startswith("data:") else value
    if len(data) * 3 // 4 > MAX_REFERENCE_BYTES + 2:
        checks.fail("reference_audio_url", f"is larger than {MAX_REFERENCE_BYTES // 2**20} MB "
                                           "once decoded; give a URL to a smaller file")
    elif not data.strip() or not _BASE64.fullmatch(data):
        checks.fail("reference_audio_url", "must be an http(s) URL or base64 audio (a data: "
                                           f"URL or plain base64), got {value[:60]!r}")


def _check_music_26(p: GenerateParams, checks: Checks) -> None:
    why = "an instrumental has no lyrics"
    checks.exclusive(("lyrics", p.lyrics), ("is_instrumental", p.is_instrumental), why=why)
    checks.exclusive(("lyrics", p.lyrics), ("lyrics_optimizer", p.lyrics_optimizer),
                     why="the optimizer writes the lyrics")
    checks.exclusive(("is_instrumental", p.is_instrumental),
                     ("lyrics_optimizer", p.lyrics_optimizer), why=why)
    if not p.lyrics and p.is_instrumental is not True and p.lyrics_optimizer is not True:
        checks.fail("lyrics", "is required for minimax/music-2.6 unless is_instrumental or "
                              "lyrics_optimizer is true")
    if not p.prompt and (p.is_instrumental is True or p.lyrics_optimizer is True):
        checks.fail("prompt", "is required for minimax/music-2.6 when is_instrumental or "
                              "lyrics_optimizer is true")


def _check_extra(extra: object, given: Mapping[str, Any], checks: Checks) -> None:
    if extra is None:
        return
    if not isinstance(extra, Mapping):
        checks.fail("extra", f"must be a mapping of field names to values, got "
                             f"{type(extra).__name__}")
        return
    taken = {"model", *given}
    if any(name in given for name in _AUDIO):
        taken.add("audio_setting")
    for key in extra:
        if not isinstance(key, str) or not key.strip():
            checks.fail("extra", f"field names must be non-empty strings, got {key!r}"[:200])
        elif key in taken:
            checks.fail("extra", f"{key!r} is also given as a field of its own; give it once")
    try:
        json.dumps(extra, allow_nan=False)
    except (TypeError, ValueError) as exc:
        checks.fail("extra", f"must hold only JSON values ({exc})"[:200])


def _validate(p: GenerateParams, checks: Checks) -> None:
    model_given: object = p.model  # a job file may leave it out
    if model_given is None:
        checks.fail("model", "is required (" + ", ".join(MODEL_NAMES) + ", or another id)")
    model = checks.choice("model", p.model, MODEL_NAMES, open_ended=True)
    spec = known(model) if model else None
    given = _given(p)
    for name, value in given.items():
        rule = spec.rule(name) if spec else None
        if spec is not None and rule is None:
            fields = ", ".join(r.name for r in spec.rules)
            checks.fail(name, f"is not a field of {spec.name} (it takes {fields}); put it in "
                              "extra to send it anyway")
            continue
        _check_value(checks, name, value, rule)
    for rule in spec.rules if spec else ():
        if rule.required and rule.name not in given:
            checks.fail(rule.name, f"is required for {spec.name if spec else ''}")
    if spec is not None and spec.name == "minimax/music-2.6":
        _check_music_26(p, checks)
    if isinstance(p.reference_audio_url, str) and not checks.failed("reference_audio_url"):
        _check_reference(checks, p.reference_audio_url, spec)
    _check_extra(p.extra, given, checks)


def payload(p: GenerateParams) -> dict[str, Any]:
    """The JSON body of a (valid) request: its model's wire shape, then ``extra``.

    ``format``, ``sample_rate`` and ``bitrate`` become ``audio_setting``, whose sample-rate key
    depends on the model (``audio_sample_rate`` on music-1.5/2.0/2.6, ``sample_rate`` on
    music-cover and on models this version does not know). ``format`` is required inside
    ``audio_setting``, so it is sent (``mp3``) whenever the object is.
    """
    body: dict[str, Any] = {"model": p.model}
    body.update((name, getattr(p, name)) for name in _PLAIN if getattr(p, name) is not None)
    if p.format is not None or p.sample_rate is not None or p.bitrate is not None:
        spec = known(p.model)
        key = spec.sample_rate_key if spec and spec.sample_rate_key else "sample_rate"
        setting: dict[str, Any] = {"format": p.format or "mp3"}
        if p.sample_rate is not None:
            setting[key] = p.sample_rate
        if p.bitrate is not None:
            setting["bitrate"] = p.bitrate
        body["audio_setting"] = setting
    body.update(p.extra or {})
    return body


def _call(p: GenerateParams, ctx: Context) -> Call:
    return proto.submit_call(payload(p), key=p.model)


#: The family's task: ``GET /v2/generate/audio?generation_id=``, polled in the poll lane.
AUDIO_TASK = TaskSpec(
    name="aimlapi.audio", service=Service.AIMLAPI, status_call=proto.status_call,
    read_status=proto.read_status, poll=POLL, timeout=1000.0,
    retention=dt.timedelta(hours=24), label="AI/ML generation", initial_status="queued",
    resume_hint="resume it later with session.aimlapi.task({task_id!r})")

GENERATE = Operation(
    service="aimlapi", name="generate",
    summary="a song, clip or cover from one of the AI/ML API's music models (a task)",
    params=GenerateParams, paid=True, lane=LaneKind.SUBMIT, delivery=Delivery.TASK,
    output=Output.FILE, validate=_validate, call=_call, read=proto.parse_submission,
    task=AUDIO_TASK, models=MODEL_NAMES)

register(GENERATE)
