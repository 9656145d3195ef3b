"""The current MiniMax models, pure: the model table, every check, the bodies and the readers."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import anyio
import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiomusic import APIError, InputError, PermissionDeniedError, ResponseError, UsageLimitError
from aiomusic._core._classify import classify_minimax
from aiomusic._core._config import LaneKind, Service
from aiomusic._core._operation import Checks, Context, Delivery, Output, find, operations
from aiomusic._io import _b64json
from aiomusic.minimax import _catalog as catalog
from aiomusic.minimax import _music_answers as answers
from aiomusic.minimax._ops import (
    COVER,
    COVER_PREPROCESS,
    LYRICS,
    QUOTA,
    SONG,
    CoverParams,
    CoverPreprocessParams,
    LyricsParams,
    QuotaParams,
    SongParams,
    delivery_of,
)
from aiomusic.minimax._results import Quota

CTX = Context(service=Service.MINIMAX)
LYRICS_TEXT = "[Verse]\nStreetlights hum\n[Chorus]\nWe run"


def problems(op: Any, params: Any) -> dict[str | None, str]:
    checks = Checks()
    op.validate(params, checks)
    return {p.field: p.message for p in checks.problems}


@pytest.fixture
def forget_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog, "_warned", set())


# -- the model table ----------------------------------------------------------------------------


def test_the_table_knows_the_documented_models() -> None:
    assert catalog.SONG_MODELS == ("music-2.6", "music-2.6-free", "music-2.5+", "music-2.5",
                                   "music-2.0")
    assert catalog.COVER_MODELS == ("music-cover", "music-cover-free")
    assert [m for m in catalog.MODELS if catalog.MODELS[m].free] == ["music-2.6-free",
                                                                     "music-cover-free"]
    assert not catalog.MODELS["music-2.5"].instrumental
    assert (catalog.MODELS["music-2.0"].lyrics_max, catalog.MODELS["music-2.0"].prompt_min) == (
        3000, 10)
    assert len(catalog.STRUCTURE_TAGS) == 14


@pytest.mark.usefixtures("forget_warnings")
@pytest.mark.parametrize(("model", "kind", "free"), [
    pytest.param("music-3.0", "song", False, id="music-3.0"),
    pytest.param("music-3.0-free", "song", True, id="music-3.0-free"),
    pytest.param("music-cover-2", "cover", False, id="future-cover"),
])
def test_unknown_models_pass_through_with_one_warning(
        model: str, kind: str, free: bool, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aiomusic"):
        spec = catalog.spec(model)
        assert catalog.spec(model) == spec
    assert (spec.kind, spec.free, spec.documented, spec.prompt_max) == (kind, free, False, None)
    assert [r.getMessage() for r in caplog.records if model in r.getMessage()] == [
        f"MiniMax model {model!r} is not one aiomusic knows ({', '.join(catalog.MODELS)}): it is "
        "sent as it is, and its limits are left to the service"]


@pytest.mark.usefixtures("forget_warnings")
def test_an_unknown_model_is_sent_unchecked_in_its_lane() -> None:
    params = SongParams(model="music-3.0-free", prompt="p" * 5000, lyrics="[Verse 1]\nla")
    assert problems(SONG, params) == {}
    call = SONG.call(params, CTX)
    assert (call.lane, call.json["model"]) == (LaneKind.FREE, "music-3.0-free")


def test_unknown_tags_are_the_bracketed_lines_the_service_would_sing() -> None:
    lyrics = "[Intro]\n[verse]\n[ Pre Chorus ]\n[Verse 1]\nla [not a tag] la\n[Chorus - soft]"
    assert catalog.unknown_tags(lyrics) == ["[Verse 1]", "[Chorus - soft]"]


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({}, {}, id="valid"),
    pytest.param({"lyrics": None}, {"lyrics": "are required unless is_instrumental or "
                                              "lyrics_optimizer is set"}, id="no-lyrics"),
    pytest.param({"prompt": "p" * 2001}, {"prompt": "must be at most 2000 characters, got 2001"},
                 id="long-prompt"),
    pytest.param({"lyrics": "l" * 3501}, {"lyrics": "must be at most 3500 characters, got 3501"},
                 id="long-lyrics"),
    pytest.param({"model": "music-2.0", "lyrics": "l" * 3001, "prompt": "short"},
                 {"lyrics": "must be at most 3000 characters, got 3001",
                  "prompt": "must be at least 10 characters, got 5"}, id="music-2.0-limits"),
    pytest.param({"is_instrumental": True}, {
        "is_instrumental": "cannot be combined with lyrics (an instrumental has no lyrics)"},
        id="instrumental-with-lyrics"),
    pytest.param({"is_instrumental": True, "lyrics": None, "prompt": None},
                 {"prompt": "is required with is_instrumental: the style is all the service "
                            "has to go by"}, id="instrumental-needs-a-prompt"),
    pytest.param({"lyrics_optimizer": True}, {
        "lyrics_optimizer": "cannot be combined with lyrics (the optimizer writes the lyrics)"},
        id="optimizer-with-lyrics"),
    pytest.param({"lyrics_optimizer": True, "is_instrumental": True, "lyrics": None},
                 {"lyrics_optimizer": "cannot be combined with is_instrumental (an instrumental "
                                      "has no lyrics)"}, id="optimizer-with-instrumental"),
    pytest.param({"model": "music-2.5", "is_instrumental": True, "lyrics": None},
                 {"is_instrumental": "music-2.5 does not take is_instrumental: write [Inst] "
                                     "sections, or use music-2.5+ or music-2.6"},
                 id="2.5-has-no-instrumental"),
    pytest.param({"model": "music-2.0", "lyrics_optimizer": True, "lyrics": None,
                  "prompt": "a long enough prompt"},
                 {"lyrics_optimizer": "music-2.0 does not take lyrics_optimizer: write the "
                                      "lyrics"}, id="2.0-has-no-optimizer"),
    pytest.param({"lyrics": "[Verse 1]\nla"}, {"lyrics": (
        "[Verse 1]: not a structure tag, so the service would sing it (use only "
        + ", ".join(f"[{t}]" for t in catalog.STRUCTURE_TAGS) + ", or drop the brackets)")},
        id="sung-tag"),
    pytest.param({"model": "music-cover"}, {"cover_feature_id": (
        "music-cover covers a track: give the id of preprocess-cover, or use the cover "
        "operation")}, id="cover-model-without-a-feature"),
    pytest.param({"model": "music-cover-free", "cover_feature_id": "f-1"}, {},
                 id="cover-model-with-a-feature"),
    pytest.param({"model": ""}, {"model": (
        "must be one of " + ", ".join((*catalog.SONG_MODELS, *catalog.COVER_MODELS))
        + ", got ''")}, id="blank-model"),
    pytest.param({"sample_rate": 48000, "bitrate": 320000, "channel": 3, "format": "ogg"}, {
        "format": "must be one of mp3, wav, pcm, got 'ogg'",
        "sample_rate": "must be one of 16000, 24000, 32000, 44100, got 48000",
        "bitrate": "must be one of 32000, 64000, 128000, 256000, got 320000",
        "channel": "must be one of 1, 2, got 3"}, id="audio-setting"),
    pytest.param({"stream": True, "output_format": "url"}, {"output_format": (
        "url cannot be streamed: with stream the audio arrives as hex events (leave "
        "output_format as hex)")}, id="stream-needs-hex"),
    pytest.param({"output_format": "link"}, {"output_format": "must be one of hex, url, got "
                                                              "'link'"}, id="output-format"),
])
def test_song_checks_report_every_problem(changes: dict[str, Any],
                                          expected: dict[str, str]) -> None:
    params = attrs.evolve(SongParams(prompt="indie folk, warm", lyrics=LYRICS_TEXT), **changes)
    assert problems(SONG, params) == expected


def test_every_problem_of_a_song_is_raised_at_once() -> None:
    params = SongParams(prompt="p" * 2001, lyrics="l" * 3501, channel=5)
    with pytest.raises(InputError, match=r"^prompt: must be at most 2000 .* \(and 2 more "
                                         r"problems\)$") as info:
        SONG.check(params)
    assert [p.field for p in info.value.problems] == ["prompt", "lyrics", "channel"]


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({}, {}, id="url"),
    pytest.param({"source": "song.mp3"}, {}, id="local-file"),
    pytest.param({"source": b"bytes"}, {}, id="bytes"),
    pytest.param({"source": None, "cover_feature_id": "f-1"}, {}, id="feature-id"),
    pytest.param({"source": None, "cover_feature_id": "f-1", "model": "music-2.6"}, {},
                 id="feature-id-with-music-2.6"),
    pytest.param({"model": "music-2.6"}, {"model": (
        "music-2.6 is not a cover model: use music-cover or music-cover-free (or give "
        "cover_feature_id)")}, id="song-model"),
    pytest.param({"source": None}, {"source": "is required: the track to cover (or give "
                                              "cover_feature_id)"}, id="nothing-to-cover"),
    pytest.param({"cover_feature_id": "f-1"}, {"cover_feature_id": (
        "cannot be combined with source (the feature id already stands for a preprocessed "
        "track)")}, id="both"),
    pytest.param({"source": "ftp://example.com/a.mp3"}, {"source": (
        "must be an http(s) URL or a local file, got 'ftp://example.com/a.mp3'")}, id="ftp"),
    pytest.param({"source": ""}, {"source": (
        "must be an http(s) URL or a local file (mp3, wav or flac, 6 s to 6 min, at most "
        "50 MB), got ''")}, id="empty"),
    pytest.param({"source": 12}, {"source": (
        "must be an http(s) URL or a local file (mp3, wav or flac, 6 s to 6 min, at most "
        "50 MB), got 12")}, id="number"),
    pytest.param({"prompt": ""}, {"prompt": "is required and must not be empty"},
                 id="no-prompt"),
    pytest.param({"seed": 1_000_001}, {"seed": "must be from 0 to 1e+06, got 1000001"},
                 id="seed"),
    pytest.param({"lyrics": "[Verso]\nla"}, {"lyrics": (
        "[Verso]: not a structure tag, so the service would sing it (use only "
        + ", ".join(f"[{t}]" for t in catalog.STRUCTURE_TAGS) + ", or drop the brackets)")},
        id="sung-tag"),
])
def test_cover_checks(changes: dict[str, Any], expected: dict[str, str]) -> None:
    params = attrs.evolve(CoverParams(source="https://example.com/song.mp3", prompt="jazz"),
                          **changes)
    assert problems(COVER, params) == expected


@pytest.mark.parametrize(("params", "expected"), [
    pytest.param(LyricsParams(prompt="summer"), {}, id="write"),
    pytest.param(LyricsParams(), {}, id="write-random"),
    pytest.param(LyricsParams(mode="edit", lyrics="la"), {}, id="edit"),
    pytest.param(LyricsParams(mode="edit"), {"lyrics": "is required"}, id="edit-needs-lyrics"),
    pytest.param(LyricsParams(lyrics="la"), {"lyrics": (
        "are for mode edit; write_full_song writes them from the prompt")}, id="write-no-lyrics"),
    pytest.param(LyricsParams(mode="rewrite"), {"mode": (
        "must be one of write_full_song, edit, got 'rewrite'")}, id="mode"),
    pytest.param(LyricsParams(prompt="p" * 2001), {"prompt": (
        "must be at most 2000 characters, got 2001")}, id="long-prompt"),
])
def test_lyrics_checks(params: LyricsParams, expected: dict[str, str]) -> None:
    assert problems(LYRICS, params) == expected


def test_preprocess_and_quota_checks() -> None:
    assert problems(COVER_PREPROCESS, CoverPreprocessParams(source="a.wav")) == {}
    assert problems(COVER_PREPROCESS, CoverPreprocessParams(source=None)) == {
        "source": "must be an http(s) URL or a local file (mp3, wav or flac, 6 s to 6 min, at "
                  "most 50 MB), got None"}
    assert problems(QUOTA, QuotaParams()) == {}


# -- the declarations ---------------------------------------------------------------------------


def test_the_declarations_are_registered_with_their_patterns() -> None:
    minimax = {op.name: op for op in operations("minimax")}
    assert set(minimax) == {"music-01", "song", "cover", "preprocess-cover", "lyrics", "quota"}
    assert find("minimax", "generate") is SONG
    assert find("minimax", "cover-preprocess") is COVER_PREPROCESS
    assert [(op.paid, op.delivery, op.output) for op in (SONG, COVER, COVER_PREPROCESS, LYRICS,
                                                          QUOTA)] == [
        (True, Delivery.INLINE_HEX, Output.FILE), (True, Delivery.INLINE_HEX, Output.FILE),
        (True, Delivery.JSON, Output.DOCUMENT), (True, Delivery.JSON, Output.DOCUMENT),
        (False, Delivery.JSON, Output.NOTHING)]


@pytest.mark.parametrize(("changes", "delivery"), [
    pytest.param({}, Delivery.INLINE_HEX, id="hex"),
    pytest.param({"stream": True}, Delivery.SSE_HEX, id="stream"),
    pytest.param({"output_format": "url"}, Delivery.URL, id="url"),
])
def test_delivery_of_the_variants(changes: dict[str, Any], delivery: Delivery) -> None:
    assert delivery_of(SongParams(lyrics="la", **changes)) is delivery
    assert delivery_of(CoverParams(source="a.mp3", prompt="p", **changes)) is delivery


# -- requests -----------------------------------------------------------------------------------


def test_song_body_sends_only_what_was_given() -> None:
    call = SONG.call(SongParams(prompt="indie folk", lyrics=LYRICS_TEXT, channel=1,
                                aigc_watermark=True), CTX)
    assert call.json == {
        "model": "music-2.6", "prompt": "indie folk", "lyrics": LYRICS_TEXT,
        "audio_setting": {"format": "mp3", "sample_rate": 44100, "bitrate": 256000,
                          "channel": 1},
        "output_format": "hex", "stream": False, "aigc_watermark": True}
    assert (call.service, call.lane, call.url, call.method, call.paid) == (
        Service.MINIMAX, LaneKind.SUBMIT, "/v1/music_generation", "POST", True)
    assert call.headers == {"Accept-Encoding": "identity"}


def test_a_streamed_song_asks_for_events_and_hex() -> None:
    call = SONG.call(SongParams(prompt="p", is_instrumental=True, stream=True,
                                model="music-2.6-free", cover_feature_id="f-9"), CTX)
    assert call.json["stream"] is True
    assert call.json["output_format"] == "hex"
    assert call.json["is_instrumental"] is True
    assert call.json["cover_feature_id"] == "f-9"
    assert "lyrics" not in call.json
    assert call.headers == {"Accept-Encoding": "identity", "Accept": "text/event-stream"}
    assert call.lane is LaneKind.FREE


def test_cover_by_feature_id() -> None:
    call = COVER.call(CoverParams(cover_feature_id="f-1", prompt="jazz", stream=True), CTX)
    assert (call.json["cover_feature_id"], call.json["stream"]) == ("f-1", True)
    assert "audio_url" not in call.json


def test_cover_by_url_is_plain_json() -> None:
    call = COVER.call(CoverParams(source="https://example.com/a.mp3", prompt="jazz", seed=0,
                                  lyrics="[Verse]\nla", output_format="url"), CTX)
    assert call.json == {
        "model": "music-cover", "prompt": "jazz", "lyrics": "[Verse]\nla", "seed": 0,
        "audio_url": "https://example.com/a.mp3",
        "audio_setting": {"format": "mp3", "sample_rate": 44100, "bitrate": 256000},
        "output_format": "url", "stream": False}


async def _body_of(call: Any) -> bytes:
    with call.body() as extra:
        return b"".join([piece async for piece in extra["content"]])


@pytest.mark.anyio
async def test_cover_of_a_local_file_streams_its_base64_inside_the_json(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000 + b"tail"  # 1,280,004 bytes: several chunks, padding
    path = tmp_path / "ref.mp3"
    path.write_bytes(data)
    call = COVER.call(CoverParams(source=path, prompt='say "hi"', model="music-cover-free"), CTX)
    assert call.json is None
    assert call.lane is LaneKind.FREE
    body = await _body_of(call)
    assert call.headers is not None
    assert int(call.headers["Content-Length"]) == len(body)
    assert call.headers["Content-Type"] == "application/json"
    document = json.loads(body)
    assert base64.b64decode(document.pop("audio_base64")) == data
    assert document == {"model": "music-cover-free", "prompt": 'say "hi"', "audio_setting": {
        "format": "mp3", "sample_rate": 44100, "bitrate": 256000}, "output_format": "hex",
        "stream": False}
    assert await _body_of(call) == body  # each attempt re-reads the file


@pytest.mark.anyio
async def test_preprocess_calls(tmp_path: Path) -> None:
    by_url = COVER_PREPROCESS.call(CoverPreprocessParams(source="https://x.test/a.mp3"), CTX)
    assert by_url.json == {"model": "music-cover", "audio_url": "https://x.test/a.mp3"}
    assert (by_url.url, by_url.paid, by_url.operation) == (
        "/v1/music_cover_preprocess", True, "minimax.preprocess_cover")
    path = tmp_path / "a.wav"
    path.write_bytes(b"RIFF")
    local = COVER_PREPROCESS.call(CoverPreprocessParams(source=path,
                                                        model="music-cover-free"), CTX)
    assert json.loads(await _body_of(local)) == {"model": "music-cover-free",
                                                 "audio_base64": "UklGRg=="}
    assert local.lane is LaneKind.FREE


def test_lyrics_and_quota_calls() -> None:
    call = LYRICS.call(LyricsParams(mode="edit", lyrics="la", title="T"), CTX)
    assert (call.url, call.json, call.paid) == ("/v1/lyrics_generation",
                                                {"mode": "edit", "lyrics": "la", "title": "T"},
                                                True)
    quota = QUOTA.call(QuotaParams(), CTX)
    assert (quota.method, quota.url, quota.paid, quota.lane) == (
        "GET", "/v1/token_plan/remains", False, LaneKind.POLL)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=3000), chunk=st.integers(min_value=1, max_value=50),
       prompt=st.text(max_size=30))
def test_base64_body_is_the_json_with_the_file_inside(data: bytes, chunk: int,
                                                      prompt: str) -> None:
    @contextlib.contextmanager
    def opener() -> Iterator[IO[bytes]]:
        yield _Trickle(data, chunk)

    document = {"prompt": prompt + "aiomusic-base64-goes-here", "n": 1}
    factory, length = _b64json.base64_json(document, "audio_base64", opener, len(data))

    async def body() -> bytes:
        with factory() as extra:
            return b"".join([piece async for piece in extra["content"]])

    out = anyio.run(body)
    assert len(out) == length
    assert json.loads(out) == {**document, "audio_base64": base64.b64encode(data).decode()}


class _Trickle(io.BytesIO):
    """A file that hands out at most ``chunk`` bytes per read (short reads)."""

    def __init__(self, data: bytes, chunk: int) -> None:
        super().__init__(data)
        self._chunk = chunk

    def read(self, size: int | None = -1) -> bytes:
        return super().read(self._chunk if size is None or size < 0 else min(size, self._chunk))


@pytest.mark.anyio
async def test_a_file_that_shrank_since_it_was_measured_is_refused() -> None:
    @contextlib.contextmanager
    def opener() -> Iterator[IO[bytes]]:
        yield io.BytesIO(b"abc")

    factory, _ = _b64json.base64_json({}, "audio_base64", opener, 10)
    with factory() as extra, pytest.raises(InputError, match="ended 7 bytes early"):
        async for _ in extra["content"]:
            pass


# -- answers ------------------------------------------------------------------------------------

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
OK = {"status_code": 0, "status_msg": "success"}


def _link_answer(data: dict[str, Any]) -> dict[str, Any]:
    return {"data": data, "trace_id": "t-1", "base_resp": OK,
            "extra_info": {"music_duration": 25364, "music_size": 813651}}


@pytest.mark.parametrize(("data", "url", "expires"), [
    pytest.param({"audio": "https://cdn.test/a.mp3", "status": 2}, "https://cdn.test/a.mp3",
                 NOW + dt.timedelta(hours=24), id="data.audio"),
    pytest.param({"audio_url": "https://cdn.test/b.mp3", "status": 2},
                 "https://cdn.test/b.mp3", NOW + dt.timedelta(hours=24), id="data.audio_url"),
    pytest.param({"audio": "", "audio_url": "https://cdn.test/b.mp3", "status": 2},
                 "https://cdn.test/b.mp3", NOW + dt.timedelta(hours=24), id="both"),
    pytest.param({"audio": "https://oss.test/c.mp3?Expires=1796112000&Signature=x", "status": 2},
                 "https://oss.test/c.mp3?Expires=1796112000&Signature=x",
                 dt.datetime.fromtimestamp(1796112000, tz=dt.UTC), id="oss-expires"),
    pytest.param({"audio": "https://s3.test/d?X-Amz-Date=20261130T113000Z&X-Amz-Expires=3600",
                  "status": 2},
                 "https://s3.test/d?X-Amz-Date=20261130T113000Z&X-Amz-Expires=3600",
                 dt.datetime(2026, 11, 30, 12, 30, tzinfo=dt.UTC), id="s3-expires"),
    pytest.param({"audio": "https://oss.test/e?Expires=soon", "status": 2},
                 "https://oss.test/e?Expires=soon", NOW + dt.timedelta(hours=24),
                 id="unreadable-expiry"),
])
def test_links_are_read_from_either_key(data: dict[str, Any], url: str,
                                        expires: dt.datetime) -> None:
    link = answers.read_link(_link_answer(data), model="music-2.6", now=NOW)
    assert (link.url, link.expires_at, link.model, link.trace_id) == (url, expires, "music-2.6",
                                                                      "t-1")
    assert link.extra_info.size == 813651
    assert url not in repr(link)  # a signed link is a secret until it expires
    assert link.expired(now=expires) and not link.expired(now=NOW)


@pytest.mark.parametrize(("data", "message"), [
    pytest.param({"audio": "", "status": 2}, r"no http\(s\) link", id="empty"),
    pytest.param({"audio": "ftp://x/a.mp3", "status": 2}, r"no http\(s\) link", id="ftp"),
    pytest.param({"audio": "https:///a.mp3", "status": 2}, r"no http\(s\) link",
                 id="no-host"),
    pytest.param({"audio": "http://exa\x00mple/a", "status": 2}, r"no http\(s\) link",
                 id="unparsable"),
    pytest.param({"audio": "https://cdn.test/a.mp3", "status": 1}, "instead of 2",
                 id="unfinished"),
])
def test_a_link_answer_without_a_link_is_an_error(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ResponseError, match=message):
        answers.read_link(_link_answer(data))


def test_lyrics_answers() -> None:
    lyrics = answers.read_lyrics({"song_title": "Neon", "style_tags": "synthwave, warm ,, 90 bpm",
                                  "lyrics": "[Verse]\nla", "trace_id": "t"})
    assert (lyrics.title, lyrics.style_tags, lyrics.style, lyrics.trace_id) == (
        "Neon", ("synthwave", "warm", "90 bpm"), "synthwave, warm, 90 bpm", "t")
    listed = answers.read_lyrics({"title": "X", "style_tags": ["a", 3, "b"], "lyrics": "la"})
    assert (listed.title, listed.style_tags) == ("X", ("a", "b"))
    assert answers.read_lyrics({"lyrics": "la"}).style_tags == ()
    with pytest.raises(ResponseError, match="no lyrics"):
        answers.read_lyrics({"song_title": "Neon", "lyrics": ""})


@pytest.mark.parametrize(("body", "lyrics", "duration"), [
    pytest.param({"cover_feature_id": "f-1", "formatted_lyrics": "[Verse]\nheard",
                  "structure_result": "v-c", "audio_duration": 61.5}, "[Verse]\nheard", 61.5,
                 id="formatted_lyrics"),
    pytest.param({"cover_feature_id": "f-1", "lyrics": "heard"}, "heard", None, id="lyrics"),
    pytest.param({"data": {"cover_feature_id": "f-1", "lyrics": "heard",
                           "audio_duration": "61"}}, "heard", None, id="nested"),
])
def test_preprocess_answers(body: dict[str, Any], lyrics: str, duration: float | None) -> None:
    features = answers.read_features(body)
    assert (features.feature_id, features.lyrics, features.duration) == ("f-1", lyrics, duration)
    with pytest.raises(ResponseError, match="no cover_feature_id"):
        answers.read_features({"formatted_lyrics": "x"})


def test_quota_answers() -> None:
    quota = answers.read_quota({"model_remains": [
        {"model_name": "music-2.6", "current_interval_total_count": 100,
         "current_interval_usage_count": 40.0, "start_time": 1796000000000,
         "end_time": 1796018000000, "current_weekly_total_count": 500,
         "current_weekly_usage_count": 480},
        {"model_name": "music-cover", "current_interval_total_count": 10,
         "current_interval_usage_count": 12}], "trace_id": "t"})
    first, second = quota.models
    assert (first.remaining, second.remaining) == (20, 0)  # the weekly cap binds first
    assert first.interval_end == dt.datetime.fromtimestamp(1796018000, tz=dt.UTC)
    assert second.weekly_total is None
    assert quota.for_model("music-2.6") is first
    assert quota.for_model("music-cover-free") is second
    assert quota.for_model("music-2.0") is None
    assert answers.read_quota({"model_remains": []}) == Quota(models=())


@pytest.mark.parametrize(("body", "message"), [
    pytest.param({}, "no model_remains list", id="missing"),
    pytest.param({"model_remains": [{"current_interval_total_count": 1}]}, "without model_name",
                 id="no-name"),
    pytest.param({"model_remains": [{"model_name": "m", "current_interval_total_count": -1,
                                     "current_interval_usage_count": 0}]}, "not a count",
                 id="negative"),
    pytest.param({"model_remains": [{"model_name": "m", "current_interval_total_count": 1,
                                     "current_interval_usage_count": True}]}, "not a count",
                 id="bool"),
    pytest.param({"model_remains": [{"model_name": "m", "current_interval_total_count": 1,
                                     "current_interval_usage_count": 0,
                                     "end_time": "tomorrow"}]}, "not a time", id="time"),
])
def test_unreadable_quota_answers(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ResponseError, match=message):
        answers.read_quota(body)


@pytest.mark.parametrize(("code", "error", "advice"), [
    pytest.param(1028, UsageLimitError, "session.minimax.quota()", id="1028"),
    pytest.param(1030, UsageLimitError, "use a -free model meanwhile", id="1030"),
    pytest.param(2061, PermissionDeniedError, "need the Max plan", id="2061"),
])
def test_plan_codes_are_typed_with_what_to_do(code: int, error: type[APIError],
                                              advice: str) -> None:
    with pytest.raises(error, match=re.escape(advice)) as info:
        classify_minimax(200, {}, {"base_resp": {"status_code": code, "status_msg": "no"}})
    assert info.value.retryable is False
    assert info.value.provider_code == code
