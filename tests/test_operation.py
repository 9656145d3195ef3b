"""Operation declarations: parameters, problem collection, the registry, fingerprints."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from aiomusic import InputError
from aiomusic._core._config import LaneKind, Service
from aiomusic._core._models import TaskRecord, TaskStatus, Track
from aiomusic._core._operation import (
    Checks,
    Context,
    Delivery,
    Operation,
    Output,
    find,
    operations,
    param,
    params_of,
    register,
)
from aiomusic._core._task import Phase
from aiomusic.suno._ops import ADD_INSTRUMENTAL, MUSIC_TASK, music_snapshot


@attrs.frozen
class _Params:
    name: str = param(help="a name", max_length=5, positional=True)
    count: int = param(help="how many", kind="int", default=1, minimum=1, maximum=3)
    where: Path | None = param(help="a file", kind="file", default=None, cli="--in")


def test_params_of_reads_the_declarations() -> None:
    name, count, where = params_of(_Params)
    assert (name.required, name.positional, name.max_length, name.cli) == (True, True, 5,
                                                                           "--name")
    assert (count.required, count.default, count.kind, count.minimum) == (False, 1, "int", 1)
    assert (where.cli, where.kind) == ("--in", "file")


@pytest.mark.parametrize(
    ("value", "kwargs", "problem"),
    [
        pytest.param(None, {}, "is required", id="missing"),
        pytest.param(3, {}, "must be a string, got int", id="not-a-string"),
        pytest.param("  ", {}, "must not be empty", id="blank"),
        pytest.param("abcdef", {"max_length": 5}, "at most 5 characters, got 6", id="long"),
        pytest.param("ab", {"min_length": 3}, "at least 3 characters, got 2", id="short"),
    ],
)
def test_checks_text(value: object, kwargs: dict[str, int], problem: str) -> None:
    checks = Checks()
    assert checks.text("f", value, **kwargs) is None or problem.startswith("at")
    assert not checks
    assert problem in checks.problems[0].message


@pytest.mark.parametrize(
    ("value", "kwargs", "problem"),
    [
        pytest.param(True, {}, "must be a number", id="bool"),
        pytest.param(1.5, {"integer": True}, "must be an integer", id="float-for-int"),
        pytest.param(10**400, {}, "far too large", id="huge"),
        pytest.param(float("nan"), {}, "finite", id="nan"),
        pytest.param(0, {"minimum": 1, "maximum": 3}, "from 1 to 3", id="range"),
        pytest.param(9, {"maximum": 3}, "at most 3", id="maximum"),
        pytest.param(-1, {"minimum": 0}, "at least 0", id="minimum"),
    ],
)
def test_checks_number(value: object, kwargs: dict[str, object], problem: str) -> None:
    checks = Checks()
    assert checks.number("n", value, **kwargs) is None  # type: ignore[arg-type]
    assert problem in checks.problems[0].message


def test_checks_number_and_choice_pass_valid_values() -> None:
    checks = Checks()
    assert checks.number("n", 2, integer=True, minimum=1, maximum=3) == 2.0
    assert checks.number("n", None) is None
    assert checks.choice("m", "V5", ("V5",)) == "V5"
    assert checks.choice("m", "V9", ("V5",), open_ended=True) == "V9"
    assert checks.choice("m", None, ("V5",)) is None
    assert checks.text("t", None, required=False) is None
    checks.exclusive(("a", "x"), ("b", None))
    assert checks
    checks.raise_first()  # nothing to raise


def test_checks_collects_every_problem_and_raises_the_first() -> None:
    checks = Checks()
    checks.choice("model", "V0", ("V5",))
    checks.choice("model", "", ("V5",))
    checks.exclusive(("lyrics", "la"), ("is_instrumental", True), why="an instrumental")
    assert checks.failed("model") and not checks.failed("prompt")
    with pytest.raises(InputError) as caught:
        checks.raise_first()
    assert caught.value.field == "model"
    assert str(caught.value).startswith("model: must be one of V5, got 'V0' (and 2 more")
    problems = caught.value.problems  # type: ignore[attr-defined]
    assert [p.field for p in problems] == ["model", "model", "is_instrumental"]
    assert "cannot be combined with lyrics (an instrumental)" in problems[2].message


def test_one_problem_has_no_count() -> None:
    checks = Checks()
    checks.fail(None, "nothing to do")
    with pytest.raises(InputError, match=r"^nothing to do$"):
        checks.raise_first()


def test_registry_finds_operations_and_aliases() -> None:
    assert find("suno", "add-instrumental") is ADD_INSTRUMENTAL
    assert find("suno", "instrumental") is ADD_INSTRUMENTAL
    assert find("suno", "nothing-like-it") is None
    assert find("no-such-service", "x") is None
    names = [op.qualified for op in operations()]
    assert "minimax.music-01" in names and "suno.add-instrumental" in names
    assert len(names) == len(set(names))
    assert all(op.service == "suno" for op in operations("suno"))


def test_registering_a_second_operation_under_a_taken_name_fails() -> None:
    clash = attrs.evolve(ADD_INSTRUMENTAL, aliases=())
    register(ADD_INSTRUMENTAL)  # the same declaration again is harmless
    with pytest.raises(RuntimeError, match=r"two operations are named suno\.add-instrumental"):
        register(clash)


def test_fingerprint_is_stable_and_changes_with_the_request() -> None:
    params = ADD_INSTRUMENTAL.params(source=Path("v.mp3"), title="T", tags="a",
                                     negative_tags="b")
    same = ADD_INSTRUMENTAL.params(source=Path("v.mp3"), title="T", tags="a",
                                   negative_tags="b")
    other = attrs.evolve(params, title="U")
    assert ADD_INSTRUMENTAL.fingerprint(params) == ADD_INSTRUMENTAL.fingerprint(same)
    assert ADD_INSTRUMENTAL.fingerprint(params) != ADD_INSTRUMENTAL.fingerprint(other)
    assert ADD_INSTRUMENTAL.fingerprint(params) != ADD_INSTRUMENTAL.fingerprint(params, "out")
    assert len(ADD_INSTRUMENTAL.fingerprint(params)) == 32


def test_add_instrumental_declaration_validates_and_builds() -> None:
    bad = ADD_INSTRUMENTAL.params(source="vocals.mp3", title="x" * 101, tags="a",
                                  negative_tags="b", style_weight=0.123)
    with pytest.raises(InputError, match="title"):
        ADD_INSTRUMENTAL.check(bad)
    good = ADD_INSTRUMENTAL.params(source="https://cdn.example/v.mp3", title="T", tags="a",
                                   negative_tags="b")
    ADD_INSTRUMENTAL.check(good)
    call = ADD_INSTRUMENTAL.call(good, Context(Service.SUNO, callback_url="https://h.example/c"))
    assert (call.paid, call.lane, call.url) == (True, LaneKind.SUBMIT,
                                                "/api/v1/generate/add-instrumental")
    assert call.json["callBackUrl"] == "https://h.example/c"
    assert call.json["uploadUrl"] == "https://cdn.example/v.mp3"
    assert ADD_INSTRUMENTAL.read is not None
    assert ADD_INSTRUMENTAL.read({"code": 200, "data": {"taskId": "t1"}}) == "t1"
    assert ADD_INSTRUMENTAL.task is MUSIC_TASK
    assert (ADD_INSTRUMENTAL.delivery, ADD_INSTRUMENTAL.output) == (Delivery.TASK,
                                                                   Output.TRACKS)


def test_music01_declaration_needs_a_reference() -> None:
    op = find("minimax", "music-01")
    assert isinstance(op, Operation)
    with pytest.raises(InputError) as caught:
        op.check(op.params(lyrics="la", sample_rate=8000))
    fields = [p.field for p in caught.value.problems]  # type: ignore[attr-defined]
    assert fields == ["sample_rate", "reference"]
    params = op.params(lyrics="##la##", refer_voice="v1", format="wav")
    op.check(params)
    call = op.call(params, Context(Service.AIMLAPI))
    assert call.json == {"model": "music-01", "lyrics": "##la##", "refer_voice": "v1",
                         "audio_setting": {"sample_rate": 44100, "bitrate": 256000,
                                           "format": "wav"}}
    assert call.paid and call.url.endswith("/minimax/generate")


@pytest.mark.parametrize(
    ("status", "phase"),
    [("PENDING", Phase.PENDING), ("TEXT_SUCCESS", Phase.RUNNING),
     ("FIRST_SUCCESS", Phase.RUNNING), ("SUCCESS", Phase.SUCCEEDED),
     ("GENERATE_AUDIO_FAILED", Phase.FAILED), ("SENSITIVE_WORD_ERROR", Phase.FAILED)],
)
def test_music_snapshot_maps_every_status(status: str, phase: Phase) -> None:
    record = TaskRecord(task_id="t", status=TaskStatus(status), raw_status=status,
                        tracks=(Track(id="a", audio_url="https://x/a.mp3", title="A"),
                                Track(id="b")), error_code=None)
    snap = music_snapshot(record)
    assert (snap.phase, snap.status, snap.rank) == (phase, status, TaskStatus(status).rank)
    assert [(a.name, a.url, a.title) for a in snap.assets] == [("a", "https://x/a.mp3", "A")]
    assert snap.record is record


def test_music_task_reads_record_info() -> None:
    body = {"code": 200, "data": {"taskId": "t9", "status": "SUCCESS", "response": {
        "sunoData": [{"id": "x", "audioUrl": "https://cdn/x.mp3", "duration": 3.5}]}}}
    snap = MUSIC_TASK.read_status(body, "t9")
    assert snap.phase is Phase.SUCCEEDED and snap.assets[0].duration == 3.5
    call = MUSIC_TASK.status_call("t9")
    assert call.params == {"taskId": "t9"} and not call.paid
    assert "{task_id" in MUSIC_TASK.resume_hint
