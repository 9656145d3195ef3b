"""Tests of the atomic file writer, on asyncio and trio."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

import anyio
import pytest

from aiomusic import _files
from aiomusic._files import AtomicFile

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the size of every batch written to disk."""
    sizes: list[int] = []
    real = _files._write_all

    def counting(fd: int, data: bytes | bytearray, digest: Any) -> None:
        sizes.append(len(data))
        real(fd, data, digest)

    monkeypatch.setattr(_files, "_write_all", counting)
    return sizes


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


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
        async with AtomicFile(target, batch_size=1) as f:
            while True:
                reached.append(True)
                await f.write(b"abc")  # every write goes to a thread: the only checkpoint
    assert scope.cancelled_caught
    # the last write was cancelled before or while its batch went to the thread
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
    def full(fd: int, data: bytes | bytearray, digest: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_files, "_write_all", full)

    async def write(name: str) -> None:
        async with AtomicFile(tmp_path / name, batch_size=1) as f:
            await f.write(b"x")

    async def swallow() -> None:
        async with AtomicFile(tmp_path / "b", batch_size=1) as f:
            with pytest.raises(OSError, match="No space"):
                await f.write(b"x")

    with pytest.raises(OSError, match="No space"):
        await write("a")
    assert leftovers(tmp_path) == []
    # swallowing the error does not produce a silently incomplete file
    with pytest.raises(ValueError, match="earlier write"):
        await swallow()
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
