"""Issue 23's findings: the command line speaks CLI, works offline against a loopback
emulator, shows only each command's own options, and says what it does."""

from __future__ import annotations

import argparse
import ast
import json
import re
import secrets
import sys
from pathlib import Path

import pytest

from aiomusic import BatchSummary
from aiomusic._core._errors import DownloadError
from aiomusic._io._download import check_download_url
from aiomusic.cli import build_parser, main
from aiomusic.cli._common import CLI_RENDERINGS, describe, for_cli, loopback_host
from aiomusic.cli._demo import write_demo_jobs
from aiomusic.cli._progress import summary_lines
from aiomusic.emulator import Emulator

from .conftest import make_wav

PACKAGE = Path(__file__).resolve().parent.parent / "aiomusic"
KEY = "sk-cli-real-DO-NOT-PRINT-1c2d"
ARGS = ["--title", "Night", "--tags", "piano", "--negative-tags", "metal"]


@pytest.fixture
def offline(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Emulator:
    """A user with only a key and `aiomusic emulator` running: no flags but the base URL."""
    for name in ("AIMLAPI_KEY", "MINIMAX_API_KEY", "AIOMUSIC_SUNO_CALLBACK_URL",
                 "AIOMUSIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SUNO_API_KEY", KEY)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "v.wav").write_bytes(make_wav(4.0))
    return emulator


def test_loopback_base_url_works_end_to_end_without_a_callback_url(
        offline: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: every Suno download after a paid success failed with "refusing to download
    over http ... MusicSession(allow_http_hosts=...)", and a callback URL was required."""
    code = main(["instrumental", "v.wav", *ARGS, "--out", "tracks", "--base-url", offline.url,
                 "--poll-interval", "0.01"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert len(list((tmp_path / "tracks").iterdir())) == 2
    assert out.splitlines()[0].startswith("task id: ")
    assert all(line.startswith(("task id: ", "wrote ")) for line in out.splitlines())


def test_base_url_from_the_environment(offline: Emulator, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AIOMUSIC_BASE_URL", offline.url)
    assert main(["credits"]) == 0
    assert capsys.readouterr().out.startswith("credits: ")


@pytest.mark.parametrize(("url", "host"), [
    ("http://127.0.0.1:8765", "127.0.0.1"), ("http://localhost:1", "localhost"),
    ("http://[::1]:8765", "::1"), ("http://127.9.9.9", "127.9.9.9"),
    ("http://10.0.0.5:8765", None), ("https://api.sunoapi.org", None), ("nonsense", None)])
def test_only_loopback_hosts_are_allowed_by_themselves(url: str, host: str | None) -> None:
    assert loopback_host(url) == host


def test_a_non_loopback_http_host_still_needs_the_flag_and_the_message_names_it() -> None:
    with pytest.raises(DownloadError) as caught:
        check_download_url("http://10.0.0.5/a.mp3", frozenset())
    assert "--allow-http-host HOST" in describe(caught.value)
    assert "MusicSession(" not in describe(caught.value)


# -- one message source, two renderings ------------------------------------------------------

_PYTHON_ADVICE = re.compile(r"MusicSession\([a-z_]+=|RetryPolicy\(|[a-z]+_key=\.\.\.|"
                            r"resubmit_unknown=True|session\.[a-z]+\.task\(|attach_receiver\(|"
                            r"callback_url=\.\.\.")


def _error_texts() -> list[str]:
    """Every string the package writes into messages that gives Python advice."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    _PYTHON_ADVICE.search(node.value) and not node.value.startswith("\n"):
                found.append(node.value)
    return found


def test_every_python_advice_has_a_command_line_rendering() -> None:
    texts = _error_texts()
    assert len(texts) >= 5
    for text in texts:
        # a docstring's example may keep its code; an error's advice may not
        if "``" in text or "::" in text or text.strip().startswith(("async with", "await")):
            continue
        rendered = for_cli(text.replace("{task_id!r}", "'t-1'"))
        assert not _PYTHON_ADVICE.search(rendered), (text, rendered)


@pytest.mark.parametrize(("said", "shown"), [
    ("no API key for aimlapi: pass aimlapi_key=... to MusicSession or set the AIMLAPI_KEY "
     "environment variable", "no API key for aimlapi: set the AIMLAPI_KEY environment "
     "variable (or --aimlapi-key)"),
    ("check the Suno key (the SUNO_API_KEY environment variable or suno_key=...)",
     "check the Suno key (the SUNO_API_KEY environment variable)"),
    ("re-submit on purpose with RetryPolicy(resubmit_unknown=True) if you accept",
     "re-submit on purpose with --resubmit-unknown if you accept"),
    ("resume it later with session.suno.task('abc')",
     "resume it later with `aiomusic task abc --wait`"),
])
def test_renderings(said: str, shown: str) -> None:
    assert for_cli(said) == shown
    assert len(CLI_RENDERINGS) >= 5


def test_a_wrong_key_names_the_environment_variable(offline: Emulator,
                                                    capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    from aiomusic.emulator import EmulatorConfig

    with Emulator(EmulatorConfig(api_keys=["the-right-key-000"])) as strict:
        assert main(["credits", "--base-url", strict.url]) == 1
    err = capsys.readouterr().err
    assert "SUNO_API_KEY" in err and "suno_key=" not in err and KEY not in err


# -- each command's own options, each with help ----------------------------------------------


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = sub
                found.update({f"{name} {k}": v for k, v in _subparsers(sub).items()})
    return found


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions for s in a.option_strings}


def test_each_command_shows_only_its_own_options() -> None:
    commands = _subparsers(build_parser())
    assert "--via" not in _options(commands["credits"])
    assert "--callback-url" not in _options(commands["credits"])
    assert "--callback-url" not in _options(commands["generate"])
    assert "--poll-interval" not in _options(commands["upload"])
    assert "--via" not in _options(commands["aimlapi generate"])
    assert {"--via", "--callback-url"} <= set(_options(commands["batch"]))
    # --via chooses music-01's host only: MiniMax's other models are always on its own hosts
    via = {name for name, parser in commands.items() if "--via" in _options(parser)}
    assert {"minimax music-01", "generate", "upload", "batch"} <= via
    assert not via & {"minimax song", "minimax cover", "minimax preprocess-cover",
                      "minimax lyrics", "minimax quota"}


def test_every_option_has_help() -> None:
    for name, parser in _subparsers(build_parser()).items():
        for action in parser._actions:
            if action.option_strings and action.help is None:
                pytest.fail(f"aiomusic {name} {action.option_strings[0]} has no help")


def test_help_lists_the_environment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["instrumental", "--help"])
    out = capsys.readouterr().out
    assert "AIOMUSIC_BASE_URL" in out and "SUNO_API_KEY" in out and "AIOMUSIC_LOG" in out


def test_the_emulator_shows_its_default_port(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["emulator", "--help"])
    assert "default: 8765" in capsys.readouterr().out


def test_config_prints_the_settings_with_keys_redacted(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SUNO_API_KEY", KEY)
    monkeypatch.delenv("AIMLAPI_KEY", raising=False)
    assert main(["config", "--json", "--base-url", "http://127.0.0.1:9"]) == 0
    out = capsys.readouterr().out
    found = json.loads(out)
    assert KEY not in out
    assert found["keys"]["SUNO_API_KEY"].startswith("set (sha256 ")
    assert found["keys"]["AIMLAPI_KEY"] == "not set"
    assert found["allow_http_hosts"] == ["127.0.0.1"]
    assert found["endpoints"]["suno"] == "http://127.0.0.1:9"


def test_the_emulator_without_its_extra_says_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name in [m for m in sys.modules if m.startswith("aiomusic.emulator")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if not installed
    assert main(["emulator"]) == 2
    err = capsys.readouterr().err
    assert "pip install -e '.[emulator]'" in err and "Traceback" not in err


# -- smaller findings ------------------------------------------------------------------------


def test_a_folder_given_as_the_job_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    assert main(["batch", str(tmp_path), "--out", str(tmp_path / "o"), "--emulator"]) == 2
    assert "is a folder: give the job file in it" in capsys.readouterr().err


def test_no_silly_rate_after_a_resume() -> None:
    """A resume that adopted one finished file read "3,612 songs per minute"."""
    quick = BatchSummary(total=3, completed=1, skipped=2, failed={}, unknown=0, retries=0,
                         retry_reasons={}, files=1, bytes=1000, seconds=0.02)
    assert "per minute" not in summary_lines(quick)[0]
    real = BatchSummary(total=3, completed=3, skipped=0, failed={}, unknown=0, retries=0,
                        retry_reasons={}, files=6, bytes=1000, seconds=30)
    assert "12 songs per minute" in summary_lines(real)[0]


def test_demo_songs_all_differ(tmp_path: Path) -> None:
    jobs = write_demo_jobs(tmp_path, songs=20, instrumentals=0, seed=1)
    lyrics = [json.loads(line)["lyrics"] for line in jobs.read_text().splitlines()]
    assert len(set(lyrics)) == 20


def test_a_thin_command_shows_a_spinner_on_a_terminal_and_prints_results_on_stdout(
        tmp_path: Path) -> None:
    """Before: generate, instrumental and task --wait were silent for minutes, and their
    progress went to stdout. Now a spinner (stage and elapsed time) runs on a terminal's
    stderr while stdout, piped here as in `$(aiomusic ...)`, carries only the results."""
    import os
    import pty
    import subprocess

    (tmp_path / "v.wav").write_bytes(make_wav(4.0))
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiomusic.cli", "instrumental", "v.wav", *ARGS, "--out", "t",
         "--emulator"], cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=slave, env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"})
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    out, _ = proc.communicate(timeout=60)
    os.close(master)
    terminal = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, terminal
    assert "suno.task" in terminal and " s)" in terminal  # the stage and the elapsed time
    lines = out.decode().splitlines()
    assert lines[0].startswith("task id: ") and all(
        line.startswith(("task id: ", "wrote ")) for line in lines)


@pytest.mark.parametrize("first", ["a", "-"])
def test_task_follows_an_ai_ml_generation_by_its_id(offline: Emulator, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str],
                                                    first: str) -> None:
    """AI/ML ids are nanoids: one in 32 starts with '-', which argparse reads as an option
    (CI once drew one). The command aiomusic prints to follow a task works for both."""
    import shlex

    from aiomusic.emulator import _aimlapi

    drawn = f"{first}Xy_9-{secrets.token_hex(8)}"
    monkeypatch.setattr(_aimlapi, "_new_id", lambda model: drawn)
    monkeypatch.setenv("AIMLAPI_KEY", KEY)
    where = ["--base-url", offline.url, "--poll-interval", "0.01"]
    assert main(["aimlapi", "generate", "--model", "stable-audio", "--prompt", "calm",
                 "--no-wait", *where]) == 0
    said = capsys.readouterr()
    task_id = said.out.split("task id: ")[1].strip()
    assert task_id == drawn
    printed = said.err.split("follow it with `")[1].split("`")[0]
    follow = shlex.split(printed)[1:]  # without the program's name
    assert main([follow[0], *where, *follow[1:]]) == 0, printed
    assert capsys.readouterr().out.startswith(f"wrote {task_id}.mp3: ")
    assert (tmp_path / f"{task_id}.mp3").stat().st_size > 1000
    by_hand = ["task", "--service", "aimlapi", *where, "--", task_id]
    assert main(by_hand) == 0
    assert capsys.readouterr().out.startswith(f"generation {task_id}: ")
    assert main(["task", "--service", "aimlapi", "--out", "got", "--json", *where,
                 "--", task_id]) == 0
    [result] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    [file] = result["files"]
    assert Path(file["path"]).parent == Path("got") and file["bytes"] > 1000


def test_a_task_command_puts_an_id_that_looks_like_an_option_last() -> None:
    from aiomusic.cli._common import task_command

    assert task_command("abc", "--wait") == "aiomusic task abc --wait"
    assert task_command("-abc", "--wait") == "aiomusic task --wait -- -abc"
    assert for_cli("resume it later with session.aimlapi.task('-x1')") == (
        "resume it later with `aiomusic task --service aimlapi --wait -- -x1`")


def test_an_ai_ml_id_names_its_service() -> None:
    """Real AI/ML generation ids end with ':<model>' ('e84c...:minimax/music-2.0')."""
    from aiomusic.cli._commands import task_service

    assert task_service("e84c6bd4-1:minimax/music-2.0", None) == "aimlapi"
    assert task_service("5c79be8e", None) == "suno"
    assert task_service("5c79be8e", "aimlapi") == "aimlapi"


def test_a_follow_up_submitted_without_waiting_is_followed_by_the_command_it_prints(
        offline: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where = ["--base-url", offline.url, "--poll-interval", "0.01"]
    assert main(["suno", "generate", "rain", "--out", "g", "--json", *where]) == 0
    [made] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    music_task = made["task_id"]
    assert main(["task", music_task, "--json", "--wait", *where]) == 0
    [done] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    audio_id = Path(done["tracks"][0]).stem.rsplit(".", 1)[0] if False else None
    import anyio

    from aiomusic import MusicSession

    async def first_track() -> str:
        async with MusicSession(suno_key=KEY, base_url=offline.url) as s:
            return (await s.suno.task(music_task).refresh()).tracks[0].id

    audio_id = anyio.run(first_track)
    for kind, op, names in (("stems", "stems", {"instrumental.mp3", "vocals.mp3"}),
                            ("wav", "wav", None), ("midi", "midi", None)):
        parent = music_task
        if kind == "midi":  # MIDI is made from a separation
            assert main(["suno", "stems", music_task, audio_id, "--no-wait", *where]) == 0
            parent = capsys.readouterr().out.split("task id: ")[1].strip()
            args = ["suno", "midi", parent, "--no-wait", *where]
        else:
            args = ["suno", op, music_task, audio_id, "--no-wait", *where]
        assert main(args) == 0
        captured = capsys.readouterr()
        task_id = captured.out.split("task id: ")[1].strip()
        follow = captured.err.split("follow it with `")[1].split("`")[0]
        assert follow == f"aiomusic task {task_id} --kind {kind} --wait --out ."
        assert main([*follow.split()[1:], *where]) == 0
        wrote = [line.removeprefix("wrote ") for line in capsys.readouterr().out.splitlines()]
        if names is not None:
            assert {Path(p).name for p in wrote} == names
        else:
            assert len(wrote) == 1 and Path(wrote[0]).stat().st_size > 10
