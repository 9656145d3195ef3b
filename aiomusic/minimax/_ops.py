"""MiniMax's operations, declared once (see ``aiomusic._core._operation``)."""

from __future__ import annotations

from pathlib import Path

import attrs

from .._core._call import Call
from .._core._config import LaneKind
from .._core._models import BITRATES, SAMPLE_RATES, AudioFormat, AudioSetting
from .._core._operation import Checks, Context, Delivery, Operation, Output, param, register
from . import _protocol as proto

__all__ = ["MUSIC_01", "Music01Params"]


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
