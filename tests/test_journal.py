"""The batch journal: SQLite in WAL mode, written off the event loop (asyncio and trio)."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from aiomusic._core._errors import ConfigurationError
from aiomusic.batch import _journal
from aiomusic.batch._journal import (
    FileRecord,
    JobRecord,
    JobState,
    Journal,
    JournalError,
    JournalWriteError,
)

pytestmark = pytest.mark.anyio
ENDPOINT = "http://127.0.0.1:8765"


def sql(path: Path, query: str, *args: object) -> list[tuple[Any, ...]]:
    """Run one statement with the stdlib driver, outside the journal."""
    db = sqlite3.connect(path)
    try:
        with db:
            return db.execute(query, args).fetchall()
    finally:
        db.close()


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    """A new journal at ``tmp_path / "j.db"``, closed after the test."""
    opened = await Journal.open(tmp_path / "j.db", endpoint=ENDPOINT)
    try:
        yield opened
    finally:
        await opened.aclose()


async def test_open_creates_parent_folders_and_meta(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c" / "journal.sqlite"
    before = time.time()
    journal = await Journal.open(path, endpoint=ENDPOINT)
    try:
        assert journal.path == path and path.is_file()
        assert await journal.records() == {}
    finally:
        await journal.aclose()
    meta = dict(sql(path, "SELECT key, value FROM meta"))
    assert meta["schema"] == "2" and meta["endpoint"] == ENDPOINT and meta["runs"] == "1"
    created = dt.datetime.fromisoformat(str(meta["created"]))
    assert created.tzinfo is not None and created.timestamp() >= before - 1


async def test_open_accepts_a_str_path(tmp_path: Path) -> None:
    journal = await Journal.open(str(tmp_path / "j.db"), endpoint=ENDPOINT)
    await journal.aclose()
    assert journal.path == tmp_path / "j.db"


async def test_wal_mode_is_on(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = await Journal.open(path, endpoint=ENDPOINT)
    try:
        await journal.add("a", kind="minimax", fingerprint="f")
        assert await journal._run(lambda: journal._db.execute("PRAGMA journal_mode").fetchall()
                                  ) == [("wal",)]
        assert (tmp_path / "journal.db-wal").exists()
    finally:
        await journal.aclose()
    assert sql(path, "PRAGMA journal_mode") == [("wal",)]  # WAL is a property of the file


async def test_add_records_a_pending_job(journal: Journal) -> None:
    before = time.time()
    await journal.add("song-01", kind="minimax", fingerprint="abc")
    await journal.add("inst-01", kind="suno", fingerprint="def")
    records = await journal.records()
    assert set(records) == {"song-01", "inst-01"}
    song = records["song-01"]
    assert isinstance(song, JobRecord)
    assert (song.id, song.kind, song.fingerprint, song.state) == \
        ("song-01", "minimax", "abc", JobState.PENDING)
    assert song.task_id is song.trace_id is song.error_type is song.error is None
    assert song.files == () and song.dest_existed is False
    assert before - 1 <= song.updated_at <= time.time() + 1
    assert records["inst-01"].kind == "suno"


async def test_add_is_a_no_op_for_a_known_job(journal: Journal) -> None:
    await journal.add("a", kind="suno", fingerprint="one")
    await journal.update("a", JobState.SUBMITTED, task_id="t-1")
    await journal.add("a", kind="minimax", fingerprint="two")
    [record] = (await journal.records()).values()
    assert (record.kind, record.fingerprint, record.state, record.task_id) == \
        ("suno", "one", JobState.SUBMITTED, "t-1")


async def test_update_through_the_states(journal: Journal, tmp_path: Path) -> None:
    await journal.add("a", kind="suno", fingerprint="f")

    async def record() -> JobRecord:
        return (await journal.records())["a"]

    await journal.update("a", JobState.SUBMITTING)
    assert (await record()).state is JobState.SUBMITTING
    assert (await record()).task_id is None

    await journal.update("a", JobState.SUBMITTED, task_id="task-1", trace_id="trace-1")
    now = await record()
    assert (now.state, now.task_id, now.trace_id) == (JobState.SUBMITTED, "task-1", "trace-1")

    await journal.update("a", JobState.FAILED, error=("TaskFailedError", "it broke"))
    now = await record()
    assert now.state is JobState.FAILED
    assert (now.error_type, now.error) == ("TaskFailedError", "it broke")
    assert now.task_id == "task-1" and now.trace_id == "trace-1"  # kept

    files = (FileRecord("inst-1.mp3", "a" * 64, 1234),
             FileRecord("sub/inst-2.mp3", "b" * 64, 5))
    await journal.update("a", JobState.COMPLETED, files=files, dest_existed=True)
    now = await record()
    assert now.state is JobState.COMPLETED
    assert now.error_type is None and now.error is None  # cleared
    assert now.files == files and now.dest_existed is True
    assert now.task_id == "task-1"
    await journal.aclose()  # a run's journal is locked until it ends
    [(raw,)] = sql(tmp_path / "j.db", "SELECT files FROM jobs WHERE id = 'a'")
    assert json.loads(str(raw)) == [{"path": "inst-1.mp3", "sha256": "a" * 64, "size": 1234},
                                    {"path": "sub/inst-2.mp3", "sha256": "b" * 64, "size": 5}]


async def test_task_id_is_replaced_or_cleared_on_request(journal: Journal) -> None:
    await journal.add("a", kind="suno", fingerprint="f")
    await journal.update("a", JobState.SUBMITTED, task_id="first")
    await journal.update("a", JobState.UNKNOWN)
    assert (await journal.records())["a"].task_id == "first"
    await journal.update("a", JobState.SUBMITTED, task_id="second")
    assert (await journal.records())["a"].task_id == "second"
    await journal.update("a", JobState.PENDING, keep_task=False)
    now = (await journal.records())["a"]
    assert now.task_id is None and now.state is JobState.PENDING
    await journal.update("a", JobState.SUBMITTED, task_id="third", keep_task=False)
    assert (await journal.records())["a"].task_id == "third"


async def test_files_and_dest_existed_are_kept_unless_given(journal: Journal) -> None:
    await journal.add("a", kind="minimax", fingerprint="f")
    files = (FileRecord("a.mp3", "c" * 64, 99),)
    await journal.update("a", JobState.COMPLETED, files=files, dest_existed=True)
    await journal.update("a", JobState.COMPLETED)
    now = (await journal.records())["a"]
    assert now.files == files and now.dest_existed is True
    await journal.update("a", JobState.PENDING, files=(), dest_existed=False)
    now = (await journal.records())["a"]
    assert now.files == () and now.dest_existed is False


async def test_updated_at_moves_forward(journal: Journal) -> None:
    await journal.add("a", kind="minimax", fingerprint="f")
    first = (await journal.records())["a"].updated_at
    await anyio.sleep(0.01)
    await journal.update("a", JobState.SUBMITTING)
    assert (await journal.records())["a"].updated_at > first


async def test_update_of_an_unknown_job_changes_nothing(journal: Journal) -> None:
    await journal.update("ghost", JobState.COMPLETED)
    assert await journal.records() == {}


async def test_records_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = await Journal.open(path, endpoint=ENDPOINT)
    await journal.add("a", kind="suno", fingerprint="f")
    await journal.update("a", JobState.SUBMITTED, task_id="t-9", trace_id="tr")
    await journal.record_upload("k", {"voice_id": "v"}, dt.datetime(2025, 1, 2, tzinfo=dt.UTC))
    await journal.aclose()

    again = await Journal.open(path, endpoint=ENDPOINT)
    try:
        [record] = (await again.records()).values()
        assert (record.state, record.task_id, record.trace_id) == \
            (JobState.SUBMITTED, "t-9", "tr")
        assert await again.upload("k") == ({"voice_id": "v"},
                                           dt.datetime(2025, 1, 2, tzinfo=dt.UTC))
    finally:
        await again.aclose()
    assert sql(path, "SELECT value FROM meta WHERE key = 'endpoint'") == [(ENDPOINT,)]


async def test_uploads_record_and_fetch(journal: Journal, tmp_path: Path) -> None:
    assert await journal.upload("missing") is None
    when = dt.datetime(2025, 6, 1, 12, 30, 15, 250000, tzinfo=dt.UTC)
    payload = {"purpose": "song", "voice_id": "vocal-1", "instrumental_id": "inst-1",
               "nested": {"n": [1, 2.5, None, True]}}
    await journal.record_upload("sha:song", payload, when)
    got = await journal.upload("sha:song")
    assert got is not None
    fetched, at = got
    assert fetched == payload
    assert at == when and at.tzinfo is not None and at.utcoffset() == dt.timedelta(0)

    later = when + dt.timedelta(days=1)
    await journal.record_upload("sha:song", {"voice_id": "vocal-2"}, later)
    assert await journal.upload("sha:song") == ({"voice_id": "vocal-2"}, later)
    assert await journal.upload("sha:other") is None
    await journal.aclose()  # a run's journal is locked until it ends
    assert sql(tmp_path / "j.db", "SELECT count(*) FROM uploads") == [(1,)]


async def test_upload_time_in_another_zone_is_the_same_instant(journal: Journal) -> None:
    zone = dt.timezone(dt.timedelta(hours=5, minutes=30))
    when = dt.datetime(2025, 3, 4, 10, 0, tzinfo=zone)
    await journal.record_upload("k", {}, when)
    got = await journal.upload("k")
    assert got is not None and got[1] == when and got[1].tzinfo == dt.UTC


async def test_concurrent_writes_all_land(journal: Journal) -> None:
    async def one(i: int) -> None:
        await journal.add(f"job-{i}", kind="minimax", fingerprint=str(i))
        await journal.update(f"job-{i}", JobState.SUBMITTED, task_id=f"t-{i}")
        await journal.record_upload(f"u-{i}", {"i": i}, dt.datetime.now(dt.UTC))

    async with anyio.create_task_group() as tg:
        for i in range(40):
            tg.start_soon(one, i)
    records = await journal.records()
    assert len(records) == 40
    assert all(r.state is JobState.SUBMITTED and r.task_id == f"t-{r.fingerprint}"
               for r in records.values())
    assert [(await journal.upload(f"u-{i}") or ({}, None))[0] for i in range(40)] == \
        [{"i": i} for i in range(40)]


async def test_a_write_finishes_although_its_caller_is_cancelled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "j.db"
    journal = await Journal.open(path, endpoint=ENDPOINT)
    try:
        await journal.add("a", kind="suno", fingerprint="f")
        slow_disk = threading.Event()  # the write is in its worker thread and waits for it
        real_write = _journal.write

        def waiting_write(*args: Any) -> int:
            slow_disk.wait(10)
            return real_write(*args)

        monkeypatch.setattr(_journal, "write", waiting_write)
        done: list[str] = []

        async def writer(scope: anyio.CancelScope) -> None:
            with scope:
                await journal.update("a", JobState.SUBMITTED, task_id="paid-task")
                done.append("written")
                await anyio.sleep(5)  # the next checkpoint sees the cancellation
                done.append("not cancelled")  # pragma: no cover

        scope = anyio.CancelScope()
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer, scope)
            await anyio.sleep(0.2)
            scope.cancel()
            await anyio.sleep(0.1)
            assert done == []  # the write still waits for the disk; it was not abandoned
            slow_disk.set()
        assert done == ["written"] and scope.cancelled_caught
        record = (await journal.records())["a"]
        assert (record.state, record.task_id) == (JobState.SUBMITTED, "paid-task")
    finally:
        await journal.aclose()


async def test_aclose_closes_the_connection(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = await Journal.open(path, endpoint=ENDPOINT)
    await journal.add("a", kind="suno", fingerprint="f")
    await journal.aclose()
    with pytest.raises(JournalWriteError) as caught:
        await journal.records()
    assert isinstance(caught.value.__cause__, sqlite3.ProgrammingError)
    # the data was committed and the file is free for another writer
    assert sql(path, "SELECT id, state FROM jobs") == [("a", "pending")]
    sql(path, "INSERT INTO uploads VALUES ('x', '{}', 0)")
    assert sql(path, "SELECT key FROM uploads") == [("x",)]


async def test_other_endpoint_is_refused_naming_both(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = await Journal.open(path, endpoint="https://api.aimlapi.com")
    await journal.add("a", kind="minimax", fingerprint="f")
    await journal.aclose()
    with pytest.raises(JournalError) as info:
        await Journal.open(path, endpoint="embedded emulator")
    text = str(info.value)
    assert "https://api.aimlapi.com" in text and "embedded emulator" in text
    assert str(path) in text
    assert isinstance(info.value, ConfigurationError)
    # nothing was changed, and the right endpoint still opens it
    assert sql(path, "SELECT value FROM meta WHERE key = 'endpoint'") == \
        [("https://api.aimlapi.com",)]
    journal = await Journal.open(path, endpoint="https://api.aimlapi.com")
    try:
        assert list(await journal.records()) == ["a"]
    finally:
        await journal.aclose()


async def test_random_bytes_are_not_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    data = os.urandom(8192)
    path.write_bytes(data)
    with pytest.raises(JournalError) as info:
        await Journal.open(path, endpoint=ENDPOINT)
    assert f"{path} is not an aiomusic journal" in str(info.value)
    assert "--journal" in str(info.value)
    assert path.read_bytes() == data  # left alone


async def test_a_text_file_is_not_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    path.write_text('{"id": "a"}\n' * 200)
    with pytest.raises(JournalError, match="is not an aiomusic journal"):
        await Journal.open(path, endpoint=ENDPOINT)


async def test_an_empty_file_becomes_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    journal = await Journal.open(path, endpoint=ENDPOINT)
    await journal.aclose()
    assert dict(sql(path, "SELECT key, value FROM meta"))["endpoint"] == ENDPOINT


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = await Journal.open(path, endpoint=ENDPOINT)
    await journal.aclose()
    sql(path, "UPDATE meta SET value = '3' WHERE key = 'schema'")
    with pytest.raises(JournalError) as info:
        await Journal.open(path, endpoint=ENDPOINT)
    assert "newer aiomusic (journal schema 3)" in str(info.value)
    assert str(path) in str(info.value)


async def test_an_older_or_equal_schema_opens(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = await Journal.open(path, endpoint=ENDPOINT)
    await journal.aclose()
    sql(path, "UPDATE meta SET value = '0' WHERE key = 'schema'")
    journal = await Journal.open(path, endpoint=ENDPOINT)
    await journal.aclose()


async def test_a_garbled_schema_is_a_journal_error(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = await Journal.open(path, endpoint=ENDPOINT)
    await journal.aclose()
    sql(path, "UPDATE meta SET value = 'two' WHERE key = 'schema'")
    with pytest.raises(JournalError):
        await Journal.open(path, endpoint=ENDPOINT)


async def test_another_programs_database_is_not_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    sql(path, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    sql(path, "INSERT INTO customers (name) VALUES ('Ada')")
    with pytest.raises(JournalError):
        await Journal.open(path, endpoint=ENDPOINT)


async def test_a_parent_that_is_a_file_is_a_journal_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(JournalError, match="cannot open the journal"):
        await Journal.open(tmp_path / "file" / "j.db", endpoint=ENDPOINT)


async def test_a_folder_is_not_a_journal(tmp_path: Path) -> None:
    with pytest.raises(JournalError):
        await Journal.open(tmp_path, endpoint=ENDPOINT)


def test_states_are_the_documented_ones() -> None:
    assert [s.value for s in JobState] == ["pending", "submitting", "submitted", "completed",
                                           "failed", "unknown"]
    assert JobState("completed") is JobState.COMPLETED
    assert str(JobState.FAILED) == "failed"


async def test_a_journal_in_use_is_refused_until_its_run_ends(tmp_path: Path) -> None:
    """Two runs of one journal would send the same paid requests twice."""
    path = tmp_path / "j.db"
    journal = await Journal.open(path, endpoint=ENDPOINT)
    await journal.add("a", kind="minimax", fingerprint="f")
    try:
        with pytest.raises(JournalError) as info:
            await Journal.open(path, endpoint=ENDPOINT)  # the same process
        assert f"the journal {path} is in use: another run of this batch" in str(info.value)
        assert "paid requests twice" in str(info.value)
        with anyio.fail_after(60):
            other = await anyio.run_process(
                [sys.executable, "-c", "import anyio, sys\n"
                 "from aiomusic.batch._journal import Journal, JournalError\n"
                 "try:\n"
                 f"    anyio.run(lambda: Journal.open({str(path)!r}, endpoint={ENDPOINT!r}))\n"
                 "except JournalError as exc:\n"
                 "    sys.exit(str(exc))\n"], check=False)
        assert "is in use: another run" in other.stderr.decode()  # another process
        await journal.update("a", JobState.COMPLETED)  # the holder goes on writing
    finally:
        await journal.aclose()
    journal = await Journal.open(path, endpoint=ENDPOINT)  # free once the run ended
    try:
        assert (await journal.records())["a"].state is JobState.COMPLETED
    finally:
        await journal.aclose()


# -- schema 2: the ledger ------------------------------------------------------------------

_SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, fingerprint TEXT NOT NULL,
    state TEXT NOT NULL, task_id TEXT, trace_id TEXT, files TEXT NOT NULL DEFAULT '[]',
    error_type TEXT, error TEXT, dest_existed INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL);
CREATE TABLE uploads (key TEXT PRIMARY KEY, payload TEXT NOT NULL, uploaded_at REAL NOT NULL);
INSERT INTO meta VALUES ('schema', '1'), ('endpoint', 'http://127.0.0.1:8765');
INSERT INTO jobs (id, kind, fingerprint, state, task_id, error_type, updated_at)
    VALUES ('t', 'suno', 'f', 'failed', 'task-1', 'TaskFailedError', 1.0);
"""


async def test_a_schema_1_journal_is_migrated_and_keeps_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA_1)
    db.close()
    before = await Journal.open(path, endpoint=None)  # read-only: nothing migrated
    try:
        assert (await before.records())["t"].fate is None and await before.ledger() == []
    finally:
        await before.aclose()
    assert sql(path, "SELECT value FROM meta WHERE key = 'schema'") == [("1",)]
    journal = await Journal.open(path, endpoint=ENDPOINT)
    try:
        assert journal.run == 1
        record = (await journal.records())["t"]
        assert (record.state, record.task_id, record.fate) == (JobState.FAILED, "task-1", None)
        row = await journal.sending("t", "suno.add_instrumental", 1)
        await journal.ended(row, "t", "taken", trace_id="tr-1")
        assert [(a.fate, a.trace_id) for a in await journal.ledger()] == [("taken", "tr-1")]
    finally:
        await journal.aclose()
    assert sql(path, "SELECT value FROM meta WHERE key = 'schema'") == [("2",)]


async def test_the_ledger_follows_each_attempt(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = await Journal.open(path, endpoint=ENDPOINT)
    try:
        await journal.add("a", kind="minimax", fingerprint="f")
        first = await journal.sending("a", "minimax.generate", 1, dest_existed=True)
        record = (await journal.records())["a"]
        assert (record.state, record.fate, record.dest_existed) == (
            JobState.SUBMITTING, "sending", True)
        await journal.ended(first, "a", "refused", error=("RateLimitError", "slow down"),
                            pending=True)
        assert (await journal.records())["a"].state is JobState.PENDING  # waits again
        second = await journal.sending("a", "minimax.generate", 2)
        await journal.ended(second, "a", "taken", trace_id="tr-2")
        await journal.update("a", JobState.SUBMITTED, task_id="task-9")
        await journal.settle("a", "failed after taken")
        ledger = await journal.ledger()
        assert [(a.attempt, a.fate, a.error_type, a.task_id) for a in ledger] == [
            (1, "refused", "RateLimitError", None), (2, "failed after taken", None, "task-9")]
        assert all(a.ended_at is not None and a.run == 1 for a in ledger)
        record = (await journal.records())["a"]
        assert (record.fate, record.trace_id) == ("failed after taken", "tr-2")
        await journal.sending("a", "minimax.generate", 3)  # the process dies here
    finally:
        await journal.aclose()
    again = await Journal.open(path, endpoint=ENDPOINT)
    try:
        assert again.run == 2
        assert [a.fate for a in await again.ledger()][-1] == "unknown"
        assert (await again.records())["a"].fate == "unknown"
    finally:
        await again.aclose()


async def test_an_upload_can_be_forgotten(journal: Journal) -> None:
    when = dt.datetime.now(dt.UTC)
    await journal.record_upload("k", {"id": 1}, when)
    await journal.forget_upload("k")
    assert await journal.upload("k") is None


async def test_a_journal_in_use_cannot_be_read_either(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = await Journal.open(path, endpoint=ENDPOINT)
    try:
        with pytest.raises(JournalError, match="is in use"):
            await Journal.open(path, endpoint=None)
    finally:
        await journal.aclose()
    (tmp_path / "empty.db").write_bytes(b"")
    with pytest.raises(JournalError, match="is not an aiomusic journal"):
        await Journal.open(tmp_path / "empty.db", endpoint=None)
