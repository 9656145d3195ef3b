"""Pure readers of the current MiniMax music answers (classified JSON in, typed models out).

Anything unreadable is a [`ResponseError`][aiomusic.ResponseError] that says what is missing,
never a ``KeyError``. Where the sources disagree, both spellings are read.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import httpx

from .._core._converter import parse_time
from .._core._errors import ResponseError
from . import _protocol as proto
from ._results import LINK_LIFETIME, CoverFeatures, Lyrics, ModelQuota, MusicLink, Quota

__all__ = ["link_expiry", "read_features", "read_link", "read_lyrics", "read_quota"]

_AMZ_DATE = "%Y%m%dT%H%M%SZ"


def _trace(body: Mapping[str, Any]) -> str | None:
    trace = body.get("trace_id")
    return trace if isinstance(trace, str) else None


def _text(body: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = body.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def link_expiry(url: str, now: dt.datetime) -> dt.datetime:
    """When a link stops working: its own ``Expires`` (epoch seconds, as OSS and CloudFront
    sign) or ``X-Amz-Date`` + ``X-Amz-Expires``; else 24 hours after ``now``."""
    query = httpx.URL(url).params
    try:
        if "Expires" in query:
            return dt.datetime.fromtimestamp(int(query["Expires"]), tz=dt.UTC)
        if "X-Amz-Date" in query and "X-Amz-Expires" in query:
            signed = dt.datetime.strptime(query["X-Amz-Date"], _AMZ_DATE).replace(tzinfo=dt.UTC)
            return signed + dt.timedelta(seconds=int(query["X-Amz-Expires"]))
    except (ValueError, OverflowError, OSError):
        pass  # an expiry we cannot read: the documented lifetime
    return now + LINK_LIFETIME


def read_link(body: Mapping[str, Any], *, model: str = "",
              now: dt.datetime | None = None) -> MusicLink:
    """The link of a finished ``output_format="url"`` generation.

    MiniMax's docs put it in ``data.audio``; its official CLI reads ``data.audio_url``.
    Both are read (``audio_url`` first).

    Raises:
        ResponseError: the answer is not finished, or carries no http(s) link.
    """
    extra, trace = proto.check_generation(body)
    data = body["data"]  # check_generation saw a mapping with status 2
    url = _text(data, "audio_url", "audio")
    parsed = None
    if url is not None:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ResponseError("the answer to an output_format='url' generation has no http(s) "
                            "link in data.audio_url or data.audio", trace_id=trace)
    assert url is not None
    return MusicLink(url=url, expires_at=link_expiry(url, now or dt.datetime.now(dt.UTC)),
                     model=model, extra_info=extra, trace_id=trace)


def read_lyrics(body: Mapping[str, Any]) -> Lyrics:
    """Lyrics, title and style tags of a ``/v1/lyrics_generation`` answer.

    Raises:
        ResponseError: the answer has no lyrics.
    """
    lyrics = _text(body, "lyrics")
    if lyrics is None:
        raise ResponseError("the lyrics answer has no lyrics", trace_id=_trace(body))
    raw = body.get("style_tags")
    items = raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, list) else []
    tags = tuple(t.strip() for t in items if isinstance(t, str) and t.strip())
    return Lyrics(title=_text(body, "song_title", "title") or "", style_tags=tags,
                  lyrics=lyrics, trace_id=_trace(body))


def read_features(body: Mapping[str, Any]) -> CoverFeatures:
    """The feature id and heard lyrics of a ``/v1/music_cover_preprocess`` answer.

    The lyrics are read from ``formatted_lyrics`` or ``lyrics``; the id from the top level or
    from ``data``.

    Raises:
        ResponseError: the answer has no ``cover_feature_id``.
    """
    data = body.get("data")
    found = [body, data] if isinstance(data, Mapping) else [body]
    feature_id = next((v for m in found if (v := _text(m, "cover_feature_id"))), None)
    if feature_id is None:
        raise ResponseError("the cover preprocess answer has no cover_feature_id",
                            trace_id=_trace(body))
    lyrics = next((v for m in found if (v := _text(m, "formatted_lyrics", "lyrics"))), "")
    structure = next((v for m in found if (v := _text(m, "structure_result"))), None)
    raw = next((m.get("audio_duration") for m in found if "audio_duration" in m), None)
    duration = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) \
        and math.isfinite(raw) else None
    return CoverFeatures(feature_id=feature_id, lyrics=lyrics, structure=structure,
                         duration=duration, trace_id=_trace(body))


def _count(entry: Mapping[str, Any], name: str) -> int:
    value = entry.get(name)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ResponseError(f"the quota answer's {name} is {value!r}, not a count")


def _maybe_count(entry: Mapping[str, Any], name: str) -> int | None:
    return None if entry.get(name) is None else _count(entry, name)


def _time(entry: Mapping[str, Any], name: str) -> dt.datetime | None:
    try:
        return parse_time(entry.get(name))
    except (ValueError, OverflowError, OSError) as exc:
        raise ResponseError(f"the quota answer's {name} is not a time: {exc}") from exc


def read_quota(body: Mapping[str, Any]) -> Quota:
    """The allowances of a ``/v1/token_plan/remains`` answer (``model_remains``).

    Remaining is total minus used, as MiniMax's own CLI counts it.

    Raises:
        ResponseError: ``model_remains`` is missing or an entry is unreadable.
    """
    remains = body.get("model_remains")
    if not isinstance(remains, list):
        raise ResponseError("the quota answer has no model_remains list", trace_id=_trace(body))
    models = []
    for entry in remains:
        if not isinstance(entry, Mapping) or not _text(entry, "model_name"):
            raise ResponseError("the quota answer has an entry without model_name",
                                trace_id=_trace(body))
        models.append(ModelQuota(
            model=entry["model_name"], total=_count(entry, "current_interval_total_count"),
            used=_count(entry, "current_interval_usage_count"),
            interval_start=_time(entry, "start_time"), interval_end=_time(entry, "end_time"),
            weekly_total=_maybe_count(entry, "current_weekly_total_count"),
            weekly_used=_maybe_count(entry, "current_weekly_usage_count")))
    return Quota(models=tuple(models), trace_id=_trace(body))
