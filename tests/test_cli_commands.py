"""The thin commands (``upload``, ``generate``, ``instrumental``, ``task``, ``credits``),
run in-process through ``aiomusic.cli.main`` against the shared emulator."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import mutagen
import pytest

from aiomusic.cli import main
from aiomusic.emulator import Emulator
from aiomusic.suno import PollSchedule
from aiomusic.suno import client as suno_client

from .conftest import make_wav

AIML_KEY = "sk-aiml-DO-NOT-PRINT-5e1f09c2"
SUNO_KEY = "sk-suno-DO-NOT-PRINT-93ab47d1"
FLAG_KEY = "sk-flag-DO-NOT-PRINT-0c77e3aa"
SECRETS = (AIML_KEY, SUNO_KEY, FLAG_KEY)
CALLBACK = "https://cb.invalid/x"
ARGS = ["--title", "Night Drive", "--tags", "piano, soft", "--negative-tags", "metal"]


@attrs.frozen
class Run:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    def json(self) -> list[dict[str, Any]]:
        """Every stdout line, parsed: --json prints nothing else."""
        objects = [json.loads(line) for line in self.lines]
        assert all(isinstance(o, dict) for o in objects)
        return objects

    def one(self) -> dict[str, Any]:
        [obj] = self.json()
        return obj


Runner = Callable[..., Run]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMLAPI_KEY", AIML_KEY)
    monkeypatch.setenv("SUNO_API_KEY", SUNO_KEY)
    for name in ("MINIMAX_API_KEY", "AIOMUSIC_SUNO_CALLBACK_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --emulator the CLI polls on the library's schedule (first poll after ~3 s);
    the shared emulator is instant, so tests shorten the default schedule."""
    monkeypatch.setattr(suno_client, "PollSchedule",
                        lambda: PollSchedule(initial=0.01, maximum=0.05))


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> Run:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    for secret in SECRETS:  # keys are never printed, whatever happened
        assert secret not in captured.out and secret not in captured.err
    return Run(code, captured.out, captured.err)


@pytest.fixture
def cli(emulator: Emulator, env: None, quick_polls: None,
        capsys: pytest.CaptureFixture[str]) -> Runner:
    """``cli("credits", "--json")``: the command against the shared emulator."""
    service = ["--base-url", emulator.url, "--allow-http-host", "127.0.0.1"]

    def run(*argv: str) -> Run:
        # each command takes only its own options: a callback URL only where tasks are sent
        tasks = ["--callback-url", CALLBACK] if argv[0] in ("instrumental", "task") else []
        return _run(capsys, [*argv, *service, *tasks])

    return run


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def playable_seconds(path: Path) -> float:
    audio = mutagen.File(path)
    assert audio is not None, path
    return float(audio.info.length)


def submit(cli: Runner, source: str | Path, *extra: str) -> str:
    run = cli("instrumental", str(source), *ARGS, "--no-wait", "--json", *extra)
    assert run.code == 0, run.err
    return str(run.one()["task_id"])


# -- upload ------------------------------------------------------------------------------------


def test_upload_song_reference(cli: Runner, reference_wav: Path, emulator: Emulator) -> None:
    run = cli("upload", str(reference_wav))
    assert run.code == 0, run.err
    # stdout carries only results; the stages go to stderr (so $(aiomusic upload ...) works)
    assert all(line.startswith(("voice_id: ", "instrumental_id: ")) for line in run.lines)
    voice = [line for line in run.lines if line.startswith("voice_id: ")]
    inst = [line for line in run.lines if line.startswith("instrumental_id: ")]
    assert len(voice) == len(inst) == 1
    voice_id, inst_id = voice[0].split(": ")[1], inst[0].split(": ")[1]
    assert voice_id != "-" and inst_id != "-"
    assert voice_id in emulator.app.state.refs and inst_id in emulator.app.state.refs
    assert "  ..  minimax.upload reference.wav: uploading" in run.err


@pytest.mark.parametrize(("purpose", "voice", "instrumental"), [
    ("song", True, True), ("voice", True, False), ("instrumental", False, True)])
def test_upload_purposes_json(cli: Runner, reference_wav: Path, emulator: Emulator,
                              purpose: str, voice: bool, instrumental: bool) -> None:
    run = cli("upload", str(reference_wav), "--purpose", purpose, "--json")
    assert run.code == 0, run.err
    data = run.one()
    assert set(data) == {"purpose", "voice_id", "instrumental_id", "trace_id"}
    assert data["purpose"] == purpose
    assert (data["voice_id"] is not None) is voice
    assert (data["instrumental_id"] is not None) is instrumental
    assert data["trace_id"]
    for ref_id in (data["voice_id"], data["instrumental_id"]):
        if ref_id is not None:
            assert ref_id in emulator.app.state.refs


def test_upload_voice_plain_shows_a_dash_for_the_missing_id(cli: Runner,
                                                            reference_wav: Path) -> None:
    run = cli("upload", str(reference_wav), "--purpose", "voice")
    assert run.code == 0, run.err
    assert "instrumental_id: -" in run.lines
    assert any(line.startswith("voice_id: vocal") for line in run.lines)


def test_upload_to_suno(cli: Runner, tmp_path: Path, emulator: Emulator) -> None:
    vocals = tmp_path / "my vocals.wav"
    vocals.write_bytes(make_wav(3.0))
    before = dt.datetime.now(dt.UTC)
    run = cli("upload", str(vocals), "--suno")
    assert run.code == 0, run.err
    [line] = [x for x in run.lines if x.startswith("uploaded: ")]
    assert line.startswith(f"uploaded: {emulator.url}/") and line.endswith(" UTC)")
    assert "(kept until " in line
    kept = dt.datetime.strptime(line.split("(kept until ")[1][:16], "%Y-%m-%d %H:%M")
    assert dt.timedelta(days=2) < kept.replace(tzinfo=dt.UTC) - before < dt.timedelta(days=4)


def test_upload_to_suno_json(cli: Runner, reference_wav: Path, emulator: Emulator) -> None:
    run = cli("upload", str(reference_wav), "--suno", "--json")
    assert run.code == 0, run.err
    data = run.one()
    assert set(data) == {"download_url", "file_name", "expires_at"}
    assert data["download_url"].startswith(emulator.url + "/")
    assert data["file_name"].endswith("reference.wav")
    expires = dt.datetime.fromisoformat(data["expires_at"])
    assert expires.tzinfo is not None and expires > dt.datetime.now(dt.UTC)
    stored = [f for f in emulator.app.state.files.values() if f.name == data["file_name"]]
    assert len(stored) == 1 and stored[0].data == make_wav(12.0)


# -- generate ----------------------------------------------------------------------------------


def test_generate_with_a_reference(cli: Runner, reference_wav: Path, tmp_path: Path,
                                   emulator: Emulator) -> None:
    out = tmp_path / "songs" / "first.mp3"
    out.parent.mkdir()
    run = cli("generate", str(out), "--lyrics", "##Hello##\\nworld", "--reference",
              str(reference_wav))
    assert run.code == 0, run.err
    size = out.stat().st_size
    [wrote] = [line for line in run.lines if line.startswith("wrote ")]
    assert wrote.startswith(f"wrote {out}: {size} bytes, ")
    assert wrote.endswith(f" s, sha256 {sha256(out)}")
    assert playable_seconds(out) > 1
    assert emulator.counters.paid(key=AIML_KEY) == 1
    assert len(emulator.app.state.refs) == 2  # the song upload's voice and instrumental


def test_generate_with_ids_json(cli: Runner, reference_wav: Path, tmp_path: Path) -> None:
    ids = cli("upload", str(reference_wav), "--json").one()
    out = tmp_path / "song.wav"
    run = cli("generate", str(out), "--lyrics", "la la", "--voice-id", ids["voice_id"],
              "--instrumental-id", ids["instrumental_id"], "--format", "wav",
              "--sample-rate", "32000", "--bitrate", "128000", "--json")
    assert run.code == 0, run.err
    data = run.one()
    assert set(data) == {"path", "bytes", "duration", "sha256", "trace_id"}
    assert data["path"] == str(out)
    assert data["bytes"] == out.stat().st_size and data["sha256"] == sha256(out)
    assert data["trace_id"]
    assert out.read_bytes()[:4] == b"RIFF"
    assert data["duration"] is None or data["duration"] > 0


def test_generate_with_a_voice_only(cli: Runner, reference_wav: Path, tmp_path: Path) -> None:
    voice = cli("upload", str(reference_wav), "--purpose", "voice", "--json").one()["voice_id"]
    out = tmp_path / "v.mp3"
    run = cli("generate", str(out), "--lyrics", "sing", "--voice-id", voice, "--json")
    assert run.code == 0, run.err
    assert run.one()["sha256"] == sha256(out)


def test_generate_lyrics_file(cli: Runner, reference_wav: Path, tmp_path: Path,
                              emulator: Emulator) -> None:
    lyrics = tmp_path / "lyrics.txt"
    lyrics.write_text("##Verse one##\nline two\n", encoding="utf-8")
    out = tmp_path / "from-file.mp3"
    run = cli("generate", str(out), "--lyrics-file", str(lyrics), "--reference",
              str(reference_wav), "--purpose", "instrumental", "--json")
    assert run.code == 0, run.err
    assert run.one()["bytes"] == out.stat().st_size > 0
    assert emulator.counters.paid(key=AIML_KEY) == 1


def test_generate_lyrics_and_lyrics_file_exclude_each_other(
        cli: Runner, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli("generate", str(tmp_path / "x.mp3"), "--lyrics", "a", "--lyrics-file", "f.txt")
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli("generate", str(tmp_path / "x.mp3"))
    assert info.value.code == 2


def test_generate_bad_format_is_a_usage_error(cli: Runner, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli("generate", str(tmp_path / "x.ogg"), "--lyrics", "a", "--format", "ogg")
    assert info.value.code == 2
    assert "invalid choice: 'ogg'" in capsys.readouterr().err


def test_generate_bad_bitrate_exits_2(cli: Runner, tmp_path: Path,
                                      emulator: Emulator) -> None:
    out = tmp_path / "x.mp3"
    run = cli("generate", str(out), "--lyrics", "a", "--voice-id", "vocal-1", "--bitrate", "1")
    assert run.code == 2
    assert run.err.startswith("aiomusic: InputError: audio setting: ")
    assert "'bitrate' must be in (32000, 64000, 128000, 256000) (got 1)" in run.err
    assert run.out == "" and not out.exists() and emulator.counters.paid() == 0


def test_generate_bad_bitrate_message_is_one_readable_line(cli: Runner, tmp_path: Path) -> None:
    run = cli("generate", str(tmp_path / "x.mp3"), "--lyrics", "a", "--voice-id", "v",
              "--sample-rate", "22050")
    assert run.code == 2
    assert "Attribute(" not in run.err and len(run.err) < 200


def test_generate_too_long_lyrics_file_exits_2(cli: Runner, tmp_path: Path,
                                               emulator: Emulator) -> None:
    lyrics = tmp_path / "long.txt"
    lyrics.write_text("a" * 601)
    run = cli("generate", str(tmp_path / "x.mp3"), "--lyrics-file", str(lyrics),
              "--voice-id", "vocal-1")
    assert run.code == 2
    assert run.err == ("aiomusic: InputError: lyrics are 601 characters; music-01 takes at "
                       "most 600\n")
    assert emulator.counters.paid() == 0


def test_generate_missing_lyrics_file_exits_1(cli: Runner, tmp_path: Path) -> None:
    run = cli("generate", str(tmp_path / "x.mp3"), "--lyrics-file",
              str(tmp_path / "absent.txt"), "--voice-id", "vocal-1")
    assert run.code == 1
    assert run.err == f"aiomusic: No such file or directory: {tmp_path / 'absent.txt'}\n"


# -- instrumental ------------------------------------------------------------------------------


def test_instrumental_waits_and_downloads(cli: Runner, tmp_path: Path,
                                          emulator: Emulator) -> None:
    vocals = tmp_path / "vocals.wav"
    vocals.write_bytes(make_wav(3.0))
    out = tmp_path / "tracks"
    run = cli("instrumental", str(vocals), *ARGS, "--out", str(out))
    assert run.code == 0, run.err
    [task_line] = [line for line in run.lines if line.startswith("task id: ")]
    task_id = task_line.removeprefix("task id: ")
    assert task_id in emulator.app.state.tasks
    wrote = [line for line in run.lines if line.startswith("wrote ")]
    files = sorted(out.iterdir())
    assert len(files) == len(wrote) == 2
    for path in files:
        assert f"wrote {path}: {path.stat().st_size} bytes, sha256 {sha256(path)}" in wrote
        assert playable_seconds(path) > 1
    assert "  ..  suno.upload" in run.err  # the local file went up first (stages: stderr)
    assert emulator.counters.paid(key=SUNO_KEY, operation="suno.add_instrumental") == 1
    param = emulator.app.state.tasks[task_id].param
    assert param["callBackUrl"] == CALLBACK and param["title"] == "Night Drive"
    assert param["uploadUrl"].startswith(emulator.url)


def test_instrumental_json_with_every_option(cli: Runner, tmp_path: Path,
                                             emulator: Emulator) -> None:
    url = cli("upload", str(_vocals(tmp_path)), "--suno", "--json").one()["download_url"]
    out = tmp_path / "new" / "folder"
    run = cli("instrumental", url, *ARGS, "--vocal-gender", "f", "--style-weight", "0.61",
              "--weirdness-constraint", "0.72", "--audio-weight", "0.65", "--model", "V5",
              "--out", str(out), "--json")
    assert run.code == 0, run.err
    data = run.one()
    assert data["status"] == "SUCCESS"
    assert len(data["files"]) == 2
    for item in data["files"]:
        path = Path(item["path"])
        assert path.parent == out
        assert item["bytes"] == path.stat().st_size and item["sha256"] == sha256(path)
    param = emulator.app.state.tasks[data["task_id"]].param
    assert param == {"uploadUrl": url, "title": "Night Drive", "tags": "piano, soft",
                     "negativeTags": "metal", "callBackUrl": CALLBACK, "model": "V5",
                     "vocalGender": "f", "styleWeight": 0.61, "weirdnessConstraint": 0.72,
                     "audioWeight": 0.65}


def _vocals(folder: Path) -> Path:
    path = folder / "vocals.wav"
    path.write_bytes(make_wav(3.0))
    return path


def test_instrumental_no_wait(cli: Runner, tmp_path: Path, emulator: Emulator) -> None:
    out = tmp_path / "never"
    run = cli("instrumental", str(_vocals(tmp_path)), *ARGS, "--no-wait", "--out", str(out))
    assert run.code == 0, run.err
    [task_line] = [line for line in run.lines if line.startswith("task id: ")]
    assert task_line.removeprefix("task id: ") in emulator.app.state.tasks
    assert not out.exists() and not any(line.startswith("wrote ") for line in run.lines)


def test_instrumental_no_wait_json(cli: Runner, tmp_path: Path, emulator: Emulator) -> None:
    run = cli("instrumental", str(_vocals(tmp_path)), *ARGS, "--no-wait", "--json")
    assert run.code == 0, run.err
    data = run.one()
    assert data["status"] == "submitted" and data["task_id"] in emulator.app.state.tasks
    assert set(data) == {"task_id", "status"}


@pytest.mark.parametrize("bad", [["--style-weight", "x"], ["--vocal-gender", "x"],
                                 ["--title"]])
def test_instrumental_usage_errors(cli: Runner, bad: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli("instrumental", "https://example.com/a.mp3", *ARGS, *bad)
    assert info.value.code == 2


def test_instrumental_task_failure_exits_1(cli: Runner, emulator: Emulator,
                                           tmp_path: Path) -> None:
    emulator.inject("sensitive_word_error", operation="suno.add_instrumental")
    run = cli("instrumental", str(_vocals(tmp_path)), *ARGS, "--out", str(tmp_path / "o"))
    assert run.code == 1
    assert run.err.splitlines()[-1].startswith("aiomusic: TaskFailedError: Suno task ")
    assert "SENSITIVE_WORD_ERROR" in run.err
    assert any(line.startswith("task id: ") for line in run.lines)  # printed before the wait
    assert list((tmp_path / "o").iterdir()) == []  # checked before paying; nothing written


def test_upload_missing_file_exits_2(cli: Runner, tmp_path: Path, emulator: Emulator) -> None:
    for extra in ([], ["--suno"]):
        run = cli("upload", str(tmp_path / "absent.wav"), *extra)
        assert run.code == 2
        assert run.err.startswith("aiomusic: InputError: ") and "absent.wav" in run.err
    assert sum(emulator.counters.requests.values()) == 0


def test_instrumental_weight_out_of_range_exits_2(cli: Runner, emulator: Emulator) -> None:
    run = cli("instrumental", "https://example.com/a.mp3", *ARGS, "--style-weight", "1.5")
    assert run.code == 2
    assert run.err == "aiomusic: InputError: style_weight must be from 0 to 1, got 1.5\n"
    assert emulator.counters.paid() == 0 and sum(emulator.counters.requests.values()) == 0


# -- task --------------------------------------------------------------------------------------


def test_task_status(cli: Runner, tmp_path: Path) -> None:
    task_id = submit(cli, _vocals(tmp_path))
    run = cli("task", task_id)
    assert run.code == 0, run.err
    lines = [line for line in run.lines if not line.startswith("  ..  ")]  # progress
    assert lines[0] == f"task {task_id}: SUCCESS"
    tracks = lines[1:]
    assert len(tracks) == 2
    assert all(line.startswith("  ") and "Night Drive" in line and "http://127.0.0.1" in line
               for line in tracks)


def test_task_status_json(cli: Runner, tmp_path: Path, emulator: Emulator) -> None:
    task_id = submit(cli, _vocals(tmp_path))
    data = cli("task", task_id, "--json").one()
    assert data["task_id"] == task_id and data["status"] == "SUCCESS"
    assert len(data["tracks"]) == 2
    assert all(t["audio_url"].startswith(emulator.url) and t["title"] == "Night Drive"
               for t in data["tracks"])
    assert len({t["id"] for t in data["tracks"]}) == 2


def test_task_wait(cli: Runner, tmp_path: Path) -> None:
    task_id = submit(cli, _vocals(tmp_path))
    run = cli("task", task_id, "--wait")
    assert run.code == 0, run.err
    assert f"task {task_id}: SUCCESS, 2 tracks" in run.lines
    data = cli("task", task_id, "--wait", "--json").one()
    assert data["status"] == "SUCCESS" and data["task_id"] == task_id
    assert len(data["tracks"]) == 2 and all(u.startswith("http") for u in data["tracks"])


def test_task_out_downloads(cli: Runner, tmp_path: Path) -> None:
    task_id = submit(cli, _vocals(tmp_path))
    out = tmp_path / "dl"
    run = cli("task", task_id, "--out", str(out))
    assert run.code == 0, run.err
    files = sorted(out.iterdir())
    assert len(files) == 2
    for path in files:
        assert f"wrote {path}: {path.stat().st_size} bytes, sha256 {sha256(path)}" in run.lines
    again = cli("task", task_id, "--out", str(tmp_path / "dl2"), "--json").one()
    assert again["task_id"] == task_id and again["status"] == "SUCCESS"
    assert sorted(f["sha256"] for f in again["files"]) == sorted(sha256(p) for p in files)


def test_task_unknown_id_exits_1(cli: Runner) -> None:
    run = cli("task", "0" * 32)
    assert run.code == 1
    assert run.err.startswith("aiomusic: BadRequestError: ") and "taskId not found" in run.err
    json_run = cli("task", "0" * 32, "--json")
    assert json_run.code == 1 and json_run.out == ""
    assert json_run.err.startswith("aiomusic: BadRequestError: ")


# -- credits -----------------------------------------------------------------------------------


def test_credits(cli: Runner, emulator: Emulator) -> None:
    emulator.set_credits(4321, key=SUNO_KEY)
    run = cli("credits")
    assert run.code == 0, run.err
    assert run.out == "credits: 4321\n"
    assert cli("credits", "--json").one() == {"credits": 4321}


def test_key_flag_wins_over_the_environment(cli: Runner, emulator: Emulator) -> None:
    emulator.set_credits(11, key=SUNO_KEY)
    emulator.set_credits(22, key=FLAG_KEY)
    assert cli("credits", "--suno-key", FLAG_KEY, "--json").one() == {"credits": 22}


def test_plain_flag(cli: Runner, emulator: Emulator) -> None:
    emulator.set_credits(5, key=SUNO_KEY)
    assert cli("credits", "--plain").out == "credits: 5\n"


def test_missing_key_exits_2_naming_the_variable(cli: Runner, emulator: Emulator,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUNO_API_KEY")
    run = cli("credits")
    assert run.code == 2
    assert run.err.startswith("aiomusic: ConfigurationError: no API key for suno")
    assert "set the SUNO_API_KEY environment variable" in run.err
    assert run.out == "" and sum(emulator.counters.requests.values()) == 0


def test_missing_aimlapi_key_exits_2(cli: Runner, reference_wav: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIMLAPI_KEY")
    run = cli("upload", str(reference_wav), "--json")
    assert run.code == 2 and "AIMLAPI_KEY" in run.err and run.out == ""


@pytest.mark.parametrize(("fault", "error"), [("invalid_hex", "AudioDecodeError"),
                                             ("malformed_json", "SubmissionUnknownError")])
def test_service_error_exits_1_with_its_type(cli: Runner, reference_wav: Path, tmp_path: Path,
                                             emulator: Emulator, fault: str,
                                             error: str) -> None:
    voice = cli("upload", str(reference_wav), "--purpose", "voice", "--json").one()["voice_id"]
    emulator.inject(fault, operation="aiml.generate")
    out = tmp_path / "x.mp3"
    run = cli("generate", str(out), "--lyrics", "a", "--voice-id", voice, "--json")
    assert run.code == 1
    assert run.err.startswith(f"aiomusic: {error}: ")
    assert run.out == "" and not out.exists()
    assert emulator.counters.fired(fault, operation="aiml.generate") == 1


def test_refused_request_exits_1(cli: Runner, tmp_path: Path) -> None:
    run = cli("generate", str(tmp_path / "x.mp3"), "--lyrics", "a", "--voice-id", "vocal-1")
    assert run.code == 1
    assert run.err.startswith("aiomusic: BadRequestError: ") and "'vocal-1'" in run.err


# -- the embedded emulator ---------------------------------------------------------------------


def test_embedded_emulator_needs_no_key(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("AIMLAPI_KEY", "SUNO_API_KEY", "MINIMAX_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    run = _run(capsys, ["credits", "--emulator", "--json"])
    assert run.code == 0, run.err
    assert run.one() == {"credits": 100_000}
    assert "aiomusic-emulator-key" not in run.out + run.err


def test_embedded_emulator_instrumental(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The real waiting path: the embedded emulator's seconds-long tasks, its fast polls."""
    monkeypatch.delenv("SUNO_API_KEY", raising=False)
    out = tmp_path / "emb"
    run = _run(capsys, ["instrumental", str(_vocals(tmp_path)), *ARGS, "--emulator",
                        "--out", str(out), "--json"])
    assert run.code == 0, run.err
    data = run.one()
    assert data["status"] == "SUCCESS" and len(data["files"]) == 2
    assert sorted(f["sha256"] for f in data["files"]) == \
        sorted(sha256(p) for p in out.iterdir())
