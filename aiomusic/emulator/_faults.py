"""Fault selection: injected (deterministic) first, then seeded random rates; and limits."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Collection

import attrs

from ._config import FAULT_KINDS, OPERATIONS, Faults, Limits

__all__ = ["FaultEngine", "RateLimiter", "Refusal"]

import random


def _matches(target: str, operation: str) -> bool:
    return not target or operation == target or operation.startswith(target + ".")


@attrs.define
class _Injected:
    kind: str
    operation: str
    remaining: int


class FaultEngine:
    """Decides which fault, if any, hits one request."""

    def __init__(self, faults: Faults) -> None:
        self._lock = threading.Lock()
        self._injected: list[_Injected] = []
        self.configure(faults)

    def configure(self, faults: Faults) -> None:
        with self._lock:
            self.faults = faults
            self._rng = random.Random(faults.seed)

    def inject(self, kind: str, *, operation: str = "", count: int = 1) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        if operation and not any(_matches(operation, o) for o in OPERATIONS):
            raise ValueError(f"unknown operation {operation!r}")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._injected.append(_Injected(kind, operation, count))

    def clear(self) -> None:
        with self._lock:
            self._injected.clear()

    def draw(self, operation: str, allowed: Collection[str]) -> str | None:
        """The fault for this request among `allowed` kinds, or None."""
        with self._lock:
            for item in self._injected:
                if item.kind in allowed and _matches(item.operation, operation):
                    item.remaining -= 1
                    if not item.remaining:
                        self._injected.remove(item)
                    return item.kind
            if not self.faults.rates:
                return None
            for kind in allowed:
                rate = self.faults.rates.get(kind, 0.0)
                for key, value in self.faults.rates.items():
                    k, _, op = key.partition("@")
                    if k == kind and op and _matches(op, operation):
                        rate = max(rate, value)
                if rate > 0 and self._rng.random() < rate:
                    return kind
        return None


@attrs.frozen
class Refusal:
    """Why the limits refused a request, with what a gateway would say about its budget."""

    reason: str  # "rate_limit" or "concurrency"
    retry_after: float | None  # seconds until the window has room (None: not known)
    limit: int  # requests allowed per window
    remaining: int  # requests left in the window now
    reset: float  # seconds until the window has room again (0 when it has some)


class RateLimiter:
    """Per (service, key): a sliding window of accepted requests, and generations at once.

    A refused request counts in neither: the service did no work for it. The concurrency cap
    is checked first, as MiniMax answers a connection-limit code (1041) distinct from its
    rate-limit code (1002).
    """

    def __init__(self, limits: Limits) -> None:
        self._lock = threading.Lock()
        self._log: dict[tuple[str, str], deque[float]] = {}
        self._running: dict[tuple[str, str], int] = {}
        self.limits = limits

    def configure(self, limits: Limits) -> None:
        with self._lock:
            self.limits = limits
            self._log.clear()

    def _window(self, service: str) -> tuple[int, float]:
        lim = self.limits
        if service == "suno":
            return lim.suno_requests, lim.suno_window
        return lim.minimax_requests, lim.minimax_window

    def admit(self, service: str, key: str, *, slot: bool = False) -> Refusal | None:
        """Record one request (and, with ``slot``, a generation in flight until `leave`);
        None if allowed, else why not."""
        if not self.limits.enabled:
            return None
        cap, window = self._window(service)
        now = time.monotonic()
        with self._lock:
            log = self._log.setdefault((service, key), deque())
            while log and log[0] <= now - window:
                log.popleft()
            remaining = max(0, cap - len(log))
            reset = max(0.0, log[0] + window - now) if log and not remaining else 0.0
            if slot and self._running.get((service, key), 0) >= self.limits.minimax_concurrent:
                return Refusal("concurrency", None, cap, remaining, reset)
            if not remaining:
                return Refusal("rate_limit", reset, cap, 0, reset)
            log.append(now)
            if slot:
                self._running[(service, key)] = self._running.get((service, key), 0) + 1
        return None

    def leave(self, service: str, key: str) -> None:
        """A generation admitted with ``slot`` ended."""
        with self._lock:
            running = self._running.get((service, key), 0)
            self._running[(service, key)] = max(0, running - 1)
