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

_SETTING_HELP = "mp3 (default), wav or pcm"


def _format() -> Any:
    return param(help=_SETTING_HELP, kind="choice", choices=tuple(f.value for f in AudioFormat),
                 default="mp3", wire="audio_setting.format")


def _sample_rate() -> Any:
    return param(help="16000, 24000, 32000 or 44100 (default)", kind="int",
                 default=44100, wire="audio_setting.sample_rate")


def _bitrate() -> Any:
    return param(help="32000, 64000, 128000 or 256000 (default)", kind="int",
                 default=256000, wire="audio_setting.bitrate")


def _channel() -> Any:
    return param(help="1 (mono) or 2 (stereo); the service's default when unset",
                 kind="int", default=None, minimum=1, maximum=2, wire="audio_setting.channel")


def _watermark() -> Any:
    return param(help="embed MiniMax's AI-generated-content watermark (seen on the CN host)",
                 kind="bool", default=False, wire="aigc_watermark")


def _output_format() -> Any:
    return param(help="hex (default: the audio arrives in the answer) or url (a link valid 24 h, "
                      "downloaded at once); stream needs hex", kind="choice",
                 choices=("hex", "url"), default="hex", wire="output_format")


def _stream() -> Any:
    return param(help="receive the audio as server-sent events while it is generated",
                 kind="bool", default=False, wire="stream")


@attrs.frozen
class SongParams:
    """A song from a style prompt and lyrics (music-2.6 and the other current models)."""

    prompt: str | None = param(
        help=f"style, mood and scene, up to {music.MAX_PROMPT} characters; required with "
             "is_instrumental", default=None, max_length=music.MAX_PROMPT)
    lyrics: str | None = param(
        help=f"up to {music.MAX_LYRICS} characters: lines separated by \\n, sections marked by "
             "the 14 structure tags ([Verse], [Chorus]...); required unless is_instrumental or "
             "lyrics_optimizer", default=None, max_length=music.MAX_LYRICS)
    model: str = param(
        help="music-2.6 (default), music-2.6-free, music-2.5+, music-2.5 or music-2.0; newer "
             "names (music-3.0) pass through", kind="choice",
        choices=(*catalog.SONG_MODELS, *catalog.COVER_MODELS), default=catalog.DEFAULT_MODEL)
    is_instrumental: bool = param(help="no vocals (music-2.6, music-2.5+): then no lyrics",
                                  kind="bool", default=False)
    lyrics_optimizer: bool = param(help="let the service write lyrics from the prompt (then no "
                                        "lyrics, not instrumental)", kind="bool", default=False)
    cover_feature_id: str | None = param(
        help="the second step of a two-step cover: the id preprocess-cover gave", kind="id",
        default=None)
    format: str = _format()
    sample_rate: int = _sample_rate()
    bitrate: int = _bitrate()
    channel: int | None = _channel()
    aigc_watermark: bool = _watermark()
    output_format: str = _output_format()
    stream: bool = _stream()


@attrs.frozen
class CoverParams:
    """A cover of a reference track (music-cover), in one step or with a preprocessed id."""

    # Any: job files give a URL or a path; the library also takes bytes and file objects
    source: Any = param(
        help="the track to cover: an http(s) URL (sent as audio_url) or a local file (sent as "
             f"audio_base64, streamed); {music.COVER_RULE}", kind="source", positional=True,
        default=None, wire="audio_url | audio_base64")
    prompt: str = param(help=f"the cover's style, up to {music.MAX_PROMPT} characters",
                        max_length=music.MAX_PROMPT)
    lyrics: str | None = param(
        help="the cover's lyrics (default: the service transcribes the reference's)",
        default=None, max_length=music.MAX_LYRICS)
    cover_feature_id: str | None = param(
        help="instead of source: the id preprocess-cover gave", kind="id", default=None)
    model: str = param(help="music-cover (default) or music-cover-free", kind="choice",
                       choices=catalog.COVER_MODELS, default=catalog.DEFAULT_COVER_MODEL)
    seed: int | None = param(help="0 to 1000000, for reproducible results", kind="int",
                             default=None, minimum=0, maximum=music.MAX_SEED)
    format: str = _format()
    sample_rate: int = _sample_rate()
    bitrate: int = _bitrate()
    channel: int | None = _channel()
    aigc_watermark: bool = _watermark()
    output_format: str = _output_format()
    stream: bool = _stream()


@attrs.frozen
class CoverPreprocessParams:
    """The first step of a two-step cover: a feature id and the lyrics heard in the track."""

    source: Any = param(
        help=f"the track to cover: an http(s) URL or a local file; {music.COVER_RULE}",
        kind="source", positional=True, wire="audio_url | audio_base64")
    model: str = param(help="music-cover (default) or music-cover-free", kind="choice",
                       choices=catalog.COVER_MODELS, default=catalog.DEFAULT_COVER_MODEL)


@attrs.frozen
class LyricsParams:
    """Lyrics written from an idea, or edited (``/v1/lyrics_generation``)."""

    prompt: str | None = param(
        help=f"what the song is about, up to {music.MAX_PROMPT} characters (random when empty)",
        default=None, max_length=music.MAX_PROMPT, positional=True)
    mode: str = param(help="write_full_song (default) or edit", kind="choice",
                      choices=music.LYRICS_MODES, default="write_full_song")
    lyrics: str | None = param(help=f"the lyrics to edit (edit mode), up to "
                                    f"{music.MAX_LYRICS} characters", default=None,
                               max_length=music.MAX_LYRICS)
    title: str | None = param(help="the song's title (kept as given)", default=None)


@attrs.frozen
class QuotaParams:
    """The key's Token Plan allowance (no parameters)."""


def delivery_of(params: SongParams | CoverParams) -> Delivery:
    """How a song or cover arrives with these parameters: the declarations say INLINE_HEX,
    ``stream`` makes it SSE_HEX and ``output_format="url"`` makes it URL."""
    if params.stream:
        return Delivery.SSE_HEX
    return Delivery.URL if params.output_format == "url" else Delivery.INLINE_HEX


SONG = Operation(
    service="minimax", name="song", aliases=("generate", "music"),
    summary="a song from a prompt and lyrics (music-2.6, 2.5+, 2.5, 2.0, -free); hex, SSE or a "
            "link", params=SongParams, paid=True, lane=LaneKind.SUBMIT,
    delivery=Delivery.INLINE_HEX, output=Output.FILE, validate=music.validate_song,
    call=music.song_call, read=answers.read_link, models=(*catalog.SONG_MODELS,))

COVER = Operation(
    service="minimax", name="cover",
    summary="a cover of a reference track (music-cover); hex, SSE or a link",
    params=CoverParams, paid=True, lane=LaneKind.SUBMIT, delivery=Delivery.INLINE_HEX,
    output=Output.FILE, validate=music.validate_cover, call=music.cover_call,
    read=answers.read_link, models=catalog.COVER_MODELS)

COVER_PREPROCESS = Operation(
    service="minimax", name="preprocess-cover", aliases=("cover-preprocess",),
    summary="the first step of a two-step cover: a feature id and the track's lyrics",
    params=CoverPreprocessParams, paid=True, lane=LaneKind.SUBMIT, delivery=Delivery.JSON,
    output=Output.DOCUMENT, validate=music.validate_preprocess, call=music.preprocess_call,
    read=answers.read_features, models=catalog.COVER_MODELS)

LYRICS = Operation(
    service="minimax", name="lyrics",
    summary="lyrics (and a title and style tags) written from an idea, or edited",
    params=LyricsParams, paid=True, lane=LaneKind.SUBMIT, delivery=Delivery.JSON,
    output=Output.DOCUMENT, validate=music.validate_lyrics, call=music.lyrics_call,
    read=answers.read_lyrics)

QUOTA = Operation(
    service="minimax", name="quota",
    summary="what the key's Token Plan still allows, per model (free)",
    params=QuotaParams, paid=False, lane=LaneKind.POLL, delivery=Delivery.JSON,
    output=Output.NOTHING, validate=music.validate_nothing, call=music.quota_call,
    read=answers.read_quota)

register(SONG, COVER, COVER_PREPROCESS, LYRICS, QUOTA)
