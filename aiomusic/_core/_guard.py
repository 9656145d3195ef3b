"""Where downloads may connect: public addresses only, unless a host is allowed explicitly.

A track URL comes from an answer or a callback, so it is not trusted (a forged callback could
aim a download at ``https://169.254.169.254/`` or a service on the machine itself). Before each
request of a download, the first and every redirect, the URL's host is resolved with anyio's
``getaddrinfo``, and every address must be public: loopback, private, link-local, multicast,
reserved, shared (CGNAT), documentation and unspecified addresses are refused, IPv4 and IPv6
alike, also when an IPv4 address hides inside an IPv6 one (``::ffff:127.0.0.1``, 6to4, NAT64).

The exceptions are explicit: hosts listed in ``MusicSession(allow_private_hosts=...)`` (names or
IP literals matched against the URL's host, CIDR networks matched against its addresses), and
the host and port of the session's own endpoints (an emulator's, which the user configured).

DNS rebinding (a name that resolves to a public address when checked and to a private one when
connecting) is closed in two ways:

* **Pinning**, for the session's own HTTP client: its connections are opened by
  `PinningBackend`, which connects a download only to the addresses checked for it and never
  resolves the name again. Nothing is sent anywhere else.
* **Re-checking the peer**, for every client (also one passed as ``http_client=``, whose
  connections aiomusic does not open): before a byte of the body is read, the address the
  connection really reached must be one that was checked, or allowed. A client of your own may
  therefore send one GET to a rebound address, but nothing it answers is read.

Pinning alone would leave users' own clients unprotected, and re-checking alone lets that one
GET out; together no download reads from an address the policy refuses.
"""

from __future__ import annotations

import contextvars
import functools
import ipaddress
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs
import httpx
from anyio import getaddrinfo

from ._config import Service
from ._errors import DownloadError

if TYPE_CHECKING:
    import httpcore

    from ._transport import Transport

__all__ = ["HostPolicy", "PinningBackend", "check_peer", "install_pinning", "pinned",
           "policy_of", "refusal", "resolve_allowed"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def refusal(address: Address) -> str | None:
    """Why ``address`` is not a public one (``"loopback"``, ``"private"``...), or ``None``."""
    embedded = _embedded_v4(address)
    if embedded is not None:  # the connection goes to the IPv4 address: it decides
        reason = refusal(embedded)
        return None if reason is None else f"{reason} (inside {address})"
    for reason, flag in (("unspecified", address.is_unspecified),
                         ("loopback", address.is_loopback),
                         ("link-local", address.is_link_local),
                         ("multicast", address.is_multicast),
                         ("private", address.is_private),
                         ("reserved", address.is_reserved)):
        if flag:
            return reason
    if not address.is_global:  # shared (CGNAT) and other special ranges
        return "not public"
    return None


def _embedded_v4(address: Address) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


@attrs.frozen
class HostPolicy:
    """The explicit exceptions to "public addresses only".

    Attributes:
        hosts: Host names and IP literals (lower case) whose URLs may be fetched wherever
            they point.
        networks: Networks whose addresses may be fetched whatever the URL's host.
        origins: ``(host, port)`` pairs that may be fetched (the session's own endpoints).
    """

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()
    origins: frozenset[tuple[str, int]] = frozenset()

    @classmethod
    def build(cls, allowed: Iterable[str], endpoints: Iterable[str] = ()) -> HostPolicy:
        """From ``allow_private_hosts`` entries and the session's endpoint URLs.

        Raises:
            ValueError: an entry is neither a host name, an IP address nor a network.
        """
        hosts: set[str] = set()
        networks: list[Network] = []
        for entry in allowed:
            given: object = entry
            if not isinstance(given, str) or not entry.strip():
                raise ValueError(f"allow_private_hosts entries must be host names, IP "
                                 f"addresses or networks such as '10.0.0.0/8', got {entry!r}")
            text = entry.strip().lower().strip("[]")
            if "/" in text:
                try:
                    networks.append(ipaddress.ip_network(text, strict=False))
                except ValueError as exc:
                    raise ValueError(f"allow_private_hosts: {entry!r} is not a network "
                                     f"({exc})") from None
            else:
                hosts.add(_normal_host(text))
        origins = set()
        for url in endpoints:
            parsed = httpx.URL(url)
            origins.add((_normal_host(parsed.host), _port(parsed)))
        return cls(frozenset(hosts), tuple(networks), frozenset(origins))

    def allows_url(self, url: httpx.URL) -> bool:
        """Whether the URL's host (or host and port) is allowed whatever it resolves to."""
        host = _normal_host(url.host)
        return host in self.hosts or (host, _port(url)) in self.origins

    def allows_address(self, address: Address) -> bool:
        """Whether ``address`` is public or inside an allowed network."""
        return refusal(address) is None or any(address in net for net in self.networks)


def _normal_host(host: str) -> str:
    host = host.lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def policy_of(session: Transport) -> HostPolicy:
    """The session's policy: its ``allow_private_hosts`` and its own endpoints."""
    endpoints = session.endpoints
    return _policy(tuple(session.allow_private_hosts),
                   tuple(endpoints.for_service(s) for s in Service))


@functools.lru_cache(maxsize=64)
def _policy(allowed: tuple[str, ...], endpoints: tuple[str, ...]) -> HostPolicy:
    return HostPolicy.build(allowed, endpoints)


@attrs.frozen
class Pin:
    """The addresses checked for one host: the only ones its download may connect to."""

    host: str
    addresses: tuple[str, ...]
    allowed: bool  # the host itself is allowed: any address will do


_PIN: contextvars.ContextVar[Pin | None] = contextvars.ContextVar("aiomusic_pin", default=None)


async def resolve_allowed(url: httpx.URL, policy: HostPolicy, *, where: str) -> Pin:
    """Resolve the URL's host and check every address against ``policy``.

    Raises:
        DownloadError: the host does not resolve (retryable), or resolves to an address the
            policy refuses (not retryable; the message says how to allow it).
    """
    host = url.raw_host.decode("ascii")
    if policy.allows_url(url):
        return Pin(host, (), allowed=True)
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses: list[Address] = [literal]
    else:
        try:
            found = await getaddrinfo(host, _port(url), type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise DownloadError(f"the host {host} cannot be resolved ({exc})", url=where,
                                retryable=True) from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in found]
    if not addresses:  # pragma: no cover - getaddrinfo raises instead of answering nothing
        raise DownloadError(f"the host {host} has no address", url=where, retryable=True)
    for address in addresses:
        if not policy.allows_address(address):
            raise DownloadError(_refused(host, address), url=where)
    return Pin(host, tuple(dict.fromkeys(str(a) for a in addresses)), allowed=False)


def _refused(host: str, address: Address) -> str:
    shown = host if host == str(address) else f"{host} ({address})"
    return (f"refusing to download from {shown}: a {refusal(address)} address. Track URLs "
            "come from answers and callbacks, so only public addresses are fetched; list the "
            "host in MusicSession(allow_private_hosts=...) if you trust it")


@contextmanager
def pinned(pin: Pin) -> Iterator[None]:
    """Within the block, the session's own connections to ``pin.host`` use its addresses."""
    token = _PIN.set(pin)
    try:
        yield
    finally:
        _PIN.reset(token)


def check_peer(response: httpx.Response, pin: Pin, policy: HostPolicy, *, where: str) -> None:
    """Refuse an answer from an address that was not checked (a DNS rebinding, or a proxy
    on a private address that is not allowed).

    Answers that did not travel over a socket (a test transport) have no peer to check.
    """
    if pin.allowed:
        return
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    if not isinstance(peer, tuple) or not peer:
        return
    try:
        address = ipaddress.ip_address(str(peer[0]).partition("%")[0])
    except ValueError:  # pragma: no cover - a socket's peer is always an IP address
        return
    if str(address) in pin.addresses or policy.allows_address(address):
        return
    raise DownloadError(f"{_refused(pin.host, address)} (the connection reached another "
                        "address than the one checked)", url=where)


class PinningBackend:
    """An httpcore network backend that connects a pinned host only to its checked addresses.

    Every other connection (API calls, a proxy) goes to the wrapped backend unchanged.
    """

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        pin = _PIN.get()
        if pin is None or pin.allowed or pin.host != host:
            return await self._inner.connect_tcp(host, port, timeout=timeout,
                                                 local_address=local_address,
                                                 socket_options=socket_options)
        failure: Exception | None = None
        for address in pin.addresses:  # never resolved again: what was checked is used
            try:
                return await self._inner.connect_tcp(address, port, timeout=timeout,
                                                     local_address=local_address,
                                                     socket_options=socket_options)
            except Exception as exc:  # noqa: BLE001 - httpcore's ConnectError/ConnectTimeout
                failure = exc
        assert failure is not None
        raise failure

    def __getattr__(self, name: str) -> Any:  # connect_unix_socket, sleep
        return getattr(self._inner, name)


def install_pinning(transport: httpx.AsyncHTTPTransport) -> bool:
    """Wrap the network backend of ``transport`` (one the session created) in `PinningBackend`.

    Returns:
        Whether it could (httpx keeps the pool private; without it the peer check remains).
    """
    pool = getattr(transport, "_pool", None)
    inner = getattr(pool, "_network_backend", None)
    if inner is None:  # pragma: no cover - every httpx 0.27/0.28 pool has one
        return False
    pool._network_backend = PinningBackend(inner)  # type: ignore[union-attr]
    return True
