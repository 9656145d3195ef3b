"""An optional HMAC check of signed callbacks (the scheme kie.ai, sunoapi.org's sibling, uses)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import time
from collections.abc import Callable, Mapping

__all__ = ["WebhookVerifier"]


class WebhookVerifier:
    """Checks kie.ai-style signed callbacks: ``X-Webhook-Timestamp`` (Unix seconds) and
    ``X-Webhook-Signature = base64(HMAC_SHA256(task_id + "." + timestamp, key))``.

    Off by default (sunoapi.org does not sign); pass one to ``CallbackReceiver(verifier=...)``
    when your gateway signs. A callback is refused unless its signature matches and its
    timestamp lies within ``window`` seconds of now (a replay of an old callback fails).

    Args:
        key: The gateway's webhook HMAC key.
        window: Seconds a signed callback stays acceptable, either way of now.
        clock: Seconds since the epoch (tests pass their own).
    """

    def __init__(self, key: str | bytes, *, window: float = 300.0,
                 clock: Callable[[], float] = time.time) -> None:
        secret = key.encode() if isinstance(key, str) else bytes(key)
        if not secret:
            raise ValueError("the webhook HMAC key must not be empty")
        if not math.isfinite(window) or window <= 0:
            raise ValueError(f"window must be a positive number of seconds, got {window!r}")
        self._key = secret
        self.window = window
        self._clock = clock

    def __repr__(self) -> str:
        return f"<WebhookVerifier window={self.window:g}s>"  # never the key

    def sign(self, task_id: str, timestamp: str) -> str:
        """The signature the gateway sends for ``task_id`` at ``timestamp``."""
        digest = hmac.new(self._key, f"{task_id}.{timestamp}".encode(), hashlib.sha256)
        return base64.b64encode(digest.digest()).decode()

    def problem(self, task_id: str, headers: Mapping[str, str]) -> str | None:
        """Why a callback must be refused (``None``: it is genuine and fresh).

        Args:
            task_id: The task the body names.
            headers: The request's headers, names in lower case.
        """
        timestamp = headers.get("x-webhook-timestamp", "").strip()
        signature = headers.get("x-webhook-signature", "").strip()
        if not timestamp or not signature:
            return "unsigned (no X-Webhook-Timestamp or X-Webhook-Signature)"
        try:
            when = float(timestamp)
        except ValueError:
            return "the timestamp is not a number"
        if not math.isfinite(when):
            return "the timestamp is not a number"
        if when > 1e11:  # milliseconds
            when /= 1000
        if abs(self._clock() - when) > self.window:
            return f"the timestamp is more than {self.window:g} s from now (a replay?)"
        if not hmac.compare_digest(self.sign(task_id, timestamp).encode(), signature.encode()):
            return "the signature does not match"
        return None
