"""Tests of the incremental hex scanner, with json.loads + unhexlify as the oracle."""

from __future__ import annotations

import binascii
import json
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiomusic._core._errors import AudioDecodeError, ResponseError
from aiomusic._io._hexstream import HexAudioScanner, JsonLimits, decode_hex_stream

AUDIO = bytes(range(256)) * 3
HEX = AUDIO.hex()


def split(body: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start:start + size]


def scan(body: bytes, size: int, path: tuple[str, ...] = ("data", "audio"),
         limits: JsonLimits | None = None) -> tuple[bytes, dict[str, Any], HexAudioScanner]:
    scanner = HexAudioScanner(path, limits=limits)
    audio = b"".join(scanner.feed(chunk) for chunk in split(body, size))
    return audio, scanner.close(), scanner


def answer(hex_text: str = HEX, **extra: Any) -> bytes:
    document = {"data": {"audio": hex_text, "status": 2}, "trace_id": "t-1",
                "base_resp": {"status_code": 0, "status_msg": "success"}, **extra}
    return json.dumps(document).encode()


# -- the property -------------------------------------------------------------------------

KEYS = st.one_of(st.sampled_from(["audio", "data", "status", 'say "audio"', "a\\b"]), st.text())
DECOY_TEXT = st.one_of(
    st.text(),
    st.sampled_from(['"audio":"00"', '{"data":{"audio":"ff"}}', "\\", '\\"', "\u00e9\U0001f3b5"]),
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(),
    st.floats(allow_nan=False, allow_infinity=False), DECOY_TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=12,
)
SEPARATORS = st.sampled_from([(",", ":"), (", ", ": "), (" ,\n", " :\t"), ("\r\n,", ":  ")])
INDENTS = st.sampled_from([None, 0, 2, "\t", " \r\n"])


def with_target(draw: st.DrawFn, base: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    items = [(k, v) for k, v in base.items() if k != key]
    items.insert(draw(st.integers(0, len(items))), (key, value))
    return dict(items)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, bytes]:
    audio = draw(st.binary(max_size=600))
    hex_text = audio.hex()
    case = draw(st.sampled_from(["lower", "upper", "mixed"]))
    if case == "upper":
        hex_text = hex_text.upper()
    elif case == "mixed":
        flips = draw(st.lists(st.booleans(), min_size=len(hex_text), max_size=len(hex_text)))
        hex_text = "".join(c.upper() if f else c for c, f in zip(hex_text, flips, strict=True))
    data = with_target(draw, draw(st.dictionaries(KEYS, VALUES, max_size=4)), "audio", hex_text)
    document = with_target(draw, draw(st.dictionaries(KEYS, VALUES, max_size=4)), "data", data)
    body = json.dumps(document, ensure_ascii=draw(st.booleans()), indent=draw(INDENTS),
                      separators=draw(SEPARATORS)).encode()
    return body, audio


@given(case=bodies(), sizes=st.lists(st.one_of(st.integers(1, 16), st.integers(1, 1 << 20)),
                                     min_size=1, max_size=64))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_scanner_matches_json_loads_and_unhexlify(case: tuple[bytes, bytes],
                                                   sizes: list[int]) -> None:
    body, audio = case
    scanner = HexAudioScanner()
    out = []
    pos = 0
    for size in sizes:
        out.append(scanner.feed(body[pos:pos + size]))
        pos += size
    out.append(scanner.feed(body[pos:]))
    document = scanner.close()
    expected = json.loads(body)
    assert b"".join(out) == binascii.unhexlify(expected["data"]["audio"]) == audio
    expected["data"]["audio"] = ""
    assert document == expected
    assert scanner.found
    assert scanner.hex_chars == 2 * len(audio)
    assert scanner.document is document


@given(value=VALUES.filter(lambda v: not isinstance(v, str)), size=st.integers(1, 64))
@settings(max_examples=100, deadline=None)
def test_documents_without_a_target_string_come_back_whole(value: Any, size: int) -> None:
    document = {"data": {"audio": value, "x": 1}, "audio": "00"}
    audio, parsed, scanner = scan(json.dumps(document).encode(), size)
    assert audio == b""
    assert parsed == json.loads(json.dumps(document))
    assert not scanner.found


# -- table tests --------------------------------------------------------------------------

SIZES = [1, 2, 3, 7, 64, 1 << 20]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    ("body", "audio", "found"),
    [
        pytest.param(answer(), AUDIO, True, id="plain"),
        pytest.param(answer(HEX.upper()), AUDIO, True, id="upper-case"),
        pytest.param(answer("AbCdEf09"), b"\xab\xcd\xef\x09", True, id="mixed-case"),
        pytest.param(answer(""), b"", True, id="empty-hex"),
        pytest.param(b'{"base_resp":{"status_code":1002},"data":{"status":1,"audio":"0a"}}',
                     b"\n", True, id="target-last"),
        pytest.param(b' \r\n{ "data" :\t{ "audio" :\n"0a0B" } }\n', b"\n\x0b", True,
                     id="whitespace"),
        pytest.param(b'{"audio":"ff","x":{"data":{"audio":"ee"}},"data":{"y":["audio","a\\"b"],'
                     b'"audio":"01"}}', b"\x01", True, id="decoys"),
        pytest.param(b'{"d\\u0061ta":{"\\u0061udio":"01"}}', b"\x01", True, id="escaped-keys"),
        pytest.param(b'{"data":{"audio":"\\u0030\\u0031\\u0041b"}}', b"\x01\xab", True,
                     id="escaped-hex-digits"),
        pytest.param(b'{"data":{"audio":null},"base_resp":{"status_code":2013}}', b"", False,
                     id="target-null"),
        pytest.param(b'{"data":{"audio":12}}', b"", False, id="target-number"),
        pytest.param(b'{"data":{"audio":{"audio":"00"}}}', b"", False, id="target-object"),
        pytest.param(b'{"data":{"audio":["00"]}}', b"", False, id="target-array"),
        pytest.param(b'{"data":[{"audio":"00"}]}', b"", False, id="data-is-array"),
        pytest.param(b'{"base_resp":{"status_code":1004,"status_msg":"bad key"}}', b"", False,
                     id="missing-target"),
    ],
)
def test_scanner_table(body: bytes, audio: bytes, found: bool, size: int) -> None:
    out, document, scanner = scan(body, size)
    assert out == audio
    assert scanner.found is found
    expected = json.loads(body)
    if found:
        expected["data"]["audio"] = ""
    assert document == expected


def test_other_path() -> None:
    body = b'{"result":{"track":{"hex":"beef"}},"hex":"00"}'
    out, document, _ = scan(body, 3, path=("result", "track", "hex"))
    assert out == b"\xbe\xef"
    assert document == {"result": {"track": {"hex": ""}}, "hex": "00"}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    ("body", "match"),
    [
        pytest.param(answer("g" + HEX[1:]), "'g' at hex digit 0", id="bad-first"),
        pytest.param(answer(HEX[:701] + "x" + HEX[702:]), "'x' at hex digit 701",
                     id="bad-middle-odd"),
        pytest.param(answer(HEX[:700] + "Z" + HEX[701:]), "'Z' at hex digit 700",
                     id="bad-middle-even"),
        pytest.param(answer(HEX[:-1] + " "), f"' ' at hex digit {len(HEX) - 1}",
                     id="bad-last"),
        pytest.param(b'{"data":{"audio":"0\\n0"}}', "escape", id="newline-escape"),
        pytest.param(b'{"data":{"audio":"00\\u0067"}}', "escape", id="escape-not-hex"),
        pytest.param(b'{"data":{"audio":"00\\"0"}}', "escape", id="escaped-quote"),
        pytest.param(b'{"data":{"audio":"00\\u00zz"}}', "escape", id="broken-escape"),
        pytest.param(answer(HEX[:-1]), "odd number of hex digits", id="odd-length"),
        pytest.param(b'{"data":{"audio":"abc\\u0064e"}}', "odd number", id="odd-with-escape"),
    ],
)
def test_bad_hex_raises_in_feed(body: bytes, match: str, size: int) -> None:
    scanner = HexAudioScanner()

    def feed_all() -> None:
        for chunk in split(body, size):
            scanner.feed(chunk)

    with pytest.raises(AudioDecodeError, match=match):
        feed_all()
    # the error sticks: the scanner refuses to go on
    with pytest.raises(AudioDecodeError, match=match):
        scanner.feed(b"00")
    with pytest.raises(AudioDecodeError, match=match):
        scanner.close()


def test_bad_hex_message_names_body_offset() -> None:
    body = answer(HEX[:10] + "q" + HEX[11:])
    scanner = HexAudioScanner()
    with pytest.raises(AudioDecodeError) as info:
        scanner.feed(body)
    assert f"byte {body.index(b'q')} of the body" in str(info.value)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    ("body", "match"),
    [
        pytest.param(answer()[:40], "inside data.audio", id="truncated-in-hex"),
        pytest.param(b'{"data":{"audio":"00\\u00', "inside data.audio", id="truncated-in-escape"),
        pytest.param(answer()[:answer().index(b'"status"')], "before the JSON document",
                     id="truncated-after-hex"),
        pytest.param(answer()[:-1], "before the JSON document", id="truncated-last-brace"),
        pytest.param(answer()[:-5], "before the JSON document", id="truncated-in-string"),
        pytest.param(b"", "not valid JSON", id="empty-body"),
        pytest.param(b'{"data":{"audio":"00"}}}', "not valid JSON", id="extra-brace"),
        pytest.param(b'{"data":{"audio":"00"}} x', "not valid JSON", id="trailing-garbage"),
        pytest.param(b'{"data" {"audio":"00"}}', "not valid JSON", id="missing-colon"),
        pytest.param(b'{"data":{"audio":"00",}}', "not valid JSON", id="trailing-comma"),
        pytest.param(b'{"data":{"audio":1 "00"}}', "not valid JSON", id="two-values"),
        pytest.param(b'{"a":tru}', "not valid JSON", id="bad-literal"),
        pytest.param(b'{"a":"\xff"}', "not valid JSON", id="bad-utf8"),
        pytest.param(b"]", "not valid JSON", id="stray-bracket"),
        pytest.param(b"[1:2]", "not valid JSON", id="colon-in-array"),
        pytest.param(b'{"\xff":1}', "not valid JSON", id="bad-utf8-key"),
        pytest.param(b'["data"]', "not an object", id="array"),
        pytest.param(b'"data"', "not an object", id="string"),
        pytest.param(b'{"data":{"audio":"00","audio":"11"}}', "data.audio twice",
                     id="duplicate-audio"),
        pytest.param(b'{"data":{"audio":null,"audio":"11"}}', "data.audio twice",
                     id="duplicate-audio-null-first"),
        pytest.param(b'{"data":{"audio":"00"},"data":{}}', "key data twice",
                     id="duplicate-data"),
    ],
)
def test_bad_documents_raise_response_error(body: bytes, match: str, size: int) -> None:
    scanner = HexAudioScanner()

    def scan_all() -> None:
        for chunk in split(body, size):
            scanner.feed(chunk)
        scanner.close()

    with pytest.raises(ResponseError, match=match) as info:
        scan_all()
    assert type(info.value) is ResponseError
    with pytest.raises(ResponseError, match=match):
        scanner.close()


def test_duplicate_keys_off_the_path_are_json_loads_business() -> None:
    out, document, _ = scan(b'{"x":1,"x":2,"data":{"s":1,"s":2,"audio":"00"}}', 1)
    assert out == b"\x00"
    assert document == {"x": 2, "data": {"s": 2, "audio": ""}}


@pytest.mark.parametrize("size", [1 << 10, 1 << 16])
def test_huge_decoy_strings_and_escapes(size: int) -> None:
    decoy = ('"audio":"00" \\ ' * 70_000)[:1_000_000]
    document = {"extra_info": {"lyrics": decoy, "audio": decoy}, "data": {"audio": HEX}}
    body = json.dumps(document).encode()
    out, parsed, _ = scan(body, size, limits=JsonLimits(max_bytes=4 << 20))  # raised on purpose
    assert out == AUDIO
    assert parsed["extra_info"] == document["extra_info"]


def test_memory_does_not_grow_with_audio() -> None:
    audio = os.urandom(1 << 20)
    body = answer(audio.hex() * 4)
    scanner = HexAudioScanner()
    total = sum(len(scanner.feed(chunk)) for chunk in split(body, 65_521))
    assert total == 4 << 20
    assert len(scanner._doc) < 200
    assert scanner.close()["data"] == {"audio": "", "status": 2}


def test_misuse() -> None:
    with pytest.raises(ValueError, match="path"):
        HexAudioScanner(())
    scanner = HexAudioScanner()
    scanner.feed(answer())
    document = scanner.close()
    assert scanner.close() is document
    with pytest.raises(ValueError, match="after close"):
        scanner.feed(b"")
    scanner = HexAudioScanner()
    assert scanner.feed(b'{"data":{"audio":"0') == b""
    assert scanner.feed(b"") == b""
    assert scanner.feed(b"1") == b"\x01"
    assert HexAudioScanner().feed(bytearray(b'{"data":{"audio":"0')) == b""  # type: ignore[arg-type]


# -- the async helper ---------------------------------------------------------------------

@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def agen(body: bytes, size: int) -> AsyncIterator[bytes]:
    for chunk in split(body, size):
        yield chunk


@pytest.mark.anyio
async def test_decode_hex_stream_batches() -> None:
    audio = os.urandom(10_000)
    scanner = HexAudioScanner()
    batches = [b async for b in decode_hex_stream(agen(answer(audio.hex()), 999),
                                                  scanner=scanner, batch_size=4096)]
    assert b"".join(batches) == audio
    assert [len(b) >= 4096 for b in batches[:-1]] == [True] * (len(batches) - 1)
    assert len(batches) == 3
    assert scanner.document is not None
    assert scanner.document["base_resp"]["status_code"] == 0


@pytest.mark.anyio
async def test_decode_hex_stream_errors() -> None:
    with pytest.raises(ResponseError, match="truncated"):
        async for _ in decode_hex_stream(agen(answer()[:-3], 7)):
            pass
    with pytest.raises(AudioDecodeError):
        async for _ in decode_hex_stream(agen(answer("0g"), 7), path=("data", "audio")):
            pass
    with pytest.raises(ValueError, match="batch_size"):
        async for _ in decode_hex_stream(agen(b"", 1), batch_size=0):
            pass
