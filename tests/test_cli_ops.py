"""The generic verbs ``aiomusic <service> <operation>``, derived from the declarations, run
in-process through ``aiomusic.cli.main`` against the shared emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aiomusic._core._operation import operations, params_of
from aiomusic.cli import build_parser, main
from aiomusic.cli._ops import operations_markdown
from aiomusic.emulator import Emulator

from .conftest import make_wav

KEY = "sk-cli-ops-DO-NOT-PRINT-77aa"
ARGS = ["--title", "Night", "--tags", "piano", "--negative-tags", "metal"]


@pytest.fixture
def service(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    monkeypatch.setenv("SUNO_API_KEY", KEY)
    monkeypatch.setenv("AIMLAPI_KEY", KEY)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "v.wav").write_bytes(make_wav(4.0))
    return ["--base-url", emulator.url, "--poll-interval", "0.01"]


def test_every_declared_operation_has_a_verb_with_its_parameters() -> None:
    parser = build_parser()
    for op in operations():
        args = parser.parse_args([op.service, op.name, "--help"][:2] + _required(op))
        assert (args.command, args.op) == (op.service, op.name)


def _required(op: object) -> list[str]:
    found: list[str] = []
    for info in params_of(op.params):  # type: ignore[attr-defined]
        if info.required:
            value = "1" if info.kind in ("int", "float", "weight") else "x"
            found += [value] if info.positional else [info.cli, value]
    return found


def test_a_task_operation_runs_to_its_files(service: list[str], tmp_path: Path,
                                            emulator: Emulator,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["suno", "add-instrumental", "v.wav", *ARGS, "--out", "songs/night",
                 "--json", *service])
    out, err = capsys.readouterr()
    assert code == 0, err
    [result] = [json.loads(line) for line in out.splitlines()]
    assert result["status"] == "completed" and result["job"] == "suno.add-instrumental"
    names = sorted(Path(f["path"]).name for f in result["files"])
    assert names == ["night-1.mp3", "night-2.mp3"]
    assert all((tmp_path / "songs" / n).stat().st_size > 1000 for n in names)
    assert KEY not in out + err
    assert emulator.counters.paid(operation="suno.add_instrumental") == 1


def test_no_wait_prints_the_task_id(service: list[str],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suno", "instrumental", "v.wav", *ARGS, "--no-wait", *service]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith("task id: ")


def test_bad_values_name_the_flags_and_send_nothing(service: list[str], emulator: Emulator,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["suno", "add-instrumental", "v.wav", "--title", "", "--tags", "piano",
                 "--negative-tags", "metal", "--style-weight", "3", *service])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.splitlines() == ["aiomusic: --title: must be a non-empty string, got ''",
                                "aiomusic: --style-weight: must be from 0 to 1, got 3.0"]
    assert emulator.counters.paid() == 0


def test_a_service_failure_exits_1(service: list[str], emulator: Emulator,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    emulator.inject("generate_audio_failed", operation="suno.add_instrumental")
    assert main(["suno", "add-instrumental", "v.wav", *ARGS, *service]) == 1
    _, err = capsys.readouterr()
    assert "TaskFailedError" in err and "GENERATE_AUDIO_FAILED" in err


def test_music01_by_its_verb(service: list[str], tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ref.wav").write_bytes(make_wav(12.0))
    code = main(["minimax", "music-01", "--lyrics", "##la la##", "--reference", "ref.wav",
                 "--format", "wav", "--out", "song.wav", "--base-url", service[1]])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith(f"wrote {Path('song.wav')}: ")
    assert (tmp_path / "song.wav").read_bytes()[:4] == b"RIFF"


def test_docs_operations_page_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/operations.md is generated from the declarations; regenerate it with
    `aiomusic operations --markdown > docs/operations.md`."""
    page = Path(__file__).resolve().parent.parent / "docs" / "operations.md"
    assert page.read_text(encoding="utf-8") == operations_markdown()
    assert main(["operations"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in listed] == [[op.service, op.name]
                                                     for op in operations()]
    assert main(["operations", "--markdown"]) == 0
    assert capsys.readouterr().out == operations_markdown()
