"""Chains in batches: a job that takes another job's result (``after``, ``track``).

The job file's checks (each problem on its line, before anything runs), then chains against
the emulator: generate -> stems -> MIDI and generate -> WAV filled from the parent's task id
and tracks, a child skipped (``blocked``) when its parent failed, and resuming from the
journal (the parent's recorded result; a journal without one asks the service, for free).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aiomusic import (
    Batch,
    InputError,
    JobOutcome,
    MusicSession,
    ParentFailedError,
    PollSchedule,
    RetryPolicy,
)
from aiomusic.batch._jobfile import JobFileError, load_jobs, parse_jobs
from aiomusic.batch._jobs import OperationJob
from aiomusic.emulator import Emulator, Faults

from .test_money_safety import _outcomes

pytestmark = pytest.mark.anyio
KEY = "sk-suno-chains"
GEN = {"id": "g", "service": "suno", "op": "generate", "prompt": "rain on the road"}


def problems(lines: list[dict[str, Any]]) -> list[tuple[int, str | None, str]]:
    with pytest.raises(JobFileError) as caught:
        parse_jobs(list(enumerate(lines, 1)))
    return caught.value.problems


def job(id_: str, op: str, **fields: Any) -> dict[str, Any]:
    return {"id": id_, "service": "suno", "op": op, **fields}


# -- the job file ------------------------------------------------------------------------------


def test_a_chain_fills_the_fields_the_line_leaves_out() -> None:
    jobs = {j.id: j for j in parse_jobs(list(enumerate([
        job("s", "stems", after="g", track=2), GEN,  # a parent may come later in the file
        job("w", "wav", after="g"), job("x", "midi", after="s", out="notes.json"),
        job("e", "extend", after="g")], 1)))}
    stems, wav, midi, extend = jobs["s"], jobs["w"], jobs["x"], jobs["e"]
    assert isinstance(stems, OperationJob) and stems.chain is not None
    assert (stems.chain.after, stems.chain.track, stems.chain.fills) == \
        ("g", 2, ("task_id", "audio_id"))
    assert (stems.params.task_id, stems.params.audio_id) == ("<task_id of g>",
                                                             "<track 2 of g>")
    assert isinstance(wav, OperationJob) and wav.params.audio_id == "<track 1 of g>"
    # a stems task has no tracks: MIDI takes its task id, and its optional audio_id stays empty
    assert isinstance(midi, OperationJob) and midi.chain is not None
    assert midi.chain.fills == ("task_id",) and midi.params.audio_id is None
    assert isinstance(extend, OperationJob) and extend.chain is not None
    assert extend.chain.fills == ("audio_id",)  # extend takes no task id


def test_the_fingerprint_is_the_line_as_written() -> None:
    def fingerprint(**child: Any) -> str:
        jobs = parse_jobs(list(enumerate([GEN, job("s", "stems", after="g", **child)], 1)))
        return jobs[1].fingerprint()

    import attrs

    first = parse_jobs(list(enumerate([GEN, job("s", "stems", after="g")], 1)))[1]
    assert isinstance(first, OperationJob)
    filled = attrs.evolve(first, params=attrs.evolve(first.params, task_id="t1", audio_id="a1"))
    assert filled.fingerprint() == first.fingerprint()  # filling changes nothing it asks
    assert fingerprint() == first.fingerprint()
    assert fingerprint(track=2) != fingerprint(track=1) != fingerprint()
    plain = parse_jobs(list(enumerate([GEN, job("s", "stems", task_id="t1",
                                                 audio_id="a1")], 1)))[1]
    assert plain.fingerprint() != first.fingerprint()


@pytest.mark.parametrize(("lines", "expected"), [
    pytest.param([job("s", "stems", after="nobody")],
                 [(1, "after", "'nobody' is not a job of this batch")], id="unknown-parent"),
    pytest.param([job("a", "extend", after="b"), job("b", "extend", after="a")],
                 [(1, "after", "a -> b -> a is a cycle"), (2, "after", "b -> a -> b is a cycle")],
                 id="cycle"),
    pytest.param([job("a", "extend", after="a")], [(1, "after", "a -> a is a cycle")],
                 id="itself"),
    pytest.param([job("l", "lyrics", prompt="the sea"), job("s", "stems", after="l")],
                 [(2, "after", "gives nothing suno.stems takes")], id="lyrics-has-no-ids"),
    pytest.param([job("p", "persona", task_id="t", audio_id="a", name="n", description="d"),
                  job("s", "stems", after="p")],
                 [(2, "after", "job 'p' (suno.persona) gives nothing")], id="not-a-task"),
    pytest.param([GEN, job("s", "stems", after="g"), job("w", "wav", after="s")],
                 [(3, "audio_id", "is required, and job 's' (suno.stems) has no tracks")],
                 id="stems-have-no-tracks"),
    pytest.param([GEN, job("s", "stems", after="g", task_id="t1")],
                 [(2, "task_id", "is given here and by 'after' (the task id of job 'g'")],
                 id="by-hand-and-by-chain"),
    pytest.param([GEN, job("w", "wav", after="g", task_id="t1", audio_id="a1")],
                 [(2, "task_id", "is given here and by 'after'"),
                  (2, "audio_id", "is given here and by 'after' (the tracks of job 'g'")],
                 id="both-by-hand"),
    pytest.param([job("w", "wav", task_id="t", audio_id="a", track=2)],
                 [(1, "track", "applies only with 'after'")], id="track-alone"),
    pytest.param([GEN, job("s", "stems", after="g"), job("x", "midi", after="s", track=1,
                                                           out="n.json")],
                 [(3, "track", "applies only when the tracks of the job it follows")],
                 id="track-without-tracks"),
    pytest.param([GEN, job("s", "stems", after="g", track=0)],
                 [(2, "track", "must be 1 or more")], id="track-zero"),
    pytest.param([GEN, job("s", "stems", after="g", track="2")],
                 [(2, "track", "must be an integer")], id="track-text"),
    pytest.param([GEN, job("s", "stems", after=3)],
                 [(2, "after", "must be a non-empty string")], id="after-number"),
    pytest.param([GEN, {"id": "i", "service": "suno", "after": "g", "source":
                        "https://x.invalid/a.mp3", "title": "t", "tags": "t",
                        "negative_tags": "n"}],
                 [(2, "after", "suno.add-instrumental takes nothing from another job's")],
                 id="takes-nothing"),
    pytest.param([{"id": "a", "service": "nope", "after": "g"}],
                 [(1, "service", "must be")], id="unknown-service"),
    pytest.param([{**GEN, "model": 5}, job("s", "stems", after="g")],
                 [(1, "model", "")], id="parent-with-problems-only-its-own"),
    pytest.param([{"id": "m", "service": "minimax", "lyrics": "##la##", "refer_voice": "v",
                   "refer_instrumental": "i"},
                  job("s", "stems", after="m")],
                 [(2, "after", "job 'm' (minimax.music-01) gives nothing")], id="other-service"),
])
def test_chain_problems_are_job_file_problems(lines: list[dict[str, Any]],
                                              expected: list[tuple[int, str, str]]) -> None:
    found = problems(lines)
    assert [(line, field) for line, field, _ in found] == \
        [(line, field) for line, field, _ in expected]
    for (_, _, text), (_, _, wanted) in zip(found, expected, strict=True):
        assert wanted in text


def test_a_batch_made_in_code_checks_its_chains() -> None:
    jobs = parse_jobs(list(enumerate([GEN, job("s", "stems", after="g")], 1)))
    with pytest.raises(ValueError, match="'g' is not a job of this batch"):
        Batch(None, jobs[1:], out="out")  # type: ignore[arg-type]


def test_a_job_file_with_a_chain(tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in [
        GEN, job("s", "stems", after="g", track=2), job("w", "wav", after="g")]))
    assert [j.id for j in load_jobs(path)] == ["g", "s", "w"]


# -- against the emulator ----------------------------------------------------------------------


def session(emulator: Emulator) -> MusicSession:
    return MusicSession(suno_key=KEY, base_url=emulator.url, allow_http_hosts=("127.0.0.1",),
                        retry=RetryPolicy(base_delay=0.01, max_delay=0.05),
                        suno_callback_url="http://127.0.0.1:9/no-op")


async def run(emulator: Emulator, lines: list[dict[str, Any]], base: Path, *,
              journal: bool = True, stop_after: str | None = None) -> dict[str, JobOutcome]:
    jobs = parse_jobs(list(enumerate(lines, 1)), base=base)
    found: dict[str, JobOutcome] = {}
    async with session(emulator) as s:
        batch = Batch(s, jobs, out=base / "out", poll=PollSchedule(initial=0.01, maximum=0.05),
                      journal=base / "out" / "journal.sqlite" if journal else None)
        async with batch.results() as results:
            async for outcome in results:
                found[outcome.job.id] = outcome
                if outcome.job.id == stop_after:
                    break
            await results.aclose()  # type: ignore[attr-defined]
    return found


async def tracks_of(emulator: Emulator, task_id: str | None) -> list[str]:
    assert task_id is not None
    async with session(emulator) as s:
        return [t.id for t in (await s.suno.task(task_id).wait()).tracks]


CHAIN = [GEN, job("s", "stems", after="g", track=2), job("w", "wav", after="g", out="g.wav"),
         job("x", "midi", after="s", out="notes.json")]


@pytest.mark.parametrize("journal", [True, False], ids=["journal", "no-journal"])
async def test_generate_then_stems_wav_and_midi(emulator: Emulator, tmp_path: Path,
                                                journal: bool) -> None:
    done = await run(emulator, CHAIN, tmp_path, journal=journal)
    assert {k: o.status for k, o in done.items()} == dict.fromkeys("gswx", "completed")
    tracks = await tracks_of(emulator, done["g"].task_id)
    assert (done["s"].job.params.task_id, done["s"].job.params.audio_id) == \
        (done["g"].task_id, tracks[1])  # track 2 (its file: g-2.mp3)
    assert done["w"].job.params.audio_id == tracks[0]
    assert done["x"].job.params.task_id == done["s"].task_id
    out = tmp_path / "out"
    assert sorted(p.name for p in (out / "s").iterdir()) == ["instrumental.mp3", "vocals.mp3"]
    assert (out / "g.wav").read_bytes()[:4] == b"RIFF"
    assert json.loads((out / "notes.json").read_text())["instruments"]
    for op in ("generate", "stems", "wav", "midi"):
        assert emulator.counters.paid(operation=f"suno.{op}") == 1, op


async def test_a_child_of_a_failed_parent_is_skipped_then_runs_later(
        emulator: Emulator, tmp_path: Path) -> None:
    emulator.set_faults(Faults(rates={"generate_audio_failed@suno.generate": 1.0}))
    first = await run(emulator, CHAIN, tmp_path)
    assert first["g"].status == "failed"
    for child, parent in (("s", "g"), ("w", "g"), ("x", "s")):
        error = first[child].error
        assert first[child].status == "blocked" and isinstance(error, ParentFailedError)
        assert (error.job_id, error.parent) == (child, parent)
        assert "Nothing was sent" in str(error)
    assert first["x"].error.parent_status == "blocked"  # type: ignore[union-attr]
    for op in ("stems", "wav", "midi"):
        assert emulator.counters.paid(operation=f"suno.{op}") == 0
    # nothing was sent for the children: they stay pending and run once the parent completes
    emulator.set_faults(Faults())
    again = await run(emulator, CHAIN, tmp_path)
    assert again["g"].status == "failed"  # taken, then failed: not paid again unasked
    assert {again[c].status for c in "swx"} == {"blocked"}
    lines = [{**GEN, "id": "g2"}, *[{**line, "id": line["id"] + "2", "after": "g2"
                                     if line["after"] == "g" else "s2",
                                     **({"out": "2" + line["out"]} if "out" in line else {})}
                                    for line in CHAIN[1:]]]
    later = await run(emulator, lines, tmp_path)
    assert {o.status for o in later.values()} == {"completed"}


async def test_the_summary_tells_skipped_children(emulator: Emulator, tmp_path: Path) -> None:
    from aiomusic.cli._progress import describe_outcome, outcome_dict, summary_lines

    emulator.set_faults(Faults(rates={"generate_audio_failed@suno.generate": 1.0}))
    jobs = parse_jobs(list(enumerate(CHAIN[:2], 1)), base=tmp_path)
    async with session(emulator) as s:
        batch = Batch(s, jobs, out=tmp_path / "out", poll=PollSchedule(initial=0.01))
        outcomes = {o.job.id: o for o in [o async for o in _outcomes(batch)]}
    summary = batch.summary
    assert (summary.blocked, summary.as_dict()["blocked"], summary.ok) == (1, 1, False)
    assert summary.failed == {"TaskFailedError": 1}  # the parent only
    assert any("not run: 1 job(s) whose parent (after) did not complete" in line
               for line in summary_lines(summary))
    assert describe_outcome(outcomes["s"]).startswith("SKIP  s: ParentFailedError: job s was")
    said = outcome_dict(outcomes["s"])
    assert (said["status"], said["error"]["type"]) == ("blocked", "ParentFailedError")


async def test_resumed_from_the_parents_recorded_result(emulator: Emulator,
                                                        tmp_path: Path) -> None:
    """The first run stops as soon as the parent completed: the children, never started,
    take its result from the journal in the next run, and nothing is paid twice."""
    first = await run(emulator, CHAIN, tmp_path, stop_after="g")
    assert first["g"].status == "completed" and set(first) == {"g"}
    again = await run(emulator, CHAIN, tmp_path)
    assert again["g"].status == "skipped"
    assert {again[c].status for c in "swx"} == {"completed"}
    assert again["s"].job.params.audio_id == (await tracks_of(emulator, first["g"].task_id))[1]
    for op in ("generate", "stems", "wav", "midi"):
        assert emulator.counters.paid(operation=f"suno.{op}") == 1, op


async def test_a_parent_finished_without_a_recorded_result_is_asked_for_free(
        emulator: Emulator, tmp_path: Path) -> None:
    """A parent finished by a run in which no job followed it (or by an earlier version)
    left no result: its task is asked for by id (a free status call)."""
    first = await run(emulator, [GEN], tmp_path)
    assert first["g"].status == "completed"
    again = await run(emulator, CHAIN[:2], tmp_path)
    assert (again["g"].status, again["s"].status) == ("skipped", "completed")
    assert again["s"].job.params.audio_id == (await tracks_of(emulator, first["g"].task_id))[1]
    assert emulator.counters.paid(operation="suno.generate") == 1


async def test_a_track_the_parent_did_not_make(emulator: Emulator, tmp_path: Path) -> None:
    done = await run(emulator, [GEN, job("s", "stems", after="g", track=3)], tmp_path)
    assert done["s"].status == "failed"
    assert "g made 2 track(s), so it has no track 3" in str(done["s"].error)
    assert emulator.counters.paid(operation="suno.stems") == 0


# -- the scheduler's corners -------------------------------------------------------------------


class _Steps:
    """What `Chains.ready` uses of a batch's steps."""

    def __init__(self, *, halt: Exception | None = None) -> None:
        self.session = self
        self.results: dict[str, Any] = {}
        self.journal = None
        self.halt = halt
        self.events: list[Any] = []

    def emit(self, event: Any) -> None:
        self.events.append(event)


def _chain() -> tuple[Any, Any, Any]:
    from aiomusic.batch._chain import Chains

    jobs = parse_jobs(list(enumerate([GEN, job("s", "stems", after="g")], 1)))
    return Chains(jobs), jobs[0], jobs[1]


async def test_a_child_of_a_parent_that_did_not_run() -> None:
    chains, _parent, child = _chain()
    chains.ended("g", None)  # the batch stopped before the parent sent anything
    assert await chains.ready(_Steps(halt=RuntimeError("stop")), child, None) is None  # type: ignore[arg-type]
    steps = _Steps()
    outcome = await chains.ready(steps, child, None)  # type: ignore[arg-type]
    assert isinstance(outcome, JobOutcome) and outcome.status == "blocked"
    assert "the job it follows, g, was not run" in str(outcome.error)
    assert [(e.stage, e.detail) for e in steps.events] == [("waiting", "for g")]


async def test_a_parent_done_whose_result_is_lost() -> None:
    """Completed in an earlier run without a recorded result, and no task id to ask by."""
    chains, parent, child = _chain()
    chains.ended("g", JobOutcome(parent, "skipped"))
    outcome = await chains.ready(_Steps(), child, None)  # type: ignore[arg-type]
    assert isinstance(outcome, JobOutcome) and outcome.status == "blocked"
    assert "completed, but its result" in str(outcome.error)
    assert "give s the ids by hand" in str(outcome.error)


async def test_a_parent_the_service_no_longer_knows(emulator: Emulator, tmp_path: Path) -> None:
    chains, parent, child = _chain()
    chains.ended("g", JobOutcome(parent, "skipped", task_id="no-such-task"))
    steps = _Steps()
    async with session(emulator) as s:
        steps.session = s  # type: ignore[assignment]
        outcome = await chains.ready(steps, child, None)  # type: ignore[arg-type]
    assert isinstance(outcome, JobOutcome) and outcome.status == "blocked"
    assert emulator.counters.paid() == 0


def test_a_result_that_does_not_fit_is_refused() -> None:
    from aiomusic.batch._chain import _fill
    from aiomusic.batch._jobs import ChainResult

    _chains, _parent, child = _chain()
    with pytest.raises(InputError, match="the result of g does not fit it"):
        _fill(child, child.chain, ChainResult("   ", ("a1",)))


async def test_add_instrumental_is_a_parent_too(emulator: Emulator, tmp_path: Path) -> None:
    from aiomusic.emulator import sample_track

    (tmp_path / "vocals.mp3").write_bytes(sample_track(3.0, format="mp3", seed=2))
    done = await run(emulator, [
        {"id": "i", "service": "suno", "source": "vocals.mp3", "title": "Night",
         "tags": "piano", "negative_tags": "metal"},
        job("w", "wav", after="i", track=2, out="night.wav")], tmp_path)
    assert (done["i"].status, done["w"].status) == ("completed", "completed")
    assert done["w"].job.params.audio_id == (await tracks_of(emulator, done["i"].task_id))[1]


async def test_a_journal_that_cannot_be_read_stops_the_batch(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aiomusic import BatchStoppedError
    from aiomusic.batch._journal import Journal, JournalWriteError

    await run(emulator, CHAIN[:2], tmp_path, stop_after="g")

    async def unreadable(self: Journal, job_id: str) -> None:
        raise JournalWriteError("disk I/O error", path=str(self.path))

    monkeypatch.setattr(Journal, "result", unreadable)
    with pytest.raises(BatchStoppedError, match="disk I/O error"):
        await run(emulator, CHAIN[:2], tmp_path)
    assert emulator.counters.paid(operation="suno.stems") == 0
