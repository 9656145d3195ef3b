"""Hypothesis on every reader issue 16 touched: a verified result or a typed error, flat memory.

What ``test_fuzz.py`` already covers (the hex scanner, record-info and callbacks on arbitrary
JSON, the classifiers on arbitrary bodies) is not repeated. Added here:

- the bounded JSON reader fed arbitrary documents, in every encoding JSON allows, compressed
  with any chain of gzip / deflate / br (or an encoding it cannot undo), cut into arbitrary
  chunks, judged against ``json.loads`` as the oracle; compression bombs with memory measured;
- numbers sent as strings: a code or a field spelled ``"1027"`` classifies and structures
  exactly as ``1027`` does (a metamorphic property, over every classifier and model);
- the callback parser on raw bytes in any JSON encoding;
- the download handler fed arbitrary bodies, chunkings, encodings, types and lengths (true or
  lying): the file is written only when it is the decoded body, starts like audio and has the
  announced length; otherwise a typed error and nothing left behind.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import json
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import brotli
import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aiomusic import (
    AiomusicError,
    CallbackEvent,
    DownloadError,
    EncodingError,
    JsonError,
    JsonLimits,
    MusicSession,
    ResponseError,
    RetryPolicy,
    TaskRecord,
    Track,
)
from aiomusic._core._classify import classify_aimlapi, classify_minimax, classify_suno
from aiomusic._core._converter import structure
from aiomusic._core._json import read_json
from aiomusic._core._models import ExtraInfo, UploadedFile
from aiomusic._io._names import sniff_media
from aiomusic.callbacks import parse_callback

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SMALL = JsonLimits(max_bytes=4096, max_depth=8)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=30)
ENCODINGS = st.lists(st.sampled_from(["gzip", "deflate", "br", "identity"]), max_size=3)
PACK: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress,
    "identity": bytes}


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


class Pieces(httpx.AsyncByteStream):
    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece


def packed(raw: bytes, encodings: list[str]) -> tuple[bytes, str]:
    body = raw
    for name in encodings:
        body = PACK[name](body)
    return body, ", ".join(encodings)


def depth(node: object) -> int:
    if isinstance(node, dict):
        return 1 + max((depth(v) for v in node.values()), default=0)
    if isinstance(node, list):
        return 1 + max((depth(v) for v in node), default=0)
    return 0


def read(body: bytes, encoding: str, cuts: list[int], limits: JsonLimits) -> object:
    headers = {"Content-Encoding": encoding} if encoding else {}
    answer = httpx.Response(200, headers=headers, stream=Pieces(chunks(body, cuts)))
    return anyio.run(lambda: read_json(answer, limits=limits))


# -- the bounded reader -----------------------------------------------------------------------


@FUZZ
@given(document=JSON, codec=st.sampled_from(["utf-8", "utf-16", "utf-32", "utf-8-sig"]),
       encodings=ENCODINGS, cuts=st.lists(st.integers(min_value=0), max_size=6))
@example(document=[[[[[[[[[[1]]]]]]]]]], codec="utf-8", encodings=[], cuts=[])
@example(document={"a": "x" * 5000}, codec="utf-8", encodings=["gzip", "br"], cuts=[3])
def test_the_reader_agrees_with_json_loads_whatever_the_wire(
        document: object, codec: str, encodings: list[str], cuts: list[int]) -> None:
    raw = json.dumps(document, ensure_ascii=False).encode(codec)
    body, encoding = packed(raw, encodings)
    try:
        got = read(body, encoding, cuts, SMALL)
    except JsonError as exc:
        if exc.reason == "too large":
            assert len(raw) > SMALL.max_bytes
        elif exc.reason == "too deep":
            assert depth(document) > SMALL.max_depth
        else:  # a byte-order mark JSON does not allow (json.loads refuses utf-8-sig bytes)
            assert codec == "utf-8-sig"
        return
    assert len(raw) <= SMALL.max_bytes and depth(document) <= SMALL.max_depth
    assert got == json.loads(raw)


@FUZZ
@given(raw=st.binary(max_size=600), encoding=st.sampled_from(
    ["", "gzip", "deflate", "br", "zstd", "gzip, br", "x-gzip", "compress"]),
    cuts=st.lists(st.integers(min_value=0), max_size=5))
def test_arbitrary_bytes_are_json_or_a_typed_error(raw: bytes, encoding: str,
                                                   cuts: list[int]) -> None:
    try:
        got = read(raw, encoding, cuts, SMALL)
    except (JsonError, EncodingError):
        return
    assert got == json.loads(raw if not encoding else _undo(raw, encoding))


def _undo(body: bytes, encoding: str) -> bytes:
    for name in reversed([n.strip() for n in encoding.split(",")]):
        if name in ("gzip", "x-gzip"):
            body = gzip.decompress(body)
        elif name == "br":
            body = brotli.decompress(body)
        else:
            try:
                body = zlib.decompress(body)
            except zlib.error:
                body = zlib.decompress(body, -zlib.MAX_WBITS)
    return body


@settings(max_examples=12, deadline=None)
@given(megabytes=st.integers(min_value=2, max_value=48), name=st.sampled_from(["gzip", "br"]),
       nest=st.booleans())
def test_bombs_are_refused_with_flat_memory(megabytes: int, name: str, nest: bool) -> None:
    filler = b"[" * (megabytes << 20) if nest else b" " * (megabytes << 20)
    body = PACK[name](b'{"a": ' + filler)
    del filler
    tracemalloc.start()
    try:
        with pytest.raises(JsonError, match="larger than"):
            read(body, name, [len(body) // 2], JsonLimits())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < (1 << 20) + 4 * (256 << 10) + (1 << 20), f"{peak / 2**20:.1f} MiB"


# -- numbers sent as strings --------------------------------------------------------------------


def outcome(fn: Callable[[], object]) -> object:
    try:
        return ("ok", fn())
    except AiomusicError as exc:
        return ("error", type(exc).__name__, getattr(exc, "provider_code", None))


CODES = st.one_of(st.integers(min_value=-5, max_value=3000),
                  st.sampled_from([0, 200, 405, 429, 430, 455, 1002, 1004, 1008, 1026, 1027,
                                   1042, 2013, 2044, 2049, 2056]))


@FUZZ
@given(code=CODES, status=st.sampled_from([200, 201, 400, 429, 500, 503]),
       spelled=st.sampled_from(["{}", " {} ", "{}.0", "+{}"]))
def test_a_code_spelled_as_a_string_classifies_as_the_number(code: int, status: int,
                                                             spelled: str) -> None:
    text = spelled.format(code)
    if text.startswith("+-"):
        return
    for classify, wrap in ((classify_minimax, lambda c: {"base_resp": {"status_code": c}}),
                           (classify_aimlapi, lambda c: {"base_resp": {"status_code": c}}),
                           (classify_suno, lambda c: {"code": c, "data": {}})):
        as_number = outcome(lambda: classify(status, {}, wrap(code)))  # noqa: B023
        as_text = outcome(lambda: classify(status, {}, wrap(text)))  # noqa: B023
        if isinstance(as_text, tuple) and as_text[0] == "ok":
            as_text = ("ok", {k: (code if v == text else v) for k, v in as_text[1].items()})
            if "base_resp" in as_text[1]:
                as_text = ("ok", wrap(code))
        assert as_text == as_number, (classify.__name__, text)


@FUZZ
@given(code=st.one_of(st.text(max_size=6), st.floats(), st.booleans(), st.lists(st.integers(),
                                                                                max_size=2)),
       status=st.sampled_from([200, 404, 500]))
def test_any_code_gives_the_body_or_a_typed_error(code: object, status: int) -> None:
    for classify, body in ((classify_minimax, {"base_resp": {"status_code": code}}),
                           (classify_suno, {"code": code, "data": None})):
        with contextlib.suppress(AiomusicError):
            assert classify(status, {}, body) is body


FIELDS = st.fixed_dictionaries({
    "duration": st.floats(min_value=0, max_value=1e6, allow_nan=False),
    "error_code": st.integers(min_value=-10**6, max_value=10**6),
    "file_size": st.integers(min_value=0, max_value=10**12),
    "music_size": st.integers(min_value=0, max_value=10**12),
})


@FUZZ
@given(values=FIELDS, pad=st.sampled_from(["{}", " {} ", "{}\n"]))
def test_numbers_as_strings_structure_like_numbers(values: dict[str, Any], pad: str) -> None:
    def models(v: dict[str, Any]) -> tuple[object, ...]:
        record = {"taskId": "t", "status": "SUCCESS", "errorCode": v["error_code"],
                  "response": {"sunoData": [{"id": "a", "duration": v["duration"]}]}}
        callback = {"code": 200, "data": {"callbackType": "complete", "task_id": "t",
                                          "data": [{"id": "a", "duration": v["duration"]}]}}
        return (structure(record, TaskRecord, what="r"),
                structure(callback, CallbackEvent, what="c"),
                structure({"downloadUrl": "https://x.example/a", "fileSize": v["file_size"]},
                          UploadedFile, what="u"),
                structure({"music_size": v["music_size"]}, ExtraInfo, what="e"))

    spelled = {k: pad.format(repr(v) if isinstance(v, float) else v) for k, v in values.items()}
    assert models(spelled) == models(values)


@FUZZ
@given(value=st.one_of(st.text(max_size=12), st.floats(), st.integers(),
                       st.sampled_from(["NaN", "inf", "-Infinity", "1e999", "1_0", "0x10",
                                        "\uff11\uff12", "12.5", "", " "])))
def test_odd_numbers_give_a_model_or_a_typed_error(value: object) -> None:
    record = {"taskId": "t", "status": "SUCCESS", "errorCode": value,
              "response": {"sunoData": [{"id": "a", "duration": value}]}}
    try:
        got = structure(record, TaskRecord, what="r")
    except ResponseError:
        return
    duration = got.tracks[0].duration
    assert duration is None or (isinstance(duration, float) and duration == duration
                                and abs(duration) != float("inf"))


@FUZZ
@given(document=JSON, codec=st.sampled_from(["utf-8", "utf-16", "utf-32"]))
def test_callback_bytes_in_any_json_encoding(document: object, codec: str) -> None:
    body = {"code": 200, "data": {"callbackType": "complete", "task_id": "t",
                                  "data": [{"id": "a", "extra": document}]}}
    raw = json.dumps(body).encode(codec)
    try:
        event = parse_callback(raw)
    except ResponseError:
        assert depth(body) > 64 or len(raw) > 256 * 1024
        return
    assert event.task_id == "t" and event.tracks[0].id == "a"


# -- the download handler -------------------------------------------------------------------------


AUDIO_STARTS = [b"ID3\x04\x00\x00\x00\x00\x00\x00", b"\xff\xfb\x90\x64",
                b"RIFF\x00\x00\x00\x00WAVE", b"fLaC", b"OggS\x00\x02",
                b"\x00\x00\x00\x18ftypmp42"]
BODIES = st.one_of(
    st.tuples(st.sampled_from(AUDIO_STARTS), st.binary(max_size=3000)).map(lambda t: t[0] + t[1]),
    st.binary(max_size=200),
    st.just(b"<!DOCTYPE html><html>denied</html>"),
    st.just(b""))


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=BODIES, encodings=st.lists(st.sampled_from(["gzip", "deflate", "br"]), max_size=2),
       cuts=st.lists(st.integers(min_value=0), max_size=6),
       content_type=st.sampled_from([None, "audio/mpeg", "video/mp4", "text/html",
                                     "application/octet-stream"]),
       length=st.sampled_from(["true", "none", "short", "long"]))
def test_a_download_is_the_verified_track_or_a_typed_error(
        tmp_path_factory: pytest.TempPathFactory, data: bytes, encodings: list[str],
        cuts: list[int], content_type: str | None, length: str) -> None:
    folder = tmp_path_factory.mktemp("dl")
    body, encoding = packed(data, encodings)
    headers = {"Content-Type": content_type} if content_type else {}
    if encoding:
        headers["Content-Encoding"] = encoding
    announced = {"true": len(body), "short": max(0, len(body) - 1), "long": len(body) + 7,
                 "none": None}[length]
    if announced is not None:
        headers["Content-Length"] = str(announced)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=headers, stream=Pieces(chunks(body, cuts)))

    async def run() -> object:
        client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
        async with MusicSession(suno_key="k" * 12, http_client=client,
                                retry=RetryPolicy(max_attempts=2, base_delay=0)) as s:
            try:
                return await s.suno.download(Track(id="t", audio_url="https://cdn.example/t"),
                                             folder / "t.mp3")
            except AiomusicError as exc:
                return exc
            finally:
                await client.aclose()

    got = anyio.run(run)
    honest = (announced is None or announced == len(body)) and data and \
        sniff_media(data[:12]) is not None and content_type != "text/html"
    if isinstance(got, AiomusicError):
        assert isinstance(got, DownloadError), got
        assert list(folder.iterdir()) == []
        assert not honest, got
        return
    assert (folder / "t.mp3").read_bytes() == data and sniff_media(data[:12]) is not None
    assert announced in (None, len(body)) and content_type != "text/html"
    assert [p.name for p in folder.iterdir()] == ["t.mp3"]


def test_the_oracle_helpers_themselves(tmp_path: Path) -> None:
    assert chunks(b"abcdef", [2, 4, 13]) == [b"ab", b"cd", b"ef"]
    assert depth({"a": [1, [2]]}) == 3 and depth(5) == 0
    assert _undo(*packed(b"x", ["gzip", "br", "deflate"])) == b"x"
