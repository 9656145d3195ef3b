"""The Suno operations' declarations: the per-model table, every check, every request body."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import attrs
import pytest

from aiomusic import ConfigurationError, InputError, SubmissionUnknownError
from aiomusic._core._config import LaneKind, Service
from aiomusic._core._operation import Context, Delivery, Output, find, operations, params_of
from aiomusic.suno import _catalog as cat
from aiomusic.suno import _family as fam
from aiomusic.suno._specs import SPECS
from aiomusic.suno.client import SunoClient

CTX = Context(Service.SUNO, "https://cb.example.com/hook")
CB = "https://cb.example.com/hook"


def body(op: str, **params: Any) -> dict[str, Any]:
    found = find("suno", op)
    assert found is not None
    p = found.params(**params)
    found.check(p)
    call = found.call(p, CTX)
    assert call.paid is found.paid and call.method == "POST"
    result: dict[str, Any] = call.json
    return result


def problems(op: str, **params: Any) -> dict[str | None, str]:
    found = find("suno", op)
    assert found is not None
    with pytest.raises(InputError) as caught:
        found.check(found.params(**params))
    return {p.field: p.message for p in caught.value.problems}  # type: ignore[attr-defined]


# -- the registry ---------------------------------------------------------------------------

EXPECTED = {
    "add-instrumental": (Output.TRACKS, "suno.task"), "generate": (Output.TRACKS, "suno.task"),
    "upload-cover": (Output.TRACKS, "suno.task"), "add-vocals": (Output.TRACKS, "suno.task"),
    "mashup": (Output.TRACKS, "suno.task"), "sounds": (Output.TRACKS, "suno.task"),
    "extend": (Output.TRACKS, "suno.task"), "upload-extend": (Output.TRACKS, "suno.task"),
    "replace-section": (Output.TRACKS, "suno.task"), "stems": (Output.STEMS, "suno.stems"),
    "wav": (Output.FILE, "suno.wav"), "midi": (Output.DOCUMENT, "suno.midi"),
    "video": (Output.FILE, "suno.mp4"), "lyrics": (Output.DOCUMENT, "suno.lyrics"),
    "timestamped-lyrics": (Output.DOCUMENT, None), "persona": (Output.DOCUMENT, None),
}


def test_every_operation_is_declared_with_its_output_and_task() -> None:
    ops = {op.name: op for op in operations("suno")}
    assert set(ops) == set(EXPECTED)
    for name, (output, spec) in EXPECTED.items():
        op = ops[name]
        assert op.output is output, name
        assert (op.task.name if op.task else None) == spec, name
        assert op.delivery is (Delivery.TASK if spec else Delivery.JSON), name
        assert op.paid is (name != "timestamped-lyrics"), name
        assert op.lane is (LaneKind.POLL if name == "timestamped-lyrics" else LaneKind.SUBMIT)
        for info in params_of(op.params):
            assert info.help and len(info.help) > 8, (name, info.name)
        if name in ("stems", "wav", "midi", "video", "timestamped-lyrics", "persona"):
            fields = {i.name: i for i in params_of(op.params)}
            assert fields["task_id"].kind == "id" and fields["task_id"].wire == "taskId"
    for alias, name in (("cover", "upload-cover"), ("vocals", "add-vocals"),
                        ("replace", "replace-section"), ("mp4", "video"),
                        ("vocal-removal", "stems"), ("convert-wav", "wav")):
        assert find("suno", alias) is ops[name]


def test_the_model_table() -> None:
    assert cat.limits_for("V4") == cat.Limits(3000, 200, 80)
    assert cat.limits_for("V4_5ALL") == cat.Limits(5000, 1000, 80)
    assert cat.limits_for("V5_5") == cat.limits_for("V9_NEW") == cat.Limits(5000, 1000, 100)
    assert "V5_5" not in cat.MASHUP_MODELS and "V5_5" in cat.GENERATION_MODELS
    assert cat.SOUNDS_MODELS == ("V5",) and cat.DEFAULT_ADD_MODEL == "V4_5PLUS"
    ops = {op.name: op for op in operations("suno")}
    assert ops["mashup"].models == cat.MASHUP_MODELS
    assert ops["add-vocals"].models == cat.ADD_MODELS
    assert ops["sounds"].models == ("V5",)
    assert {s.retention for s in SPECS.values()} == {cat.RETENTION}
    assert {SPECS[k].needs_assets for k in ("lyrics", "midi")} == {False}


def test_unknown_models_pass_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert body("generate", prompt="x", model="V7_TURBO")["model"] == "V7_TURBO"
    with caplog.at_level(logging.WARNING, logger="aiomusic"):
        assert cat.warn_unknown_model("suno.test", "V7_TURBO", cat.GENERATION_MODELS)
        assert not cat.warn_unknown_model("suno.test", "V7_TURBO", cat.GENERATION_MODELS)
        assert not cat.warn_unknown_model("suno.test", "V5", cat.GENERATION_MODELS)
    assert [r.message for r in caplog.records if "V7_TURBO" in r.message] != []
    assert len([r for r in caplog.records if "V7_TURBO" in r.getMessage()]) == 1


# -- generate and the custom-mode rules -------------------------------------------------------


def test_generate_non_custom_sends_only_the_description() -> None:
    assert body("generate", prompt="a calm piano piece") == {
        "customMode": False, "instrumental": False, "prompt": "a calm piano piece",
        "model": cat.DEFAULT_MODEL, "callBackUrl": CB}


def test_generate_custom_with_every_control() -> None:
    sent = body("generate", prompt="[Verse] hi", custom_mode=True, style="jazz", title="T",
                model="V5", negative_tags="metal", vocal_gender="f", style_weight=0.61,
                weirdness_constraint=0.1 + 0.2, audio_weight=1, persona_id="p-1",
                persona_model="voice_persona", callback_url="https://mine.example.com/cb")
    assert sent == {"customMode": True, "instrumental": False, "prompt": "[Verse] hi",
                    "style": "jazz", "title": "T", "personaId": "p-1",
                    "personaModel": "voice_persona", "negativeTags": "metal",
                    "vocalGender": "f", "styleWeight": 0.61, "weirdnessConstraint": 0.3,
                    "audioWeight": 1.0, "model": "V5",
                    "callBackUrl": "https://mine.example.com/cb"}


@pytest.mark.parametrize(("model", "prompt", "style", "title"), [
    pytest.param("V4", 3000, 200, 80, id="V4"),
    pytest.param("V4_5ALL", 5000, 1000, 80, id="V4_5ALL"),
    pytest.param("V5_5", 5000, 1000, 100, id="V5_5"),
])
def test_custom_limits_follow_the_model(model: str, prompt: int, style: int, title: int
                                        ) -> None:
    assert body("generate", prompt="p" * prompt, style="s" * style, title="t" * title,
                custom_mode=True, model=model)["model"] == model
    found = problems("generate", prompt="p" * (prompt + 1), style="s" * (style + 1),
                     title="t" * (title + 1), custom_mode=True, model=model)
    assert found == {"prompt": f"must be at most {prompt} characters, got {prompt + 1}",
                     "style": f"must be at most {style} characters, got {style + 1}",
                     "title": f"must be at most {title} characters, got {title + 1}"}


def test_every_problem_of_a_request_is_named() -> None:
    assert problems("generate", prompt="x" * 501, style="s", persona_id="p",
                    persona_model="nope", vocal_gender="x", style_weight=0.615,
                    custom_mode="yes", callback_url="ftp://x") == {
        "custom_mode": "must be true or false, got 'yes'",
        "prompt": "must be at most 500 characters, got 501",
        "style": "is only sent in custom mode (set custom_mode, or leave it out)",
        "persona_id": "applies in custom mode only (set custom_mode)",
        "persona_model": "must be one of style_persona, voice_persona, got 'nope'",
        "vocal_gender": "must be one of m, f, got 'x'",
        "style_weight": "must be a multiple of 0.01 (two decimals), got 0.615",
        "callback_url": "must be an absolute http(s) URL such as 'https://example.com/x', "
                        "got 'ftp://x'"}
    assert problems("generate", custom_mode=True, instrumental=True, style=None,
                    persona_model="style_persona") == {
        "style": "is required", "title": "is required", "persona_model": "needs persona_id"}
    assert body("generate", custom_mode=True, instrumental=True, style="lofi",
                title="T")["instrumental"] is True


def test_a_call_needs_a_callback_url_and_uploaded_sources() -> None:
    op = find("suno", "upload-cover")
    assert op is not None
    local = op.params(source=Path("song.mp3"), prompt="jazzy")
    op.check(local)  # a local file is fine to check: the client uploads it first
    with pytest.raises(InputError, match="uploaded first"):
        op.call(local, CTX)
    remote = op.params(source="https://x.example.com/a.mp3", prompt="jazzy")
    with pytest.raises(ConfigurationError, match="callBackUrl"):
        op.call(remote, Context(Service.SUNO))
    assert op.call(remote, CTX).url == "/api/v1/generate/upload-cover"


def test_submission_readers_need_a_task_id() -> None:
    op = find("suno", "generate")
    assert op is not None and op.read is not None
    assert op.read({"code": 200, "data": {"taskId": " t1 "}}) == "t1"
    assert op.read({"code": 200, "data": {"task_id": "t2"}}) == "t2"
    for data in (None, {}, {"taskId": ""}, {"taskId": 5}, "x"):
        with pytest.raises(SubmissionUnknownError, match=r"suno\.generate"):
            op.read({"code": 200, "data": data})


# -- the rest of the family -------------------------------------------------------------------


def test_extend_with_and_without_its_own_parameters() -> None:
    assert body("extend", audio_id=" a1 ") == {
        "audioId": "a1", "defaultParamFlag": False, "model": cat.DEFAULT_MODEL,
        "callBackUrl": CB}
    assert body("extend", audio_id="a1", default_param_flag=True, prompt="more",
                style="jazz", title="T", continue_at=61.5, model="V5",
                persona_id="p") == {
        "audioId": "a1", "defaultParamFlag": True, "prompt": "more", "style": "jazz",
        "title": "T", "continueAt": 61.5, "personaId": "p", "model": "V5", "callBackUrl": CB}
    assert problems("extend", audio_id="", default_param_flag=True, continue_at=0) == {
        "audio_id": "is required and must not be empty", "prompt": "is required",
        "style": "is required", "title": "is required",
        "continue_at": "must be after 0 s, got 0"}
    assert problems("extend", audio_id="a", default_param_flag=True, prompt="p", style="s",
                    title="t")["continue_at"] == "is required with default_param_flag"
    assert body("extend", audio_id="a", prompt="keep going")["prompt"] == "keep going"


def test_upload_extend_and_cover() -> None:
    url = "https://x.example.com/a.mp3"
    assert body("upload-extend", source=url, instrumental=True, default_param_flag=True,
                style="s", title="t", continue_at=10, model="V4") == {
        "uploadUrl": url, "instrumental": True, "defaultParamFlag": True, "style": "s",
        "title": "t", "continueAt": 10.0, "model": "V4", "callBackUrl": CB}
    assert body("upload-cover", source=url, prompt="jazzy")["uploadUrl"] == url
    assert problems("upload-cover", source="ftp://x", prompt="p")["source"].startswith(
        "must be an absolute http(s) URL")
    assert problems("upload-cover", source="", prompt="p") == {
        "source": "is required and must not be empty"}


def test_add_vocals_requires_its_texts() -> None:
    url = "https://x.example.com/a.mp3"
    assert body("add-vocals", source=url, prompt="la la", title="T", style="soul",
                negative_tags="metal") == {
        "uploadUrl": url, "prompt": "la la", "title": "T", "style": "soul",
        "negativeTags": "metal", "model": "V4_5PLUS", "callBackUrl": CB}
    assert problems("add-vocals", source=url, prompt="", title="t" * 101, style="s",
                    negative_tags="") == {
        "prompt": "is required and must not be empty",
        "title": "must be at most 100 characters, got 101",
        "negative_tags": "is required and must not be empty"}


def test_mashup_takes_two_tracks() -> None:
    urls = ["https://x.example.com/a.mp3", "https://x.example.com/b.mp3"]
    assert body("mashup", source=urls[0], second_source=urls[1],
                prompt="blend")["uploadUrlList"] == urls
    assert problems("mashup", source=urls[0], second_source="", prompt="blend") == {
        "second_source": "is required and must not be empty"}
    op = find("suno", "mashup")
    assert op is not None
    with pytest.raises(InputError) as caught:
        op.call(op.params(source=urls[0], second_source=Path("b.mp3"), prompt="p"), CTX)
    assert caught.value.field == "second_source"
    assert [i.name for i in params_of(op.params) if i.kind == "source"] == [
        "source", "second_source"]


def test_replace_section_modes_and_window() -> None:
    base = {"prompt": "new words", "tags": "pop", "title": "T", "full_lyrics": "all",
            "infill_start": 10.504, "infill_end": 20.75}
    assert body("replace-section", task_id="t", audio_id="a", **base) == {
        "taskId": "t", "audioId": "a", "prompt": "new words", "tags": "pop", "title": "T",
        "fullLyrics": "all", "infillStartS": 10.5, "infillEndS": 20.75, "callBackUrl": CB}
    url = "https://x.example.com/a.mp3"
    sent = body("replace-section", source=url, model="V5", **base)
    assert sent["uploadUrl"] == url and sent["model"] == "V5" and "taskId" not in sent
    assert problems("replace-section", source=url, task_id="t", **base) == {
        "task_id": "cannot be combined with source (replace a section of your own audio or "
                   "of a generated track)", "model": "is required with source"}
    assert problems("replace-section", task_id="t", audio_id="a",
                    **{**base, "infill_end": 15.0}) == {
        "infill_end": "must be 6-60 s after infill_start, got 4.5 s"}
    assert "infill_end" in problems("replace-section", task_id="t", audio_id="a",
                                    **{**base, "infill_end": 71})


def test_sounds() -> None:
    assert body("sounds", prompt="rain", sound_tempo=90, sound_key="Am", sound_loop=True) == {
        "prompt": "rain", "soundLoop": True, "soundTempo": 90, "soundKey": "Am",
        "grabLyrics": False, "model": "V5", "callBackUrl": CB}
    assert problems("sounds", prompt="x" * 501, sound_tempo=301, sound_key="H") == {
        "prompt": "must be at most 500 characters, got 501",
        "sound_tempo": "must be from 1 to 300, got 301",
        "sound_key": "must be one of " + ", ".join(cat.SOUND_KEYS) + ", got 'H'"}


# -- follow-ups, lyrics, personas -------------------------------------------------------------


def test_follow_up_bodies() -> None:
    assert body("stems", task_id="t", audio_id="a") == {
        "taskId": "t", "audioId": "a", "type": "separate_vocal", "callBackUrl": CB}
    assert body("stems", task_id="t", audio_id="a", type="split_stem_advanced",
                stem_name="drums")["stemName"] == "drums"
    assert problems("stems", task_id="t", audio_id="a", stem_name="drums", type="x") == {
        "type": "must be one of separate_vocal, split_stem, split_stem_advanced, got 'x'",
        "stem_name": "applies to type split_stem_advanced only"}
    assert body("wav", task_id="t", audio_id="a") == {"taskId": "t", "audioId": "a",
                                                      "callBackUrl": CB}
    assert body("midi", task_id="t") == {"taskId": "t", "callBackUrl": CB}
    assert body("video", task_id="t", audio_id="a", author="me", domain_name="x.io") == {
        "taskId": "t", "audioId": "a", "author": "me", "domainName": "x.io",
        "callBackUrl": CB}
    assert problems("video", task_id="", audio_id="a", author="a" * 51) == {
        "task_id": "is required and must not be empty",
        "author": "must be at most 50 characters, got 51"}
    assert body("lyrics", prompt="the sea") == {"prompt": "the sea", "callBackUrl": CB}
    assert problems("lyrics", prompt=" ", callback_url="nope")["prompt"].startswith("is")


def test_synchronous_calls() -> None:
    op = find("suno", "timestamped-lyrics")
    assert op is not None
    call = op.call(op.params(task_id="t", audio_id="a"), Context(Service.SUNO))
    assert (call.url, call.json, call.paid, call.lane) == (
        "/api/v1/generate/get-timestamped-lyrics", {"taskId": "t", "audioId": "a"}, False,
        LaneKind.POLL)
    assert body("persona", task_id="t", audio_id="a", name="N", description="D",
                vocal_start=5, vocal_end=25, style="soul") == {
        "taskId": "t", "audioId": "a", "name": "N", "description": "D", "vocalStart": 5,
        "vocalEnd": 25, "style": "soul"}
    assert problems("persona", task_id="t", audio_id="a", name="", description="D",
                    vocal_start=0, vocal_end=35) == {
        "name": "is required and must not be empty",
        "vocal_end": "must be 10-30 s after vocal_start, got 35 s"}


def test_fingerprints_follow_the_parameters() -> None:
    op = find("suno", "generate")
    assert op is not None
    one = op.params(prompt="a")
    assert op.fingerprint(one) == op.fingerprint(attrs.evolve(one))
    assert op.fingerprint(one) != op.fingerprint(attrs.evolve(one, prompt="b"))


def test_placeholders_stand_in_only_while_checking() -> None:
    assert fam.is_url("https://x") and not fam.is_url(Path("x")) and not fam.is_url(None)


def test_the_docs_list_every_operation() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "suno.md").read_text()
    rows = re.findall(r"^\| `(\w+)\(.*?\| `([\w-]+)`", page, flags=re.MULTILINE)
    assert {op for _method, op in rows} == {op.name for op in operations("suno")}
    for method, _op in rows:
        assert hasattr(SunoClient, method), method


def test_audio_is_told_by_its_first_bytes() -> None:
    from aiomusic.suno._submit import audio_kind

    assert [audio_kind(h) for h in (b"RIFF\0\0\0\0WAVEfmt ", b"ID3\x04", b"\xff\xfb\x90",
                                    b"fLaC\0", b"OggS\0", b"\0\0\0\x20ftypM4A ",
                                    b"<html>", b"")] == [
        "wav", "mp3", "mp3", "flac", "ogg", "m4a", None, None]


def test_the_stems_folder_swap(tmp_path: Path) -> None:
    from aiomusic._io._folders import _swap

    staging, target = tmp_path / "new", tmp_path / "stems"
    staging.mkdir()
    (staging / "vocals.mp3").write_bytes(b"v")
    target.mkdir()
    (target / "old.mp3").write_bytes(b"o")
    with pytest.raises(FileExistsError, match="meanwhile"):
        _swap(staging, target, False)
    _swap(staging, target, True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stems"]
    assert [p.name for p in target.iterdir()] == ["vocals.mp3"]
