"""Cancellation torture: 100 concurrent calls of every kind, about 30 % cancelled mid-way.

Which calls are cancelled, and when, comes from a seeded RNG; the emulator slows answers down
(seeded random slow drips, a generation delay, Suno stages that take a few polls) so that the
cancellations land in every phase: waiting for a lane permit, sending, waiting for an answer,
reading a body, writing a file, sleeping between polls or retries. DESIGN invariant 6 must
hold afterwards, on asyncio and trio: no task outlives its call, no permit is held, no
connection is checked out, no temporary or partial file is left, and the session still works.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import random
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import pytest
import sniffio
from anyio.abc import TaskGroup

from aiomusic import (
    AiomusicError,
    LaneConfig,
    MusicSession,
    SubmissionUnknownError,
    Track,
)
from aiomusic.emulator import Emulator, Faults, Timings
from aiomusic.suno import PollSchedule

from .reliability_helpers import (
    FAST,
    FAST_CONFIG,
    LYRICS,
    NOWHERE,
    REFERENCE,
    STEM,
    SUNO_ARGS,
    assert_released,
    partial_files,
    spooled_uploads,
)

pytestmark = pytest.mark.anyio
KEY = "sk-cancel-test"
OPERATIONS = 100
CANCEL_SHARE = 0.3
KINDS = ("upload", "upload_iterable", "generate_path", "generate_file", "stream",
         "suno_upload", "submit_and_wait", "credits", "download")
PAID = ("generate_path", "generate_file", "stream", "submit_and_wait")

CONFIG = attrs.evolve(
    FAST_CONFIG,
    timings=Timings(generate=0.05, upload=0.01, suno_text=0.02, suno_first=0.05,
                    suno_complete=0.1, slow_drip_interval=0.02, slow_drip_pieces=5),
    faults=Faults(rates={"slow_drip": 0.4, "server_error": 0.05,
                         "reset_mid_body@files.download": 0.2,
                         "reset_before_answer@suno.credit": 0.2}, seed=7),
)
#: Small fixed lanes, so that some calls are cancelled while queueing for a permit.
LANES = {name: LaneConfig(max_concurrency=6, adaptive=False)
         for name in ("aimlapi.submit", "aimlapi.transfer", "suno.submit", "suno.poll",
                      "suno.transfer", "suno_upload.transfer")}


@pytest.fixture(scope="module")
def torture_emu() -> Iterator[Emulator]:
    with Emulator(CONFIG) as emulator:
        yield emulator


def live_tasks() -> set[Any]:
    """Every task alive in this event loop (asyncio) or under the root task (trio)."""
    if sniffio.current_async_library() == "asyncio":
        return {t for t in asyncio.all_tasks() if not t.done()}
    import trio

    found: set[Any] = set()
    root = trio.lowlevel.current_root_task()
    assert root is not None
    pending = [root]
    while pending:
        task = pending.pop()
        found.add(task)
        for nursery in task.child_nurseries:
            pending.extend(nursery.child_tasks)
    return found


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 8192):
        await anyio.lowlevel.checkpoint()
        yield data[start:start + 8192]


@attrs.define
class Op:
    index: int
    kind: str
    cancel_after: float | None
    outcome: str = "pending"  # ok | cancelled | <error class name>
    path: Path | None = None


async def run_op(s: MusicSession, op: Op, folder: Path, voice: str, upload_url: str,
                 track: Track) -> None:
    kind, i = op.kind, op.index
    if kind == "upload":
        await s.minimax.upload_reference(REFERENCE, purpose="voice")
    elif kind == "upload_iterable":  # spooled to a temporary file first
        await s.minimax.upload_reference(chunks(REFERENCE), purpose="voice")
    elif kind == "generate_path":
        op.path = folder / f"song-{i}.mp3"
        await s.minimax.generate(op.path, lyrics=LYRICS, refer_voice=voice)
    elif kind == "generate_file":
        await s.minimax.generate(io.BytesIO(), lyrics=LYRICS, refer_voice=voice)
    elif kind == "stream":
        async with s.minimax.stream(lyrics=LYRICS, refer_voice=voice) as audio:
            async for _chunk in audio:
                await anyio.lowlevel.checkpoint()
    elif kind == "suno_upload":
        await s.suno.upload(STEM)
    elif kind == "submit_and_wait":
        task = await s.suno.add_instrumental(upload_url, **SUNO_ARGS)
        await task.wait(timeout=30)
    elif kind == "credits":
        await s.suno.get_credits()
    else:
        assert kind == "download"
        op.path = folder / f"track-{i}.mp3"
        await s.suno.download(track, op.path)


async def guarded(group: TaskGroup, s: MusicSession, op: Op, *args: Any) -> None:
    """Run one operation in its own cancel scope; record how it ended."""
    with anyio.CancelScope() as scope:
        if op.cancel_after is not None:
            group.start_soon(cancel_later, scope, op.cancel_after)
        try:
            await run_op(s, op, *args)
            op.outcome = "ok"
        except AiomusicError as exc:  # faults may still win; anything else fails the test
            op.outcome = type(exc).__name__
    if scope.cancelled_caught:
        op.outcome = "cancelled"


async def cancel_later(scope: anyio.CancelScope, delay: float) -> None:
    await anyio.sleep(delay)
    scope.cancel()


async def prerequisites(s: MusicSession) -> tuple[str, str, Track]:
    """A voice id, an uploaded stem's URL and a finished track, made without faults."""
    ref = await s.minimax.upload_reference(REFERENCE, purpose="voice")
    assert ref.voice_id
    url = (await s.suno.upload(STEM)).download_url
    task = await s.suno.add_instrumental(url, **SUNO_ARGS)
    result = await task.wait(timeout=30)
    return ref.voice_id, url, result.tracks[0]


async def every_kind_works(s: MusicSession, folder: Path, voice: str, url: str,
                           track: Track) -> None:
    """After the torture, one of each kind succeeds in the same session."""
    for index, kind in enumerate(KINDS):
        op = Op(1000 + index, kind, None)
        await run_op(s, op, folder, voice, url, track)
        assert op.path is None or op.path.is_file()


@pytest.mark.parametrize("seed", [1, 2])
async def test_cancel_30_percent_of_100_mixed_operations(torture_emu: Emulator,
                                                         tmp_path: Path, seed: int,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    emu = torture_emu
    emu.reset()
    emu.set_faults(Faults())  # no faults while preparing
    rng = random.Random(seed)
    # spooled uploads go to a folder of this test's own (other processes share /tmp)
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    songs = tmp_path / "songs"
    songs.mkdir()
    tasks_before = live_tasks()
    ops = [Op(i, rng.choice(KINDS),
              rng.uniform(0.0, 0.4) if rng.random() < CANCEL_SHARE else None)
           for i in range(OPERATIONS)]
    async with MusicSession(aimlapi_key=KEY, suno_key=KEY, base_url=emu.url, retry=FAST,
                            allow_http_hosts=("127.0.0.1",), suno_callback_url=NOWHERE,
                            lanes=LANES) as s:
        s.suno.poll_schedule = PollSchedule(initial=0.01, maximum=0.05)
        voice, url, track = await prerequisites(s)
        emu.set_faults(CONFIG.faults)
        paid_before = emu.counters.paid()
        with anyio.fail_after(120):  # a hang guard, not a timing assertion
            async with anyio.create_task_group() as group:
                for op in ops:
                    group.start_soon(guarded, group, s, op, songs, voice, url, track)
        # -- the invariants, right after the storm ---------------------------------------
        assert live_tasks() == tasks_before  # no task outlived its call
        assert_released(s, paused_ok=True)  # no permit held, no connection checked out
        assert partial_files(songs) == []
        assert spooled_uploads(spool) == set()
        for op in ops:
            if op.path is not None:  # a file exists exactly when its call succeeded
                assert op.path.exists() is (op.outcome == "ok"), op
        outcomes = {op.outcome for op in ops}
        assert "pending" not in outcomes
        assert "cancelled" in outcomes and "ok" in outcomes
        # a paid call is charged at most once: nothing was re-sent after a cancellation
        paid_ops = sum(op.kind in PAID for op in ops)
        assert emu.counters.paid() - paid_before <= paid_ops
        # -- and the session still works ------------------------------------------------
        emu.set_faults(Faults())
        after = tmp_path / "after"
        after.mkdir()
        await every_kind_works(s, after, voice, url, track)
        assert_released(s, paused_ok=True)
        assert partial_files(after) == []
        assert spooled_uploads(spool) == set()
    assert live_tasks() == tasks_before


@contextlib.asynccontextmanager
async def dripping_generation(emu: Emulator) -> AsyncIterator[tuple[MusicSession, str]]:
    """A fresh emulator and session with a voice id; the next generation's answer drips in."""
    emu.reset()
    emu.set_faults(Faults())
    async with MusicSession(aimlapi_key=KEY, base_url=emu.url, retry=FAST) as s:
        ref = await s.minimax.upload_reference(REFERENCE, purpose="voice")
        assert ref.voice_id
        emu.inject("slow_drip", operation="aiml.generate")
        yield s, ref.voice_id


async def test_cancelled_paid_call_is_not_resent(torture_emu: Emulator, tmp_path: Path
                                                 ) -> None:
    """A generation cancelled while its answer drips in was sent once and is never re-sent;
    the same session then generates normally."""
    emu = torture_emu
    async with dripping_generation(emu) as (s, voice):
        with anyio.move_on_after(0.1) as scope:
            await s.minimax.generate(tmp_path / "a.mp3", lyrics=LYRICS, refer_voice=voice)
        assert scope.cancelled_caught
        assert emu.counters.paid(operation="aiml.generate") == 1
        assert_released(s)
        assert list(tmp_path.iterdir()) == []
        result = await s.minimax.generate(tmp_path / "b.mp3", lyrics=LYRICS,
                                          refer_voice=voice)
        assert result.bytes_written > 0
    assert emu.counters.paid(operation="aiml.generate") == 2


async def test_cancelling_a_stream_consumer_keeps_the_error_channel_quiet(
        torture_emu: Emulator) -> None:
    """Cancelling the task that iterates a stream raises only the cancellation (no
    SubmissionUnknownError or ExceptionGroup escapes), and the permit comes back."""
    emu = torture_emu
    async with dripping_generation(emu) as (s, voice):
        got = bytearray()
        with anyio.move_on_after(0.1) as scope:
            async with s.minimax.stream(lyrics=LYRICS, refer_voice=voice) as audio:
                async for chunk in audio:
                    got += chunk
        assert scope.cancelled_caught and audio.result is None
        assert audio.error is None or isinstance(audio.error, SubmissionUnknownError)
        assert_released(s)
