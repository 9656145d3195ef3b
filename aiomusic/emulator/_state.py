"""Mutable emulator state: ids, uploads, tasks, counters."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import secrets
import string
import threading
import uuid
from collections import Counter
from typing import Any

import attrs

__all__ = ["Counters", "RefUpload", "State", "StoredFile", "SunoTask", "fingerprint",
           "new_ref_id"]

_ALNUM = string.ascii_letters + string.digits


def new_ref_id(prefix: str) -> str:
    """An id shaped like ``vocal-2025082518145625-6XW9wCOF``."""
    now = dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y%m%d%H%M%S") + f"{now.microsecond // 10000:02d}"
    return f"{prefix}-{stamp}-{''.join(secrets.choice(_ALNUM) for _ in range(8))}"


def new_trace_id() -> str:
    return secrets.token_hex(16)


def fingerprint(key: str) -> str:
    """A key as the emulator shows it: the first 8 hex digits of its SHA-256 (a real key left
    in the environment must not leak through a test server)."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:8]


@attrs.define
class Counters:
    """What happened, for assertions. Read it through `Emulator.counters` (a snapshot).

    Attributes:
        submissions: paid submissions (generate, add-instrumental) by (api key, operation),
            counted when the request was accepted — even if the answer was then lost.
        rejected: rejections by (operation, reason), e.g. ("aiml.generate", "rate_limit").
        faults: faults fired by (kind, operation).
        requests: requests by path.
        callbacks_sent: callback deliveries answered 2xx; callbacks_failed: failed attempts.
    """

    submissions: Counter[tuple[str, str]] = attrs.field(factory=Counter)
    rejected: Counter[tuple[str, str]] = attrs.field(factory=Counter)
    faults: Counter[tuple[str, str]] = attrs.field(factory=Counter)
    requests: Counter[str] = attrs.field(factory=Counter)
    callbacks_sent: int = 0
    callbacks_failed: int = 0
    max_concurrent: dict[str, int] = attrs.field(factory=dict)

    def paid(self, *, key: str | None = None, operation: str | None = None) -> int:
        """Number of paid submissions, optionally for one key and/or one operation."""
        return sum(
            n
            for (k, op), n in self.submissions.items()
            if (key is None or k == key) and (operation is None or op == operation)
        )

    def fired(self, kind: str | None = None, *, operation: str | None = None) -> int:
        """Number of faults fired, optionally of one kind and/or on one operation."""
        return sum(
            n
            for (k, op), n in self.faults.items()
            if (kind is None or k == kind) and (operation is None or op == operation)
        )

    def copy(self) -> Counters:
        return Counters(
            Counter(self.submissions),
            Counter(self.rejected),
            Counter(self.faults),
            Counter(self.requests),
            self.callbacks_sent,
            self.callbacks_failed,
            dict(self.max_concurrent),
        )

    def as_json(self) -> dict[str, Any]:
        """The counters as the admin path answers them: keys as fingerprints, never in clear."""
        return {
            "submissions": [
                {"key": fingerprint(k), "operation": op, "count": n}
                for (k, op), n in self.submissions.items()
            ],
            "rejected": [
                {"operation": op, "reason": r, "count": n} for (op, r), n in self.rejected.items()
            ],
            "faults": [
                {"fault": f, "operation": op, "count": n} for (f, op), n in self.faults.items()
            ],
            "requests": dict(self.requests),
            "callbacks_sent": self.callbacks_sent,
            "callbacks_failed": self.callbacks_failed,
            "max_concurrent": {fingerprint(k): n for k, n in self.max_concurrent.items()},
        }


@attrs.define
class RefUpload:
    """A music-01 reference: what generation seeds its audio from."""

    ref_id: str
    seed: int
    duration: float


@attrs.define
class StoredFile:
    data: bytes
    mime: str
    name: str


@attrs.define
class SunoTask:
    task_id: str
    key: str
    created: float  # loop clock
    created_ms: int
    param: dict[str, Any]
    seed: int
    failure: str | None  # a failure status decided at submission
    tracks: list[dict[str, Any]] = attrs.field(factory=list)
    operation: str = "add_instrumental"  # record-info's operationType
    parent: str = ""  # record-info's parentMusicId (extends)


class State:
    """All mutable state; counters are guarded by a lock so other threads can read them."""

    def __init__(self, seed: int) -> None:
        self.lock = threading.Lock()
        self.counters = Counters()
        self.refs: dict[str, RefUpload] = {}
        self.files: dict[str, StoredFile] = {}  # path under /files/ -> file
        self.tasks: dict[str, SunoTask] = {}
        self.track_index: dict[str, tuple[str, int]] = {}  # audio id -> (task id, index)
        self.credits: dict[str, int] = {}
        self.in_flight: Counter[str] = Counter()
        self.rng = random.Random(seed)
        self.epoch = 0  # bumped by reset(): background work of an older epoch stops

    def reset(self, seed: int) -> None:
        with self.lock:
            self.counters = Counters()
            self.refs.clear()
            self.files.clear()
            self.tasks.clear()
            self.track_index.clear()
            self.credits.clear()
            self.in_flight.clear()
            self.rng = random.Random(seed)
            self.epoch += 1

    def count_request(self, path: str) -> None:
        with self.lock:
            self.counters.requests[path] += 1

    def count_submission(self, key: str, operation: str) -> None:
        with self.lock:
            self.counters.submissions[(key, operation)] += 1

    def count_rejection(self, operation: str, reason: str) -> None:
        with self.lock:
            self.counters.rejected[(operation, reason)] += 1

    def count_fault(self, kind: str, operation: str) -> None:
        with self.lock:
            self.counters.faults[(kind, operation)] += 1

    def count_callback(self, *, ok: bool, epoch: int) -> None:
        """Count a delivery, unless a reset happened since it began (it belongs to the past)."""
        with self.lock:
            if epoch != self.epoch:
                return
            if ok:
                self.counters.callbacks_sent += 1
            else:
                self.counters.callbacks_failed += 1

    def enter(self, key: str) -> int:
        with self.lock:
            self.in_flight[key] += 1
            n = self.in_flight[key]
            if n > self.counters.max_concurrent.get(key, 0):
                self.counters.max_concurrent[key] = n
            return n

    def leave(self, key: str) -> None:
        with self.lock:
            self.in_flight[key] -= 1

    def new_task_id(self) -> str:
        return uuid.uuid4().hex
