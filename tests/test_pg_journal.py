"""A batch shared through a journal in PostgreSQL: claims, leases, reclaims, a lost server.

Against the real server of ``tests/servers.py`` (skipped locally without one, failing on CI),
on asyncio and trio. Each test has its own schema (``tests/pg_journal_helpers.py``). The
processes, kill -9 and SIGSTOP runs are in ``tests/test_pg_journal_workers.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from aiomusic import (
    BatchStoppedError,
    ConfigurationError,
    JobLostError,
    JobOutcome,
    JournalError,
    JournalUnavailableError,
    PostgresJournal,
    load_jobs,
)
from aiomusic.batch._jobs import ChainResult
from aiomusic.batch._journal import FileRecord, JobState
from aiomusic.batch._pg_journal import Reaped
from aiomusic.batch._runner import Batch
from aiomusic.cli import main
from aiomusic.emulator import Emulator, EmulatorConfig, Limits, Timings

from .pg_journal_helpers import sql
from .servers import Proxy
from .test_batch import KEY, TINY, session, write_jobs
from .test_cli_batch import batch_args

pytestmark = pytest.mark.anyio
ENDPOINT = "minimax=http://emulator suno=http://emulator"


@pytest.fixture(scope="module")
def slow_emu() -> Iterator[Emulator]:
    """An emulator whose work takes a moment: several jobs are in flight at once."""
    config = EmulatorConfig(timings=Timings(generate=0.2, suno_text=0.05, suno_first=0.1,
                                            suno_complete=0.2), limits=Limits.off(),
                            track_seconds=(1.0, 2.0))
    with Emulator(config) as emulator:
        yield emulator


@pytest.fixture
def slow(slow_emu: Emulator) -> Emulator:
    slow_emu.reset()
    return slow_emu


async def worker(emulator: Emulator, jobs_file: Path, out: Path, journal: str | PostgresJournal,
                 **kw: Any) -> tuple[list[JobOutcome], Batch]:
    outcomes: list[JobOutcome] = []
    async with session(emulator) as s:
        batch = Batch(s, load_jobs(jobs_file), out=out, journal=journal, poll=TINY, **kw)
        async with batch.results() as results:
            async for outcome in results:
                outcomes.append(outcome)
    return outcomes, batch


def states(url: str) -> dict[str, tuple[str, Any, str | None]]:
    """Each job's (state, owner, fate)."""
    return {r[0]: (r[1], r[2], r[3]) for r in sql(
        url, "SELECT id, state, owner, fate FROM aiomusic_batch_jobs")}


async def test_workers_in_one_process_share_the_batch(slow: Emulator, tmp_path: Path,
                                                      pg_journal: str) -> None:
    jobs = write_jobs(tmp_path, songs=6, instrumentals=3)
    out = tmp_path / "out"
    done: list[tuple[list[JobOutcome], Batch]] = []

    async def one() -> None:
        done.append(await worker(slow, jobs, out, pg_journal, concurrency=2))

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one)
    seen = [o.job.id for outcomes, _ in done for o in outcomes]
    assert sorted(seen) == sorted(j.id for j in load_jobs(jobs))  # each job once, in all
    assert {o.status for outcomes, _ in done for o in outcomes} == {"completed"}
    counters = slow.counters
    assert counters.paid(operation="aiml.generate") == 6  # 0 duplicate paid submissions
    assert counters.paid(operation="suno.add_instrumental") == 3
    for outcomes, batch in done:  # each worker sums up the jobs it worked
        assert batch.summary.total == len(outcomes) == batch.summary.completed
        assert not batch.summary.interrupted
    assert set(states(pg_journal).values()) == {("completed", None, "taken")}
    # a second run finds every job done (its files verified), and pays for nothing
    again, batch = await worker(slow, jobs, out, pg_journal)
    assert {o.status for o in again} == {"skipped"} and len(again) == 9
    assert counters.paid() == 9


async def test_the_reclaim_rules_keep_money_safe(pg_journal: str) -> None:
    a = await PostgresJournal(pg_journal, lease=30).start(endpoint=ENDPOINT)
    b = await PostgresJournal(pg_journal, lease=30).start(endpoint=ENDPOINT)
    try:
        await a.add_many((f"j{i}", "minimax", f"f{i}") for i in range(4))
        claimed = [await a.claim() for _ in range(3)]
        assert [r.id for r in claimed if r] == ["j0", "j1", "j2"]
        assert await b.claim() is not None  # j3: skipped past a's locks and owners
        assert await b.claim() is None
        await b.release("j3")
        await a.sending("j1", "aiml.generate", 1)  # the intent: the request may be on its way
        row = await a.sending("j2", "aiml.generate", 1)
        await a.ended(row, "j2", "taken")
        await a.update("j2", JobState.SUBMITTED, task_id="task-2")
        assert await b.reap() == Reaped()  # a lives: nothing to reclaim
        assert await b.others_working()
        a._close()  # a dies: its session ends, and its advisory lock with it
        with anyio.fail_after(10):
            while not (reaped := await b.reap()).dead:  # the server ends it in a moment
                await anyio.sleep(0.01)
        assert (reaped.jobs, reaped.unknown, reaped.dead) == (3, 1, 1)
        assert states(pg_journal) == {"j0": ("pending", None, None),  # claimed -> pending
                                      "j1": ("unknown", None, "unknown"),  # never re-sent
                                      "j2": ("submitted", None, "taken"),  # followed by id
                                      "j3": ("pending", None, None)}
        assert sql(pg_journal, "SELECT job_id, fate, task_id FROM aiomusic_batch_attempts "
                               "ORDER BY id") == [("j1", "unknown", None),
                                                  ("j2", "taken", "task-2")]
        assert not await b.others_working()
        # b claims what needs work: the pending jobs and the task to follow, not the unknown
        got = [await b.claim() for _ in range(4)]
        assert [(r.id, r.state, r.task_id) for r in got if r] == [
            ("j0", JobState.PENDING, None), ("j2", JobState.SUBMITTED, "task-2"),
            ("j3", JobState.PENDING, None)]
    finally:
        await b.aclose()
    # b left: what it held went back by the same rules
    assert {s[1] for s in states(pg_journal).values()} == {None}


async def test_an_expired_lease_is_reclaimed_and_its_holder_sends_nothing(
        pg_journal: str) -> None:
    hung = await PostgresJournal(pg_journal, lease=0.3).start(endpoint=ENDPOINT)
    other = await PostgresJournal(pg_journal, lease=30).start(endpoint=ENDPOINT)
    try:
        await hung.add_many([("j0", "minimax", "f0"), ("j1", "minimax", "f1")])
        assert (await hung.claim()) is not None and (await hung.claim()) is not None
        row = await hung.sending("j1", "aiml.generate", 1)
        await anyio.sleep(0.5)  # no renewal: as a process stopped by SIGSTOP
        reaped = await other.reap()
        assert (reaped.jobs, reaped.unknown, reaped.dead) == (2, 1, 0)  # its lock still lives
        assert (await other.claim()) is not None  # j0, pending again
        # the hung worker wakes up: it owns nothing, and cannot send or mark anything
        with pytest.raises(JobLostError, match="j0: this worker"):
            await hung.sending("j0", "aiml.generate", 1)
        with pytest.raises(JobLostError):
            await hung.update("j0", JobState.COMPLETED, files=(FileRecord("x", "0", 1),))
        with pytest.raises(JobLostError):
            await hung.settle("j1", "taken")
        # what its attempt became is a fact: recorded in the ledger, not on the job
        await hung.ended(row, "j1", "taken", trace_id="t-1")
        assert sql(pg_journal, "SELECT fate, trace_id FROM aiomusic_batch_attempts") == [
            ("taken", "t-1")]
        assert states(pg_journal)["j1"] == ("unknown", None, "unknown")
        assert states(pg_journal)["j0"][0] == "pending"
        assert await hung.renew() == 0
    finally:
        await hung.aclose()
        await other.aclose()
    assert sql(pg_journal, "SELECT count(*) FROM aiomusic_batch_workers") == [(2,)]


async def test_a_job_of_another_job_file_is_left_to_its_workers(
        emulator: Emulator, tmp_path: Path, pg_journal: str) -> None:
    jobs = write_jobs(tmp_path, songs=2, instrumentals=0)
    sql_rows = [("other-job", "minimax", "fp")]
    journal = await PostgresJournal(pg_journal).start(endpoint=f"minimax={emulator.url}/v2 "
                                                               f"suno={emulator.url}")
    await journal.add_many(sql_rows)
    await journal.aclose()
    outcomes, _ = await worker(emulator, jobs, tmp_path / "out", pg_journal,
                                   endpoint=f"minimax={emulator.url}/v2 suno={emulator.url}")
    assert sorted(o.job.id for o in outcomes) == ["song-0", "song-1"]
    assert states(pg_journal)["other-job"] == ("pending", None, None)


async def test_the_schema_is_checked_and_migrated(pg_journal: str) -> None:
    with pytest.raises(JournalError, match="holds no aiomusic batch journal"):
        await PostgresJournal(pg_journal).start(endpoint=None)  # --report before any run
    first = await PostgresJournal(pg_journal).start(endpoint=ENDPOINT)
    await first.aclose()
    assert dict(sql(pg_journal, "SELECT key, value FROM aiomusic_batch_meta")) == {
        "schema": "3", "endpoint": ENDPOINT}
    with pytest.raises(JournalError, match="this run uses other"):
        await PostgresJournal(pg_journal).start(endpoint="other")
    # an older schema (none recorded: a database an earlier version prepared) is migrated
    sql(pg_journal, "DELETE FROM aiomusic_batch_meta WHERE key = 'schema'")
    again = await PostgresJournal(pg_journal).start(endpoint=ENDPOINT)
    await again.aclose()
    assert sql(pg_journal, "SELECT value FROM aiomusic_batch_meta WHERE key = 'schema'") == [
        ("3",)]
    # a journal of schema 2 (before spending was kept) gains its spending table
    sql(pg_journal, "DROP TABLE aiomusic_batch_spending")
    sql(pg_journal, "UPDATE aiomusic_batch_meta SET value = '2' WHERE key = 'schema'")
    again = await PostgresJournal(pg_journal).start(endpoint=ENDPOINT)
    assert await again.spending() == []
    await again.aclose()
    sql(pg_journal, "UPDATE aiomusic_batch_meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(JournalError, match="newer aiomusic"):
        await PostgresJournal(pg_journal).start(endpoint=ENDPOINT)


async def test_the_key_never_reaches_the_journal(emulator: Emulator, tmp_path: Path,
                                                 pg_journal: str) -> None:
    jobs = write_jobs(tmp_path, songs=2, instrumentals=2)
    outcomes, _ = await worker(emulator, jobs, tmp_path / "out", pg_journal)
    assert {o.status for o in outcomes} == {"completed"}
    dump = json.dumps([sql(pg_journal, f"SELECT * FROM {table}") for table in (  # noqa: S608
        "aiomusic_batch_meta", "aiomusic_batch_jobs", "aiomusic_batch_attempts",
        "aiomusic_batch_uploads", "aiomusic_batch_workers")], default=str)
    assert "song-0" in dump and KEY not in dump


async def test_an_unreachable_server_is_a_typed_error(emulator: Emulator, tmp_path: Path,
                                                      postgres_url: str) -> None:
    proxy = Proxy("127.0.0.1", 9)
    proxy.down()
    try:
        url = proxy.url(postgres_url)
        with pytest.raises(JournalUnavailableError, match="Check that PostgreSQL runs"):
            await worker(emulator, write_jobs(tmp_path), tmp_path / "out",
                         PostgresJournal(url, timeout=1))
        assert emulator.counters.paid() == 0
    finally:
        proxy.close()


async def test_postgres_lost_mid_run_stops_the_batch_and_the_journal_stays_true(
        slow: Emulator, tmp_path: Path, pg_journal: str) -> None:
    from urllib.parse import urlsplit

    target = urlsplit(pg_journal)
    proxy = Proxy(target.hostname or "127.0.0.1", target.port or 5432)
    jobs = write_jobs(tmp_path, songs=8, instrumentals=2)
    try:
        journal = PostgresJournal(proxy.url(pg_journal), timeout=1)

        async def cut() -> None:
            while not slow.counters.paid():
                await anyio.sleep(0.01)
            proxy.down()

        async with anyio.create_task_group() as tg:
            tg.start_soon(cut)
            with pytest.raises(BatchStoppedError) as stopped:
                await worker(slow, jobs, tmp_path / "out", journal, concurrency=4)
        assert isinstance(stopped.value.__cause__, JournalUnavailableError)
    finally:
        proxy.close()
    # every job the service charged is recorded as sent (never as pending: it would be paid
    # again); none is completed without its file
    rows = states(pg_journal)
    charged = slow.counters.paid()
    assert 0 < charged < 10
    sent = [j for j, (state, _, _) in rows.items() if state != "pending"]
    assert len(sent) >= charged
    for job, (state, _, _) in rows.items():
        if state == "completed":
            name = f"{job}.mp3" if job.startswith("song") else f"{job}-1.mp3"
            assert (tmp_path / "out" / name).is_file()


async def test_a_job_reclaimed_mid_flight_is_left_to_its_new_owner(
        slow: Emulator, tmp_path: Path, pg_journal: str, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = write_jobs(tmp_path, songs=3, instrumentals=0)

    async def reclaim() -> None:  # what another worker does to a job whose lease ran out
        while not sql(pg_journal, "SELECT 1 WHERE to_regclass('aiomusic_batch_jobs') IS NOT "
                                  "NULL") or not sql(
                pg_journal, "SELECT 1 FROM aiomusic_batch_jobs WHERE id = 'song-0' AND state "
                            "= 'submitting'"):
            await anyio.sleep(0.01)
        sql(pg_journal, "UPDATE aiomusic_batch_jobs SET owner = NULL, state = 'unknown', "
                        "fate = 'unknown' WHERE id = 'song-0'")

    async with anyio.create_task_group() as tg:
        tg.start_soon(reclaim)
        outcomes, _ = await worker(slow, jobs, tmp_path / "out", pg_journal)
    assert sorted(o.job.id for o in outcomes) == ["song-1", "song-2"]
    assert "song-0: job song-0: this worker" in caplog.text
    assert states(pg_journal)["song-0"] == ("unknown", None, "unknown")
    assert sql(pg_journal, "SELECT fate FROM aiomusic_batch_attempts WHERE job_id = 'song-0'"
               ) == [("taken",)]  # the ledger holds the fact; the job is not marked again
    assert slow.counters.paid() == 3


async def test_uploads_and_the_rest_of_the_interface(pg_journal: str) -> None:
    import datetime as dt

    journal = await PostgresJournal(pg_journal, lease=30).start(endpoint=ENDPOINT)
    try:
        assert str(journal).startswith("PostgreSQL at ") and "lease=30" in repr(journal)
        await journal.add("j0", kind="suno", fingerprint="f")
        await journal.add("j0", kind="suno", fingerprint="other")  # known: left as it is
        assert (await journal.records())["j0"].fingerprint == "f"
        when = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
        assert await journal.upload("k") is None
        await journal.record_upload("k", {"url": "https://x/1"}, when)
        await journal.record_upload("k", {"url": "https://x/2"}, when)
        assert await journal.upload("k") == ({"url": "https://x/2"}, when)
        await journal.forget_upload("k")
        assert await journal.upload("k") is None
        assert await journal.result("j0") is None
        await journal.record_result("j0", "task-0", ("a.mp3",))
        await journal.record_result("j0", "task-1", ("b.mp3", "c.mp3"))
        assert await journal.result("j0") == ChainResult("task-1", ("b.mp3", "c.mp3"))
        assert (await journal.claim()) is not None
        await journal.sending("j0", "suno.add_instrumental", 1, dest_existed=True)
        assert await journal.renew() == 1
        assert (await journal.records())["j0"].dest_existed
        assert [a.fate for a in await journal.ledger()] == ["sending"]
    finally:
        await journal.aclose()
    with pytest.raises(JournalUnavailableError, match="is closed"):
        await journal.records()
    assert states(pg_journal)["j0"] == ("unknown", None, "unknown")  # left while sending


def test_journal_options_are_checked() -> None:
    with pytest.raises(ValueError, match="lease"):
        PostgresJournal("postgresql://h/db", lease=0)
    with pytest.raises(ConfigurationError, match="not a PostgreSQL URL"):
        PostgresJournal("postgresql://h/db?nonsense=1")


def test_the_cli_runs_and_reports_a_shared_batch(
        emulator: Emulator, tmp_path: Path, pg_journal: str,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMLAPI_KEY", KEY)
    monkeypatch.setenv("SUNO_API_KEY", KEY)
    jobs = write_jobs(tmp_path, songs=2, instrumentals=1)
    report = ["batch", str(jobs), "--report", "--journal", pg_journal]
    assert main(report) == 2
    assert "holds no aiomusic batch journal" in capsys.readouterr().err
    assert main(batch_args(jobs, tmp_path / "out", emulator.url, "--plain", "--journal",
                           pg_journal, "--lease", "5")) == 0
    assert "3 of 3 jobs done" in capsys.readouterr().out
    assert main(report) == 0
    said = capsys.readouterr().out
    assert "3 jobs (3 completed)" in said and "PostgreSQL at 127.0.0.1" in said


async def test_jobs_that_follow_others_are_refused_in_a_shared_batch(
        emulator: Emulator, tmp_path: Path, pg_journal: str) -> None:
    from aiomusic.batch._jobfile import parse_jobs

    from .test_batch_chains import GEN, job

    jobs = parse_jobs(list(enumerate([GEN, job("w", "wav", after="g")], 1)))
    async with session(emulator) as s:
        batch = Batch(s, jobs, out=tmp_path / "out", journal=pg_journal, poll=TINY)
        with pytest.raises(JournalError, match=r"follow others \(w\) cannot run"):
            await batch.run()
    assert emulator.counters.paid() == 0


async def test_an_edited_job_is_refused_in_a_shared_batch(
        emulator: Emulator, tmp_path: Path, pg_journal: str) -> None:
    """Healing an edited job replaces its journal record, which another worker may hold:
    a shared batch refuses it before anything is sent, and says what to do."""
    from aiomusic.batch._jobfile import load_jobs

    jobs_file = write_jobs(tmp_path, songs=2, instrumentals=0)
    async with session(emulator) as s:
        await Batch(s, load_jobs(jobs_file), out=tmp_path / "out", journal=pg_journal,
                    poll=TINY).run()
    paid = emulator.counters.paid()
    lines = jobs_file.read_text().splitlines()
    edited = json.loads(lines[0]) | {"lyrics": "##A new verse##"}
    jobs_file.write_text("\n".join([json.dumps(edited), *lines[1:]]) + "\n")
    async with session(emulator) as s:
        batch = Batch(s, load_jobs(jobs_file), out=tmp_path / "out", journal=pg_journal,
                      poll=TINY)
        with pytest.raises(JournalError, match=rf"ids {edited['id']}: .* give changed jobs new"):
            await batch.run()
    assert emulator.counters.paid() == paid


async def test_a_budget_is_refused_in_a_shared_batch_and_spending_is_kept(
        emulator: Emulator, tmp_path: Path, pg_journal: str) -> None:
    """Each worker would reserve against a budget alone: a shared batch refuses one before
    anything is sent. Without a budget, what every paid job spent is in the shared journal."""
    from aiomusic import Budget

    jobs = load_jobs(write_jobs(tmp_path, songs=2, instrumentals=1))
    async with session(emulator) as s:
        batch = Batch(s, jobs, out=tmp_path / "out", journal=pg_journal, poll=TINY,
                      budget=Budget(10, "submissions"))
        with pytest.raises(JournalError, match="a budget cannot be kept by the workers"):
            await batch.run()
        assert emulator.counters.paid() == 0
        summary = await Batch(s, jobs, out=tmp_path / "out", journal=pg_journal,
                              poll=TINY).run()
    assert summary.completed == len(jobs)
    journal = await PostgresJournal(pg_journal).start(endpoint=None)
    try:
        rows = await journal.spending()
    finally:
        await journal.aclose()
    assert sorted(r.job_id for r in rows) == sorted(job.id for job in jobs)
    assert len({r.run for r in rows}) == 1 and all(r.state in ("charged", "estimated")
                                                 for r in rows)
