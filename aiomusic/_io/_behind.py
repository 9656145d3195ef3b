"""Writing one batch behind the producer: batches of pieces, a writer thread, a helper task.

`Batcher` holds pieces as they are until a batch is full. `WriterThread` is the thread an
`AtomicFile` writes through: the event loop hands batches over without a thread hop per batch
and waits only when the thread is too far behind. `write_behind()` does the same for an async
writer, with a helper task.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import anyio.abc
import anyio.to_thread

__all__ = ["BatchWriter", "Batcher", "Writer", "WriterThread", "write_behind"]

Writer = Callable[[bytes], Awaitable[None]]
"""Takes the next piece of data; ``b""`` means "hand over what you hold"."""
BatchWriter = Callable[[list[bytes]], Awaitable[None]]


class WriterThread:
    """A thread that writes batches in order while the event loop goes on; one per file.

    The event loop hands batches over with `put()` (no wait, no thread hop), and awaits
    `wait()` only when more than ``max_behind`` bytes are still to write. The thread stops at
    `finish()` or `stop()`, which both join it; nothing outlives the file.
    """

    def __init__(self, write: Callable[[list[bytes]], int], max_behind: int) -> None:
        self._write = write
        self._max_behind = max_behind
        self._queue: queue.SimpleQueue[tuple[list[bytes], int] | None] = queue.SimpleQueue()
        self._progress = threading.Condition()
        self._waiting = 0  # callers in _wait_for: only then is progress announced
        self._handed = 0  # bytes handed over (event loop)
        self._done = 0  # bytes written or dropped (thread; one writer, so no lock)
        self._abort = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="aiomusic-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # Every bytecode here needs the GIL, which the event loop mostly holds: keep it short.
        get = self._queue.get
        while (item := get()) is not None:
            batch, size = item
            if not self._abort:
                try:
                    self._write(batch)
                except BaseException as exc:  # noqa: BLE001 - raised again in the caller
                    self.error = exc
                    self._abort = True
            del item, batch
            self._done += size
            if self._waiting:
                self._announce()
        self._abort = True
        self._announce()

    def _announce(self) -> None:
        with self._progress:
            self._progress.notify_all()

    def put(self, batch: list[bytes], size: int) -> bool:
        """Hand a batch over; True when the caller should `wait()` (too far behind)."""
        if self.error is not None:
            raise self.error
        self._handed += size
        self._queue.put((batch, size))
        return self._handed - self._done > self._max_behind

    async def wait(self) -> None:
        """Until the thread is at most ``max_behind`` bytes behind (or failed)."""
        await anyio.to_thread.run_sync(self._wait_for, self._handed - self._max_behind)
        if self.error is not None:
            raise self.error

    def _wait_for(self, done: int) -> None:
        with self._progress:
            self._waiting += 1  # before the check: the thread then announces what follows
            try:
                self._progress.wait_for(lambda: self._done >= done or self._abort)
            finally:
                self._waiting -= 1

    def finish(self) -> None:
        """Write everything handed over, then end the thread (blocking); raise its failure."""
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """Drop what is not written yet and end the thread (blocking)."""
        self._abort = True
        self._queue.put(None)
        self._thread.join()


class Batcher:
    """Holds pieces as they are (no copy, no regrowing buffer) until ``size`` bytes are held."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("batch_size must be positive")
        self.size = size
        self._pieces: list[bytes] = []
        self._held = 0

    def add(self, data: bytes) -> list[bytes] | None:
        """Hold ``data``; the batch once ``size`` bytes are held (``b""``: whatever is held)."""
        if data:
            self._pieces.append(data)
            self._held += len(data)
            if self._held < self.size:
                return None
        return self.take() or None

    def take(self) -> list[bytes]:
        """Everything held (perhaps nothing), which is then forgotten."""
        pieces, self._pieces, self._held = self._pieces, [], 0
        return pieces


@contextlib.asynccontextmanager
async def write_behind(write: BatchWriter, *, batch_size: int = 1 << 20
                       ) -> AsyncIterator[Writer]:
    """Gather pieces into batches of about ``batch_size`` bytes and write them one batch behind.

    Yields a writer that keeps each piece as it is (no copy) and, once ``batch_size`` bytes are
    held, hands the batch to a helper task that calls ``write``. The hand-over returns as soon as
    the helper has taken it, so the caller prepares the next batch while this one is written: at
    most about two batches are held. ``b""`` hands over what is held at once. The helper starts
    with the first full batch: data smaller than one batch is written by the caller, at the end.

    Everything handed over is written before the block exits normally. A failure of ``write`` is
    raised, unwrapped, from the next hand-over or from the exit; a failure of the block stops the
    writing and is raised unwrapped too.
    """
    batcher = Batcher(batch_size)
    send, receive = anyio.create_memory_object_stream[list[bytes]]()
    failed: list[Exception] = []
    helper: anyio.abc.TaskGroup | None = None

    async def drain() -> None:
        with receive:
            try:
                async for batch in receive:
                    await write(batch)
            except Exception as exc:  # noqa: BLE001 - raised again in the caller's task
                failed.append(exc)

    async def hand_over(data: bytes) -> None:
        nonlocal helper
        if failed:
            raise failed[0]
        batch = batcher.add(data)
        if batch is None:
            return
        if helper is None:
            if not data:  # a last batch with nothing in flight: no helper needed
                await write(batch)
                return
            helper = tg
            helper.start_soon(drain)
        try:
            await send.send(batch)
        except anyio.BrokenResourceError:  # the helper failed meanwhile
            raise failed[0] from None

    raised: Exception | None = None
    async with anyio.create_task_group() as tg:
        with send:
            try:
                yield hand_over
                await hand_over(b"")
            except Exception as exc:  # noqa: BLE001 - raised below, outside the task group
                raised = exc
                tg.cancel_scope.cancel()
            finally:
                if helper is None:  # else the helper closes it when it is done
                    receive.close()
    if raised is not None:
        raise raised
    if failed:
        raise failed[0]
