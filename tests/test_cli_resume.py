"""Issue 23: Ctrl-C, then the same command again, finishes the batch; edited jobs heal. The
CLI as users run it: piped, and under a pseudo-terminal."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from aiomusic.emulator import Emulator

from .test_batch import write_jobs
from .test_cli_batch import CLI, batch_args, emulator_process, env, paid, run_in_pty

#: Python advice the command line must never give (it names flags instead).
PYTHON = re.compile(r"resubmit=|in code|Batch\(|MusicSession\(")


def piped(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *argv], capture_output=True, text=True, env=env(),
                          timeout=timeout, check=False)


def interrupt_when(argv: list[str], marker: str) -> tuple[int, str, str]:
    """Run the CLI piped; press Ctrl-C once a stdout line has ``marker``."""
    proc = subprocess.Popen([*CLI, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env())
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            break
    time.sleep(0.5)  # the request goes out after its stage is shown: let it leave
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, "".join(seen) + out, err


def in_flight(err: str) -> list[str]:
    """The jobs the stop message names as waiting for a paid answer."""
    found = re.search(r"stopping cleanly[^\n]*\n(?:aiomusic: )?\d+ jobs? \(([^)]*)\) wait for "
                      r"the answer to a paid request", err)
    assert found, err
    return found[1].split(", ")


@pytest.mark.slow
def test_ctrl_c_names_the_jobs_in_flight_and_the_rerun_finishes_what_it_can(
        tmp_path: Path) -> None:
    """Before: the stop message never warned about the songs that were generating; the re-run
    showed them as ``????`` with advice for Python callers ("resubmit='unknown' in code")."""
    jobs = write_jobs(tmp_path, songs=3, instrumentals=2)
    out = tmp_path / "out"
    with emulator_process("--speed", "4", "--no-limits") as url:
        args = batch_args(jobs, out, url, "--plain")
        status, stdout, err = interrupt_when(args, ": generating")
        assert status == 130, err
        # at once: right after "stopping cleanly", before the summary and the resume hint
        lines = err.splitlines()
        assert lines[0] == "aiomusic: stopping cleanly (press Ctrl-C again to quit at once)"
        waiting = in_flight(err)
        assert waiting and all(job.startswith(("song-", "inst-")) for job in waiting)
        assert "The next run does not send such jobs again" in lines[1]
        assert "--pay-again unknown" in lines[1]
        # the summary lists the jobs that ended unknown, the hint says what the re-run does
        unknown = re.findall(r"^  (\S+): unknown \(run 1, sent ", stdout, re.MULTILINE)
        assert unknown and set(unknown) <= set(waiting), (stdout, err)
        assert f"does not send again the {len(unknown)} job(s)" in lines[-1]
        assert not PYTHON.search(err + stdout)
        suno = paid(url, "suno.add_instrumental")

        again = piped(*args)
        assert again.returncode == 1, again.stderr
        for job in unknown:
            line = next(x for x in again.stdout.splitlines() if f"????  {job}:" in x)
            assert "not sent again" in line
            assert f"add --pay-again unknown (or --pay-again {job}); it may cost money" in line
            assert "stopped while its paid submission was in flight" in line
        assert not PYTHON.search(again.stdout + again.stderr)
        for job in unknown:  # the ledger says which run sent it, and when
            assert re.search(rf"^  {job}: unknown \(run 1, sent 20\d\d-", again.stdout,
                             re.MULTILINE), again.stdout
        done = re.findall(r"^\[\s*\d+/5\] (?:ok|done)\s+(\S+):", again.stdout, re.MULTILINE)
        assert sorted(done + unknown) == sorted(f"{k}-{i}" for k, n in (("song", 3),
                                                                       ("inst", 2))
                                               for i in range(n))
        unknown_suno = [j for j in unknown if j.startswith("inst-")]
        assert paid(url, "suno.add_instrumental") <= suno + 2 - len(unknown_suno)

        last = piped(*args, "--pay-again", "unknown")
        assert last.returncode == 0, last.stderr
        assert "5 of 5 jobs done" in last.stdout


@pytest.mark.slow
def test_ctrl_c_under_a_terminal_says_the_same(tmp_path: Path) -> None:
    jobs = write_jobs(tmp_path, songs=2, instrumentals=1)
    out = tmp_path / "out"
    with emulator_process("--speed", "4", "--no-limits") as url:
        status, text = run_in_pty([*CLI, *batch_args(jobs, out, url)], interrupt="generating")
        assert status == 130, text
        assert "wait for the answer to a paid request" in text
        assert "The next run does not send such jobs again" in text
        assert not PYTHON.search(text)


def test_ctrl_c_without_a_journal_warns_that_a_new_run_pays_again() -> None:
    from aiomusic._core._events import JobProgress
    from aiomusic.cli._common import Output
    from aiomusic.cli._progress import Reporter

    with Reporter(Output(plain=True), total=3) as reporter:
        for job, stage in (("a", "generating"), ("b", "submitted"), ("c", "queued")):
            reporter.event(JobProgress(job=job, stage=stage))
        kept = reporter.stopping(journal=True)
        none = reporter.stopping(journal=False)
        gone = reporter.stopping(ephemeral=True)
    assert kept[0].startswith("1 job (a) wait") and "follows them by id" in kept[1]
    assert "a new run sends them again: you may pay twice" in none[0]
    assert "a new run pays for them again" in none[1]
    assert "end with the embedded emulator" in gone[1]


def _edit(jobs: Path, old: str, new: str) -> None:
    jobs.write_text(jobs.read_text().replace(old, new))


def test_edited_jobs_heal(emulator: Emulator, tmp_path: Path) -> None:
    """Before: any edit stopped the batch with exit 2 ("records other jobs under the ids
    ..."), even for a job that had failed before anything was paid."""
    jobs = write_jobs(tmp_path, songs=1, instrumentals=1)
    with jobs.open("a") as f:  # a typo: the service refuses it before any work (not paid)
        f.write('{"id": "typo", "service": "minimax", "lyrics": "##La##", '
                '"refer_voice": "nope", "refer_instrumental": "nope"}\n')
    out = tmp_path / "out"
    args = batch_args(jobs, out, emulator.url, "--plain")
    first = piped(*args)
    assert first.returncode == 1, first.stderr
    assert "ok    inst-0" in first.stdout and "FAIL  typo: BadRequestError" in first.stdout
    emulator.reset()
    _edit(jobs, '"refer_voice": "nope", "refer_instrumental": "nope"', '"reference": "ref.wav"')
    _edit(jobs, "Inst 0", "Another title")  # the service made it: kept apart, reported
    second = piped(*args)
    assert second.returncode == 1, second.stderr
    assert "records other jobs" not in second.stderr
    assert "ok    typo" in second.stdout and "done  song-0" in second.stdout
    line = next(x for x in second.stdout.splitlines() if "inst-0:" in x and "FAIL" in x)
    assert "changed since an earlier run sent it to the service" in line
    assert "inst-0-1.mp3" in line and "add --pay-again changed (or --pay-again inst-0)" in line
    assert "1 job(s) changed since an earlier run sent them" in second.stdout
    assert "--pay-again changed (or a job id)" in second.stdout
    assert not PYTHON.search(second.stdout + second.stderr)
    assert emulator.counters.paid(operation="suno.add_instrumental") == 0
    report = piped(*args, "--report")
    assert "differ from what the journal recorded: inst-0." in report.stdout
    third = piped(*args, "--pay-again", "changed")
    assert third.returncode == 0, third.stderr
    assert "ok    inst-0" in third.stdout and "3 of 3 jobs done" in third.stdout
    assert emulator.counters.paid(operation="suno.add_instrumental") == 1
    assert (out / "inst-0-1~1.mp3").is_file() and (out / "inst-0-2~1.mp3").is_file()
    report = piped(*args, "--report")
    assert report.returncode == 0 and "inst-0~1" in report.stdout  # the old version, apart
    assert "differ from what the journal" not in report.stdout


def test_pay_again_changed_is_among_the_options_that_may_cost_money() -> None:
    shown = piped("batch", "--help").stdout
    money = shown[shown.index("options that may cost money"):]
    assert "'changed'" in " ".join(money.split()) and "MAY COST MONEY" in money


# -- docs/cli.md's stretch of real work is what happens ---------------------------------------

PAGE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
_SHAPES = ((re.compile(r"\d{4}-\d\d-\d\dT[\d:]+\+00:00"), "TIME"),
           (re.compile(r"\b[0-9a-f]{10,}\b"), "ID"), (re.compile(r"\d+(\.\d+)?"), "N"),
           (re.compile(r"\((?:[a-z-]+, )*[a-z-]+\)"), "(JOBS)"),
           (re.compile(r"\b(?:intro|city-lights|paper-boats|night-drive|last-call|b-side)\b"),
            "JOB"))


def _shape(line: str) -> str:
    """A line without what changes from run to run: times, ids, counts, which jobs."""
    for pattern, placeholder in _SHAPES:
        line = pattern.sub(placeholder, line)
    return line.rstrip()


def _story() -> tuple[str, list[str], list[list[str]]]:
    """The walkthrough's job file, its edits (the JSON blocks), and its batch commands."""
    from .test_docs import blocks

    text = PAGE.read_text(encoding="utf-8")
    start, end = text.index("## A stretch of real work"), text.index("## `aiomusic batch")
    first, last = text[:start].count("\n") + 1, text[:end].count("\n") + 1
    found = [b for b in blocks(PAGE) if first <= b.line <= last]
    jobs = next(b.source for b in found if b.title == "album.jsonl")
    edits = [b.source for b in found if b.language == "json" and b.title is None]
    commands = [line[2:].split() for b in found if b.language == "console"
                for line in b.source.splitlines()
                if line.startswith("$ aiomusic batch") and "--emulator" not in line]
    shown = [b.source for b in found if b.language in ("text", "console")]
    return jobs, edits, [*commands, *[["#shown", s] for s in shown]]


def _apply(jobs: Path, edit: str) -> None:
    """An edit block's lines replace the job file's lines of the same ids (or are added)."""
    import json

    lines = jobs.read_text().splitlines()
    for new in edit.strip().splitlines():
        job = json.loads(new)["id"]
        at = [i for i, old in enumerate(lines) if f'"id": "{job}"' in old]
        if at:
            lines[at[0]] = new
        else:
            lines.append(new)
    jobs.write_text("\n".join(lines) + "\n")


@pytest.mark.slow
def test_the_stretch_of_real_work_in_docs_cli_md_is_what_happens(tmp_path: Path) -> None:
    from aiomusic.emulator import sample_track

    text, edits, commands = _story()
    runs = [c for c in commands if c[0] != "#shown"]
    shown = "\n".join(c[1] for c in commands if c[0] == "#shown")
    assert [r[0:2] for r in runs] == [["aiomusic", "batch"]] * 5, runs
    run, again, fixed, report, pay = runs
    assert run == again == fixed and report[-1] == "--report"
    assert pay[-4:] == ["--pay-again", "unknown", "--pay-again", "changed"]
    assert len(edits) == 2
    for name, fmt, seed in (("reference.mp3", "mp3", 1), ("vocals.mp3", "mp3", 3),
                            ("vocals.wav", "wav", 3)):
        (tmp_path / name).write_bytes(sample_track(12.0, format=fmt, seed=seed))
    jobs = tmp_path / "album.jsonl"
    jobs.write_text(text)
    outputs: list[str] = []

    def cli(words: list[str]) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*CLI, *words[1:]], capture_output=True, text=True,
                              env={**env(), "AIOMUSIC_BASE_URL": url}, cwd=tmp_path,
                              timeout=120, check=False)
        outputs.append(done.stdout + done.stderr)
        return done

    with emulator_process() as url:  # `aiomusic emulator` at its default speed
        proc = subprocess.Popen([*CLI, *run[1:], "--plain"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                                env={**env(), "AIOMUSIC_BASE_URL": url})
        assert proc.stdout is not None
        waiting = {"intro: generating", "city-lights: generating", "paper-boats: generating",
                   "night-drive: submitted", "last-call: submitted"}
        for line in proc.stdout:  # 3. Ctrl-C while the songs are generating
            waiting = {w for w in waiting if w not in line}
            if not waiting:
                break
        time.sleep(0.2)  # a request goes out just after its stage is shown
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        outputs.append(out + err)
        assert cli(again).returncode == 1  # 4. the same command again
        _apply(jobs, edits[0])  # 5. an edit: the b-side, refused
        assert cli(again).returncode == 1
        _apply(jobs, edits[1])  # its fix, and a change to a finished job
        assert cli(fixed).returncode == 1
        assert cli(report).returncode == 0  # 6. the report
        assert cli(pay).returncode == 0  # 7. paying again, on purpose
        assert "6 of 6 jobs done" in outputs[-1]
    # every message the page shows is one the command printed (times, ids, counts aside)
    printed = {_shape(line) for output in outputs for line in output.splitlines()}
    checked = [line for line in shown.splitlines()
               if line.startswith(("aiomusic: ", "[", "  to pay", "1 job(s)", "3 job(s)"))]
    assert len(checked) >= 15
    for line in checked:
        assert _shape(line) in printed, line


# -- the small pieces, by table ------------------------------------------------------------


def test_when_jobs_were_sent_needs_a_readable_journal(tmp_path: Path) -> None:
    from aiomusic.cli._report import _changed, last_sent

    not_a_journal = tmp_path / "j.sqlite"
    not_a_journal.write_text("hello")
    assert last_sent(None) == last_sent(tmp_path / "none.sqlite") == {}
    assert last_sent(not_a_journal) == {}
    assert _changed({}, tmp_path / "missing.jsonl") == []


def test_long_lists_of_jobs_are_cut() -> None:
    from aiomusic._core._events import JobProgress
    from aiomusic.cli._common import Output
    from aiomusic.cli._progress import Reporter

    with Reporter(Output(plain=True), total=12) as reporter:
        for i in range(12):
            reporter.event(JobProgress(job=f"j{i:02}", stage="generating"))
        [line] = reporter.stopping()
    assert line.startswith("12 jobs (j00, j01, j02, j03, j04, j05, j06, j07 and 4 more) wait")


def test_the_stop_hint_names_at_most_eight_unknown_jobs(capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    from aiomusic.batch._outcome import BatchSummary
    from aiomusic.cli._batch import Result, finish
    from aiomusic.cli._common import Output

    check = tuple({"job": f"s{i}", "fate": "unknown", "trace_id": None, "task_id": None}
                  for i in range(9))
    summary = BatchSummary(total=9, completed=0, skipped=0, failed={}, unknown=0, retries=0,
                           retry_reasons={}, files=0, bytes=0, seconds=1.0, interrupted=True,
                           to_check=check)
    assert finish(Result(summary, signal=2), Output(plain=True), journal=Path("j.sqlite"),
                  again="the same command") == 130
    err = capsys.readouterr().err
    assert "the 9 job(s) whose paid request was in flight (s0, s1, s2, s3, s4, s5, s6, s7 ...)" \
        in err


def test_keeping_an_old_version_apart_leaves_a_gone_or_replaced_file_alone(
        tmp_path: Path) -> None:
    from aiomusic.batch._journal import FileRecord, JobRecord, JobState
    from aiomusic.batch._rerun import _why, keep_apart

    (tmp_path / "a.mp3").write_bytes(b"not what was recorded")
    files = (FileRecord("a.mp3", "0" * 64, 5), FileRecord("b.mp3", "1" * 64, 5))
    record = JobRecord(id="a", kind="minimax", fingerprint="x", state=JobState.COMPLETED,
                       files=files, error="job a: " + "x" * 200)
    assert keep_apart(tmp_path, record, "~1") == files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp3"]
    assert _why(record) == ""  # too long to quote
