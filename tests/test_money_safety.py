"""Never pay twice, never pay for nothing: batches (issue 15, "What was found").

Each test reproduces one finding against the emulator (or a hostile server of our own) and
checks the money with the server's own counters: what reached it, what it charged.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from aiomusic import (
    AlreadyPaidError,
    AudioValidationError,
    AuthenticationError,
    Batch,
    BatchStoppedError,
    MusicSession,
    PreflightError,
    RetryPolicy,
    SubmissionUnknownError,
    load_jobs,
)
from aiomusic.batch import _journal
from aiomusic.batch._journal import Journal, JournalWriteError
from aiomusic.emulator import Emulator, EmulatorConfig, Limits, Timings

from .conftest import make_wav
from .hostile_server import html, raw, serve_hostile
from .test_batch import KEY, PAID, journal_rows, journal_sql, run, session, write_jobs

pytestmark = pytest.mark.anyio
GENERATE = "/v2/generate/audio/minimax/generate"


def lines(folder: Path, *items: dict[str, Any], name: str = "jobs.jsonl") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def song(job_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": job_id, "service": "minimax", "lyrics": f"##{job_id}##",
            "refer_voice": "vocal-1", **extra}


# -- a paid answer nobody can trust: unknown, and never paid twice ---------------------------

@pytest.mark.parametrize("answer", [
    pytest.param(html("200 OK"), id="html-200"),
    pytest.param(raw("200 OK", b""), id="empty-200"),
    pytest.param(raw("200 OK", b'{"data": {"audio": "00aa", "status": 2}}', length=20),
                 id="short-content-length"),
    pytest.param(html("502 Bad Gateway"), id="html-502"),
    pytest.param(html("504 Gateway Timeout"), id="html-504"),
])
async def test_an_untrusted_answer_is_unknown_and_a_rerun_does_not_pay_again(
        tmp_path: Path, answer: bytes) -> None:
    jobs = lines(tmp_path, song("s1"))
    journal = tmp_path / "j.sqlite"
    with serve_hostile(lambda _path, _body: answer) as server:
        for _ in range(2):
            async with MusicSession(aimlapi_key=KEY, base_url=server.url,
                                    retry=RetryPolicy(base_delay=0, max_delay=0)) as s:
                batch = Batch(s, load_jobs(jobs), out=tmp_path / "out", journal=journal)
                outcomes = [o async for o in _outcomes(batch)]
            outcome = outcomes[0]
            assert outcome.status == "unknown"
            assert isinstance(outcome.error, SubmissionUnknownError)
        assert server.requests[GENERATE] == 1  # one paid submission for one job, ever
    assert journal_rows(journal)["s1"]["state"] == "unknown"
    assert batch.summary.to_check[0]["fate"] == "unknown"


async def _outcomes(batch: Batch) -> Any:
    async with batch.results() as results:
        async for outcome in results:
            yield outcome


async def test_a_malformed_answer_is_unknown_and_not_paid_again(emulator: Emulator,
                                                                tmp_path: Path) -> None:
    jobs = write_jobs(tmp_path, songs=1, instrumentals=0)
    emulator.inject("malformed_json", operation="aiml.generate")
    out, journal = tmp_path / "out", tmp_path / "j"
    first, batch = await run(emulator, jobs, out, journal=journal)
    assert first[0].status == "unknown" and first[0].fate == "unknown"
    assert batch.summary.submissions["unknown"] == 1
    again, _ = await run(emulator, jobs, out, journal=journal)
    assert again[0].status == "unknown"
    assert emulator.counters.paid(operation="aiml.generate") == 1
    # only on request
    again, _ = await run(emulator, jobs, out, journal=journal, resubmit_unknown=True)
    assert again[0].status == "completed"
    assert emulator.counters.paid(operation="aiml.generate") == 2


# -- the journal's intent: written at the last moment -----------------------------------------

async def test_a_job_waiting_in_a_backoff_is_pending(emulator: Emulator, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[tuple[str, str]] = []
    sending, ended = Journal.sending, Journal.ended

    async def spy_sending(self: Journal, job_id: str, *args: Any, **kw: Any) -> int:
        writes.append((job_id, "submitting"))
        return await sending(self, job_id, *args, **kw)

    async def spy_ended(self: Journal, attempt: int, job_id: str, fate: str,
                        **kw: Any) -> None:
        writes.append((job_id, "pending" if kw.get("pending") else fate))
        await ended(self, attempt, job_id, fate, **kw)

    monkeypatch.setattr(Journal, "sending", spy_sending)
    monkeypatch.setattr(Journal, "ended", spy_ended)
    emulator.inject("rate_limit", operation="aiml.generate", count=2)
    jobs = write_jobs(tmp_path, songs=1, instrumentals=0)
    outcomes, batch = await run(emulator, jobs, tmp_path / "out", journal=tmp_path / "j")
    assert outcomes[0].status == "completed"
    # refused twice: back to pending each time (it waited in a pause, not "in flight")
    assert writes == [("song-0", "submitting"), ("song-0", "pending")] * 2 + [
        ("song-0", "submitting"), ("song-0", "taken")]
    ledger = journal_sql(tmp_path / "j", "SELECT fate, trace_id FROM attempts ORDER BY id")
    assert [r["fate"] for r in ledger] == ["refused", "refused", "taken"]
    assert ledger[-1]["trace_id"] == outcomes[0].trace_id
    assert batch.summary.submissions == {"taken": 1, "refused": 2, "unknown": 0,
                                         "failed_after_taken": 0}


async def test_a_failed_intent_write_sends_nothing_and_stops_the_batch(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    sending = Journal.sending

    async def failing(self: Journal, *args: Any, **kw: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise JournalWriteError("disk full", path=str(self.path))
        return await sending(self, *args, **kw)

    monkeypatch.setattr(Journal, "sending", failing)
    jobs = write_jobs(tmp_path, songs=4, instrumentals=0)
    with pytest.raises(BatchStoppedError) as caught:
        await run(emulator, jobs, tmp_path / "out", journal=tmp_path / "j", concurrency=1)
    assert isinstance(caught.value.__cause__, JournalWriteError)
    assert emulator.counters.paid() == 1  # the write failed: that request was never sent
    states = sorted(r["state"] for r in journal_rows(tmp_path / "j").values())
    assert states == ["completed", "pending", "pending", "pending"]


# -- preflight: nothing is sent -------------------------------------------------------------

async def test_outputs_may_not_overwrite_the_journal_the_job_file_or_an_input(
        emulator: Emulator, tmp_path: Path) -> None:
    (tmp_path / "ref.wav").write_bytes(make_wav(12.0))
    jobs = lines(tmp_path, song("a", out="aiomusic-journal.sqlite"),
                 song("b", out="jobs.jsonl"), song("c", out="ref.wav", format="wav"),
                 {"id": "d", "service": "minimax", "lyrics": "la", "reference": "ref.wav"},
                 song("e", out="song.wav"))
    journal = tmp_path / "aiomusic-journal.sqlite"
    async with session(emulator) as s:
        batch = Batch(s, load_jobs(jobs), out=tmp_path, journal=journal, job_file=jobs)
        with pytest.raises(PreflightError) as caught:
            await batch.run()
    said = caught.value.problems
    assert any("job a:" in p and "journal" in p for p in said)
    assert any("job b:" in p and "the job file" in p for p in said)
    assert any("job c:" in p and "an input of job d" in p for p in said)
    assert any("job e:" in p and "'song.wav' says wav but the output format is mp3" in p
               for p in said)
    assert "nothing was sent" in str(caught.value)
    assert sum(emulator.counters.requests.values()) == 0
    assert journal_rows(journal) == {}  # still a journal (no job added), not MP3 bytes


async def test_every_service_needs_its_key_before_anything_is_sent(emulator: Emulator,
                                                                   tmp_path: Path) -> None:
    jobs = write_jobs(tmp_path, songs=2, instrumentals=2)
    async with MusicSession(suno_key=KEY, base_url=emulator.url,
                            suno_callback_url="http://127.0.0.1:9/x") as s:
        batch = Batch(s, load_jobs(jobs), out=tmp_path / "out")
        with pytest.raises(PreflightError, match="no API key for aimlapi") as caught:
            await batch.run()
    assert "2 job(s) need it: song-0, song-1" in str(caught.value)
    assert sum(emulator.counters.requests.values()) == 0


@pytest.fixture
def strict_emulator() -> Iterator[Emulator]:
    """An emulator that accepts only ``KEY``."""
    config = EmulatorConfig(api_keys={KEY}, timings=Timings.instant(), limits=Limits.off(),
                            track_seconds=(1.0, 2.0))
    with Emulator(config) as emu:
        yield emu


async def test_a_wrong_suno_key_stops_before_anything_is_paid(strict_emulator: Emulator,
                                                              tmp_path: Path) -> None:
    jobs = write_jobs(tmp_path, songs=1, instrumentals=3)
    async with MusicSession(aimlapi_key=KEY, suno_key="sk-wrong-key-123", base_url=(
            strict_emulator.url), suno_callback_url="http://127.0.0.1:9/x") as s:
        batch = Batch(s, load_jobs(jobs), out=tmp_path / "out")
        with pytest.raises(PreflightError, match="the Suno key was refused"):
            await batch.run()
    counters = strict_emulator.counters
    assert dict(counters.requests) == {"/api/v1/generate/credit": 1}  # one free call
    assert counters.paid() == 0


async def test_a_wrong_key_stops_at_the_first_refusal(strict_emulator: Emulator,
                                                      tmp_path: Path) -> None:
    jobs = lines(tmp_path, *[song(f"s{i}") for i in range(12)])
    async with MusicSession(aimlapi_key="sk-wrong-key-123", base_url=strict_emulator.url,
                            retry=RetryPolicy(base_delay=0, max_delay=0)) as s:
        batch = Batch(s, load_jobs(jobs), out=tmp_path / "out", journal=tmp_path / "j",
                      concurrency=1)
        with pytest.raises(BatchStoppedError) as caught:
            await batch.run()
    assert isinstance(caught.value.__cause__, AuthenticationError)
    assert strict_emulator.counters.rejected[("aiml.generate", "auth")] == 1
    assert batch.summary.not_run == 11 and batch.summary.failed == {"AuthenticationError": 1}
    states = sorted(r["state"] for r in journal_rows(tmp_path / "j").values())
    assert states == ["failed"] + ["pending"] * 11  # a re-run with the right key runs them


async def test_a_suno_source_that_is_not_audio_is_never_uploaded(emulator: Emulator,
                                                                 tmp_path: Path) -> None:
    (tmp_path / "vocal.mp3").write_text("these are my lyrics, not a recording\n" * 50)
    jobs = lines(tmp_path, {"id": "i", "service": "suno", "source": "vocal.mp3",
                            "title": "t", "tags": "piano", "negative_tags": "metal"})
    async with session(emulator) as s:
        batch = Batch(s, load_jobs(jobs), out=tmp_path / "out")
        with pytest.raises(PreflightError, match="is not WAV or MP3 audio") as caught:
            await batch.run()
        assert "vocal.mp3" in str(caught.value)
        with pytest.raises(AudioValidationError, match="judged by its content"):
            await s.suno.add_instrumental(tmp_path / "vocal.mp3", title="t", tags="piano",
                                          negative_tags="metal")
    assert sum(emulator.counters.requests.values()) == 0


# -- stale ids heal ----------------------------------------------------------------------------

async def test_uploads_the_service_forgot_are_uploaded_again_once(emulator: Emulator,
                                                                  tmp_path: Path) -> None:
    jobs = write_jobs(tmp_path, songs=1, instrumentals=1)
    out, journal = tmp_path / "out", tmp_path / "j"
    first, _ = await run(emulator, jobs, out, journal=journal)
    assert {o.status for o in first} == {"completed"}
    state = emulator.app.state
    with state.lock:  # the service expired the reference ids and the uploaded files
        state.refs.clear()
        state.files.clear()
    jobs.write_text(jobs.read_text().replace('"song-0"', '"song-1"')
                    .replace('"inst-0"', '"inst-1"'))
    before = dict(emulator.counters.requests)
    again, batch = await run(emulator, jobs, out, journal=journal)
    assert {o.status for o in again if o.job.id.endswith("-1")} == {"completed"}
    requests = emulator.counters.requests
    for path in ("/api/file-stream-upload", "/v2/generate/audio/minimax/upload"):
        assert requests[path] == before.get(path, 0) + 1
    assert {op: emulator.counters.paid(operation=op) for op in PAID} == dict.fromkeys(PAID, 2)
    assert batch.summary.submissions["refused"] == 2  # not charged, then healed


# -- a disk that fills or turns read-only -------------------------------------------------------

@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """``mount(name, size="6m", options="")``: a small tmpfs of our own (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted: list[Path] = []

    def make(name: str, size: str = "6m", options: str = "") -> Path:
        where = tmp_path / name
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}{options}", "none",
                               str(where)], check=False, capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr!r}")
        mounted.append(where)
        return where

    try:
        yield make
    finally:
        for where in mounted:
            subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def tmpfs(mount: Callable[..., Path]) -> Path:
    return mount("disk")


def remount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True)


def fill(folder: Path) -> None:
    """Take every free byte of ``folder``'s disk."""
    with (folder / "ballast").open("wb") as ballast:
        try:
            while True:
                ballast.write(b"\0" * 65536)
                ballast.flush()
        except OSError:
            pass


def with_reference(folder: Path, *items: dict[str, Any]) -> Path:
    """A job file whose songs share the reference ``ref.wav`` (uploaded once)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ref.wav").write_bytes(make_wav(12.0))
    return lines(folder, *({k: v for k, v in item.items() if k != "refer_voice"} |
                           {"reference": "ref.wav"} for item in items))


BIG = EmulatorConfig(timings=Timings.instant(), limits=Limits.off(),
                     generate_audio_bytes=1_500_000)


@pytest.fixture
def big_emulator() -> Iterator[Emulator]:
    with Emulator(BIG) as emu:
        yield emu


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_full_disk_stops_before_paying_and_the_rerun_completes(
        big_emulator: Emulator, tmpfs: Path) -> None:
    jobs = with_reference(tmpfs.parent, *[song(f"s{i}", bitrate=256000) for i in range(5)])
    out, journal = tmpfs / "out", tmpfs / "journal.sqlite"
    with pytest.raises(BatchStoppedError, match="MiB free") as caught:
        await run(big_emulator, jobs, out, journal=journal, concurrency=1)
    assert isinstance(caught.value.__cause__, PreflightError)
    rows = journal_rows(journal)
    done = {j for j, r in rows.items() if r["state"] == "completed"}
    assert 1 <= len(done) < 5
    assert {r["state"] for r in rows.values()} == {"completed", "pending"}
    assert big_emulator.counters.paid() == len(done)  # nothing paid that could not be kept
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    await anyio.to_thread.run_sync(remount, tmpfs, "size=40m")
    outcomes, _ = await run(big_emulator, jobs, out, journal=journal)
    assert {o.job.id for o in outcomes if o.status == "completed"} == {
        f"s{i}" for i in range(5)} - done
    assert big_emulator.counters.paid() == 5  # no duplicate


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_full_journal_disk_mid_run_is_typed_and_truthful(
        big_emulator: Emulator, mount: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    out, journal_disk = mount("out", "40m"), mount("journal", "1m")
    jobs = with_reference(out.parent, *[song(f"s{i}") for i in range(4)])
    journal = journal_disk / "journal.sqlite"
    write = _journal.write

    def then_fill(db: Any, statements: Any) -> int:
        last = write(db, statements)
        if any("completed" in values for _sql, values in statements):
            fill(journal_disk)  # the journal's disk fills right after the first song
        return last

    monkeypatch.setattr(_journal, "write", then_fill)
    with pytest.raises(BatchStoppedError, match="could not be written") as caught:
        await run(big_emulator, jobs, out, journal=journal, concurrency=1)
    assert isinstance(caught.value.__cause__, JournalWriteError)
    assert "sqlite3" not in type(caught.value.__cause__).__module__
    assert big_emulator.counters.paid() == 1  # the intent could not be written: not sent
    monkeypatch.setattr(_journal, "write", write)
    (journal_disk / "ballast").unlink()
    rows = journal_rows(journal)
    assert sorted(r["state"] for r in rows.values()) == ["completed", "pending", "pending",
                                                         "pending"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    outcomes, _ = await run(big_emulator, jobs, out, journal=journal)
    assert sorted(o.status for o in outcomes) == ["completed"] * 3 + ["skipped"]
    assert big_emulator.counters.paid() == 4  # no duplicate


async def test_a_read_only_output_folder_sends_nothing(emulator: Emulator,
                                                       mount: Callable[..., Path]) -> None:
    out = mount("out", "1m", ",ro")
    jobs = write_jobs(out.parent / "jobs", songs=2, instrumentals=1)
    with pytest.raises(PreflightError, match="Read-only file system"):
        await run(emulator, jobs, out / "songs", journal=out.parent / "j")
    with pytest.raises(PreflightError, match="cannot write in"):
        await run(emulator, jobs, out)
    assert sum(emulator.counters.requests.values()) == 0


async def test_the_journal_module_keeps_its_interface() -> None:
    """The methods a PostgreSQL journal will implement, as the docstring lists them."""
    for name in ("open", "aclose", "records", "add", "update", "sending", "ended", "settle",
                 "ledger", "upload", "record_upload", "forget_upload"):
        assert callable(getattr(Journal, name)), name
        assert f"``{name}(" in (_journal.__doc__ or ""), name


async def test_an_answer_lost_with_its_process_is_failed_after_taken(emulator: Emulator,
                                                                     tmp_path: Path) -> None:
    jobs = write_jobs(tmp_path, songs=1, instrumentals=0)
    (job,) = load_jobs(jobs)
    journal = tmp_path / "j"
    earlier = await Journal.open(journal, endpoint="here")  # a run that died mid-write
    try:
        await earlier.add(job.id, kind=job.kind, fingerprint=job.fingerprint())
        row = await earlier.sending(job.id, "minimax.generate", 1, dest_existed=False)
        await earlier.ended(row, job.id, "taken", trace_id="tr-lost")
    finally:
        await earlier.aclose()
    outcomes, batch = await run(emulator, jobs, tmp_path / "out", journal=journal,
                                endpoint="here")
    assert batch.summary.to_check[0]["trace_id"] == "tr-lost"
    error = outcomes[0].error
    assert outcomes[0].status == "failed" and outcomes[0].fate == "failed after taken"
    assert isinstance(error, AlreadyPaidError) and error.trace_id == "tr-lost"
    assert emulator.counters.paid() == 0
    assert journal_rows(journal)[job.id]["state"] == "failed"
    outcomes, _ = await run(emulator, jobs, tmp_path / "out", journal=journal,
                            endpoint="here", resubmit="failed-after-taken")
    assert outcomes[0].status == "completed" and emulator.counters.paid() == 1


CREDIT = "/api/v1/generate/credit"
SUBMIT = "/api/v1/generate/add-instrumental"


def instrumental(folder: Path) -> Path:
    return lines(folder, {"id": "i", "service": "suno", "source": "https://cdn.example/v.mp3",
                          "title": "t", "tags": "piano", "negative_tags": "metal"})


@pytest.mark.parametrize("answer", [
    pytest.param(raw("200 OK", b'{"code": 429, "msg": "Insufficient credits"}'), id="code-429"),
    pytest.param(raw("200 OK", b'{"code": 200, "msg": "success", "data": 0}'), id="zero"),
])
async def test_a_suno_account_without_credits_stops_before_paying(tmp_path: Path,
                                                                  answer: bytes) -> None:
    with serve_hostile(lambda _path, _body: answer) as server:
        async with MusicSession(suno_key=KEY, base_url=server.url,
                                suno_callback_url="https://cb.invalid/x") as s:
            batch = Batch(s, load_jobs(instrumental(tmp_path)), out=tmp_path / "out")
            with pytest.raises(PreflightError, match="no credits left"):
                await batch.run()
        assert dict(server.requests) == {CREDIT: 1}


async def test_a_credits_check_that_fails_proves_nothing(tmp_path: Path) -> None:
    def answer(path: str, _body: bytes) -> bytes:
        if path == CREDIT:
            return html("502 Bad Gateway")
        return raw("200 OK", b'{"code": 400, "msg": "Invalid parameters"}')

    with serve_hostile(answer) as server:
        async with MusicSession(suno_key=KEY, base_url=server.url, retry=RetryPolicy.never(),
                                suno_callback_url="https://cb.invalid/x") as s:
            outcomes = await Batch(s, load_jobs(instrumental(tmp_path)),
                                   out=tmp_path / "out").run()
        assert server.requests[SUBMIT] == 1  # the batch went on, and the service refused
    assert outcomes.failed == {"BadRequestError": 1}
    assert outcomes.submissions["refused"] == 1
