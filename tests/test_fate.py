"""The fate of a paid request: the pure model by table, and every wire shape that reaches it.

Issue 15, "What was found": an HTML 502 or 504 (or a 500) answering a paid MiniMax generate,
``stream()`` or Suno add-instrumental was re-sent 6 times; a 200 with an HTML page, an empty
body or a body shorter than its ``Content-Length`` raised a plain ``ResponseError``. Each is now
*fate unknown*: `SubmissionUnknownError`, sent exactly once, trace id kept where there is one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from aiomusic import (
    AiomusicError,
    AudioDecodeError,
    ConnectionFailedError,
    MusicSession,
    ResponseError,
    RetryPolicy,
    SubmissionUnknownError,
    TransportError,
)
from aiomusic._core._classify import classify_aimlapi, classify_minimax, classify_suno
from aiomusic._core._fate import Fate, fate_of, fate_of_transport, retried, trace_of, unknown

from .hostile_server import html, json_answer, raw, serve_hostile

pytestmark = pytest.mark.anyio
FAST = RetryPolicy(base_delay=0, max_delay=0, maintenance_delay=0)
GENERATE = "/v2/generate/audio/minimax/generate"
SUBMIT = "/api/v1/generate/add-instrumental"


def classified(classify: Any, status: int, body: object = None,
               headers: Mapping[str, str] | None = None) -> AiomusicError:
    try:
        classify(status, headers or {}, body)
    except AiomusicError as exc:
        return exc
    raise AssertionError("the answer was classified as a success")


def minimax(code: int, message: str = "failed") -> AiomusicError:
    return classified(classify_minimax, 200, {"base_resp": {"status_code": code,
                                                            "status_msg": message}})


def suno(code: int) -> AiomusicError:
    return classified(classify_suno, 200, {"code": code, "msg": "no", "data": None})


def aiml(status: int, body: object = None, headers: Mapping[str, str] | None = None
         ) -> AiomusicError:
    return classified(classify_aimlapi, status, body, headers)


ENVELOPE = {"message": "Service unavailable", "statusCode": 503}
REFUSED, RETRY = Fate.REFUSED, True

#: (error, fate, retried automatically)
TABLE = [
    pytest.param(None, Fate.TAKEN, False, id="success"),
    pytest.param(ConnectionFailedError("x", operation="o"), Fate.NOT_SENT, True, id="connect"),
    pytest.param(TransportError("x", operation="o"), Fate.UNKNOWN, False, id="transport"),
    pytest.param(SubmissionUnknownError("x", operation="o", reason="r"), Fate.UNKNOWN, False,
                 id="unknown"),
    pytest.param(ResponseError("not JSON"), Fate.UNKNOWN, False, id="unreadable"),
    pytest.param(AudioDecodeError("bad hex"), Fate.FAILED_AFTER_TAKEN, False, id="bad-hex"),
    pytest.param(OSError(28, "No space left"), Fate.FAILED_AFTER_TAKEN, False, id="disk"),
    pytest.param(KeyboardInterrupt(), Fate.UNKNOWN, False, id="interrupted"),
    # the AI/ML API: HTTP statuses
    pytest.param(aiml(429, {"message": "Too Many Requests"}), REFUSED, RETRY, id="aiml-429"),
    pytest.param(aiml(500, {"message": "Model is under maintenance"}), REFUSED, RETRY,
                 id="aiml-500-maintenance"),
    pytest.param(aiml(500, {"message": "Internal error"}), Fate.UNKNOWN, False, id="aiml-500"),
    pytest.param(aiml(502), Fate.UNKNOWN, False, id="aiml-502-html"),
    pytest.param(aiml(503, ENVELOPE), REFUSED, RETRY, id="aiml-503-refusal"),
    pytest.param(aiml(503), Fate.UNKNOWN, False, id="aiml-503-html"),
    pytest.param(aiml(503, headers={"Retry-After": "3"}), REFUSED, RETRY,
                 id="aiml-503-retry-after"),
    pytest.param(aiml(504, {"message": "Generation timeout"}), Fate.UNKNOWN, False,
                 id="aiml-504"),
    pytest.param(aiml(408), Fate.UNKNOWN, False, id="aiml-408"),
    pytest.param(aiml(400, {"message": "Body validation error!"}), REFUSED, False,
                 id="aiml-400"),
    pytest.param(aiml(401), REFUSED, False, id="aiml-401"),
    pytest.param(aiml(403), REFUSED, False, id="aiml-403-credits"),
    pytest.param(aiml(418), REFUSED, False, id="aiml-418"),
    pytest.param(aiml(302), Fate.UNKNOWN, False, id="aiml-302"),
    pytest.param(classified(classify_aimlapi, 200, {"base_resp": {"status_code": 1024}}),
                 Fate.UNKNOWN, False, id="aiml-code-1024"),
    # MiniMax: base_resp codes
    *[pytest.param(minimax(code), REFUSED, RETRY, id=f"minimax-{code}")
      for code in (1002, 1039, 1041, 2045)],
    pytest.param(minimax(1000, "service under maintenance, please retry later"), REFUSED,
                 RETRY, id="minimax-1000-maintenance"),
    *[pytest.param(minimax(code), Fate.UNKNOWN, False, id=f"minimax-{code}")
      for code in (1000, 1001, 1024, 1033)],
    *[pytest.param(minimax(code), REFUSED, False, id=f"minimax-{code}")
      for code in (1004, 1008, 1026, 1042, 2013, 2044, 2049, 2056)],
    pytest.param(minimax(1027), Fate.FAILED_AFTER_TAKEN, False, id="minimax-1027-output"),
    pytest.param(minimax(4321), Fate.FAILED_AFTER_TAKEN, False, id="minimax-unknown-code"),
    pytest.param(classified(classify_minimax, 500, None), Fate.UNKNOWN, False,
                 id="minimax-http-500"),
    # Suno: body codes
    *[pytest.param(suno(code), REFUSED, RETRY, id=f"suno-{code}") for code in (405, 430, 455)],
    *[pytest.param(suno(code), REFUSED, False, id=f"suno-{code}")
      for code in (400, 401, 404, 413, 429, 451)],
    pytest.param(suno(500), Fate.UNKNOWN, False, id="suno-500"),
    pytest.param(suno(531), Fate.UNKNOWN, False, id="suno-531"),
    pytest.param(suno(503), REFUSED, RETRY, id="suno-503-refusal"),
    pytest.param(classified(classify_suno, 502, None), Fate.UNKNOWN, False, id="suno-502-html"),
]


@pytest.mark.parametrize(("error", "fate", "again"), TABLE)
def test_fate_table(error: BaseException | None, fate: Fate, again: bool) -> None:
    assert fate_of(error) is fate
    if isinstance(error, AiomusicError):
        assert retried(fate, error) is again


@pytest.mark.parametrize(("exc", "fate"), [
    pytest.param(httpx.ConnectError("refused"), Fate.NOT_SENT, id="connect"),
    pytest.param(httpx.ConnectTimeout("slow"), Fate.NOT_SENT, id="connect-timeout"),
    pytest.param(httpx.PoolTimeout("busy"), Fate.NOT_SENT, id="pool"),
    pytest.param(httpx.WriteError("broken pipe"), Fate.NOT_SENT, id="write"),
    pytest.param(httpx.ReadTimeout("slow"), Fate.UNKNOWN, id="read-timeout"),
    pytest.param(httpx.RemoteProtocolError("cut"), Fate.UNKNOWN, id="cut"),
    pytest.param(httpx.ReadError("reset"), Fate.UNKNOWN, id="reset"),
])
def test_fate_of_transport(exc: httpx.HTTPError, fate: Fate) -> None:
    assert fate_of_transport(exc) is fate


def test_what_each_fate_says_about_charges() -> None:
    assert [f.charged for f in Fate] == [False, False, True, True, None]


def test_unknown_keeps_the_trace_id_and_an_unknown_as_it_is() -> None:
    error = unknown("minimax.generate", minimax(1024), task_id="t-1")
    assert error.trace_id is None and error.task_id == "t-1" and error.reason == "server error"
    traced = unknown("op", ResponseError("cut", trace_id="tr-9"))
    assert traced.trace_id == "tr-9" and "tr-9" in str(traced)
    assert traced.reason == "malformed answer"
    assert unknown("op", traced) is traced
    assert trace_of(None, {"x-request-id": "rq-1"}) == "rq-1"
    assert trace_of(None, {}) is None


# -- the wire shapes, against a hostile server of our own ------------------------------------

AUDIO_JSON = json.dumps({"data": {"audio": "0011", "status": 2}, "trace_id": "tr-ok",
                         "base_resp": {"status_code": 0}}).encode()
SHAPES = [
    pytest.param(html("502 Bad Gateway"), id="html-502"),
    pytest.param(html("504 Gateway Timeout"), id="html-504"),
    pytest.param(html("500 Internal Server Error"), id="html-500"),
    pytest.param(json_answer("500 Internal Server Error", '{"message": "Internal error"}'),
                 id="json-500"),
    pytest.param(html("200 OK"), id="html-200"),
    pytest.param(raw("200 OK", b""), id="empty-200"),
    pytest.param(raw("200 OK", AUDIO_JSON, length=len(AUDIO_JSON) // 2),
                 id="short-content-length"),
]


def session(url: str) -> MusicSession:
    return MusicSession(aimlapi_key="sk-fate-test-key", suno_key="sk-fate-test-key",
                        base_url=url, retry=FAST, suno_callback_url="https://cb.invalid/x")


@pytest.mark.parametrize("answer", SHAPES)
async def test_generate_is_sent_once_and_unknown(tmp_path: Path, answer: bytes) -> None:
    with serve_hostile(lambda _path, _body: answer) as server:
        async with session(server.url) as s:
            with pytest.raises(SubmissionUnknownError):
                await s.minimax.generate(tmp_path / "x.mp3", lyrics="la", refer_voice="v")
        assert server.requests[GENERATE] == 1
    assert list(tmp_path.iterdir()) == []


async def listen(s: MusicSession) -> None:
    async with s.minimax.stream(lyrics="la", refer_voice="v") as audio:
        async for _chunk in audio:
            pass


@pytest.mark.parametrize("answer", SHAPES)
async def test_stream_is_sent_once_and_unknown(answer: bytes) -> None:
    with serve_hostile(lambda _path, _body: answer) as server:
        async with session(server.url) as s:
            with pytest.raises(SubmissionUnknownError):
                await listen(s)
        assert server.requests[GENERATE] == 1


@pytest.mark.parametrize("answer", SHAPES)
async def test_suno_submission_is_sent_once_and_unknown(answer: bytes) -> None:
    with serve_hostile(lambda _path, _body: answer) as server:
        async with session(server.url) as s:
            with pytest.raises(SubmissionUnknownError):
                await s.suno.add_instrumental("https://example.com/v.mp3", title="t",
                                              tags="piano", negative_tags="metal")
        assert server.requests[SUBMIT] == 1


async def test_a_submission_without_a_task_id_is_unknown_with_its_trace() -> None:
    answer = raw("200 OK", b'{"code": 200, "msg": "success", "data": {}}',
                 extra="X-Request-Id: rq-77\r\n")
    with serve_hostile(lambda _path, _body: answer) as server:
        async with session(server.url) as s:
            with pytest.raises(SubmissionUnknownError) as caught:
                await s.suno.add_instrumental("https://example.com/v.mp3", title="t",
                                              tags="piano", negative_tags="metal")
        assert server.requests[SUBMIT] == 1
    assert caught.value.trace_id == "rq-77"


async def test_a_refusal_in_the_services_words_is_retried(tmp_path: Path) -> None:
    answers = [json_answer("503 Service Unavailable", json.dumps(ENVELOPE)),
               raw("200 OK", AUDIO_JSON)]
    with serve_hostile(lambda _path, _body: answers.pop(0)) as server:
        async with session(server.url) as s:
            result = await s.minimax.generate(tmp_path / "x.mp3", lyrics="la",
                                              refer_voice="v")
        assert server.requests[GENERATE] == 2
    assert result.bytes_written == 2 and result.trace_id == "tr-ok"


async def test_invalid_audio_is_failed_after_taken_not_retried(tmp_path: Path) -> None:
    bad = AUDIO_JSON.replace(b'"0011"', b'"00zz"')
    with serve_hostile(lambda _path, _body: raw("200 OK", bad)) as server:
        async with session(server.url) as s:
            with pytest.raises(AudioDecodeError) as caught:
                await s.minimax.generate(tmp_path / "x.mp3", lyrics="la", refer_voice="v")
        assert server.requests[GENERATE] == 1
    assert caught.value.retryable is False


async def test_a_free_call_still_retries_an_unreadable_answer() -> None:
    answers = [html("502 Bad Gateway"), raw("200 OK", b'{"code": 200, "data": 42}')]
    with serve_hostile(lambda _path, _body: answers.pop(0)) as server, anyio.fail_after(30):
        async with session(server.url) as s:
            assert await s.suno.get_credits() == 42
        assert server.requests["/api/v1/generate/credit"] == 2


DOCS = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
_CODES = re.compile(r"(HTTP )?(\d{3,4}(, \d{3,4})*)")


def test_the_docs_fate_table_matches_the_model() -> None:
    text = DOCS.read_text(encoding="utf-8")
    table = text[text.index("## Paid requests"):text.index("## Service codes")]
    build = {"AI/ML API": lambda code: aiml(code, {"message": "no"}), "MiniMax": minimax,
             "Suno": suno}
    checked = 0
    for row in table.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        plain = _CODES.fullmatch(cells[1]) if len(cells) == 5 else None
        if plain is None or cells[0] not in build:
            continue
        for code in map(int, plain[2].split(", ")):
            error = build[cells[0]](code)
            assert fate_of(error).value == cells[2], (row, code)
            assert retried(fate_of(error), error) is cells[3].startswith("yes"), (row, code)
            checked += 1
    assert checked >= 30
