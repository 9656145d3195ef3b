"""aiomusic: an async client for AI music generation services.

MiniMax ``music-01`` (on the AI/ML API or MiniMax's own hosts) and the Suno API's Add
Instrumental workflow, with adaptive rate limiting, safe retries, streamed uploads, incremental
hex decoding into files, and a local emulator of both services.
"""

from __future__ import annotations

from ._core._config import Endpoints, LaneKind, Service
from ._core._errors import (
    AiomusicError,
    APIError,
    AudioDecodeError,
    AudioValidationError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConnectionFailedError,
    ContentPolicyError,
    DeadlineExceededError,
    DownloadError,
    GenerationTimeoutError,
    InputError,
    InsufficientCreditsError,
    LocalFileError,
    MaintenanceError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseError,
    ServerError,
    ServiceUnavailableError,
    SessionClosedError,
    SubmissionUnknownError,
    TaskFailedError,
    TransferTimeoutError,
    TransportError,
    UsageLimitError,
)
from ._core._events import (
    Event,
    JobProgress,
    LaneLimitChanged,
    PauseEnded,
    PauseStarted,
    Progress,
    RequestFinished,
    RequestStarted,
    RetryScheduled,
)
from ._core._lane_store import LaneStore, LaneStoreError
from ._core._lanes import LaneConfig
from ._core._models import (
    UPLOAD_RETENTION,
    AudioFormat,
    AudioSetting,
    CallbackEvent,
    CallbackType,
    DownloadResult,
    ExtraInfo,
    GenerationResult,
    Purpose,
    ReferenceUpload,
    TaskRecord,
    TaskResult,
    TaskStatus,
    Track,
    UploadedFile,
)
from ._core._pg_lanes import PostgresLanes
from ._core._redis_lanes import RedisLanes
from ._core._retry import RetryPolicy
from ._core._session import MusicSession
from ._version import __version__
from .batch._jobs import JobFileError, MiniMaxJob, SunoJob, load_jobs
from .batch._journal import JournalError
from .batch._runner import Batch, BatchSummary, JobOutcome, OutputFile
from .callbacks import CallbackReceiver, parse_callback
from .minimax.client import AudioStream
from .suno import PollSchedule, SunoTask

__all__ = [
    "UPLOAD_RETENTION",
    "APIError",
    "AiomusicError",
    "AudioDecodeError",
    "AudioFormat",
    "AudioSetting",
    "AudioStream",
    "AudioValidationError",
    "AuthenticationError",
    "BadRequestError",
    "Batch",
    "BatchSummary",
    "CallbackEvent",
    "CallbackReceiver",
    "CallbackType",
    "ConfigurationError",
    "ConnectionFailedError",
    "ContentPolicyError",
    "DeadlineExceededError",
    "DownloadError",
    "DownloadResult",
    "Endpoints",
    "Event",
    "ExtraInfo",
    "GenerationResult",
    "GenerationTimeoutError",
    "InputError",
    "InsufficientCreditsError",
    "JobFileError",
    "JobOutcome",
    "JobProgress",
    "JournalError",
    "LaneConfig",
    "LaneKind",
    "LaneLimitChanged",
    "LaneStore",
    "LaneStoreError",
    "LocalFileError",
    "MaintenanceError",
    "MiniMaxJob",
    "MusicSession",
    "NotFoundError",
    "OutputFile",
    "PauseEnded",
    "PauseStarted",
    "PermissionDeniedError",
    "PollSchedule",
    "PostgresLanes",
    "Progress",
    "Purpose",
    "RateLimitError",
    "RedisLanes",
    "ReferenceUpload",
    "RequestFinished",
    "RequestStarted",
    "ResponseError",
    "RetryPolicy",
    "RetryScheduled",
    "ServerError",
    "Service",
    "ServiceUnavailableError",
    "SessionClosedError",
    "SubmissionUnknownError",
    "SunoJob",
    "SunoTask",
    "TaskFailedError",
    "TaskRecord",
    "TaskResult",
    "TaskStatus",
    "Track",
    "TransferTimeoutError",
    "TransportError",
    "UploadedFile",
    "UsageLimitError",
    "__version__",
    "load_jobs",
    "parse_callback",
]
