"""Tests of the atomic file writer, on asyncio and trio."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from aiomusic._io import _files
from aiomusic._io._files import AtomicFile, Batcher, write_behind

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the size of every batch written to disk."""
    sizes: list[int] = []
    real = _files._write_all

    def counting(fd: int, pieces: list[bytes], digest: Any) -> int:
        sizes.append(sum(len(piece) for piece in pieces))
        return real(fd, pieces, digest)

    monkeypatch.setattr(_files, "_write_all", counting)
    return sizes


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("name", ["song.mp3", "a.b.c", "x", "sp ace.wav", "ünï-çødé.mp3",
                                  ".hidden", "tail.part"])
async def test_a_temporary_file_names_its_destination(tmp_path: Path, name: str) -> None:
    async with AtomicFile(tmp_path / name) as f:
        assert f.temporary_path is not None
        assert _files.temporary_file_of(f.temporary_path.name) == name
    for other in (name, f".{name}.part", f".{name}.abc.part", f".{name}.abcdefgh.tmp",
                  f".{name}.ABCDEFGH.part", f"{name}-abcdefgh.part"):
        assert _files.temporary_file_of(other) is None


async def test_success(tmp_path: Path) -> None:
    target = tmp_path / "song.mp3"
    parts = [os.urandom(n) for n in (1, 1000, 70_000, 0, 3)]
    async with AtomicFile(target, batch_size=4096) as f:
        tmp = f.temporary_path
        assert tmp is not None
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".song.mp3.")
        assert tmp.name.endswith(".part")
        for part in parts:
            await f.write(part)
        await f.write(memoryview(b"mv"))
        assert not target.exists()
    data = b"".join(parts) + b"mv"
    assert target.read_bytes() == data
    assert f.bytes_written == len(data)
    assert f.sha256 == hashlib.sha256(data).hexdigest()
    assert f.temporary_path is None
    assert leftovers(tmp_path) == ["song.mp3"]
    umask = _files._read_umask()
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


async def test_empty_file(tmp_path: Path) -> None:
    async with AtomicFile(str(tmp_path / "empty")) as f:
        pass
    assert (tmp_path / "empty").read_bytes() == b""
    assert f.sha256 == hashlib.sha256().hexdigest()


async def test_exception_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "song.mp3"
    f = AtomicFile(target, batch_size=10)

    async def fail() -> None:
        async with f:
            await f.write(b"x" * 100)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail()
    assert leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="only after"):
        _ = f.sha256


async def test_exception_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "song.mp3"
    target.write_bytes(b"old")

    async def fail() -> None:
        async with AtomicFile(target) as f:
            await f.write(b"new")
            raise KeyError("x")

    with pytest.raises(KeyError):
        await fail()
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == ["song.mp3"]


async def test_cancellation_inside_write(tmp_path: Path, calls: list[int]) -> None:
    target = tmp_path / "song.mp3"
    target.write_bytes(b"old")
    reached = []
    with anyio.move_on_after(0.2) as scope:
        # max_behind=0: every write waits for the writer thread, the only checkpoint
        async with AtomicFile(target, batch_size=1, max_behind=0) as f:
            while True:
                reached.append(True)
                await f.write(b"abc")
    assert scope.cancelled_caught
    # the last write was cancelled while its batch went through the thread
    assert len(reached) - 1 <= len(calls) <= len(reached)
    assert len(reached) > 1
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == ["song.mp3"]


async def test_cancellation_while_waiting_elsewhere(tmp_path: Path) -> None:
    async with anyio.create_task_group() as tg:
        async def writer() -> None:
            async with AtomicFile(tmp_path / "a.wav") as f:
                await f.write(b"data")
                await anyio.sleep_forever()

        tg.start_soon(writer)
        await anyio.sleep(0.05)
        assert len(leftovers(tmp_path)) == 1  # the .part file
        tg.cancel_scope.cancel()
    assert leftovers(tmp_path) == []


async def test_cancelled_before_exit_commits_nothing(tmp_path: Path) -> None:
    with anyio.CancelScope() as scope:
        async with AtomicFile(tmp_path / "a.wav") as f:
            await f.write(b"data")
            scope.cancel()  # no checkpoint until __aexit__
    assert scope.cancelled_caught
    assert leftovers(tmp_path) == []


async def test_cancelled_on_entry_leaves_nothing(tmp_path: Path) -> None:
    with anyio.CancelScope() as scope:
        scope.cancel()
        async with AtomicFile(tmp_path / "a.wav"):
            pytest.fail("entered a cancelled scope")  # pragma: no cover
    assert leftovers(tmp_path) == []


async def test_overwrite_true_replaces(tmp_path: Path) -> None:
    target = tmp_path / "song.mp3"
    target.write_bytes(b"old")
    async with AtomicFile(target) as f:
        await f.write(b"new")
    assert target.read_bytes() == b"new"


async def test_overwrite_false_refuses_before_writing(tmp_path: Path) -> None:
    target = tmp_path / "song.mp3"
    target.write_bytes(b"old")
    with pytest.raises(FileExistsError, match="overwrite=False"):
        async with AtomicFile(target, overwrite=False):
            pytest.fail("entered")  # pragma: no cover
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == ["song.mp3"]


async def test_overwrite_false_creates(tmp_path: Path) -> None:
    target = tmp_path / "song.mp3"
    async with AtomicFile(target, overwrite=False) as f:
        await f.write(b"new")
    assert target.read_bytes() == b"new"
    assert leftovers(tmp_path) == ["song.mp3"]


async def test_overwrite_false_loses_a_race_safely(tmp_path: Path) -> None:
    target = tmp_path / "song.mp3"

    async def race() -> None:
        async with AtomicFile(target, overwrite=False) as f:
            await f.write(b"mine")
            target.write_bytes(b"theirs")  # someone else got there first

    with pytest.raises(FileExistsError):
        await race()
    assert target.read_bytes() == b"theirs"
    assert leftovers(tmp_path) == ["song.mp3"]


async def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        async with AtomicFile(tmp_path / "nope" / "song.mp3"):
            pytest.fail("entered")  # pragma: no cover
    assert leftovers(tmp_path) == []


async def test_destination_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "song.mp3").mkdir()
    (tmp_path / "song.mp3" / "inside").write_bytes(b"")

    async def write() -> None:
        async with AtomicFile(tmp_path / "song.mp3") as f:
            await f.write(b"x")

    with pytest.raises(OSError):  # IsADirectoryError or another OSError by platform
        await write()
    assert leftovers(tmp_path) == ["song.mp3"]


async def test_many_small_writes_make_few_batches(tmp_path: Path, calls: list[int]) -> None:
    target = tmp_path / "song.mp3"
    async with AtomicFile(target, batch_size=64 * 1024) as f:
        assert f.batch_size == 64 * 1024
        for _ in range(1000):
            await f.write(b"z" * 1000)
    assert sum(calls) == 1_000_000
    assert len(calls) == 16  # 15 full batches of >= 64 KiB, then the rest on exit
    assert all(size >= 64 * 1024 for size in calls[:-1])
    assert target.stat().st_size == 1_000_000


async def test_big_writes_go_straight_through(tmp_path: Path, calls: list[int]) -> None:
    data = os.urandom(3 << 20)
    async with AtomicFile(tmp_path / "big", batch_size=1 << 20) as f:
        await f.write(data)
        await f.write(b"tail")
    assert calls == [3 << 20, 4]
    assert (tmp_path / "big").read_bytes() == data + b"tail"
    assert f.sha256 == hashlib.sha256(data + b"tail").hexdigest()


async def test_disk_error_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int, pieces: list[bytes], digest: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_files, "_write_all", full)

    async def write(name: str) -> None:
        async with AtomicFile(tmp_path / name, batch_size=1) as f:
            await f.write(b"x")  # handed to the thread: its failure comes out at the exit

    async def swallow() -> None:
        # max_behind=0: the write waits for the thread, so its failure comes out of it
        async with AtomicFile(tmp_path / "b", batch_size=1, max_behind=0) as f:
            with pytest.raises(OSError, match="No space"):
                await f.write(b"x")

    with pytest.raises(OSError, match="No space") as caught:
        await write("a")
    assert type(caught.value) is OSError
    assert leftovers(tmp_path) == []
    # swallowing the error does not produce a silently incomplete file
    with pytest.raises(ValueError, match="earlier write"):
        await swallow()
    assert leftovers(tmp_path) == []


async def test_a_failed_batch_is_raised_by_the_next_write(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[int] = []
    real = _files._write_all

    def second_fails(fd: int, pieces: list[bytes], digest: Any) -> int:
        written.append(len(pieces))
        if len(written) == 2:
            raise OSError(errno.EIO, "I/O error")
        return real(fd, pieces, digest)

    monkeypatch.setattr(_files, "_write_all", second_fails)

    async def write() -> None:
        async with AtomicFile(tmp_path / "a", batch_size=1) as f:
            await f.write(b"x")
            await f.write(b"y")
            while f._behind is None or f._behind.error is None:  # the thread's own time
                await anyio.sleep(0.001)
            await f.write(b"z")
            raise AssertionError("the failure was not raised")  # pragma: no cover

    with pytest.raises(OSError, match="I/O error") as caught:
        await write()
    assert type(caught.value) is OSError
    assert written == [1, 1]  # nothing is written after a failure
    assert leftovers(tmp_path) == []


async def test_misuse(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        AtomicFile(tmp_path / "a", batch_size=0)
    f = AtomicFile(tmp_path / "a")
    with pytest.raises(ValueError, match="is new"):
        await f.write(b"x")
    async with f:
        pass
    with pytest.raises(ValueError, match="is done"):
        await f.write(b"x")
    with pytest.raises(ValueError, match="only once"):
        async with f:
            pass  # pragma: no cover


async def test_held_pieces_are_immune_to_later_changes(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    mutable = bytearray(b"abc")
    view_source = bytearray(b"xyz")
    async with AtomicFile(target) as f:
        await f.write(mutable)
        await f.write(memoryview(view_source))
        mutable[:] = b"!!!"  # the caller reuses its buffers: what was written must not change
        view_source[:] = b"???"
    assert target.read_bytes() == b"abcxyz"
    assert f.sha256 == hashlib.sha256(b"abcxyz").hexdigest()


async def test_write_many_writes_what_is_held_first_in_one_call(tmp_path: Path,
                                                                calls: list[int]) -> None:
    target = tmp_path / "a.bin"
    async with AtomicFile(target, batch_size=1 << 20) as f:
        await f.write(b"held ")
        assert calls == []
        await f.write_many([b"then ", b"", b"these"])
        await f.write_many([])  # nothing held, nothing given: no call
    assert calls == [15]  # one writer-thread call, the held piece in front
    assert target.read_bytes() == b"held then these"
    assert f.bytes_written == 15


async def test_write_many_after_a_failure_is_refused(tmp_path: Path) -> None:
    f = AtomicFile(tmp_path / "a")
    with pytest.raises(ValueError, match="write_many\\(\\) on an AtomicFile that is new"):
        await f.write_many([b"x"])


@pytest.mark.parametrize(("sync_every", "expected"), [(4 << 20, 2), (None, 0), (1, 10)])
async def test_sync_every_spreads_the_disk_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                sync_every: int | None, expected: int) -> None:
    synced: list[int] = []
    monkeypatch.setattr(_files, "_datasync", synced.append)
    chunk = os.urandom(1 << 20)
    async with AtomicFile(tmp_path / "a", batch_size=1 << 20, sync_every=sync_every) as f:
        for _ in range(10):
            await f.write(chunk)
    assert len(synced) == expected  # the final fsync is always made, on top
    assert (tmp_path / "a").read_bytes() == chunk * 10


def test_sync_every_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sync_every"):
        AtomicFile(tmp_path / "a", sync_every=0)


# -- write_behind -----------------------------------------------------------------------------


async def test_write_behind_batches_in_order() -> None:
    got: list[list[bytes]] = []

    async def write(batch: list[bytes]) -> None:
        got.append(batch)

    pieces = [os.urandom(n) for n in (10, 3000, 70, 5000, 1, 4096, 9)]
    async with write_behind(write, batch_size=4096) as hand_over:
        for piece in pieces:
            await hand_over(piece)
    assert b"".join(b"".join(batch) for batch in got) == b"".join(pieces)
    sizes = [sum(map(len, batch)) for batch in got]
    assert all(size >= 4096 for size in sizes[:-1])
    assert sizes == [8080, 4097, 9]


async def test_write_behind_empty_piece_hands_over_at_once() -> None:
    got: list[list[bytes]] = []

    async def write(batch: list[bytes]) -> None:
        got.append(batch)

    async with write_behind(write, batch_size=1 << 20) as hand_over:
        await hand_over(b"a")
        await hand_over(b"")
        await anyio.wait_all_tasks_blocked()
        assert got == [[b"a"]]
        await hand_over(b"")  # nothing held: nothing to hand over
    assert got == [[b"a"]]


async def test_write_behind_lets_the_caller_run_one_batch_ahead() -> None:
    started: list[bytes] = []
    release = anyio.Event()

    async def write(batch: list[bytes]) -> None:
        started.append(b"".join(batch))
        await release.wait()

    async with write_behind(write, batch_size=1) as hand_over:
        await hand_over(b"1")  # taken by the helper: returns while it is being written
        await anyio.wait_all_tasks_blocked()
        assert started == [b"1"]
        with anyio.move_on_after(0.05) as waited:
            await hand_over(b"2")  # the helper is busy: the caller waits, holding one batch
        assert waited.cancelled_caught
        release.set()
        await hand_over(b"3")
    assert started == [b"1", b"3"]  # "2" was given up with the cancelled hand-over


async def test_write_behind_failure_surfaces_unwrapped_at_the_next_hand_over() -> None:
    async def write(batch: list[bytes]) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    handed = 0

    async def fill() -> None:
        nonlocal handed
        async with write_behind(write, batch_size=1) as hand_over:
            for _ in range(100):
                await hand_over(b"x")
                handed += 1

    with pytest.raises(OSError, match="No space") as caught:
        await fill()
    assert type(caught.value) is OSError  # not an exception group
    assert handed < 100


async def test_write_behind_failure_surfaces_at_the_exit() -> None:
    async def write(batch: list[bytes]) -> None:
        raise OSError(errno.EIO, "Input/output error")

    with pytest.raises(OSError, match="Input/output") as caught:
        async with write_behind(write, batch_size=1 << 20) as hand_over:
            await hand_over(b"held until the exit")
    assert type(caught.value) is OSError


async def test_write_behind_block_failure_stops_the_writing_unwrapped() -> None:
    got: list[list[bytes]] = []
    release = anyio.Event()

    async def write(batch: list[bytes]) -> None:
        got.append(batch)
        await release.wait()

    async def fail() -> None:
        async with write_behind(write, batch_size=4) as hand_over:
            await hand_over(b"1234")
            await hand_over(b"he")  # held: less than a batch
            raise KeyError("decode")

    with pytest.raises(KeyError, match="decode") as caught:
        await fail()
    assert type(caught.value) is KeyError
    assert got == [[b"1234"]]  # the helper was stopped; what was held was never written


async def test_write_behind_outer_cancellation(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    with anyio.move_on_after(0.1) as scope:
        async with AtomicFile(target, batch_size=1) as f, write_behind(f.write_many,
                                                                       batch_size=1) as w:
            while True:
                await w(b"x")
    assert scope.cancelled_caught
    assert leftovers(tmp_path) == []


async def test_write_behind_into_a_file(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    pieces = [os.urandom(1000 + n) for n in range(300)]
    async with AtomicFile(target) as f, write_behind(f.write_many, batch_size=64 * 1024) as w:
        for piece in pieces:
            await w(piece)
    data = b"".join(pieces)
    assert target.read_bytes() == data
    assert f.bytes_written == len(data)
    assert f.sha256 == hashlib.sha256(data).hexdigest()


def test_write_behind_batch_size_must_be_positive() -> None:
    async def noop(batch: list[bytes]) -> None:
        raise AssertionError  # pragma: no cover

    with pytest.raises(ValueError, match="batch_size"):
        anyio.run(_enter, noop)


async def _enter(write: Any) -> None:
    async with write_behind(write, batch_size=0):
        raise AssertionError  # pragma: no cover


async def test_write_behind_failure_of_the_last_batch_surfaces_at_the_exit() -> None:
    async def write(batch: list[bytes]) -> None:
        await anyio.sleep(0.01)  # fails after the caller has handed everything over
        raise OSError(errno.EIO, "Input/output error")

    async def run() -> None:
        async with write_behind(write, batch_size=2) as hand_over:
            await hand_over(b"ab")  # exactly one batch: taken by the helper

    with pytest.raises(OSError, match="Input/output") as caught:
        await run()
    assert type(caught.value) is OSError


def test_batcher_holds_pieces_until_a_batch_and_flushes_on_empty() -> None:
    batcher = Batcher(4)
    assert batcher.add(b"ab") is None
    assert batcher.add(b"") == [b"ab"]  # b"": whatever is held
    assert batcher.add(b"") is None  # nothing held
    assert batcher.add(b"a") is None
    piece = b"bcd"
    batch = batcher.add(piece)
    assert batch == [b"a", b"bcd"] and batch[1] is piece  # held as given, not copied
    assert batcher.take() == []
    with pytest.raises(ValueError, match="batch_size"):
        Batcher(0)


# -- the writer thread ------------------------------------------------------------------------


def writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "aiomusic-writer"]


def test_write_all_finishes_short_writes_and_long_piece_lists(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.writev
    counts: list[int] = []

    def short(fd: int, buffers: list[bytes]) -> int:  # a pipe or a signal: a short write
        counts.append(len(buffers))
        return real(fd, [bytes(b"".join(buffers)[:5])])

    pieces = [bytes([i % 256]) * (i % 7) for i in range(3000)]  # empty ones too
    expected = b"".join(pieces)
    for writev, name in ((short, "short"), (real, "plain")):
        monkeypatch.setattr(os, "writev", writev)
        digest = hashlib.sha256()
        with open(tmp_path / name, "wb") as f:
            assert _files._write_all(f.fileno(), pieces, digest) == len(expected)
        assert (tmp_path / name).read_bytes() == expected
        assert digest.hexdigest() == hashlib.sha256(expected).hexdigest()
    assert max(counts) <= _files._IOV_MAX  # never more buffers than one call takes


def test_max_behind_must_not_be_negative(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_behind"):
        AtomicFile(tmp_path / "a", max_behind=-1)


@pytest.mark.parametrize("outcome", ["done", "error", "cancelled"])
async def test_the_writer_thread_never_outlives_its_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outcome: str) -> None:
    real = _files._write_all
    started = threading.Event()
    written: list[int] = []

    def slow(fd: int, pieces: list[bytes], digest: Any) -> int:
        started.set()
        time.sleep(0.002)  # a slow disk: the file falls behind its caller
        written.append(len(pieces))
        return real(fd, pieces, digest)

    monkeypatch.setattr(_files, "_write_all", slow)
    target = tmp_path / "song.mp3"
    with anyio.move_on_after(60 if outcome != "cancelled" else 0.05) as scope:
        try:
            async with AtomicFile(target, batch_size=4, max_behind=400) as f:
                for _ in range(200 if outcome != "cancelled" else 10_000):
                    await f.write(b"abcd")
                assert writer_threads()
                if outcome == "error":
                    raise KeyError("stop")
        except KeyError:
            pass
    assert started.is_set()
    assert writer_threads() == []  # joined before the context exited
    count = len(written)
    await anyio.sleep(0.01)
    assert len(written) == count  # and nothing was written after
    if outcome == "done":
        assert target.read_bytes() == b"abcd" * 200
        assert f.sha256 == hashlib.sha256(b"abcd" * 200).hexdigest()
    else:
        assert scope.cancelled_caught == (outcome == "cancelled")
        assert leftovers(tmp_path) == []
        assert count < 200  # what was behind (up to 100 batches of 2 ms) was dropped
