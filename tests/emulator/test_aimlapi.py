"""The emulated AI/ML API async family, on the wire: models, queueing, costs, links, faults."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import mutagen
import pytest
from emu_helpers import KEY, reference

from aiomusic.emulator import Emulator, EmulatorConfig, Limits, Timings

PATH = "/v2/generate/audio"
Factory = Callable[[EmulatorConfig], Emulator]
LYRICS = "[Verse]\nStreetlights flicker, the night breeze sighs"
PROMPT = "Lo-fi pop, warm keys, slow intro"

BODIES: dict[str, dict[str, Any]] = {
    "stable-audio": {"prompt": "rain on a tin roof", "seconds_total": 3, "steps": 50},
    "google/lyria2": {"prompt": "strings", "negative_prompt": "drums", "seed": 4},
    "elevenlabs/eleven_music": {"prompt": "lo-fi", "music_length_ms": 10_000},
    "minimax/music-1.5": {"prompt": PROMPT, "lyrics": LYRICS,
                          "audio_setting": {"format": "wav", "audio_sample_rate": 16000}},
    "minimax/music-2.0": {"prompt": PROMPT, "lyrics": LYRICS},
    "minimax/music-2.6": {"prompt": PROMPT, "is_instrumental": True},
    "minimax/music-cover": {"prompt": PROMPT, "reference_audio_url": "<ref>",
                            "audio_setting": {"format": "mp3", "sample_rate": 24000}},
    "minimax-music": {"prompt": "##la la la##", "reference_audio_url": "<ref>"},
}
#: (suffix, content type, usage reported at submission, usd reported)
SHAPES = {"stable-audio": ("wav", "audio/wav", False, False),
          "google/lyria2": ("wav", "audio/wav", False, False),
          "elevenlabs/eleven_music": ("mp3", "audio/mpeg", False, True),
          "minimax/music-1.5": ("wav", "audio/wav", True, True),
          "minimax/music-2.0": ("mp3", "audio/mpeg", True, True),
          "minimax/music-2.6": ("mp3", "audio/mpeg", True, True),
          "minimax/music-cover": ("mp3", "audio/mpeg", True, True),
          "minimax-music": ("mp3", "audio/mpeg", False, False)}


def hosted(client: httpx.Client, seconds: float) -> str:
    """A reference track of ``seconds`` that the emulator serves itself."""
    resp = client.post("/api/file-stream-upload", data={"uploadPath": "refs"},
                       files={"file": ("r.mp3", reference(seconds), "audio/mpeg")})
    url: str = resp.json()["data"]["downloadUrl"]
    return url


def body_for(client: httpx.Client, model: str) -> dict[str, Any]:
    body = {"model": model, **BODIES[model]}
    if body.get("reference_audio_url") == "<ref>":  # the legacy model wants more than 15 s
        body["reference_audio_url"] = hosted(client, 20.0 if model == "minimax-music" else 8.0)
    return body


def status(client: httpx.Client, generation_id: str) -> dict[str, Any]:
    resp = client.get(PATH, params={"generation_id": generation_id})
    assert resp.status_code == 200, resp.text
    answer: dict[str, Any] = resp.json()
    return answer


@pytest.mark.parametrize("model", list(BODIES))
def test_each_model_queues_then_completes_with_a_signed_link(
        client: httpx.Client, emulator: Emulator, model: str) -> None:
    suffix, mime, at_submit, usd = SHAPES[model]
    resp = client.post(PATH, json=body_for(client, model))
    assert resp.status_code == 200, resp.text
    submitted = resp.json()
    assert submitted["status"] == "queued" and submitted["id"]
    assert ("meta" in submitted) == at_submit
    done = status(client, submitted["id"])  # instant timings: done at the first look
    assert done["status"] == "completed" and done["error"] is None
    usage = done["meta"]["usage"]
    assert usage["credits_used"] > 0 and ("usd_spent" in usage) == usd
    url = done["audio_file"]["url"]
    assert "Expires=" in url and "Signature=" in url and url.split("?")[0].endswith(suffix)
    audio = httpx.get(url)
    assert audio.status_code == 200 and audio.headers["content-type"] == mime
    if suffix == "mp3":
        assert mutagen.File(io.BytesIO(audio.content)).info.length > 1  # type: ignore[attr-defined]
    if model.startswith("minimax/"):
        assert done["extra_info"]["music_size"] == len(audio.content)
        assert done["trace_id"]
    if model == "minimax-music":
        assert done["audio_file"]["file_size"] == len(audio.content)
    assert emulator.counters.paid(key=KEY, operation="aiml.audio.submit") == 1


def test_ids_are_shaped_like_the_services(client: httpx.Client) -> None:
    two = client.post(PATH, json=body_for(client, "minimax/music-2.0")).json()["id"]
    assert two.endswith(":minimax/music-2.0") and len(two.partition(":")[0]) == 36
    other = client.post(PATH, json=body_for(client, "stable-audio")).json()["id"]
    assert ":" not in other and len(other) == 21


def test_the_lengths_asked_for_are_honoured(client: httpx.Client) -> None:
    gen = client.post(PATH, json={"model": "stable-audio", "prompt": "x",
                                  "seconds_total": 2}).json()["id"]
    data = httpx.get(status(client, gen)["audio_file"]["url"]).content
    assert mutagen.File(io.BytesIO(data)).info.length == pytest.approx(2, abs=0.05)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("body", "fragments"), [
    pytest.param({"model": "nope"}, ["model: Invalid enum value", "received 'nope'"],
                 id="unknown-model"),
    pytest.param({"model": "stable-audio", "seconds_total": 48, "steps": "x"},
                 ["prompt: Required", "seconds_total: Number must be less than or equal to 47",
                  "steps: Expected number, received str"], id="stable-audio"),
    pytest.param({"model": "minimax/music-1.5", "prompt": "short", "lyrics": LYRICS,
                  "audio_setting": {"format": "mp3", "sample_rate": 44100}},
                 ["prompt: String must contain at least 10 character(s)",
                  "audio_setting: Unrecognized key(s) in object: 'sample_rate'"],
                 id="1.5-wants-audio_sample_rate"),
    pytest.param({"model": "minimax/music-cover", "prompt": PROMPT,
                  "reference_audio_url": "https://x/a.mp3",
                  "audio_setting": {"audio_sample_rate": 44100, "bitrate": 1}},
                 ["Unrecognized key(s) in object: 'audio_sample_rate'",
                  "audio_setting.format: Invalid enum value",
                  "audio_setting.bitrate: Invalid enum value"], id="cover-wants-sample_rate"),
    pytest.param({"model": "minimax/music-2.6", "prompt": PROMPT},
                 ["lyrics: Required unless is_instrumental or lyrics_optimizer"], id="2.6"),
    pytest.param({"model": "minimax/music-2.6", "lyrics": LYRICS, "is_instrumental": "yes"},
                 ["is_instrumental: Expected boolean"], id="2.6-bool"),
    pytest.param({"model": "elevenlabs/eleven_music", "prompt": "x" * 2001,
                  "music_length_ms": True},
                 ["prompt: String must contain at most 2000", "music_length_ms: Expected number"],
                 id="eleven"),
    pytest.param({"model": "google/lyria2", "prompt": "p", "seed": -1},
                 ["seed: Number must be greater than or equal to 0"], id="lyria"),
    pytest.param(["not", "an", "object"], ["Expected object"], id="not-an-object"),
])
def test_validation_errors_in_the_services_shape(client: httpx.Client, emulator: Emulator,
                                                 body: Any, fragments: list[str]) -> None:
    resp = client.post(PATH, json=body)
    assert resp.status_code == 400
    error = resp.json()
    assert set(error) == {"message", "path", "requestId", "statusCode", "timestamp"}
    assert error["statusCode"] == 400 and error["path"] == PATH
    assert error["message"].startswith("Body validation error!")
    for fragment in fragments:
        assert fragment in error["message"]
    assert emulator.counters.paid() == 0
    assert emulator.counters.rejected[("aiml.audio.submit", "invalid")] == 1


def test_a_body_that_is_not_json_is_refused(client: httpx.Client) -> None:
    resp = client.post(PATH, content=b"{oops", headers={"content-type": "application/json"})
    assert resp.status_code == 400


def test_unknown_fields_pass_through(client: httpx.Client) -> None:
    body = {"model": "google/lyria2", "prompt": "strings", "tempo": 120,
            "audio_setting": {"whatever": 1}}  # lyria has no audio_setting: stripped
    assert client.post(PATH, json=body).status_code == 200


def test_status_of_unknown_missing_or_foreign_generations(client: httpx.Client,
                                                          emulator: Emulator) -> None:
    missing = client.get(PATH)
    assert missing.status_code == 400 and "generation_id: Required" in missing.json()["message"]
    unknown = client.get(PATH, params={"generation_id": "nope"})
    assert unknown.status_code == 404 and unknown.json()["message"] == "Generation not found"
    gen = client.post(PATH, json=body_for(client, "stable-audio")).json()["id"]
    other = httpx.get(emulator.url + PATH, params={"generation_id": gen},
                      headers={"Authorization": "Bearer another-key"})
    assert other.status_code == 404  # a generation belongs to its key


def test_queueing_on_a_keys_generating_slots(emulator_factory: Factory) -> None:
    # queue 0 s, generate 60 s, one slot: nothing here waits for a generation to finish
    config = EmulatorConfig(timings=Timings(aiml_queue=0, aiml_generate=60),
                            limits=Limits(aiml_generating=1, aiml_queued=2))
    emu = emulator_factory(config)
    with httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        first = client.post(PATH, json=body_for(client, "stable-audio")).json()["id"]
        second = client.post(PATH, json=body_for(client, "stable-audio")).json()["id"]
        assert status(client, first)["status"] == "generating"
        assert status(client, second)["status"] == "queued"  # waits for the slot
        full = client.post(PATH, json=body_for(client, "stable-audio"))
        assert full.status_code == 429 and "concurrent" in full.json()["message"]
        other = httpx.post(emu.url + PATH, json=body_for(client, "stable-audio"),
                           headers={"Authorization": "Bearer another-key"})
        assert other.status_code == 200  # the cap is per key
    assert emu.counters.paid(key=KEY) == 2
    assert emu.counters.rejected[("aiml.audio.submit", "concurrency")] == 1


def test_out_of_credits_is_a_403_before_any_work(emulator_factory: Factory) -> None:
    # music-2.6 costs 390,000 credits in the emulator ($0.195, as the docs' example)
    emu = emulator_factory(EmulatorConfig(timings=Timings.instant(), aiml_credits=500_000))
    body = {"model": "minimax/music-2.6", "prompt": PROMPT, "is_instrumental": True}
    with httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        assert client.post(PATH, json=body).status_code == 200
        refused = client.post(PATH, json=body)
    assert refused.status_code == 403 and "Insufficient credits" in refused.json()["message"]
    assert emu.counters.paid() == 1


def test_links_are_signed_and_served_with_ranges(client: httpx.Client,
                                                 emulator: Emulator) -> None:
    gen = client.post(PATH, json=body_for(client, "minimax/music-2.0")).json()["id"]
    url = status(client, gen)["audio_file"]["url"]
    whole = httpx.get(url).content
    part = httpx.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == whole[10:20]
    assert httpx.head(url).status_code == 200
    tampered = httpx.get(url.replace("Signature=", "Signature=0"))
    assert tampered.status_code == 403 and b"SignatureDoesNotMatch" in tampered.content
    longer = httpx.get(url.replace("Expires=", "Expires=9"))
    assert longer.status_code == 403  # the expiry is signed too
    gone = httpx.get(url.split("?")[0].replace("/aiml/", "/aiml/x") + "?" + url.split("?")[1])
    assert gone.status_code == 404 and b"NoSuchKey" in gone.content
    assert status(client, gen)["audio_file"]["url"] == url  # the same link each time


def test_expired_links_are_refused(emulator_factory: Factory) -> None:
    # a negative lifetime: the link is already past its Expires when first given out
    emu = emulator_factory(EmulatorConfig(timings=Timings(aiml_queue=0, aiml_generate=0,
                                                          aiml_link_ttl=-60)))
    with httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        gen = client.post(PATH, json=body_for(client, "stable-audio")).json()["id"]
        url = status(client, gen)["audio_file"]["url"]
    expired = httpx.get(url)
    assert expired.status_code == 403 and b"Request has expired." in expired.content


def test_a_failed_generation_reports_an_error_and_no_charge(client: httpx.Client,
                                                            emulator: Emulator) -> None:
    emulator.inject("generate_audio_failed", operation="aiml.audio.submit")
    gen = client.post(PATH, json=body_for(client, "minimax/music-2.0")).json()["id"]
    done = status(client, gen)
    assert done["status"] == "error" and done["audio_file"] is None
    assert done["error"] == {"name": "GenerationError", "message": "Audio generation failed"}
    assert done["meta"] == {"usage": {"credits_used": 0, "usd_spent": 0}}
    emulator.inject("generate_audio_failed", operation="aiml.audio.submit")
    other = client.post(PATH, json=body_for(client, "stable-audio")).json()["id"]
    assert status(client, other)["meta"] is None


@pytest.mark.parametrize(("model", "seconds", "message"), [
    pytest.param("minimax/music-cover", 3.0, r"must last 6 s to 6 min, got 3\.\d s",
                 id="cover-too-short"),
    pytest.param("minimax-music", 12.0, r"longer than 15 s, got 12\.\d s", id="legacy-short"),
])
def test_an_unusable_reference_fails_the_generation(client: httpx.Client, model: str,
                                                    seconds: float, message: str) -> None:
    body = {**body_for(client, model), "reference_audio_url": hosted(client, seconds)}
    done = status(client, client.post(PATH, json=body).json()["id"])
    assert done["status"] == "error"
    assert re.search(message, done["error"]["message"])


@pytest.mark.parametrize(("value", "ok"), [
    pytest.param("data:audio/mpeg;base64,", True, id="data-url"),
    pytest.param("", True, id="plain-base64"),
    pytest.param("!!not base64!!", False, id="junk"),
    pytest.param("http://example.com/remote.mp3", False, id="unreachable"),
])
def test_cover_references_inline_or_by_url(client: httpx.Client, value: str, ok: bool) -> None:
    encoded = base64.b64encode(reference(8.0)).decode()
    inline = value + encoded if value in ("", "data:audio/mpeg;base64,") else value
    body = {"model": "minimax/music-cover", "prompt": PROMPT, "reference_audio_url": inline}
    done = status(client, client.post(PATH, json=body).json()["id"])
    assert (done["status"] == "completed") == ok, done


def test_the_legacy_prompt_limit_is_a_downstream_error(client: httpx.Client) -> None:
    body = {**body_for(client, "minimax-music"), "prompt": "la " * 250}
    done = status(client, client.post(PATH, json=body).json()["id"])
    assert done["error"]["message"] == "Downstream service error."


@pytest.mark.parametrize(("fault", "operation", "status_code"), [
    pytest.param("rate_limit", "aiml.audio.submit", 429, id="submit-rate-limit"),
    pytest.param("maintenance", "aiml.audio.submit", 500, id="submit-maintenance"),
    pytest.param("server_error", "aiml.audio.status", 503, id="status-server-error"),
])
def test_rejection_faults_come_before_any_work(client: httpx.Client, emulator: Emulator,
                                               fault: str, operation: str,
                                               status_code: int) -> None:
    gen = client.post(PATH, json=body_for(client, "stable-audio")).json()["id"]
    emulator.inject(fault, operation=operation)
    if operation.endswith("submit"):
        resp = client.post(PATH, json=body_for(client, "stable-audio"))
    else:
        resp = client.get(PATH, params={"generation_id": gen})
    assert resp.status_code == status_code and resp.json()["statusCode"] == status_code
    assert emulator.counters.paid() == 1  # the rejected submission was not taken


@pytest.mark.parametrize("fault", ["reset_before_answer", "truncated_body"])
def test_a_lost_answer_still_counts_the_submission(client: httpx.Client, emulator: Emulator,
                                                   fault: str) -> None:
    emulator.inject(fault, operation="aiml.audio.submit")
    with pytest.raises(httpx.TransportError):
        client.post(PATH, json=body_for(client, "stable-audio"))
    assert emulator.counters.paid(operation="aiml.audio.submit") == 1


def test_body_faults_on_status_and_download(client: httpx.Client, emulator: Emulator) -> None:
    gen = client.post(PATH, json=body_for(client, "stable-audio")).json()["id"]
    emulator.inject("malformed_json", operation="aiml.audio.status")
    with pytest.raises(json.JSONDecodeError):
        client.get(PATH, params={"generation_id": gen}).json()
    url = status(client, gen)["audio_file"]["url"]
    emulator.inject("truncated_body", operation="aiml.audio.download")
    with pytest.raises(httpx.TransportError):
        httpx.get(url)
    assert emulator.counters.fired(operation="aiml.audio.download") == 1
    assert httpx.get(url).status_code == 200


def test_reset_forgets_generations(client: httpx.Client, emulator: Emulator) -> None:
    gen = client.post(PATH, json=body_for(client, "stable-audio")).json()["id"]
    emulator.reset()
    assert client.get(PATH, params={"generation_id": gen}).status_code == 404


def test_more_reference_problems(client: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from aiomusic.emulator import _aimlapi

    junk = base64.b64encode(b"not audio at all" * 64).decode()
    body = {"model": "minimax/music-cover", "prompt": PROMPT, "reference_audio_url": junk}
    done = status(client, client.post(PATH, json=body).json()["id"])
    assert "cannot be used" in done["error"]["message"]
    monkeypatch.setattr(_aimlapi, "MAX_REFERENCE_BYTES", 1000)
    body["reference_audio_url"] = hosted(client, 8.0)
    done = status(client, client.post(PATH, json=body).json()["id"])
    assert done["error"]["message"] == "the reference audio is larger than 50 MB"


def test_an_audio_setting_that_is_not_an_object(client: httpx.Client) -> None:
    body = {"model": "minimax/music-2.0", "prompt": PROMPT, "lyrics": LYRICS,
            "audio_setting": "mp3"}
    resp = client.post(PATH, json=body)
    assert resp.status_code == 400 and "audio_setting: Expected object" in resp.json()["message"]


def test_without_limits_nothing_waits_for_a_slot(emulator_factory: Factory) -> None:
    config = EmulatorConfig(timings=Timings(aiml_queue=0, aiml_generate=60),
                            limits=Limits.off())
    emu = emulator_factory(config)
    with httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        ids = [client.post(PATH, json=body_for(client, "stable-audio")).json()["id"]
               for _ in range(6)]
        assert {status(client, g)["status"] for g in ids} == {"generating"}


def test_a_failed_render_is_tried_again(client: httpx.Client,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from aiomusic.emulator import _aimlapi

    real, calls = _aimlapi.render, []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(_aimlapi, "render", flaky)
    gen = client.post(PATH, json=body_for(client, "stable-audio")).json()["id"]
    assert client.get(PATH, params={"generation_id": gen}).status_code == 500
    assert status(client, gen)["status"] == "completed"
