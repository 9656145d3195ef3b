"""Suno's follow-up, lyrics and callback readers, the HMAC verifier, LRC and MIDI export (pure).

The example bodies are the docs' own (docs.sunoapi.org and its sibling kie.ai), with both
spellings where they disagree.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiomusic import CallbackEvent, ResponseError, TaskStatus
from aiomusic._core._task import Phase
from aiomusic.callbacks import WebhookVerifier
from aiomusic.suno import _derived as der
from aiomusic.suno import _hooks as hooks
from aiomusic.suno import _records as rec
from aiomusic.suno._specs import SPECS, music_hint

WAV_RECORD = {"code": 200, "msg": "success", "data": {
    "taskId": "988e****c8d3", "musicId": "8551****662c",
    "callbackUrl": "https://api.example.com/callback", "completeTime": "2025-01-01 00:10:00",
    "response": {"audioWavUrl": "https://example.com/s/04e6****e727.wav"},
    "successFlag": "SUCCESS", "createTime": "2025-01-01 00:00:00", "errorCode": None,
    "errorMessage": None}}
STEMS_RECORD = {"code": 200, "msg": "success", "data": {
    "taskId": "3e63b4cc", "musicId": "376c687e", "callbackUrl": "https://x/cb",
    "musicIndex": 0, "completeTime": 1753782937000,
    "response": {"id": None, "originUrl": None, "originData": [
        {"duration": 245.6, "audio_url": "https://example001.mp3",
         "stem_type_group_name": "Vocals", "id": "3d70"},
        {"duration": 245.6, "audio_url": "https://example002.mp3",
         "stem_type_group_name": "Instrumental", "id": "d92a"}],
        "instrumentalUrl": "https://f.example.com/d92a_Instrumental.mp3",
        "vocalUrl": "https://f.example.com/3d70_Vocals.mp3", "backingVocalsUrl": None,
        "drumsUrl": None, "bassUrl": "", "pianoUrl": None},
    "successFlag": "SUCCESS", "createTime": 1753782854000, "errorCode": None,
    "errorMessage": None}}
MIDI_RECORD = {"code": 200, "msg": "success", "data": {
    "taskId": "5c79****be8e", "recordTaskId": -1, "audioId": "e231",
    "callbackUrl": "https://example.callback", "completeTime": 1760335255000,
    "midiData": {"state": "complete", "instruments": [
        {"name": "Drums", "notes": [{"pitch": 73, "start": 0.036, "end": 0.182, "velocity": 1},
                                    {"pitch": 61, "start": "0.046875", "end": "0.19",
                                     "velocity": 1}]},
        {"name": "Electric Bass (finger)", "notes": [
            {"pitch": 44, "start": 7.6875, "end": "7.91", "velocity": 0.5}]}]},
    "successFlag": 1, "createTime": 1760335251000, "errorCode": None, "errorMessage": None}}
MP4_RECORD = {"code": 200, "data": {"taskId": "m1", "musicId": "a", "successFlag": "PENDING",
                                    "response": None, "createTime": "2025-01-01 00:00:00"}}
LYRICS_RECORD = {"code": 200, "data": {
    "taskId": "11dc****8b0f", "param": "{\"prompt\":\"sea\"}", "status": "SUCCESS",
    "type": "LYRICS", "errorCode": None, "errorMessage": None,
    "response": {"taskId": "11dc****8b0f", "data": [
        {"text": "[Verse]\nWalking", "title": "Iron Man", "status": "complete",
         "errorMessage": ""},
        {"text": "[Verse]\nWind", "title": "Iron Man", "status": "complete",
         "errorMessage": ""}]}}}


def test_wav_record() -> None:
    snap = SPECS["wav"].read_status(WAV_RECORD, "988e****c8d3")
    assert (snap.phase, snap.status, snap.rank) == (Phase.SUCCEEDED, "SUCCESS", 3)
    assert [(a.name, a.url) for a in snap.assets] == [
        ("wav", "https://example.com/s/04e6****e727.wav")]
    record = snap.record
    assert isinstance(record, rec.WavRecord)
    assert record.music_id == "8551****662c"
    assert record.create_time == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    assert record.complete_time == dt.datetime(2025, 1, 1, 0, 10, tzinfo=dt.UTC)


def test_stems_record_reads_the_map_and_the_origin_data() -> None:
    snap = SPECS["stems"].read_status(STEMS_RECORD, "3e63b4cc")
    record = snap.record
    assert isinstance(record, rec.StemsRecord)
    assert dict(record.stems) == {"vocals": "https://f.example.com/3d70_Vocals.mp3",
                                  "instrumental": "https://f.example.com/d92a_Instrumental.mp3"}
    assert [a.name for a in snap.assets] == ["vocals", "instrumental"]
    assert record.create_time == dt.datetime.fromtimestamp(1753782854, dt.UTC)
    only_origin = json.loads(json.dumps(STEMS_RECORD))
    only_origin["data"]["response"].update(vocalUrl=None, instrumentalUrl=None)
    record = SPECS["stems"].read_status(only_origin, "3e63b4cc").record
    assert dict(record.stems) == {"vocals": "https://example001.mp3",
                                  "instrumental": "https://example002.mp3"}


def test_midi_record_with_a_numeric_flag_and_string_times() -> None:
    snap = SPECS["midi"].read_status(MIDI_RECORD, "5c79****be8e")
    assert snap.phase is Phase.SUCCEEDED and snap.status == "1" and snap.assets == ()
    drums, bass = snap.record.instruments
    assert drums.notes[1] == rec.MidiNote(pitch=61, start=0.046875, end=0.19, velocity=1.0)
    assert bass.name == "Electric Bass (finger)" and bass.notes[0].velocity == 0.5


@pytest.mark.parametrize(("flag", "phase"), [
    pytest.param(0, Phase.PENDING, id="0"), pytest.param("0", Phase.PENDING, id="'0'"),
    pytest.param(1, Phase.SUCCEEDED, id="1"), pytest.param("1", Phase.SUCCEEDED, id="'1'"),
    pytest.param(2, Phase.FAILED, id="2"), pytest.param(3, Phase.FAILED, id="3"),
    pytest.param(1.0, Phase.SUCCEEDED, id="1.0"), pytest.param(7, Phase.PENDING, id="7"),
    pytest.param(None, Phase.PENDING, id="none"), pytest.param("", Phase.PENDING, id="''"),
    pytest.param("success", Phase.SUCCEEDED, id="lower"),
    pytest.param("GENERATE_MIDI_FAILED", Phase.FAILED, id="named"),
    pytest.param("CALLBACK_EXCEPTION", Phase.FAILED, id="callback"),
    pytest.param("SOMETHING_NEW", Phase.PENDING, id="unknown-keeps-waiting"),
])
def test_success_flags(flag: object, phase: Phase) -> None:
    assert rec.phase_of(flag, failed_name="GENERATE_MIDI_FAILED")[1] is phase


def test_failed_and_pending_records() -> None:
    failed = json.loads(json.dumps(WAV_RECORD))
    failed["data"].update(successFlag="GENERATE_WAV_FAILED", errorCode="501",
                          errorMessage="conversion failed", response={"audioWavUrl": None})
    snap = SPECS["wav"].read_status(failed, "988e****c8d3")
    assert (snap.phase, snap.error_code, snap.error_message) == (
        Phase.FAILED, 501, "conversion failed")
    snap = SPECS["mp4"].read_status(MP4_RECORD, "m1")
    assert (snap.phase, snap.rank, snap.assets) == (Phase.PENDING, 0, ())


def test_lyrics_record() -> None:
    snap = SPECS["lyrics"].read_status(LYRICS_RECORD, "11dc****8b0f")
    assert snap.phase is Phase.SUCCEEDED
    assert [v.text for v in snap.record.variants] == ["[Verse]\nWalking", "[Verse]\nWind"]
    assert snap.record.variants[0].error_message is None
    sensitive = json.loads(json.dumps(LYRICS_RECORD))
    sensitive["data"].update(status="SENSITIVE_WORD_ERROR", response=None)
    assert SPECS["lyrics"].read_status(sensitive, "11dc****8b0f").phase is Phase.FAILED


@pytest.mark.parametrize(("data", "kinds"), [
    pytest.param(None, ("wav", "stems", "mp4"), id="null"),
    pytest.param([], ("wav", "stems", "mp4"), id="list"),
    pytest.param({"successFlag": "SUCCESS"}, ("wav", "stems", "mp4"), id="no-task-id"),
    pytest.param({"taskId": "other"}, ("wav", "stems", "mp4"), id="another-task"),
    pytest.param({"taskId": "t", "successFlag": True}, ("wav", "mp4"), id="bool-flag"),
    pytest.param({"taskId": "t", "successFlag": 1.5}, ("wav", "mp4"), id="fractional-flag"),
    pytest.param({"taskId": "t", "response": "{bad"}, ("wav", "stems"), id="bad-json-string"),
    pytest.param({"taskId": "t", "response": {"originData": "x"}}, ("stems",),
                 id="origin-not-list"),
    pytest.param({"taskId": "t", "response": {"originData": [1]}}, ("stems",), id="origin-item"),
    pytest.param({"taskId": "t", "createTime": "yesterday"}, ("wav", "mp4"), id="bad-time"),
])
def test_unreadable_records_are_response_errors(data: object, kinds: tuple[str, ...]) -> None:
    for kind in kinds:
        with pytest.raises(ResponseError, match="could not read"):
            SPECS[kind].read_status({"code": 200, "data": data}, "t")


@pytest.mark.parametrize("midi", [
    pytest.param({"instruments": "x"}, id="not-a-list"),
    pytest.param({"instruments": [1]}, id="item"),
    pytest.param({"instruments": [{"notes": "x"}]}, id="notes"),
    pytest.param({"instruments": [{"notes": [1]}]}, id="note"),
    pytest.param({"instruments": [{"notes": [{"pitch": 200, "start": 0, "end": 1}]}]},
                 id="pitch"),
])
def test_unreadable_midi(midi: object) -> None:
    with pytest.raises(ResponseError):
        SPECS["midi"].read_status({"data": {"taskId": "t", "midiData": midi}}, "t")


def test_a_string_record_is_read_as_json() -> None:
    snap = SPECS["wav"].read_status({"data": json.dumps(WAV_RECORD["data"])}, "988e****c8d3")
    assert snap.phase is Phase.SUCCEEDED


# -- callbacks ------------------------------------------------------------------------------

WAV_CALLBACK = {"code": 200, "msg": "success", "data": {
    "audioWavUrl": "https://example.com/s/04e6****e727.wav", "task_id": "988e****c8d3"}}
WAV_CALLBACK_SNAKE = {"code": 200, "msg": "success", "data": {
    "audio_wav_url": "https://example.com/x.wav", "task_id": "988e"}}
STEMS_CALLBACK = {"code": 200, "msg": "vocal Removal generated successfully.", "data": {
    "task_id": "3e63", "vocal_removal_info": {
        "instrumental_url": "https://f/i.mp3", "origin_url": "", "vocal_url": "https://f/v.mp3",
        "backing_vocals_url": "https://f/b.mp3", "drums_url": "https://f/d.mp3"}}}
STEMS_CALLBACK_KIE = {"code": 200, "msg": "ok", "data": {
    "task_id": "3e64", "vocal_separation_info": {"vocal_url": "https://f/v.mp3"}}}
MIDI_CALLBACK = {"task_id": "5c79", "code": 200, "msg": "success", "data": {
    "state": "complete", "instruments": [{"name": "Drums", "notes": [
        {"pitch": 73, "start": "0.03", "end": "0.18", "velocity": 1}]}]}}
MIDI_CALLBACK_KIE = {"code": 200, "msg": "success", "data": {
    "state": "complete", "taskId": "5c80", "instruments": []}}
MP4_CALLBACK = {"code": 200, "msg": "success", "data": {
    "task_id": "m1", "video_url": "https://f/v.mp4"}}
LYRICS_CALLBACK = {"code": 200, "msg": "All generated successfully.", "data": {
    "callbackType": "complete", "taskId": "11dc", "data": [
        {"text": "[Verse]\nWalking", "title": "Iron Man", "status": "complete",
         "errorMessage": ""}]}}
LYRICS_CALLBACK_OLD = {"code": 200, "msg": "ok", "data": {
    "callbackType": "complete", "taskId": "11dd", "lyricsData": [
        {"text": "x", "title": "t", "status": "complete", "errorMessage": ""}]}}
LYRICS_CALLBACK_KIE = {"code": 200, "msg": "ok", "data": {
    "callbackType": "complete", "task_id": "11de", "data": [
        {"error_message": "", "status": "complete", "text": "y", "title": "t"}]}}
MUSIC_CALLBACK = {"code": 200, "msg": "ok", "data": {"callbackType": "first", "task_id": "g1",
                                                     "data": [{"id": "a1",
                                                               "audio_url": "https://f/a.mp3"}]}}


@pytest.mark.parametrize(("body", "kind", "task_id", "assets"), [
    pytest.param(WAV_CALLBACK, "wav", "988e****c8d3", ["wav"], id="wav"),
    pytest.param(WAV_CALLBACK_SNAKE, "wav", "988e", ["wav"], id="wav-snake"),
    pytest.param(STEMS_CALLBACK, "stems", "3e63",
                 ["vocals", "instrumental", "backing_vocals", "drums"], id="stems"),
    pytest.param(STEMS_CALLBACK_KIE, "stems", "3e64", ["vocals"], id="stems-kie"),
    pytest.param(MIDI_CALLBACK, "midi", "5c79", [], id="midi"),
    pytest.param(MIDI_CALLBACK_KIE, "midi", "5c80", [], id="midi-kie"),
    pytest.param(MP4_CALLBACK, "mp4", "m1", ["video"], id="mp4"),
    pytest.param(LYRICS_CALLBACK, "lyrics", "11dc", [], id="lyrics"),
    pytest.param(LYRICS_CALLBACK_OLD, "lyrics", "11dd", [], id="lyrics-lyricsData"),
    pytest.param(LYRICS_CALLBACK_KIE, "lyrics", "11de", [], id="lyrics-snake"),
    pytest.param(MUSIC_CALLBACK, "music", "g1", ["a1"], id="music"),
])
def test_each_endpoint_callback(body: dict[str, Any], kind: str, task_id: str,
                                assets: list[str]) -> None:
    assert hooks.detect_kind(body) == kind
    snap = hooks.read_callback(body)
    assert snap.task_id == task_id and [a.name for a in snap.assets] == assets
    assert hooks.read_callback(body, kind) == snap
    assert SPECS[kind].read_callback is not None
    assert SPECS[kind].read_callback(body).task_id == task_id
    if kind != "music":
        assert (snap.phase, snap.status, snap.rank) == (Phase.SUCCEEDED, "SUCCESS", 3)


def test_failure_callbacks_of_any_kind() -> None:
    for kind, data in (("wav", {"task_id": "t", "audioWavUrl": None}),
                       ("mp4", {"task_id": "t", "video_url": None}),
                       ("stems", {"task_id": "t", "vocal_removal_info": None}),
                       ("lyrics", {"callbackType": "error", "taskId": "t", "data": None}),
                       ("music", {"callbackType": "error", "task_id": "t", "data": None})):
        snap = hooks.read_callback({"code": 501, "msg": "it failed", "data": data}, kind)
        assert (snap.phase, snap.error_code, snap.error_message) == (
            Phase.FAILED, 501, "it failed"), kind
    lyrics_error = {"code": 200, "msg": "no", "data": {"callbackType": "error", "taskId": "t"}}
    assert hooks.read_callback(lyrics_error, "lyrics").phase is Phase.FAILED
    midi = hooks.read_callback({"task_id": "t", "code": 500, "msg": "x", "data": None})
    assert midi.phase is Phase.FAILED and midi.task_id == "t"


def test_music_hints_name_the_status_they_stand_for() -> None:
    snap = hooks.read_callback(MUSIC_CALLBACK)
    assert (snap.status, snap.rank, snap.phase) == (TaskStatus.FIRST_SUCCESS, 2,
                                                    Phase.RUNNING)
    assert isinstance(snap.record, CallbackEvent)
    event, routed = hooks.route(MUSIC_CALLBACK, None)
    assert event is not None and routed == music_hint(event)
    assert hooks.route(WAV_CALLBACK, "wav")[0] is None


@pytest.mark.parametrize("body", [
    pytest.param([], id="list"), pytest.param({"data": []}, id="data-list"),
    pytest.param({"code": 200, "data": {"audioWavUrl": "x"}}, id="no-task-id"),
    pytest.param({"code": 200, "data": {"callbackType": "weird", "task_id": "t"}},
                 id="unknown-stage"),
    pytest.param({"code": 200, "data": {"task_id": "t", "vocal_removal_info": 5}},
                 id="stems-not-object"),
    pytest.param({"code": 200, "data": {"task_id": "t"}}, id="no-kind-no-failure"),
])
def test_unreadable_callbacks(body: object) -> None:
    with pytest.raises(ResponseError):
        hooks.read_callback(body)


# -- the HMAC verifier --------------------------------------------------------------------


def test_webhook_verifier() -> None:
    now = 1_760_000_000.0
    verifier = WebhookVerifier("secret-key", window=300, clock=lambda: now)
    stamp = str(int(now))
    good = {"x-webhook-timestamp": stamp, "x-webhook-signature": verifier.sign("t1", stamp)}
    assert verifier.problem("t1", good) is None
    assert "does not match" in (verifier.problem("t2", good) or "")
    old = str(int(now) - 301)
    assert "replay" in (verifier.problem(
        "t1", {"x-webhook-timestamp": old, "x-webhook-signature": verifier.sign("t1", old)})
        or "")
    millis = str(int(now * 1000))
    assert verifier.problem("t1", {"x-webhook-timestamp": millis,
                                   "x-webhook-signature": verifier.sign("t1", millis)}) is None
    assert "unsigned" in (verifier.problem("t1", {}) or "")
    for stamp in ("soon", "nan"):
        assert "not a number" in (verifier.problem(
            "t1", {"x-webhook-timestamp": stamp, "x-webhook-signature": "x"}) or "")
    assert "secret" not in repr(verifier)
    # the documented scheme: base64(HMAC_SHA256(taskId + "." + timestamp, key))
    import base64
    import hashlib
    import hmac
    expected = base64.b64encode(hmac.new(b"k", b"abc.123", hashlib.sha256).digest()).decode()
    assert WebhookVerifier(b"k").sign("abc", "123") == expected
    with pytest.raises(ValueError, match="empty"):
        WebhookVerifier("")
    with pytest.raises(ValueError, match="window"):
        WebhookVerifier("k", window=0)


# -- timestamped lyrics, LRC, personas, MIDI files --------------------------------------------

ALIGNED = {"code": 200, "msg": "success", "data": {
    "alignedWords": [
        {"word": "[Verse]\nWalking ", "success": True, "startS": 1.36, "endS": 1.79,
         "palign": 0},
        {"word": "through\n", "success": True, "startS": "1.79", "endS": 2.5, "palign": 0.4},
        {"word": "[Chorus]\n", "success": False, "startS": 3, "endS": 3},
        {"word": "Iron ", "success": True, "startS": 63.01, "endS": 63.5},
        {"word": "man", "success": True, "startS": 63.5, "endS": 64.25}],
    "waveformData": [0, 1, "0.5"], "hootCer": 0.38, "isStreamed": False}}


def test_timestamped_lyrics_and_lrc() -> None:
    lyrics = der.read_timestamped_lyrics(ALIGNED, task_id="t", audio_id="a")
    assert len(lyrics.words) == 5 and lyrics.words[1].start == 1.79
    assert lyrics.waveform == (0.0, 1.0, 0.5) and lyrics.hoot_cer == 0.38
    assert lyrics.to_lrc() == "[00:01.36]Walking through\n[01:03.01]Iron man\n"
    assert lyrics.to_lrc(words=True, title="Iron [Man]") == (
        "[ti:Iron (Man)]\n"
        "[00:01.36]<00:01.36>Walking <00:01.79>through <00:02.50>\n"
        "[01:03.01]<01:03.01>Iron <01:03.50>man <01:04.25>\n")
    assert json.loads(der.as_document(lyrics))["words"][0]["word"] == "[Verse]\nWalking "
    empty = der.read_timestamped_lyrics({"code": 200, "data": {"alignedWords": []}})
    assert empty.lines() == [] and empty.to_lrc() == ""
    for bad in ({"alignedWords": "x"}, {"alignedWords": [{"word": "a"}]},
                {"alignedWords": [{"startS": 1, "endS": 2}]}, {"waveformData": 3}):
        with pytest.raises(ResponseError):
            der.read_timestamped_lyrics({"data": bad})


def test_persona_answer() -> None:
    persona = der.read_persona({"code": 200, "data": {"personaId": " p1 ", "name": "N",
                                                      "description": "D"}})
    assert persona == der.Persona("p1", "N", "D")
    with pytest.raises(ResponseError, match="personaId"):
        der.read_persona({"code": 200, "data": {"name": "N"}})


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out = []
    while data:
        kind, size = data[:4], struct.unpack(">I", data[4:8])[0]
        out.append((kind, data[8:8 + size]))
        data = data[8 + size:]
    return out


def test_midi_file() -> None:
    instruments = SPECS["midi"].read_status(MIDI_RECORD, "5c79****be8e").record.instruments
    data = der.midi_file(instruments)
    chunks = _chunks(data)
    assert [c[0] for c in chunks] == [b"MThd", b"MTrk", b"MTrk", b"MTrk"]
    assert struct.unpack(">HHH", chunks[0][1]) == (1, 3, 480)
    drums, bass = chunks[2][1], chunks[3][1]
    assert bytes((0x99, 73, 127)) in drums  # drums on channel 10
    assert bytes((0x90, 44, 64)) in bass and bytes((0x80, 44, 0)) in bass
    assert drums.endswith(b"\xff\x2f\x00") and b"Drums" in drums
    long_note = rec.MidiInstrument("Piano", (rec.MidiNote(60, 0.0, 300.0),))
    assert _chunks(der.midi_file([long_note]))[2][1].startswith(b"\x00\xff\x03")


# -- anything at all: a snapshot or a typed error -----------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner, max_size=4) |
                    st.dictionaries(st.text(max_size=12), inner, max_size=5), max_leaves=30)
KEYS = st.sampled_from(["taskId", "task_id", "successFlag", "status", "response",
                        "midiData", "audioWavUrl", "video_url", "vocal_removal_info",
                        "callbackType", "data", "instruments", "createTime", "code"])
SHAPED = st.dictionaries(KEYS, JSON, max_size=6)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.one_of(JSON, SHAPED), kind=st.sampled_from(sorted(SPECS)))
def test_status_readers_never_crash(data: object, kind: str) -> None:
    try:
        snap = SPECS[kind].read_status({"code": 200, "data": data}, "t")
    except ResponseError:
        return
    assert snap.task_id == "t" and snap.phase in Phase


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(body=st.one_of(JSON, st.dictionaries(KEYS, st.one_of(JSON, SHAPED), max_size=5)),
       kind=st.sampled_from([None, *hooks.KINDS]))
def test_callback_readers_never_crash(body: object, kind: str | None) -> None:
    try:
        snap = hooks.read_callback(body, kind)
    except ResponseError:
        return
    assert snap.task_id and snap.phase in Phase


@settings(max_examples=200, deadline=None)
@given(data=st.one_of(JSON, SHAPED))
def test_sync_readers_never_crash(data: object) -> None:
    for read in (der.read_persona, der.read_timestamped_lyrics):
        with contextlib.suppress(ResponseError):
            read({"code": 200, "data": data})


def test_optional_parts_of_records_and_documents() -> None:
    assert rec.read_midi_data({"state": "complete"}) == ()
    assert rec.read_lyrics_items(None) == ()
    with pytest.raises(ValueError, match="no text"):
        rec.read_lyrics_items([{"title": "t"}])
    record = SPECS["stems"].read_status(STEMS_RECORD, "3e63b4cc").record
    document = json.loads(der.as_document(record))
    assert document["stems"]["vocals"].endswith("Vocals.mp3")
    assert document["phase"] == "succeeded" and document["create_time"].startswith("2025-07")
    assert json.loads(der.as_document([der.Persona("p")])) == [
        {"persona_id": "p", "name": None, "description": None}]
