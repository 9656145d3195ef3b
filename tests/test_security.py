"""Security: keys never leak, file names stay in their folder, downloads obey the URL rules,
the callback receiver lets no stranger in, and nothing is deserialised unsafely.

Already covered elsewhere, and not repeated here: a 401 that echoes the key (test_session.py),
``AIOMUSIC_LOG=debug`` in a fresh process (test_log.py), the basic URL and file-name tables,
redirects to plain http, redirect loops, wrong content types and size caps
(test_suno_download.py), and the receiver's 404/405/400/413 answers (test_callbacks.py).
"""

from __future__ import annotations

import ast
import hmac
import json
import logging
import os
import traceback
import unicodedata
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aiomusic import (
    AiomusicError,
    AuthenticationError,
    DeadlineExceededError,
    DownloadError,
    Event,
    MusicSession,
    ResponseError,
    RetryPolicy,
    ServerError,
    SubmissionUnknownError,
    TaskFailedError,
    TaskResult,
    TaskStatus,
    Track,
)
from aiomusic._core._call import without_key
from aiomusic._io._download import MAX_REDIRECTS, check_download_url, safe_filename
from aiomusic.callbacks import CallbackReceiver, parse_callback
from aiomusic.suno import PollSchedule

from .reliability_helpers import REFERENCE, STEM, SUNO_ARGS

pytestmark = pytest.mark.anyio
KEY = "sk-SECRET-echo-0123456789abcdef"
NEVER = PollSchedule(initial=3600, maximum=3600, jitter=0)
PACKAGE = Path(__file__).resolve().parent.parent / "aiomusic"
#: An MP3 by its first bytes (an ID3 tag): downloads refuse what does not start like audio.
AUDIO = b"ID3\x04\x00\x00\x00\x00\x00\x00" + (bytes(range(256)) * 16)[10:]

# -- keys never leak, even from a server that echoes them back --------------------------------


def bearer(request: httpx.Request) -> str:
    """What the server saw: the key (or nothing, for a download)."""
    return str(request.headers.get("authorization", "")).removeprefix("Bearer ")


def echoing(answer: Callable[[httpx.Request, str], httpx.Response]
            ) -> Callable[[httpx.Request], httpx.Response]:
    """A server that answers ``answer(request, key)`` and also puts the key in every id
    header it sends, as a reflecting proxy might."""

    def respond(request: httpx.Request) -> httpx.Response:
        key = bearer(request)
        response = answer(request, key)
        for name in ("x-request-id", "trace-id"):
            response.headers[name] = key or "none"
        return response

    return respond


def suno_body(code: int, data: Any, msg: str = "ok") -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": data}


def streamed(status: int, body: dict[str, Any]) -> httpx.Response:
    """A JSON answer as a server streams it (``json=`` would give a response already read)."""
    return httpx.Response(status, stream=httpx.ByteStream(json.dumps(body).encode()),
                          headers={"content-type": "application/json"})


Action = Callable[[MusicSession, Path], Any]

#: (service answer, call, expected error); every answer puts the caller's key in what a
#: service uses for diagnostics: messages, trace and request ids, error fields, bad values.
LEAKS: list[Any] = [
    pytest.param(
        lambda r, k: httpx.Response(200, json=suno_body(401, None, f"invalid key {k}")),
        lambda s, d: s.suno.get_credits(), AuthenticationError, id="suno-401-in-body"),
    pytest.param(
        lambda r, k: httpx.Response(500, text=f"<html>upstream said Bearer {k}</html>"),
        lambda s, d: s.suno.get_credits(), ServerError, id="suno-500-html"),
    pytest.param(
        lambda r, k: httpx.Response(200, json=suno_body(200, k)),
        lambda s, d: s.suno.get_credits(), ResponseError, id="suno-credits-value"),
    pytest.param(
        lambda r, k: httpx.Response(200, json=suno_body(200, {"taskId": None, "why": k})),
        lambda s, d: s.suno.add_instrumental("https://cdn.example/a.mp3", **SUNO_ARGS),
        SubmissionUnknownError, id="suno-submission-without-id"),
    pytest.param(
        lambda r, k: httpx.Response(200, json=suno_body(200, {
            "taskId": "t-1", "status": "GENERATE_AUDIO_FAILED", "errorCode": 501,
            "errorMessage": f"failed for {k}"})),
        lambda s, d: s.suno.task("t-1").wait(timeout=10), TaskFailedError,
        id="suno-task-failed-message"),
    pytest.param(
        lambda r, k: httpx.Response(200, json=suno_body(200, {
            "taskId": "t-1", "status": "SUCCESS", "errorCode": k, "createTime": k})),
        lambda s, d: s.suno.task("t-1").refresh(), ResponseError,
        id="suno-record-bad-values"),
    pytest.param(
        lambda r, k: httpx.Response(200, json={"success": False, "code": 200, "msg": k}),
        lambda s, d: s.suno.upload(STEM), ResponseError, id="suno-upload-refused"),
    pytest.param(
        lambda r, k: httpx.Response(401, json={"message": f"bad {k}", "requestId": k}),
        lambda s, d: s.minimax.upload_reference(REFERENCE, purpose="voice"),
        AuthenticationError, id="aimlapi-401"),
    pytest.param(
        lambda r, k: httpx.Response(200, json={
            "trace_id": k, "base_resp": {"status_code": 1004, "status_msg": f"bad key {k}"}}),
        lambda s, d: s.minimax.upload_reference(REFERENCE, purpose="voice"),
        AuthenticationError, id="minimax-1004-upload"),
    pytest.param(
        lambda r, k: httpx.Response(200, json={
            "voice_id": "", "trace_id": k, "base_resp": {"status_code": 0}}),
        lambda s, d: s.minimax.upload_reference(REFERENCE, purpose="voice"),
        ResponseError, id="minimax-upload-without-id"),
    pytest.param(
        lambda r, k: httpx.Response(401, json={"message": f"bad {k}", "requestId": k}),
        lambda s, d: s.minimax.generate(d / "a.mp3", lyrics="la", refer_voice="v"),
        AuthenticationError, id="generate-401"),
    pytest.param(
        lambda r, k: streamed(200, {
            "data": {"audio": "", "status": 1}, "trace_id": k,
            "base_resp": {"status_code": 1004, "status_msg": f"bad key {k}"}}),
        lambda s, d: s.minimax.generate(d / "a.mp3", lyrics="la", refer_voice="v"),
        AuthenticationError, id="generate-1004"),
    pytest.param(
        lambda r, k: streamed(200, {
            "data": {"audio": "00", "status": k}, "trace_id": k,
            "extra_info": {"music_size": k}, "base_resp": {"status_code": 0}}),
        lambda s, d: s.minimax.generate(d / "a.mp3", lyrics="la", refer_voice="v"),
        SubmissionUnknownError, id="generate-bad-values"),
]


def everything(error: BaseException, *others: object) -> list[str]:
    """Every text a user could see of an error: message, repr, attributes, traceback."""
    texts = [str(error), repr(error), repr(error.args), repr(vars(error)),
             "".join(traceback.format_exception(error))]
    return texts + [repr(o) for o in others]


@pytest.mark.parametrize(("answer", "action", "expected"), LEAKS)
async def test_an_echoed_key_appears_nowhere(caplog: pytest.LogCaptureFixture, tmp_path: Path,
                                             answer: Any, action: Action,
                                             expected: type[AiomusicError]) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: aiomusic, httpx, httpcore
    events: list[Event] = []
    client = httpx.AsyncClient(transport=httpx.MockTransport(echoing(answer)))
    session = MusicSession(aimlapi_key=KEY, minimax_key=KEY, suno_key=KEY,
                           http_client=client, retry=RetryPolicy.never(),
                           suno_callback_url="https://example.com/cb", on_event=events.append)
    async with session as s:
        with pytest.raises(AiomusicError) as caught:
            await action(s, tmp_path)
    await client.aclose()
    assert type(caught.value) is expected
    assert "-> " in caplog.text and events  # the debug log and the events were captured
    texts = [*everything(caught.value, session, *events), caplog.text]
    leaks = [text for text in texts if KEY in text]
    assert leaks == []


async def test_a_key_echoed_in_another_json_spelling_is_caught_too() -> None:
    slashed = "sk/with/slashes-0123456789"

    def answer(request: httpx.Request) -> httpx.Response:
        escaped = bearer(request).replace("/", "\\/")  # as PHP's json_encode writes it
        return httpx.Response(200, content=b'{"code": 401, "msg": "bad key %s"}'
                              % escaped.encode(), headers={"x-request-id": bearer(request)})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with MusicSession(suno_key=slashed, http_client=client) as s:
        with pytest.raises(AuthenticationError) as caught:
            await s.suno.get_credits()
    await client.aclose()
    assert caught.value.provider_message == "bad key ***"
    assert caught.value.trace_id == "***"
    assert not [text for text in everything(caught.value) if slashed in text]


def test_echo_removal_rewrites_strings_and_names_but_not_placeholder_keys() -> None:
    def response(key: str, **kw: Any) -> httpx.Response:
        request = httpx.Request("GET", "https://x.example/",
                                headers={"Authorization": f"Bearer {key}"})
        return httpx.Response(200, request=request, **kw)

    body = {"a": [KEY, {f"{KEY}-field": 1}], "n": 3, "none": None, "t": f"is {KEY}."}
    got, headers = without_key(response(KEY, headers={"x-request-id": KEY}), body)
    assert got == {"a": ["***", {"***-field": 1}], "n": 3, "none": None, "t": "is ***."}
    assert headers["x-request-id"] == "***"
    assert without_key(response(KEY), f"x{KEY}")[0] == "x***"
    # a placeholder such as "k" (tests, examples) is left alone: it would corrupt the answer
    untouched = {"taskId": "k", "title": "rock"}
    assert without_key(response("k"), untouched)[0] == {"taskId": "k", "title": "rock"}


async def test_keys_are_sent_only_to_their_own_service(tmp_path: Path) -> None:
    """Each service gets its own key, and a download (a third-party CDN) gets none."""
    seen: list[tuple[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, bearer(request)))
        if request.url.path.endswith("/credit"):
            return httpx.Response(200, json=suno_body(200, 5))
        if request.url.path.endswith("/upload"):
            return httpx.Response(200, json={"voice_id": "vocal-1", "base_resp": {
                "status_code": 0}})
        return httpx.Response(200, content=AUDIO, headers={"content-type": "audio/mpeg"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with MusicSession(aimlapi_key="sk-aiml", suno_key="sk-suno", http_client=client,
                            retry=RetryPolicy.never()) as s:
        await s.suno.get_credits()
        await s.minimax.upload_reference(REFERENCE, purpose="voice")
        await s.suno.download(Track(id="t", audio_url="https://cdn.example/t.mp3"),
                              tmp_path / "t.mp3")
    await client.aclose()
    assert seen == [("api.sunoapi.org", "sk-suno"), ("api.aimlapi.com", "sk-aiml"),
                    ("cdn.example", "")]


# -- file names made from hostile titles and ids -----------------------------------------------

#: As ``pathlib.PureWindowsPath.is_reserved`` of Python 3.12 judges them.
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
                     *(f"COM{i}" for i in "123456789\u00b9\u00b2\u00b3"),
                     *(f"LPT{i}" for i in "123456789\u00b9\u00b2\u00b3")}


def assert_safe(name: str, *, max_length: int = 120) -> None:
    assert name and name not in (".", "..")
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not any(unicodedata.category(c).startswith("C") for c in name)
    assert not any(c in '<>:"|?*' for c in name)
    assert len(name.encode()) <= max_length
    assert name == name.strip(" .")
    assert name.split(".")[0].upper().rstrip(" ") not in _WINDOWS_RESERVED
    assert not os.path.isabs(name)


@settings(max_examples=300, deadline=None)
@given(title=st.text(max_size=300))
@example(title="../../../etc/passwd")
@example(title="/etc/passwd")
@example(title="C:\\Windows\\system32")
@example(title="\\\\server\\share")
@example(title="a\x00b")
@example(title="NUL")
@example(title="nul.mp3")
@example(title="CON .mp3")  # regression: Windows ignores the space before the extension
@example(title="COM\u00b9.wav")  # regression: superscript digits are reserved too
@example(title="LPT9")
@example(title="CONIN$")
@example(title=".")
@example(title="..")
@example(title=" . ")
@example(title="é" * 500)
@example(title="\U0001f3b5" * 100)
@example(title="\u202e3pm.exe")
@example(title="a\u0301" * 200)
def test_safe_filename_gives_one_harmless_component(title: str) -> None:
    name = safe_filename(title)
    assert_safe(name)
    folder = Path("/music/out")
    assert (folder / name).resolve().parent == folder.resolve()


HOSTILE = [
    ("../../escape", "../../id"),
    ("/etc/passwd", "/abs"),
    ("CON", "NUL"),
    ("a\x00b\x1f\x7f", "i\x00d"),
    ("x" * 400, "y" * 400),
    ("..", ".."),
]


async def test_download_all_keeps_hostile_titles_and_ids_inside_the_folder(tmp_path: Path
                                                                           ) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=AUDIO, headers={"content-type": "audio/mpeg"})

    folder = tmp_path / "out"
    folder.mkdir()
    tracks = tuple(Track(id=track_id, title=title, audio_url=f"https://cdn.example/{i}.mp3")
                   for i, (title, track_id) in enumerate(HOSTILE))
    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with MusicSession(suno_key=KEY, http_client=client) as s:
        files = await s.suno.download_all(TaskResult(task_id="../task", tracks=tracks), folder)
    await client.aclose()
    assert len(files) == len(HOSTILE) == len({f.path for f in files})
    for file in files:
        assert file.path.parent == folder
        assert_safe(file.path.name, max_length=120 + len(".mp3"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing escaped
    assert len(list(folder.iterdir())) == len(HOSTILE)


# -- download rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "ok"), [
    pytest.param("HTTPS://CDN.EXAMPLE/A.MP3", True, id="upper-case-https"),
    pytest.param("http://LOCALHOST:8000/a.mp3", True, id="allowed-host-any-case"),
    pytest.param("http://127.0.0.1@evil.example/a.mp3", False, id="userinfo-trick"),
    pytest.param("http://127.0.0.1.evil.example/a.mp3", False, id="suffix-trick"),
    pytest.param("http://localhost.evil.example/a.mp3", False, id="suffix-trick-2"),
    pytest.param("http://169.254.169.254/latest/meta-data/", False, id="metadata-http"),
    pytest.param("http://[::1]/a.mp3", False, id="ipv6-not-allowed"),
    pytest.param("data:audio/mpeg;base64,AAAA", False, id="data"),
    pytest.param("javascript:alert(1)", False, id="javascript"),
    pytest.param("file://localhost/etc/passwd", False, id="file-with-host"),
    pytest.param("gopher://cdn.example/a", False, id="gopher"),
    pytest.param("//cdn.example/a.mp3", False, id="scheme-relative"),
    pytest.param("https:///a.mp3", False, id="empty-host"),
])
def test_download_url_rules(url: str, ok: bool) -> None:
    allowed = frozenset({"localhost", "127.0.0.1"})
    if ok:
        assert isinstance(check_download_url(url, allowed), httpx.URL)
    else:
        with pytest.raises(DownloadError) as caught:
            check_download_url(url, allowed)
        assert "?" not in caught.value.url


def redirect_chain(hops: int, last: str = "https://cdn.example/end.mp3"
                   ) -> Callable[[httpx.Request], httpx.Response]:
    """``/0`` redirects to ``/1``... ``/hops`` redirects to ``last``, which is audio."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/end.mp3":
            return httpx.Response(200, content=AUDIO, headers={"content-type": "audio/mpeg"})
        step = int(request.url.path.strip("/"))
        target = last if step == hops - 1 else f"https://hop.example/{step + 1}"
        return httpx.Response(302, headers={"location": target})

    return answer


@pytest.mark.parametrize(("hops", "last", "ok"), [
    pytest.param(MAX_REDIRECTS, "https://cdn.example/end.mp3", True, id="five-redirects"),
    pytest.param(MAX_REDIRECTS + 1, "https://cdn.example/end.mp3", False, id="six-redirects"),
    pytest.param(2, "file:///etc/passwd", False, id="to-file"),
    pytest.param(2, "ftp://cdn.example/end.mp3", False, id="to-ftp"),
    pytest.param(2, "http://169.254.169.254/latest/meta-data/", False, id="to-metadata"),
    pytest.param(2, "http://127.0.0.1:9/end.mp3", True, id="to-allowed-http"),
])
async def test_every_redirect_is_checked_again(tmp_path: Path, hops: int, last: str,
                                               ok: bool) -> None:
    fetched: list[str] = []
    chain = redirect_chain(hops, last)

    def answer(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        return chain(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with MusicSession(suno_key=KEY, http_client=client, allow_http_hosts=("127.0.0.1",),
                            allow_private_hosts=("127.0.0.1",)) as s:
        track = Track(id="t", audio_url="https://hop.example/0")
        if ok:
            got = await s.suno.download(track, tmp_path / "t.mp3")
            assert got.bytes_written == len(AUDIO)
        else:
            with pytest.raises(DownloadError):
                await s.suno.download(track, tmp_path / "t.mp3")
            assert list(tmp_path.iterdir()) == []
    await client.aclose()
    assert all(u.startswith(("https://", "http://127.0.0.1")) for u in fetched)
    assert len(fetched) <= MAX_REDIRECTS + 1


@pytest.mark.parametrize(("content_type", "ok"), [
    pytest.param("audio/mpeg; charset=binary", True, id="audio-with-params"),
    pytest.param("AUDIO/WAV", True, id="upper-case"),
    pytest.param("binary/octet-stream", True, id="binary-octet-stream"),
    pytest.param("application/json", False, id="json"),
    pytest.param("text/plain", False, id="text"),
    pytest.param("image/svg+xml", False, id="svg"),
    pytest.param("application/x-sh", False, id="script"),
])
async def test_content_type_rule(tmp_path: Path, content_type: str, ok: bool) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=AUDIO, headers={"content-type": content_type})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with MusicSession(suno_key=KEY, http_client=client) as s:
        track = Track(id="t", audio_url="https://cdn.example/t.mp3")
        if ok:
            await s.suno.download(track, tmp_path / "t.mp3")
        else:
            with pytest.raises(DownloadError, match="not audio"):
                await s.suno.download(track, tmp_path / "t.mp3")
    await client.aclose()
    assert [p.name for p in tmp_path.iterdir()] == (["t.mp3"] if ok else [])


@pytest.mark.parametrize(("limit", "ok"), [(len(AUDIO), True), (len(AUDIO) - 1, False)])
@pytest.mark.parametrize("announced", [True, False], ids=["with-length", "without-length"])
async def test_size_cap_boundary(tmp_path: Path, limit: int, ok: bool, announced: bool) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if announced:
            return httpx.Response(200, content=AUDIO, headers={"content-type": "audio/mpeg"})
        return httpx.Response(200, stream=httpx.ByteStream(AUDIO),
                              headers={"content-type": "audio/mpeg"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with MusicSession(suno_key=KEY, http_client=client) as s:
        track = Track(id="t", audio_url="https://cdn.example/t.mp3")
        if ok:
            got = await s.suno.download(track, tmp_path / "t.mp3", max_bytes=limit)
            assert got.bytes_written == len(AUDIO)
        else:
            with pytest.raises(DownloadError, match="limit"):
                await s.suno.download(track, tmp_path / "t.mp3", max_bytes=limit)
    await client.aclose()
    assert [p.name for p in tmp_path.iterdir()] == (["t.mp3"] if ok else [])


# -- the callback receiver ---------------------------------------------------------------------

TOKEN = "receiver-token-0123456789abcdef"


async def asgi(receiver: CallbackReceiver, path: str, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver),
                                 base_url="http://testserver") as client:
        return await client.post(path, **kw)


def complete(task_id: str, *urls: str) -> dict[str, Any]:
    return {"code": 200, "msg": "ok", "data": {
        "callbackType": "complete", "task_id": task_id,
        "data": [{"id": f"track-{i}", "audio_url": url, "title": "../../evil"}
                 for i, url in enumerate(urls)]}}


async def test_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    receiver = CallbackReceiver(TOKEN)
    assert (await asgi(receiver, "/wrong-token-0123456789abcdef",
                       json=complete("t", "https://x/a.mp3"))).status_code == 404
    assert (await asgi(receiver, f"/{TOKEN}", json=complete("t", "https://x/a.mp3"))
            ).status_code == 200
    assert compared == [(b"wrong-token-0123456789abcdef", TOKEN.encode()),
                        (TOKEN.encode(), TOKEN.encode())]


@pytest.mark.parametrize("path", ["", "/", "/?token=" + TOKEN, f"/{TOKEN.upper()}",
                                  f"/x/{TOKEN}", f"/{TOKEN}/extra"])
async def test_missing_or_wrong_token_is_refused_before_reading(path: str) -> None:
    receiver = CallbackReceiver(TOKEN)
    got = await asgi(receiver, path, json=complete("t", "https://x/a.mp3"))
    assert got.status_code == 404
    assert receiver.latest("t") is None and receiver.refused == 1


async def test_body_larger_than_its_content_length_claims_is_capped() -> None:
    receiver = CallbackReceiver(TOKEN, max_body_bytes=1024)
    scope = {"type": "http", "method": "POST", "path": f"/{TOKEN}",
             "headers": [(b"content-length", b"10")]}
    parts = [b"{" + b" " * 600, b" " * 600 + b"}"]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": parts.pop(0), "more_body": bool(parts)}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await receiver(scope, receive, send)
    assert sent[0]["status"] == 413


FORGED = ["file:///etc/passwd", "http://169.254.169.254/latest/meta-data/iam/",
          "ftp://cdn.example/a.mp3", "http://evil.example/a.mp3", "gopher://evil.example/",
          "http://127.0.0.1@evil.example/a.mp3", "javascript:alert(1)", "/relative.mp3"]


async def test_forged_callback_cannot_make_the_library_fetch_a_disallowed_url(
        tmp_path: Path) -> None:
    """A callback with a valid token but hostile URLs is only a hint: record-info (still
    PENDING) is the authority, so the task does not complete, no URL of the callback is ever
    fetched, and nothing is written. A forged hint cannot make the task poll fast either."""
    requests: list[str] = []

    def service(request: httpx.Request) -> httpx.Response:
        requests.append(str(request.url))
        if request.url.path.endswith("/add-instrumental"):
            return httpx.Response(200, json=suno_body(200, {"taskId": "forged-1"}))
        if request.url.path.endswith("/record-info"):
            return httpx.Response(200, json=suno_body(200, {"taskId": "forged-1",
                                                            "status": "PENDING"}))
        return httpx.Response(200, content=b"secret", headers={"content-type": "audio/mpeg"})

    receiver = CallbackReceiver(TOKEN)
    client = httpx.AsyncClient(transport=httpx.MockTransport(service))
    async with MusicSession(suno_key=KEY, http_client=client,
                            allow_http_hosts=("127.0.0.1",)) as s:
        s.suno.attach_receiver(receiver, "https://app.example/cb")
        task = await s.suno.add_instrumental("https://cdn.example/stem.mp3", **SUNO_ARGS)
        forged = await asgi(receiver, f"/{TOKEN}", json=complete("forged-1", *FORGED))
        assert forged.status_code == 200
        with pytest.raises(DeadlineExceededError, match="still PENDING"):
            await task.wait(timeout=2.5, poll=NEVER)
        assert task.result is None and task.status is TaskStatus.PENDING
    await client.aclose()
    asked = [u.rsplit("/", 1)[-1].split("?")[0] for u in requests]
    # one submission, then record-info at once, again after 1 s and 2 s (backing off)
    assert asked[0] == "add-instrumental" and set(asked[1:]) == {"record-info"}
    assert 2 <= len(asked) - 1 <= 3
    assert list(tmp_path.iterdir()) == []


def test_forged_callback_bodies_parse_into_plain_data() -> None:
    """Whatever a callback says, parsing yields plain strings and numbers (no objects built
    from type names, no code run)."""
    body = complete("t", "https://x/a.mp3")
    body["data"]["data"][0].update({"__class__": "os.system", "!!python/object": "x",
                                    "duration": "1e3"})
    event = parse_callback(json.dumps(body))
    track = event.tracks[0]
    assert track.duration == 1000.0 and track.title == "../../evil"


# -- nothing is deserialised unsafely ----------------------------------------------------------

_FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill",
                      "cloudpickle", "jsonpickle", "yaml"}
_FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}


def _problems(source: str, name: str) -> list[str]:
    tree = ast.parse(source, filename=name)
    found: list[str] = []
    for node in ast.walk(tree):
        where = f"{name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where} imports {a.name}" for a in node.names
                      if a.name.split(".")[0] in _FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in _FORBIDDEN_MODULES:
                found.append(f"{where} imports from {node.module}")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in _FORBIDDEN_CALLS:
                found.append(f"{where} calls {func.id}()")
            if isinstance(func, ast.Attribute) and func.attr in ("system", "popen") and \
                    isinstance(func.value, ast.Name) and func.value.id == "os":
                found.append(f"{where} calls os.{func.attr}()")
            for keyword in node.keywords:
                if keyword.arg == "shell" and not (isinstance(keyword.value, ast.Constant)
                                                   and keyword.value.value is False):
                    found.append(f"{where} passes shell=")
    return found


def test_sources_never_deserialise_unsafely_nor_run_a_shell() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20
    problems = [p for path in files
                for p in _problems(path.read_text(encoding="utf-8"),
                                   str(path.relative_to(PACKAGE.parent)))]
    assert problems == []


def test_the_source_scan_finds_what_it_looks_for() -> None:
    sample = ("import pickle\nfrom marshal import loads\neval('1')\nexec('x=1')\n"
              "import os\nos.system('ls')\nimport subprocess\n"
              "subprocess.run('ls', shell=True)\nsubprocess.run(['ls'], shell=False)\n")
    assert len(_problems(sample, "sample.py")) == 6
