"""The rule for tests that need a real server: skipped locally when it is absent, failed on CI.

A nested pytest run in a subprocess uses the real fixtures of ``tests/servers.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .servers import Proxy

ROOT = Path(__file__).resolve().parent.parent

NEEDS_SERVERS = """
from tests.servers import postgres_url, redis_url

def test_redis(redis_url):
    assert redis_url

def test_postgres(postgres_url):
    assert postgres_url
"""


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_needs.py").write_text(NEEDS_SERVERS)
    environ = {k: v for k, v in os.environ.items()
               if k not in ("CI", "AIOMUSIC_TEST_REDIS_URL", "AIOMUSIC_TEST_POSTGRES_URL")}
    environ.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider",
                           "-p", "no:cov", "test_needs.py"], cwd=tmp_path, env=environ,
                          capture_output=True, text=True, timeout=120, check=False)


def test_absent_servers_skip_with_the_reason_locally(tmp_path: Path) -> None:
    done = _run(tmp_path)
    assert done.returncode == 0, done.stdout
    assert "2 skipped" in done.stdout
    assert "set AIOMUSIC_TEST_REDIS_URL (.ci/run starts one)" in done.stdout
    assert "set AIOMUSIC_TEST_POSTGRES_URL" in done.stdout


@pytest.mark.parametrize("ci", ["true", "TRUE"])
def test_absent_servers_fail_on_ci(tmp_path: Path, ci: str) -> None:
    done = _run(tmp_path, CI=ci)
    assert done.returncode == 1, done.stdout
    assert "2 errors" in done.stdout  # a failing fixture errors its tests
    assert "CI=true, so this is a failure, not a skip" in done.stdout


def test_servers_that_do_not_answer_fail_on_ci(tmp_path: Path) -> None:
    proxy = Proxy("127.0.0.1", 9)  # nothing answers behind it
    try:
        proxy.down()
        done = _run(tmp_path, CI="true",
                    AIOMUSIC_TEST_REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0",
                    AIOMUSIC_TEST_POSTGRES_URL=f"postgresql://u:p@127.0.0.1:{proxy.port}/db")
    finally:
        proxy.close()
    assert done.returncode == 1, done.stdout
    assert "2 errors" in done.stdout  # a failing fixture errors its tests
    assert "does not answer" in done.stdout
