"""AIOMUSIC_LOG switches logging on; keys never reach it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from aiomusic._core._log import redact

SCRIPT = """
import anyio, httpx, aiomusic

def answer(request):
    return httpx.Response(200, json={"code": 200, "msg": "success", "data": 3})

async def main():
    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with aiomusic.MusicSession(suno_key="sk-LOGGED-SECRET", http_client=client) as s:
        print("credits", await s.suno.get_credits())
    await client.aclose()

anyio.run(main)
"""


@pytest.mark.parametrize(("level", "expect_debug"), [("debug", True), ("info", False),
                                                     ("", False)])
def test_aiomusic_log_env(level: str, expect_debug: bool) -> None:
    env = {**os.environ, "AIOMUSIC_LOG": level}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         env=env, check=True, timeout=60)
    assert "credits 3" in out.stdout
    assert ("-> GET https://api.sunoapi.org/api/v1/generate/credit" in out.stderr) is expect_debug
    assert "sk-LOGGED-SECRET" not in out.stderr + out.stdout


def test_redact_replaces_secrets_and_bearer_tokens() -> None:
    text = "key sk-1 in Authorization: Bearer abc.def and 'Bearer xyz'"
    assert redact(text, ["sk-1"]) == "key *** in Authorization: Bearer *** and 'Bearer ***'"
