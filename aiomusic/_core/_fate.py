"""The fate of a paid request: one pure model, used by the retry loop, the journal and batches.

Each attempt of a paid request ends in one of five fates (DESIGN invariant 2):

* **not sent**: nothing reached the service (no connection, the request was not written
  completely, a local check or the journal stopped it first);
* **refused**: the service refused it before any work, and says so in a documented way
  (rate limits, maintenance, a 503 in the service's own words, bad input, a bad key, no
  credits): nothing was charged;
* **taken**: the service answered with success (the audio, a task id, a document);
* **failed after taken**: the service took it and then failed, or its answer was complete but
  its content unusable (invalid hex, output flagged, a code this version does not know), or
  our own side failed while the answer arrived: it may have been charged;
* **unknown**: no answer aiomusic can trust (a timeout or a lost connection after sending,
  HTTP 500, 502 and 504, a 503 without the service's words, any empty, HTML, truncated,
  over-long, too deep or unreadable answer): it may have been taken and charged.

Only *not sent* and the *refusals* marked retryable are retried automatically. *Unknown* is
raised as [`SubmissionUnknownError`][aiomusic.SubmissionUnknownError] everywhere. "Answered"
in DESIGN's words is *refused*, *taken* or *failed after taken*.

The module also carries the hook a batch uses to journal its intent at the last moment: a
context variable holding a `PaidAttempts`, which the transport awaits right before each paid
request is written (after the lane's permit and rate-window start) and after it ends.
"""

from __future__ import annotations

import contextvars
import enum
from collections.abc import Mapping
from typing import Protocol

import httpx

from ._errors import (
    AiomusicError,
    APIError,
    AudioDecodeError,
    AuthenticationError,
    BadRequestError,
    ConnectionFailedError,
    ContentPolicyError,
    GenerationTimeoutError,
    InsufficientCreditsError,
    LocalFileError,
    MaintenanceError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseError,
    SubmissionUnknownError,
    TransportError,
    UsageLimitError,
)

__all__ = ["PAID_ATTEMPTS", "Fate", "PaidAttempts", "fate_of", "fate_of_transport",
           "retried", "trace_of", "unknown"]


class Fate(enum.StrEnum):
    """How one attempt of a paid request ended (see the module's docstring)."""

    NOT_SENT = "not sent"
    REFUSED = "refused"
    TAKEN = "taken"
    FAILED_AFTER_TAKEN = "failed after taken"
    UNKNOWN = "unknown"

    @property
    def charged(self) -> bool | None:
        """Whether the service may have charged: ``False`` (certainly not), ``True`` (it did
        the work), ``None`` (nobody can tell)."""
        return _CHARGED[self]


_CHARGED: Mapping[Fate, bool | None] = {
    Fate.NOT_SENT: False, Fate.REFUSED: False, Fate.TAKEN: True,
    Fate.FAILED_AFTER_TAKEN: True, Fate.UNKNOWN: None}

#: Refusals the services document as "before any work": the request was not taken.
_REFUSALS = (RateLimitError, MaintenanceError, BadRequestError, AuthenticationError,
             PermissionDeniedError, InsufficientCreditsError, NotFoundError, UsageLimitError)
#: MiniMax's "output flagged": the song was made, then withheld.
_OUTPUT_FLAGGED = 1027


def fate_of_transport(exc: httpx.HTTPError) -> Fate:
    """The fate of an attempt that httpx could not complete.

    A connection that was never made, a pool that had no connection, and a request that could
    not be written completely mean the service cannot have acted on it. Anything after the
    request was written (a read timeout, a dropped connection, a protocol error) may come
    after the service took it.
    """
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout |
                  httpx.WriteError | httpx.WriteTimeout | httpx.UnsupportedProtocol |
                  httpx.InvalidURL):
        return Fate.NOT_SENT
    return Fate.UNKNOWN


def fate_of(error: BaseException | None) -> Fate:
    """The fate of a paid attempt that was sent, from how it ended (``None``: success).

    The rule goes by the error's *type*, so that any reader raising a typed error gets the
    same answer: every `ResponseError` but invalid audio is *unknown*, every 5xx but a
    documented refusal is *unknown*.
    """
    if error is None:
        return Fate.TAKEN
    if isinstance(error, SubmissionUnknownError):
        return Fate.UNKNOWN
    if isinstance(error, ConnectionFailedError):
        return Fate.NOT_SENT
    if isinstance(error, TransportError):
        return Fate.UNKNOWN
    if isinstance(error, AudioDecodeError):
        return Fate.FAILED_AFTER_TAKEN  # a complete answer with broken audio: it was made
    if isinstance(error, ResponseError):
        return Fate.UNKNOWN
    if isinstance(error, APIError):
        return _answered(error)
    if isinstance(error, LocalFileError | OSError):
        return Fate.FAILED_AFTER_TAKEN  # our disk failed while the audio arrived
    return Fate.UNKNOWN  # cancelled mid-request, or anything unforeseen


def _answered(error: APIError) -> Fate:
    if isinstance(error, ContentPolicyError):
        return Fate.FAILED_AFTER_TAKEN if error.provider_code == _OUTPUT_FLAGGED else \
            Fate.REFUSED
    if isinstance(error, _REFUSALS):
        return Fate.REFUSED
    code = error.provider_code
    if code is not None and error.provider in _MINIMAX_FAMILY and error.status_code < 500:
        # A failure inside the service (1000, 1001, 1024, 1033), or a code this version does
        # not know: the service may have worked (and charged) before it failed.
        return Fate.UNKNOWN if code in _SERVER_SIDE else Fate.FAILED_AFTER_TAKEN
    # Suno's body codes are HTTP statuses; the body's wins over the transport's
    status = code if code is not None and error.provider not in _MINIMAX_FAMILY else \
        error.status_code
    if status == 503 and (error.body is not None or error.retry_after is not None):
        return Fate.REFUSED  # a 503 in the service's own words (or with Retry-After)
    if isinstance(error, GenerationTimeoutError) or not 400 <= status < 500:
        return Fate.UNKNOWN  # 500, 502, 504, 408, Suno code 500, an HTML 503...
    return Fate.REFUSED  # any other 4xx: the request was refused as it stood


_MINIMAX_FAMILY = ("minimax", "aimlapi")
#: MiniMax codes that report a failure inside the service (not a refusal of the request).
_SERVER_SIDE = frozenset({1000, 1001, 1024, 1033})


def retried(fate: Fate, error: AiomusicError) -> bool:
    """Whether a paid attempt of ``fate`` may be sent again automatically."""
    return fate is Fate.NOT_SENT or (fate is Fate.REFUSED and error.retryable)


def trace_of(error: BaseException | None, headers: Mapping[str, str] | None = None
             ) -> str | None:
    """The service's trace (or request) id of an attempt, from its error or its headers."""
    found = getattr(error, "trace_id", None)
    if isinstance(found, str) and found:
        return found
    if headers is not None:
        for name in ("trace-id", "x-request-id", "request-id"):
            value = headers.get(name)
            if value:
                return value
    return None


def unknown(operation: str, error: BaseException, *, trace_id: str | None = None,
            task_id: str | None = None) -> SubmissionUnknownError:
    """The `SubmissionUnknownError` for a paid attempt whose answer cannot be trusted."""
    if isinstance(error, SubmissionUnknownError):
        error.trace_id = error.trace_id or trace_id
        error.task_id = error.task_id or task_id
        return error
    status = getattr(error, "status_code", None)
    trace_id = trace_id or trace_of(error)
    said = str(error) or type(error).__name__
    where = f" [trace {trace_id}]" if trace_id and trace_id not in said else ""
    return SubmissionUnknownError(
        f"{operation}: the answer to the paid request cannot be trusted ({said}){where}; the "
        "service may have taken (and charged) it, so aiomusic does not send it again. Check "
        "your account (quote the trace id), then re-submit on purpose if it was not made",
        operation=operation, reason=_reason(error), trace_id=trace_id, task_id=task_id,
        status_code=status if isinstance(status, int) else None)


def _reason(error: BaseException) -> str:
    if isinstance(error, ResponseError):
        return "malformed answer"
    if isinstance(error, APIError):
        return "server error"
    return "connection lost" if isinstance(error, TransportError) else type(error).__name__


class PaidAttempts(Protocol):
    """What wants to know about each attempt of a paid request (a batch's journal).

    ``sending`` is awaited right before the request is written: after the lane granted its
    permit and the rate window's start, so a job that waits in a queue, a pause or a backoff
    has not been recorded as sending. Raising from it sends nothing (the error propagates).
    ``ended`` is awaited once the attempt's fate is known, cancellation included (shielded).
    """

    async def sending(self, operation: str, attempt: int) -> None: ...

    async def ended(self, operation: str, attempt: int, fate: Fate,
                    error: BaseException | None, trace_id: str | None) -> None: ...


#: The paid-attempt hook of the current task (a batch sets one per job).
PAID_ATTEMPTS: contextvars.ContextVar[PaidAttempts | None] = contextvars.ContextVar(
    "aiomusic_paid_attempts", default=None)
