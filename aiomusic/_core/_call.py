"""What a provider hands to the session's choke point: a call description and an answer reader.

Providers build `Call` objects with pure functions and never touch httpx themselves; the
session sends them. A call's body is a factory, so a retry can re-create a streamed upload.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol, TypeVar

import attrs
import httpx

from ._config import LaneKind, Service
from ._errors import ResponseError, SubmissionUnknownError
from ._log import MIN_SECRET_LENGTH

__all__ = ["Call", "Classifier", "Handler", "json_handler", "no_body", "read_capped",
           "without_key"]

T = TypeVar("T")

BodyFactory = Callable[[], AbstractContextManager[dict[str, Any]]]


class Classifier(Protocol):
    """(status, headers, decoded body or None) -> the body, or raise a typed error."""

    def __call__(self, status_code: int, headers: Mapping[str, str],
                 body: object) -> Mapping[str, Any]: ...


Handler = Callable[[httpx.Response, "Call"], Awaitable[T]]

#: JSON answers without audio are small; a bigger one is not what the service sends.
MAX_JSON_BYTES = 16 * 1024 * 1024


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


async def read_capped(response: httpx.Response, *, limit: int = MAX_JSON_BYTES) -> bytes:
    """The whole (small) body, refusing more than ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    stream = response.aiter_bytes()
    try:
        async for chunk in stream:
            size += len(chunk)
            if size > limit:
                raise ResponseError(
                    f"the answer is larger than {limit} bytes, which no documented answer is",
                    status_code=response.status_code,
                )
            chunks.append(chunk)
    finally:
        await aclose(stream)
    return b"".join(chunks)


async def aclose(iterator: AsyncIterator[Any]) -> None:
    """Close an async generator we stopped early (trio insists, and rightly)."""
    closer = getattr(iterator, "aclose", None)
    if closer is not None:
        await closer()


def decode_json(raw: bytes) -> object:
    """``json.loads`` that reports failure as the ``_INVALID`` marker (callers decide)."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested deeply
        return _INVALID


_INVALID = object()


def json_handler(classify: Classifier) -> Handler[Mapping[str, Any]]:
    """An answer reader: read the JSON body and classify it on both channels.

    A 2xx answer that is not JSON is a [`ResponseError`][aiomusic.ResponseError] (retryable unless
    the call was
    paid, which becomes [`SubmissionUnknownError`][aiomusic.SubmissionUnknownError]: the service
    may have done the work).
    A non-2xx answer is classified by its status even when its body is not JSON.
    """

    async def handle(response: httpx.Response, call: Call) -> Mapping[str, Any]:
        ok = 200 <= response.status_code < 300
        try:
            raw = await read_capped(response)
        except httpx.HTTPError:
            if ok:
                raise
            raw = b""  # a definite refusal whose body was cut off: the status says enough
        body, headers = without_key(response, decode_json(raw))
        if body is _INVALID:
            if not ok:
                return classify(response.status_code, headers, None)
            if call.paid:
                raise SubmissionUnknownError(
                    f"{call.operation}: the service answered HTTP {response.status_code} with "
                    "a body that is not JSON, so whether the paid request was accepted is "
                    "unknown; check your account before re-submitting",
                    operation=call.operation, reason="malformed answer",
                )
            raise ResponseError(
                f"{call.operation}: the service answered HTTP {response.status_code} with a "
                f"body that is not JSON ({len(raw)} bytes)",
                status_code=response.status_code, retryable=True,
            )
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
