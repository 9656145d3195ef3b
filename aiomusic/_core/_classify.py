"""Pure classifiers: (HTTP status, headers, decoded body) -> the body, or a typed error.

One function per provider. Each reads *both* error channels: the HTTP status and the code
inside the body (MiniMax ``base_resp.status_code``, Suno ``code``), because the services use
either. Every error is marked retryable or not here, and only here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

from ._converter import optional_int
from ._errors import (
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
from ._retry import parse_retry_after

__all__ = ["classify_aimlapi", "classify_minimax", "classify_suno"]


class Rule(NamedTuple):
    error: type[APIError]
    retryable: bool
    advice: str


_FIX_INPUT = "fix the request as the message says; it is not retried"
_FIX_KEY = "check the API key (argument or environment variable); it is not retried"
_TOP_UP = "top up the account's credits; it is not retried"
_BACKED_OFF = "aiomusic pauses the lane and retries; lower the concurrency if it persists"
_TRANSIENT = "a transient service failure; aiomusic retries with backoff"
_QUOTA = ("the Token Plan's quota is used up: see session.minimax.quota() for when it comes "
          "back, use a -free model meanwhile, or upgrade the plan; not retried")

#: MiniMax ``base_resp.status_code`` values (api-contracts.md section 2.5).
MINIMAX_CODES: Mapping[int, Rule] = {
    1000: Rule(ServerError, True, _TRANSIENT),
    1001: Rule(GenerationTimeoutError, True, "the service timed out; aiomusic retries"),
    1002: Rule(RateLimitError, True, _BACKED_OFF),
    1004: Rule(AuthenticationError, False, _FIX_KEY + " (a GroupId mismatch also gives 1004)"),
    1008: Rule(InsufficientCreditsError, False, _TOP_UP),
    1024: Rule(ServerError, True, _TRANSIENT),
    1026: Rule(ContentPolicyError, False, "the input was flagged as sensitive; change it"),
    1027: Rule(ContentPolicyError, False, "the output was flagged as sensitive; change the input"),
    # 1028/1030/2061: api-contracts-2026-11.md section 1.5 (MiniMax's own CLI)
    1028: Rule(UsageLimitError, False, _QUOTA),
    1030: Rule(UsageLimitError, False, _QUOTA),
    1033: Rule(ServerError, True, _TRANSIENT),
    1039: Rule(RateLimitError, True, "token limit reached; " + _BACKED_OFF),
    1041: Rule(RateLimitError, True, "connection limit reached; " + _BACKED_OFF),
    1042: Rule(ContentPolicyError, False, "too many invisible characters; clean the input"),
    2013: Rule(BadRequestError, False, _FIX_INPUT),
    2044: Rule(PermissionDeniedError, False, "the key has no permission for this API; enable "
                                             "it in the MiniMax console"),
    2045: Rule(RateLimitError, True, "request rate grew too fast; " + _BACKED_OFF),
    2049: Rule(AuthenticationError, False, _FIX_KEY),
    2056: Rule(UsageLimitError, False, "the plan's usage window is spent; wait for the next "
                                       "5-hour window or upgrade the plan"),
    2061: Rule(PermissionDeniedError, False, "the model is not on the key's Token Plan "
                                             "(music-2.6 and music-cover need the Max plan): use "
                                             "its -free variant or upgrade the plan; not retried"),
}

#: HTTP statuses (AI/ML API; also any service answering with a non-2xx).
HTTP_STATUSES: Mapping[int, Rule] = {
    400: Rule(BadRequestError, False, _FIX_INPUT),
    401: Rule(AuthenticationError, False, _FIX_KEY),
    403: Rule(InsufficientCreditsError, False, _TOP_UP + " (the AI/ML API answers 403 when "
                                                         "credits run out)"),
    404: Rule(NotFoundError, False, "check the base URL and the path; it is not retried"),
    408: Rule(GenerationTimeoutError, True, "the service timed out; aiomusic retries"),
    413: Rule(BadRequestError, False, "the request is too large; shorten it"),
    422: Rule(BadRequestError, False, _FIX_INPUT),
    429: Rule(RateLimitError, True, _BACKED_OFF),
    500: Rule(ServerError, True, _TRANSIENT),
    502: Rule(ServiceUnavailableError, True, _TRANSIENT),
    503: Rule(ServiceUnavailableError, True, _TRANSIENT),
    504: Rule(GenerationTimeoutError, True, "the generation timed out; aiomusic retries"),
}

#: Suno body ``code`` values (api-contracts.md section 3.1); also seen as HTTP statuses.
SUNO_CODES: Mapping[int, Rule] = {
    400: Rule(BadRequestError, False, _FIX_INPUT),
    401: Rule(AuthenticationError, False, _FIX_KEY),
    404: Rule(NotFoundError, False, "wrong method or path; check the base URL"),
    405: Rule(RateLimitError, True, _BACKED_OFF),
    413: Rule(BadRequestError, False, "the theme or prompt is too long; shorten it"),
    429: Rule(InsufficientCreditsError, False, "Suno code 429 means the account is out of "
                                               "credits (not a rate limit); " + _TOP_UP),
    430: Rule(RateLimitError, True, "calls too frequent; " + _BACKED_OFF),
    455: Rule(MaintenanceError, True, "the service is under maintenance; aiomusic waits longer "
                                      "between retries"),
    500: Rule(ServerError, True, _TRANSIENT),
}

#: Which limit a refusal code names (api-contracts.md 2.5 and 3.1); a bare HTTP 429 says it
#: only through rate-limit headers (`_limit_of`).
LIMITS: Mapping[str, Mapping[int, Literal["rate", "concurrency"]]] = {
    "minimax": {1002: "rate", 1039: "rate", 1041: "concurrency", 2045: "rate"},
    "suno": {405: "rate", 430: "rate"},
}
_REMAINING = ("x-ratelimit-remaining-requests", "ratelimit-remaining", "x-ratelimit-remaining")

_NAMES = {"aimlapi": "The AI/ML API", "minimax": "MiniMax", "suno": "Suno"}
#: Where each service's key comes from, named in authentication errors.
_KEY_SOURCES = {
    "aimlapi": "the AI/ML API key (the AIMLAPI_KEY environment variable or aimlapi_key=...)",
    "minimax": "the MiniMax key (the MINIMAX_API_KEY environment variable or minimax_key=...)",
    "suno": "the Suno key (the SUNO_API_KEY environment variable or suno_key=...)"}


def _limit_of(provider: str, code: int | None, status_code: int,
              headers: Mapping[str, str]) -> Literal["rate", "concurrency"] | None:
    """The limit a rate-limit refusal names: by its code, else by a spent request budget."""
    table = LIMITS["suno" if provider == "suno" else "minimax"]
    named = table.get(code if code is not None else status_code)
    if named is not None:
        return named
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in _REMAINING:
        try:
            remaining = float(lowered[name].split(",")[0].split(";")[0])
        except (KeyError, ValueError):
            continue
        return "rate" if remaining <= 0 else None
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


_NOT_A_CODE = object()


def _code(value: object) -> int | object | None:
    """A documented numeric code as servers really send it: ``1027``, ``1027.0``, ``"1027"``.

    ``None`` when absent, ``_NOT_A_CODE`` when present but not a whole number.
    """
    try:
        return optional_int(value)
    except (ValueError, OverflowError):
        return _NOT_A_CODE


def _build(rule: Rule, *, provider: str, status_code: int, code: int | None,
           message: str | None, trace_id: str | None, headers: Mapping[str, str],
           body: Mapping[str, Any] | None) -> APIError:
    said = f": {message!r}" if message else ""
    advice = rule.advice.replace("the API key (argument or environment variable)",
                                 _KEY_SOURCES[provider])
    where = f"code {code}" if code is not None else f"HTTP {status_code}"
    trace = f" [trace {trace_id}]" if trace_id else ""
    retry_after = parse_retry_after(headers)
    error_cls = rule.error
    if error_cls is ServerError and message and "maintenance" in message.lower():
        error_cls = MaintenanceError
    error = error_cls(
        f"{_NAMES[provider]} refused the call ({where}){said}{trace}; {advice}",
        provider=provider, status_code=status_code, provider_code=code,
        provider_message=message, trace_id=trace_id, retry_after=retry_after,
        retryable=rule.retryable, body=body,
    )
    if isinstance(error, RateLimitError):
        error.limit = _limit_of(provider, code, status_code, headers)
    return error


def _generic_rule(status: int) -> Rule:
    if status >= 500:
        return Rule(ServerError, True, _TRANSIENT)
    return Rule(APIError, False, "an undocumented refusal; it is not retried (quote the "
                                 "trace id to the provider's support)")


def _require_mapping(body: object, *, provider: str, status_code: int) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise ResponseError(
            f"{_NAMES[provider]} answered HTTP {status_code} with a body that is not a JSON "
            f"object ({type(body).__name__}); this is not a documented answer",
            status_code=status_code, retryable=status_code >= 500,
        )
    return body


def _http_error(provider: str, status_code: int, headers: Mapping[str, str], body: object,
                trace_id: str | None) -> APIError:
    mapping = body if isinstance(body, Mapping) else None
    message = None
    if mapping is not None:
        message = _text(mapping.get("message")) or _text(mapping.get("msg"))
        error = mapping.get("error")
        if message is None and isinstance(error, Mapping):
            message = _text(error.get("message"))
        trace_id = trace_id or _text(mapping.get("requestId"))
    rule = HTTP_STATUSES.get(status_code) or _generic_rule(status_code)
    return _build(rule, provider=provider, status_code=status_code, code=None,
                  message=message, trace_id=trace_id, headers=headers, body=mapping)


def _minimax_family(provider: str, status_code: int, headers: Mapping[str, str],
                    body: object) -> Mapping[str, Any]:
    trace_id = _text(headers.get("trace-id")) or _text(headers.get("Trace-Id"))
    if isinstance(body, Mapping):
        trace_id = _text(body.get("trace_id")) or trace_id
    base = body.get("base_resp") if isinstance(body, Mapping) else None
    if isinstance(base, Mapping):
        code = _code(base.get("status_code"))
        if code is _NOT_A_CODE and 200 <= status_code < 300:
            raise ResponseError(
                f"{_NAMES[provider]} answered HTTP {status_code} with base_resp.status_code "
                f"{base.get('status_code')!r}, which is not a number; whether the call "
                "succeeded cannot be told", status_code=status_code, trace_id=trace_id)
        if isinstance(code, int) and code != 0:
            rule = MINIMAX_CODES.get(code) or _generic_rule(400)
            raise _build(rule, provider=provider, status_code=status_code, code=code,
                         message=_text(base.get("status_msg")), trace_id=trace_id,
                         headers=headers, body=body if isinstance(body, Mapping) else None)
    if not 200 <= status_code < 300:
        raise _http_error(provider, status_code, headers, body, trace_id)
    return _require_mapping(body, provider=provider, status_code=status_code)


def classify_minimax(status_code: int, headers: Mapping[str, str],
                     body: object) -> Mapping[str, Any]:
    """Classify an answer of MiniMax's native API.

    Returns:
        The decoded body, when both channels say success.

    Raises:
        APIError: a subclass chosen by ``base_resp.status_code`` or the HTTP status.
        ResponseError: the body is not a JSON object.
    """
    return _minimax_family("minimax", status_code, headers, body)


def classify_aimlapi(status_code: int, headers: Mapping[str, str],
                     body: object) -> Mapping[str, Any]:
    """Classify an answer of the AI/ML API (MiniMax music-01 endpoints).

    Reads the HTTP status and its error body (``message``, ``requestId``), and also
    ``base_resp`` inside a 200, since the service passes MiniMax's envelope through.
    """
    return _minimax_family("aimlapi", status_code, headers, body)


def classify_suno(status_code: int, headers: Mapping[str, str],
                  body: object) -> Mapping[str, Any]:
    """Classify an answer of sunoapi.org (API or File Upload host).

    The body ``code`` wins over the HTTP status when both are present; the same codes are also
    accepted as HTTP statuses.

    Returns:
        The decoded body (``{code: 200, msg, data}``) on success.
    """
    mapping = body if isinstance(body, Mapping) else None
    trace_id = _text(headers.get("x-request-id")) or _text(headers.get("X-Request-Id"))
    raw_code = _code(mapping.get("code")) if mapping is not None else None
    code = raw_code if isinstance(raw_code, int) else None
    if code is None and 200 <= status_code < 300:
        if mapping is not None and mapping.get("success") is True:
            return mapping
        raise ResponseError(
            f"Suno answered HTTP {status_code} without a numeric 'code' in the body; this "
            "is not a documented answer", status_code=status_code,
        )
    effective = code if code is not None else status_code
    if effective == 200 and 200 <= status_code < 300:
        assert mapping is not None
        return mapping
    if effective == 200:  # body says OK but the transport said otherwise: trust the failure
        effective = status_code
    message = _text(mapping.get("msg")) or _text(mapping.get("message")) if mapping else None
    rule = SUNO_CODES.get(effective) or HTTP_STATUSES.get(effective) or _generic_rule(effective)
    raise _build(rule, provider="suno", status_code=status_code, code=code, message=message,
                 trace_id=trace_id, headers=headers, body=mapping)
