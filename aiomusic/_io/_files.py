"""Atomic file writing: a complete file appears at the destination, or nothing does.

Data goes to a temporary file beside the destination (same folder, so the final rename is
atomic), in batches of about ``batch_size`` bytes. An `AtomicFile` writes behind its caller:
the first full batch starts a writer thread of its own, which hashes (SHA-256) and writes each
batch with one ``writev`` of its pieces (no join) while the caller goes on decoding or reading
the network. The caller waits only when the thread is more than ``max_behind`` bytes behind,
which bounds the memory held. Every ``sync_every`` bytes the thread also asks the disk to take
what it has (``fdatasync``), so the final ``fsync`` waits for a short tail instead of the whole
file. On success the file is fsynced and renamed into place (and the folder fsynced where the
platform allows). On any error or cancellation the thread is stopped and joined, the temporary
file is closed and removed, and the destination is left as it was: an existing file stays
untouched.

`write_behind()` (in ``_behind.py``, re-exported here) lets a producer go on while an async
writer takes the previous batch.

The destination's folder must exist: a missing folder raises `FileNotFoundError` rather
than being created silently (a typo in a path should not scatter folders around).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from types import TracebackType

import anyio
import anyio.lowlevel
import anyio.to_thread

from ._behind import Batcher, BatchWriter, Writer, WriterThread, write_behind

__all__ = ["AtomicFile", "BatchWriter", "Batcher", "Writer", "temporary_file_of",
           "write_behind"]

_datasync = getattr(os, "fdatasync", os.fsync)  # macOS and Windows have only fsync


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


_IOV_MAX = min(os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 16, 1024)


def _write_all(fd: int, pieces: list[bytes], digest: hashlib._Hash) -> int:
    """Hash ``pieces`` and write them all to ``fd``, in order; returns the bytes written.

    Runs in a writer thread: one ``writev`` for the batch instead of a join (a copy) and a
    write. Hashing each piece is as fast as hashing their join, and both drop the GIL.
    """
    total = 0
    for piece in pieces:
        digest.update(piece)
        total += len(piece)
    if not hasattr(os, "writev"):  # pragma: no cover - Windows
        view = memoryview(b"".join(pieces))
        while view:
            view = view[os.write(fd, view):]
        return total
    pending: list[bytes | memoryview] = list(pieces)
    while pending:
        written = os.writev(fd, pending[:_IOV_MAX])
        done = 0  # pieces written whole
        while done < len(pending) and written >= len(pending[done]):
            written -= len(pending[done])
            done += 1
        del pending[:done]
        if written:  # a short write stopped inside this piece
            pending[0] = memoryview(pending[0])[written:]
    return total


_TEMP_SUFFIX = ".part"
#: An `AtomicFile`'s temporary file: its prefix, what `tempfile.mkstemp` adds, its suffix.
_TEMP_NAME = re.compile(r"\.(.+)\.[a-z0-9_]{8}" + re.escape(_TEMP_SUFFIX), re.DOTALL)


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def temporary_file_of(name: str) -> str | None:
    """The destination's name if ``name`` is the name of an `AtomicFile`'s temporary file.

    An `AtomicFile` removes its temporary file on any error or cancellation, but a process
    that is killed (SIGKILL, a power cut) cannot: whoever owns the destination can find the
    leftovers by name with this.
    """
    found = _TEMP_NAME.fullmatch(name)
    return found.group(1) if found else None


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
    """Async context manager that writes a file atomically, one batch behind its caller.

    Example::

        async with AtomicFile("song.mp3") as f:
            await f.write(audio)
        print(f.bytes_written, f.sha256)

    Args:
        path: The destination.
        overwrite: Whether an existing file at ``path`` may be replaced.
        batch_size: Bytes `write()` gathers before handing them to the writer thread.
        max_behind: Bytes handed over but not yet written beyond which a write waits for the
            thread: the memory the file may hold, besides the batch being gathered.
        sync_every: Bytes written between two ``fdatasync`` calls (``None``: only the final
            ``fsync``). Syncing as the file grows spreads the disk's work over the download.

    Raises:
        FileExistsError: ``overwrite`` is false and ``path`` exists (on entry, or when a file
            appeared there meanwhile).
        FileNotFoundError: The destination's folder does not exist.
    """

    def __init__(self, path: str | os.PathLike[str], *, overwrite: bool = True,
                 batch_size: int = 1 << 20, max_behind: int = 1 << 20,
                 sync_every: int | None = 4 << 20) -> None:
        if sync_every is not None and sync_every < 1:
            raise ValueError("sync_every must be positive or None")
        if max_behind < 0:
            raise ValueError("max_behind must not be negative")
        self.path = Path(path)
        self.overwrite = overwrite
        self.sync_every = sync_every
        self.max_behind = max_behind
        self._unsynced = 0
        self.bytes_written = 0
        self._batcher = Batcher(batch_size)
        self._digest = hashlib.sha256()
        self._sha256: str | None = None
        self._behind: WriterThread | None = None
        self._fd = -1
        self._tmp: Path | None = None
        self._state = "new"  # -> "open" -> "done" | "failed"

    @property
    def batch_size(self) -> int:
        """Bytes gathered by `write()` before they go to the writer thread."""
        return self._batcher.size

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
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=_temp_prefix(self.path),
                                   suffix=_TEMP_SUFFIX)
        with contextlib.suppress(OSError):  # e.g. a file system without modes
            os.chmod(tmp, _FILE_MODE)
        return fd, Path(tmp)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data``; it reaches the disk in batches of about ``batch_size`` bytes.

        Raises:
            OSError: An earlier batch failed to reach the disk (raised again at the exit).
        """
        self._check_open("write")
        piece = data if type(data) is bytes else bytes(data)  # held: must not change later
        if not piece:
            return
        self.bytes_written += len(piece)
        batch = self._batcher.add(piece)
        if batch is not None:
            await self._hand_over(batch, sum(len(held) for held in batch))

    async def write_many(self, pieces: list[bytes]) -> None:
        """Append ``pieces`` (each held as it is: it must not change) and hand them, with
        anything still held, to the writer thread at once.

        The thread hashes and writes them with one ``writev``, off the event loop; this waits
        only while the thread is more than ``max_behind`` bytes behind.
        """
        self._check_open("write_many")
        size = 0
        for piece in pieces:
            size += len(piece)
        self.bytes_written += size
        held = self._batcher.take()
        if held:
            size += sum(len(piece) for piece in held)
            pieces = held + pieces
        if size:
            await self._hand_over(pieces, size)

    async def _hand_over(self, batch: list[bytes], size: int) -> None:
        try:
            behind = self._behind
            if behind is None:
                behind = self._behind = WriterThread(self._write_batch, self.max_behind)
            if behind.put(batch, size):
                await behind.wait()
            else:  # no wait, but a cancellation is delivered here as at any await
                await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            self._state = "failed"
            raise

    def _check_open(self, method: str) -> None:
        if self._state != "open":
            raise ValueError(f"{method}() on an AtomicFile that is {self._state}")

    def _write_batch(self, pieces: list[bytes]) -> int:
        """Hash and write a batch, then start its way to the disk now and then (writer thread)."""
        written = _write_all(self._fd, pieces, self._digest)
        self._unsynced += written
        if self.sync_every is not None and self._unsynced >= self.sync_every:
            _datasync(self._fd)
            self._unsynced = 0
        return written

    def _commit(self) -> None:
        assert self._tmp is not None
        if self._behind is not None:
            self._behind.finish()
        held = self._batcher.take()
        if held:
            _write_all(self._fd, held, self._digest)
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

    async def _stop_writing(self) -> None:
        """End the writer thread, dropping what it holds, before the file is closed."""
        behind, self._behind = self._behind, None
        if behind is not None:
            # Shielded: the descriptor must not be closed under a running write.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(behind.stop)

    def _discard(self) -> None:
        """Close and remove the temporary file (plain syscalls: cannot be interrupted)."""
        assert self._behind is None, "the writer thread must be stopped first"
        self._state = "failed"
        self._batcher.take()
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
            # Only shielded awaits here, so a cancellation cannot interrupt the clean-up.
            await self._stop_writing()
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
            await self._stop_writing()
            self._discard()
            raise
        self._behind = None
        self._state = "done"
        self._sha256 = self._digest.hexdigest()
