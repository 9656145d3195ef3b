"""What a provider hands to the session's choke point: a call description and an answer reader.

Providers build `Call` objects with pure functions and never touch httpx themselves; the
session sends them. A call's body is a factory, so a retry can re-create a streamed upload.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol, TypeVar

import attrs
import httpx

from ._config import LaneKind, Service
from ._errors import ResponseError, SubmissionUnknownError
from ._json import DEFAULT_JSON_LIMITS, JsonLimits, aclose, read_json
from ._log import MIN_SECRET_LENGTH

__all__ = ["Call", "Classifier", "Handler", "aclose", "json_handler", "no_body", "without_key"]

T = TypeVar("T")

BodyFactory = Callable[[], AbstractContextManager[dict[str, Any]]]


class Classifier(Protocol):
    """(status, headers, decoded body or None) -> the body, or raise a typed error."""

    def __call__(self, status_code: int, headers: Mapping[str, str],
                 body: object) -> Mapping[str, Any]: ...


Handler = Callable[[httpx.Response, "Call"], Awaitable[T]]

@contextmanager
def no_body() -> Iterator[dict[str, Any]]:
    """A body factory for calls without a body (or with ``Call.json``)."""
    yield {}


@attrs.frozen
class Call:
    """One HTTP call as a provider describes it.

    Attributes:
        service: Which service (and so which key, base URL, classifier and lanes).
        lane: Which lane of that service.
        operation: A stable name for logs and events (``"suno.record_info"``).
        method: HTTP method.
        url: A path under the service's base URL, or an absolute URL (downloads).
        paid: Whether the call costs money; then it is never re-sent blindly.
        json: A JSON body.
        params: Query parameters.
        body: A factory giving extra httpx arguments (``files``, ``data``, ``content``) per
            attempt; it may open files and must close them on exit.
        auth: Whether to send the service's key (never for third-party URLs).
        headers: Extra request headers.
        key: What the call is about (a file or task name), for events.
        json_limits: Bounds on this call's JSON answer, instead of the session's.
    """

    service: Service
    lane: LaneKind
    operation: str
    method: str
    url: str
    paid: bool = False
    json: Any = None
    params: Mapping[str, str] | None = None
    body: BodyFactory = no_body
    auth: bool = True
    headers: Mapping[str, str] | None = None
    key: str | None = None
    json_limits: JsonLimits | None = None


def json_handler(classify: Classifier, limits: JsonLimits = DEFAULT_JSON_LIMITS
                 ) -> Handler[Mapping[str, Any]]:
    """An answer reader: read the JSON body (bounded) and classify it on both channels.

    A 2xx answer that is not readable JSON (not JSON, too large, too deep, an encoding that
    cannot be undone) is a [`ResponseError`][aiomusic.ResponseError] (retryable unless the call
    was paid, which becomes [`SubmissionUnknownError`][aiomusic.SubmissionUnknownError]: the
    service may have done the work). A non-2xx answer is classified by its status even when its
    body is not readable. ``call.json_limits`` wins over ``limits``.
    """

    async def handle(response: httpx.Response, call: Call) -> Mapping[str, Any]:
        ok = 200 <= response.status_code < 300
        try:
            decoded = await read_json(response, limits=call.json_limits or limits,
                                      what=f"{call.operation}: the answer")
        except httpx.HTTPError:
            if ok:
                raise
            decoded = None  # a definite refusal whose body was cut off: the status says enough
        except ResponseError as exc:
            if not ok:
                return classify(response.status_code, response.headers, None)
            if call.paid:
                raise SubmissionUnknownError(
                    f"{call.operation}: the service answered HTTP {response.status_code} with "
                    f"a body that cannot be read ({exc}), so whether the paid request was "
                    "accepted is unknown; check your account before re-submitting",
                    operation=call.operation, reason="malformed answer") from exc
            exc.retryable = True  # a free call: asking again costs nothing
            raise
        body, headers = without_key(response, decoded)
        return classify(response.status_code, headers, body)

    return handle




def sent_key(response: httpx.Response) -> str | None:
    """The bearer token the request of ``response`` carried, if it looks like a real key."""
    header: str = response.request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or len(token) < MIN_SECRET_LENGTH:
        return None
    return token


def without_key(response: httpx.Response, body: object) -> tuple[object, Mapping[str, str]]:
    """The decoded answer and its headers with the request's own key replaced by ``***``.

    A server (or a proxy) may echo the key back, in a message, a request id or any field.
    Removing it before the answer is classified or parsed means no model, error, log line or
    traceback built from the answer can show it (DESIGN invariant 7).
    """
    key = sent_key(response)
    headers: Mapping[str, str] = response.headers
    if key is None:
        return body, headers
    if any(key in value for value in response.headers.values()):
        headers = httpx.Headers([(name, value.replace(key, "***"))
                                 for name, value in response.headers.multi_items()])
    if isinstance(body, str):
        return body.replace(key, "***"), headers
    pending = [body]  # a loop, not recursion: the JSON may be nested deeply
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            for name in list(node):
                node[name] = _scrubbed(node[name], key, pending)
                if isinstance(name, str) and key in name:
                    node[name.replace(key, "***")] = node.pop(name)
        elif isinstance(node, list):
            for index, item in enumerate(node):
                node[index] = _scrubbed(item, key, pending)
    return body, headers


def _scrubbed(value: object, key: str, pending: list[object]) -> object:
    if isinstance(value, str):
        return value.replace(key, "***")
    if isinstance(value, dict | list):
        pending.append(value)
    return value
