"""The batch runner and its journal, against the emulator over loopback HTTP."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import pytest

from aiomusic import (
    AlreadyPaidError,
    AudioDecodeError,
    BadRequestError,
    Batch,
    ConfigurationError,
    Event,
    JobOutcome,
    JobProgress,
    JournalError,
    LaneConfig,
    LocalFileError,
    MusicSession,
    NotFoundError,
    PollSchedule,
    RetryPolicy,
    SubmissionUnknownError,
    TaskFailedError,
    load_jobs,
)
from aiomusic.batch._steps import remove_leftovers
from aiomusic.emulator import Emulator, EmulatorConfig, Faults, Limits, Timings

from .conftest import make_wav

pytestmark = pytest.mark.anyio
KEY = "sk-batch-secret-7f3a9c"
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05, maintenance_delay=0.01)
TINY = PollSchedule(initial=0.005, maximum=0.02)
OPEN_LANES = {"suno.submit": LaneConfig(max_concurrency=16),
              "suno.poll": LaneConfig(max_concurrency=16),
              "suno_upload.submit": LaneConfig(max_concurrency=8),
              "aimlapi.submit": LaneConfig(max_concurrency=16)}
PAID = ("aiml.generate", "suno.add_instrumental")


def session(emulator: Emulator, **kw: Any) -> MusicSession:
    kw.setdefault("suno_callback_url", "http://127.0.0.1:9/no-op")
    return MusicSession(aimlapi_key=KEY, suno_key=KEY, base_url=emulator.url,
                        allow_http_hosts=("127.0.0.1",), retry=kw.pop("retry", FAST),
                        lanes=kw.pop("lanes", OPEN_LANES), **kw)


def write_jobs(folder: Path, *, songs: int = 2, instrumentals: int = 2,
               url_source: str | None = None) -> Path:
    """A job file with MiniMax songs sharing a reference and Suno jobs sharing a vocal."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ref.wav").write_bytes(make_wav(12.0))
    (folder / "vocal.wav").write_bytes(make_wav(4.0))
    lines: list[dict[str, Any]] = [
        {"id": f"song-{i}", "service": "minimax", "lyrics": f"##La la {i}##",
         "reference": "ref.wav", "format": "mp3", "sample_rate": 44100, "bitrate": 128000}
        for i in range(songs)]
    lines += [{"id": f"inst-{i}", "service": "suno", "source": url_source or "vocal.wav",
               "title": f"Inst {i}", "tags": "piano", "negative_tags": "metal"}
              for i in range(instrumentals)]
    path = folder / "jobs.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


async def run(emulator: Emulator, jobs_file: Path, out: Path, *, journal: Path | None = None,
              events: list[Event] | None = None, **kw: Any) -> tuple[list[JobOutcome], Batch]:
    jobs = load_jobs(jobs_file)
    outcomes: list[JobOutcome] = []
    async with session(emulator, on_event=(events.append if events is not None else None),
                       **kw.pop("session", {})) as s:
        batch = Batch(s, jobs, out=out, journal=journal, poll=TINY, **kw)
        async with batch.results() as results:
            async for outcome in results:
                outcomes.append(outcome)
    return outcomes, batch


def by_id(outcomes: list[JobOutcome]) -> dict[str, JobOutcome]:
    return {o.job.id: o for o in outcomes}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def journal_sql(journal: Path, query: str, *args: object) -> list[sqlite3.Row]:
    """Run one statement on a journal that no run holds (a run locks it), committed."""
    with closing(sqlite3.connect(journal, timeout=5)) as db, db:
        db.row_factory = sqlite3.Row
        return db.execute(query, args).fetchall()


def journal_rows(journal: Path) -> dict[str, dict[str, Any]]:
    """Each job's row, by id (none before a run created the table)."""
    try:
        return {r["id"]: dict(r) for r in journal_sql(journal, "SELECT * FROM jobs")}
    except sqlite3.OperationalError:  # no table yet
        return {}


def no_partials(out: Path) -> None:
    assert [p.name for p in out.rglob("*") if p.name.startswith(".")] == []


async def test_mixed_batch(emulator: Emulator, tmp_path: Path) -> None:
    events: list[Event] = []
    out = tmp_path / "out"
    outcomes, batch = await run(emulator, write_jobs(tmp_path, songs=3, instrumentals=2), out,
                                journal=tmp_path / "j.sqlite", events=events)
    assert {o.job.id: o.status for o in outcomes} == {
        "song-0": "completed", "song-1": "completed", "song-2": "completed",
        "inst-0": "completed", "inst-1": "completed"}
    for outcome in outcomes:
        expected = 1 if outcome.job.kind == "minimax" else 2
        assert len(outcome.files) == expected
        for f in outcome.files:
            assert f.path.parent == out and sha(f.path) == f.sha256
            assert f.path.stat().st_size == f.size > 0
    assert by_id(outcomes)["inst-1"].files[1].path.name == "inst-1-2.mp3"
    counters = emulator.counters
    assert counters.paid(operation="aiml.generate") == 3
    assert counters.paid(operation="suno.add_instrumental") == 2
    # one upload per file and purpose, shared by the jobs
    assert counters.requests["/v2/generate/audio/minimax/upload"] == 1
    assert counters.requests["/api/file-stream-upload"] == 1
    summary = batch.summary
    assert (summary.total, summary.completed, summary.failed, summary.files) == (5, 5, {}, 7)
    assert summary.ok and not summary.interrupted and summary.songs_per_minute > 0
    assert summary.bytes == sum(f.size for o in outcomes for f in o.files)
    stages: dict[str, list[str]] = {}
    for e in events:
        if isinstance(e, JobProgress):
            stages.setdefault(e.job, []).append(e.stage)
    assert stages["song-0"][-1] == "completed" and "generating" in stages["song-0"]
    assert "queued" in stages["song-0"]
    assert {"submitting", "submitted", "downloading"} <= set(stages["inst-0"])
    rows = journal_rows(tmp_path / "j.sqlite")
    assert {r["state"] for r in rows.values()} == {"completed"}
    assert rows["inst-0"]["task_id"] and rows["song-0"]["trace_id"]
    no_partials(out)


async def test_resume_skips_verified_and_redoes_what_changed(emulator: Emulator,
                                                             tmp_path: Path) -> None:
    jobs, out, journal = write_jobs(tmp_path), tmp_path / "out", tmp_path / "j.sqlite"
    first, _ = await run(emulator, jobs, out, journal=journal)
    paid = Counter({op: emulator.counters.paid(operation=op) for op in PAID})
    (out / "song-0.mp3").write_bytes(b"changed")
    (out / "inst-0-2.mp3").unlink()
    outcomes, batch = await run(emulator, jobs, out, journal=journal)
    got = by_id(outcomes)
    assert got["song-1"].status == got["inst-1"].status == "skipped"
    assert got["song-1"].files == by_id(first)["song-1"].files
    # a changed MiniMax file is reported, never paid for again unasked (issue 15)
    error = got["song-0"].error
    assert got["song-0"].status == "failed" and isinstance(error, AlreadyPaidError)
    assert error.fate == got["song-0"].fate == "missing" and error.job_id == "song-0"
    assert error.trace_id == by_id(first)["song-0"].trace_id is not None
    assert "Batch(resubmit='missing') (or resubmit=['song-0'])" in str(error)
    # the Suno job is followed by its task id: downloaded again, never re-submitted
    assert got["inst-0"].status == "completed" and got["inst-0"].resumed
    assert got["inst-0"].task_id == by_id(first)["inst-0"].task_id
    assert "fetched again from its task" in got["inst-0"].note
    assert emulator.counters.paid(operation="suno.add_instrumental") == \
        paid["suno.add_instrumental"]
    assert emulator.counters.paid(operation="aiml.generate") == paid["aiml.generate"]
    assert (batch.summary.completed, batch.summary.skipped) == (1, 2)
    assert batch.summary.to_check == ({"job": "song-0", "fate": "missing",
                                       "trace_id": error.trace_id, "task_id": None},)
    # on request, it is made again (and paid again)
    outcomes, batch = await run(emulator, jobs, out, journal=journal, resubmit="missing")
    again = by_id(outcomes)["song-0"]
    assert again.status == "completed" and "made again, as asked" in again.note
    assert emulator.counters.paid(operation="aiml.generate") == paid["aiml.generate"] + 1
    assert batch.summary.submissions == {"taken": 1, "refused": 0, "unknown": 0,
                                         "failed_after_taken": 0}


async def test_an_edited_job_the_service_saw_is_reported_and_made_only_on_request(
        emulator: Emulator, tmp_path: Path) -> None:
    """Before: any edit stopped the whole batch ("records other jobs under the ids ...")."""
    jobs, out, journal = write_jobs(tmp_path), tmp_path / "out", tmp_path / "j.sqlite"
    await run(emulator, jobs, out, journal=journal)
    old = journal_rows(journal)["song-1"]
    jobs.write_text(jobs.read_text().replace("La la 1", "Changed words"))
    emulator.reset()
    outcomes, batch = await run(emulator, jobs, out, journal=journal)
    got = by_id(outcomes)
    error = got["song-1"].error
    assert got["song-1"].status == "failed" and isinstance(error, AlreadyPaidError)
    assert error.fate == got["song-1"].fate == "changed"
    assert "song-1.mp3" in str(error) and "resubmit='changed'" in str(error)
    assert {got[j].status for j in got if j != "song-1"} == {"skipped"}
    assert batch.summary.to_check == ({"job": "song-1", "fate": "changed",
                                       "trace_id": old["trace_id"], "task_id": None},)
    assert emulator.counters.paid() == 0
    assert journal_rows(journal)["song-1"] == old  # untouched until asked
    # asked: the new version is made; the old one is kept apart with its ledger rows
    outcomes, batch = await run(emulator, jobs, out, journal=journal, resubmit="changed")
    assert by_id(outcomes)["song-1"].status == "completed"
    assert emulator.counters.paid() == 1
    rows = journal_rows(journal)
    same = {"id", "files", "updated_at"}  # what keeping it apart changes
    assert {k: v for k, v in rows["song-1~1"].items() if k not in same} == \
        {k: v for k, v in old.items() if k not in same}
    # its file too: renamed out of the new version's way, not overwritten
    [kept] = json.loads(rows["song-1~1"]["files"])
    assert kept["path"] == "song-1~1.mp3" and sha(out / "song-1~1.mp3") == kept["sha256"]
    assert kept["sha256"] == json.loads(old["files"])[0]["sha256"] != sha(out / "song-1.mp3")
    assert rows["song-1"]["fingerprint"] != old["fingerprint"]
    assert rows["song-1"]["state"] == "completed"
    ledger = journal_sql(journal, "SELECT job_id, run FROM attempts WHERE job_id LIKE 'song-1%'")
    assert {(r["job_id"], r["run"]) for r in ledger} == {("song-1", 3), ("song-1~1", 1)}
    # edited again: the next old version goes apart under the next free id
    jobs.write_text(jobs.read_text().replace("Changed words", "Third words"))
    outcomes, _ = await run(emulator, jobs, out, journal=journal, resubmit=["song-1"])
    assert by_id(outcomes)["song-1"].status == "completed"
    assert {"song-1~1", "song-1~2"} <= set(journal_rows(journal))


async def test_an_edited_job_that_never_reached_the_service_is_replaced(
        emulator: Emulator, tmp_path: Path) -> None:
    """Before: exit 2 even for a job that failed before anything was paid."""
    jobs, out, journal = write_jobs(tmp_path, songs=1), tmp_path / "out", tmp_path / "j.sqlite"
    emulator.inject("malformed_json", operation="suno.add_instrumental", count=50)
    emulator.inject("maintenance", operation="aiml.upload", count=50)
    first, _ = await run(emulator, jobs, out, journal=journal)
    assert {o.status for o in first} <= {"failed", "unknown"}
    rows = journal_rows(journal)
    assert rows["song-0"]["state"] == "failed" and rows["song-0"]["fate"] is None
    emulator.reset()
    jobs.write_text(jobs.read_text().replace("La la 0", "Fixed words"))
    outcomes, _ = await run(emulator, jobs, out, journal=journal)
    got = by_id(outcomes)
    assert got["song-0"].status == "completed"
    assert journal_rows(journal)["song-0"]["state"] == "completed"
    assert "song-0~1" not in journal_rows(journal)  # nothing of it was worth keeping
    # the Suno jobs reached the service (unreadable answers): reported as unknown, not paid
    assert {got[j].status for j in got if j.startswith("inst")} == {"unknown"}
    assert emulator.counters.paid(operation="suno.add_instrumental") == 0


async def test_a_journal_of_another_endpoint_is_refused(emulator: Emulator,
                                                       tmp_path: Path) -> None:
    jobs, out, journal = write_jobs(tmp_path), tmp_path / "out", tmp_path / "j.sqlite"
    await run(emulator, jobs, out, journal=journal)
    emulator.reset()
    async with session(emulator) as s:
        batch = Batch(s, load_jobs(jobs), out=out, journal=journal, endpoint="elsewhere")
        with pytest.raises(JournalError, match="elsewhere"):
            await batch.run()
    assert emulator.counters.paid() == 0


async def test_a_second_run_of_a_journal_in_use_is_refused(emulator: Emulator,
                                                          tmp_path: Path) -> None:
    """Started twice by mistake (two terminals, an overlapping cron), a batch would pay twice."""
    jobs, journal = load_jobs(write_jobs(tmp_path)), tmp_path / "j.sqlite"
    async with session(emulator) as s:
        first = Batch(s, jobs, out=tmp_path / "a", journal=journal, poll=TINY)
        async with first.results() as results:
            second = Batch(s, jobs, out=tmp_path / "b", journal=journal, poll=TINY)
            with pytest.raises(JournalError, match="is in use: another run of this batch"):
                await second.run()
            assert [o.status async for o in results] == ["completed"] * 4
    assert emulator.counters.paid() == 4  # the first run's, once each
    assert not (tmp_path / "b").exists()
    async with session(emulator) as s:
        again = Batch(s, jobs, out=tmp_path / "a", journal=journal, poll=TINY)
        assert (await again.run()).skipped == 4  # free once the first run ended


async def test_unknown_fate_is_reported_then_resubmitted_on_request(emulator: Emulator,
                                                                    tmp_path: Path) -> None:
    jobs = write_jobs(tmp_path, songs=1, instrumentals=1)
    out, journal = tmp_path / "out", tmp_path / "j.sqlite"
    emulator.inject("reset_before_answer", operation="aiml.generate")
    emulator.inject("reset_before_answer", operation="suno.add_instrumental")
    outcomes, batch = await run(emulator, jobs, out, journal=journal)
    assert {o.status for o in outcomes} == {"unknown"}
    assert all(isinstance(o.error, SubmissionUnknownError) for o in outcomes)
    assert batch.summary.unknown == 2 and not batch.summary.ok
    assert emulator.counters.paid() == 2  # both were taken, neither re-sent
    again, _ = await run(emulator, jobs, out, journal=journal)
    assert {o.status for o in again} == {"unknown"}
    assert "resubmit" in str(again[0].error)
    assert emulator.counters.paid() == 2
    last, _ = await run(emulator, jobs, out, journal=journal, resubmit_unknown=True)
    assert {o.status for o in last} == {"completed"}
    assert all("re-submitted" in o.note for o in last)
    assert emulator.counters.paid() == 4
    assert {r["state"] for r in journal_rows(journal).values()} == {"completed"}


async def test_stale_intent_after_a_kill(emulator: Emulator, tmp_path: Path) -> None:
    """What a SIGKILL leaves: intents without an answer. A finished file is adopted."""
    jobs = write_jobs(tmp_path, songs=2, instrumentals=1)
    out, journal = tmp_path / "out", tmp_path / "j.sqlite"
    await run(emulator, jobs, out, journal=journal)
    # a kill while the paid requests were in flight: the intent, and a ledger row "sending"
    journal_sql(journal, "UPDATE jobs SET state = 'submitting', task_id = NULL, files = '[]', "
                         "fate = 'sending'")
    (out / "song-1.mp3").unlink()
    paid = emulator.counters.paid()
    outcomes, _ = await run(emulator, jobs, out, journal=journal)
    got = by_id(outcomes)
    assert got["song-0"].status == "completed" and "just before" in got["song-0"].note
    assert got["song-0"].files[0].sha256 == sha(out / "song-0.mp3")
    assert got["song-1"].status == got["inst-0"].status == "unknown"
    assert emulator.counters.paid() == paid
    rows = journal_rows(journal)
    assert (rows["song-0"]["state"], rows["song-1"]["state"]) == ("completed", "unknown")


async def test_partial_files_a_kill_left_are_removed_by_the_next_run(
        emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A killed process cannot remove its temporary files; the next run of its jobs does."""
    jobs = write_jobs(tmp_path, songs=1, instrumentals=1)
    out = tmp_path / "out"
    out.mkdir()
    ours = [".song-0.mp3.k1ll3d_0.part", ".inst-0-1.mp3.abcd1234.part",
            ".inst-0-2.wav.zz99__aa.part"]
    theirs = [".other.mp3.abcd1234.part",  # no job writes other.mp3
              ".song-0.mp3.part",  # not a temporary file's name
              ".song-0.mp3.TOOLONG99.part", "song-0.mp3.abcd1234.part", ".inst-0.abcd1234.part",
              "notes.txt"]
    for name in ours + theirs:
        (out / name).write_bytes(b"half a song")
    theirs.append(".inst-0-3.mp3.abcd1234.part")  # a folder: not removed, a warning logged
    (out / theirs[-1]).mkdir()
    assert remove_leftovers(tmp_path / "nowhere", load_jobs(jobs)) == []
    with caplog.at_level("INFO", logger="aiomusic"):
        outcomes, _ = await run(emulator, jobs, out, journal=tmp_path / "j.sqlite")
    assert {o.status for o in outcomes} == {"completed"}
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*theirs, "inst-0-1.mp3", "inst-0-2.mp3", "song-0.mp3"])
    removed = [r.getMessage() for r in caplog.records if "left by an earlier run" in
               r.getMessage()]
    assert sorted(m.split()[0] for m in removed) == ["cannot"] + ["removed"] * len(ours)


async def test_failures_are_typed_and_stop_nothing(emulator: Emulator, tmp_path: Path) -> None:
    jobs = write_jobs(tmp_path, songs=3, instrumentals=3)
    emulator.inject("invalid_hex", operation="aiml.generate")
    emulator.inject("generate_audio_failed", operation="suno.add_instrumental")
    outcomes, batch = await run(emulator, jobs, tmp_path / "out", journal=tmp_path / "j")
    status = Counter(o.status for o in outcomes)
    assert status == {"completed": 4, "failed": 2}
    errors = {type(o.error) for o in outcomes if o.error is not None}
    assert errors == {AudioDecodeError, TaskFailedError}
    assert batch.summary.failed == {"AudioDecodeError": 1, "TaskFailedError": 1}
    failed_task = next(o for o in outcomes if isinstance(o.error, TaskFailedError))
    assert failed_task.task_id
    no_partials(tmp_path / "out")
    assert {(c["fate"], c["task_id"] is not None) for c in batch.summary.to_check} == {
        ("failed after taken", False), ("failed after taken", True)}
    assert batch.summary.submissions["failed_after_taken"] == 2
    paid = emulator.counters.paid()
    # run again: the service took both and then failed; neither is paid for again unasked
    again, batch = await run(emulator, jobs, tmp_path / "out", journal=tmp_path / "j")
    assert Counter(o.status for o in again) == {"skipped": 4, "failed": 2}
    refused = [o for o in again if o.status == "failed"]
    assert {type(o.error) for o in refused} == {AlreadyPaidError}
    assert {o.fate for o in refused} == {"failed after taken"}
    assert emulator.counters.paid() == paid and batch.summary.submissions["taken"] == 0
    assert failed_task.task_id in {c["task_id"] for c in batch.summary.to_check}
    # one by its id, then the rest by the word: only then paid again
    song = next(o.job.id for o in refused if o.job.kind == "minimax")
    again, _ = await run(emulator, jobs, tmp_path / "out", journal=tmp_path / "j",
                         resubmit=[song])
    assert Counter(o.status for o in again) == {"skipped": 4, "completed": 1, "failed": 1}
    assert emulator.counters.paid() == paid + 1
    again, _ = await run(emulator, jobs, tmp_path / "out", journal=tmp_path / "j",
                         resubmit="failed-after-taken")
    assert Counter(o.status for o in again) == {"skipped": 5, "completed": 1}
    assert emulator.counters.paid() == paid + 2


async def test_a_failed_download_resumes_the_task(emulator: Emulator, tmp_path: Path) -> None:
    jobs = write_jobs(tmp_path, songs=0, instrumentals=1)
    out, journal = tmp_path / "out", tmp_path / "j"
    (out / "inst-0-1.mp3").mkdir(parents=True)  # in the way: the track cannot be written
    outcomes, _ = await run(emulator, jobs, out, journal=journal)
    assert outcomes[0].status == "failed" and outcomes[0].task_id
    assert isinstance(outcomes[0].error, LocalFileError)
    assert "inst-0-1.mp3" in str(outcomes[0].error)
    assert emulator.counters.paid() == 1
    (out / "inst-0-1.mp3").rmdir()
    again, _ = await run(emulator, jobs, out, journal=journal)
    assert again[0].status == "completed" and again[0].resumed
    assert again[0].task_id == outcomes[0].task_id
    assert emulator.counters.paid() == 1  # followed by id, not submitted again


async def test_a_task_the_service_forgot_is_reported_not_resubmitted(emulator: Emulator,
                                                                     tmp_path: Path) -> None:
    jobs = write_jobs(tmp_path, songs=0, instrumentals=1)
    out, journal = tmp_path / "out", tmp_path / "j"
    (out / "inst-0-1.mp3").mkdir(parents=True)  # in the way: the job fails after submitting
    first, _ = await run(emulator, jobs, out, journal=journal)
    assert first[0].status == "failed" and first[0].task_id
    (out / "inst-0-1.mp3").rmdir()
    emulator.reset()  # the service no longer knows the task (expired, or a new emulator)
    again, _ = await run(emulator, jobs, out, journal=journal)
    error = again[0].error
    assert again[0].status == "failed" and isinstance(error, NotFoundError)
    assert f"task {first[0].task_id}" in str(error) and "earlier run" in str(error)
    assert "new id or use a new journal" in str(error)
    assert error.provider == "suno" and error.provider_message == "taskId not found"
    assert isinstance(error.__cause__, BadRequestError)
    assert emulator.counters.paid() == 0  # not submitted again behind the user's back
    assert journal_rows(journal)["inst-0"]["error_type"] == "NotFoundError"


async def test_stopping_a_batch_keeps_the_journal_consistent(tmp_path: Path) -> None:
    config = EmulatorConfig(timings=Timings(generate=3.0, suno_text=0.5, suno_first=1.0,
                                            suno_complete=2.0),
                            limits=Limits.off(), track_seconds=(3.0, 4.0))
    jobs = write_jobs(tmp_path, songs=2, instrumentals=1)
    out, journal = tmp_path / "out", tmp_path / "j"
    async with Emulator(config) as emu:
        ready = anyio.Event()
        seen: set[str] = set()

        def watch(event: Event) -> None:
            if isinstance(event, JobProgress) and event.stage in ("generating", "submitted"):
                seen.add(event.job)
                if {"song-0", "song-1", "inst-0"} <= seen:
                    ready.set()

        async with session(emu, on_event=watch) as s:
            batch = Batch(s, load_jobs(jobs), out=out, journal=journal, poll=TINY,
                          concurrency=3)
            async with anyio.create_task_group() as tg:
                tg.start_soon(batch.run)
                with anyio.fail_after(10):
                    await ready.wait()
                    # every paid request reached the service (a job may report 'generating'
                    # while it still waits for its lane's permit)
                    while emu.counters.paid() < 3:
                        await anyio.sleep(0.01)
                tg.cancel_scope.cancel()
            assert batch.summary.interrupted and batch.summary.completed == 0
        rows = journal_rows(journal)
        assert rows["song-0"]["state"] == "unknown"  # its paid request was in flight
        assert rows["song-1"]["state"] == "unknown"
        assert rows["inst-0"]["state"] == "submitted" and rows["inst-0"]["task_id"]
        no_partials(out)
        paid = emu.counters.paid()
        outcomes, _ = await run(emu, jobs, out, journal=journal, resubmit_unknown=True)
        got = by_id(outcomes)
        assert {o.status for o in outcomes} == {"completed"}
        assert got["inst-0"].resumed and got["inst-0"].task_id == rows["inst-0"]["task_id"]
        assert emu.counters.paid() == paid + 2  # the two unknown songs, sent again as asked


async def test_upload_reuse_follows_retention(emulator: Emulator, tmp_path: Path) -> None:
    jobs, out, journal = write_jobs(tmp_path, songs=1, instrumentals=1), tmp_path / "o", \
        tmp_path / "j"
    await run(emulator, jobs, out, journal=journal)

    def uploads() -> tuple[int, int]:
        requests = emulator.counters.requests
        return (requests["/api/file-stream-upload"],
                requests["/v2/generate/audio/minimax/upload"])

    # new jobs with the same files: the uploads are reused while the service keeps them
    jobs.write_text(jobs.read_text().replace('"song-0"', '"song-a"')
                    .replace('"inst-0"', '"inst-a"'))
    before = uploads()
    await run(emulator, jobs, out, journal=journal)
    assert uploads() == before
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).timestamp()
    journal_sql(journal, "UPDATE uploads SET uploaded_at = ?", old)
    jobs.write_text(jobs.read_text().replace('"song-a"', '"song-b"')
                    .replace('"inst-a"', '"inst-b"'))
    outcomes, _ = await run(emulator, jobs, out, journal=journal)
    assert {o.status for o in outcomes if o.job.id.endswith("-b")} == {"completed"}
    assert uploads() == (before[0] + 1, before[1] + 1)


async def test_no_callback_url_is_refused_before_sending(emulator: Emulator,
                                                          tmp_path: Path) -> None:
    jobs = write_jobs(tmp_path, songs=0, instrumentals=1)
    with pytest.raises(ConfigurationError, match="callBackUrl"):
        await run(emulator, jobs, tmp_path / "o", session={"suno_callback_url": None})
    assert sum(emulator.counters.requests.values()) == 0


async def test_the_journal_never_holds_a_key(emulator: Emulator, tmp_path: Path) -> None:
    jobs = write_jobs(tmp_path, songs=2, instrumentals=1)
    emulator.inject("server_error", operation="aiml.generate", count=20)
    journal = tmp_path / "j.sqlite"
    outcomes, _ = await run(emulator, jobs, tmp_path / "o", journal=journal,
                            session={"retry": RetryPolicy(max_attempts=1)})
    assert any(o.status == "failed" for o in outcomes)
    for part in tmp_path.glob("j.sqlite*"):
        assert KEY.encode() not in part.read_bytes()


async def test_fifty_mixed_jobs_with_faults(tmp_path: Path) -> None:
    """Every job ends done or with a typed error; no partial file; nothing paid twice."""
    faults = Faults(rates={"rate_limit": 0.1, "maintenance": 0.05, "server_error": 0.05,
                           "reset_before_answer": 0.03, "reset_mid_body": 0.05,
                           "truncated_body@files.download": 0.1,
                           "generate_audio_failed": 0.05}, seed=11)
    config = EmulatorConfig(timings=Timings.instant(), limits=Limits.off(), faults=faults,
                            track_seconds=(3.0, 4.0))
    jobs = write_jobs(tmp_path, songs=30, instrumentals=20)
    async with Emulator(config) as emu:
        outcomes, batch = await run(emu, jobs, tmp_path / "out", journal=tmp_path / "j")
        fired = emu.counters.fired()
        paid = emu.counters.paid()
    assert len(outcomes) == 50 and fired > 10
    from aiomusic import AiomusicError

    for outcome in outcomes:
        assert outcome.status in ("completed", "failed", "unknown")
        if outcome.status != "completed":
            assert isinstance(outcome.error, AiomusicError)
    assert paid <= 50  # never a duplicate paid submission
    done = sum(o.status == "completed" for o in outcomes)
    # a 5xx to a paid request has an unknown fate now (issue 15): a few more jobs end unknown
    assert done >= 35 and paid >= done
    assert batch.summary.retries > 0
    no_partials(tmp_path / "out")
