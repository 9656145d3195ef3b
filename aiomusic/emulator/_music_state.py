"""State of the current MiniMax models in the emulator: plans, quotas, links, feature ids.

A key's Token Plan is read from the key itself, so that tests and benchmarks (in-process or
not) pick it without an admin call:

- a key containing ``plus`` is on the Plus plan: music-2.6, music-cover and music-3.0 answer
  2061 (not on your plan); the ``-free`` models and music-2.5(+)/2.0 work;
- ``quota-N`` in a key gives it N calls per interval of each paid model (default 500), then
  1028 (quota exhausted); ``weekly-N`` a weekly cap (default 5000), then 1030;
- the ``-free`` models use no quota, and have the free plan's limits: a twentieth of the
  configured request rate and 3 of 20 concurrent generations.

Everything here is forgotten on `reset()` (the state's epoch moves on).
"""

from __future__ import annotations

import re
import secrets
import threading
import time
import weakref
from collections import Counter, deque

import attrs

from ._config import Limits
from ._state import State

__all__ = ["Feature", "Link", "MusicState", "music_state"]

#: Models the Plus plan does not include (MiniMax: "Music-2.6 requires the Max plan").
MAX_PLAN_ONLY = ("music-2.6", "music-cover", "music-3.0")
INTERVAL_MS = 5 * 3600 * 1000
WEEK_MS = 7 * 24 * 3600 * 1000
_QUOTA = re.compile(r"quota-(\d+)")
_WEEKLY = re.compile(r"weekly-(\d+)")


@attrs.frozen
class Feature:
    """A preprocessed cover reference: what the second step generates from."""

    seed: int
    seconds: float
    lyrics: str


@attrs.frozen
class Link:
    """A generated song kept for its link."""

    path: str  # under app.state.files
    expires: float  # epoch seconds
    signature: str


class MusicState:
    """Per-emulator state of the current models (guarded by its own lock)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.lock = threading.Lock()
        self.features: dict[str, Feature] = {}
        self.links: dict[str, Link] = {}
        self.used: Counter[tuple[str, str]] = Counter()  # (key, model) -> calls this interval
        self.weekly: Counter[tuple[str, str]] = Counter()
        self.started_ms = int(time.time() * 1000)
        self._free_log: dict[str, deque[float]] = {}
        self._free_running: Counter[str] = Counter()

    def new_feature(self, feature: Feature) -> str:
        feature_id = "cover-feature-" + secrets.token_hex(12)
        with self.lock:
            self.features[feature_id] = feature
        return feature_id

    def plan_refusal(self, key: str, model: str) -> tuple[int, str] | None:
        """(code, message) when the key's plan or quota refuses ``model``."""
        if model.endswith("-free"):
            return None
        if "plus" in key and model in MAX_PLAN_ONLY:
            return 2061, f"model {model} is not available on your current Token Plan"
        with self.lock:
            if self.used[key, model] >= _number(_QUOTA, key, 500):
                return 1028, "quota exhausted for the current interval"
            if self.weekly[key, model] >= _number(_WEEKLY, key, 5000):
                return 1030, "weekly quota exhausted"
        return None

    def charge(self, key: str, model: str) -> None:
        """Count an accepted generation against the key's quota (the free models use none)."""
        if not model.endswith("-free"):
            with self.lock:
                self.used[key, model] += 1
                self.weekly[key, model] += 1

    def remains(self, key: str) -> list[dict[str, object]]:
        """``model_remains`` of ``/v1/token_plan/remains`` for ``key``."""
        start = self.started_ms
        now = int(time.time() * 1000)
        out: list[dict[str, object]] = []
        for model in ("music-2.6", "music-cover", "music-2.5+", "music-2.5"):
            if "plus" in key and model in MAX_PLAN_ONLY:
                continue
            with self.lock:
                used, weekly = self.used[key, model], self.weekly[key, model]
            out.append({
                "model_name": model, "start_time": start, "end_time": start + INTERVAL_MS,
                "remains_time": max(0, start + INTERVAL_MS - now),
                "current_interval_total_count": _number(_QUOTA, key, 500),
                "current_interval_usage_count": used,
                "current_weekly_total_count": _number(_WEEKLY, key, 5000),
                "current_weekly_usage_count": weekly, "weekly_start_time": start,
                "weekly_end_time": start + WEEK_MS,
                "weekly_remains_time": max(0, start + WEEK_MS - now)})
        return out

    def enter_free(self, key: str, limits: Limits) -> float | None:
        """Admit a free-model generation: None, or seconds to wait (rate) / 1.0 (too many)."""
        if not limits.enabled:
            return None
        cap = max(1, limits.minimax_requests // 20)
        now = time.monotonic()
        with self.lock:
            log = self._free_log.setdefault(key, deque())
            while log and log[0] <= now - limits.minimax_window:
                log.popleft()
            if len(log) >= cap:
                return max(0.01, log[0] + limits.minimax_window - now)
            if self._free_running[key] >= max(1, limits.minimax_concurrent * 3 // 20):
                return 1.0
            log.append(now)
            self._free_running[key] += 1
        return None

    def leave_free(self, key: str, limits: Limits) -> None:
        if limits.enabled:
            with self.lock:
                self._free_running[key] -= 1


def _number(pattern: re.Pattern[str], key: str, default: int) -> int:
    found = pattern.search(key)
    return int(found.group(1)) if found else default


_STATES: weakref.WeakKeyDictionary[State, MusicState] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def music_state(state: State) -> MusicState:
    """The current models' state of an emulator (fresh after each reset)."""
    with _GUARD:
        found = _STATES.get(state)
        if found is None or found.epoch != state.epoch:
            found = _STATES[state] = MusicState(state.epoch)
        return found
