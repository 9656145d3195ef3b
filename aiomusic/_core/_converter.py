"""The one private cattrs converter, and the raw-JSON edge where ``Any`` is allowed.

The services mix camelCase (Suno record-info) and snake_case (Suno callbacks, MiniMax), send
``createTime`` as a string or as epoch milliseconds, and numbers sometimes as strings
(``"183.5"``, ``"1027"``). Everything is normalised here, and any shape we cannot read becomes a
[`ResponseError`][aiomusic.ResponseError], never a ``KeyError``. A number that is not finite
(``"NaN"``, ``1e999``) is not read as one.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs
import cattrs

from ._errors import ResponseError
from ._models import (
    CallbackEvent,
    CallbackType,
    TaskRecord,
    TaskStatus,
    Track,
)

__all__ = ["converter", "optional_float", "optional_int", "optional_str", "parse_time", "snake",
           "snake_keys", "structure"]

T = TypeVar("T")

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)

converter = cattrs.Converter(forbid_extra_keys=False)


def snake(name: str) -> str:
    """``audioUrl`` -> ``audio_url``; snake_case names pass through."""
    return _CAMEL.sub(r"_\1", name).lower()


def snake_keys(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with camelCase keys turned snake_case (first spelling wins)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.setdefault(snake(str(key)), value)
    return out


def parse_time(value: object) -> dt.datetime | None:
    """``createTime`` as Suno sends it: epoch ms (number or digits) or a date string.

    Strings without a zone (``"2025-01-01 00:00:00"``) are taken as UTC, as the service's
    examples are.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or abs(value) > 1e15:
            raise ValueError(f"not a time: {value!r}")
        seconds = value / 1000 if abs(value) > 1e11 else value
        return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return parse_time(int(text))
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    raise ValueError(f"not a time: {value!r}")


def optional_int(value: object, _: object = None) -> int | None:
    """A whole number as the services send one: ``12``, ``12.0``, ``"12"`` or ``" 12.0 "``.

    Raises:
        ValueError: anything else (a fraction, ``"NaN"``, a bool, a list...).
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not an integer: {value!r}")
    if isinstance(value, int):
        return value
    number: float
    if isinstance(value, str):
        text = value.strip()
        if _INTEGER.fullmatch(text):
            return int(text)  # may be too long: ValueError, reported like the rest
        number = _finite(text, value)
    elif isinstance(value, float):
        number = _finite(value, value)
    else:
        raise ValueError(f"not an integer: {value!r}"[:200])
    if not number.is_integer():
        raise ValueError(f"not a whole number: {value!r}"[:200])
    return int(number)


def _finite(number: str | float, shown: object) -> float:
    try:
        result = float(number)
    except ValueError:
        raise ValueError(f"not a number: {shown!r}"[:200]) from None
    if not math.isfinite(result):
        raise ValueError(f"not a finite number: {shown!r}"[:200])
    return result


def optional_float(value: object, _: object = None) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"not a number: {value!r}"[:200])
    if isinstance(value, int):
        return float(value)  # may overflow: OverflowError is reported like the rest
    return _finite(value.strip() if isinstance(value, str) else value, value)


def optional_str(value: object, _: object = None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"not a string: {value!r}")


converter.register_structure_hook(int | None, optional_int)
converter.register_structure_hook(float | None, optional_float)
converter.register_structure_hook(str | None, optional_str)
converter.register_structure_hook(dt.datetime | None, lambda v, _: parse_time(v))


def _structure_track(data: Any, _: object) -> Track:
    if not isinstance(data, Mapping):
        raise ValueError(f"a track must be an object, got {type(data).__name__}")
    fields = snake_keys(data)
    if not fields.get("id"):
        raise ValueError("a track has no id")
    known = {f.name for f in attrs.fields(Track)}
    return Track(**{
        name: converter.structure(value, _field_type(Track, name))
        for name, value in fields.items() if name in known
    })


def _field_type(cls: type[Any], name: str) -> Any:
    return attrs.fields_dict(cls)[name].type


converter.register_structure_hook(Track, _structure_track)


def _tracks(value: object) -> tuple[Track, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError(f"tracks must be a list, got {type(value).__name__}")
    return tuple(converter.structure(item, Track) for item in value)


def structure(data: object, cls: type[T], *, what: str) -> T:
    """Structure ``data`` into ``cls``; any failure becomes a
    [`ResponseError`][aiomusic.ResponseError]."""
    try:
        if cls is TaskRecord:
            return _task_record(data)  # type: ignore[return-value]
        if cls is CallbackEvent:
            return _callback(data)  # type: ignore[return-value]
        if isinstance(data, Mapping):
            data = snake_keys(data)
        return converter.structure(data, cls)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError,
            cattrs.BaseValidationError) as exc:
        raise ResponseError(f"could not read {what} from the service's answer: "
                            f"{_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        inner = exc.exceptions[0] if exc.exceptions else exc
        return _describe(inner) if inner is not exc else str(exc)
    return str(exc) or type(exc).__name__


def _task_record(data: object) -> TaskRecord:
    if not isinstance(data, Mapping):
        raise ValueError(f"record-info data must be an object, got {type(data).__name__}")
    fields = snake_keys(data)
    task_id = optional_str(fields.get("task_id"), None)
    if not task_id:
        raise ValueError("record-info data has no taskId")
    raw_status = optional_str(fields.get("status"), None) or "PENDING"
    try:
        status = TaskStatus(raw_status.upper())
    except ValueError:
        status = TaskStatus.PENDING  # a status this version does not know yet: keep waiting
    response = fields.get("response")
    items = response.get("sunoData") if isinstance(response, Mapping) else None
    if items is None and isinstance(response, Mapping):
        items = response.get("suno_data")
    return TaskRecord(
        task_id=task_id,
        status=status,
        raw_status=raw_status,
        tracks=_tracks(items),
        type=optional_str(fields.get("type"), None),
        operation_type=optional_str(fields.get("operation_type"), None),
        parent_music_id=optional_str(fields.get("parent_music_id"), None),
        error_code=optional_int(fields.get("error_code"), None),
        error_message=optional_str(fields.get("error_message"), None),
        create_time=parse_time(fields.get("create_time")),
    )


def _callback(body: object) -> CallbackEvent:
    if not isinstance(body, Mapping):
        raise ValueError(f"a callback body must be an object, got {type(body).__name__}")
    data = body.get("data")
    if not isinstance(data, Mapping):
        raise ValueError("a callback body has no data object")
    fields = snake_keys(data)
    task_id = optional_str(fields.get("task_id"), None)
    if not task_id:
        raise ValueError("a callback has no task_id")
    kind = optional_str(fields.get("callback_type"), None)
    if kind is None:
        raise ValueError("a callback has no callbackType")
    code = optional_int(body.get("code"), None)
    return CallbackEvent(
        task_id=task_id,
        callback_type=CallbackType(kind.lower()),
        code=200 if code is None else code,
        msg=optional_str(body.get("msg"), None) or "",
        tracks=_tracks(fields.get("data")),
    )

