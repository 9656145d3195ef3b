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


@pytest.mark.parametrize(("level", "expect_requests"), [
    ("debug", True), ("info", True), ("INFO", True), ("warning", False), ("", False)])
def test_aiomusic_log_env(level: str, expect_requests: bool) -> None:
    """info shows each request, as the README says (before: only debug did)."""
    env = {**os.environ, "AIOMUSIC_LOG": level}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         env=env, check=True, timeout=60)
    assert "credits 3" in out.stdout
    shown = "-> GET https://api.sunoapi.org/api/v1/generate/credit" in out.stderr
    assert shown is expect_requests
    assert "sk-LOGGED-SECRET" not in out.stderr + out.stdout


def test_an_invalid_log_level_is_said_not_ignored() -> None:
    env = {**os.environ, "AIOMUSIC_LOG": "verbose"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         env=env, check=True, timeout=60)
    assert "credits 3" in out.stdout
    assert out.stderr == ("aiomusic: AIOMUSIC_LOG='verbose' is not one of debug, info, "
                          "warning, error; logging stays off\n")


def test_redact_replaces_secrets_and_bearer_tokens() -> None:
    text = "key sk-12345678 in Authorization: Bearer abc.def and 'Bearer xyz'"
    assert redact(text, ["sk-12345678"]) == \
        "key *** in Authorization: Bearer *** and 'Bearer ***'"


def test_redact_leaves_words_alone_for_a_placeholder_key() -> None:
    """A 1-character test key turned "check" into "chec***" (a plain substring replace)."""
    assert redact("check the key", ["k"]) == "check the key"
    assert redact("check the key", ["sk-short"]) == "check the key"
