"""Any declared operation as a batch job: the generic executor and the generic field reader.

The runner knows no operation by name: these tests drive it with declarations only (the two
existing operations as `OperationJob`, and variants of them with other output shapes), against
the emulator over loopback HTTP.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest

from aiomusic import Batch, JobOutcome, MusicSession, PollSchedule, RetryPolicy
from aiomusic._core._operation import Checks, Operation, Output, find, operations, param
from aiomusic.batch._fields import Fields, read_params
from aiomusic.batch._jobfile import JobFileError, parse_jobs
from aiomusic.batch._jobs import OperationJob, SunoJob
from aiomusic.emulator import Emulator
from aiomusic.suno._ops import ADD_INSTRUMENTAL

from .conftest import make_wav

pytestmark = pytest.mark.anyio
KEY = "sk-batch-ops-4b1d"
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05, maintenance_delay=0.01)
TINY = PollSchedule(initial=0.01, maximum=0.05)


def session(emulator: Emulator) -> MusicSession:
    return MusicSession(aimlapi_key=KEY, suno_key=KEY, base_url=emulator.url,
                        allow_http_hosts=("127.0.0.1",), retry=FAST,
                        suno_callback_url="http://127.0.0.1:9/no-op")


def instrumental(job_id: str, source: Path | str, op: Operation = ADD_INSTRUMENTAL,
                 out: str | None = None) -> OperationJob:
    params = ADD_INSTRUMENTAL.params(source=source, title=f"T {job_id}", tags="piano",
                                     negative_tags="metal")
    return OperationJob(id=job_id, op=op, params=params, out=out or job_id)


async def run(emulator: Emulator, jobs: list[Any], out: Path, journal: Path | None = None
              ) -> tuple[dict[str, JobOutcome], Batch]:
    async with session(emulator) as s:
        batch = Batch(s, jobs, out=out, journal=journal, poll=TINY)
        found = {}
        async with batch.results() as results:
            async for outcome in results:
                found[outcome.job.id] = outcome
    return found, batch


async def test_a_task_operation_runs_to_tracks_and_resumes_without_paying(
        emulator: Emulator, tmp_path: Path) -> None:
    (tmp_path / "vocal.wav").write_bytes(make_wav(4.0))
    jobs = [instrumental("a", tmp_path / "vocal.wav"), instrumental("b", tmp_path / "vocal.wav")]
    journal = tmp_path / "out" / "journal.sqlite"
    found, batch = await run(emulator, jobs, tmp_path / "out", journal)
    assert {k: v.status for k, v in found.items()} == {"a": "completed", "b": "completed"}
    assert [f.path.name for f in found["a"].files] == ["a-1.mp3", "a-2.mp3"]
    assert found["a"].task_id and batch.summary.files == 4
    # one upload of the shared local source, one paid submission per job
    assert emulator.counters.paid(operation="suno.add_instrumental") == 2
    assert emulator.counters.requests["/api/file-stream-upload"] == 1
    again, _ = await run(emulator, jobs, tmp_path / "out", journal)
    assert {v.status for v in again.values()} == {"skipped"}
    assert emulator.counters.paid(operation="suno.add_instrumental") == 2


async def test_a_submitted_task_is_followed_by_its_id_after_a_stop(
        emulator: Emulator, tmp_path: Path) -> None:
    """The journal records the task id right after the paid request: a re-run follows it."""
    jobs = [instrumental("a", "https://cdn.example/vocal.mp3")]
    journal = tmp_path / "out" / "journal.sqlite"
    url = await _uploaded(emulator)
    jobs = [instrumental("a", url)]
    async with session(emulator) as s:
        task = await s.suno.add_instrumental(url, title="T a", tags="piano",
                                             negative_tags="metal")
    from aiomusic.batch._journal import JobState, Journal

    db = await Journal.open(journal, endpoint=_endpoint(emulator))
    await db.add("a", kind=jobs[0].kind, fingerprint=jobs[0].fingerprint())
    await db.update("a", JobState.SUBMITTED, task_id=task.task_id)
    await db.aclose()
    found, _ = await run(emulator, jobs, tmp_path / "out", journal)
    assert found["a"].status == "completed" and found["a"].resumed
    assert found["a"].task_id == task.task_id
    assert emulator.counters.paid(operation="suno.add_instrumental") == 1


@pytest.mark.parametrize(("output", "names"), [
    pytest.param(Output.STEMS, ["x/{0}.mp3", "x/{1}.mp3"], id="stems-folder"),
    pytest.param(Output.FILE, ["x"], id="one-file"),
    pytest.param(Output.DOCUMENT, ["x"], id="document"),
])
async def test_output_shapes(emulator: Emulator, tmp_path: Path, output: Output,
                             names: list[str]) -> None:
    op = attrs.evolve(ADD_INSTRUMENTAL, output=output)
    found, _ = await run(emulator, [instrumental("x", await _uploaded(emulator), op=op)],
                         tmp_path / "out")
    outcome = found["x"]
    assert outcome.status == "completed", outcome.error
    written = sorted(str(f.path.relative_to(tmp_path / "out")) for f in outcome.files)
    if output is Output.STEMS:
        ids = sorted(p.name.removesuffix(".mp3") for p in (tmp_path / "out" / "x").iterdir())
        assert written == sorted(n.format(*ids) for n in names)
    else:
        assert written == names
    if output is Output.DOCUMENT:
        record = json.loads((tmp_path / "out" / "x").read_text())
        assert record["task_id"] == outcome.task_id and len(record["tracks"]) == 2
    else:
        assert all(f.path.read_bytes()[:3] in (b"ID3", b"\xff\xfb\xff"[:3]) or
                   f.path.read_bytes()[:2] == b"\xff\xfb" for f in outcome.files)


async def test_music01_as_a_generic_job(emulator: Emulator, tmp_path: Path) -> None:
    async with session(emulator) as s:
        ref = await s.minimax.upload_reference(make_wav(12.0), purpose="song")
    op = find("minimax", "music-01")
    assert op is not None
    params = op.params(lyrics="##la la##", refer_voice=ref.voice_id,
                       refer_instrumental=ref.instrumental_id, format="wav")
    job = OperationJob(id="song", op=op, params=params, out="song.wav")
    found, _ = await run(emulator, [job], tmp_path / "out", tmp_path / "j.sqlite")
    outcome = found["song"]
    assert outcome.status == "completed" and outcome.trace_id
    assert outcome.files[0].path.read_bytes()[:4] == b"RIFF"


async def _uploaded(emulator: Emulator) -> str:
    async with session(emulator) as s:
        return (await s.suno.upload(make_wav(3.0), name="v.wav")).download_url


def _endpoint(emulator: Emulator) -> str:
    return f"minimax={emulator.url} suno={emulator.url}"


# -- the job file, read from declarations ----------------------------------------------------


def test_op_names_the_operation_and_an_unknown_one_lists_the_choices(tmp_path: Path) -> None:
    (tmp_path / "v.wav").write_bytes(make_wav(3.0))
    line = {"id": "a", "service": "suno", "op": "instrumental", "source": "v.wav",
            "title": "T", "tags": "x", "negative_tags": "y"}
    [job] = parse_jobs([(1, line)], base=tmp_path)
    assert isinstance(job, SunoJob) and job.op is ADD_INSTRUMENTAL
    with pytest.raises(JobFileError) as caught:
        parse_jobs([(1, {**line, "op": "remix"})], base=tmp_path)
    choices = ", ".join(op.name for op in operations("suno"))
    assert choices.startswith("add-instrumental, generate, ")
    assert caught.value.problems == [
        (1, "op", f"suno has no operation 'remix'; use one of: {choices}"[:300])]


@attrs.frozen
class _Params:
    prompt: str = param(help="what to make", max_length=10)
    seconds: int = param(help="how long", kind="int", default=5, minimum=1, maximum=47)
    loud: bool = param(help="loud", kind="bool", default=False)
    tags: tuple[str, ...] | None = param(help="tags", kind="texts", default=None)
    ref: Path | None = param(help="a file", kind="file", default=None)
    weight: float | None = param(help="w", kind="weight", default=None)
    model: str = param(help="model", kind="choice", choices=("m1", "m2"), default="m1")
    mood: str | None = param(help="mood", kind="choice", choices=("calm", "wild"),
                             default=None)


def _validate(p: _Params, checks: Checks) -> None:
    if p.loud and p.mood == "calm":
        checks.fail("mood", "a loud piece cannot be calm")


FAKE = attrs.evolve(ADD_INSTRUMENTAL, service="fake", name="make", params=_Params,
                    validate=_validate, models=("m1", "m2"))


@pytest.mark.parametrize(("line", "problems"), [
    pytest.param({"prompt": "calm"}, [], id="fine"),
    pytest.param({}, [("prompt", "is required")], id="missing"),
    pytest.param({"prompt": "x" * 11, "seconds": 48, "weight": 1.5, "mood": "sad"},
                 [("prompt", "must be at most 10 characters, got 11"),
                  ("seconds", "must be from 1 to 47, got 48"),
                  ("weight", "must be from 0 to 1, got 1.5"),
                  ("mood", "must be one of calm, wild, got 'sad'")], id="limits-all-at-once"),
    pytest.param({"prompt": 3, "seconds": "5", "loud": "yes", "tags": "a", "ref": "no.wav"},
                 [("prompt", "must be a non-empty string, got 3"),
                  ("seconds", "must be an integer, got '5'"),
                  ("loud", "must be true or false, got 'yes'"),
                  ("tags", "must be a list of non-empty strings, got 'a'"),
                  ("ref", "'no.wav' is not a file")], id="types"),
    pytest.param({"prompt": "p", "loud": True, "mood": "calm"},
                 [("mood", "a loud piece cannot be calm")], id="cross-field-rule"),
    pytest.param({"prompt": "p", "model": "m9"}, [], id="unknown-model-passes"),
])
def test_generic_reader(tmp_path: Path, line: dict[str, Any],
                        problems: list[tuple[str, str]]) -> None:
    fields = Fields(line)
    params = read_params(FAKE, fields, tmp_path)
    assert [(f, m.split(" (paths")[0]) for f, m in fields.problems] == problems
    assert (params is None) == bool(problems)


def test_generic_reader_builds_the_parameters(tmp_path: Path) -> None:
    (tmp_path / "r.wav").write_bytes(b"x")
    fields = Fields({"prompt": "p", "tags": ["a", "b"], "ref": "r.wav", "loud": True,
                     "weight": 0.5, "seconds": 7})
    params = read_params(FAKE, fields, tmp_path)
    assert params == _Params(prompt="p", tags=("a", "b"), ref=tmp_path / "r.wav", loud=True,
                             weight=0.5, seconds=7)


async def test_minimax_current_models_as_jobs_every_delivery(emulator: Emulator,
                                                             tmp_path: Path) -> None:
    """A song's delivery depends on its parameters (hex, SSE, a link): the declaration lets
    its client perform it, so every variant is a job; a quota look-up writes no file."""
    lines = [
        {"id": "hex", "service": "minimax", "op": "song", "prompt": "calm",
         "is_instrumental": True},
        {"id": "sse", "service": "minimax", "op": "song", "prompt": "calm",
         "is_instrumental": True, "stream": True},
        {"id": "url", "service": "minimax", "op": "song", "prompt": "calm",
         "is_instrumental": True, "output_format": "url"},
        {"id": "words", "service": "minimax", "op": "lyrics", "prompt": "rain"},
        {"id": "left", "service": "minimax", "op": "quota"},
    ]
    jobs = parse_jobs(list(enumerate(lines, 1)), base=tmp_path)
    async with MusicSession(minimax_key=KEY, base_url=emulator.url, retry=FAST) as s:
        batch = Batch(s, jobs, out=tmp_path / "out", journal=tmp_path / "j.sqlite")
        found = {o.job.id: o async for o in _outcomes(batch)}
    assert {k: o.status for k, o in found.items()} == dict.fromkeys(found, "completed")
    for name in ("hex", "sse", "url"):
        [file] = found[name].files
        head = file.path.read_bytes()[:3]
        assert file.path.name == f"{name}.mp3"
        assert head == b"ID3" or (head[0] == 0xFF and head[1] & 0xE0 == 0xE0)  # MP3
    assert json.loads((tmp_path / "out" / "words.json").read_text())["lyrics"]
    assert found["left"].files == () and found["left"].document is not None
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "hex.mp3", "sse.mp3", "url.mp3", "words.json"]
    assert emulator.counters.paid(operation="minimax.generate") == 3


async def _outcomes(batch: Batch) -> Any:
    async with batch.results() as results:
        async for outcome in results:
            yield outcome
