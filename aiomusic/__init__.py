"""aiomusic: an async client for AI music generation services.

MiniMax ``music-01`` (on the AI/ML API or MiniMax's own hosts) and its current models
(music-2.6 and friends, covers, lyrics, streamed as they are generated), and the Suno API's
Add Instrumental workflow, with adaptive rate limiting, safe retries, streamed uploads,
incremental hex decoding into files, and a local emulator of both services.
"""

from __future__ import annotations

from ._core._budget import Admission, Budget, BudgetGuard, Verdict
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
    EncodingError,
    GenerationTimeoutError,
    InputError,
    InsufficientCreditsError,
    JsonError,
    LocalFileError,
    MaintenanceError,
    MissingTracksError,
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
from ._core._json import JsonLimits
from ._core._lane_store import LaneStore, LaneStoreError
from ._core._lanes import LaneConfig
from ._core._ledger import Ledger, Spending, spent_between
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
from ._core._paid_errors import (
    AlreadyPaidError,
    BatchStoppedError,
    ParentFailedError,
    PreflightError,
)
from ._core._pg_lanes import PostgresLanes
from ._core._redis_lanes import RedisLanes
from ._core._retry import RetryPolicy
from ._core._session import MusicSession
from ._core._task import Cost
from ._version import __version__
from .aimlapi.client import AimlapiResult, AimlapiTask
from .batch._jobfile import JobFileError, load_jobs
from .batch._jobs import MiniMaxJob, SunoJob
from .batch._journal import JournalError, JournalWriteError
from .batch._runner import Batch, BatchSummary, JobOutcome, OutputFile
from .callbacks import CallbackReceiver, parse_callback
from .minimax._results import (
    CoverFeatures,
    LinkDownloadError,
    Lyrics,
    ModelQuota,
    MusicLink,
    Quota,
    SongResult,
    WrittenSong,
)
from .minimax.client import AudioStream
from .suno import PollSchedule, SunoTask

__all__ = [
    "UPLOAD_RETENTION",
    "APIError",
    "Admission",
    "AimlapiResult",
    "AimlapiTask",
    "AiomusicError",
    "AlreadyPaidError",
    "AudioDecodeError",
    "AudioFormat",
    "AudioSetting",
    "AudioStream",
    "AudioValidationError",
    "AuthenticationError",
    "BadRequestError",
    "Batch",
    "BatchStoppedError",
    "BatchSummary",
    "Budget",
    "BudgetGuard",
    "CallbackEvent",
    "CallbackReceiver",
    "CallbackType",
    "ConfigurationError",
    "ConnectionFailedError",
    "ContentPolicyError",
    "Cost",
    "CoverFeatures",
    "DeadlineExceededError",
    "DownloadError",
    "DownloadResult",
    "EncodingError",
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
    "JournalWriteError",
    "JsonError",
    "JsonLimits",
    "LaneConfig",
    "LaneKind",
    "LaneLimitChanged",
    "LaneStore",
    "LaneStoreError",
    "Ledger",
    "LinkDownloadError",
    "LocalFileError",
    "Lyrics",
    "MaintenanceError",
    "MiniMaxJob",
    "MissingTracksError",
    "ModelQuota",
    "MusicLink",
    "MusicSession",
    "NotFoundError",
    "OutputFile",
    "ParentFailedError",
    "PauseEnded",
    "PauseStarted",
    "PermissionDeniedError",
    "PollSchedule",
    "PostgresLanes",
    "PreflightError",
    "Progress",
    "Purpose",
    "Quota",
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
    "SongResult",
    "Spending",
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
    "Verdict",
    "WrittenSong",
    "__version__",
    "load_jobs",
    "parse_callback",
    "spent_between",
]
