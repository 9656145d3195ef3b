from __future__ import annotations

import pytest

from aiomusic import ConfigurationError, Endpoints, Service
from aiomusic._core._config import Keys


def test_defaults_are_the_real_hosts() -> None:
    e = Endpoints()
    assert e.aimlapi == "https://api.aimlapi.com"
    assert e.minimax == "https://api.minimax.io"
    assert e.suno == "https://api.sunoapi.org"
    assert e.suno_upload == "https://sunoapiorg.redpandaai.co"


def test_local_points_everything_at_one_url() -> None:
    e = Endpoints.local("http://127.0.0.1:8765/")
    assert {e.for_service(s) for s in Service} == {"http://127.0.0.1:8765"}


@pytest.mark.parametrize("url", ["api.aimlapi.com", "ftp://x", "", "http://"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="absolute http"):
        Endpoints(aimlapi=url)


def test_keys_from_arguments_then_environment() -> None:
    env = {"AIMLAPI_KEY": "env-a", "MINIMAX_API_KEY": "env-m", "SUNO_API_KEY": "env-s"}
    keys = Keys.resolve(aimlapi="arg-a", minimax=None, suno=None, environ=env)
    assert keys.for_service(Service.AIMLAPI) == "arg-a"
    assert keys.for_service(Service.MINIMAX) == "env-m"
    assert keys.for_service(Service.SUNO_UPLOAD) == "env-s"


def test_missing_key_says_how_to_fix() -> None:
    keys = Keys.resolve(aimlapi=None, minimax=None, suno=None, environ={})
    with pytest.raises(ConfigurationError, match="SUNO_API_KEY"):
        keys.for_service(Service.SUNO)


def test_keys_repr_hides_secrets() -> None:
    keys = Keys(aimlapi="sk-very-secret", suno=None)
    assert "sk-very-secret" not in repr(keys)
    assert "aimlapi=***" in repr(keys)
