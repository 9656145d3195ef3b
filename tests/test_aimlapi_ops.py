"""The AI/ML API's generate declaration: each model's own rules, its wire shape, pass-through."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from aiomusic import InputError
from aiomusic._core._config import Service
from aiomusic._core._operation import Checks, Context, Delivery, Output, find, params_of
from aiomusic.aimlapi._models import MODELS
from aiomusic.aimlapi._ops import AUDIO_TASK, GENERATE, MODEL_NAMES, GenerateParams, payload

ROOT = Path(__file__).resolve().parent.parent
LYRICS = "[Verse]\nStreetlights flicker, the night breeze sighs"
PROMPT = "Lo-fi pop, warm keys, slow intro"
CTX = Context(Service.AIMLAPI)


def problems(**fields: Any) -> list[tuple[str | None, str]]:
    checks = Checks()
    GENERATE.validate(GenerateParams(**fields), checks)
    return [(p.field, p.message) for p in checks.problems]


def fields_of(**fields: Any) -> list[str | None]:
    return [f for f, _m in problems(**fields)]


def test_the_declaration() -> None:
    assert find("aimlapi", "generate") is GENERATE
    assert (GENERATE.paid, GENERATE.delivery, GENERATE.output) == (True, Delivery.TASK,
                                                                   Output.FILE)
    assert GENERATE.task is AUDIO_TASK and GENERATE.models == MODEL_NAMES
    assert set(MODEL_NAMES) == {"stable-audio", "google/lyria2", "elevenlabs/eleven_music",
                                "minimax/music-1.5", "minimax/music-2.0", "minimax/music-2.6",
                                "minimax/music-cover", "minimax-music"}
    names = [p.name for p in params_of(GenerateParams)]
    assert names[0] == "model" and names[-1] == "extra"
    assert all(p.cli == "--" + p.name.replace("_", "-") for p in params_of(GenerateParams))


@pytest.mark.parametrize(("fields", "body"), [
    pytest.param({"model": "stable-audio", "prompt": "rain on a tin roof", "seconds_start": 1,
                  "seconds_total": 47, "steps": 1000},
                 {"model": "stable-audio", "prompt": "rain on a tin roof", "seconds_start": 1,
                  "seconds_total": 47, "steps": 1000}, id="stable-audio"),
    pytest.param({"model": "google/lyria2", "prompt": "strings", "negative_prompt": "drums",
                  "seed": 0},
                 {"model": "google/lyria2", "prompt": "strings", "negative_prompt": "drums",
                  "seed": 0}, id="lyria2"),
    pytest.param({"model": "elevenlabs/eleven_music", "prompt": "x" * 2000,
                  "music_length_ms": 10_000},
                 {"model": "elevenlabs/eleven_music", "prompt": "x" * 2000,
                  "music_length_ms": 10_000}, id="eleven"),
    pytest.param({"model": "minimax/music-1.5", "prompt": PROMPT, "lyrics": LYRICS,
                  "sample_rate": 32000, "bitrate": 128000},
                 {"model": "minimax/music-1.5", "prompt": PROMPT, "lyrics": LYRICS,
                  "audio_setting": {"format": "mp3", "audio_sample_rate": 32000,
                                    "bitrate": 128000}}, id="music-1.5-audio_sample_rate"),
    pytest.param({"model": "minimax/music-2.0", "prompt": PROMPT, "lyrics": LYRICS,
                  "format": "wav"},
                 {"model": "minimax/music-2.0", "prompt": PROMPT, "lyrics": LYRICS,
                  "audio_setting": {"format": "wav"}}, id="music-2.0"),
    pytest.param({"model": "minimax/music-2.6", "prompt": PROMPT, "is_instrumental": True,
                  "sample_rate": 44100},
                 {"model": "minimax/music-2.6", "prompt": PROMPT, "is_instrumental": True,
                  "audio_setting": {"format": "mp3", "audio_sample_rate": 44100}},
                 id="music-2.6-instrumental"),
    pytest.param({"model": "minimax/music-2.6", "prompt": PROMPT, "lyrics_optimizer": True},
                 {"model": "minimax/music-2.6", "prompt": PROMPT, "lyrics_optimizer": True},
                 id="music-2.6-optimizer"),
    pytest.param({"model": "minimax/music-2.6", "lyrics": LYRICS},
                 {"model": "minimax/music-2.6", "lyrics": LYRICS}, id="music-2.6-lyrics-only"),
    pytest.param({"model": "minimax/music-cover", "prompt": PROMPT,
                  "reference_audio_url": "https://cdn.example/ref.mp3", "sample_rate": 24000},
                 {"model": "minimax/music-cover", "prompt": PROMPT,
                  "reference_audio_url": "https://cdn.example/ref.mp3",
                  "audio_setting": {"format": "mp3", "sample_rate": 24000}},
                 id="cover-sample_rate"),
    pytest.param({"model": "minimax/music-cover", "prompt": PROMPT,
                  "reference_audio_url": "data:audio/mpeg;base64,SUQzBAAAAAAA"},
                 {"model": "minimax/music-cover", "prompt": PROMPT,
                  "reference_audio_url": "data:audio/mpeg;base64,SUQzBAAAAAAA"},
                 id="cover-base64"),
    pytest.param({"model": "minimax-music", "prompt": "##la la la##",
                  "reference_audio_url": "https://cdn.example/ref.wav"},
                 {"model": "minimax-music", "prompt": "##la la la##",
                  "reference_audio_url": "https://cdn.example/ref.wav"}, id="legacy"),
    pytest.param({"model": "acme/music-9", "prompt": "anything", "steps": 5000,
                  "sample_rate": 48000, "extra": {"tempo": 120}},
                 None, id="unknown-model-passes-through"),
])
def test_valid_requests_and_their_wire_shape(fields: dict[str, Any],
                                             body: dict[str, Any] | None) -> None:
    params = GenerateParams(**fields)
    assert problems(**fields) == []
    GENERATE.check(params)
    call = GENERATE.call(params, CTX)
    assert call.paid and call.key == fields["model"]
    if body is not None:
        assert call.json == body
        assert next(iter(call.json)) == "model"


def test_an_unknown_model_gets_the_common_sample_rate_key_and_extra_last() -> None:
    params = GenerateParams(model="acme/music-9", prompt="p", sample_rate=48000,
                            extra={"tempo": 120, "style": {"mood": "calm"}})
    body = payload(params)
    assert body == {"model": "acme/music-9", "prompt": "p",
                    "audio_setting": {"format": "mp3", "sample_rate": 48000},
                    "tempo": 120, "style": {"mood": "calm"}}
    assert list(body)[-2:] == ["tempo", "style"]


@pytest.mark.parametrize(("fields", "expected"), [
    pytest.param({"model": "stable-audio"}, ["prompt"], id="stable-needs-prompt"),
    pytest.param({"model": "stable-audio", "prompt": "p", "seconds_total": 48, "steps": 0,
                  "seconds_start": 0}, ["seconds_start", "seconds_total", "steps"],
                 id="stable-ranges"),
    pytest.param({"model": "stable-audio", "prompt": "p", "seconds_total": 2.5},
                 ["seconds_total"], id="stable-integer"),
    pytest.param({"model": "google/lyria2", "prompt": "p", "seed": -1}, ["seed"],
                 id="lyria-seed"),
    pytest.param({"model": "google/lyria2", "prompt": "p", "lyrics": LYRICS, "steps": 3},
                 ["lyrics", "steps"], id="lyria-foreign-fields"),
    pytest.param({"model": "elevenlabs/eleven_music", "prompt": "x" * 2001,
                  "music_length_ms": 9_999}, ["prompt", "music_length_ms"], id="eleven-limits"),
    pytest.param({"model": "elevenlabs/eleven_music", "prompt": "p",
                  "music_length_ms": 300_001}, ["music_length_ms"], id="eleven-too-long"),
    pytest.param({"model": "minimax/music-1.5", "prompt": "x" * 301, "lyrics": "short"},
                 ["prompt", "lyrics"], id="1.5-lengths"),
    pytest.param({"model": "minimax/music-1.5", "prompt": "short"}, ["prompt", "lyrics"],
                 id="1.5-needs-lyrics"),
    pytest.param({"model": "minimax/music-2.0", "prompt": PROMPT, "lyrics": LYRICS,
                  "sample_rate": 48000, "bitrate": 320000, "format": "flac"},
                 ["format", "sample_rate", "bitrate"], id="2.0-audio-setting"),
    pytest.param({"model": "minimax/music-2.0", "prompt": PROMPT, "lyrics": "x" * 3001},
                 ["lyrics"], id="2.0-lyrics-too-long"),
    pytest.param({"model": "minimax/music-2.6"}, ["lyrics"], id="2.6-needs-lyrics"),
    pytest.param({"model": "minimax/music-2.6", "lyrics": LYRICS, "is_instrumental": True},
                 ["is_instrumental", "prompt"], id="2.6-instrumental-with-lyrics"),
    pytest.param({"model": "minimax/music-2.6", "lyrics": LYRICS, "lyrics_optimizer": True,
                  "is_instrumental": True},
                 ["is_instrumental", "lyrics_optimizer", "lyrics_optimizer", "prompt"],
                 id="2.6-all-three"),
    pytest.param({"model": "minimax/music-2.6", "prompt": "p", "is_instrumental": "yes"},
                 ["is_instrumental", "lyrics"], id="2.6-bool"),
    pytest.param({"model": "minimax/music-2.6", "prompt": "x" * 2001, "lyrics": "x" * 3001},
                 ["prompt", "lyrics"], id="2.6-lengths"),
    pytest.param({"model": "minimax/music-cover", "prompt": PROMPT},
                 ["reference_audio_url"], id="cover-needs-reference"),
    pytest.param({"model": "minimax/music-cover", "prompt": PROMPT,
                  "reference_audio_url": "ftp://x/y.mp3"}, ["reference_audio_url"],
                 id="cover-ftp"),
    pytest.param({"model": "minimax/music-cover", "prompt": PROMPT,
                  "reference_audio_url": "A" * (70 * 2**20)}, ["reference_audio_url"],
                 id="cover-base64-over-50-MB"),
    pytest.param({"model": "minimax/music-cover", "prompt": PROMPT, "lyrics": "la",
                  "reference_audio_url": "not base64!"}, ["lyrics", "reference_audio_url"],
                 id="cover-lyrics-and-junk"),
    pytest.param({"model": "minimax-music", "prompt": "x" * 601,
                  "reference_audio_url": "SUQzBAAAAAAA"}, ["prompt", "reference_audio_url"],
                 id="legacy-url-only"),
    pytest.param({"model": "minimax-music", "prompt": "  ",
                  "reference_audio_url": "https://h/a b.mp3"},
                 ["prompt", "reference_audio_url"], id="legacy-blank-and-space"),
    pytest.param({"model": ""}, ["model"], id="empty-model"),
    pytest.param({"model": None, "prompt": "p"}, ["model"], id="no-model"),
    pytest.param({"model": "acme/x", "prompt": 5, "steps": "many", "is_instrumental": 1,
                  "format": ""}, ["prompt", "steps", "is_instrumental", "format"],
                 id="unknown-model-types-still-checked"),
    pytest.param({"model": "stable-audio", "prompt": "p", "extra": {"prompt": "q",
                                                                     "model": "x"}},
                 ["extra", "extra"], id="extra-repeats-fields"),
    pytest.param({"model": "minimax/music-2.0", "prompt": PROMPT, "lyrics": LYRICS,
                  "format": "wav", "extra": {"audio_setting": {"format": "mp3"}}},
                 ["extra"], id="extra-repeats-audio-setting"),
    pytest.param({"model": "stable-audio", "prompt": "p", "extra": ["a"]}, ["extra"],
                 id="extra-not-a-mapping"),
    pytest.param({"model": "stable-audio", "prompt": "p", "extra": {1: "a", "": 2}},
                 ["extra", "extra"], id="extra-bad-keys"),
    pytest.param({"model": "stable-audio", "prompt": "p", "extra": {"x": float("nan"),
                                                                     "y": object()}},
                 ["extra"], id="extra-not-json"),
])
def test_every_problem_of_a_request_is_named(fields: dict[str, Any],
                                             expected: list[str]) -> None:
    found = fields_of(**fields)
    assert found == expected, problems(**fields)
    with pytest.raises(InputError):
        GENERATE.check(GenerateParams(**fields))


def test_messages_say_what_to_do() -> None:
    found = dict(problems(model="google/lyria2", prompt="p", steps=3))
    assert "is not a field of google/lyria2" in found["steps"]
    assert "put it in extra" in found["steps"]
    assert "negative_prompt, seed" in found["steps"]
    found = dict(problems(model="minimax/music-2.6"))
    assert "unless is_instrumental or lyrics_optimizer" in found["lyrics"]
    found = dict(problems(model="minimax/music-cover", prompt="x"))
    assert found["prompt"].startswith("must be at least 10 characters")
    assert found["reference_audio_url"] == "is required for minimax/music-cover"


def test_the_parameters_metadata_keeps_the_documented_single_model_limits() -> None:
    info = {p.name: p for p in params_of(GenerateParams)}
    assert (info["seconds_total"].minimum, info["seconds_total"].maximum) == (1, 47)
    assert (info["steps"].minimum, info["steps"].maximum) == (1, 1000)
    assert (info["music_length_ms"].minimum, info["music_length_ms"].maximum) == (10_000,
                                                                                 300_000)
    assert info["seed"].minimum == 0
    assert info["extra"].kind == "mapping" and not info["model"].positional
    assert info["model"].required and not info["prompt"].required


def test_the_fingerprint_follows_the_fields_and_extra() -> None:
    one = GenerateParams(model="stable-audio", prompt="p", extra={"a": 1})
    two = GenerateParams(model="stable-audio", prompt="p", extra={"a": 2})
    assert GENERATE.fingerprint(one) == GENERATE.fingerprint(
        GenerateParams(model="stable-audio", prompt="p", extra={"a": 1}))
    assert GENERATE.fingerprint(one) != GENERATE.fingerprint(two)


def test_the_docs_model_table_matches_the_declarations() -> None:
    """docs/aimlapi.md's table lists every model with exactly its declared fields."""
    text = (ROOT / "docs" / "aimlapi.md").read_text(encoding="utf-8")
    table = text[text.index("| model |"):]
    rows = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0].strip("`")] = cells
    assert list(rows) == list(MODELS)
    for name, model in MODELS.items():
        cells = rows[name]
        listed = re.findall(r"`(\w+)`(\*?)", cells[2])
        assert [(n, bool(star)) for n, star in listed] == \
            [(r.name, r.required) for r in model.rules], name
        for rule in model.rules:
            if rule.describe():
                assert rule.describe() in cells[3], (name, rule.name)
