"""``aiomusic batch`` as users run it: in-process, in subprocesses, under a pseudo-terminal,
killed with SIGKILL and resumed, stopped with Ctrl-C."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pty
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aiomusic.cli import main
from aiomusic.emulator import Emulator

from .test_batch import KEY, journal_rows, sha, write_jobs

CLI = [sys.executable, "-m", "aiomusic.cli"]
SERVICE = ["--allow-http-host", "127.0.0.1", "--callback-url", "https://cb.invalid/x",
           "--poll-interval", "0.05"]


def env() -> dict[str, str]:
    return {**os.environ, "AIMLAPI_KEY": KEY, "SUNO_API_KEY": KEY, "COLUMNS": "120",
            "AIOMUSIC_LOG": ""}


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMLAPI_KEY", KEY)
    monkeypatch.setenv("SUNO_API_KEY", KEY)


def batch_args(jobs: Path, out: Path, url: str, *extra: str) -> list[str]:
    return ["batch", str(jobs), "--out", str(out), "--base-url", url, *SERVICE, *extra]


def test_batch_plain_then_resumed(emulator: Emulator, tmp_path: Path, keys: None,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    jobs, out = write_jobs(tmp_path, songs=2, instrumentals=1), tmp_path / "out"
    assert main(batch_args(jobs, out, emulator.url, "--plain")) == 0
    first = capsys.readouterr()
    assert "3 of 3 jobs done: 4 audio files" in first.out
    assert "song-0: generating" in first.out and "inst-0: submitted" in first.out
    assert "ok    inst-0: inst-0-1.mp3" in first.out
    assert KEY not in first.out + first.err
    assert (out / "aiomusic-journal.sqlite").is_file()
    assert main(batch_args(jobs, out, emulator.url, "--plain")) == 0
    again = capsys.readouterr().out
    assert again.count("done  ") == 3 and "3 already done before" in again
    assert emulator.counters.paid() == 3


def test_batch_json(emulator: Emulator, tmp_path: Path, keys: None,
                    capsys: pytest.CaptureFixture[str]) -> None:
    jobs, out = write_jobs(tmp_path, songs=2, instrumentals=1), tmp_path / "out"
    emulator.inject("generate_audio_failed", operation="suno.add_instrumental")
    assert main(batch_args(jobs, out, emulator.url, "--json", "--no-journal")) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    jobs_seen = {d["id"]: d for d in lines if d["event"] == "job"}
    assert set(jobs_seen) == {"song-0", "song-1", "inst-0"}
    assert jobs_seen["inst-0"]["status"] == "failed"
    assert jobs_seen["inst-0"]["error"]["type"] == "TaskFailedError"
    assert jobs_seen["song-0"]["files"][0]["sha256"] == sha(out / "song-0.mp3")
    summary = lines[-1]
    assert summary["event"] == "summary" and summary["failed"] == {"TaskFailedError": 1}
    assert summary["completed"] == 2 and summary["ok"] is False and summary["journal"] is None


def test_usage_errors_exit_2(tmp_path: Path, keys: None,
                             capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "service": "minimax", "lyric": "x"}\nnot json\n')
    assert main(["batch", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl:1: lyric: unknown field (did you mean 'lyrics'?)" in err
    assert "bad.jsonl:2: not valid JSON" in err and "nothing was sent" in err
    assert main(["batch", str(tmp_path / "missing.jsonl"), "--out", "o"]) == 2
    assert "cannot read the job file" in capsys.readouterr().err
    assert main(["batch", str(bad)]) == 2
    assert "--out DIR is required" in capsys.readouterr().err
    for argv in (["batch", str(bad), "--out", "o", "--concurrency", "0"],
                 ["batch", str(bad), "--out", "o", "--poll-interval", "-1"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2


def test_journal_of_another_endpoint_exit_2(emulator: Emulator, tmp_path: Path, keys: None,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    jobs, out = write_jobs(tmp_path, songs=1, instrumentals=0), tmp_path / "out"
    assert main(batch_args(jobs, out, emulator.url, "--plain")) == 0
    capsys.readouterr()
    other = emulator.url.replace("127.0.0.1", "localhost")
    assert main(batch_args(jobs, out, other, "--plain")) == 2
    assert "Use the same endpoint, or another journal" in capsys.readouterr().err


def run_in_pty(argv: list[str], *, timeout: float = 60) -> tuple[int, str]:
    """Run ``argv`` with a pseudo-terminal as stdout and stderr; return status and output."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                            env={**env(), "TERM": "xterm-256color"}, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                data = os.read(master, 65536)
            except OSError as exc:  # EIO: the child closed the terminal
                if exc.errno != errno.EIO:
                    raise
                break
            if not data:
                break
            chunks.append(data)
        status = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return status, b"".join(chunks).decode(errors="replace")


def test_batch_under_a_terminal_and_without(tmp_path: Path) -> None:
    jobs = write_jobs(tmp_path, songs=2, instrumentals=1)
    status, text = run_in_pty([*CLI, "batch", str(jobs), "--out", str(tmp_path / "a"),
                               "--emulator"])
    assert status == 0, text
    assert "3 of 3 jobs done" in text and "\x1b[" in text  # rich drew colours and the bar
    assert "ok    song-0: song-0.mp3" in text
    piped = subprocess.run([*CLI, "batch", str(jobs), "--out", str(tmp_path / "b"),
                            "--emulator"], capture_output=True, text=True, env=env(),
                           timeout=60, check=False)
    assert piped.returncode == 0, piped.stderr
    assert "\x1b[" not in piped.stdout  # plain lines when not on a terminal
    assert "  ..    song-0: generating" in piped.stdout
    assert "3 of 3 jobs done" in piped.stdout


@contextlib.contextmanager
def emulator_process(*args: str) -> Iterator[str]:
    """``aiomusic emulator`` in its own process, so that it outlives killed batches."""
    proc = subprocess.Popen([*CLI, "emulator", "--port", "0", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env())
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, line
        yield line.split("listening on", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def counters(url: str) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(f"{url}/_emulator/counters", timeout=5).json()
    return data


def paid(url: str, operation: str) -> int:
    return sum(s["count"] for s in counters(url)["submissions"] if s["operation"] == operation)



@pytest.mark.slow
def test_sigkill_then_resume_pays_nothing_twice(tmp_path: Path) -> None:
    jobs = write_jobs(tmp_path, songs=6, instrumentals=6)
    out = tmp_path / "out"
    journal = out / "aiomusic-journal.sqlite"
    with emulator_process("--speed", "3", "--no-limits") as url:
        argv = [*CLI, *batch_args(jobs, out, url, "--plain", "--concurrency", "12")]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, env=env())
        assert proc.stdout is not None
        submitted = set()  # the journal is locked while the run holds it: watch its output
        for line in proc.stdout:
            if line.rstrip().endswith(": submitted"):
                submitted.add(line.split()[1])
            if len(submitted) >= 3:
                break
        proc.send_signal(signal.SIGKILL)
        proc.stdout.close()
        assert proc.wait(timeout=10) == -signal.SIGKILL
        rows = journal_rows(journal)
        with_task = {job: r["task_id"] for job, r in rows.items() if r["task_id"]}
        assert len(with_task) >= 3
        assert not list(out.glob("*.mp3")) or all(
            r["state"] == "completed" for r in rows.values()
            if (out / f"{r['id']}.mp3").exists())
        suno_paid = paid(url, "suno.add_instrumental")

        second = subprocess.run([*CLI, *batch_args(jobs, out, url, "--json")],
                                capture_output=True, text=True, env=env(), timeout=120,
                                check=False)
        lines = [json.loads(line) for line in second.stdout.splitlines()]
        outcomes = {d["id"]: d for d in lines if d["event"] == "job"}
        for job, task_id in with_task.items():
            assert outcomes[job]["status"] == "completed", outcomes[job]
            assert outcomes[job]["task_id"] == task_id and outcomes[job]["resumed"]
        # may have been charged: unknown, or taken and then lost by the killed run
        unknown = [j for j, d in outcomes.items() if d["status"] in ("unknown", "failed")]
        assert second.returncode == (1 if unknown else 0), second.stderr
        # nothing that had a task id was submitted again; only never-sent jobs were sent
        never_sent = [j for j in outcomes if j.startswith("inst-") and j not in with_task
                      and rows.get(j, {}).get("state") in (None, "pending")]
        assert paid(url, "suno.add_instrumental") == suno_paid + len(never_sent)

        third = subprocess.run([*CLI, *batch_args(jobs, out, url, "--json",
                                                  "--resubmit-unknown",
                                                  "--pay-again", "failed")],
                               capture_output=True, text=True, env=env(), timeout=120,
                               check=False)
        assert third.returncode == 0, third.stderr
        final = journal_rows(journal)
    assert {r["state"] for r in final.values()} == {"completed"}
    for job, r in final.items():
        assert r["task_id"] == with_task.get(job, r["task_id"])
        for f in json.loads(r["files"]):
            assert sha(out / f["path"]) == f["sha256"]
    assert not [p for p in out.iterdir() if p.name.startswith(".") and "part" in p.name]


def interrupted_batch(args: list[str]) -> str:
    """Run the CLI with ``args``, press Ctrl-C once a task is submitted; its stderr (exit 130)."""
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env())
    assert proc.stdout is not None
    for line in proc.stdout:
        if "submitted" in line:
            break
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.startswith("aiomusic: stopping cleanly (press Ctrl-C again to quit at once)\n")
    assert "Traceback" not in err and "ERROR" not in err
    return err


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_with_a_resume_hint(tmp_path: Path) -> None:
    jobs = write_jobs(tmp_path, songs=3, instrumentals=2)
    out = tmp_path / "out"
    with emulator_process("--speed", "4", "--no-limits") as url:
        err = interrupted_batch(batch_args(jobs, out, url, "--plain"))
        assert "run the same command again to resume" in err
        assert "embedded emulator" not in err  # its own server keeps the tasks
        rows = journal_rows(out / "aiomusic-journal.sqlite")
        assert {r["state"] for r in rows.values()} <= {"pending", "submitted", "unknown",
                                                        "completed"}
        assert "submitting" not in {r["state"] for r in rows.values()}
        again = subprocess.run([*CLI, *batch_args(jobs, out, url, "--plain",
                                                  "--resubmit-unknown",
                                                  "--pay-again", "failed")],
                               capture_output=True, text=True, env=env(), timeout=120,
                               check=False)
        assert again.returncode == 0, again.stderr
        assert "5 of 5 jobs done" in again.stdout


def test_ctrl_c_on_the_embedded_emulator_says_where_tasks_survive(tmp_path: Path) -> None:
    jobs = write_jobs(tmp_path, songs=1, instrumentals=2)
    out = tmp_path / "out"
    err = interrupted_batch(["batch", str(jobs), "--out", str(out), "--emulator", "--plain"])
    assert "run the same command again to resume" in err
    assert "embedded emulator's Suno tasks ended with this command" in err
    assert "`aiomusic emulator`" in err and "--base-url" in err

