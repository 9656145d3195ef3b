"""Fault selection: injected (deterministic) first, then seeded random rates; and limits."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Collection

import attrs

from ._config import FAULT_KINDS, OPERATIONS, Faults, Limits

__all__ = ["FaultEngine", "RateLimiter"]

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


class RateLimiter:
    """Sliding-window request counts per (service, key)."""

    def __init__(self, limits: Limits) -> None:
        self._lock = threading.Lock()
        self._log: dict[tuple[str, str], deque[float]] = {}
        self.limits = limits

    def configure(self, limits: Limits) -> None:
        with self._lock:
            self.limits = limits
            self._log.clear()

    def hit(self, service: str, key: str) -> float | None:
        """Record one request; None if allowed, else seconds until a slot frees."""
        lim = self.limits
        if not lim.enabled:
            return None
        if service == "suno":
            cap, window = lim.suno_requests, lim.suno_window
        else:
            cap, window = lim.minimax_requests, lim.minimax_window
        now = time.monotonic()
        with self._lock:
            log = self._log.setdefault((service, key), deque())
            while log and log[0] <= now - window:
                log.popleft()
            if len(log) >= cap:
                return max(0.0, log[0] + window - now)
            log.append(now)
        return None
