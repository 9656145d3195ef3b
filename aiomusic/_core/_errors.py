"""The aiomusic exception tree.

Every failure a caller can meet is one of these, so ``except AiomusicError`` catches all of them.
Context lives in attributes (``status_code``, ``provider_code``, ``trace_id``, ``retry_after``,
``task_id``); messages say what to do next. Keys never appear in any of them.

::

    AiomusicError
    ├── SessionClosedError            (also RuntimeError) the session was used after close
    ├── ConfigurationError            (also ValueError)   e.g. no API key for a service
    ├── InputError                    (also ValueError)   a request invalid before sending
    │   ├── AudioValidationError                          a reference file is not usable
    │   └── PreflightError       (also ConfigurationError) a local check failed; nothing sent
    ├── TransportError                                    the network failed
    │   ├── ConnectionFailedError                         nothing reached the service
    │   └── TransferTimeoutError      (also TimeoutError) a read/write timed out (not paid)
    ├── SubmissionUnknownError                            a paid request may have been taken
    ├── DeadlineExceededError         (also TimeoutError) the caller's total timeout passed
    ├── ResponseError                                     the answer could not be understood
    │   ├── AudioDecodeError                              invalid / odd-length / short / no hex
    │   ├── JsonError                                     JSON too large, too deep, or not JSON
    │   ├── EncodingError                                 a compressed body that cannot be undone
    │   └── MissingTracksError                            a Suno task "succeeded" without tracks
    ├── APIError                                          the service said no
    │   ├── BadRequestError                               400, 2013, Suno 400/413
    │   ├── AuthenticationError                           401, 1004, 2049
    │   ├── PermissionDeniedError                         2044
    │   ├── InsufficientCreditsError                      403 (AI/ML), 1008, Suno 429
    │   ├── NotFoundError                                 404
    │   ├── ContentPolicyError                            1026, 1027, 1042
    │   ├── RateLimitError                                429, 1002/1039/1041/2045, Suno 405/430
    │   ├── UsageLimitError                               2056 (5-hour usage window)
    │   ├── ServiceUnavailableError                       503, 502
    │   │   └── MaintenanceError                          Suno 455, AI/ML "under maintenance"
    │   ├── ServerError                                   500, 1000, 1024, 1033, unknown codes
    │   └── GenerationTimeoutError    (also TimeoutError) 504, 1001
    ├── TaskFailedError                                   a Suno task ended in a failure status
    ├── AlreadyPaidError                                  a batch job paid for in an earlier run
    ├── BatchStoppedError                                 a batch stopped sending paid requests
    ├── ParentFailedError                                 a chained batch job's parent failed
    ├── DownloadError                                     a track could not be fetched safely
    └── LocalFileError                (also OSError)      a batch could not read or write a file
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

__all__ = [
    "APIError",
    "AiomusicError",
    "AudioDecodeError",
    "AudioValidationError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConnectionFailedError",
    "ContentPolicyError",
    "DeadlineExceededError",
    "DownloadError",
    "EncodingError",
    "GenerationTimeoutError",
    "InputError",
    "InsufficientCreditsError",
    "JsonError",
    "LocalFileError",
    "MaintenanceError",
    "MissingTracksError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseError",
    "ServerError",
    "ServiceUnavailableError",
    "SessionClosedError",
    "SubmissionUnknownError",
    "TaskFailedError",
    "TransferTimeoutError",
    "TransportError",
    "UsageLimitError",
]


class AiomusicError(Exception):
    """Base class of every error aiomusic raises.

    Attributes:
        message: The human-readable explanation (also ``str(error)``).
        retryable: Whether aiomusic's retry policy may try the same call again.
        retry_after: Seconds the service asked us to wait, when it said so.
    """

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message


class SessionClosedError(AiomusicError, RuntimeError):
    """The session was closed (or never entered); open a new ``MusicSession``."""


class ConfigurationError(AiomusicError, ValueError):
    """The session is not configured for this call (a missing key, a bad URL, ...)."""


class InputError(AiomusicError, ValueError):
    """A request argument is invalid; nothing was sent.

    Attributes:
        field: The argument at fault, when there is one.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class AudioValidationError(InputError):
    """A reference audio file cannot be used (wrong format, too short, too long, truncated).

    Attributes:
        source: A printable name of the file (its path or ``"<bytes>"``).
        duration: The measured duration in seconds, when it could be measured.
    """

    def __init__(self, message: str, *, source: str, duration: float | None = None) -> None:
        super().__init__(message, field="source")
        self.source = source
        self.duration = duration


class TransportError(AiomusicError):
    """The network failed before a complete answer arrived.

    Attributes:
        operation: What was being done (``"minimax.generate"``, ...).
    """

    retryable = True

    def __init__(self, message: str, *, operation: str, retryable: bool | None = None) -> None:
        super().__init__(message, retryable=retryable)
        self.operation = operation


class ConnectionFailedError(TransportError):
    """No connection could be made; the request never reached the service (safe to retry)."""


class TransferTimeoutError(TransportError, TimeoutError):
    """A read or write phase timed out on a call that is safe to repeat."""


class SubmissionUnknownError(AiomusicError):
    """A paid request may have reached the service, but no answer arrived.

    aiomusic does not re-send it by default, because the service may already be generating (and
    charging for) it. Check your dashboard or task list, then re-submit on purpose with
    ``resubmit_unknown=True`` if you accept paying twice.

    Attributes:
        operation: The paid operation (``"minimax.generate"``, ``"suno.add_instrumental"``).
        reason: What went wrong (``"read timeout"``, ``"connection lost"``, ...).
        trace_id: The service's trace or request id of the attempt, when known: quote it to
            the service's support to learn whether it was made.
        task_id: The task id, when the service gave one.
        status_code: The HTTP status of the answer, when one arrived.
    """

    def __init__(self, message: str, *, operation: str, reason: str,
                 trace_id: str | None = None, task_id: str | None = None,
                 status_code: int | None = None) -> None:
        super().__init__(message, retryable=False)
        self.operation = operation
        self.reason = reason
        self.trace_id = trace_id
        self.task_id = task_id
        self.status_code = status_code


class DeadlineExceededError(AiomusicError, TimeoutError):
    """The caller's total ``timeout`` for an operation passed.

    Attributes:
        timeout: The deadline in seconds.
    """

    def __init__(self, message: str, *, timeout: float,
                 retry_after: float | None = None) -> None:
        super().__init__(message, retryable=False, retry_after=retry_after)
        self.timeout = timeout


class ResponseError(AiomusicError):
    """The service answered something aiomusic cannot understand (bad JSON, missing fields).

    Attributes:
        status_code: The HTTP status of the answer, when known.
        trace_id: The service's trace id, when known.
    """

    def __init__(self, message: str, *, status_code: int | None = None,
                 trace_id: str | None = None, retryable: bool = False) -> None:
        super().__init__(message, retryable=retryable)
        self.status_code = status_code
        self.trace_id = trace_id


class AudioDecodeError(ResponseError):
    """The audio in the answer is not valid hex, is empty, or is shorter than the service
    claimed."""


class JsonError(ResponseError):
    """A JSON answer or callback body that is too large, nested too deeply, or not JSON.

    Attributes:
        reason: ``"too large"``, ``"too deep"``, ``"too many values"`` or ``"not JSON"``.
    """

    def __init__(self, message: str, *, reason: str, status_code: int | None = None) -> None:
        super().__init__(message, status_code=status_code)
        self.reason = reason


class EncodingError(ResponseError):
    """A compressed body aiomusic cannot decode (an unknown encoding, ``br`` without the
    brotli package, or corrupt or cut-off data)."""


class MissingTracksError(ResponseError):
    """A Suno task reported ``SUCCESS`` but its answer holds no track (or a track without an
    audio URL): success without audio is not success. Looking the task up again may find them.

    Attributes:
        task_id: The task.
    """

    def __init__(self, message: str, *, task_id: str) -> None:
        super().__init__(message, retryable=True)
        self.task_id = task_id


class APIError(AiomusicError):
    """The service rejected the call, on either error channel (HTTP status or a body code).

    Attributes:
        provider: ``"aimlapi"``, ``"minimax"`` or ``"suno"``.
        status_code: The HTTP status of the answer.
        provider_code: The code inside the body (``base_resp.status_code`` or Suno's ``code``).
        provider_message: The message the service gave, verbatim.
        trace_id: The service's trace or request id, to quote to its support.
        retry_after: Seconds to wait, when the service said so.
        body: The decoded error body (small; never the audio).
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status_code: int,
        provider_code: int | None = None,
        provider_message: str | None = None,
        trace_id: str | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, retryable=retryable, retry_after=retry_after)
        self.provider = provider
        self.status_code = status_code
        self.provider_code = provider_code
        self.provider_message = provider_message
        self.trace_id = trace_id
        self.body = body


class BadRequestError(APIError):
    """The service found the request invalid; fix the arguments named in the message."""


class AuthenticationError(APIError):
    """The API key is missing, wrong, or does not match its group; check the key."""


class PermissionDeniedError(APIError):
    """The key has no permission for this API; enable it in the provider's console."""


class InsufficientCreditsError(APIError):
    """The account is out of credits or balance; top it up. Never retried."""


class NotFoundError(APIError):
    """The path or resource does not exist; check the base URL and the ids."""


class ContentPolicyError(APIError):
    """The input or output was flagged by the service's content filter; change the input."""


class RateLimitError(APIError):
    """Too many requests for this key; aiomusic slows the lane down and retries.

    Attributes:
        limit: Which limit refused the call, when the answer says: ``"rate"`` (too many
            requests per window: the lane pauses) or ``"concurrency"`` (too many at once: the
            lane lowers its concurrency); ``None`` when it does not say.
    """

    retryable = True

    def __init__(self, message: str, *, limit: Literal["rate", "concurrency"] | None = None,
                 **context: Any) -> None:
        super().__init__(message, **context)
        self.limit = limit


class UsageLimitError(APIError):
    """The plan's usage window is spent; wait for the next window or upgrade the plan."""


class ServiceUnavailableError(APIError):
    """The service is temporarily unavailable; retried with backoff."""

    retryable = True


class MaintenanceError(ServiceUnavailableError):
    """The service is under maintenance; retried with longer waits."""


class ServerError(APIError):
    """The service failed internally; retried with backoff."""

    retryable = True


class GenerationTimeoutError(APIError, TimeoutError):
    """The service timed out generating; retried with backoff."""

    retryable = True


class TaskFailedError(AiomusicError):
    """A Suno task ended in a failure status.

    Attributes:
        task_id: The task.
        status: ``CREATE_TASK_FAILED``, ``GENERATE_AUDIO_FAILED``, ``CALLBACK_EXCEPTION``,
            ``SENSITIVE_WORD_ERROR``, or a callback ``error``.
        error_code: The service's ``errorCode``, when given.
        error_message: The service's ``errorMessage``, when given.
    """

    def __init__(self, message: str, *, task_id: str, status: str,
                 error_code: int | None = None, error_message: str | None = None) -> None:
        super().__init__(message, retryable=False)
        self.task_id = task_id
        self.status = status
        self.error_code = error_code
        self.error_message = error_message


class DownloadError(AiomusicError):
    """A track could not be downloaded safely (refused URL, wrong type, too large, cut off).

    Attributes:
        url: The URL, with any query string removed.
    """

    def __init__(self, message: str, *, url: str, retryable: bool = False) -> None:
        super().__init__(message, retryable=retryable)
        self.url = url


class LocalFileError(AiomusicError, OSError):
    """A batch job could not read or write a local file (disk full, permissions, a file
    removed while the batch ran); the original ``OSError`` is its ``__cause__``.

    Attributes:
        path: The file at fault, when known.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message, retryable=False)
        self.path = path
