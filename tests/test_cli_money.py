"""Issue 15's command-line findings, as users meet them: piped and under a pseudo-terminal.

``aiomusic generate nodir/x.mp3`` paid, then failed; a mixed batch with only ``SUNO_API_KEY``
paid for its Suno jobs; a full disk ended in a raw ``sqlite3.OperationalError``. Now every
local problem stops the command before the first paid byte (exit 2, "nothing was sent"), and
``--report`` and ``--pay-again`` make the ledger readable and re-payment explicit.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiomusic.emulator import Emulator, EmulatorConfig, Limits, Timings

from .test_batch import KEY, write_jobs
from .test_cli_batch import CLI, SERVICE, env, run_in_pty
from .test_money_safety import fill

PAID_PATHS = ("/v2/generate/audio/minimax/generate", "/api/v1/generate/add-instrumental")


def piped(*args: str, environ: dict[str, str] | None = None, timeout: float = 120
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True,
                          env=environ or env(), timeout=timeout, check=False)


def sent(emulator: Emulator) -> int:
    return sum(emulator.counters.requests[p] for p in PAID_PATHS)


def test_generate_into_a_new_folder_pays_once_and_writes(emulator: Emulator,
                                                         tmp_path: Path) -> None:
    (tmp_path / "ref.wav").write_bytes(_wav())
    voice = json.loads(piped("upload", str(tmp_path / "ref.wav"), "--purpose", "voice",
                             "--json", "--base-url", emulator.url).stdout)["voice_id"]
    done = piped("generate", str(tmp_path / "nodir" / "x.mp3"), "--lyrics", "la",
                 "--voice-id", voice, "--base-url", emulator.url)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "nodir" / "x.mp3").stat().st_size > 0
    status, text = run_in_pty([*CLI, "generate", str(tmp_path / "deeper" / "a" / "y.wav"),
                               "--lyrics", "la", "--voice-id", voice, "--base-url",
                               emulator.url])
    assert status == 0, text
    # no --format: the extension said wav, and wav was asked for
    assert (tmp_path / "deeper" / "a" / "y.wav").read_bytes()[:4] == b"RIFF"
    assert emulator.counters.paid() == 2


def test_a_format_the_name_contradicts_sends_nothing(emulator: Emulator,
                                                     tmp_path: Path) -> None:
    done = piped("generate", str(tmp_path / "song.wav"), "--format", "mp3", "--lyrics", "la",
                 "--voice-id", "vocal-1", "--base-url", emulator.url)
    assert done.returncode == 2
    assert "'song.wav' says wav but the output format is mp3" in done.stderr
    assert "nothing was sent" in done.stderr
    assert sum(emulator.counters.requests.values()) == 0


def _only_suno() -> dict[str, str]:
    environ = {k: v for k, v in env().items() if k not in ("AIMLAPI_KEY", "MINIMAX_API_KEY")}
    return {**environ, "SUNO_API_KEY": KEY}


def test_a_mixed_batch_without_every_key_sends_nothing(emulator: Emulator,
                                                       tmp_path: Path) -> None:
    jobs = write_jobs(tmp_path, songs=2, instrumentals=2)
    args = ["batch", str(jobs), "--out", str(tmp_path / "out"), "--base-url", emulator.url,
            *SERVICE]
    done = piped(*args, environ=_only_suno())
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no API key for aimlapi" in done.stderr and "nothing was sent" in done.stderr
    assert "Traceback" not in done.stderr
    status, text = run_in_pty(["env", "-u", "AIMLAPI_KEY", *CLI, *args])
    assert status == 2, text
    assert "no API key for aimlapi" in text and "nothing was sent" in text
    assert sum(emulator.counters.requests.values()) == 0


def test_a_wrong_suno_key_is_caught_by_a_free_call(tmp_path: Path) -> None:
    config = EmulatorConfig(api_keys={KEY}, timings=Timings.instant(), limits=Limits.off())
    with Emulator(config) as strict:
        jobs = write_jobs(tmp_path, songs=0, instrumentals=3)
        status, text = run_in_pty([*CLI, "batch", str(jobs), "--out", str(tmp_path / "o"),
                                   "--base-url", strict.url, *SERVICE, "--suno-key",
                                   "sk-wrong-key-123"])
        counters = strict.counters
    assert status == 2, text
    assert "the Suno key was refused" in text and "nothing was sent" in text
    assert counters.paid() == 0 and dict(counters.requests) == {"/api/v1/generate/credit": 1}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where = tmp_path / "disk"
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "none", str(where)],
                      check=False, capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_is_a_typed_stop_and_the_rerun_pays_nothing_twice(
        small_disk: Path, tmp_path: Path) -> None:
    config = EmulatorConfig(timings=Timings.instant(), limits=Limits.off(),
                            generate_audio_bytes=1_500_000)
    jobs = write_jobs(tmp_path / "jobs", songs=5, instrumentals=0)
    with Emulator(config) as emu:
        args = ["batch", str(jobs), "--out", str(small_disk / "out"), "--base-url", emu.url,
                *SERVICE, "--concurrency", "1", "--plain"]
        first = piped(*args)
        assert first.returncode == 1, first.stdout + first.stderr  # some were paid and made
        assert "BatchStoppedError" in first.stderr and "MiB free" in first.stderr
        assert "Traceback" not in first.stderr and "sqlite3" not in first.stderr
        assert "stay pending" in first.stdout
        made = emu.counters.paid()
        assert 1 <= made < 5
        fill(small_disk)  # and now not even the journal has room
        full = piped(*args)
        assert full.returncode == 2, full.stdout + full.stderr
        assert "Traceback" not in full.stderr and emu.counters.paid() == made
        (small_disk / "ballast").unlink()
        subprocess.run(["mount", "-o", "remount,size=40m", str(small_disk)], check=True)
        again = piped(*args)
        assert again.returncode == 0, again.stdout + again.stderr
        assert emu.counters.paid() == 5  # no duplicate


def test_report_and_pay_again(emulator: Emulator, tmp_path: Path) -> None:
    jobs = write_jobs(tmp_path, songs=2, instrumentals=1)
    out = tmp_path / "out"
    emulator.inject("malformed_json", operation="aiml.generate")
    args = ["batch", str(jobs), "--out", str(out), "--base-url", emulator.url, *SERVICE]
    first = piped(*args, "--json")
    assert first.returncode == 1
    summary = json.loads(first.stdout.splitlines()[-1])
    assert summary["submissions"] == {"taken": 2, "refused": 0, "unknown": 1,
                                      "failed_after_taken": 0}
    (unknown,) = summary["to_check"]
    assert unknown["fate"] == "unknown" and unknown["job"].startswith("song-")
    before = dict(emulator.counters.requests)
    no_keys = {k: v for k, v in env().items() if not k.endswith("_KEY")}
    report = piped("batch", str(jobs), "--out", str(out), "--report", environ=no_keys)
    assert report.returncode == 0, report.stderr
    assert "paid attempts: 2 taken, 1 unknown" in report.stdout
    assert f"{unknown['job']}: unknown" in report.stdout
    assert report.stdout.count(" run 1 attempt 1 ") == 3
    as_json = piped("batch", str(jobs), "--journal", str(out / "aiomusic-journal.sqlite"),
                    "--report", "--json", environ=no_keys)
    objects = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [o["event"] for o in objects] == ["attempt"] * 3 + ["report"]
    assert objects[-1]["submissions"] == {"taken": 2, "unknown": 1}
    assert dict(emulator.counters.requests) == before  # a report sends nothing
    status, text = run_in_pty([*CLI, *args])
    assert status == 1 and "to pay for them again: --pay-again unknown" in text
    assert piped(*args, "--pay-again", "everything").returncode == 2
    help_text = piped("batch", "--help").stdout
    assert "options that may cost money" in help_text and "MAY COST MONEY" in help_text
    again = piped(*args, "--pay-again", unknown["job"], "--json")
    assert again.returncode == 0, again.stderr
    assert emulator.counters.paid() == 4


def _wav() -> bytes:
    from .conftest import make_wav

    return make_wav(12.0)


def test_a_read_only_output_folder_sends_nothing(emulator: Emulator, small_disk: Path,
                                                 tmp_path: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    jobs = write_jobs(tmp_path / "jobs", songs=2, instrumentals=1)
    base = ["batch", str(jobs), "--out", str(small_disk), "--base-url", emulator.url, *SERVICE]
    in_it = piped(*base)  # the journal would live there too
    assert in_it.returncode == 2, in_it.stdout + in_it.stderr
    assert "cannot open the journal" in in_it.stderr
    beside = piped(*base, "--journal", str(tmp_path / "j.sqlite"))
    assert beside.returncode == 2, beside.stdout + beside.stderr
    assert f"cannot write in {small_disk}" in beside.stderr
    assert "nothing was sent" in beside.stderr and "Traceback" not in beside.stderr
    assert sum(emulator.counters.requests.values()) == 0


def test_report_needs_a_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from aiomusic.cli import main

    base = ["batch", str(tmp_path / "jobs.jsonl"), "--out", str(tmp_path), "--report"]
    assert main([*base, "--no-journal"]) == 2
    assert "drop --no-journal" in capsys.readouterr().err
    assert main(base) == 2
    assert "no journal at" in capsys.readouterr().err
    (tmp_path / "aiomusic-journal.sqlite").write_text("not a journal")
    assert main(base) == 2
    assert "JournalError" in capsys.readouterr().err
    assert main(["batch", "x.jsonl", "--report"]) == 2  # neither --out nor --journal
