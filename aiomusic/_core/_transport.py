"""The transport: the one choke point every request of a session passes through.

`Transport` owns what every call needs: the HTTP client, keys and base URLs, the lanes, the
retry loop with its deadline, the mapping of httpx failures to typed errors (and so the fate of
paid requests), events, and the scrubbing of keys from errors. The service clients depend on
it, never on `MusicSession`, which is the public facade that owns one transport and the
clients (so a client never reaches up to the session that made it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, overload

import anyio
import httpx

from ._call import Call, Classifier, Handler, json_handler
from ._classify import classify_aimlapi, classify_minimax, classify_suno
from ._config import Endpoints, Keys, LaneKind, Service
from ._encoding import accept_encoding
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
from ._fate import PAID_ATTEMPTS, Fate, fate_of, fate_of_transport, trace_of, unknown
from ._json import DEFAULT_JSON_LIMITS, JsonLimits
from ._lane_store import LaneRef, LaneStore, fingerprint
from ._lanes import Lane, LaneConfig, Permit
from ._log import logger, redact
from ._retry import RetryPolicy
from ._shared_lanes import SharedLane

__all__ = ["Transport"]

T = TypeVar("T")

_CLASSIFIERS: Mapping[Service, Classifier] = {
    Service.AIMLAPI: classify_aimlapi,
    Service.MINIMAX: classify_minimax,
    Service.SUNO: classify_suno,
    Service.SUNO_UPLOAD: classify_suno,
}


class Transport:
    """Sends calls for one session: lanes, retries, deadlines, typed errors, events.

    Made by `MusicSession`; the clients of each service hold it (as ``_session``, the name
    they had when the session was the choke point).
    """

    def __init__(self, *, endpoints: Endpoints, keys: Keys, minimax_service: Service,
                 retry: RetryPolicy, allow_http_hosts: frozenset[str],
                 suno_callback_url: str | None,
                 lane_configs: dict[tuple[Service, LaneKind], LaneConfig],
                 listeners: list[Callable[[Event], None]],
                 lane_store: LaneStore | None = None,
                 allow_private_hosts: tuple[str, ...] = (),
                 json_limits: JsonLimits = DEFAULT_JSON_LIMITS) -> None:
        self.endpoints = endpoints
        self._keys = keys
        self.minimax_service = minimax_service
        self.retry = retry
        self.allow_http_hosts = allow_http_hosts
        self.allow_private_hosts = allow_private_hosts
        self.json_limits = json_limits
        self.suno_callback_url = suno_callback_url
        self._lane_configs = lane_configs
        self._lanes: dict[tuple[Service, LaneKind], Lane | SharedLane] = {}
        self._store = lane_store
        self._listeners = listeners
        self._client: httpx.AsyncClient | None = None
        self._state: Literal["new", "open", "closed"] = "new"

    def _http(self) -> httpx.AsyncClient:
        if self._state != "open" or self._client is None:
            what = "closed" if self._state == "closed" else "not open yet"
            raise SessionClosedError(
                f"this MusicSession is {what}: use it inside 'async with MusicSession(...) "
                "as session:'"
            )
        return self._client

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

    def lane(self, service: Service, kind: LaneKind) -> Lane | SharedLane:
        """The lane of ``service`` for calls of ``kind`` (created on first use)."""
        key = (service, kind)
        found = self._lanes.get(key)
        if found is None:
            name, config = f"{service.value}.{kind.value}", self._lane_configs[key]
            if self._store is None:
                found = Lane(name, config, emit=self.emit)
            else:
                # rate limits belong to the key: its fingerprint names the shared lane
                ref = LaneRef(ident=f"{fingerprint(self._secret(service))}:{name}",
                              config=config)
                found = SharedLane(name, config, self._store, ref, emit=self.emit)
            self._lanes[key] = found
        return found

    def _secret(self, service: Service) -> str:
        try:
            return self._keys.for_service(service)
        except ConfigurationError:
            return ""  # calls of this lane need no key (or fail for the lack of one)

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
        read = handler or json_handler(self.classifier(call.service), self.json_limits)
        policy = retry or self.retry
        started = anyio.current_time()
        deadline = math.inf if timeout is None else started + timeout
        sent = [False]
        with anyio.CancelScope(deadline=deadline) as scope:
            return await self._retrying(call, read, policy, deadline, sent, timeout=timeout)
        assert scope.cancelled_caught
        assert timeout is not None
        if call.paid and sent[0]:
            raise SubmissionUnknownError(
                f"{call.operation}: the {timeout:g} s deadline passed while waiting for the "
                "answer to a paid request; it may still be generating (and charged). Check your "
                "account before re-submitting", operation=call.operation, reason="deadline")
        raise DeadlineExceededError(f"{call.operation}: gave up after the {timeout:g} s "
                                    "deadline", timeout=timeout)

    async def _submit(self, call: Call, read: Callable[[Mapping[str, Any]], T], *,
                      timeout: float | None = None, retry: RetryPolicy | None = None) -> T:
        """Send a call answered with JSON and ``read`` the answer within the attempt.

        A paid submission's answer that its reader cannot use (no task id, say) is then an
        unreadable answer like any other: its fate is unknown (`SubmissionUnknownError`),
        whoever the caller is.
        """
        classify = json_handler(self.classifier(call.service))

        async def handle(response: httpx.Response, call: Call) -> T:
            return read(await classify(response, call))

        return await self._send(call, handle, timeout=timeout, retry=retry)

    async def _retrying(self, call: Call, handler: Handler[T], policy: RetryPolicy,
                        deadline: float, sent: list[bool], *, timeout: float | None = None
                        ) -> T:
        lane = self.lane(call.service, call.lane)
        attempt = 0
        while True:
            attempt += 1
            pause = lane.paused_for
            if pause > 0 and anyio.current_time() + pause > deadline:
                # waiting for the permit would only end in "gave up after the deadline"
                raise DeadlineExceededError(
                    f"{call.operation}: the service asked to wait {pause:.0f} s (the "
                    f"{lane.name} lane is paused after a rate limit), longer than the "
                    f"{deadline - anyio.current_time():.1f} s left before this call's "
                    "deadline; nothing was sent. Try again later or give a longer timeout",
                    timeout=timeout or 0.0, retry_after=pause)
            try:
                return await self._attempt(call, handler, lane, attempt, sent)
            except AiomusicError as error:
                self._scrub(error)
                wait = policy.wait_for(error, attempt=attempt, paid=call.paid)
                if wait is None:
                    raise
                # a Retry-After, or a rate limit (which pauses the lane): the service's say
                asked = error.retry_after is not None or isinstance(error, RateLimitError)
                advised = wait  # the service's Retry-After (capped by the policy), if it gave one
                if isinstance(error, RateLimitError):
                    # the lane decides: a pause for a rate refusal, none for a concurrency one
                    # (the request then waits for a permit like any other)
                    wait = lane.paused_for if isinstance(lane, Lane) else max(
                        wait, lane.paused_for)
                left = deadline - anyio.current_time()
                if wait > left:
                    # what the service said, not the lane's pause a few microseconds later
                    error.retry_after = advised if error.retry_after is not None else wait
                    why = (f"the service asked to wait {wait:.0f} s" if asked else
                           f"the next retry would wait {wait:.1f} s")
                    error.message = (f"{error.message} ({why}, longer than the {left:.1f} s "
                                     "left before this call's deadline)")
                    error.args = (error.message, *error.args[1:])
                    raise
                logger.info("%s: attempt %d failed (%s); retrying in %.2f s", call.operation,
                            attempt, type(error).__name__, wait)
                self.emit(RetryScheduled(operation=call.operation, attempt=attempt, wait=wait,
                                         reason=type(error).__name__))
                if not isinstance(error, RateLimitError):
                    await anyio.sleep(wait)
                # a rate limit paused the whole lane: the next permit waits it out

    async def _attempt(self, call: Call, handler: Handler[T], lane: Lane | SharedLane, attempt: int,
                       sent: list[bool]) -> T:
        client = self._http()
        async with lane.permit() as permit:
            self.emit(RequestStarted(operation=call.operation, lane=lane.name, attempt=attempt,
                                    paid=call.paid, key=call.key))
            hook = PAID_ATTEMPTS.get() if call.paid else None
            if hook is not None:
                # the intent, as late as possible: the permit and the rate window's start are
                # granted, and nothing else stands between this line and the request
                await hook.sending(call.operation, attempt)
            began = time.perf_counter()
            answer: list[httpx.Response] = []
            on_wire = False
            ended: BaseException | None = None
            try:
                with call.body() as extra:
                    request = self._build(client, call, extra)
                    logger.info("-> %s %s (%s, attempt %d)", call.method, _safe_url(request.url),
                                call.operation, attempt)
                    sent[0] = on_wire = True
                    response = await client.send(request, stream=True)
                answer.append(response)
                try:
                    result = await handler(response, call)
                finally:
                    with anyio.CancelScope(shield=True):
                        await response.aclose()
            except httpx.HTTPError as exc:
                ended = exc
                error = self._transport_error(call, exc)
                self._finished(call, lane, attempt, began, _status(answer), error)
                raise error from exc
            except AiomusicError as error:
                ended = error
                self._feedback(lane, permit, error)
                self._finished(call, lane, attempt, began, _status(answer), error)
                decided = self._decide(call, error, answer) if call.paid and on_wire else error
                if decided is error:
                    raise
                raise decided from error
            except BaseException as exc:  # cancelled, or a local failure (a full disk)
                ended = exc
                raise
            finally:
                if hook is not None:
                    fate = Fate.NOT_SENT if not on_wire else \
                        fate_of_transport(ended) if isinstance(ended, httpx.HTTPError) else \
                        fate_of(ended)
                    trace = trace_of(ended, answer[0].headers if answer else None)
                    with anyio.CancelScope(shield=True):
                        await hook.ended(call.operation, attempt, fate, ended, trace)
            lane.succeeded(permit)
            self._finished(call, lane, attempt, began, _status(answer), None)
            return result

    def _decide(self, call: Call, error: AiomusicError, answer: list[httpx.Response]
                ) -> AiomusicError:
        """What a paid attempt that ended in ``error`` raises, by its fate (`_fate.py`)."""
        fate = fate_of(error)
        if fate is Fate.UNKNOWN:
            return unknown(call.operation, error,
                           trace_id=trace_of(error, answer[0].headers if answer else None))
        if fate is not Fate.REFUSED:
            error.retryable = False  # taken, then failed: sending it again would pay again
        return error

    def _build(self, client: httpx.AsyncClient, call: Call, extra: dict[str, Any]
               ) -> httpx.Request:
        absolute = call.url.startswith(("http://", "https://"))
        url = call.url if absolute else self.endpoints.for_service(call.service) + call.url
        headers = dict(call.headers or {})
        # only what aiomusic can decode in bounded pieces (httpx would add zstd when installed)
        if not any(name.lower() == "accept-encoding" for name in headers):
            headers["Accept-Encoding"] = accept_encoding()
        if call.auth:
            headers["Authorization"] = f"Bearer {self._keys.for_service(call.service)}"
        return client.build_request(call.method, url, params=call.params, json=call.json,
                                    headers=headers, **extra)

    def _feedback(self, lane: Lane | SharedLane, permit: Permit, error: AiomusicError) -> None:
        if isinstance(error, RateLimitError):
            wait = error.retry_after
            if wait is None:
                wait = self.retry.backoff(lane.consecutive_rejections + 1)
            wait = min(wait, self.retry.max_retry_after)
            if lane.rejected(permit, wait=wait, limit=error.limit):
                logger.info("%s: rate limited; lane paused for %.2f s (limit now %d)",
                            lane.name, wait, lane.limit)

    def _finished(self, call: Call, lane: Lane | SharedLane, attempt: int, began: float,
                  status: int | None, error: BaseException | None) -> None:
        seconds = time.perf_counter() - began
        logger.info("<- %s %s in %.3f s%s", call.operation, status, seconds,
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
        if fate_of_transport(exc) is Fate.NOT_SENT:  # the request was not written completely
            return TransportError(f"{op}: the request could not be sent completely ({detail})",
                                  operation=op)
        reason = "read timeout" if isinstance(exc, httpx.ReadTimeout) else "connection lost"
        if call.paid:  # fate unknown
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


def _status(answer: list[httpx.Response]) -> int | None:
    return answer[0].status_code if answer else None


def _safe_url(url: httpx.URL) -> str:
    return str(url.copy_with(query=None))

