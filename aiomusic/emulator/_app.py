"""The ASGI app: routing, lifespan, auth, limits, rejection shapes, admin endpoints."""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from typing import Any

import anyio
import httpx
from anyio.abc import TaskGroup
from starlette.types import Receive, Scope, Send

from . import (
    _aimlapi,
    _minimax,
    _minimax_music,
    _minimax_tools,
    _suno,
    _suno_family,
    _suno_followups,
    _suno_sync,
    _uploads,
)
from ._config import EmulatorConfig, Faults, Limits
from ._context import Background, Routes
from ._faults import FaultEngine, RateLimiter, Refusal
from ._http import Req, admitted, send_json
from ._state import State, new_trace_id

__all__ = ["EmulatorApp", "create_app"]

log = logging.getLogger("aiomusic.emulator")

#: Faults answered as a definite rejection, before any work or charge.
REJECT_FAULTS = ("rate_limit", "maintenance", "server_error")

#: The modules whose ``ROUTES`` the app serves, one per service (the order does not matter).
HANDLERS = (_aimlapi, _minimax, _minimax_music, _minimax_tools, _suno, _suno_family,
            _suno_followups, _suno_sync, _uploads)


class EmulatorApp:
    """One ASGI app serving the AI/ML API, MiniMax, Suno and the Suno file host."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.state = State(self.config.faults.seed)
        self.faults = FaultEngine(self.config.faults)
        self.limiter = RateLimiter(self.config.limits)
        self.task_group: TaskGroup | None = None
        self.client: httpx.AsyncClient | None = None
        self.routes: Routes = {}
        self.prefixes: Routes = {}  # (method, path prefix): for paths that carry a name
        for module in HANDLERS:
            self.routes.update(module.ROUTES)
            self.prefixes.update(getattr(module, "PREFIXES", {}))

    # -- runtime control -------------------------------------------------------------------

    def set_faults(self, faults: Faults) -> None:
        self.faults.configure(faults)

    def set_limits(self, limits: Limits) -> None:
        self.limiter.configure(limits)

    @property
    def limits(self) -> Limits:
        return self.limiter.limits

    def reset(self) -> None:
        """Back to the configured state: no uploads, tasks, counters or injected faults."""
        self.state.reset(self.config.faults.seed)
        self.faults.configure(self.config.faults)
        self.faults.clear()
        self.limiter.configure(self.config.limits)

    # -- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        req = Req(scope, receive, send)
        self.state.count_request(req.path)
        route = self.routes.get((req.method, req.path))
        if route is None:
            route = next((r for (method, prefix), r in self.prefixes.items()
                          if method == req.method and req.path.startswith(prefix)), None)
        if route is not None:
            req.operation = route[0]
            await route[1](self, req)
        elif req.path.startswith("/files/") and req.method in ("GET", "HEAD"):
            req.operation = "files.download"
            await _uploads.download(self, req)
        elif req.path.startswith("/_emulator/"):
            await self._admin(req)
        else:
            await self._not_found(req)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        msg = await receive()
        async with anyio.create_task_group() as tg, httpx.AsyncClient(timeout=30) as client:
            self.task_group, self.client = tg, client
            await send({"type": "lifespan.startup.complete"})
            msg = await receive()
            tg.cancel_scope.cancel()
        self.task_group = self.client = None
        if msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})

    def spawn(self, fn: Background) -> None:
        """Run `fn` in the background (callbacks); dropped when there is no lifespan."""
        if self.task_group is None:
            log.warning("no lifespan: background work (callbacks) disabled")
            return
        self.task_group.start_soon(fn)

    # -- shared gate -----------------------------------------------------------------------

    def draw_fault(self, operation: str, kinds: tuple[str, ...]) -> str | None:
        """Draw one of ``kinds`` for ``operation`` (injected first, then random) and count it."""
        fault = self.faults.draw(operation, kinds)
        if fault:
            self.state.count_fault(fault, operation)
        return fault

    async def gate(self, req: Req, service: str, *, slot: bool = False) -> str | None:
        """Auth, the limits and rejection faults. The key, or None once answered.

        With ``slot`` the request also takes one of the key's generations at once, which the
        caller gives back with ``limiter.leave("minimax", key)`` once the key is returned.
        """
        op = req.operation
        key = req.bearer
        allowed = self.config.api_keys
        if key is None or (allowed is not None and key not in allowed):
            self.state.count_rejection(op, "auth")
            await self.reject(req, service, "auth")
            return None
        family = "suno" if service == "suno" else "minimax"
        if service != "files":
            refusal = self.limiter.admit(family, key, slot=slot)
            if refusal is not None:
                self.state.count_rejection(op, refusal.reason)
                await self.reject(req, service, refusal.reason, refusal=refusal)
                return None
        fault = self.draw_fault(op, REJECT_FAULTS)
        if fault is not None:
            if slot:
                self.limiter.leave(family, key)
            await self.reject(req, service, fault)
            return None
        return key

    async def reject(
        self,
        req: Req,
        service: str,
        reason: str,
        message: str | None = None,
        *,
        retry_after: float | None = None,
        refusal: Refusal | None = None,
    ) -> None:
        """Answer a rejection in the service's own shape (``refusal``: the limits' verdict;
        ``retry_after``: the seconds a refusal from elsewhere advises)."""
        if service == "aiml":
            status, default = _AIML[reason]
            headers = self._limit_headers(refusal, retry_after) if status == 429 else {}
            await send_json(
                req.send,
                aiml_error(req, status, message or default),
                status=status,
                headers=headers,
            )
        elif service == "minimax":
            code, default = _MINIMAX[reason]
            trace = new_trace_id()
            body = {
                "trace_id": trace,
                "base_resp": {"status_code": code, "status_msg": message or default},
            }
            await send_json(req.send, body, headers={"Trace-Id": trace})
        elif service == "suno":
            code, default = _SUNO[reason]
            if reason == "rate_limit":
                code = self.limits.suno_code
            await send_json(req.send, {"code": code, "msg": message or default, "data": None})
        else:
            code, default = _SUNO[reason]
            await send_json(
                req.send, {"success": False, "code": code, "msg": message or default, "data": None}
            )

    def _limit_headers(self, refusal: Refusal | None, advised: float | None
                       ) -> dict[str, str]:
        """Retry-After and rate-limit headers of a 429, as configured."""
        limits = self.limits
        headers: dict[str, str] = {}
        wait = limits.retry_after if advised is None else advised
        if refusal is not None and refusal.retry_after is not None:
            wait = refusal.retry_after
        if limits.retry_after is not None and wait is not None:
            headers["Retry-After"] = str(max(1, math.ceil(wait)))  # whole seconds, rounded up
        if limits.rate_headers and refusal is not None:
            headers["x-ratelimit-limit-requests"] = str(refusal.limit)
            headers["x-ratelimit-remaining-requests"] = str(refusal.remaining)
            headers["x-ratelimit-reset-requests"] = f"{refusal.reset:.3f}s"
        return headers

    # -- admin and fallbacks ---------------------------------------------------------------

    async def _admin(self, req: Req) -> None:
        name = req.path.removeprefix("/_emulator/")
        if name != "health" and not admitted(req, self.config.admin_token):
            await send_json(req.send, {"ok": False, "error": "admin token required"}, status=401)
            return
        if name == "counters" and req.method == "GET":
            with self.state.lock:
                body = self.state.counters.as_json()
            await send_json(req.send, body)
        elif name == "reset" and req.method == "POST":
            self.reset()
            await send_json(req.send, {"ok": True})
        elif name == "inject" and req.method == "POST":
            try:
                spec = await req.json()
                self.faults.inject(
                    spec["fault"], operation=spec.get("operation", ""), count=spec.get("count", 1)
                )
            except (ValueError, KeyError, TypeError) as exc:
                await send_json(req.send, {"ok": False, "error": str(exc)}, status=400)
                return
            await send_json(req.send, {"ok": True})
        elif name == "health":
            await send_json(req.send, {"ok": True})
        else:
            await send_json(req.send, {"ok": False, "error": "unknown admin path"}, status=404)

    async def _not_found(self, req: Req) -> None:
        if req.path.startswith("/api/"):
            await send_json(req.send, {"code": 404, "msg": "Not found", "data": None})
        else:
            await send_json(req.send, aiml_error(req, 404, "Not Found"), status=404)


def aiml_error(req: Req, status: int, message: str) -> dict[str, Any]:
    return {
        "message": message,
        "path": req.path,
        "requestId": str(uuid.uuid4()),
        "statusCode": status,
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
    }


_AIML = {
    "auth": (401, "Unauthorized"),
    "rate_limit": (429, "Too Many Requests"),
    "concurrency": (429, "Too Many Requests: too many concurrent generations"),
    "maintenance": (500, "Model is under maintenance"),
    "server_error": (503, "Service unavailable"),
    "invalid": (400, "Body validation error!"),
    "not_found": (404, "Generation not found"),
    "credits": (403, "Insufficient credits: top up your balance"),
}
_MINIMAX = {
    "auth": (1004, "authorization failed: api key missing or wrong"),
    "rate_limit": (1002, "rate limit exceeded"),
    "concurrency": (1041, "connection limit reached: too many concurrent generations"),
    "maintenance": (1000, "service under maintenance, please retry later"),
    "server_error": (1024, "internal error"),
    "invalid": (2013, "invalid params"),
}
_SUNO = {
    "auth": (401, "Unauthorized: invalid or missing API key"),
    "rate_limit": (430, "Your call frequency is too high. Please try again later."),
    "maintenance": (455, "System maintenance, please try again later"),
    "server_error": (500, "Server error"),
    "invalid": (400, "Invalid parameters"),
    "too_long": (413, "Theme or prompt too long"),
    "credits": (429, "Insufficient credits"),
    "not_found": (400, "Task not found"),
    "exists": (409, "Record already exists"),
}


def create_app(config: EmulatorConfig | None = None) -> EmulatorApp:
    """The emulator as a plain ASGI app (run it with any ASGI server, with lifespan on)."""
    return EmulatorApp(config)
