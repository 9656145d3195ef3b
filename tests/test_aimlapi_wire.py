"""Odd wire shapes of the AI/ML async family, at the HTTP seam with respx."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from aiomusic import (
    AuthenticationError,
    DownloadError,
    MusicSession,
    NotFoundError,
    ResponseError,
    RetryPolicy,
    SubmissionUnknownError,
)
from aiomusic._core._task import Cost, PollSchedule

pytestmark = pytest.mark.anyio
BASE = "https://api.aimlapi.com"
PATH = f"{BASE}/v2/generate/audio"
GEN = "e84c6bd4-bb02-4702-a55d-9b73e170c110:minimax/music-2.0"
AUDIO = b"ID3" + bytes(range(256)) * 20
LATER = int((dt.datetime.now(dt.UTC) + dt.timedelta(hours=23)).timestamp())
LINK = f"https://cdn.aimlapi.example/moose/a.mp3?Expires={LATER}&Signature=x"
FIELDS = {"prompt": "Lo-fi pop, warm keys", "lyrics": "[Verse]\nla la la la la"}


def session() -> MusicSession:
    s = MusicSession(aimlapi_key="sk-wire-test", retry=RetryPolicy(base_delay=0, max_delay=0))
    s.aimlapi.poll_schedule = PollSchedule(initial=0.001, maximum=0.002)
    return s


def done(url: str = LINK, **extra: Any) -> httpx.Response:
    return httpx.Response(200, json={"id": GEN, "status": "completed",
                                     "audio_file": {"url": url}, **extra})


@respx.mock
async def test_tolerant_answers_end_to_end(tmp_path: Path) -> None:
    """A 201, numbers as strings, a 'waiting' status, an unknown one, a completed answer that
    first lacks its link: the generation is still followed to its file."""
    submit = respx.post(PATH).respond(201, json={"id": GEN, "status": "queued"})
    respx.get(PATH).mock(side_effect=[
        httpx.Response(200, json={"id": GEN, "status": "waiting", "meta": None}),
        httpx.Response(200, json={"id": GEN, "status": "rendering"}),
        httpx.Response(200, json={"id": GEN, "status": "completed"}),  # no link: asked again
        done(meta={"usage": {"credits_used": "78000", "usd_spent": "0.039"}},
             extra_info={"music_duration": "4000"}),
    ])
    respx.get(LINK.split("?")[0]).respond(200, content=AUDIO,
                                          headers={"Content-Type": "audio/mpeg"})
    async with session() as s:
        result = await s.aimlapi.generate("minimax/music-2.0", tmp_path, **FIELDS)
    assert result.path.read_bytes() == AUDIO and result.duration == 4.0
    assert result.cost == Cost(78000, "credits", "aimlapi", usd=0.039)
    sent = json.loads(submit.calls.last.request.content)
    assert sent == {"model": "minimax/music-2.0", **FIELDS}
    status = respx.calls[1].request
    assert status.url.params["generation_id"] == GEN  # ':' and '/' survive the query
    assert "authorization" not in {k.lower() for k in respx.calls.last.request.headers}


@respx.mock
async def test_an_answer_without_an_id_is_a_submission_of_unknown_fate() -> None:
    respx.post(PATH).respond(200, json={"status": "queued"})
    async with session() as s:
        with pytest.raises(SubmissionUnknownError, match="no generation id"):
            await s.aimlapi.submit("minimax/music-2.0", **FIELDS)
    assert len(respx.calls) == 1


@respx.mock
async def test_a_submission_answered_with_html_is_not_sent_again() -> None:
    respx.post(PATH).respond(200, text="<html>gateway</html>")
    async with session() as s:
        with pytest.raises(SubmissionUnknownError, match="not JSON"):
            await s.aimlapi.submit("stable-audio", prompt="rain")
    assert len(respx.calls) == 1


@respx.mock
async def test_a_generation_the_service_does_not_know() -> None:
    respx.get(PATH).respond(404, json={"message": "Generation not found", "statusCode": 404,
                                       "path": "/v2/generate/audio", "requestId": "r1"})
    async with session() as s:
        with pytest.raises(NotFoundError, match="Generation not found"):
            await s.aimlapi.task("gone").wait()


@respx.mock
async def test_a_refused_key_stops_the_wait_at_once() -> None:
    route = respx.get(PATH).respond(401, json={"message": "Unauthorized", "statusCode": 401})
    async with session() as s:
        with pytest.raises(AuthenticationError):
            await s.aimlapi.task(GEN).wait()
    assert route.call_count == 1


@respx.mock
async def test_unreadable_status_answers_are_asked_again_then_give_up() -> None:
    route = respx.get(PATH).respond(200, json={"id": GEN, "status": None})
    async with session() as s:
        with pytest.raises(ResponseError, match=r"has no status .* session\.aimlapi\.task\("):
            await s.aimlapi.task(GEN).wait()
    assert route.call_count == 8  # polls are free, but a run of failures gives up


@respx.mock
async def test_a_link_that_expires_is_looked_up_again(tmp_path: Path) -> None:
    soon = int(dt.datetime.now(dt.UTC).timestamp()) + 5
    fresh = LINK.replace("a.mp3", "b.mp3")
    respx.get(PATH).mock(side_effect=[done(LINK.replace(str(LATER), str(soon))), done(fresh)])
    respx.get(fresh.split("?")[0]).respond(200, content=AUDIO)
    async with session() as s:
        task = s.aimlapi.task(GEN)
        await task.wait()
        result = await task.download(tmp_path / "a.mp3")
    assert result.path.read_bytes() == AUDIO
    assert result.download.url == fresh.split("?")[0]  # never the query (its signature)


@respx.mock
async def test_a_link_refused_by_the_cdn_leaves_no_file(tmp_path: Path) -> None:
    respx.get(PATH).mock(return_value=done())
    respx.get(LINK.split("?")[0]).respond(403, content=b"<Error><Code>AccessDenied</Code>")
    async with session() as s:
        with pytest.raises(DownloadError, match="HTTP 403"):
            await _download(s, tmp_path)
    assert list(tmp_path.iterdir()) == []


async def _download(s: MusicSession, folder: Path) -> Any:
    task = s.aimlapi.task(GEN)
    await task.wait()
    return await task.download(folder / "a.mp3")


@respx.mock
async def test_plain_http_links_are_refused(tmp_path: Path) -> None:
    respx.get(PATH).mock(return_value=done("http://cdn.example/a.mp3"))
    async with session() as s:
        with pytest.raises(DownloadError, match="only https"):
            await _download(s, tmp_path)
