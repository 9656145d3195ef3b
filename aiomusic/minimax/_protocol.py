"""Pure request builders, argument checks and answer parsers for MiniMax music-01 (no I/O).

The AI/ML API serves music-01 at ``/v2/generate/audio/minimax/{upload,generate}``; MiniMax's own
hosts at ``/v1/music_upload`` and ``/v1/music_generation``. Both take a multipart upload and a
JSON generation request and answer in MiniMax's envelope (``base_resp``, ``trace_id``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import IO, Any

from .._core._call import Call
from .._core._config import LaneKind, Service
from .._core._converter import optional_int, structure
from .._core._errors import InputError, ResponseError
from .._core._models import AudioSetting, ExtraInfo, Purpose, ReferenceUpload

__all__ = [
    "MAX_LYRICS",
    "MODEL",
    "check_generate",
    "check_generation",
    "generate_call",
    "parse_upload",
    "upload_call",
]

MODEL = "music-01"
#: The AI/ML API documents 600 characters; MiniMax's own CN page says 200 (they disagree, so
#: aiomusic allows 600 and the service's own refusal, code 2013, tells the rest).
MAX_LYRICS = 600

_PATHS = {
    Service.AIMLAPI: ("/v2/generate/audio/minimax/upload", "/v2/generate/audio/minimax/generate"),
    Service.MINIMAX: ("/v1/music_upload", "/v1/music_generation"),
}

_MIME = {"wav": "audio/wav", "mp3": "audio/mpeg"}


def check_purpose(purpose: Purpose | str) -> Purpose:
    """``purpose`` as a [`Purpose`][aiomusic.Purpose], or an [`InputError`][aiomusic.InputError]
    naming the choices."""
    try:
        return Purpose(purpose)
    except ValueError:
        raise InputError(f"purpose must be one of 'song', 'voice', 'instrumental', "
                         f"got {purpose!r}", field="purpose") from None


def upload_call(service: Service, *, purpose: Purpose, file_name: str, audio_format: str,
                opener: Callable[[], AbstractContextManager[IO[bytes]]]) -> Call:
    """The multipart reference upload; ``opener`` gives a fresh readable file per attempt."""

    @contextmanager
    def body() -> Iterator[dict[str, Any]]:
        with opener() as handle:
            yield {"files": {"file": (file_name, handle, _MIME[audio_format])},
                   "data": {"purpose": purpose.value}}

    return Call(service=service, lane=LaneKind.TRANSFER, operation="minimax.upload",
                method="POST", url=_PATHS[service][0], body=body, key=file_name)


def parse_upload(body: Mapping[str, Any], purpose: Purpose) -> ReferenceUpload:
    """The ids of a classified upload answer; a promised id that is missing is an error."""
    voice = body.get("voice_id") or None
    instrumental = body.get("instrumental_id") or None
    result = structure({"purpose": purpose.value, "voice_id": voice,
                        "instrumental_id": instrumental, "trace_id": body.get("trace_id")},
                       ReferenceUpload, what="the upload result")
    wants_voice = purpose in (Purpose.SONG, Purpose.VOICE)
    wants_instrumental = purpose in (Purpose.SONG, Purpose.INSTRUMENTAL)
    missing = [name for name, wanted, got in (("voice_id", wants_voice, result.voice_id),
                                              ("instrumental_id", wants_instrumental,
                                               result.instrumental_id))
               if wanted and not got]
    if missing:
        raise ResponseError(
            f"the upload with purpose {purpose.value!r} succeeded but the answer has no "
            f"{' or '.join(missing)}; the service may not have recognised the "
            f"{'vocals' if 'voice_id' in missing else 'accompaniment'} in the file",
            trace_id=result.trace_id,
        )
    return result


def check_generate(service: Service, *, lyrics: str | None, refer_voice: str | None,
                   refer_instrumental: str | None,
                   audio_setting: AudioSetting | None) -> dict[str, Any]:
    """The JSON body of a generation, after checking every argument (nothing is sent)."""
    refs: tuple[tuple[str, object], ...] = (("refer_voice", refer_voice),
                                             ("refer_instrumental", refer_instrumental))
    for name, value in refs:  # typed as str, but callers' values are checked all the same
        if value is not None and not (isinstance(value, str) and value.strip()):
            raise InputError(f"{name} must be a non-empty id string from upload_reference(), "
                             f"got {value!r}", field=name)
    if not refer_voice and not refer_instrumental:
        raise InputError("give refer_voice and/or refer_instrumental: music-01 needs at least "
                         "one reference id from upload_reference()", field="refer_voice")
    if lyrics is not None and not isinstance(lyrics, str):
        raise InputError(f"lyrics must be a string, got {type(lyrics).__name__}",
                         field="lyrics")
    lyrics_optional = service is Service.MINIMAX and not refer_voice
    if not lyrics or not lyrics.strip():
        if not lyrics_optional:
            raise InputError("lyrics are required (only MiniMax's own host accepts an "
                             "instrumental-only request without them)", field="lyrics")
    elif len(lyrics) > MAX_LYRICS:
        raise InputError(f"lyrics are {len(lyrics)} characters; music-01 takes at most "
                         f"{MAX_LYRICS}", field="lyrics")
    if audio_setting is not None and not isinstance(audio_setting, AudioSetting):
        raise InputError("audio_setting must be an aiomusic.AudioSetting(format=..., "
                         "sample_rate=..., bitrate=...)", field="audio_setting")
    payload: dict[str, Any] = {"model": MODEL}
    if lyrics:
        payload["lyrics"] = lyrics
    if refer_voice:
        payload["refer_voice"] = refer_voice
    if refer_instrumental:
        payload["refer_instrumental"] = refer_instrumental
    if audio_setting is not None:
        payload["audio_setting"] = {"sample_rate": audio_setting.sample_rate,
                                    "bitrate": audio_setting.bitrate,
                                    "format": audio_setting.format.value}
    return payload


def generate_call(service: Service, payload: Mapping[str, Any], *, key: str | None) -> Call:
    """The paid generation request (submit lane; never re-sent blindly)."""
    # identity: the hex is decoded as it streams; compression would only add a layer to undo
    return Call(service=service, lane=LaneKind.SUBMIT, operation="minimax.generate",
                method="POST", url=_PATHS[service][1], json=dict(payload), paid=True, key=key,
                headers={"Accept-Encoding": "identity"})


def check_generation(document: Mapping[str, Any]) -> tuple[ExtraInfo, str | None]:
    """``extra_info`` and ``trace_id`` of a classified answer, once its status says completed.

    Called before a file is committed, so an unfinished answer never becomes a file.
    """
    data = document.get("data")
    status = data.get("status") if isinstance(data, Mapping) else None
    trace_id = document.get("trace_id")
    trace = trace_id if isinstance(trace_id, str) else None
    try:
        completed = optional_int(status) == 2  # 2 or "2": servers send either
    except ValueError:
        completed = False
    if not completed:
        raise ResponseError(
            f"the generation answer has data.status {status!r} instead of 2 (completed); "
            "the audio is not final", trace_id=trace,
        )
    raw_extra = document.get("extra_info")
    extra = structure(raw_extra, ExtraInfo, what="extra_info") if isinstance(
        raw_extra, Mapping) else ExtraInfo()
    return extra, trace
