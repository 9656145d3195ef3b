"""Hypothesis fuzzing of every parser that reads what a service (or a stranger) sends.

Already covered elsewhere, and not repeated here: valid hex documents of any shape and any
chunking against ``json.loads`` + ``unhexlify`` (test_hexstream.py), arbitrary JSON into
``parse_callback`` and the record-info converter (test_callbacks.py, test_converter.py).

Added here:

- the hex scanner on *invalid* input: arbitrary bytes, and valid answers mutated at random,
  judged against ``json.loads`` as the oracle; the outcome never depends on the chunking;
  ``\\u00XX`` escapes anywhere in the hex;
- record-info through the whole pipeline (classifier, then ``parse_record``), with huge,
  non-finite and wrong-typed values;
- callbacks with huge values, and the ASGI receiver fed arbitrary bodies;
- the classifiers, ``Retry-After`` parsing and the other answer parsers on arbitrary input.

The rule everywhere: a model, or a typed :class:`~aiomusic.AiomusicError`; never a raw
``KeyError``/``TypeError``/``ValueError``/``RecursionError`` or a crash.
"""

from __future__ import annotations

import binascii
import contextlib
import json
from collections.abc import Mapping
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from aiomusic import (
    AiomusicError,
    APIError,
    AudioDecodeError,
    MusicSession,
    Purpose,
    ResponseError,
    RetryPolicy,
    SubmissionUnknownError,
    TaskRecord,
    TaskStatus,
)
from aiomusic._core._classify import classify_aimlapi, classify_minimax, classify_suno
from aiomusic._core._retry import MAX_RETRY_AFTER, parse_retry_after
from aiomusic._io._hexstream import HexAudioScanner
from aiomusic.callbacks import CallbackReceiver, parse_callback
from aiomusic.minimax import _protocol as minimax_proto
from aiomusic.suno import _protocol as suno_proto

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies ---------------------------------------------------------------------------------

HUGE_NUMBERS = st.one_of(
    st.integers(min_value=-(10 ** 30), max_value=10 ** 30),
    st.sampled_from([10 ** 15, 10 ** 16, -(10 ** 15), 2 ** 63, 10 ** 400, -(10 ** 400)]),
    st.floats(allow_nan=True, allow_infinity=True),
)
ODD_TEXT = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "null", "1e400", "NaN", "-1", "١٢٣", "²", "9" * 5000,
                     "2025-13-45 25:61:61", "2025-01-01 00:00:00", "1735689600000",
                     "\x00", "\ud7ff", "SUCCESS", "success", "FIRST_SUCCESS"]),
)
SCALARS = st.one_of(st.none(), st.booleans(), HUGE_NUMBERS, ODD_TEXT)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=3),
    max_leaves=12,
)
TRACK_KEYS = ("id", "audioUrl", "audio_url", "streamAudioUrl", "imageUrl", "title", "tags",
              "createTime", "duration", "modelName", "prompt")
TRACK = st.dictionaries(st.sampled_from(TRACK_KEYS), st.one_of(SCALARS, JSON), max_size=8)
RECORD_DATA = st.fixed_dictionaries(
    {},
    optional={
        "taskId": st.one_of(st.just("task-1"), SCALARS),
        "task_id": st.one_of(st.just("task-1"), SCALARS),
        "status": st.one_of(st.sampled_from([s.value for s in TaskStatus]), SCALARS),
        "response": st.one_of(
            JSON, st.fixed_dictionaries({}, optional={
                "taskId": SCALARS,
                "sunoData": st.one_of(st.lists(TRACK, max_size=3), JSON),
                "suno_data": st.one_of(st.lists(TRACK, max_size=3), JSON)})),
        "errorCode": SCALARS,
        "errorMessage": SCALARS,
        "createTime": SCALARS,
        "type": SCALARS,
        "operationType": SCALARS,
        "param": SCALARS,
    },
)
RECORD_BODY = st.fixed_dictionaries(
    {"code": st.one_of(st.just(200), SCALARS)},
    optional={"msg": SCALARS, "data": st.one_of(RECORD_DATA, JSON)},
)
CALLBACK_BODY = st.fixed_dictionaries(
    {"data": st.one_of(JSON, st.fixed_dictionaries(
        {"task_id": st.one_of(st.just("task-1"), SCALARS),
         "callbackType": st.one_of(st.sampled_from(["text", "first", "complete", "error",
                                                    "TEXT"]), SCALARS)},
        optional={"data": st.one_of(st.lists(TRACK, max_size=3), JSON)}))},
    optional={"code": SCALARS, "msg": SCALARS},
)


def json_bytes(value: object) -> bytes:
    """``value`` as JSON, as a service would send it (``Infinity``/``NaN`` included)."""
    return json.dumps(value).encode()


# -- the hex scanner on invalid input ----------------------------------------------------------


def scan(body: bytes, cuts: list[int]) -> tuple[bytes, dict[str, Any]] | type[ResponseError]:
    """Audio and document, or the class of the typed error, for ``body`` cut at ``cuts``."""
    scanner = HexAudioScanner()
    out: list[bytes] = []
    start = 0
    try:
        for stop in [*sorted({c for c in cuts if 0 < c < len(body)}), len(body)]:
            out.append(scanner.feed(body[start:stop]))
            start = stop
        return b"".join(out), scanner.close()
    except ResponseError as exc:  # AudioDecodeError included
        return type(exc)


@FUZZ
@given(body=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=20))
@example(body=b'{"data":{"audio":"0', cuts=[])
@example(body=b'{"data":{"audio":"\\u00', cuts=[20])
@example(body=b'{"data":{"audio":"0"}}', cuts=[1, 2, 3])
@example(body=b'\xef\xbb\xbf{"data":{"audio":"00"}}', cuts=[])
def test_scanner_on_arbitrary_bytes_gives_a_document_or_a_typed_error(body: bytes,
                                                                      cuts: list[int]) -> None:
    outcome = scan(body, cuts)
    assert outcome == scan(body, []), "the outcome depends on how the body was cut"


VALID = st.builds(
    lambda audio, extra: json.dumps({"data": {"audio": audio.hex(), "status": 2}, **extra}),
    st.binary(max_size=40),
    st.dictionaries(st.sampled_from(["trace_id", "extra_info", "base_resp"]), JSON, max_size=2),
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    body = bytearray(draw(VALID).encode())
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(body)))
        action = draw(st.sampled_from(["cut", "insert", "delete", "replace"]))
        byte = draw(st.one_of(st.sampled_from(list(b'"\\{}[]:,0aZ \x00\xff')),
                              st.integers(0, 255)))
        if action == "cut":
            del body[where:]
        elif action == "insert":
            body[where:where] = bytes([byte])
        elif action == "delete":
            del body[where:where + 1]
        elif where < len(body):
            body[where] = byte
    return bytes(body)


def duplicates_on_path(body: bytes) -> bool:
    """Whether ``data`` (top level) or ``audio`` (inside ``data``) appears twice."""
    found = False

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal found
        keys = [k for k, _ in pairs]
        if keys.count("data") > 1 or keys.count("audio") > 1:
            found = True
        return dict(pairs)

    json.loads(body, object_pairs_hook=hook)
    return found


def is_hex(text: str) -> bool:
    try:
        binascii.unhexlify(text)
    except (binascii.Error, ValueError):
        return False
    return True


@FUZZ
@given(body=mutated(), cuts=st.lists(st.integers(0, 400), max_size=10))
def test_scanner_on_mutated_answers_agrees_with_json_loads(body: bytes, cuts: list[int]) -> None:
    outcome = scan(body, cuts)
    try:
        expected = json.loads(body)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        assert outcome in (ResponseError, AudioDecodeError), outcome
        return
    if not isinstance(expected, dict):
        assert outcome is ResponseError
        return
    data = expected.get("data")
    target = data.get("audio") if isinstance(data, dict) else None
    if isinstance(target, str) and not is_hex(target):
        assert outcome is AudioDecodeError
        return
    if isinstance(outcome, type):
        # json.loads keeps the last of two equal keys silently; the scanner refuses them
        assert outcome is ResponseError and duplicates_on_path(body), outcome
        return
    audio, document = outcome
    if isinstance(target, str):
        assert audio == binascii.unhexlify(target)
        expected["data"]["audio"] = ""
    else:
        assert audio == b""
    assert document == expected


@st.composite
def escaped_hex(draw: st.DrawFn) -> tuple[bytes, bytes]:
    audio = draw(st.binary(min_size=1, max_size=60))
    digits = []
    for char in audio.hex():
        style = draw(st.sampled_from(["plain", "upper", "escape", "ESCAPE"]))
        if style == "plain":
            digits.append(char)
        elif style == "upper":
            digits.append(char.upper())
        else:
            code = f"{ord(char):04x}"
            digits.append("\\u" + (code.upper() if style == "ESCAPE" else code))
    return ('{"data":{"audio":"' + "".join(digits) + '","status":2}}').encode(), audio


@FUZZ
@given(case=escaped_hex(), cuts=st.lists(st.integers(0, 800), max_size=30))
def test_json_escapes_of_hex_digits_decode_anywhere(case: tuple[bytes, bytes],
                                                    cuts: list[int]) -> None:
    body, audio = case
    outcome = scan(body, cuts)
    assert not isinstance(outcome, type), outcome
    assert outcome[0] == audio == binascii.unhexlify(json.loads(body)["data"]["audio"])


# -- record-info through the whole pipeline ---------------------------------------------------


def read_record(body: object, task_id: str = "task-1") -> TaskRecord:
    """What ``SunoTask.refresh`` does with an answer: classify it, then parse the record."""
    return suno_proto.parse_record(classify_suno(200, {}, body), task_id=task_id)


def check_record(record: TaskRecord) -> None:
    assert record.task_id == "task-1"
    assert isinstance(record.status, TaskStatus)
    assert all(t.id for t in record.tracks)
    for track in record.tracks:
        assert track.duration is None or isinstance(track.duration, float)


@FUZZ
@given(body=st.one_of(RECORD_BODY, JSON))
def test_record_info_gives_a_record_or_a_typed_error(body: object) -> None:
    for form in (body, json.loads(json_bytes(body))):
        try:
            record = read_record(form)
        except (APIError, ResponseError):
            continue
        check_record(record)


@FUZZ
@given(raw=st.binary(max_size=200))
def test_record_info_from_raw_bytes(raw: bytes) -> None:
    try:
        body: object = json.loads(raw)
    except ValueError:
        return  # the session's JSON reader refuses it first (ResponseError)
    with contextlib.suppress(APIError, ResponseError):
        check_record(read_record(body))


# -- callbacks: huge values, and the receiver on arbitrary bodies ------------------------------


@FUZZ
@given(body=CALLBACK_BODY)
def test_callback_with_huge_and_odd_values(body: dict[str, Any]) -> None:
    for form in (body, json_bytes(body)):
        try:
            event = parse_callback(form)
        except ResponseError:
            continue
        assert event.task_id
        assert all(t.id for t in event.tracks)


TOKEN = "fuzz-token-0123456789abcdef"


async def post(receiver: CallbackReceiver, path: str, body: bytes) -> int:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver),
                                 base_url="http://testserver") as client:
        return (await client.post(path, content=body)).status_code


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies=st.lists(st.one_of(st.binary(max_size=3000), CALLBACK_BODY.map(json_bytes)),
                       min_size=1, max_size=5),
       paths=st.lists(st.sampled_from([f"/{TOKEN}", f"/{TOKEN}/", "/", f"/{TOKEN}x",
                                       f"/{TOKEN[:-1]}", "/x/" + TOKEN]), min_size=5,
                      max_size=5))
def test_receiver_answers_every_body_without_raising(bodies: list[bytes],
                                                     paths: list[str]) -> None:
    receiver = CallbackReceiver(TOKEN, max_body_bytes=2048)

    async def main() -> list[int]:
        return [await post(receiver, path, body) for body, path in zip(bodies, paths,
                                                                        strict=False)]

    statuses = anyio.run(main)
    assert set(statuses) <= {200, 400, 404, 413}
    for status, path, body in zip(statuses, paths, bodies, strict=False):
        if path.strip("/") != TOKEN:
            assert status == 404
        elif len(body) > 2048:
            assert status == 413
    assert receiver.accepted + receiver.ignored + receiver.refused == len(statuses)


# -- the classifiers, Retry-After, and the other answer parsers --------------------------------

HEADERS = st.dictionaries(
    st.sampled_from(["retry-after", "Retry-After", "retry-after-ms", "trace-id", "Trace-Id",
                     "x-request-id", "content-type"]),
    st.one_of(ODD_TEXT, st.sampled_from(["Wed, 21 Oct 2015 07:28:00 GMT", "1e400", "-5",
                                         "Mon, 01 Jan 99999 00:00:00 GMT", "inf", "nan"])),
    max_size=3)


@FUZZ
@given(status=st.integers(100, 599), headers=HEADERS,
       body=st.one_of(JSON, RECORD_BODY, st.fixed_dictionaries(
           {"base_resp": st.one_of(JSON, st.fixed_dictionaries(
               {"status_code": SCALARS, "status_msg": SCALARS}))})))
def test_classifiers_give_the_body_or_a_typed_error(status: int, headers: dict[str, str],
                                                    body: object) -> None:
    for classify in (classify_aimlapi, classify_minimax, classify_suno):
        refusal: APIError | None = None
        try:
            result = classify(status, headers, body)
        except APIError as exc:
            refusal = exc
        except ResponseError:
            continue
        if refusal is not None:
            assert refusal.retry_after is None or 0 <= refusal.retry_after <= MAX_RETRY_AFTER
        else:
            assert isinstance(result, Mapping)


@FUZZ
@given(headers=HEADERS)
def test_retry_after_is_none_or_a_bounded_wait(headers: dict[str, str]) -> None:
    wait = parse_retry_after(headers)
    assert wait is None or 0.0 <= wait <= MAX_RETRY_AFTER


PARSERS = [
    pytest.param(suno_proto.parse_submission, id="suno-submission"),
    pytest.param(suno_proto.parse_credits, id="suno-credits"),
    pytest.param(suno_proto.parse_upload, id="suno-upload"),
    pytest.param(lambda body: minimax_proto.parse_upload(body, Purpose.SONG),
                 id="minimax-upload"),
    pytest.param(minimax_proto.check_generation, id="minimax-generation"),
]


@pytest.mark.parametrize("parse", PARSERS)
@FUZZ
@given(body=st.dictionaries(st.sampled_from(["data", "success", "msg", "voice_id",
                                             "instrumental_id", "trace_id", "extra_info",
                                             "code"]), st.one_of(JSON, RECORD_DATA),
                            max_size=4))
def test_answer_parsers_give_a_model_or_a_typed_error(parse: Any, body: dict[str, Any]
                                                      ) -> None:
    assume(body)
    with contextlib.suppress(AiomusicError):
        parse(body)


# -- answers nested too deeply for json.loads --------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(("paid", "expected"), [(False, ResponseError),
                                                (True, SubmissionUnknownError)])
async def test_deeply_nested_answer_is_a_typed_error(paid: bool,
                                                     expected: type[AiomusicError]) -> None:
    """Regression: ``json.loads`` raises ``RecursionError`` (not ``ValueError``) on deep
    nesting, which escaped the session raw."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000)

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with MusicSession(suno_key="sk-deep-0123456789", http_client=client,
                            retry=RetryPolicy.never()) as s:
        call = s.suno.add_instrumental("https://cdn.example/a.mp3", title="t", tags="t",
                                       negative_tags="t", callback_url="https://e.x/c") \
            if paid else s.suno.get_credits()
        with pytest.raises(expected):
            await call
    await client.aclose()
