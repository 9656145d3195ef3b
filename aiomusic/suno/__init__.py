"""Suno API (sunoapi.org): Add Instrumental, tasks, callbacks, downloads, credits."""

from __future__ import annotations

from .._io._download import safe_filename
from ._tasks import PollSchedule, SunoTask
from .client import SunoClient

__all__ = ["PollSchedule", "SunoClient", "SunoTask", "safe_filename"]
