"""Assembling a generation-family operation from its body builder (shared by the
declarations in ``_ops_family.py`` and ``_ops_edit.py``)."""

from __future__ import annotations

from typing import Any

from .._core._call import Call
from .._core._config import LaneKind
from .._core._operation import Checks, Context, Delivery, Operation, Output
from . import _catalog as cat
from . import _family as fam
from ._specs import MUSIC_TASK

__all__ = ["continuation", "declare", "finish", "mode"]


def mode(checks: Checks, p: Any, model: str | None, *, prompt_required: bool = True
         ) -> dict[str, Any]:
    """``customMode``, ``instrumental``, the lyrics fields and the persona."""
    custom = fam.check_bool(checks, "custom_mode", p.custom_mode)
    instrumental = fam.check_bool(checks, "instrumental", p.instrumental)
    body: dict[str, Any] = {"customMode": custom, "instrumental": instrumental}
    body.update(fam.check_lyrics_mode(checks, model=model, custom=custom,
                                      instrumental=instrumental, prompt=p.prompt, style=p.style,
                                      title=p.title, prompt_required=prompt_required))
    body.update(fam.check_persona(checks, p, custom=custom))
    return body


def finish(checks: Checks, p: Any, body: dict[str, Any], model: str | None,
           fallback: str | None) -> dict[str, Any]:
    """The shared controls, the model and the callback URL."""
    body.update(fam.check_controls(checks, p))
    if model is not None:
        body["model"] = model
    body["callBackUrl"] = fam.check_callback(checks, p.callback_url, fallback)
    return body


def continuation(checks: Checks, p: Any, model: str | None, *, instrumental: bool = False
                 ) -> dict[str, Any]:
    """The fields of extend and upload-extend: custom parameters or the source's own."""
    flag = fam.check_bool(checks, "default_param_flag", p.default_param_flag)
    body: dict[str, Any] = {"defaultParamFlag": flag}
    if flag:
        body.update(fam.check_lyrics_mode(checks, model=model, custom=True,
                                          instrumental=instrumental, prompt=p.prompt,
                                          style=p.style, title=p.title))
        if p.continue_at is None:
            checks.fail("continue_at", "is required with default_param_flag")
    elif p.prompt is not None and checks.text("prompt", p.prompt, required=False,
                                              max_length=cat.limits_for(model or "").prompt):
        body["prompt"] = p.prompt
    if p.continue_at is not None:
        at = checks.number("continue_at", p.continue_at)
        if at is not None and at <= 0:
            checks.fail("continue_at", f"must be after 0 s, got {p.continue_at!r}")
        elif at is not None:
            body["continueAt"] = at
    body.update(fam.check_persona(checks, p, custom=flag))
    return body


def declare(name: str, path: str, params: type[Any], builder: Any, summary: str,
            models: tuple[str, ...], *, aliases: tuple[str, ...] = ()) -> Operation:
    """A generation-family operation: paid, a task id, two tracks, `MUSIC_TASK`."""
    def validate(p: Any, checks: Checks) -> None:
        builder(p, checks, None)

    def call(p: Any, ctx: Context) -> Call:
        fam.require_callback(p.callback_url or ctx.callback_url)
        body = fam.built(checks := Checks(), builder(p, checks, ctx.callback_url))
        key = body.get("title") or str(body.get("prompt") or body.get("audioId") or "")[:40]
        return fam.submit_call(name.replace("-", "_"), path, body, key=key or None)

    return Operation(service="suno", name=name, aliases=aliases, summary=summary,
                     params=params, paid=True, lane=LaneKind.SUBMIT, delivery=Delivery.TASK,
                     output=Output.TRACKS, validate=validate, call=call,
                     read=fam.task_id_reader(name), task=MUSIC_TASK, models=models)


