"""Defaults for hosts, timeouts and limits, and the small enums that name services and lanes."""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping

import attrs
import httpx

from ._errors import ConfigurationError

__all__ = [
    "DEFAULT_TIMEOUT",
    "MINIMAX_HOSTS",
    "Endpoints",
    "Keys",
    "LaneKind",
    "Service",
]

#: MiniMax's own hosts: global (the default) and mainland China. Keys work on one of them.
MINIMAX_HOSTS = {"global": "https://api.minimax.io", "cn": "https://api.minimaxi.com"}


class Service(enum.StrEnum):
    """A service endpoint family; each has its own key and its own rate limits."""

    AIMLAPI = "aimlapi"
    """MiniMax music-01 served by the AI/ML API (``/v2/generate/audio/minimax/...``)."""
    MINIMAX = "minimax"
    """MiniMax's own hosts (``/v1/music_upload``, ``/v1/music_generation``)."""
    SUNO = "suno"
    """sunoapi.org (``/api/v1/...``)."""
    SUNO_UPLOAD = "suno_upload"
    """sunoapi.org's File Upload API host (same key as ``SUNO``)."""


class LaneKind(enum.StrEnum):
    """The lane a call runs in; lanes of one key never starve each other."""

    SUBMIT = "submit"
    """Paid generate / submit calls."""
    POLL = "poll"
    """Status look-ups and other cheap reads (record-info, credits)."""
    TRANSFER = "transfer"
    """Uploads and downloads of audio."""
    FREE = "free"
    """Generations of MiniMax's free models (``*-free``), at the free plan's limits."""


# The AI/ML API documents completions of "50-60 seconds or a bit more" and MiniMax streams last
# 90 s and more: the read timeout must be far above that. Connecting is quick or hopeless.
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=300.0, write=60.0, pool=60.0)

_ENV_KEYS: Mapping[Service, str] = {
    Service.AIMLAPI: "AIMLAPI_KEY",
    Service.MINIMAX: "MINIMAX_API_KEY",
    Service.SUNO: "SUNO_API_KEY",
    Service.SUNO_UPLOAD: "SUNO_API_KEY",
}


def _check_url(url: str, name: str) -> str:
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(
            f"{name} must be an absolute http(s) URL such as 'https://api.example.com', "
            f"got {url!r}"
        )
    return url.rstrip("/")


@attrs.frozen
class Endpoints:
    """Base URLs of the services; point them all at an emulator with `local()`.

    Attributes:
        aimlapi: AI/ML API host (music-01 at ``/v2/generate/audio/minimax/...``).
        minimax: MiniMax native host (``https://api.minimaxi.com`` in mainland China: see
            `china()`).
        suno: sunoapi.org API host.
        suno_upload: sunoapi.org File Upload API host.
    """

    aimlapi: str = attrs.field(default="https://api.aimlapi.com")
    minimax: str = attrs.field(default=MINIMAX_HOSTS["global"])
    suno: str = attrs.field(default="https://api.sunoapi.org")
    suno_upload: str = attrs.field(default="https://sunoapiorg.redpandaai.co")

    def __attrs_post_init__(self) -> None:
        for field in attrs.fields(Endpoints):
            object.__setattr__(self, field.name, _check_url(getattr(self, field.name),
                                                            field.name))

    @classmethod
    def local(cls, url: str) -> Endpoints:
        """All four services at one URL, as the aiomusic emulator serves them."""
        return cls(aimlapi=url, minimax=url, suno=url, suno_upload=url)

    @classmethod
    def china(cls) -> Endpoints:
        """The defaults, with MiniMax's mainland China host (``api.minimaxi.com``)."""
        return cls(minimax=MINIMAX_HOSTS["cn"])

    def for_service(self, service: Service) -> str:
        """The base URL of ``service``."""
        return str(getattr(self, service.value))

    def for_service_name(self, name: str) -> str:
        """The base URL of the service named ``name`` (``"suno_upload"``...)."""
        return self.for_service(Service(name))


@attrs.frozen(repr=False)
class Keys:
    """API keys per service; the repr never shows them."""

    aimlapi: str | None = None
    minimax: str | None = None
    suno: str | None = None

    @classmethod
    def resolve(cls, *, aimlapi: str | None, minimax: str | None, suno: str | None,
                environ: Mapping[str, str] | None = None) -> Keys:
        """Keys from the arguments, else ``AIMLAPI_KEY``, ``MINIMAX_API_KEY``, ``SUNO_API_KEY``."""
        env = os.environ if environ is None else environ
        return cls(
            aimlapi=aimlapi or env.get(_ENV_KEYS[Service.AIMLAPI]) or None,
            minimax=minimax or env.get(_ENV_KEYS[Service.MINIMAX]) or None,
            suno=suno or env.get(_ENV_KEYS[Service.SUNO]) or None,
        )

    def for_service(self, service: Service) -> str:
        """The key for ``service``.

        Raises:
            ConfigurationError: no key was given or found in the environment.
        """
        name = "suno" if service is Service.SUNO_UPLOAD else service.value
        key: str | None = getattr(self, name)
        if not key:
            raise ConfigurationError(
                f"no API key for {service.value}: pass {name}_key=... to MusicSession or set "
                f"the {_ENV_KEYS[service]} environment variable"
            )
        return key

    def secrets(self) -> tuple[str, ...]:
        """Every configured key, for redaction."""
        return tuple(k for k in (self.aimlapi, self.minimax, self.suno) if k)

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={'***' if getattr(self, n) else None}"
                          for n in ("aimlapi", "minimax", "suno"))
        return f"Keys({shown})"
