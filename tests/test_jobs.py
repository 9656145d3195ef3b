"""The job file: every validation rule of ``aiomusic.batch._jobs``, line by line, plus fuzzing."""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiomusic._core._errors import InputError
from aiomusic._core._models import AudioFormat, AudioSetting, Purpose
from aiomusic.batch._jobfile import JobFileError, load_jobs, parse_jobs
from aiomusic.batch._jobs import MiniMaxJob, SunoJob

URL = "https://cdn.example.com/vocals.mp3"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A batch folder holding the reference files the jobs name."""
    for name in ("ref.wav", "voice.wav", "inst.wav", "vocals.mp3"):
        (tmp_path / name).write_bytes(b"RIFF....WAVE")
    return tmp_path


def minimax(**fields: Any) -> dict[str, Any]:
    job: dict[str, Any] = {"id": "song-01", "service": "minimax", "lyrics": "##Hello##",
                           "reference": "ref.wav"}
    job.update(fields)
    return {k: v for k, v in job.items() if v is not Ellipsis}


def suno(**fields: Any) -> dict[str, Any]:
    job: dict[str, Any] = {"id": "inst-01", "service": "suno", "source": URL, "title": "Night",
                           "tags": "piano, soft", "negative_tags": "metal"}
    job.update(fields)
    return {k: v for k, v in job.items() if v is not Ellipsis}


def parse(folder: Path, *items: object) -> list[MiniMaxJob | SunoJob]:
    return parse_jobs(enumerate(items, 1), base=folder, where="jobs.jsonl")


def problems_of(folder: Path, *items: object) -> list[tuple[int, str | None, str]]:
    with pytest.raises(JobFileError) as info:
        parse(folder, *items)
    return info.value.problems


def only_problem(folder: Path, *items: object) -> tuple[int, str | None, str]:
    found = problems_of(folder, *items)
    assert len(found) == 1, found
    return found[0]


def write_jsonl(path: Path, lines: Iterable[object]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n"
                            for line in lines), encoding="utf-8")
    return path


# -- well-formed jobs ---------------------------------------------------------------------------


def test_minimax_job_with_defaults(folder: Path) -> None:
    [job] = parse(folder, minimax())
    assert isinstance(job, MiniMaxJob) and job.kind == "minimax"
    assert job.id == "song-01" and job.lyrics == "##Hello##"
    assert job.reference == folder / "ref.wav" and job.purpose is Purpose.SONG
    assert job.voice_reference is None and job.instrumental_reference is None
    assert job.audio_setting == AudioSetting()
    assert job.out == "song-01.mp3" and job.outputs == ("song-01.mp3",)
    assert job.line == 1


def test_minimax_job_with_every_field(folder: Path) -> None:
    [job] = parse(folder, minimax(reference=Ellipsis, voice_reference="voice.wav",
                                  instrumental_reference="inst.wav", format="wav",
                                  sample_rate=24000, bitrate=128000, out="songs/First.wav"))
    assert isinstance(job, MiniMaxJob)
    assert job.reference is None
    assert job.voice_reference == folder / "voice.wav"
    assert job.instrumental_reference == folder / "inst.wav"
    assert job.audio_setting == AudioSetting(format=AudioFormat.WAV, sample_rate=24000,
                                             bitrate=128000)
    assert job.out == "songs/First.wav"


def test_minimax_default_out_follows_the_format(folder: Path) -> None:
    [job] = parse(folder, minimax(format="pcm"))
    assert job.out == "song-01.pcm"


@pytest.mark.parametrize(("purpose", "extra"), [
    ("voice", {"refer_instrumental": "instrumental-1"}),
    ("voice", {"instrumental_reference": "inst.wav"}),
    ("instrumental", {"refer_voice": "vocal-1"}),
    ("instrumental", {"voice_reference": "voice.wav"}),
    ("instrumental", {}),
    ("song", {}),
])
def test_reference_purposes_combine_with_the_other_half(folder: Path, purpose: str,
                                                        extra: dict[str, str]) -> None:
    [job] = parse(folder, minimax(purpose=purpose, **extra))
    assert isinstance(job, MiniMaxJob) and job.purpose is Purpose(purpose)


def test_ids_from_earlier_uploads_instead_of_files(folder: Path) -> None:
    [job] = parse(folder, minimax(reference=Ellipsis, refer_voice="vocal-123",
                                  refer_instrumental="instrumental-9"))
    assert isinstance(job, MiniMaxJob)
    assert (job.refer_voice, job.refer_instrumental) == ("vocal-123", "instrumental-9")
    assert job.reference is None


def test_lyrics_of_exactly_600_characters_pass(folder: Path) -> None:
    [job] = parse(folder, minimax(lyrics="a" * 600))
    assert isinstance(job, MiniMaxJob) and len(job.lyrics or "") == 600


def test_suno_job_with_defaults(folder: Path) -> None:
    [job] = parse(folder, suno())
    assert isinstance(job, SunoJob) and job.kind == "suno"
    assert job.source == URL and isinstance(job.source, str)
    assert (job.title, job.tags, job.negative_tags) == ("Night", "piano, soft", "metal")
    assert job.model == "V4_5PLUS" and job.vocal_gender is None and job.callback_url is None
    assert job.style_weight is job.weirdness_constraint is job.audio_weight is None
    assert job.out == "inst-01" and job.outputs == ("inst-01",)


def test_suno_job_with_every_field(folder: Path) -> None:
    [job] = parse(folder, suno(source="vocals.mp3", vocal_gender="f", style_weight=0.5,
                               weirdness_constraint=0, audio_weight=1, model="V5",
                               callback_url="https://hooks.example.com/suno", out="inst/night"))
    assert isinstance(job, SunoJob)
    assert job.source == folder / "vocals.mp3" and isinstance(job.source, Path)
    assert (job.style_weight, job.weirdness_constraint, job.audio_weight) == (0.5, 0, 1)
    assert job.vocal_gender == "f" and job.model == "V5"
    assert job.callback_url == "https://hooks.example.com/suno"
    assert job.out == "inst/night"


@pytest.mark.parametrize("source", ["https://x.example/a.mp3", "http://127.0.0.1:8000/v.wav"])
def test_url_sources_are_kept_as_strings(folder: Path, source: str) -> None:
    [job] = parse(folder, suno(source=source))
    assert isinstance(job, SunoJob) and job.source == source and isinstance(job.source, str)


def test_newer_suno_model_names_pass(folder: Path) -> None:
    [job] = parse(folder, suno(model="V6_5"))
    assert isinstance(job, SunoJob) and job.model == "V6_5"


def test_missing_id_is_named_after_the_line(folder: Path) -> None:
    jobs = parse_jobs([(4, minimax(id=Ellipsis)), (9, suno(id=Ellipsis))], base=folder)
    assert [j.id for j in jobs] == ["job-4", "job-9"]
    assert [j.line for j in jobs] == [4, 9]
    assert jobs[0].out == "job-4.mp3" and jobs[1].out == "job-9"


@pytest.mark.parametrize("job_id", ["a", "A.b_c-d", "0" * 64, "9lives"])
def test_good_ids(folder: Path, job_id: str) -> None:
    [job] = parse(folder, minimax(id=job_id))
    assert job.id == job_id


def test_out_is_normalised_to_posix(folder: Path) -> None:
    jobs = parse(folder, minimax(out="a\\b\\song.mp3"), suno(out="x/./y//z"))
    assert [j.out for j in jobs] == ["a/b/song.mp3", "x/y/z"]


def test_jobs_built_directly_convert_their_fields() -> None:
    song = MiniMaxJob(id="s", lyrics="x", reference="r.wav", purpose="voice",
                      voice_reference=None, instrumental_reference="i.wav")
    assert song.reference == Path("r.wav") and song.purpose is Purpose.VOICE
    assert song.voice_reference is None and song.instrumental_reference == Path("i.wav")
    assert song.out == "s.mp3"
    wav = MiniMaxJob(id="w", lyrics="x", audio_setting=AudioSetting(format=AudioFormat.WAV))
    assert wav.out == "w.wav"
    assert MiniMaxJob(id="o", lyrics="x", out="keep.mp3").out == "keep.mp3"
    by_url = SunoJob(id="u", source=URL, title="t", tags="a", negative_tags="b")
    assert by_url.source == URL and by_url.out == "u"
    by_file = SunoJob(id="f", source="local.wav", title="t", tags="a", negative_tags="b",
                      out="x")
    assert by_file.source == Path("local.wav") and by_file.out == "x"


# -- unknown, missing and mistyped fields ------------------------------------------------------


@pytest.mark.parametrize(("make", "typo", "meant"), [
    (minimax, "lyric", "lyrics"),
    (minimax, "refrence", "reference"),
    (minimax, "samplerate", "sample_rate"),
    (suno, "negativeTags", "negative_tags"),
    (suno, "style_wieght", "style_weight"),
])
def test_unknown_field_suggests_the_nearest(folder: Path, make: Any, typo: str,
                                            meant: str) -> None:
    line, field, text = only_problem(folder, make(**{typo: "x"}))
    assert (line, field) == (1, typo)
    assert text == f"unknown field (did you mean {meant!r}?)"


def test_unknown_field_without_a_near_name(folder: Path) -> None:
    assert only_problem(folder, minimax(zzzzzz=1)) == (1, "zzzzzz", "unknown field")


def test_fields_of_the_other_service_are_unknown(folder: Path) -> None:
    found = problems_of(folder, minimax(title="x"), suno(lyrics="x"))
    assert [(line, field) for line, field, _ in found] == [(1, "title"), (2, "lyrics")]
    assert all(text.startswith("unknown field") for _, _, text in found)


@pytest.mark.parametrize("service", [None, "Minimax", "udio", 3, ["suno"]])
def test_service_must_be_known(folder: Path, service: object) -> None:
    found = problems_of(folder, {"id": "a", "service": service})
    assert found == [(1, "service", f'must be "minimax", "suno" or "aimlapi", got {service!r}')]


def test_missing_service(folder: Path) -> None:
    assert problems_of(folder, {"id": "a"}) == \
        [(1, "service", 'must be "minimax", "suno" or "aimlapi", got None')]


@pytest.mark.parametrize("field", ["source", "title", "tags", "negative_tags"])
def test_suno_required_fields(folder: Path, field: str) -> None:
    assert only_problem(folder, suno(**{field: Ellipsis})) == (1, field, "is required")


@pytest.mark.parametrize("field", ["source", "title", "tags", "negative_tags"])
@pytest.mark.parametrize("value", ["", "   ", 5, ["x"]])
def test_suno_required_fields_must_be_non_empty_strings(folder: Path, field: str,
                                                        value: object) -> None:
    line, name, text = only_problem(folder, suno(**{field: value}))
    assert (line, name) == (1, field)
    assert text == f"must be a non-empty string, got {value!r}"


def test_every_missing_suno_field_is_reported_at_once(folder: Path) -> None:
    found = problems_of(folder, {"id": "x", "service": "suno"})
    assert found == [(1, f, "is required") for f in ("source", "title", "tags", "negative_tags")]


def test_minimax_needs_a_reference(folder: Path) -> None:
    line, field, text = only_problem(folder, minimax(reference=Ellipsis))
    assert (line, field) == (1, "reference")
    assert "refer_voice and/or refer_instrumental" in text


@pytest.mark.parametrize("lyrics", [Ellipsis, "", "   \n "])
def test_minimax_lyrics_are_required(folder: Path, lyrics: object) -> None:
    line, field, text = only_problem(folder, minimax(lyrics=lyrics))
    assert (line, field) == (1, "lyrics") and "lyrics are required" in text


def test_lyrics_are_required_with_an_instrumental_only(folder: Path) -> None:
    line, field, text = only_problem(folder, minimax(lyrics=Ellipsis, purpose="instrumental"))
    assert (line, field) == (1, "lyrics") and "required" in text


def test_lyrics_over_600_characters(folder: Path) -> None:
    line, field, text = only_problem(folder, minimax(lyrics="a" * 601))
    assert (line, field) == (1, "lyrics")
    assert "601 characters" in text and "600" in text


@pytest.mark.parametrize("field", ["lyrics", "refer_voice", "refer_instrumental", "out",
                                   "reference", "voice_reference"])
@pytest.mark.parametrize("value", [7, True, ["a"], {"a": 1}])
def test_minimax_text_fields_must_be_strings(folder: Path, field: str, value: object) -> None:
    found = problems_of(folder, minimax(**{field: value}))
    assert (1, field, f"must be a non-empty string, got {value!r}") in found


@pytest.mark.parametrize("field", ["vocal_gender", "model", "callback_url", "out"])
def test_suno_optional_text_fields_must_be_strings(folder: Path, field: str) -> None:
    assert only_problem(folder, suno(**{field: 1})) == \
        (1, field, "must be a non-empty string, got 1")


@pytest.mark.parametrize("value", [True, False, 44100.0, "44100", [44100]])
def test_sample_rate_must_be_an_integer(folder: Path, value: object) -> None:
    assert only_problem(folder, minimax(sample_rate=value)) == \
        (1, "sample_rate", f"must be an integer, got {value!r}")


@pytest.mark.parametrize("value", [True, 256000.5, "256000"])
def test_bitrate_must_be_an_integer(folder: Path, value: object) -> None:
    assert only_problem(folder, minimax(bitrate=value)) == \
        (1, "bitrate", f"must be an integer, got {value!r}")


@pytest.mark.parametrize("field", ["style_weight", "weirdness_constraint", "audio_weight"])
@pytest.mark.parametrize("value", [True, False, "0.5", [0.5], {"w": 1}])
def test_weights_must_be_numbers_not_bools(folder: Path, field: str, value: object) -> None:
    assert only_problem(folder, suno(**{field: value})) == \
        (1, field, f"must be a number, got {value!r}")


@pytest.mark.parametrize("field", ["style_weight", "weirdness_constraint", "audio_weight"])
@pytest.mark.parametrize("value", [-0.01, 1.01, 2, -1, float("inf"), float("nan")])
def test_weights_must_be_within_0_and_1(folder: Path, field: str, value: float) -> None:
    line, name, text = only_problem(folder, suno(**{field: value}))
    assert (line, name) == (1, field) and "from 0 to 1" in text


def test_weights_take_two_decimals(folder: Path) -> None:
    line, field, text = only_problem(folder, suno(style_weight=0.333))
    assert (line, field) == (1, "style_weight") and "multiple of 0.01" in text


@pytest.mark.parametrize("value", ["x", "M", "male", ""])
def test_vocal_gender(folder: Path, value: str) -> None:
    line, field, text = only_problem(folder, suno(vocal_gender=value))
    assert (line, field) == (1, "vocal_gender") and "'m' or 'f'" in text


@pytest.mark.parametrize("model", ["v5", "V", "chirp-v3", "5"])
def test_bad_suno_model(folder: Path, model: str) -> None:
    line, field, text = only_problem(folder, suno(model=model))
    assert (line, field) == (1, "model") and "V4_5PLUS, V5" in text


def test_bad_callback_url(folder: Path) -> None:
    line, field, text = only_problem(folder, suno(callback_url="not a url"))
    assert (line, field) == (1, "callback_url") and "http(s) URL" in text


@pytest.mark.parametrize("source", ["ftp://x.example/a.mp3", "https://", "file:///etc/passwd"])
def test_non_http_url_source_is_named_source(folder: Path, source: str) -> None:
    line, field, text = only_problem(folder, suno(source=source))
    assert (line, field) == (1, "source")
    assert "upload_url" in text  # the library's message, but under the job file's field name


def test_title_longer_than_100(folder: Path) -> None:
    line, field, text = only_problem(folder, suno(title="t" * 101))
    assert (line, field) == (1, "title") and "at most 100 characters" in text


# -- ids and outputs ---------------------------------------------------------------------------


@pytest.mark.parametrize("job_id", ["", "-lead", ".hidden", "a b", "a/b", "é", "x" * 65,
                                    "a\tb", "semi;colon"])
def test_bad_id(folder: Path, job_id: str) -> None:
    line, field, text = only_problem(folder, minimax(id=job_id))
    assert (line, field) == (1, "id")
    assert text.startswith(f"{job_id!r} must be 1-64 letters, digits")


@pytest.mark.parametrize("job_id", [5, True, ["a"]])
def test_id_must_be_a_string(folder: Path, job_id: object) -> None:
    assert only_problem(folder, suno(id=job_id)) == \
        (1, "id", f"must be a non-empty string, got {job_id!r}")


def test_id_with_a_trailing_newline_is_refused(folder: Path) -> None:
    line, field, _ = only_problem(folder, minimax(id="song\n"))
    assert (line, field) == (1, "id")


def test_null_id_is_a_problem_not_a_dropped_line(folder: Path) -> None:
    found = problems_of(folder, minimax(id=None), suno())
    assert [(line, field) for line, field, _ in found] == [(1, "id")]


def test_duplicate_ids_name_the_earlier_line(folder: Path) -> None:
    found = problems_of(folder, minimax(id="same"), suno(id="other"),
                        suno(id="same", out="elsewhere"))
    assert found == [(3, "id", "'same' is already used on line 1; every job needs its own id")]


def test_generated_ids_clash_with_explicit_ones(folder: Path) -> None:
    found = problems_of(folder, minimax(id="job-2"), minimax(id=Ellipsis, out="b.mp3"))
    assert found == [(2, "id", "'job-2' is already used on line 1; every job needs its own id")]


def test_duplicate_outputs_are_case_insensitive(folder: Path) -> None:
    found = problems_of(folder, minimax(id="a", out="Song.MP3"),
                        minimax(id="b", out="song.mp3"))
    assert found == [(2, "out", "'song.mp3' is also the output of job 'a' (line 1)")]


def test_default_outputs_can_collide_by_case(folder: Path) -> None:
    found = problems_of(folder, minimax(id="Track"), minimax(id="track"))
    assert found == [(2, "out", "'track.mp3' is also the output of job 'Track' (line 1)")]


def test_duplicate_suno_stems(folder: Path) -> None:
    found = problems_of(folder, suno(id="a", out="mix/night"), suno(id="b", out="MIX/Night"))
    assert found == [(2, "out", "'MIX/Night' is also the output of job 'a' (line 1)")]


def test_equivalent_spellings_of_an_output_collide(folder: Path) -> None:
    found = problems_of(folder, minimax(id="a", out="x/y.mp3"), minimax(id="b", out="x//./y.mp3"))
    assert [(line, field) for line, field, _ in found] == [(2, "out")]


def test_minimax_output_colliding_with_a_suno_track_is_refused(folder: Path) -> None:
    found = problems_of(folder, suno(id="inst"), minimax(id="song", out="inst-1.mp3"))
    assert [(line, field) for line, field, _ in found] == [(2, "out")]


@pytest.mark.parametrize("out", ["../escape.mp3", "a/../../b.mp3", "a/../b.mp3", "/abs.mp3",
                                 "\\\\server\\share\\x.mp3", "C:/x.mp3", "C:x.mp3", "~/x.mp3",
                                 "~user", "nul\0.mp3", "", ".", "./", "..\\up.mp3"])
def test_out_must_stay_inside_the_folder(folder: Path, out: str) -> None:
    for make in (minimax, suno):
        line, field, text = only_problem(folder, make(out=out))
        assert (line, field) == (1, "out")
        assert text == (f"{out!r} must be a relative path inside the output folder (no '..', "
                        "no drive, no absolute path)")


# -- reference files ---------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["reference", "voice_reference", "instrumental_reference"])
def test_missing_reference_names_the_resolved_path(folder: Path, field: str) -> None:
    job = {**minimax(reference=Ellipsis), field: "sub/missing.wav"}
    found = problems_of(folder, job)
    expected = (f"'sub/missing.wav' is not a file (paths are relative to the job file's "
                f"folder: {folder / 'sub' / 'missing.wav'})")
    assert (1, field, expected) in found


def test_missing_suno_source_file(folder: Path) -> None:
    line, field, text = only_problem(folder, suno(source="nope.mp3"))
    assert (line, field) == (1, "source")
    assert text.endswith(f"folder: {folder / 'nope.mp3'})")


def test_a_folder_is_not_a_reference(folder: Path) -> None:
    (folder / "dir.wav").mkdir()
    line, field, text = only_problem(folder, minimax(reference="dir.wav"))
    # said as it is (before: "is not a file", as for a missing one)
    assert (line, field) == (1, "reference") and "'dir.wav' is a folder, not a file" in text


def test_absolute_reference_paths_are_kept(folder: Path, tmp_path_factory: Any) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "abs.wav"
    elsewhere.write_bytes(b"x")
    [job] = parse(folder, minimax(reference=str(elsewhere)))
    assert isinstance(job, MiniMaxJob) and job.reference == elsewhere


def test_purpose_without_reference(folder: Path) -> None:
    found = problems_of(folder, minimax(reference=Ellipsis, refer_voice="vocal-1",
                                        purpose="voice"))
    assert found == [(1, "purpose", "applies to 'reference' only; give a reference file too")]


@pytest.mark.parametrize("purpose", ["vocals", "SONG", 1, ["song"]])
def test_bad_purpose(folder: Path, purpose: object) -> None:
    found = problems_of(folder, minimax(purpose=purpose))
    assert found == [(1, "purpose", f"must be song, voice or instrumental, got {purpose!r}")]


def test_null_purpose_means_song(folder: Path) -> None:
    [job] = parse(folder, minimax(purpose=None))
    assert isinstance(job, MiniMaxJob) and job.purpose is Purpose.SONG


@pytest.mark.parametrize(("extra", "field"), [
    ({"voice_reference": "voice.wav"}, "voice_reference"),
    ({"refer_voice": "vocal-1"}, "voice_reference"),
    ({"instrumental_reference": "inst.wav"}, "instrumental_reference"),
    ({"refer_instrumental": "instrumental-1"}, "instrumental_reference"),
    ({"purpose": "voice", "voice_reference": "voice.wav"}, "voice_reference"),
    ({"purpose": "instrumental", "refer_instrumental": "i-1"}, "instrumental_reference"),
    ({"reference": Ellipsis, "voice_reference": "voice.wav", "refer_voice": "v"},
     "voice_reference"),
])
def test_one_source_per_half(folder: Path, extra: dict[str, Any], field: str) -> None:
    name = field.removesuffix("_reference")
    assert only_problem(folder, minimax(**extra)) == \
        (1, field, f"the {name} comes from more than one field; keep one")


def test_both_halves_doubled_are_both_reported(folder: Path) -> None:
    found = problems_of(folder, minimax(refer_voice="v", refer_instrumental="i"))
    assert [(line, field) for line, field, _ in found] == \
        [(1, "voice_reference"), (1, "instrumental_reference")]


# -- audio setting -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["ogg", "MP3", "", 3, ["mp3"]])
def test_bad_format(folder: Path, fmt: object) -> None:
    assert only_problem(folder, minimax(format=fmt)) == \
        (1, "format", f"must be mp3, wav or pcm, got {fmt!r}")


@pytest.mark.parametrize("rate", [22050, 48000, 0, -44100])
def test_bad_sample_rate(folder: Path, rate: int) -> None:
    line, field, text = only_problem(folder, minimax(sample_rate=rate))
    assert (line, field) == (1, "sample_rate")
    assert text.startswith(f"{rate!r} is not allowed: ") and "44100" in text


@pytest.mark.parametrize("bitrate", [1, 320000, 96000])
def test_bad_bitrate(folder: Path, bitrate: int) -> None:
    line, field, text = only_problem(folder, minimax(bitrate=bitrate))
    assert (line, field) == (1, "bitrate")
    assert text.startswith(f"{bitrate!r} is not allowed: ") and "256000" in text


def test_bad_audio_setting_message_is_readable(folder: Path) -> None:
    _, _, text = only_problem(folder, minimax(bitrate=1))
    assert text == "1 is not allowed: 'bitrate' must be in (32000, 64000, 128000, 256000) (got 1)"


@pytest.mark.parametrize(("rate", "bitrate"), [(16000, 32000), (32000, 64000), (44100, 128000)])
def test_good_audio_settings(folder: Path, rate: int, bitrate: int) -> None:
    [job] = parse(folder, minimax(sample_rate=rate, bitrate=bitrate))
    assert isinstance(job, MiniMaxJob)
    assert (job.audio_setting.sample_rate, job.audio_setting.bitrate) == (rate, bitrate)


# -- many problems at once ---------------------------------------------------------------------


def test_all_lines_are_checked_and_reported_together(folder: Path) -> None:
    found = problems_of(folder, minimax(format="ogg"), suno(), suno(id="x", title=""),
                        [1, 2], minimax(id="y", lyrics="a" * 700))
    assert [(line, field) for line, field, _ in found] == \
        [(1, "format"), (3, "title"), (4, None), (5, "lyrics")]


def test_one_line_can_have_several_problems(folder: Path) -> None:
    found = problems_of(folder, {"id": "bad id", "service": "suno", "source": "nope.wav",
                                 "title": 3, "tags": "x", "negative_tags": "y",
                                 "vocal_gender": 1, "style_weight": "1", "out": "../x",
                                 "colour": "red"})
    assert {field for _, field, _ in found} == \
        {"colour", "id", "out", "source", "title", "vocal_gender", "style_weight"}
    assert {line for line, _, _ in found} == {1}


def test_error_message_lists_every_problem_with_its_place(folder: Path) -> None:
    with pytest.raises(JobFileError) as info:
        parse_jobs([(3, minimax(format="ogg")), (7, [1])], base=folder, where="my/jobs.jsonl")
    error = info.value
    assert isinstance(error, InputError)  # the CLI's usage-error family
    assert error.field == "format"
    assert error.path == "my/jobs.jsonl"
    text = str(error)
    assert text.startswith("my/jobs.jsonl: 2 problems in the job file; nothing was sent.")
    assert "  my/jobs.jsonl:3: format: must be mp3, wav or pcm, got 'ogg'" in text
    assert "  my/jobs.jsonl:7: must be a JSON object, got list" in text


def test_single_problem_is_singular(folder: Path) -> None:
    with pytest.raises(JobFileError, match=r": 1 problem in the job file"):
        parse(folder, minimax(format="ogg"))


def test_more_than_20_problems_are_summarised(folder: Path) -> None:
    with pytest.raises(JobFileError) as info:
        parse(folder, *([1] * 25))
    error = info.value
    assert len(error.problems) == 25
    text = str(error)
    assert "25 problems in the job file" in text
    assert text.count("must be a JSON object, got int") == 20
    assert ":20: must be a JSON object" in text and ":21:" not in text
    assert text.endswith("\n  ... and 5 more")


def test_exactly_20_problems_are_all_shown(folder: Path) -> None:
    with pytest.raises(JobFileError) as info:
        parse(folder, *([1] * 20))
    assert "more" not in str(info.value) and str(info.value).count("got int") == 20


@pytest.mark.parametrize("item", [[1], "text", 3, 2.5, None, True])
def test_line_must_be_an_object(folder: Path, item: object) -> None:
    assert only_problem(folder, item) == \
        (1, None, f"must be a JSON object, got {type(item).__name__}")


def test_no_items_at_all(folder: Path) -> None:
    with pytest.raises(JobFileError) as info:
        parse(folder)
    assert info.value.problems == [(1, None, "no jobs: write one JSON object per line")]


# -- the job file ------------------------------------------------------------------------------


def test_load_jsonl_skips_comments_and_blank_lines(folder: Path) -> None:
    path = write_jsonl(folder / "jobs.jsonl", [
        "# my batch", "", minimax(), "   ", "  # indented comment", suno(), "\t"])
    jobs = load_jobs(path)
    assert [(j.id, j.line) for j in jobs] == [("song-01", 3), ("inst-01", 6)]


def test_crlf_lines(folder: Path) -> None:
    path = folder / "jobs.jsonl"
    path.write_bytes((json.dumps(minimax()) + "\r\n" + json.dumps(suno()) + "\r\n").encode())
    assert [j.line for j in load_jobs(path)] == [1, 2]


def test_line_numbers_in_problems_are_file_lines(folder: Path) -> None:
    path = write_jsonl(folder / "jobs.jsonl", ["# header", "", minimax(format="ogg")])
    with pytest.raises(JobFileError) as info:
        load_jobs(path)
    assert info.value.problems == [(3, "format", "must be mp3, wav or pcm, got 'ogg'")]
    assert f"{path}:3: format:" in str(info.value)


def test_invalid_json_line(folder: Path) -> None:
    path = write_jsonl(folder / "jobs.jsonl", [minimax(), '{"id": "x", service: suno}',
                                                '{"id": "y"', suno()])
    with pytest.raises(JobFileError) as info:
        load_jobs(path)
    found = info.value.problems
    assert [(line, field) for line, field, _ in found] == [(2, None), (3, None)]
    assert found[0][2].startswith("not valid JSON (Expecting property name enclosed in double "
                                  "quotes at column 13)")
    assert all(text.endswith("write one JSON object per line") for _, _, text in found)


def test_non_object_json_line(folder: Path) -> None:
    path = write_jsonl(folder / "jobs.jsonl", [minimax(), "[1, 2]", '"just text"', "42"])
    with pytest.raises(JobFileError) as info:
        load_jobs(path)
    assert info.value.problems == [(2, None, "must be a JSON object, got list"),
                                   (3, None, "must be a JSON object, got str"),
                                   (4, None, "must be a JSON object, got int")]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "   \n# x\n"])
def test_empty_file(folder: Path, text: str) -> None:
    path = folder / "jobs.jsonl"
    path.write_text(text)
    with pytest.raises(JobFileError) as info:
        load_jobs(path)
    assert info.value.problems == [(1, None, "no jobs: write one JSON object per line")]
    assert str(path) in str(info.value)


def test_missing_job_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_jobs(tmp_path / "absent.jsonl")


def test_relative_paths_come_from_the_job_files_folder(folder: Path, tmp_path_factory: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (folder / "refs").mkdir()
    (folder / "refs" / "r.wav").write_bytes(b"x")
    path = write_jsonl(folder / "jobs.jsonl", [minimax(reference="refs/r.wav"),
                                               suno(source="vocals.mp3")])
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    jobs = load_jobs(path)
    assert isinstance(jobs[0], MiniMaxJob) and jobs[0].reference == folder / "refs" / "r.wav"
    assert isinstance(jobs[1], SunoJob) and jobs[1].source == folder / "vocals.mp3"


def test_relative_job_file_path(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (folder / "batch").mkdir()
    (folder / "batch" / "r.wav").write_bytes(b"x")
    write_jsonl(folder / "batch" / "jobs.jsonl", [minimax(reference="r.wav")])
    monkeypatch.chdir(folder)
    [job] = load_jobs("batch/jobs.jsonl")
    assert isinstance(job, MiniMaxJob) and job.reference is not None
    assert job.reference.resolve() == (folder / "batch" / "r.wav").resolve()


def test_missing_file_in_the_job_file_names_the_resolved_path(folder: Path) -> None:
    (folder / "b").mkdir()
    path = write_jsonl(folder / "b" / "jobs.jsonl", [minimax(reference="../nope.wav")])
    with pytest.raises(JobFileError) as info:
        load_jobs(path)
    [(line, field, text)] = info.value.problems
    assert (line, field) == (1, "reference")
    assert str(folder / "b" / ".." / "nope.wav") in text


def test_json_suffix_is_read_as_json_lines(folder: Path) -> None:
    path = write_jsonl(folder / "jobs.JSON", [minimax()])
    assert [j.id for j in load_jobs(path)] == ["song-01"]


def test_toml_job_file(folder: Path) -> None:
    path = folder / "jobs.toml"
    path.write_text('[[job]]\nid = "song-01"\nservice = "minimax"\nlyrics = "##Hi##"\n'
                    'reference = "ref.wav"\nsample_rate = 32000\n\n'
                    '[[job]]\nservice = "suno"\nsource = "vocals.mp3"\ntitle = "Night"\n'
                    'tags = "piano"\nnegative_tags = "metal"\nstyle_weight = 0.25\n')
    jobs = load_jobs(path)
    assert isinstance(jobs[0], MiniMaxJob) and jobs[0].audio_setting.sample_rate == 32000
    assert jobs[0].reference == folder / "ref.wav"
    assert isinstance(jobs[1], SunoJob) and jobs[1].id == "job-2"
    assert jobs[1].source == folder / "vocals.mp3" and jobs[1].style_weight == 0.25
    assert [j.line for j in jobs] == [1, 2]  # TOML problems are numbered by table


def test_toml_problems_are_numbered_by_table(folder: Path) -> None:
    path = folder / "jobs.TOML"
    path.write_text('[[job]]\nservice = "minimax"\nlyrics = "x"\nreference = "ref.wav"\n'
                    '[[job]]\nservice = "suno"\nlyric = "x"\n')
    with pytest.raises(JobFileError) as info:
        load_jobs(path)
    found = info.value.problems
    assert (2, "lyric", "unknown field") in found
    assert {line for line, _, _ in found} == {2}


def test_invalid_toml(folder: Path) -> None:
    path = folder / "jobs.toml"
    path.write_text("[[job]\nid = \n")
    with pytest.raises(JobFileError) as info:
        load_jobs(path)
    [(line, field, text)] = info.value.problems
    assert (line, field) == (1, None) and text.startswith("not valid TOML: ")
    assert isinstance(info.value.__cause__, Exception)


def test_toml_job_must_be_tables(folder: Path) -> None:
    path = folder / "jobs.toml"
    path.write_text('job = "song"\n')
    with pytest.raises(JobFileError) as info:
        load_jobs(path)
    assert info.value.problems == [(1, "job", "use [[job]] tables, one per job")]


def test_toml_array_of_non_tables(folder: Path) -> None:
    path = folder / "jobs.toml"
    path.write_text("job = [1, 2]\n")
    with pytest.raises(JobFileError) as info:
        load_jobs(path)
    assert info.value.problems == [(1, None, "must be a JSON object, got int"),
                                   (2, None, "must be a JSON object, got int")]


def test_toml_without_jobs(folder: Path) -> None:
    path = folder / "jobs.toml"
    path.write_text("[other]\nx = 1\n")
    with pytest.raises(JobFileError, match="no jobs"):
        load_jobs(path)


def test_toml_dates_are_not_strings(folder: Path) -> None:
    path = folder / "jobs.toml"
    path.write_text('[[job]]\nservice = "suno"\nsource = "vocals.mp3"\ntitle = 1979-05-27\n'
                    'tags = "x"\nnegative_tags = "y"\n')
    with pytest.raises(JobFileError) as info:
        load_jobs(path)
    [(line, field, text)] = info.value.problems
    assert (line, field) == (1, "title") and text.startswith("must be a non-empty string")


# -- fingerprints ------------------------------------------------------------------------------


def test_fingerprint_is_stable_across_loads(folder: Path) -> None:
    lines: list[object] = [minimax(), suno(source="vocals.mp3", style_weight=0.5)]
    first = load_jobs(write_jsonl(folder / "a.jsonl", lines))
    second = load_jobs(write_jsonl(folder / "a.jsonl", ["# moved down", "", *lines]))
    assert [j.fingerprint() for j in first] == [j.fingerprint() for j in second]
    assert [j.line for j in first] != [j.line for j in second]
    assert first == second  # the line is not part of a job's identity
    fp = first[0].fingerprint()
    assert len(fp) == 32 and set(fp) <= set(string.hexdigits.lower())
    assert first[0].fingerprint() != first[1].fingerprint()


def test_fingerprint_is_the_same_for_a_toml_twin(folder: Path) -> None:
    [from_json] = load_jobs(write_jsonl(folder / "a.jsonl", [minimax()]))
    toml = folder / "a.toml"
    toml.write_text('[[job]]\nid = "song-01"\nservice = "minimax"\nlyrics = "##Hello##"\n'
                    'reference = "ref.wav"\n')
    [from_toml] = load_jobs(toml)
    assert from_json.fingerprint() == from_toml.fingerprint()


def test_default_and_explicit_values_fingerprint_alike(folder: Path) -> None:
    [a] = parse(folder, minimax())
    [b] = parse(folder, minimax(format="mp3", sample_rate=44100, bitrate=256000,
                                out="song-01.mp3", purpose="song"))
    assert a.fingerprint() == b.fingerprint()


@pytest.mark.parametrize("change", [
    {"lyrics": "##Bye##"}, {"reference": "voice.wav"}, {"purpose": "voice"},
    {"format": "wav"}, {"sample_rate": 32000}, {"bitrate": 128000}, {"out": "other.mp3"},
    {"id": "song-02"},
])
def test_minimax_fingerprint_changes_with_any_field(folder: Path, change: dict[str, Any]) -> None:
    [base] = parse(folder, minimax())
    [other] = parse(folder, minimax(**change))
    assert base.fingerprint() != other.fingerprint()


@pytest.mark.parametrize("change", [
    {"title": "Day"}, {"tags": "rock"}, {"negative_tags": "jazz"}, {"vocal_gender": "m"},
    {"style_weight": 0.1}, {"weirdness_constraint": 0.2}, {"audio_weight": 0.3},
    {"model": "V5"}, {"callback_url": "https://h.example/x"}, {"source": "vocals.mp3"},
    {"out": "x"},
])
def test_suno_fingerprint_changes_with_any_field(folder: Path, change: dict[str, Any]) -> None:
    [base] = parse(folder, suno())
    [other] = parse(folder, suno(**change))
    assert base.fingerprint() != other.fingerprint()


# -- inputs that must become problems, not crashes ---------------------------------------------


def test_line_separator_inside_a_json_string(folder: Path) -> None:
    path = folder / "jobs.jsonl"
    line = json.dumps(minimax(lyrics="verse one\u2028verse two\x0cthree"), ensure_ascii=False)
    path.write_text(line + "\n", encoding="utf-8")
    [job] = load_jobs(path)
    assert isinstance(job, MiniMaxJob) and job.lyrics == "verse one\u2028verse two\x0cthree"


def test_utf8_bom(folder: Path) -> None:
    path = folder / "jobs.jsonl"
    path.write_text("\ufeff" + json.dumps(minimax()) + "\n", encoding="utf-8")
    assert [j.id for j in load_jobs(path)] == ["song-01"]


def test_huge_json_integer_is_a_problem(folder: Path) -> None:
    path = write_jsonl(folder / "jobs.jsonl", ['{"sample_rate": ' + "1" * 5000 + "}"])
    with pytest.raises(JobFileError):
        load_jobs(path)


def test_deeply_nested_json_is_a_problem(folder: Path) -> None:
    path = write_jsonl(folder / "jobs.jsonl", ["[" * 100_000])
    with pytest.raises(JobFileError):
        load_jobs(path)


def test_non_utf8_job_file_is_a_problem(folder: Path) -> None:
    path = folder / "jobs.jsonl"
    line = json.dumps(minimax(lyrics="caf\u00e9"), ensure_ascii=False)
    path.write_bytes(line.encode("latin-1") + b"\n")
    with pytest.raises(JobFileError):
        load_jobs(path)


def test_huge_integer_weight_is_a_problem(folder: Path) -> None:
    line, field, _ = only_problem(folder, suno(style_weight=10**400))
    assert (line, field) == (1, "style_weight")


def test_overlong_reference_name_is_a_problem(folder: Path) -> None:
    line, field, _ = only_problem(folder, minimax(reference="r" * 300 + ".wav"))
    assert (line, field) == (1, "reference")


def test_unknown_home_directory_is_a_problem() -> None:
    with pytest.raises(JobFileError) as info:
        parse_jobs([(1, minimax(reference="~aiomusic-no-such-user/ref.wav"))])
    assert info.value.problems[0][1] == "reference"


def test_home_references_do_not_depend_on_how_the_job_file_is_named(
        folder: Path, tmp_path_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("home")
    (home / "mine.wav").write_bytes(b"x")
    monkeypatch.setenv("HOME", str(home))
    path = write_jsonl(folder / "jobs.jsonl", [minimax(reference="~/mine.wav")])
    monkeypatch.chdir(folder)
    [relative] = load_jobs("jobs.jsonl")  # works: base is '.', so '~/mine.wav' expands
    assert isinstance(relative, MiniMaxJob) and relative.reference == home / "mine.wav"
    [absolute] = load_jobs(path)  # fails: '<folder>/~/mine.wav' is not a file
    assert isinstance(absolute, MiniMaxJob) and absolute.reference == home / "mine.wav"


# -- fuzzing -----------------------------------------------------------------------------------

_FIELDS = ["id", "service", "out", "lyrics", "reference", "purpose", "voice_reference",
           "instrumental_reference", "refer_voice", "refer_instrumental", "format",
           "sample_rate", "bitrate", "source", "title", "tags", "negative_tags", "vocal_gender",
           "style_weight", "weirdness_constraint", "audio_weight", "model", "callback_url"]
_SAMPLES = ["minimax", "suno", "ref.wav", "vocals.mp3", "song", "voice", "instrumental", "mp3",
            "wav", "pcm", "m", "f", "V5", "V4_5PLUS", URL, "../x", "/abs", "a-1", "C:x", "~"]
# Sizes are bounded: huge values have their own tests above.
_scalars = (st.none() | st.booleans() | st.integers(-(10**12), 10**12)
            | st.floats(allow_nan=True, allow_infinity=True)
            | st.text(max_size=40) | st.sampled_from(_SAMPLES)
            | st.sampled_from([16000, 24000, 32000, 44100, 32000, 64000, 128000, 256000,
                               0.0, 0.5, 1.0]))
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
_job = st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=12), _json, max_size=12)


@st.composite
def _mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A valid job with some fields replaced by arbitrary values or dropped."""
    make: Callable[..., dict[str, Any]] = draw(st.sampled_from([minimax, suno]))
    job = make(id=draw(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True)))
    for name in draw(st.lists(st.sampled_from(_FIELDS), max_size=3)):
        if draw(st.booleans()):
            job.pop(name, None)
        else:
            job[name] = draw(_json)
    return job


_line = st.one_of(_mutated(), _mutated(), _job, _json)
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


@settings(max_examples=400, deadline=None, suppress_health_check=_SLOW_OK)
@given(items=st.lists(_line, max_size=5))
def test_fuzz_parse_jobs_returns_jobs_or_job_file_error(folder: Path,
                                                        items: list[object]) -> None:
    error: JobFileError | None = None
    try:
        jobs = parse_jobs(enumerate(items, 1), base=folder)
    except JobFileError as exc:
        error = exc
    if error is not None:
        assert error.problems
        assert all(line >= 1 for line, _, _ in error.problems)
        assert all(text for _, _, text in error.problems)
        assert str(error)
        return
    assert jobs and len({j.id for j in jobs}) == len(jobs)
    assert len({o.casefold() for j in jobs for o in j.outputs}) == len(jobs)
    for job in jobs:
        assert isinstance(job, MiniMaxJob | SunoJob)
        assert len(job.fingerprint()) == 32
        assert not job.out.startswith("/") and ".." not in job.out.split("/")


_VALID = [json.dumps(minimax()), json.dumps(suno())]


@settings(max_examples=300, deadline=None, suppress_health_check=_SLOW_OK)
@given(lines=st.lists(st.text(max_size=60) | st.sampled_from([*_VALID, "# c", "", "{}", "[]"]),
                      max_size=6))
def test_fuzz_load_jobs_on_arbitrary_lines(folder: Path, lines: list[str]) -> None:
    path = folder / "fuzz.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    error: JobFileError | None = None
    try:
        jobs = load_jobs(path)
    except JobFileError as exc:
        error = exc
    if error is not None:
        assert error.problems and error.path == str(path)
        return
    assert all(isinstance(j, MiniMaxJob | SunoJob) for j in jobs)


def test_every_value_problem_of_a_suno_line_is_reported(folder: Path) -> None:
    """Before: only the first value error of a line (the title) was reported."""
    found = problems_of(folder, suno(title="x" * 101, vocal_gender="x", style_weight=0.333,
                                     model="v5"))
    assert [field for _, field, _ in found] == ["title", "model", "vocal_gender",
                                                "style_weight"]


# -- portable output names (issue 16) ------------------------------------------------------------


@pytest.mark.parametrize(("out", "reason"), [
    pytest.param("CON", "reserved device name", id="con"),
    pytest.param("nul.mp3", "reserved device name", id="nul-with-extension"),
    pytest.param("songs/Com1.wav", "reserved device name", id="device-in-a-folder"),
    pytest.param("aux/song.mp3", "reserved device name", id="device-as-folder"),
    pytest.param("LPT\u00b9.mp3", "reserved device name", id="superscript-digit"),
    pytest.param("CON .mp3", "reserved device name", id="space-before-extension"),
    pytest.param("a\x01b.mp3", "U+0001", id="control"),
    pytest.param("a\x7fb.mp3", "U+007F", id="delete"),
    pytest.param("evil\u202egpj.mp3", "RIGHT-TO-LEFT OVERRIDE", id="bidi-override"),
    pytest.param("x\u2066y.mp3", "LEFT-TO-RIGHT ISOLATE", id="bidi-isolate"),
    pytest.param("line\u2028break.mp3", "U+2028", id="line-separator"),
    pytest.param("song.", "trailing dot or space", id="trailing-dot"),
    pytest.param("song ", "trailing dot or space", id="trailing-space"),
    pytest.param("dir./song.mp3", "trailing dot or space", id="folder-trailing-dot"),
    pytest.param("what?.mp3", "'?'", id="question-mark"),
    pytest.param("a|b.mp3", "'|'", id="pipe"),
    pytest.param("é" * 101 + ".mp3", "longer than 200 bytes", id="too-long"),
])
def test_out_must_be_a_portable_name(folder: Path, out: str, reason: str) -> None:
    """Finding: Windows device names, control and bidi characters were accepted."""
    for make in (minimax, suno):
        line, field, text = only_problem(folder, make(out=out))
        assert (line, field) == (1, "out")
        assert text.startswith(f"{out!r} is not a portable file name: ") and reason in text
        assert "\u202e" not in text and "\x01" not in text  # shown escaped, never rendered


@pytest.mark.parametrize("out", ["songs/Café \u2013 Night.mp3", "con-test.mp3", "connie.mp3",
                                 "ünïcödé/歌.wav", "a.b.c", "LPT10.mp3", "🎵.mp3"])
def test_portable_names_pass(folder: Path, out: str) -> None:
    for make in (minimax, suno):
        assert parse(folder, make(out=out))[0].out == out


@pytest.mark.parametrize("job_id", ["CON", "nul", "com7", "song."])
def test_an_id_that_names_the_output_must_be_portable(folder: Path, job_id: str) -> None:
    for make in (minimax, suno):
        line, field, text = only_problem(folder, make(id=job_id))
        assert (line, field) == (1, "id") and "not portable" in text and "'out'" in text
        assert parse(folder, make(id=job_id, out="fine.mp3"))[0].id == job_id


@pytest.mark.parametrize("nesting", [
    pytest.param("x = " + "[" * 100_000 + "]" * 100_000, id="arrays"),
    pytest.param("x = " + "{a = " * 100_000 + "1" + "}" * 100_000, id="inline-tables"),
])
def test_a_deeply_nested_toml_job_file_is_a_job_file_error(folder: Path, nesting: str) -> None:
    """Finding: a deeply nested TOML job file raised a raw RecursionError from the CLI."""
    path = folder / "jobs.toml"
    path.write_text(nesting + "\n", encoding="utf-8")
    with pytest.raises(JobFileError, match="nested far too deeply") as info:
        load_jobs(path)
    assert info.value.problems[0][0] == 1
