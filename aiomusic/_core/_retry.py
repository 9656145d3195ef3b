"""Retry policy: what to retry, how long to wait (full jitter, Retry-After), and deadlines."""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping

import attrs

from ._errors import AiomusicError, MaintenanceError, SubmissionUnknownError

__all__ = ["MAX_RETRY_AFTER", "RetryPolicy", "parse_retry_after"]

# A service asking for a pause longer than this is treated as asking for this long: a bad header
# (or a hostile one) must not park a batch for a day.
MAX_RETRY_AFTER = 300.0


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, ``Retry-After: <seconds>`` or an HTTP-date.

    Returns ``None`` when no header is usable. Negative waits become 0; the result is capped at
    ``MAX_RETRY_AFTER``.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return _clamp(float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return _clamp(float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    return _clamp(when.timestamp() - current)


def _clamp(seconds: float) -> float | None:
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


@attrs.frozen
class RetryPolicy:
    """How failed calls are retried. Set it per session and override it per call.

    Waits use exponential backoff with full jitter: attempt *n* waits a random time in
    ``[0, min(max_delay, base_delay * 2 ** (n - 1))]``. A service's Retry-After wins over the
    backoff, capped at ``max_retry_after``. Maintenance answers (Suno 455) back off from
    ``maintenance_delay`` instead. A wait that would pass the caller's deadline is not taken:
    the error is raised with ``retry_after`` set.

    Attributes:
        max_attempts: Attempts in all, the first included (1 disables retries).
        base_delay: The first backoff ceiling in seconds.
        max_delay: The largest backoff ceiling.
        maintenance_delay: The first backoff ceiling for maintenance answers.
        max_retry_after: The longest Retry-After honoured.
        resubmit_unknown: Re-send a *paid* request whose fate is unknown (read timeout,
            connection lost after sending). Off by default: it may charge twice.
        jitter: Randomise waits (turn off only in tests).
    """

    max_attempts: int = attrs.field(default=6, validator=attrs.validators.ge(1))
    base_delay: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    max_delay: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))
    maintenance_delay: float = attrs.field(default=15.0, validator=attrs.validators.ge(0))
    max_retry_after: float = attrs.field(default=120.0, validator=attrs.validators.ge(0))
    resubmit_unknown: bool = False
    jitter: bool = True

    @classmethod
    def never(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_attempts=1)

    def backoff(self, attempt: int, *, maintenance: bool = False,
                rng: random.Random | None = None) -> float:
        """The backoff wait after failed attempt number ``attempt`` (1-based)."""
        base = self.maintenance_delay if maintenance else self.base_delay
        ceiling = max(self.max_delay, self.maintenance_delay) if maintenance else self.max_delay
        top = min(ceiling, base * 2.0 ** min(attempt - 1, 32))
        if not self.jitter:
            return top
        return (rng or _RNG).uniform(0.0, top)

    def should_retry(self, error: AiomusicError, *, paid: bool) -> bool:
        """Whether ``error`` may be retried for a call that is ``paid`` or not."""
        if isinstance(error, SubmissionUnknownError):
            return paid and self.resubmit_unknown
        return error.retryable

    def wait_for(self, error: AiomusicError, *, attempt: int, paid: bool,
                 rng: random.Random | None = None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` to give up."""
        if attempt >= self.max_attempts or not self.should_retry(error, paid=paid):
            return None
        if error.retry_after is not None:
            return min(error.retry_after, self.max_retry_after)
        return self.backoff(attempt, maintenance=isinstance(error, MaintenanceError), rng=rng)


_RNG = random.Random()
