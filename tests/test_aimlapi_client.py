"""session.aimlapi against the emulator over loopback: each model, resume by id, costs, faults."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from aiomusic import (
    BadRequestError,
    DeadlineExceededError,
    DownloadError,
    Event,
    InputError,
    InsufficientCreditsError,
    MusicSession,
    Progress,
    RequestStarted,
    RetryPolicy,
    SubmissionUnknownError,
    TaskFailedError,
)
from aiomusic._core._task import Cost, Phase, PollSchedule
from aiomusic.aimlapi.client import AimlapiTask
from aiomusic.emulator import Emulator, EmulatorConfig, Limits, Timings, sample_track
from aiomusic.testing import emulator_factory as _private_emulators

emulator_factory = _private_emulators  # the fixture, by the name the tests ask for

pytestmark = pytest.mark.anyio
KEY = "sk-aimlapi-test"
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05, maintenance_delay=0.01)
TINY = PollSchedule(initial=0.005, maximum=0.02)
LYRICS = "[Verse]\nStreetlights flicker, the night breeze sighs"
PROMPT = "Lo-fi pop, warm keys, slow intro"


def session(emulator: Emulator, **kw: Any) -> MusicSession:
    s = MusicSession(aimlapi_key=KEY, base_url=emulator.url, allow_http_hosts=("127.0.0.1",),
                     retry=kw.pop("retry", FAST), **kw)
    s.aimlapi.poll_schedule = TINY
    return s


def hosted(emulator: Emulator, seconds: float) -> str:
    """A reference track the emulator serves itself (through its file host)."""
    resp = httpx.post(emulator.url + "/api/file-stream-upload", data={"uploadPath": "refs"},
                      files={"file": ("r.mp3", sample_track(seconds, format="mp3"),
                                      "audio/mpeg")},
                      headers={"Authorization": f"Bearer {KEY}"})
    url: str = resp.json()["data"]["downloadUrl"]
    return url


INLINE = "data:audio/mpeg;base64," + base64.b64encode(sample_track(8.0, format="mp3")).decode()
#: model -> (its fields, the file suffix, dollars reported)
CASES: dict[str, tuple[dict[str, Any], str, bool]] = {
    "stable-audio": ({"prompt": "rain", "seconds_total": 2, "steps": 20}, ".wav", False),
    "google/lyria2": ({"prompt": "strings", "negative_prompt": "drums", "seed": 1}, ".wav",
                      False),
    "elevenlabs/eleven_music": ({"prompt": "lo-fi", "music_length_ms": 10_000}, ".mp3", True),
    "minimax/music-1.5": ({"prompt": PROMPT, "lyrics": LYRICS, "format": "wav",
                           "sample_rate": 16000}, ".wav", True),
    "minimax/music-2.0": ({"prompt": PROMPT, "lyrics": LYRICS, "bitrate": 128000}, ".mp3",
                          True),
    "minimax/music-2.6": ({"prompt": PROMPT, "lyrics_optimizer": True}, ".mp3", True),
    "minimax/music-cover": ({"prompt": PROMPT, "reference_audio_url": INLINE,
                             "sample_rate": 24000}, ".mp3", True),
    "minimax-music": ({"prompt": "##la la la##", "reference_audio_url": "<hosted>"}, ".mp3",
                      False),
}


@pytest.mark.parametrize("model", list(CASES))
async def test_each_model_generates_a_file(emulator: Emulator, tmp_path: Path,
                                           model: str) -> None:
    fields, suffix, usd = CASES[model]
    if fields.get("reference_audio_url") == "<hosted>":
        fields = {**fields, "reference_audio_url": hosted(emulator, 20.0)}
    async with session(emulator) as s:
        result = await s.aimlapi.generate(model, tmp_path, **fields)
    assert result.path.parent == tmp_path and result.path.suffix == suffix
    assert result.path.stat().st_size == result.download.bytes_written > 1000
    assert result.model == model and result.snapshot.phase is Phase.SUCCEEDED
    assert result.cost is not None and result.cost.unit == "credits"
    assert result.cost.amount > 0 and (result.cost.usd is not None) == usd
    assert [p.name for p in tmp_path.iterdir()] == [result.path.name]  # no partial file
    assert emulator.counters.paid(key=KEY, operation="aiml.audio.submit") == 1


async def test_costs_and_the_result(emulator: Emulator, tmp_path: Path) -> None:
    target = tmp_path / "song.mp3"
    async with session(emulator) as s:
        result = await s.aimlapi.generate("minimax/music-2.6", target, prompt=PROMPT,
                                          is_instrumental=True)
    assert result.path == target and target.exists()
    assert result.cost == Cost(390_000, "credits", "aimlapi", usd=0.195)
    assert result.duration is not None and result.duration > 1
    assert result.generation_id == result.snapshot.task_id


async def test_submit_then_resume_by_id(emulator: Emulator, tmp_path: Path) -> None:
    async with session(emulator) as s:
        task = await s.aimlapi.submit("minimax/music-2.0", prompt=PROMPT, lyrics=LYRICS)
        assert task.status == "queued" and task.phase is Phase.PENDING
        assert task.cost is not None and task.cost.usd == 0.039  # said at submission
        generation_id = task.generation_id
    async with session(emulator) as s:
        again = s.aimlapi.task(f"  {generation_id} ")
        assert isinstance(again, AimlapiTask) and again.phase is None
        assert again.model == "minimax/music-2.0"  # from the id's suffix
        snap = await again.wait()
        assert snap.phase is Phase.SUCCEEDED and again.generation is not None
        result = await again.download(tmp_path)
    assert result.path.name == generation_id.partition(":")[0] + ".mp3"
    assert emulator.counters.paid() == 1


async def test_watch_sees_the_queue_and_the_generation(emulator_factory: Any,
                                                       tmp_path: Path) -> None:
    emu = emulator_factory(EmulatorConfig(timings=Timings(aiml_queue=0.15, aiml_generate=0.3),
                                          limits=Limits.off(), track_seconds=(2.0, 3.0)))
    events: list[Event] = []
    async with session(emu, on_event=events.append) as s:
        task = await s.aimlapi.submit("stable-audio", prompt="rain", seconds_total=2)
        seen = [snap.status async for snap in task.watch(timeout=30)]
        with pytest.raises(DownloadError, match="not completed"):
            await (await s.aimlapi.submit("stable-audio", prompt="x")).download(tmp_path)
    assert seen[0] == "queued" and seen[-1] == "completed"
    assert task.polls > 2  # at the client's schedule, not the service's 10-15 s
    assert set(seen) <= {"queued", "generating", "completed"}
    lanes = {(e.operation, e.lane, e.paid) for e in events if isinstance(e, RequestStarted)}
    assert ("aimlapi.generate", "aimlapi.submit", True) in lanes
    assert ("aimlapi.status", "aimlapi.poll", False) in lanes
    stages = [e.stage for e in events if isinstance(e, Progress)]
    assert stages[0] == "submitted" and "completed" in stages


async def test_problems_are_found_before_anything_is_sent(emulator: Emulator) -> None:
    async with session(emulator) as s:
        with pytest.raises(InputError) as caught:
            await s.aimlapi.submit("minimax/music-1.5", prompt="short", steps=3)
        fields = [p.field for p in caught.value.problems]  # type: ignore[attr-defined]
        assert fields == ["prompt", "steps", "lyrics"]
        with pytest.raises(TypeError, match=r"unknown field\(s\) tempo: pass .* as extra"):
            await s.aimlapi.submit("stable-audio", prompt="p", tempo=120)
        with pytest.raises(InputError, match="generation_id"):
            s.aimlapi.task("  ")
    assert emulator.counters.requests == {}


async def test_an_unknown_model_passes_through_with_one_warning(
        emulator: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="aiomusic")
    async with session(emulator) as s:
        for _ in range(2):
            with pytest.raises(BadRequestError, match="Invalid enum value"):
                await s.aimlapi.submit("acme/music-9", prompt="p", extra={"tempo": 120})
    warnings = [r for r in caplog.records if "acme/music-9" in r.getMessage()]
    assert len(warnings) == 1 and "not one aiomusic knows" in warnings[0].getMessage()
    assert emulator.counters.paid() == 0


async def test_a_failed_generation(emulator: Emulator, tmp_path: Path) -> None:
    emulator.inject("generate_audio_failed", operation="aiml.audio.submit")
    async with session(emulator) as s:
        task = await s.aimlapi.submit("minimax/music-2.0", prompt=PROMPT, lyrics=LYRICS)
        with pytest.raises(TaskFailedError, match="GenerationError: Audio generation failed") \
                as caught:
            await task.wait()
    assert caught.value.task_id == task.task_id and caught.value.status == "error"
    assert task.cost == Cost(0, "credits", "aimlapi", usd=0)  # refunded, as reported
    assert list(tmp_path.iterdir()) == []


async def test_a_lost_submission_answer_is_not_sent_again(emulator: Emulator) -> None:
    emulator.inject("reset_before_answer", operation="aiml.audio.submit")
    async with session(emulator) as s:
        with pytest.raises(SubmissionUnknownError):
            await s.aimlapi.submit("stable-audio", prompt="p")
    assert emulator.counters.paid() == 1


async def test_refusals_before_any_work_are_retried(emulator: Emulator, tmp_path: Path) -> None:
    emulator.inject("rate_limit", operation="aiml.audio.submit")
    emulator.inject("server_error", operation="aiml.audio.status")
    emulator.inject("malformed_json", operation="aiml.audio.status")
    emulator.inject("truncated_body", operation="aiml.audio.download")
    async with session(emulator) as s:
        result = await s.aimlapi.generate("stable-audio", tmp_path / "a.wav", prompt="p",
                                          seconds_total=2)
    assert result.download.resumes == 1
    assert emulator.counters.paid() == 1 and emulator.counters.fired() == 4


async def test_out_of_credits(emulator_factory: Any) -> None:
    emu = emulator_factory(EmulatorConfig(timings=Timings.instant(), aiml_credits=10))
    async with session(emu) as s:
        with pytest.raises(InsufficientCreditsError):
            await s.aimlapi.submit("stable-audio", prompt="p")
    assert emu.counters.paid() == 0


async def test_an_expired_link_is_not_fetched(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(EmulatorConfig(
        timings=Timings(aiml_queue=0, aiml_generate=0, aiml_link_ttl=-60),
        track_seconds=(2.0, 3.0)))
    async with session(emu) as s:
        with pytest.raises(DownloadError, match=r"expired at .* UTC .* generate it again"):
            await s.aimlapi.generate("stable-audio", tmp_path, prompt="p", seconds_total=2)
    assert list(tmp_path.iterdir()) == []
    assert emu.counters.requests.get("/v2/generate/audio", 0) >= 3  # looked up again first


async def test_a_wait_that_gives_up_says_how_to_resume(emulator_factory: Any) -> None:
    emu = emulator_factory(EmulatorConfig(timings=Timings(aiml_queue=60, aiml_generate=60)))
    async with session(emu) as s:
        task = await s.aimlapi.submit("google/lyria2", prompt="p")
        with pytest.raises(DeadlineExceededError, match=r"session\.aimlapi\.task\("):
            await task.wait(timeout=0.1)
        with pytest.raises(DeadlineExceededError):
            await s.aimlapi.generate("google/lyria2", "x.wav", prompt="p", timeout=0.2)
    assert emu.counters.paid() == 2
