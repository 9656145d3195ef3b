"""Atomic file writing: a complete file appears at the destination, or nothing does.

Data goes to a temporary file beside the destination (same folder, so the final rename is
atomic), in batches of about ``batch_size`` bytes written from a worker thread. On success the
file is fsynced and renamed into place (and the folder fsynced where the platform allows). On any
error or cancellation the temporary file is closed and removed and the destination is left as it
was: an existing file stays untouched.

The destination's folder must exist: a missing folder raises :class:`FileNotFoundError` rather
than being created silently (a typo in a path should not scatter folders around).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from types import TracebackType

import anyio
import anyio.lowlevel
import anyio.to_thread

__all__ = ["AtomicFile"]


def _read_umask() -> int:
    """The process umask, read without changing it where the platform allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):  # pragma: no cover - not Linux
        pass
    mask = os.umask(0o022)  # pragma: no cover - the classic (briefly racy) way
    os.umask(mask)  # pragma: no cover
    return mask  # pragma: no cover


_FILE_MODE = 0o666 & ~_read_umask()  # what open() would have given; mkstemp gives 0o600


def _write_all(fd: int, data: bytes | bytearray, digest: hashlib._Hash) -> None:
    """Write all of ``data`` to ``fd`` and hash it (in a worker thread; both drop the GIL)."""
    digest.update(data)
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":  # pragma: no cover - Windows cannot open a folder
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. no read permission on the folder
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse to fsync a folder
        pass
    finally:
        os.close(fd)


class AtomicFile:
    """Async context manager that writes a file atomically.

    Example::

        async with AtomicFile("song.mp3") as f:
            await f.write(audio)
        print(f.bytes_written, f.sha256)

    Args:
        path: The destination.
        overwrite: Whether an existing file at ``path`` may be replaced.
        batch_size: Bytes buffered in memory before a write to disk (in a worker thread).

    Raises:
        FileExistsError: ``overwrite`` is false and ``path`` exists (on entry, or when a file
            appeared there meanwhile).
        FileNotFoundError: The destination's folder does not exist.
    """

    def __init__(self, path: str | os.PathLike[str], *, overwrite: bool = True,
                 batch_size: int = 1 << 20) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        self.path = Path(path)
        self.overwrite = overwrite
        self.batch_size = batch_size
        self.bytes_written = 0
        self._buffer = bytearray()
        self._digest = hashlib.sha256()
        self._sha256: str | None = None
        self._fd = -1
        self._tmp: Path | None = None
        self._state = "new"  # -> "open" -> "done" | "failed"

    @property
    def sha256(self) -> str:
        """The hex SHA-256 of the file's content, once it is complete."""
        if self._sha256 is None:
            raise ValueError("sha256 is known only after the file was completed")
        return self._sha256

    @property
    def temporary_path(self) -> Path | None:
        """The temporary file being written, while there is one."""
        return self._tmp

    async def __aenter__(self) -> AtomicFile:
        if self._state != "new":
            raise ValueError("an AtomicFile can be entered only once")
        self._state = "open"
        # Shielded so that a cancellation cannot strike between creating the temporary file
        # and recording it; the cancellation is taken right after, with clean-up.
        with anyio.CancelScope(shield=True):
            self._fd, self._tmp = await anyio.to_thread.run_sync(self._open)
        try:
            await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            self._discard()
            raise
        return self

    def _open(self) -> tuple[int, Path]:
        folder = self.path.parent
        if not folder.is_dir():
            raise FileNotFoundError(
                f"cannot write {self.path}: the folder {folder} does not exist")
        if not self.overwrite and self.path.exists():
            raise FileExistsError(f"{self.path} already exists (overwrite=False)")
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{self.path.name}.", suffix=".part")
        with contextlib.suppress(OSError):  # e.g. a file system without modes
            os.chmod(tmp, _FILE_MODE)
        return fd, Path(tmp)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data``; it reaches the disk in batches of about ``batch_size`` bytes."""
        if self._state != "open":
            raise ValueError(f"write() on an AtomicFile that is {self._state}")
        size = len(data) if not isinstance(data, memoryview) else data.nbytes
        if not size:
            return
        self.bytes_written += size
        if not self._buffer and size >= self.batch_size:
            await self._flush(bytes(data) if isinstance(data, memoryview) else data)
            return
        self._buffer += data
        if len(self._buffer) >= self.batch_size:
            buffer, self._buffer = self._buffer, bytearray()
            await self._flush(buffer)

    async def _flush(self, data: bytes | bytearray) -> None:
        # Not abandoned on cancellation: the thread finishes before the cancellation is
        # delivered, so the descriptor is never closed under a running write.
        try:
            await anyio.to_thread.run_sync(_write_all, self._fd, data, self._digest)
        except BaseException:
            self._state = "failed"
            raise

    def _commit(self) -> None:
        assert self._tmp is not None
        if self._buffer:
            _write_all(self._fd, self._buffer, self._digest)
            self._buffer = bytearray()
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        if self.overwrite:
            os.replace(self._tmp, self.path)
        else:
            # link() refuses to replace a file that appeared since we checked.
            os.link(self._tmp, self.path)
            os.unlink(self._tmp)
        self._tmp = None
        _fsync_dir(self.path.parent)

    def _discard(self) -> None:
        """Close and remove the temporary file (plain syscalls: cannot be interrupted)."""
        self._state = "failed"
        self._buffer = bytearray()
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
        if self._tmp is not None:
            with contextlib.suppress(FileNotFoundError):  # removed by someone else
                os.unlink(self._tmp)
            self._tmp = None

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is not None or self._state != "open":
            # No await here, so a cancellation cannot interrupt the clean-up.
            self._discard()
            if exc_type is None:
                raise ValueError(f"{self.path} was not written: an earlier write() failed")
            return
        try:
            await anyio.lowlevel.checkpoint_if_cancelled()
            # Shielded: once started, the commit finishes; a cancellation is delivered after.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._commit)
        except BaseException:
            self._discard()
            raise
        self._state = "done"
        self._sha256 = self._digest.hexdigest()
