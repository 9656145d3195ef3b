"""The SSE reader of streamed MiniMax generations: any chunking, any line ending, bounded."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiomusic import AudioDecodeError, BadRequestError, ResponseError
from aiomusic._core._classify import classify_minimax
from aiomusic._io._sse import SseAudioReader

OK = {"status_code": 0, "status_msg": "success"}
ENDINGS = (b"\n", b"\r\n", b"\r")


@attrs.frozen
class Event:
    audio: bytes
    status: int = 1
    ending: bytes = b"\n"
    indent: bool = False  # the JSON spread over several data: lines
    before: tuple[bytes, ...] = ()  # comment / id / retry / event lines before the data

    def document(self, *, audio: str | None = None) -> dict[str, Any]:
        return {"data": {"audio": self.audio.hex() if audio is None else audio,
                         "status": self.status},
                "extra_info": None if self.status == 1 else {"music_size": 3},
                "trace_id": "t", "base_resp": OK}

    def wire(self) -> bytes:
        text = json.dumps(self.document(), indent=1 if self.indent else None)
        lines = [*self.before, *(b"data: " + line.encode() for line in text.split("\n"))]
        return b"".join(line + self.ending for line in lines) + self.ending


def expected_audio(events: list[Event]) -> bytes:
    out = b""
    for event in events:
        if event.status == 2:
            break
        out += event.audio
    return out


def feed(body: bytes, cuts: list[int], reader: SseAudioReader | None = None) -> bytes:
    reader = reader or SseAudioReader()
    points = sorted({0, len(body), *(c % (len(body) + 1) for c in cuts)})
    return b"".join(reader.feed(body[a:b]) for a, b in itertools.pairwise(points))


extras = st.sampled_from([b": keep-alive", b":", b"id: 7", b"retry: 3000", b"event: chunk",
                          b"id", b"x-unknown-field-that-is-long: 1"])
events = st.builds(Event, audio=st.binary(min_size=1, max_size=40),
                   ending=st.sampled_from(ENDINGS), indent=st.booleans(),
                   before=st.lists(extras, max_size=2).map(tuple))


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(events, max_size=6), final=events, after=st.lists(events, max_size=2),
       cuts=st.lists(st.integers(min_value=0), max_size=30), repeat=st.booleans())
def test_any_chunking_gives_the_events_audio(chunks: list[Event], final: Event,
                                             after: list[Event], cuts: list[int],
                                             repeat: bool) -> None:
    whole = b"".join(e.audio for e in chunks)
    last = attrs.evolve(final, status=2, audio=whole if repeat else b"")
    body = b"".join(e.wire() for e in (*chunks, last, *after))
    reader = SseAudioReader()
    assert feed(body, cuts, reader) == whole
    assert reader.close() == last.document(audio="")
    assert reader.done
    assert (reader.events, reader.audio_bytes) == (len(chunks), len(whole))


@settings(max_examples=100, deadline=None)
@given(chunks=st.lists(events, min_size=1, max_size=4),
       cuts=st.lists(st.integers(min_value=0), max_size=10))
def test_a_stream_without_its_final_event_is_incomplete(chunks: list[Event],
                                                        cuts: list[int]) -> None:
    body = b"".join(e.wire() for e in chunks)
    reader = SseAudioReader()
    assert feed(body, cuts, reader) == expected_audio(chunks)
    with pytest.raises(ResponseError, match=f"after {len(chunks)} audio events without the "
                                            "final status-2 event"):
        reader.close()
    with pytest.raises(ResponseError):  # it stays failed
        reader.close()


def test_a_final_event_without_its_blank_line_still_ends_the_stream() -> None:
    reader = SseAudioReader()
    assert reader.feed(Event(b"ab").wire() + b'data: {"data":{"audio":"","status":2}}') == b"ab"
    assert reader.close() == {"data": {"audio": "", "status": 2}}
    cut = SseAudioReader()
    cut.feed(b'data: {"data":{"audio":"","sta')
    with pytest.raises(ResponseError, match="truncated"):
        cut.close()


def test_fields_without_a_space_without_a_colon_and_blank_events() -> None:
    body = (b"\n\n: only a comment\n\ndata\n\ndata:    \ndata:\n\n"  # empty and blank events
            b'data:{"data":{"audio":"6162","status":1}}\n\n'
            b'data:\ndata: {"data":{"audio":"63",\ndata:"status":1}}\n\n'
            b'data: {"data":{"audio":"","status":2}}\n\n')
    assert feed(body, [5, 9, 40, 41, 42]) == b"abc"


def test_every_event_is_checked_before_its_audio_is_handed_out() -> None:
    seen: list[Mapping[str, Any]] = []

    def check(document: Mapping[str, Any]) -> None:
        seen.append(document)
        classify_minimax(200, {}, document)

    reader = SseAudioReader(on_event=check)
    error = {"data": None, "trace_id": "t-9",
             "base_resp": {"status_code": 2013, "status_msg": "invalid params"}}
    body = Event(b"ok").wire() + b"data: " + json.dumps(error).encode() + b"\n\n"
    assert reader.feed(body) == b"ok"  # the event before the refusal is whole
    assert [d["data"] for d in seen] == [{"audio": "", "status": 1}, None]
    with pytest.raises(BadRequestError, match="code 2013") as info:
        reader.feed(Event(b"more").wire())
    assert info.value.trace_id == "t-9"
    with pytest.raises(BadRequestError):  # the same error again: the stream is over
        reader.close()
    assert len(seen) == 2


@pytest.mark.parametrize(("data", "error", "message"), [
    pytest.param(b"[DONE]", ResponseError, "not valid JSON", id="not-json"),
    pytest.param(b"[1, 2]", ResponseError, "not an object", id="array"),
    pytest.param(b'{"data":{"audio":"zz","status":1}}', AudioDecodeError, "non-hex",
                 id="bad-hex"),
    pytest.param(b'{"data":{"audio":"abc","status":1}}', AudioDecodeError, "odd number",
                 id="odd-hex"),
])
def test_unreadable_events_fail_typed(data: bytes, error: type[Exception], message: str) -> None:
    reader = SseAudioReader()
    with pytest.raises(error, match=message):
        reader.feed(b"data: " + data + b"\n\n")
    with pytest.raises(error, match=message):  # the stream is over
        reader.close()


def test_data_after_the_final_event_is_ignored() -> None:
    reader = SseAudioReader()
    final = Event(b"", status=2).wire()
    assert reader.feed(Event(b"a").wire() + Event(b"").wire() + final
                       + Event(b"late").wire()) == b"a"
    assert reader.events == 1  # an event without audio hands out nothing
    assert reader.feed(b"data: not even json\n\n") == b""
    assert reader.close()["data"] == {"audio": "", "status": 2}


def test_memory_is_bounded_per_event() -> None:
    big = Event(b"x" * 100)
    with pytest.raises(ResponseError, match="larger than 150 bytes"):
        SseAudioReader(max_event_bytes=150).feed(big.wire())
    padded = b'data: {"pad":"' + b"p" * 200 + b'","data":{"audio":"61","status":1}}\n\n'
    with pytest.raises(ResponseError, match="more than 100 bytes besides its audio"):
        SseAudioReader(max_meta_bytes=100).feed(padded)
    with pytest.raises(ResponseError, match="more than 50 bytes of audio, and it was not the "
                                            "final one"):
        SseAudioReader(max_held_audio=50).feed(big.wire())


def test_a_final_event_repeating_the_whole_song_is_not_held() -> None:
    song = [Event(bytes([i]) * 40) for i in range(5)]
    whole = b"".join(e.audio for e in song)
    reader = SseAudioReader(max_held_audio=64)
    body = b"".join(e.wire() for e in song) + Event(whole, status=2).wire()
    assert feed(body, list(range(0, len(body), 7))) == whole
    assert reader.feed(body) == whole
    assert reader.close()["extra_info"] == {"music_size": 3}


def test_a_chunk_ending_in_cr_then_lf_is_one_line_end() -> None:
    reader = SseAudioReader()
    first = Event(b"ab", ending=b"\r\n").wire()
    assert reader.feed(first[:-1]) == b"ab"  # "...\r\n\r": the CR ends the blank line
    assert reader.feed(first[-1:] + Event(b"cd").wire()) == b"cd"
    assert reader.feed(b"") == b""
    # "data: A\r" then "\ndata: B": CRLF is one line end, so A and B are one event's two
    # lines (one document holding "data" twice), not two events
    joined = SseAudioReader()
    assert joined.feed(b'data: {"data":{"audio":"61","status":1}}\r') == b""
    with pytest.raises(ResponseError, match="key data twice"):
        joined.feed(b'\ndata: {"data":{"audio":"62","status":1}}\n\n')


def test_each_event_obeys_the_json_limits_it_is_given() -> None:
    """The events' JSON is bounded like a whole answer's: by the session's `JsonLimits`."""
    from aiomusic import JsonLimits

    deep = {"data": {"audio": b"ab".hex(), "status": 1},
            "extra_info": {"x": [[[[[[1]]]]]]}, "trace_id": "t", "base_resp": OK}
    body = b"data: " + json.dumps(deep).encode() + b"\n\n"
    assert SseAudioReader().feed(body) == b"ab"  # the defaults allow 64 levels
    with pytest.raises(ResponseError, match="more than 4 deep"):
        SseAudioReader(limits=JsonLimits(max_depth=4)).feed(body)
