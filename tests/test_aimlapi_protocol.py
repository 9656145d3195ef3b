"""The AI/ML API's asynchronous family, pure parts: the status reader, costs, the submission."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiomusic import ResponseError, SubmissionUnknownError
from aiomusic._core._config import LaneKind, Service
from aiomusic._core._task import Cost, Phase
from aiomusic.aimlapi import _protocol as proto
from aiomusic.aimlapi._ops import AUDIO_TASK, POLL

GEN = "e84c6bd4-bb02-4702-a55d-9b73e170c110:minimax/music-2.0"
URL = ("https://cdn.aimlapi.com/moose/music%2Fprod%2Ftts-20260108200145-PyWuVGVLaIkSAOEp.mp3"
       "?Expires=1767960111&OSSAccessKeyId=LTAI5tCpJNKCf5EkQHSuL9xg&Signature=pTfbqVDKtdUdX1d")
#: The docs' own completed answer (music-2.0 page).
COMPLETED: dict[str, Any] = {
    "id": GEN, "status": "completed", "audio_file": {"url": URL},
    "extra_info": {"music_duration": 107102, "music_sample_rate": 44100, "music_channel": 2,
                   "bitrate": 25600, "music_size": 0},
    "trace_id": "05ae21d02744d305c8493d77c5b96a26"}


def test_calls_are_paid_submit_and_free_poll() -> None:
    submit = proto.submit_call({"model": "stable-audio", "prompt": "rain"}, key="stable-audio")
    assert (submit.method, submit.url, submit.paid, submit.lane, submit.service) == (
        "POST", "/v2/generate/audio", True, LaneKind.SUBMIT, Service.AIMLAPI)
    assert submit.json == {"model": "stable-audio", "prompt": "rain"}
    status = AUDIO_TASK.status_call(GEN)
    assert (status.method, status.url, status.paid, status.lane) == (
        "GET", "/v2/generate/audio", False, LaneKind.POLL)
    assert status.params == {"generation_id": GEN}


@pytest.mark.parametrize(("body", "expected"), [
    pytest.param({"id": GEN, "status": "queued"}, GEN, id="docs"),
    pytest.param({"id": "  abc  ", "status": "queued"}, "abc", id="stripped"),
    pytest.param({"id": 42}, "42", id="number"),
])
def test_submission_gives_the_generation_id(body: dict[str, Any], expected: str) -> None:
    assert proto.parse_submission(body) == expected


@pytest.mark.parametrize("body", [
    pytest.param({"status": "queued"}, id="no-id"),
    pytest.param({"id": ""}, id="empty"),
    pytest.param({"id": None}, id="null"),
    pytest.param({"id": True}, id="bool"),
    pytest.param({"id": ["x"]}, id="list"),
])
def test_a_submission_without_an_id_has_an_unknown_fate(body: dict[str, Any]) -> None:
    with pytest.raises(SubmissionUnknownError, match="no generation id") as caught:
        proto.parse_submission(body)
    assert caught.value.operation == "aimlapi.generate"


@pytest.mark.parametrize(("status", "phase", "rank"), [
    pytest.param("queued", Phase.PENDING, 0, id="queued"),
    pytest.param("waiting", Phase.PENDING, 0, id="waiting"),
    pytest.param("generating", Phase.RUNNING, 1, id="generating"),
    pytest.param("Generating ", Phase.RUNNING, 1, id="case-and-space"),
    pytest.param("rendering", Phase.RUNNING, 1, id="unknown-keeps-running"),
    pytest.param("error", Phase.FAILED, 2, id="error"),
])
def test_every_status_has_a_phase(status: str, phase: Phase, rank: int) -> None:
    snap = proto.read_status({"id": GEN, "status": status}, GEN)
    assert (snap.phase, snap.rank, snap.status, snap.task_id) == (phase, rank, status, GEN)
    assert snap.assets == ()


def test_the_docs_completed_answer() -> None:
    snap = AUDIO_TASK.read_status(COMPLETED, GEN)
    assert snap.phase is Phase.SUCCEEDED and snap.rank == 2
    (asset,) = snap.assets
    assert (asset.url, asset.name, asset.kind, asset.duration) == (URL, GEN, "audio", 107.102)
    assert asset.expires_at == dt.datetime.fromtimestamp(1767960111, dt.UTC)
    assert snap.cost is None  # this answer did not say
    assert snap.record.trace_id == "05ae21d02744d305c8493d77c5b96a26"


def test_a_legacy_audio_file_keeps_its_details() -> None:
    body = {"id": "g", "status": "completed",
            "audio_file": {"url": "https://cdn.example/a.wav", "content_type": "audio/wav",
                           "file_name": "a.wav", "file_size": "2048"},
            "meta": {"usage": {"credits_used": 4200}}}
    snap = proto.read_status(body, "g")
    record = snap.record
    assert (record.content_type, record.file_name, record.file_size) == ("audio/wav", "a.wav",
                                                                       2048)
    assert snap.assets[0].title == "a.wav" and snap.assets[0].expires_at is None
    assert snap.cost == Cost(4200.0, "credits", "aimlapi")


@pytest.mark.parametrize(("error", "message"), [
    pytest.param({"name": "DownstreamError", "message": "Downstream service error."},
                 "DownstreamError: Downstream service error.", id="name-and-message"),
    pytest.param({"name": "Timeout"}, "Timeout", id="name-only"),
    pytest.param("boom", "boom", id="a-string"),
    pytest.param(None, "the generation failed (the service gave no reason)", id="none"),
])
def test_a_failure_says_why(error: object, message: str) -> None:
    snap = proto.read_status({"id": GEN, "status": "error", "error": error}, GEN)
    assert snap.phase is Phase.FAILED and snap.error_message == message


@pytest.mark.parametrize(("body", "match"), [
    pytest.param({"id": GEN}, "has no status", id="no-status"),
    pytest.param({"id": GEN, "status": 3}, "has no status", id="numeric-status"),
    pytest.param({"id": GEN, "status": "  "}, "has no status", id="blank-status"),
    pytest.param({"id": "other:minimax/music-2.0", "status": "queued"}, "is about",
                 id="another-generation"),
    pytest.param({"id": GEN, "status": "completed"}, "has no audio_file", id="no-audio"),
    pytest.param({"id": GEN, "status": "completed", "audio_file": {"url": "/rel.mp3"}},
                 "no usable audio_file.url", id="relative-url"),
    pytest.param({"id": GEN, "status": "completed", "audio_file": {"url": None}},
                 "no usable audio_file.url", id="null-url"),
])
def test_an_unreadable_answer_is_a_response_error(body: dict[str, Any], match: str) -> None:
    with pytest.raises(ResponseError, match=match):
        proto.read_status(body, GEN)


@pytest.mark.parametrize("sent", [
    pytest.param("e84c6bd4-bb02-4702-a55d-9b73e170c110", id="without-model-suffix"),
    pytest.param(None, id="no-id"),
    pytest.param(5, id="odd-id-ignored"),
])
def test_the_id_is_matched_tolerantly(sent: object) -> None:
    assert proto.read_status({"id": sent, "status": "queued"}, GEN).task_id == GEN


def test_a_link_in_an_unfinished_answer_is_not_an_asset_yet() -> None:
    body = {"id": GEN, "status": "generating", "audio_file": {"url": URL}}
    snap = proto.read_status(body, GEN)
    assert snap.assets == () and snap.record.audio_url == URL
    odd = proto.read_status({"id": GEN, "status": "queued", "audio_file": {"url": 7}}, GEN)
    assert odd.record.audio_url is None


@pytest.mark.parametrize(("meta", "cost"), [
    pytest.param({"usage": {"credits_used": 390000, "usd_spent": 0.195}},
                 Cost(390000.0, "credits", "aimlapi", usd=0.195), id="docs-2.6"),
    pytest.param({"usage": {"credits_used": "120000", "usd_spent": "0.06"}},
                 Cost(120000.0, "credits", "aimlapi", usd=0.06), id="strings"),
    pytest.param({"usage": {"usd_spent": 0.5}}, Cost(0.5, "usd", "aimlapi"), id="usd-only"),
    pytest.param({"usage": {"credits_used": 10, "usd_spent": "n/a"}},
                 Cost(10.0, "credits", "aimlapi"), id="odd-usd-dropped"),
    pytest.param({"usage": {"credits_used": -1}}, None, id="negative"),
    pytest.param({"usage": {"credits_used": "nan"}}, None, id="nan-string"),
    pytest.param({"usage": {"credits_used": True}}, None, id="bool"),
    pytest.param({"usage": {"credits_used": 10**400}}, None, id="huge-int"),
    pytest.param({"usage": None}, None, id="usage-null"),
    pytest.param(None, None, id="meta-null"),
    pytest.param("free", None, id="meta-string"),
])
def test_costs_are_read_tolerantly(meta: object, cost: Cost | None) -> None:
    body = {"id": GEN, "status": "queued", "meta": meta}
    assert proto.read_cost(body) == cost
    assert proto.read_status(body, GEN).cost == cost


def test_cost_in_each_unit() -> None:
    cost = Cost(390000.0, "credits", "aimlapi", usd=0.195)
    assert (cost.in_unit("credits"), cost.in_unit("usd"), cost.in_unit("submissions")) == (
        390000.0, 0.195, None)
    assert Cost(0.5, "usd", "aimlapi").in_unit("usd") == 0.5
    assert Cost(12, "credits", "suno").in_unit("usd") is None


@pytest.mark.parametrize(("url", "expected"), [
    pytest.param("https://x/a.mp3?Expires=1767960111", 1767960111, id="oss"),
    pytest.param("https://x/a.mp3?expires=1767960111.5", 1767960111.5, id="lower-float"),
    pytest.param("https://x/a.mp3?Expires=soon", None, id="not-a-number"),
    pytest.param("https://x/a.mp3", None, id="none"),
    pytest.param("https://x/a.mp3?Expires=1e300", None, id="far-future"),
    pytest.param("http://[::1/a.mp3?Expires=1", None, id="invalid-url"),
])
def test_link_expiry(url: str, expected: float | None) -> None:
    found = proto.link_expiry(url)
    assert (found.timestamp() if found else None) == expected


def test_the_poll_schedule_follows_the_advice() -> None:
    import random

    rng = random.Random(1)
    waits = [POLL.delay(n, rng=rng) for n in range(50)]
    assert all(10.0 <= w <= 15.0 for w in waits)
    assert 600.0 <= AUDIO_TASK.timeout <= 1000.0 and AUDIO_TASK.read_callback is None
    assert "session.aimlapi.task(" in AUDIO_TASK.resume_hint.format(task_id=GEN)


# -- property tests: whatever arrives, the reader answers a snapshot or a ResponseError ----------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                  max_size=3),
    max_leaves=12)
_status = st.sampled_from(["queued", "waiting", "generating", "completed", "error", "odd"])
_numberish = (st.integers(-5, 10**7) | st.floats(allow_nan=True, allow_infinity=True)
              | st.integers(-5, 10**7).map(str) | st.text(max_size=5) | st.none())


@settings(max_examples=300, deadline=None)
@given(status=_status | _json, audio=_json | st.fixed_dictionaries({"url": st.text()}),
       meta=_json, error=_json, extra=_json)
def test_the_status_reader_never_fails_otherwise(status: object, audio: object, meta: object,
                                                 error: object, extra: object) -> None:
    body = {"id": GEN, "status": status, "audio_file": audio, "meta": meta, "error": error,
            "extra_info": extra}
    try:
        snap = proto.read_status(body, GEN)
    except ResponseError:
        return
    assert snap.task_id == GEN and isinstance(snap.status, str)
    if snap.phase is Phase.SUCCEEDED:
        assert len(snap.assets) == 1 and snap.assets[0].url.startswith(("http://", "https://"))
    if snap.phase is Phase.FAILED:
        assert snap.error_message


@settings(max_examples=300, deadline=None)
@given(credits=_numberish, usd=_numberish)
def test_cost_parsing_matches_an_oracle(credits: object, usd: object) -> None:
    def oracle(value: object) -> float | None:
        if isinstance(value, bool) or value is None:
            return None
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            return None
        return number if math.isfinite(number) and number >= 0 else None

    body = json.loads(json.dumps({"meta": {"usage": {"credits_used": credits,
                                                     "usd_spent": usd}}}))
    cost = proto.read_cost(body)
    c, u = oracle(credits), oracle(usd)
    if c is not None:
        assert cost == Cost(c, "credits", "aimlapi", usd=u)
    elif u is not None:
        assert cost == Cost(u, "usd", "aimlapi")
    else:
        assert cost is None
