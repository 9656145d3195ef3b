"""What a service's handlers may use of the emulator: a protocol, so that handler modules
depend on this small interface and the app (which routes to them) depends on the handlers,
never the other way round."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

import httpx

from ._config import EmulatorConfig, Limits
from ._faults import RateLimiter, Refusal
from ._http import Req
from ._state import State

__all__ = ["App", "Background", "Handler", "Routes"]

Background = Callable[[], Coroutine[Any, Any, None]]


class App(Protocol):
    """The emulator as its handlers see it."""

    config: EmulatorConfig
    state: State
    client: httpx.AsyncClient | None
    limiter: RateLimiter

    @property
    def limits(self) -> Limits: ...

    def spawn(self, fn: Background) -> None:
        """Run ``fn`` in the background (callbacks); dropped when there is no lifespan."""

    def draw_fault(self, operation: str, kinds: tuple[str, ...]) -> str | None:
        """Draw one of ``kinds`` for ``operation`` and count it."""

    async def gate(self, req: Req, service: str, *, slot: bool = False) -> str | None:
        """Auth, the rate window and rejection faults: the key, or None once answered.

        With ``slot``, also one of the key's generations at once, which the caller gives back
        with ``limiter.leave("minimax", key)``."""

    async def reject(self, req: Req, service: str, reason: str, message: str | None = None,
                     *, retry_after: float | None = None,
                     refusal: Refusal | None = None) -> None:
        """Answer a rejection in the service's own shape."""


Handler = Callable[[App, Req], Awaitable[None]]
#: A handler module's routes: (method, path) -> (operation name, handler). A module may also
#: declare ``PREFIXES`` of the same shape, matched by path prefix (files named in the path).
Routes = dict[tuple[str, str], tuple[str, Handler]]
