"""The parameters of the current MiniMax operations: the job files' fields, the command
line's options and the client methods' arguments, declared once with `param()`."""

from __future__ import annotations

from typing import Any

import attrs

from .._core._models import AudioFormat
from .._core._operation import param
from . import _catalog as catalog

__all__ = ["CoverParams", "CoverPreprocessParams", "LyricsParams", "QuotaParams", "SongParams"]

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
        help=f"style, mood and scene, up to {catalog.MAX_PROMPT} characters; required with "
             "is_instrumental", default=None, max_length=catalog.MAX_PROMPT)
    lyrics: str | None = param(
        help=f"up to {catalog.MAX_LYRICS} characters: lines separated by \\n, sections marked by "
             "the 14 structure tags ([Verse], [Chorus]...); required unless is_instrumental or "
             "lyrics_optimizer", default=None, max_length=catalog.MAX_LYRICS)
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
             f"audio_base64, streamed); {catalog.COVER_RULE}", kind="source", positional=True,
        default=None, wire="audio_url | audio_base64")
    prompt: str = param(help=f"the cover's style, up to {catalog.MAX_PROMPT} characters",
                        max_length=catalog.MAX_PROMPT)
    lyrics: str | None = param(
        help="the cover's lyrics (default: the service transcribes the reference's)",
        default=None, max_length=catalog.MAX_LYRICS)
    cover_feature_id: str | None = param(
        help="instead of source: the id preprocess-cover gave", kind="id", default=None)
    model: str = param(help="music-cover (default) or music-cover-free", kind="choice",
                       choices=catalog.COVER_MODELS, default=catalog.DEFAULT_COVER_MODEL)
    seed: int | None = param(help="0 to 1000000, for reproducible results", kind="int",
                             default=None, minimum=0, maximum=catalog.MAX_SEED)
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
        help=f"the track to cover: an http(s) URL or a local file; {catalog.COVER_RULE}",
        kind="source", positional=True, wire="audio_url | audio_base64")
    model: str = param(help="music-cover (default) or music-cover-free", kind="choice",
                       choices=catalog.COVER_MODELS, default=catalog.DEFAULT_COVER_MODEL)


@attrs.frozen
class LyricsParams:
    """Lyrics written from an idea, or edited (``/v1/lyrics_generation``)."""

    prompt: str | None = param(
        help=f"what the song is about, up to {catalog.MAX_PROMPT} characters (random when empty)",
        default=None, max_length=catalog.MAX_PROMPT, positional=True)
    mode: str = param(help="write_full_song (default) or edit", kind="choice",
                      choices=catalog.LYRICS_MODES, default="write_full_song")
    lyrics: str | None = param(help=f"the lyrics to edit (edit mode), up to "
                                    f"{catalog.MAX_LYRICS} characters", default=None,
                               max_length=catalog.MAX_LYRICS)
    title: str | None = param(help="the song's title (kept as given)", default=None)


@attrs.frozen
class QuotaParams:
    """The key's Token Plan allowance (no parameters)."""
