"""Pure validators, request builders and answer readers of MiniMax's current music API.

``/v1/music_generation`` serves every prompt-and-lyrics model and the cover models;
``/v1/music_cover_preprocess`` the first step of a two-step cover; ``/v1/lyrics_generation``
lyrics; ``/v1/token_plan/remains`` the key's quota. All on MiniMax's own hosts (global
``api.minimax.io`` or CN ``api.minimaxi.com``), in MiniMax's envelope (``base_resp``).
Where the sources disagree the readers accept both (``data.audio`` or ``data.audio_url``
for a link; ``formatted_lyrics`` or ``lyrics`` for a preprocessed track).
"""

from __future__ import annotations

__all__ = [
    "COVER_FORMATS", "COVER_MAX_BYTES", "COVER_MAX_SECONDS", "COVER_MIN_SECONDS", "COVER_RULE",
    "LYRICS_MODES", "MAX_LYRICS", "MAX_PROMPT", "MAX_SEED", "cover_call", "cover_payload",
    "lyrics_call", "music_call", "preprocess_call", "preprocess_json_call",
    "preprocess_payload", "quota_call", "song_call", "song_payload", "validate_cover",
    "validate_lyrics", "validate_nothing", "validate_preprocess", "validate_song", "with_file",
]

import os
from collections.abc import AsyncIterable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import httpx

from .._core._call import Call, no_body
from .._core._config import LaneKind, Service
from .._core._models import BITRATES, SAMPLE_RATES, AudioFormat
from .._core._operation import Checks, Context
from .._io._b64json import base64_json
from . import _catalog as catalog
from ._catalog import (
    COVER_FORMATS,
    COVER_MAX_BYTES,
    COVER_MAX_SECONDS,
    COVER_MIN_SECONDS,
    COVER_RULE,
    LYRICS_MODES,
    MAX_LYRICS,
    MAX_PROMPT,
    MAX_SEED,
)

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from typing import IO

    from ._music_params import CoverParams, CoverPreprocessParams, LyricsParams, SongParams

GENERATE, PREPROCESS = "/v1/music_generation", "/v1/music_cover_preprocess"
LYRICS, QUOTA = "/v1/lyrics_generation", "/v1/token_plan/remains"
_IDENTITY = {"Accept-Encoding": "identity"}  # hex is decoded as it streams: no compression


# -- validation ------------------------------------------------------------------------------

def validate_nothing(_params: object, _checks: Checks) -> None:
    """Nothing to check (the quota takes no parameters)."""


def _setting(p: SongParams | CoverParams, checks: Checks) -> None:
    checks.choice("format", p.format, [f.value for f in AudioFormat])
    for name, value, allowed in (("sample_rate", p.sample_rate, SAMPLE_RATES),
                                 ("bitrate", p.bitrate, BITRATES), ("channel", p.channel, (1, 2))):
        if value is not None and value not in allowed:
            checks.fail(name, f"must be one of {', '.join(map(str, allowed))}, got {value!r}")
    checks.choice("output_format", p.output_format, ("hex", "url"))
    if p.stream and p.output_format == "url":
        checks.fail("output_format", "url cannot be streamed: with stream the audio arrives as "
                                     "hex events (leave output_format as hex)")


def _lyrics(field: str, lyrics: str | None, spec: catalog.ModelSpec, checks: Checks) -> bool:
    """Check lyrics against the model's limits; whether there are any."""
    text = checks.text(field, lyrics, required=False, max_length=spec.lyrics_max,
                       min_length=spec.lyrics_min or None)
    if not text or not text.strip():
        return False
    wrong = catalog.unknown_tags(text) if spec.documented else []
    if wrong:
        tags = ", ".join(f"[{t}]" for t in catalog.STRUCTURE_TAGS)
        checks.fail(field, f"{', '.join(wrong[:3])}: not a structure tag, so the service would "
                           f"sing it (use only {tags}, or drop the brackets)")
    return True


def _model(p: SongParams | CoverParams | CoverPreprocessParams, checks: Checks
           ) -> catalog.ModelSpec | None:
    known = (*catalog.SONG_MODELS, *catalog.COVER_MODELS)
    return catalog.spec(p.model) if checks.choice("model", p.model, known, open_ended=True) \
        else None


def validate_song(p: SongParams, checks: Checks) -> None:
    """Every problem of a song request (see the model table in ``_catalog``)."""
    spec = _model(p, checks) or catalog.spec(catalog.DEFAULT_MODEL)
    prompt = checks.text("prompt", p.prompt, required=False, max_length=spec.prompt_max,
                         min_length=spec.prompt_min or None)
    has_lyrics = _lyrics("lyrics", p.lyrics, spec, checks)
    for flag, supported in (("is_instrumental", spec.instrumental),
                            ("lyrics_optimizer", spec.optimizer)):
        if getattr(p, flag) and spec.documented and not supported:
            checks.fail(flag, f"{spec.name} does not take {flag}"
                        + (": write [Inst] sections, or use music-2.5+ or music-2.6"
                           if flag == "is_instrumental" else ": write the lyrics"))
    checks.exclusive(("lyrics", has_lyrics), ("is_instrumental", p.is_instrumental),
                     why="an instrumental has no lyrics")
    checks.exclusive(("lyrics", has_lyrics), ("lyrics_optimizer", p.lyrics_optimizer),
                     why="the optimizer writes the lyrics")
    checks.exclusive(("is_instrumental", p.is_instrumental),
                     ("lyrics_optimizer", p.lyrics_optimizer), why="an instrumental has no lyrics")
    if p.is_instrumental and not (prompt and prompt.strip()):
        checks.fail("prompt", "is required with is_instrumental: the style is all the service "
                              "has to go by")
    if spec.kind == "cover":
        if not p.cover_feature_id:
            checks.fail("cover_feature_id", f"{spec.name} covers a track: give the id of "
                                            "preprocess-cover, or use the cover operation")
    elif not (has_lyrics or p.is_instrumental or p.lyrics_optimizer):
        checks.fail("lyrics", "are required unless is_instrumental or lyrics_optimizer is set")
    _setting(p, checks)


def _source(field: str, value: object, checks: Checks) -> None:
    if isinstance(value, str) and "://" in value:
        url = httpx.URL(value) if value.isprintable() else None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            checks.fail(field, f"must be an http(s) URL or a local file, got {value!r}"[:200])
    elif isinstance(value, bytes | bytearray | memoryview | AsyncIterable) or \
            hasattr(value, "read"):
        return  # the library's other sources: the client checks their content
    elif not isinstance(value, str | os.PathLike) or not os.fspath(value):
        checks.fail(field, "must be an http(s) URL or a local file "
                           f"({COVER_RULE}), got {value!r}"[:200])


def validate_cover(p: CoverParams, checks: Checks) -> None:
    """Every problem of a cover request."""
    spec = _model(p, checks) or catalog.spec(catalog.DEFAULT_COVER_MODEL)
    if spec.documented and spec.kind != "cover" and not p.cover_feature_id:
        checks.fail("model", f"{spec.name} is not a cover model: use music-cover or "
                             "music-cover-free (or give cover_feature_id)")
    if p.source is None and not p.cover_feature_id:
        checks.fail("source", "is required: the track to cover (or give cover_feature_id)")
    checks.exclusive(("source", p.source is not None), ("cover_feature_id", p.cover_feature_id),
                     why="the feature id already stands for a preprocessed track")
    if p.source is not None:
        _source("source", p.source, checks)
    checks.text("prompt", p.prompt, max_length=spec.prompt_max)
    _lyrics("lyrics", p.lyrics, spec, checks)
    checks.number("seed", p.seed, integer=True, minimum=0, maximum=MAX_SEED)
    _setting(p, checks)


def validate_preprocess(p: CoverPreprocessParams, checks: Checks) -> None:
    """Every problem of a cover preprocess request."""
    _model(p, checks)
    _source("source", p.source, checks)


def validate_lyrics(p: LyricsParams, checks: Checks) -> None:
    """Every problem of a lyrics request."""
    mode = checks.choice("mode", p.mode, LYRICS_MODES)
    checks.text("prompt", p.prompt, required=False, max_length=MAX_PROMPT)
    lyrics = checks.text("lyrics", p.lyrics, required=mode == "edit", max_length=MAX_LYRICS)
    if mode == "write_full_song" and lyrics:
        checks.fail("lyrics", "are for mode edit; write_full_song writes them from the prompt")
    checks.text("title", p.title, required=False)


# -- requests --------------------------------------------------------------------------------

def _audio_setting(p: SongParams | CoverParams) -> dict[str, Any]:
    setting: dict[str, Any] = {"format": p.format, "sample_rate": p.sample_rate,
                               "bitrate": p.bitrate}
    if p.channel is not None:
        setting["channel"] = p.channel
    return setting


def _common(p: SongParams | CoverParams, payload: dict[str, Any]) -> dict[str, Any]:
    payload["audio_setting"] = _audio_setting(p)
    payload["output_format"] = "hex" if p.stream else p.output_format
    payload["stream"] = bool(p.stream)
    if p.aigc_watermark:
        payload["aigc_watermark"] = True
    return payload


def song_payload(p: SongParams) -> dict[str, Any]:
    """The JSON body of a song request (valid parameters)."""
    payload: dict[str, Any] = {"model": p.model}
    for name in ("prompt", "lyrics", "cover_feature_id"):
        if getattr(p, name):
            payload[name] = getattr(p, name)
    for name in ("is_instrumental", "lyrics_optimizer"):
        if getattr(p, name):
            payload[name] = True
    return _common(p, payload)


def cover_payload(p: CoverParams) -> dict[str, Any]:
    """The JSON body of a cover, without its ``audio_base64`` (a local file is streamed in)."""
    payload: dict[str, Any] = {"model": p.model, "prompt": p.prompt}
    if p.lyrics:
        payload["lyrics"] = p.lyrics
    if p.seed is not None:
        payload["seed"] = p.seed
    if isinstance(p.source, str) and "://" in p.source:
        payload["audio_url"] = p.source
    if p.cover_feature_id:
        payload["cover_feature_id"] = p.cover_feature_id
    return _common(p, payload)


def music_call(payload: Mapping[str, Any], *, operation: str, key: str | None) -> Call:
    """A paid generation: the free models run in the free plan's lane."""
    stream = bool(payload.get("stream"))
    headers = {**_IDENTITY, "Accept": "text/event-stream"} if stream else dict(_IDENTITY)
    lane = LaneKind.FREE if catalog.is_free(str(payload["model"])) else LaneKind.SUBMIT
    return Call(service=Service.MINIMAX, lane=lane, operation=operation, method="POST",
                url=GENERATE, json=dict(payload), paid=True, key=key, headers=headers)


def with_file(call: Call, opener: Callable[[], AbstractContextManager[IO[bytes]]], size: int
              ) -> Call:
    """``call`` with a local reference streamed into its JSON as ``audio_base64``."""
    body, length = base64_json(call.json, "audio_base64", opener, size)
    headers = {**(call.headers or {}), "Content-Type": "application/json",
               "Content-Length": str(length)}
    return attrs.evolve(call, json=None, body=body, headers=headers)


def _local(source: str | Path | None) -> Path | None:
    return None if source is None or (isinstance(source, str) and "://" in source) \
        else Path(source)


def _file_opener(path: Path) -> Callable[[], AbstractContextManager[IO[bytes]]]:
    return lambda: open(path, "rb")  # the body factory closes it


def song_call(p: SongParams, ctx: Context) -> Call:
    """The song request (valid parameters; ``ctx`` is unused: MiniMax's hosts only)."""
    return music_call(song_payload(p), operation="minimax.song", key=None)


def cover_call(p: CoverParams, ctx: Context) -> Call:
    """The cover request; a local file is stated here (its size) and streamed when sent."""
    call = music_call(cover_payload(p), operation="minimax.cover", key=None)
    path = _local(p.source)
    return call if path is None else with_file(call, _file_opener(path), path.stat().st_size)


def preprocess_payload(p: CoverPreprocessParams) -> dict[str, Any]:
    payload: dict[str, Any] = {"model": p.model}
    if isinstance(p.source, str) and "://" in p.source:
        payload["audio_url"] = p.source
    return payload


def preprocess_json_call(payload: Mapping[str, Any], *, key: str | None) -> Call:
    lane = LaneKind.FREE if catalog.is_free(str(payload["model"])) else LaneKind.SUBMIT
    return Call(service=Service.MINIMAX, lane=lane, operation="minimax.preprocess_cover",
                method="POST", url=PREPROCESS, json=dict(payload), paid=True, key=key)


def preprocess_call(p: CoverPreprocessParams, ctx: Context) -> Call:
    call = preprocess_json_call(preprocess_payload(p), key=None)
    path = _local(p.source)
    return call if path is None else with_file(call, _file_opener(path), path.stat().st_size)


def lyrics_call(p: LyricsParams, ctx: Context) -> Call:
    payload: dict[str, Any] = {"mode": p.mode}
    for name in ("prompt", "lyrics", "title"):
        if getattr(p, name):
            payload[name] = getattr(p, name)
    return Call(service=Service.MINIMAX, lane=LaneKind.SUBMIT, operation="minimax.lyrics",
                method="POST", url=LYRICS, json=payload, paid=True)


def quota_call(p: object = None, ctx: Context | None = None) -> Call:
    return Call(service=Service.MINIMAX, lane=LaneKind.POLL, operation="minimax.quota",
                method="GET", url=QUOTA, body=no_body)
