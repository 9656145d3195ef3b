"""MusicSession lifecycle and the choke point: error mapping, paid safety, deadlines, secrets."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from aiomusic import (
    AuthenticationError,
    ConfigurationError,
    ConnectionFailedError,
    DeadlineExceededError,
    Event,
    LaneConfig,
    MusicSession,
    RequestFinished,
    RequestStarted,
    ResponseError,
    RetryPolicy,
    RetryScheduled,
    Service,
    SessionClosedError,
    SubmissionUnknownError,
    TransferTimeoutError,
    TransportError,
)
from aiomusic._core._call import Call
from aiomusic._core._config import LaneKind

KEY = "sk-test-SECRET-0123456789"
FAST = RetryPolicy(base_delay=0.0, max_delay=0.0, jitter=False)
pytestmark = pytest.mark.anyio

Responder = Callable[[httpx.Request], httpx.Response]


def make_session(responder: Responder, **kw: Any) -> MusicSession:
    client = httpx.AsyncClient(transport=httpx.MockTransport(responder))
    kw.setdefault("retry", FAST)
    return MusicSession(suno_key=KEY, aimlapi_key=KEY, http_client=client, **kw)


def credits_ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"code": 200, "msg": "success", "data": 42})


def paid_call() -> Call:
    return Call(service=Service.AIMLAPI, lane=LaneKind.SUBMIT, operation="minimax.generate",
                method="POST", url="/v2/generate/audio/minimax/generate", paid=True,
                json={"model": "music-01"})


async def test_credits_round_trip_sends_bearer_key() -> None:
    seen: list[httpx.Request] = []

    def responder(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return credits_ok(request)

    async with make_session(responder) as session:
        assert await session.suno.get_credits() == 42
    (request,) = seen
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert str(request.url) == "https://api.sunoapi.org/api/v1/generate/credit"
    assert request.headers["User-Agent"].startswith("python-httpx")  # the user's client wins


async def test_session_refuses_calls_before_and_after() -> None:
    session = make_session(credits_ok)
    with pytest.raises(SessionClosedError, match="not open yet"):
        await session.suno.get_credits()
    async with session:
        pass
    assert session.closed
    with pytest.raises(SessionClosedError, match="closed"):
        await session.suno.get_credits()
    with pytest.raises(SessionClosedError, match="only once"):
        await session.__aenter__()
    await session.aclose()  # idempotent


async def test_given_client_is_not_closed_own_client_is() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(credits_ok))
    async with MusicSession(suno_key=KEY, http_client=client):
        pass
    assert not client.is_closed
    await client.aclose()
    own = MusicSession(suno_key=KEY)
    async with own:
        inner = own._client
    assert inner is not None and inner.is_closed


async def test_missing_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUNO_API_KEY", raising=False)
    client = httpx.AsyncClient(transport=httpx.MockTransport(credits_ok))
    async with MusicSession(http_client=client) as session:
        with pytest.raises(ConfigurationError, match="SUNO_API_KEY"):
            await session.suno.get_credits()
    await client.aclose()


async def test_connect_errors_are_retried() -> None:
    calls = 0

    def responder(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise httpx.ConnectError("refused", request=request)
        return credits_ok(request)

    async with make_session(responder) as session:
        assert await session.suno.get_credits() == 42
    assert calls == 3


async def test_connect_errors_give_up_typed() -> None:
    def responder(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with make_session(responder, retry=RetryPolicy(max_attempts=2, base_delay=0)) as s:
        with pytest.raises(ConnectionFailedError, match="nothing was sent"):
            await s.suno.get_credits()


@pytest.mark.parametrize("exc", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError])
async def test_paid_call_is_never_resent_after_an_ambiguous_failure(
        exc: type[httpx.TransportError]) -> None:
    calls = 0

    def responder(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise exc("lost", request=request)

    async with make_session(responder) as session:
        with pytest.raises(SubmissionUnknownError) as info:
            await session._send(paid_call())
    assert calls == 1
    assert info.value.operation == "minimax.generate"
    assert "re-submit" in str(info.value)


async def test_paid_call_resent_when_the_user_accepts_the_risk() -> None:
    calls = 0

    def responder(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json={"base_resp": {"status_code": 0}})

    async with make_session(responder) as session:
        body = await session._send(paid_call(), retry=RetryPolicy(resubmit_unknown=True,
                                                                  base_delay=0))
    assert body["base_resp"]["status_code"] == 0
    assert calls == 2


async def test_free_call_read_timeout_is_retried_then_typed() -> None:
    def responder(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    async with make_session(responder, retry=RetryPolicy(max_attempts=2, base_delay=0)) as s:
        with pytest.raises(TransferTimeoutError):
            await s.suno.get_credits()


async def test_write_errors_are_retried_even_when_paid() -> None:
    calls = 0

    def responder(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.WriteError("broken pipe", request=request)
        return httpx.Response(200, json={"base_resp": {"status_code": 0}})

    async with make_session(responder) as session:
        await session._send(paid_call())
    assert calls == 2


async def test_definite_rejection_of_paid_call_is_retried() -> None:
    answers = iter([httpx.Response(503, json={"message": "Service unavailable"}),
                    httpx.Response(200, json={"base_resp": {"status_code": 0}})])

    async with make_session(lambda r: next(answers)) as session:
        await session._send(paid_call())


@pytest.mark.parametrize(("paid", "error"), [(True, SubmissionUnknownError),
                                             (False, ResponseError)])
async def test_non_json_success_body(paid: bool, error: type[Exception]) -> None:
    def responder(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>oops</html>")

    call = paid_call() if paid else Call(service=Service.SUNO, lane=LaneKind.POLL,
                                         operation="suno.x", method="GET", url="/x")
    async with make_session(responder, retry=RetryPolicy(max_attempts=2, base_delay=0)) as s:
        with pytest.raises(error):
            await s._send(call)


async def test_non_json_error_body_is_classified_by_status() -> None:
    async with make_session(lambda r: httpx.Response(401, content=b"<html>")) as session:
        with pytest.raises(AuthenticationError):
            await session._send(paid_call())


async def test_oversized_json_body_is_refused() -> None:
    from aiomusic._core import _json

    def responder(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b" " * (_json.DEFAULT_MAX_BYTES + 1))

    async with make_session(responder, retry=RetryPolicy.never()) as session:
        with pytest.raises(ResponseError, match="larger than"):
            await session.suno.get_credits()


async def test_deadline_of_free_call() -> None:
    def responder(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    slow = RetryPolicy(base_delay=10, max_delay=10, jitter=False, max_attempts=5)
    async with make_session(responder, retry=slow) as session:
        with pytest.raises(ConnectionFailedError) as info:
            await session.suno.get_credits(timeout=0.5)
    # the 10 s wait would pass the deadline: not taken, the error says how long to wait
    assert info.value.retry_after == 10


async def test_deadline_cancels_a_hanging_call() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(30)
        raise AssertionError("unreachable")

    client = httpx.AsyncClient(transport=httpx.MockTransport(hang))
    async with MusicSession(suno_key=KEY, aimlapi_key=KEY, http_client=client) as session:
        with pytest.raises(DeadlineExceededError) as info:
            await session.suno.get_credits(timeout=0.05)
        assert isinstance(info.value, TimeoutError)
        with pytest.raises(SubmissionUnknownError, match="deadline"):
            await session._send(paid_call(), timeout=0.05)
        with pytest.raises(ValueError, match="positive"):
            await session._send(paid_call(), timeout=0)
    await client.aclose()


async def test_events_are_emitted_and_listener_failures_contained() -> None:
    calls = 0

    def responder(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(500, json={"message": "boom"})
        return credits_ok(request)

    events: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("display bug")

    async with make_session(responder, on_event=events.append) as session:
        unsubscribe = session.subscribe(broken)
        assert await session.suno.get_credits() == 42
        unsubscribe()
        unsubscribe()
    kinds = [type(e) for e in events]
    assert kinds == [RequestStarted, RequestFinished, RetryScheduled, RequestStarted,
                     RequestFinished]
    finished = [e for e in events if isinstance(e, RequestFinished)]
    assert [f.status_code for f in finished] == [500, 200]
    assert finished[0].error == "ServerError"


async def test_key_never_logged_nor_in_errors(caplog: pytest.LogCaptureFixture) -> None:
    def responder(request: httpx.Request) -> httpx.Response:
        echoed = request.headers["Authorization"]
        return httpx.Response(401, json={"message": f"bad token {echoed}", "path": "/x"})

    caplog.set_level(logging.DEBUG, logger="aiomusic")
    async with make_session(responder) as session:
        with pytest.raises(AuthenticationError) as info:
            await session.suno.get_credits()
        text = repr(session)
    err = info.value
    everything = [caplog.text, str(err), repr(err.args), str(err.provider_message),
                  json.dumps(err.body), text]
    for item in everything:
        assert KEY not in item
    assert "-> GET https://api.sunoapi.org/api/v1/generate/credit" in caplog.text


def test_bad_options_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        MusicSession(base_url="http://127.0.0.1:1", endpoints=MusicSession().endpoints)
    with pytest.raises(ConfigurationError, match="minimax_via"):
        MusicSession(minimax_via="other")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="minimax_plan"):
        MusicSession(minimax_plan="gold")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="unknown lane"):
        MusicSession(lanes={"suno.fast": LaneConfig()})
    with pytest.raises(TypeError, match="LaneConfig"):
        MusicSession(lanes={"suno.poll": 3})  # type: ignore[dict-item]


def test_lane_overrides_and_plans() -> None:
    s = MusicSession(lanes={"suno.poll": LaneConfig(max_concurrency=2, rate=5, per=1)},
                     minimax_plan="free", minimax_via="minimax")
    assert s.lane(Service.SUNO, LaneKind.POLL).config.rate == 5
    assert s.lane(Service.MINIMAX, LaneKind.SUBMIT).config.max_concurrency == 3
    assert s.minimax_service is Service.MINIMAX
    assert "MusicSession new" in repr(s)


async def test_transport_error_of_unknown_kind_is_typed() -> None:
    def responder(request: httpx.Request) -> httpx.Response:
        raise httpx.ProtocolError("weird", request=request)

    async with make_session(responder, retry=RetryPolicy.never()) as session:
        with pytest.raises(TransportError, match="connection lost"):
            await session.suno.get_credits()


async def test_unusable_url_is_a_configuration_error() -> None:
    def responder(request: httpx.Request) -> httpx.Response:
        raise httpx.UnsupportedProtocol("Request URL has an unsupported protocol 'ftp://'.")

    async with make_session(responder) as session:
        call = Call(service=Service.SUNO, lane=LaneKind.TRANSFER, operation="suno.download",
                    method="GET", url="ftp://example.invalid/x", auth=False)
        with pytest.raises(ConfigurationError, match="cannot be used"):
            await session._send(call)
