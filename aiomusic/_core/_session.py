"""MusicSession: lifecycle, configuration, lanes, and the one choke point every request passes."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar, overload

import anyio
import httpx

from ._call import Call, Classifier, Handler, json_handler
from ._classify import classify_aimlapi, classify_minimax, classify_suno
from ._config import DEFAULT_TIMEOUT, Endpoints, Keys, LaneKind, Service
from ._errors import (
    AiomusicError,
    APIError,
    ConfigurationError,
    ConnectionFailedError,
    DeadlineExceededError,
    RateLimitError,
    SessionClosedError,
    SubmissionUnknownError,
    TransferTimeoutError,
    TransportError,
)
from ._events import Event, RequestFinished, RequestStarted, RetryScheduled
from ._lanes import Lane, LaneConfig, Permit
from ._log import configure_from_env, logger, redact
from ._retry import RetryPolicy

if TYPE_CHECKING:
    from ..minimax.client import MiniMaxClient
    from ..suno.client import SunoClient

__all__ = ["MusicSession", "default_lanes"]

T = TypeVar("T")

_CLASSIFIERS: Mapping[Service, Classifier] = {
    Service.AIMLAPI: classify_aimlapi,
    Service.MINIMAX: classify_minimax,
    Service.SUNO: classify_suno,
    Service.SUNO_UPLOAD: classify_suno,
}


def default_lanes(*, minimax_plan: Literal["paid", "free"] = "paid"
                  ) -> dict[tuple[Service, LaneKind], LaneConfig]:
    """The documented limits, split into lanes so that one kind of call never starves another.

    MiniMax music allows 120 requests/min and 20 concurrent on paid plans (6/min and 3 on free
    ones); the AI/ML API publishes no numbers, so the same are used. Suno allows 20 requests per
    10 s per key, shared here as 8 for submissions and 10 for polls (2 spare).
    """
    paid = minimax_plan == "paid"
    generate = LaneConfig(max_concurrency=20 if paid else 3, rate=120 if paid else 6, per=60.0)
    lanes: dict[tuple[Service, LaneKind], LaneConfig] = {}
    for service in (Service.AIMLAPI, Service.MINIMAX):
        lanes[service, LaneKind.SUBMIT] = generate
        lanes[service, LaneKind.TRANSFER] = LaneConfig(max_concurrency=4, adaptive=False)
        lanes[service, LaneKind.POLL] = LaneConfig(max_concurrency=8)
    lanes[Service.SUNO, LaneKind.SUBMIT] = LaneConfig(max_concurrency=8, rate=8, per=10.0)
    lanes[Service.SUNO, LaneKind.POLL] = LaneConfig(max_concurrency=16, rate=10, per=10.0)
    lanes[Service.SUNO, LaneKind.TRANSFER] = LaneConfig(max_concurrency=8, adaptive=False)
    # The File Upload host publishes no limits; stay well below the API's.
    for kind in LaneKind:
        lanes[Service.SUNO_UPLOAD, kind] = LaneConfig(max_concurrency=4, rate=10, per=10.0)
    return lanes


def _lane_key(name: str) -> tuple[Service, LaneKind]:
    try:
        service, kind = name.split(".")
        return Service(service), LaneKind(kind)
    except ValueError as exc:
        raise ConfigurationError(
            f"unknown lane {name!r}: use 'service.lane' with service one of "
            f"{', '.join(s.value for s in Service)} and lane one of "
            f"{', '.join(k.value for k in LaneKind)}"
        ) from exc


class MusicSession:
    """An async session for MiniMax music-01 and Suno Add Instrumental.

    Use it as ``async with MusicSession() as session:``; it owns an ``httpx.AsyncClient``
    (or uses the one you pass, which it then never closes), the lanes that keep calls within the
    services' limits, and the retry policy.

    Args:
        aimlapi_key: AI/ML API key (else ``AIMLAPI_KEY``).
        minimax_key: MiniMax key for its native hosts (else ``MINIMAX_API_KEY``).
        suno_key: sunoapi.org key (else ``SUNO_API_KEY``).
        endpoints: Base URLs; ``Endpoints.local(emulator.url)`` points every service at an
            emulator. ``base_url`` is a shortcut for the same.
        base_url: One URL for every service (an emulator).
        minimax_via: Which host serves music-01: ``"aimlapi"`` (default) or ``"minimax"``.
        minimax_plan: ``"paid"`` or ``"free"``: picks MiniMax's documented limits.
        lanes: Lane limits to override, keyed ``"service.lane"`` (``"suno.poll"``, ...).
        retry: The session's retry policy; each call can override it.
        timeout: Per-phase httpx timeouts (a float sets all phases); the default waits up to
            300 s for a byte of a slow generation but only 10 s to connect.
        http_client: Your own ``httpx.AsyncClient``; aiomusic will not close it.
        on_event: Called with every [`Event`][aiomusic.Event] (must not block).
        allow_http_hosts: Hosts whose plain-http URLs downloads may fetch (an emulator's).
        suno_callback_url: The default ``callBackUrl`` of Suno submissions (the service requires
            one even when you only poll).
    """

    def __init__(
        self,
        *,
        aimlapi_key: str | None = None,
        minimax_key: str | None = None,
        suno_key: str | None = None,
        endpoints: Endpoints | None = None,
        base_url: str | None = None,
        minimax_via: Literal["aimlapi", "minimax"] = "aimlapi",
        minimax_plan: Literal["paid", "free"] = "paid",
        lanes: Mapping[str, LaneConfig] | None = None,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | float | None = None,
        http_client: httpx.AsyncClient | None = None,
        on_event: Callable[[Event], None] | None = None,
        allow_http_hosts: tuple[str, ...] = (),
        suno_callback_url: str | None = None,
    ) -> None:
        if endpoints is not None and base_url is not None:
            raise ConfigurationError("pass endpoints= or base_url=, not both")
        if minimax_via not in ("aimlapi", "minimax"):
            raise ConfigurationError(f"minimax_via must be 'aimlapi' or 'minimax', "
                                     f"got {minimax_via!r}")
        if minimax_plan not in ("paid", "free"):
            raise ConfigurationError(f"minimax_plan must be 'paid' or 'free', "
                                     f"got {minimax_plan!r}")
        self.endpoints = Endpoints.local(base_url) if base_url else endpoints or Endpoints()
        self._keys = Keys.resolve(aimlapi=aimlapi_key, minimax=minimax_key, suno=suno_key)
        self.minimax_service = Service.AIMLAPI if minimax_via == "aimlapi" else Service.MINIMAX
        self.retry = retry or RetryPolicy()
        self.allow_http_hosts = frozenset(h.lower() for h in allow_http_hosts)
        self.suno_callback_url = suno_callback_url
        self._lane_configs = default_lanes(minimax_plan=minimax_plan)
        for name, config in (lanes or {}).items():
            if not isinstance(config, LaneConfig):
                raise TypeError(f"lanes[{name!r}] must be a LaneConfig, "
                                f"got {type(config).__name__}")
            self._lane_configs[_lane_key(name)] = config
        self._lanes: dict[tuple[Service, LaneKind], Lane] = {}
        self._listeners: list[Callable[[Event], None]] = [on_event] if on_event else []
        self._timeout = (DEFAULT_TIMEOUT if timeout is None else
                         timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout))
        self._own_client = http_client is None
        self._client = http_client
        self._state: Literal["new", "open", "closed"] = "new"
        self._minimax: MiniMaxClient | None = None
        self._suno: SunoClient | None = None
        configure_from_env()

    def __repr__(self) -> str:
        return (f"<MusicSession {self._state} minimax_via={self.minimax_service.value} "
                f"endpoints={self.endpoints!r} keys={self._keys!r}>")

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise SessionClosedError("a MusicSession can be entered only once; "
                                     "create a new one")
        if self._client is None:
            connections = sum(c.max_concurrency for c in self._lane_configs.values())
            self._client = httpx.AsyncClient(
                timeout=self._timeout,
                limits=httpx.Limits(max_connections=connections,
                                    max_keepalive_connections=connections,
                                    # below common server idle timeouts (uvicorn: 5 s), so a
                                    # pooled connection is never closed under a paid request
                                    keepalive_expiry=4.0),
                follow_redirects=False,
                headers={"User-Agent": f"aiomusic/{_version()}"},
            )
        self._state = "open"
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session (and its HTTP client, when the session created it)."""
        if self._state == "closed":
            return
        self._state = "closed"
        if self._own_client and self._client is not None:
            with anyio.CancelScope(shield=True):
                await self._client.aclose()

    @property
    def closed(self) -> bool:
        """Whether the session was closed."""
        return self._state == "closed"

    def _http(self) -> httpx.AsyncClient:
        if self._state != "open" or self._client is None:
            what = "closed" if self._state == "closed" else "not open yet"
            raise SessionClosedError(
                f"this MusicSession is {what}: use it inside 'async with MusicSession(...) "
                "as session:'"
            )
        return self._client

    # -- providers -----------------------------------------------------------------------------

    @property
    def minimax(self) -> MiniMaxClient:
        """MiniMax music-01: reference uploads and generations."""
        if self._minimax is None:
            from ..minimax.client import MiniMaxClient

            self._minimax = MiniMaxClient(self)
        return self._minimax

    @property
    def suno(self) -> SunoClient:
        """Suno Add Instrumental: uploads, tasks, callbacks, downloads, credits."""
        if self._suno is None:
            from ..suno.client import SunoClient

            self._suno = SunoClient(self)
        return self._suno

    # -- events and lanes ----------------------------------------------------------------------

    def subscribe(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``listener`` with every event from now on; returns a function to unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every listener; a failing listener is logged, not raised."""
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a display bug must never break a paid call
                logger.exception("event listener %r failed on %r", listener, event)

    def lane(self, service: Service, kind: LaneKind) -> Lane:
        """The lane of ``service`` for calls of ``kind`` (created on first use)."""
        key = (service, kind)
        found = self._lanes.get(key)
        if found is None:
            found = Lane(f"{service.value}.{kind.value}", self._lane_configs[key], emit=self.emit)
            self._lanes[key] = found
        return found

    def classifier(self, service: Service) -> Classifier:
        """The pure answer classifier of ``service``."""
        return _CLASSIFIERS[service]

    # -- the choke point ---------------------------------------------------------------------

    @overload
    async def _send(self, call: Call, handler: None = None, *, timeout: float | None = None,
                   retry: RetryPolicy | None = None) -> Mapping[str, Any]: ...

    @overload
    async def _send(self, call: Call, handler: Handler[T], *, timeout: float | None = None,
                   retry: RetryPolicy | None = None) -> T: ...

    async def _send(self, call: Call, handler: Handler[Any] | None = None, *,
                   timeout: float | None = None, retry: RetryPolicy | None = None) -> Any:
        """Send ``call`` through its lane with retries; ``handler`` reads the streamed answer.

        Without a handler the answer is read as JSON and classified (the result is then the
        decoded body). ``timeout`` bounds the whole operation, retries and waits included.

        Raises:
            DeadlineExceededError: ``timeout`` passed.
            SubmissionUnknownError: a paid call may have reached the service unanswered.
            AiomusicError: any other failure, typed.
        """
        self._http()
        if timeout is not None and (not math.isfinite(timeout) or timeout <= 0):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        read = handler or json_handler(self.classifier(call.service))
        policy = retry or self.retry
        started = anyio.current_time()
        deadline = math.inf if timeout is None else started + timeout
        sent = [False]
        with anyio.CancelScope(deadline=deadline) as scope:
            return await self._retrying(call, read, policy, deadline, sent)
        assert scope.cancelled_caught
        assert timeout is not None
        if call.paid and sent[0]:
            raise SubmissionUnknownError(
                f"{call.operation}: the {timeout:g} s deadline passed while waiting for the "
                "answer to a paid request; it may still be generating (and charged). Check your "
                "account before re-submitting", operation=call.operation, reason="deadline")
        raise DeadlineExceededError(f"{call.operation}: gave up after the {timeout:g} s "
                                    "deadline", timeout=timeout)

    async def _retrying(self, call: Call, handler: Handler[T], policy: RetryPolicy,
                        deadline: float, sent: list[bool]) -> T:
        lane = self.lane(call.service, call.lane)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(call, handler, lane, attempt, sent)
            except AiomusicError as error:
                self._scrub(error)
                wait = policy.wait_for(error, attempt=attempt, paid=call.paid)
                if wait is None:
                    raise
                if isinstance(error, RateLimitError):
                    # the lane decides: a pause for a rate refusal, none for a concurrency one
                    # (the request then waits for a permit like any other)
                    wait = lane.paused_for
                if anyio.current_time() + wait > deadline:
                    error.retry_after = wait
                    raise
                logger.info("%s: attempt %d failed (%s); retrying in %.2f s", call.operation,
                            attempt, type(error).__name__, wait)
                self.emit(RetryScheduled(operation=call.operation, attempt=attempt, wait=wait,
                                         reason=type(error).__name__))
                if not isinstance(error, RateLimitError):
                    await anyio.sleep(wait)
                # a rate limit paused the whole lane: the next permit waits it out

    async def _attempt(self, call: Call, handler: Handler[T], lane: Lane, attempt: int,
                       sent: list[bool]) -> T:
        client = self._http()
        async with lane.permit() as permit:
            self.emit(RequestStarted(operation=call.operation, lane=lane.name, attempt=attempt,
                                    paid=call.paid, key=call.key))
            began = time.perf_counter()
            status: int | None = None
            try:
                with call.body() as extra:
                    request = self._build(client, call, extra)
                    logger.debug("-> %s %s (%s, attempt %d)", call.method, _safe_url(request.url),
                                 call.operation, attempt)
                    sent[0] = True
                    response = await client.send(request, stream=True)
                try:
                    status = response.status_code
                    result = await handler(response, call)
                finally:
                    with anyio.CancelScope(shield=True):
                        await response.aclose()
            except httpx.HTTPError as exc:
                error = self._transport_error(call, exc)
                self._finished(call, lane, attempt, began, status, error)
                raise error from exc
            except AiomusicError as error:
                self._feedback(lane, permit, error)
                self._finished(call, lane, attempt, began, status, error)
                raise
            lane.succeeded(permit)
            self._finished(call, lane, attempt, began, status, None)
            return result

    def _build(self, client: httpx.AsyncClient, call: Call, extra: dict[str, Any]
               ) -> httpx.Request:
        absolute = call.url.startswith(("http://", "https://"))
        url = call.url if absolute else self.endpoints.for_service(call.service) + call.url
        headers = dict(call.headers or {})
        if call.auth:
            headers["Authorization"] = f"Bearer {self._keys.for_service(call.service)}"
        return client.build_request(call.method, url, params=call.params, json=call.json,
                                    headers=headers, **extra)

    def _feedback(self, lane: Lane, permit: Permit, error: AiomusicError) -> None:
        if isinstance(error, RateLimitError):
            wait = error.retry_after
            if wait is None:
                wait = self.retry.backoff(lane.consecutive_rejections + 1)
            wait = min(wait, self.retry.max_retry_after)
            if lane.rejected(permit, wait=wait, limit=error.limit):
                logger.info("%s: rate limited; lane paused for %.2f s (limit now %d)",
                            lane.name, wait, lane.limit)

    def _finished(self, call: Call, lane: Lane, attempt: int, began: float,
                  status: int | None, error: BaseException | None) -> None:
        seconds = time.perf_counter() - began
        logger.debug("<- %s %s in %.3f s%s", call.operation, status, seconds,
                     f" ({type(error).__name__})" if error else "")
        self.emit(RequestFinished(operation=call.operation, lane=lane.name, attempt=attempt,
                                  seconds=seconds, status_code=status,
                                  error=type(error).__name__ if error else None,
                                  paid=call.paid, key=call.key))

    def _transport_error(self, call: Call, exc: httpx.HTTPError) -> AiomusicError:
        op = call.operation
        detail = redact(str(exc) or type(exc).__name__, self._keys.secrets())
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return ConfigurationError(f"{op}: the URL cannot be used: {detail}")
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            return ConnectionFailedError(
                f"{op}: could not connect ({detail}); nothing was sent, so it is safe to retry",
                operation=op)
        if isinstance(exc, httpx.WriteError | httpx.WriteTimeout):
            return TransportError(f"{op}: the request could not be sent completely ({detail})",
                                  operation=op)
        reason = "read timeout" if isinstance(exc, httpx.ReadTimeout) else "connection lost"
        if call.paid:
            return SubmissionUnknownError(
                f"{op}: {reason} after the paid request was sent ({detail}); the service may "
                "still be generating (and charging for) it, so aiomusic does not re-send it. "
                "Check your account, then re-submit on purpose with "
                "RetryPolicy(resubmit_unknown=True) if you accept paying twice",
                operation=op, reason=reason)
        if isinstance(exc, httpx.TimeoutException):
            return TransferTimeoutError(f"{op}: {reason} ({detail})", operation=op)
        return TransportError(f"{op}: {reason} ({detail})", operation=op)

    def _scrub(self, error: AiomusicError) -> None:
        """Redact the keys from ``error``, every string attribute of it, and its causes."""
        secrets = self._keys.secrets()
        if not secrets:
            return
        seen: set[int] = set()
        current: BaseException | None = error
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            _scrub_one(current, secrets)
            current = current.__cause__ or current.__context__


def _scrub_one(error: BaseException, secrets: tuple[str, ...]) -> None:
    error.args = tuple(redact(a, secrets) if isinstance(a, str) else a for a in error.args)
    for name, value in list(vars(error).items()):
        if isinstance(value, str):
            setattr(error, name, redact(value, secrets))
    if isinstance(error, APIError) and error.body is not None and \
            any(s in repr(error.body) for s in secrets):
        error.body = None


def _safe_url(url: httpx.URL) -> str:
    return str(url.copy_with(query=None))


def _version() -> str:
    from .._version import __version__

    return __version__
