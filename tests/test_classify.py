"""Every documented code, on both error channels, maps to the right typed error."""

from __future__ import annotations

from typing import Any

import pytest

from aiomusic import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ContentPolicyError,
    GenerationTimeoutError,
    InsufficientCreditsError,
    MaintenanceError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseError,
    ServerError,
    ServiceUnavailableError,
    UsageLimitError,
)
from aiomusic._core._classify import classify_aimlapi, classify_minimax, classify_suno

MINIMAX_TABLE = [
    (1000, ServerError, True),
    (1001, GenerationTimeoutError, True),
    (1002, RateLimitError, True),
    (1004, AuthenticationError, False),
    (1008, InsufficientCreditsError, False),
    (1024, ServerError, True),
    (1026, ContentPolicyError, False),
    (1027, ContentPolicyError, False),
    (1033, ServerError, True),
    (1039, RateLimitError, True),
    (1041, RateLimitError, True),
    (1042, ContentPolicyError, False),
    (2013, BadRequestError, False),
    (2044, PermissionDeniedError, False),
    (2045, RateLimitError, True),
    (2049, AuthenticationError, False),
    (2056, UsageLimitError, False),
    (9999, APIError, False),  # undocumented: typed, not retried
]


def _base(code: int, msg: str = "nope") -> dict[str, Any]:
    return {"trace_id": "tr-1", "base_resp": {"status_code": code, "status_msg": msg}}


@pytest.mark.parametrize("classify", [classify_minimax, classify_aimlapi],
                         ids=["minimax", "aimlapi"])
@pytest.mark.parametrize(("code", "error", "retryable"),
                         [pytest.param(*row, id=str(row[0])) for row in MINIMAX_TABLE])
def test_minimax_base_resp_codes(classify: Any, code: int, error: type[APIError],
                                 retryable: bool) -> None:
    with pytest.raises(error) as info:
        classify(200, {}, _base(code))
    assert type(info.value) is error
    assert info.value.retryable is retryable
    assert info.value.provider_code == code
    assert info.value.status_code == 200
    assert info.value.trace_id == "tr-1"
    assert info.value.provider_message == "nope"
    assert str(code) in str(info.value)


def test_minimax_success_returns_body() -> None:
    body = {"data": {"status": 2}, **_base(0, "success")}
    assert classify_minimax(200, {}, body) is body


def test_minimax_success_without_base_resp_is_accepted() -> None:
    body = {"voice_id": "vocal-1"}
    assert classify_aimlapi(200, {}, body) is body


def test_minimax_trace_id_from_header() -> None:
    with pytest.raises(RateLimitError) as info:
        classify_minimax(200, {"Trace-Id": "hdr"}, {"base_resp": {"status_code": 1002}})
    assert info.value.trace_id == "hdr"


AIMLAPI_HTTP_TABLE = [
    (400, BadRequestError, False),
    (401, AuthenticationError, False),
    (403, InsufficientCreditsError, False),
    (404, NotFoundError, False),
    (408, GenerationTimeoutError, True),
    (413, BadRequestError, False),
    (422, BadRequestError, False),
    (429, RateLimitError, True),
    (500, ServerError, True),
    (502, ServiceUnavailableError, True),
    (503, ServiceUnavailableError, True),
    (504, GenerationTimeoutError, True),
    (507, ServerError, True),  # an undocumented 5xx: retried
    (418, APIError, False),  # an undocumented 4xx: not retried
]


@pytest.mark.parametrize(("status", "error", "retryable"),
                         [pytest.param(*row, id=str(row[0])) for row in AIMLAPI_HTTP_TABLE])
def test_aimlapi_http_statuses(status: int, error: type[APIError], retryable: bool) -> None:
    body = {"message": "Too Many Requests", "path": "/v2/x", "requestId": "req-9",
            "statusCode": status, "timestamp": "2026-01-01T00:00:00Z"}
    with pytest.raises(error) as info:
        classify_aimlapi(status, {"Retry-After": "3"}, body)
    assert type(info.value) is error
    assert info.value.retryable is retryable
    assert info.value.status_code == status
    assert info.value.provider_code is None
    assert info.value.trace_id == "req-9"
    assert info.value.retry_after == 3.0
    assert "Too Many Requests" in str(info.value)


def test_aimlapi_maintenance_500_is_maintenance() -> None:
    with pytest.raises(MaintenanceError) as info:
        classify_aimlapi(500, {}, {"message": "Model is under maintenance"})
    assert info.value.retryable


def test_aimlapi_error_with_non_json_body() -> None:
    with pytest.raises(ServiceUnavailableError):
        classify_aimlapi(502, {}, None)


def test_aimlapi_nested_error_message() -> None:
    with pytest.raises(BadRequestError, match="Expected string"):
        classify_aimlapi(400, {}, {"error": {"message": "Expected string"}})


def test_body_code_wins_over_http_200() -> None:
    with pytest.raises(BadRequestError):
        classify_aimlapi(200, {}, _base(2013, "invalid params"))


def test_ok_status_with_non_object_body() -> None:
    with pytest.raises(ResponseError):
        classify_minimax(200, {}, ["not", "an", "object"])


SUNO_TABLE = [
    (400, BadRequestError, False),
    (401, AuthenticationError, False),
    (404, NotFoundError, False),
    (405, RateLimitError, True),
    (413, BadRequestError, False),
    (429, InsufficientCreditsError, False),  # out of credits, never a rate limit
    (430, RateLimitError, True),
    (455, MaintenanceError, True),
    (500, ServerError, True),
    (451, APIError, False),
    (531, ServerError, True),
]


@pytest.mark.parametrize(("code", "error", "retryable"),
                         [pytest.param(*row, id=str(row[0])) for row in SUNO_TABLE])
def test_suno_body_codes(code: int, error: type[APIError], retryable: bool) -> None:
    with pytest.raises(error) as info:
        classify_suno(200, {}, {"code": code, "msg": "m", "data": None})
    assert type(info.value) is error
    assert info.value.retryable is retryable
    assert info.value.provider_code == code
    assert info.value.status_code == 200


@pytest.mark.parametrize(("code", "error", "retryable"),
                         [pytest.param(*row, id=f"http-{row[0]}") for row in SUNO_TABLE])
def test_suno_same_codes_as_http_status(code: int, error: type[APIError],
                                        retryable: bool) -> None:
    with pytest.raises(error) as info:
        classify_suno(code, {}, None)
    assert type(info.value) is error
    assert info.value.retryable is retryable
    assert info.value.status_code == code


def test_suno_http_error_with_ok_body_code_trusts_the_failure() -> None:
    with pytest.raises(ServerError):
        classify_suno(500, {}, {"code": 200, "msg": "success"})


def test_suno_success() -> None:
    body = {"code": 200, "msg": "success", "data": {"taskId": "t"}}
    assert classify_suno(200, {}, body) is body


def test_suno_upload_host_success_shape() -> None:
    body = {"success": True, "data": {"downloadUrl": "https://x/y.mp3"}}
    assert classify_suno(200, {}, body) is body


def test_suno_200_without_code_is_a_response_error() -> None:
    with pytest.raises(ResponseError):
        classify_suno(200, {}, {"msg": "?"})


def test_retry_after_ms_header_is_read() -> None:
    with pytest.raises(RateLimitError) as info:
        classify_suno(200, {"retry-after-ms": "1500"}, {"code": 430, "msg": "slow down"})
    assert info.value.retry_after == 1.5


@pytest.mark.parametrize(("classify", "status", "headers", "body", "limit"), [
    pytest.param(classify_minimax, 200, {}, {"base_resp": {"status_code": 1041}}, "concurrency",
                 id="minimax-1041-connections"),
    pytest.param(classify_minimax, 200, {}, {"base_resp": {"status_code": 1002}}, "rate",
                 id="minimax-1002"),
    pytest.param(classify_minimax, 200, {}, {"base_resp": {"status_code": 1039}}, "rate",
                 id="minimax-1039-tokens"),
    pytest.param(classify_minimax, 200, {}, {"base_resp": {"status_code": 2045}}, "rate",
                 id="minimax-2045-growth"),
    pytest.param(classify_aimlapi, 200, {}, {"base_resp": {"status_code": 1041}}, "concurrency",
                 id="aimlapi-passes-1041-through"),
    pytest.param(classify_suno, 200, {}, {"code": 430, "msg": "too frequent"}, "rate",
                 id="suno-430"),
    pytest.param(classify_suno, 405, {}, None, "rate", id="suno-405-as-status"),
    pytest.param(classify_aimlapi, 429, {}, {"message": "Too Many Requests"}, None,
                 id="bare-429"),
    pytest.param(classify_aimlapi, 429, {"x-ratelimit-remaining-requests": "0"}, {}, "rate",
                 id="429-budget-spent"),
    pytest.param(classify_aimlapi, 429, {"RateLimit-Remaining": "0"}, {}, "rate",
                 id="429-ietf-header"),
    pytest.param(classify_aimlapi, 429, {"x-ratelimit-remaining-requests": "12"}, {}, None,
                 id="429-budget-left"),
    pytest.param(classify_aimlapi, 429, {"x-ratelimit-remaining-requests": "many"}, {}, None,
                 id="429-unreadable-header"),
])
def test_rate_limit_refusals_name_their_limit(classify: Any, status: int, headers: dict[str, str],
                                              body: object, limit: str | None) -> None:
    with pytest.raises(RateLimitError) as info:
        classify(status, headers, body)
    assert info.value.limit == limit


def test_rate_limit_error_takes_its_limit_as_an_argument() -> None:
    error = RateLimitError("busy", provider="minimax", status_code=200, limit="concurrency")
    assert error.limit == "concurrency"
    assert error.retryable
