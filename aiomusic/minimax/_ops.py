"""MiniMax's operations, declared once (see ``aiomusic._core._operation``).

music-01 (reference ids, on the AI/ML API or MiniMax's hosts), and the current models on
MiniMax's own hosts: songs from a prompt and lyrics, covers (one step, or two with a
preprocessed reference), lyrics and the key's quota. The current models' validators, request
builders and answer readers live in ``_music_protocol``; their limits in ``_catalog``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from .._core._call import Call
from .._core._config import LaneKind
from .._core._models import BITRATES, SAMPLE_RATES, AudioFormat, AudioSetting
from .._core._operation import Checks, Context, Delivery, Operation, Output, param, register
from . import _catalog as catalog
from . import _music_answers as answers
from . import _music_protocol as music
from . import _protocol as proto
from ._music_params import (
    CoverParams,
    CoverPreprocessParams,
    LyricsParams,
    QuotaParams,
    SongParams,
)

__all__ = [
    "COVER",
    "COVER_PREPROCESS",
    "LYRICS",
    "MUSIC_01",
    "QUOTA",
    "SONG",
    "CoverParams",
    "CoverPreprocessParams",
    "LyricsParams",
    "Music01Params",
    "QuotaParams",
    "SongParams",
    "delivery_of",
]


@attrs.frozen
class Music01Params:
    """music-01: a song from lyrics, in the style of uploaded reference tracks."""

    lyrics: str | None = param(
        help=f"up to {proto.MAX_LYRICS} characters; \\n separates lines, ## around adds "
             "accompaniment", default=None, max_length=proto.MAX_LYRICS)
    refer_voice: str | None = param(help="a voice id from an earlier upload", kind="id",
                                    default=None)
    refer_instrumental: str | None = param(help="an instrumental id from an earlier upload",
                                           kind="id", default=None)
    reference: Path | None = param(
        help="a reference track to upload first (with purpose)", kind="file", default=None)
    purpose: str = param(help="how reference is uploaded: song, voice or instrumental",
                         kind="choice", choices=("song", "voice", "instrumental"),
                         default="song")
    voice_reference: Path | None = param(help="an a cappella track, uploaded with purpose voice",
                                         kind="file", default=None)
    instrumental_reference: Path | None = param(
        help="a backing track, uploaded with purpose instrumental", kind="file", default=None)
    format: str = param(help="mp3, wav or pcm", kind="choice",
                        choices=tuple(f.value for f in AudioFormat), default="mp3")
    sample_rate: int = param(help="16000, 24000, 32000 or 44100", kind="int", default=44100)
    bitrate: int = param(help="32000, 64000, 128000 or 256000", kind="int", default=256000)

    @property
    def audio_setting(self) -> AudioSetting:
        return AudioSetting(format=AudioFormat(self.format), sample_rate=self.sample_rate,
                            bitrate=self.bitrate)


def _validate(p: Music01Params, checks: Checks) -> None:
    for name, value, allowed in (("sample_rate", p.sample_rate, SAMPLE_RATES),
                                 ("bitrate", p.bitrate, BITRATES)):
        if value not in allowed:
            checks.fail(name, f"must be one of {', '.join(map(str, allowed))}, got {value!r}")
    checks.choice("format", p.format, [f.value for f in AudioFormat])
    has_refs = p.refer_voice or p.refer_instrumental or p.reference or p.voice_reference or \
        p.instrumental_reference
    if not has_refs:
        checks.fail("reference", "give reference (or voice_reference, instrumental_reference, "
                                 "refer_voice, refer_instrumental): music-01 needs a reference")
    if not p.lyrics and (p.refer_voice or p.reference or p.voice_reference):
        checks.fail("lyrics", "is required when a voice is referenced")


def _call(p: Music01Params, ctx: Context) -> Call:
    payload = proto.check_generate(ctx.service, lyrics=p.lyrics, refer_voice=p.refer_voice,
                                   refer_instrumental=p.refer_instrumental,
                                   audio_setting=p.audio_setting)
    return proto.generate_call(ctx.service, payload, key=None)


MUSIC_01 = Operation(
    service="minimax", name="music-01",
    summary="music-01: a song from lyrics in the style of reference tracks (hex in JSON)",
    params=Music01Params, paid=True, lane=LaneKind.SUBMIT, delivery=Delivery.INLINE_HEX,
    output=Output.FILE, validate=_validate, call=_call, models=(proto.MODEL,))

register(MUSIC_01)


# -- the current models (music-2.x, covers, lyrics, quota) -------------------------------------

def delivery_of(params: SongParams | CoverParams) -> Delivery:
    """How a song or cover arrives with these parameters: the declarations say INLINE_HEX,
    ``stream`` makes it SSE_HEX and ``output_format="url"`` makes it URL."""
    if params.stream:
        return Delivery.SSE_HEX
    return Delivery.URL if params.output_format == "url" else Delivery.INLINE_HEX


async def _perform(session: Any, params: Any, destination: Path | None) -> Any:
    """The client runs the current models (it picks hex, SSE or a link by the parameters)."""
    return await session.minimax.run(params, destination)


SONG = Operation(
    service="minimax", name="song", aliases=("generate", "music"),
    summary="a song from a prompt and lyrics (music-2.6, 2.5+, 2.5, 2.0, -free); hex, SSE or a "
            "link", params=SongParams, paid=True, lane=LaneKind.SUBMIT,
    delivery=Delivery.INLINE_HEX, output=Output.FILE, validate=music.validate_song,
    call=music.song_call, read=answers.read_link, models=(*catalog.SONG_MODELS,), perform=_perform)

COVER = Operation(
    service="minimax", name="cover",
    summary="a cover of a reference track (music-cover); hex, SSE or a link",
    params=CoverParams, paid=True, lane=LaneKind.SUBMIT, delivery=Delivery.INLINE_HEX,
    output=Output.FILE, validate=music.validate_cover, call=music.cover_call,
    read=answers.read_link, models=catalog.COVER_MODELS, perform=_perform)

COVER_PREPROCESS = Operation(
    service="minimax", name="preprocess-cover", aliases=("cover-preprocess",),
    summary="the first step of a two-step cover: a feature id and the track's lyrics",
    params=CoverPreprocessParams, paid=True, lane=LaneKind.SUBMIT, delivery=Delivery.JSON,
    output=Output.DOCUMENT, validate=music.validate_preprocess, call=music.preprocess_call,
    read=answers.read_features, models=catalog.COVER_MODELS, perform=_perform)

LYRICS = Operation(
    service="minimax", name="lyrics",
    summary="lyrics (and a title and style tags) written from an idea, or edited",
    params=LyricsParams, paid=True, lane=LaneKind.SUBMIT, delivery=Delivery.JSON,
    output=Output.DOCUMENT, validate=music.validate_lyrics, call=music.lyrics_call,
    read=answers.read_lyrics, perform=_perform)

QUOTA = Operation(
    service="minimax", name="quota",
    summary="what the key's Token Plan still allows, per model (free)",
    params=QuotaParams, paid=False, lane=LaneKind.POLL, delivery=Delivery.JSON,
    output=Output.NOTHING, validate=music.validate_nothing, call=music.quota_call,
    read=answers.read_quota, perform=_perform)

register(SONG, COVER, COVER_PREPROCESS, LYRICS, QUOTA)
