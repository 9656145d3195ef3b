"""Where shared lanes keep their state: the store's interface, its errors, and its data.

`LaneStore` is what `RedisLanes` and `PostgresLanes` implement: one atomic step per method,
each a single round trip on the store's own clock, called from worker threads. The store also
keeps held permits alive from one thread of its own (see `SharedLane` in ``_shared_lanes.py``
for the steps of a request).
"""

from __future__ import annotations

import abc
import hashlib
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal, ParamSpec, TypeVar

import attrs

from . import _lane_policy as policy
from ._errors import AiomusicError
from ._lane_policy import PACE
from ._lanes import LaneConfig
from ._log import logger

__all__ = ["LaneRef", "LaneStore", "LaneStoreError", "Observation", "Step", "fingerprint",
           "from_fields", "store_arguments", "to_fields"]

P = ParamSpec("P")
T = TypeVar("T")


class LaneStoreError(AiomusicError):
    """The store that shares the lanes (Redis, PostgreSQL) failed; nothing was sent.

    The session fails closed: without the shared budget a request could exceed the key's
    limits. Check that the server runs and the URL is right, or pass
    ``on_unavailable="local"`` to the store to fall back to in-process lanes (with a warning).
    """

    retryable = False


def fingerprint(key: str) -> str:
    """A stable name for an API key that does not reveal it (24 hex digits)."""
    digest = hashlib.blake2b(key.encode(), digest_size=12, person=b"aiomusic-lanes")
    return digest.hexdigest()


@attrs.frozen
class LaneRef:
    """One lane of one key in a store: ``ident`` is ``"<key fingerprint>:<lane name>"``."""

    ident: str
    config: LaneConfig


@attrs.frozen
class Step:
    """A store's answer to *acquire* or *start*.

    ``kind``: ``"ok"`` (granted: send at ``slot``), ``"pause"`` (wait ``wait`` seconds),
    ``"full"`` (the limit is taken), ``"lost"`` (the permit expired meanwhile), ``"late"``
    (woke up too long after the reserved start: given back, to queue again).
    """

    kind: Literal["ok", "pause", "full", "lost", "late"]
    now: float
    slot: float = 0.0
    wait: float = 0.0
    at_edge: bool = False
    level: int = 0
    held: int = 0
    limit: int = 0
    guard: float = 0.0


@attrs.frozen
class Observation:
    """A consistent read of a lane's state: its fields, version, the store's time, and the
    requests sent and not answered."""

    fields: Mapping[str, str]
    version: int
    now: float
    sending: int


_FLOATS = ("limit", "guard", "ceiling", "rtt", "last_cut", "paused_until", "pause_started")
_INTS = ("proven", "consecutive")


def to_fields(control: policy.Control) -> dict[str, str]:
    """``control`` as the store keeps it: text, ``inf`` included."""
    fields = {name: repr(float(getattr(control, name))) for name in _FLOATS}
    fields.update({name: str(getattr(control, name)) for name in _INTS})
    fields["slow_start"] = "1" if control.slow_start else "0"
    return fields


def from_fields(fields: Mapping[str, str], config: LaneConfig) -> policy.Control:
    """The state a store kept; fields it lacks (a new or lost lane) start afresh."""
    start = policy.initial(config)
    values: dict[str, Any] = {}
    for name in _FLOATS:
        if name in fields:
            values[name] = float(fields[name])
    for name in _INTS:
        if name in fields:
            values[name] = int(fields[name])
    if "slow_start" in fields:
        values["slow_start"] = fields["slow_start"] == "1"
    return attrs.evolve(start, **values)


class LaneStore(abc.ABC):
    """Where shared lanes keep their state. Use `RedisLanes` or `PostgresLanes`.

    Its methods are synchronous (each one round trip to the server) and run in worker threads.
    A store may serve several sessions; it keeps held permits alive from one thread of its own,
    which runs only while permits are held.

    Args:
        lease: Seconds a permit stays held without a refresh; a dead holder's permits come back
            after at most this long. Refreshed every third of it.
        on_unavailable: ``"fail"`` (default): a request that cannot reach the store raises
            `LaneStoreError` and nothing is sent. ``"local"``: fall back to in-process lanes
            with a warning, and try the store again every few seconds.
    """

    def __init__(self, *, lease: float = 15.0,
                 on_unavailable: Literal["fail", "local"] = "fail") -> None:
        if not (math.isfinite(lease) and lease > 0):
            raise ValueError(f"lease must be a positive number of seconds, got {lease!r}")
        if on_unavailable not in ("fail", "local"):
            raise ValueError(f"on_unavailable must be 'fail' or 'local', got {on_unavailable!r}")
        self.lease = lease
        self.on_unavailable = on_unavailable
        self._held: dict[LaneRef, set[str]] = {}
        self._lock = threading.Lock()
        self._keeper: threading.Thread | None = None
        self._closed = threading.Event()

    # -- the steps (one atomic operation each, on the store's clock) ------------------------

    @abc.abstractmethod
    def check(self) -> None:
        """Connect (and prepare the schema) once; raise `LaneStoreError` if unreachable."""

    @abc.abstractmethod
    def acquire(self, lane: LaneRef, permit: str) -> Step:
        """Past the pause, take a permit and reserve a start (``"ok"``), or say why not."""

    @abc.abstractmethod
    def start(self, lane: LaneRef, permit: str, *, even_late: bool = False) -> Step:
        """At the reserved start: ``"ok"`` (with the level), or ``"pause"`` / ``"lost"`` /
        ``"late"`` (woke more than the guard past the start, and not ``even_late``) with the
        start and the permit given back."""

    @abc.abstractmethod
    def refresh(self, lane: LaneRef, permits: list[str]) -> int:
        """Extend the leases of ``permits``; returns how many were still held."""

    @abc.abstractmethod
    def observe(self, lane: LaneRef) -> Observation:
        """Read the lane's state for the control policy."""

    @abc.abstractmethod
    def apply(self, lane: LaneRef, permit: str, version: int, fields: Mapping[str, str]) -> bool:
        """Release ``permit`` and, if the state is still at ``version``, write ``fields``;
        False (nothing released) when the state changed meanwhile."""

    @abc.abstractmethod
    def release(self, lane: LaneRef, permit: str) -> None:
        """Give ``permit`` back (its start stays counted: it may have been sent)."""

    @abc.abstractmethod
    def _close_driver(self) -> None:
        """Close the connections."""

    # -- lifecycle and the lease keeper -----------------------------------------------------

    def close(self) -> None:
        """Stop refreshing and close the connections (the session does it for a store it
        created from a URL)."""
        self._closed.set()
        keeper = self._keeper
        if keeper is not None:
            keeper.join()
        self._close_driver()

    #: The driver's errors, and the server as messages name it (set by each store).
    _errors: tuple[type[Exception], ...] = ()
    _where = "the server"

    def _connect(self) -> None:  # noqa: B027 - a hook, empty unless a store connects lazily
        """Called before each step, inside the error mapping."""

    def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` with the driver's errors turned into `LaneStoreError`."""
        if self._closed.is_set():
            raise LaneStoreError(f"this {type(self).__name__} was closed; nothing was sent. "
                                 "Create a new one (or a new session from a URL)")
        try:
            self._connect()
            return fn(*args, **kwargs)
        except self._errors as exc:
            server = self._where.partition(" ")[0]
            raise LaneStoreError(
                f"the shared lanes' {self._where} failed ({type(exc).__name__}: {exc}); nothing "
                f"was sent. Check that {server} runs and the URL is right, or pass "
                "on_unavailable='local' to fall back to in-process lanes") from exc

    def __enter__(self) -> LaneStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def hold(self, lane: LaneRef, permit: str) -> None:
        """Keep ``permit``'s lease alive until `unhold()`."""
        with self._lock:
            self._held.setdefault(lane, set()).add(permit)
            if self._keeper is None and not self._closed.is_set():
                self._keeper = threading.Thread(target=self._keep, name="aiomusic-lanes-lease",
                                                daemon=True)
                self._keeper.start()

    def unhold(self, lane: LaneRef, permit: str) -> None:
        with self._lock:
            held = self._held.get(lane)
            if held is not None:
                held.discard(permit)
                if not held:
                    del self._held[lane]

    def _keep(self) -> None:
        """Refresh every held lease each third of the lease; stop when none is held."""
        while not self._closed.wait(self.lease / 3):
            with self._lock:
                todo = {lane: sorted(ids) for lane, ids in self._held.items()}
                if not todo:
                    self._keeper = None
                    return
            for lane, ids in todo.items():
                try:
                    kept = self.refresh(lane, ids)
                except LaneStoreError as exc:
                    logger.warning("lanes: could not refresh %d permit(s) of %s: %s",
                                   len(ids), lane.ident, exc)
                    continue
                if kept < len(ids):  # expired meanwhile: the store was lost or too slow
                    logger.warning("lanes: %d permit(s) of %s expired while held",
                                   len(ids) - kept, lane.ident)
        with self._lock:
            self._keeper = None


def store_arguments(config: LaneConfig, lease: float) -> tuple[float, int, int, float, int,
                                                                float, float]:
    """What *acquire* needs of a lane's configuration, in the order the stores take it:
    lease, max_concurrency, starting limit, starting guard, rate (0: none), per, pace."""
    start = policy.initial(config)
    return (lease, config.max_concurrency, config.start, start.guard, config.rate or 0,
            config.per, PACE)
