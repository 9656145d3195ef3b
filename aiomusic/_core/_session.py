"""MusicSession: lifecycle, configuration, lanes, and the one choke point every request passes."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar

import anyio
import httpx

from ._call import Classifier
from ._config import DEFAULT_TIMEOUT, MINIMAX_HOSTS, Endpoints, Keys, LaneKind, Service
from ._errors import (
    ConfigurationError,
    SessionClosedError,
)
from ._events import Event
from ._guard import HostPolicy, install_pinning
from ._json import DEFAULT_JSON_LIMITS, JsonLimits
from ._lane_store import LaneStore, LaneStoreError
from ._lanes import Lane, LaneConfig
from ._log import configure_from_env, logger
from ._retry import RetryPolicy
from ._shared_lanes import SharedLane
from ._transport import Transport

if TYPE_CHECKING:
    from ..aimlapi.client import AimlapiClient
    from ..minimax.client import MiniMaxClient
    from ..suno.client import SunoClient

__all__ = ["MusicSession", "default_lanes"]

T = TypeVar("T")



def default_lanes(*, minimax_plan: Literal["paid", "free"] = "paid"
                  ) -> dict[tuple[Service, LaneKind], LaneConfig]:
    """The documented limits, split into lanes so that one kind of call never starves another.

    MiniMax music allows 120 requests/min and 20 concurrent on paid plans (6/min and 3 on free
    ones, and for the ``-free`` models in the ``free`` lane); the AI/ML API publishes no numbers,
    so the same are used. Suno allows 20 requests per
    10 s per key, shared here as 8 for submissions and 10 for polls (2 spare).
    """
    paid = minimax_plan == "paid"
    free = LaneConfig(max_concurrency=3, rate=6, per=60.0)
    generate = LaneConfig(max_concurrency=20, rate=120, per=60.0) if paid else free
    lanes: dict[tuple[Service, LaneKind], LaneConfig] = {}
    for service in (Service.AIMLAPI, Service.MINIMAX):
        lanes[service, LaneKind.SUBMIT] = generate
        lanes[service, LaneKind.FREE] = free  # the -free models: the free plan's limits
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
        minimax_region: ``"cn"`` sends MiniMax's own calls to its mainland China host
            (``api.minimaxi.com``) instead of the global one; ``endpoints``/``base_url`` win.
        lanes: Lane limits to override, keyed ``"service.lane"`` (``"suno.poll"``, ...).
        lane_store: Share the lanes with every process that uses the same keys: a
            [`RedisLanes`][aiomusic.RedisLanes] or [`PostgresLanes`][aiomusic.PostgresLanes]
            (yours to close), or a ``redis://`` / ``postgresql://`` URL (the session opens and
            closes the store). ``None``: lanes of this process only.
        retry: The session's retry policy; each call can override it.
        timeout: Per-phase httpx timeouts (a float sets all phases); the default waits up to
            300 s for a byte of a slow generation but only 10 s to connect.
        http_client: Your own ``httpx.AsyncClient``; aiomusic will not close it.
        on_event: Called with every [`Event`][aiomusic.Event] (must not block).
        allow_http_hosts: Hosts whose plain-http URLs downloads may fetch (an emulator's).
        allow_private_hosts: Hosts downloads may fetch although they are not on a public
            address (loopback, private, link-local...): host names or IP addresses matched
            against the URL's host, or networks such as ``"10.0.0.0/8"`` matched against its
            addresses. The host and port of the session's own endpoints are always allowed
            (an emulator's). See the SSRF policy in docs/reliability.md.
        suno_callback_url: The default ``callBackUrl`` of Suno submissions (the service requires
            one even when you only poll).
        json_limits: Bounds on every JSON answer (bytes and nesting depth); beyond them an
            answer is refused as unreadable. The defaults (1 MiB, 64 levels) are far above
            what the services document.
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
        minimax_region: Literal["global", "cn"] = "global",
        lanes: Mapping[str, LaneConfig] | None = None,
        lane_store: LaneStore | str | None = None,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | float | None = None,
        http_client: httpx.AsyncClient | None = None,
        on_event: Callable[[Event], None] | None = None,
        allow_http_hosts: tuple[str, ...] = (),
        allow_private_hosts: tuple[str, ...] = (),
        suno_callback_url: str | None = None,
        json_limits: JsonLimits | None = None,
    ) -> None:
        if endpoints is not None and base_url is not None:
            raise ConfigurationError("pass endpoints= or base_url=, not both")
        if minimax_via not in ("aimlapi", "minimax"):
            raise ConfigurationError(f"minimax_via must be 'aimlapi' or 'minimax', "
                                     f"got {minimax_via!r}")
        if minimax_plan not in ("paid", "free"):
            raise ConfigurationError(f"minimax_plan must be 'paid' or 'free', "
                                     f"got {minimax_plan!r}")
        if minimax_region not in MINIMAX_HOSTS:
            raise ConfigurationError(f"minimax_region must be 'global' or 'cn', "
                                     f"got {minimax_region!r}")
        self.endpoints = Endpoints.local(base_url) if base_url else endpoints or (
            Endpoints.china() if minimax_region == "cn" else Endpoints())
        self._keys = Keys.resolve(aimlapi=aimlapi_key, minimax=minimax_key, suno=suno_key)
        self.minimax_service = Service.AIMLAPI if minimax_via == "aimlapi" else Service.MINIMAX
        self.retry = retry or RetryPolicy()
        # a loopback endpoint over plain http (an emulator) also serves its files over it;
        # any other plain-http host still needs to be named
        own = {host for host in (httpx.URL(self.endpoints.for_service(s)).host.lower()
                                 for s in Service
                                 if self.endpoints.for_service(s).startswith("http://"))
               if _loopback(host)}
        self.allow_http_hosts = frozenset({h.lower() for h in allow_http_hosts} | own)
        try:
            HostPolicy.build(allow_private_hosts)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        self.allow_private_hosts = tuple(allow_private_hosts)
        if json_limits is not None and not isinstance(json_limits, JsonLimits):
            raise TypeError(f"json_limits must be an aiomusic.JsonLimits, "
                            f"got {type(json_limits).__name__}")
        self.json_limits = json_limits or DEFAULT_JSON_LIMITS
        self.suno_callback_url = suno_callback_url
        self._lane_configs = default_lanes(minimax_plan=minimax_plan)
        for name, config in (lanes or {}).items():
            if not isinstance(config, LaneConfig):
                raise TypeError(f"lanes[{name!r}] must be a LaneConfig, "
                                f"got {type(config).__name__}")
            self._lane_configs[_lane_key(name)] = config
        self._timeout = (DEFAULT_TIMEOUT if timeout is None else
                         timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout))
        self._own_client = http_client is None
        self._own_store = isinstance(lane_store, str)
        store = _open_store(lane_store) if isinstance(lane_store, str) else lane_store
        if store is not None and not isinstance(store, LaneStore):
            raise TypeError(f"lane_store must be a LaneStore or a URL, "
                            f"got {type(lane_store).__name__}")
        self._store = store
        self._transport = Transport(
            endpoints=self.endpoints, keys=self._keys, minimax_service=self.minimax_service,
            retry=self.retry, allow_http_hosts=self.allow_http_hosts,
            allow_private_hosts=self.allow_private_hosts, json_limits=self.json_limits,
            suno_callback_url=suno_callback_url, lane_configs=self._lane_configs,
            listeners=[on_event] if on_event else [], lane_store=store)
        self._transport._client = http_client
        self._minimax: MiniMaxClient | None = None
        self._suno: SunoClient | None = None
        self._aimlapi: AimlapiClient | None = None
        configure_from_env()

    @property
    def _state(self) -> Literal["new", "open", "closed"]:
        return self._transport._state

    @property
    def _client(self) -> httpx.AsyncClient | None:
        return self._transport._client

    @property
    def _lanes(self) -> dict[tuple[Service, LaneKind], Lane | SharedLane]:
        return self._transport._lanes

    def __repr__(self) -> str:
        return (f"<MusicSession {self._state} minimax_via={self.minimax_service.value} "
                f"endpoints={self.endpoints!r} keys={self._keys!r}>")

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise SessionClosedError("a MusicSession can be entered only once; "
                                     "create a new one")
        await self._check_store()
        transport = self._transport
        if transport._client is None:
            connections = sum(c.max_concurrency for c in self._lane_configs.values())
            pool = httpx.AsyncHTTPTransport(
                limits=httpx.Limits(max_connections=connections,
                                    max_keepalive_connections=connections,
                                    # below common server idle timeouts (uvicorn: 5 s), so a
                                    # pooled connection is never closed under a paid request
                                    keepalive_expiry=4.0))
            install_pinning(pool)  # downloads connect only to the addresses checked
            transport._client = httpx.AsyncClient(
                timeout=self._timeout,
                transport=pool,
                follow_redirects=False,
                headers={"User-Agent": f"aiomusic/{_version()}"},
            )
        transport._state = "open"
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session (and its HTTP client, when the session created it)."""
        transport = self._transport
        if transport._state == "closed":
            return
        transport._state = "closed"
        with anyio.CancelScope(shield=True):
            if self._own_client and transport._client is not None:
                await transport._client.aclose()
            if self._own_store and self._store is not None:
                await anyio.to_thread.run_sync(self._store.close)

    async def _check_store(self) -> None:
        """Fail closed when the shared lanes' store is unreachable (unless it falls back)."""
        store = self._store
        if store is None:
            return
        try:
            await anyio.to_thread.run_sync(store.check)
        except LaneStoreError as exc:
            if store.on_unavailable != "local":
                if self._own_store:
                    await anyio.to_thread.run_sync(store.close)
                raise
            logger.warning("lanes: %s; falling back to in-process lanes until it answers", exc)

    @property
    def closed(self) -> bool:
        """Whether the session was closed."""
        return self._state == "closed"

    # -- providers -----------------------------------------------------------------------------

    @property
    def minimax(self) -> MiniMaxClient:
        """MiniMax: music-01, and the current models (songs, covers, lyrics, quota)."""
        if self._minimax is None:
            from ..minimax.client import MiniMaxClient

            self._minimax = MiniMaxClient(self._transport)
        return self._minimax

    @property
    def suno(self) -> SunoClient:
        """Suno Add Instrumental: uploads, tasks, callbacks, downloads, credits."""
        if self._suno is None:
            from ..suno.client import SunoClient

            self._suno = SunoClient(self._transport)
        return self._suno

    @property
    def aimlapi(self) -> AimlapiClient:
        """The AI/ML API's asynchronous music models: submit, follow, download, costs."""
        if self._aimlapi is None:
            from ..aimlapi.client import AimlapiClient

            self._aimlapi = AimlapiClient(self._transport)
        return self._aimlapi

    # -- events, lanes and the choke point (the transport's) ---------------------------------

    def subscribe(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``listener`` with every event from now on; returns a function to unsubscribe."""
        return self._transport.subscribe(listener)

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every listener; a failing listener is logged, not raised."""
        self._transport.emit(event)

    def lane(self, service: Service, kind: LaneKind) -> Lane | SharedLane:
        """The lane of ``service`` for calls of ``kind`` (created on first use)."""
        return self._transport.lane(service, kind)

    def classifier(self, service: Service) -> Classifier:
        """The pure answer classifier of ``service``."""
        return self._transport.classifier(service)

    @property
    def _send(self) -> Any:
        """The transport's choke point (``Transport._send``)."""
        return self._transport._send

def _version() -> str:
    from .._version import __version__

    return __version__


def _open_store(url: str) -> LaneStore:
    """The store a URL names: Redis or PostgreSQL."""
    scheme = url.partition("://")[0].lower()
    if scheme in ("redis", "rediss", "unix"):
        from ._redis_lanes import RedisLanes

        return RedisLanes(url)
    if scheme in ("postgresql", "postgres"):
        from ._pg_lanes import PostgresLanes

        return PostgresLanes(url)
    raise ConfigurationError("lane_store must be a redis://, rediss://, unix:// or "
                             "postgresql:// URL, or a RedisLanes / PostgresLanes")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
