"""Hostile download servers and forged track URLs (issue 16).

A download ends as a verified track (audio by its first bytes, of the announced length, decoded
if the server compressed it anyway) or as a typed `DownloadError`, with nothing left at the
destination; and it never reads from an address that is not public unless the user allowed it.
The odd answers come from a small hostile server of the tests' own (`tests/hostile.py`).
"""

from __future__ import annotations

import gzip
import socket
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import brotli
import httpx
import pytest

from aiomusic import ConfigurationError, DownloadError, MusicSession, RetryPolicy, Track
from aiomusic._core import _encoding, _guard
from aiomusic._io._names import sniff_media

from .hostile import Answer, hostile_server

pytestmark = pytest.mark.anyio
KEY = "sk-hostile-test-key"
FAST = RetryPolicy(base_delay=0.001, max_delay=0.005, max_attempts=3)
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 300
MPEG = {"Content-Type": "audio/mpeg"}


def local(**kw: Any) -> MusicSession:
    """A session that may fetch the tests' own server on 127.0.0.1 (explicitly allowed)."""
    kw.setdefault("allow_private_hosts", ("127.0.0.1",))
    return MusicSession(suno_key=KEY, allow_http_hosts=("127.0.0.1", "localhost"), retry=FAST,
                        **kw)


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def fetch(url: str, tmp_path: Path, **kw: Any) -> Any:
    async with local(**kw) as s:
        return await s.suno.download(Track(id="t", audio_url=url), tmp_path / "t.mp3")


# -- audio by its first bytes, of its announced length -----------------------------------------


async def test_an_html_page_served_as_audio_is_refused(tmp_path: Path) -> None:
    """Finding: only the Content-Type was checked, so an error page became a track."""
    page = b"<!DOCTYPE html><html><body>Access denied</body></html>"
    with hostile_server(lambda p, h: Answer(headers=MPEG, body=page)) as server, \
            pytest.raises(DownloadError, match="does not start like audio") as caught:
        await fetch(server.url + "/t.mp3", tmp_path)
    assert "HTML" in str(caught.value) and not caught.value.retryable
    assert files(tmp_path) == []


async def test_an_empty_body_is_not_a_track(tmp_path: Path) -> None:
    """Finding: a 0-byte download was saved as a track."""
    with hostile_server(lambda p, h: Answer(headers=MPEG, body=b"")) as server, \
            pytest.raises(DownloadError, match="0-byte"):
        await fetch(server.url + "/t.mp3", tmp_path)
    assert len(server.seen) == FAST.max_attempts  # a CDN may serve the file a moment later
    assert files(tmp_path) == []


async def test_a_body_shorter_than_its_length_is_a_typed_error(tmp_path: Path) -> None:
    """Finding: it escaped as a bare "connection lost" transport error."""
    with hostile_server(lambda p, h: Answer(headers=MPEG, body=MP3[:1000],
                                            length=len(MP3))) as server, \
            pytest.raises(DownloadError, match=f"ended at byte 1000 of the {len(MP3)}") as caught:
        await fetch(server.url + "/t.mp3", tmp_path)
    assert caught.value.retryable
    assert [h.get("range") for _, h in server.seen][:2] == [None, "bytes=1000-"]
    assert files(tmp_path) == []


def cut_then_resumed(body: bytes, cut: int, headers: dict[str, str]) -> Any:
    """A server that sends ``body`` up to ``cut`` under its full length, then honours Range."""

    def script(path: str, request: dict[str, str]) -> Answer:
        if "range" not in request:
            return Answer(headers=headers, body=body[:cut], length=len(body))
        start = int(request["range"].removeprefix("bytes=").rstrip("-"))
        return Answer(206, headers={**headers, "Content-Range":
                                    f"bytes {start}-{len(body) - 1}/{len(body)}"},
                      body=body[start:])

    return script


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
async def test_a_short_body_is_resumed_where_the_server_allows(tmp_path: Path,
                                                               encoding: str) -> None:
    """A compressed body resumes its stream on the wire, where Range and Content-Length
    count, and the decoder goes on where it stopped."""
    body = gzip.compress(MP3) if encoding == "gzip" else MP3
    script = cut_then_resumed(body, len(body) // 2, {**MPEG, "Content-Encoding": encoding})
    with hostile_server(script) as server:
        got = await fetch(server.url + "/t.mp3", tmp_path)
    assert got.resumes == 1 and (tmp_path / "t.mp3").read_bytes() == MP3


def compress(name: str, data: bytes) -> bytes:
    return {"gzip": gzip.compress, "br": brotli.compress, "deflate": zlib.compress}[name](data)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
@pytest.mark.parametrize("size", ["small", "several-megabytes"])
async def test_a_body_compressed_despite_identity_is_decoded(tmp_path: Path, encoding: str,
                                                              size: str) -> None:
    """Finding: gzip was retried 6 times then called a size mismatch; br "truncated"."""
    track = MP3 if size == "small" else MP3 * 40
    packed = compress(encoding, track)
    with hostile_server(lambda p, h: Answer(headers={**MPEG, "Content-Encoding": encoding},
                                            body=packed)) as server:
        got = await fetch(server.url + "/t.mp3", tmp_path)
    assert server.seen[0][1]["accept-encoding"] == "identity" and len(server.seen) == 1
    assert (tmp_path / "t.mp3").read_bytes() == track and got.bytes_written == len(track)


async def test_brotli_without_the_package_says_so(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_encoding, "_brotli", lambda: None)
    packed = brotli.compress(MP3)
    with hostile_server(lambda p, h: Answer(headers={**MPEG, "Content-Encoding": "br"},
                                            body=packed)) as server, \
            pytest.raises(DownloadError, match="install the brotli package"):
        await fetch(server.url + "/t.mp3", tmp_path)
    assert files(tmp_path) == []


@pytest.mark.parametrize(("headers", "body", "match"), [
    pytest.param({"Content-Encoding": "gzip"}, b"definitely not gzip", "cannot be decoded",
                 id="corrupt-gzip"),
    pytest.param({"Content-Encoding": "gzip"}, gzip.compress(MP3)[:-20], "end marker",
                 id="gzip-without-end"),
    pytest.param({"Content-Encoding": "compress"}, MP3, "'compress' encoding", id="unknown"),
    pytest.param({"Content-Encoding": "gzip"}, gzip.compress(b"<html>denied</html>"),
                 "does not start like audio", id="gzip-html"),
])
async def test_bodies_that_cannot_be_a_track_are_refused(tmp_path: Path, headers: dict[str, str],
                                                         body: bytes, match: str) -> None:
    with hostile_server(lambda p, h: Answer(headers={**MPEG, **headers},
                                            body=body)) as server, \
            pytest.raises(DownloadError, match=match):
        await fetch(server.url + "/t.mp3", tmp_path)
    assert files(tmp_path) == []


@pytest.mark.parametrize("encoding", ["gzip", "br"])
async def test_a_decompression_bomb_stops_at_max_bytes(tmp_path: Path, encoding: str) -> None:
    packed = compress(encoding, MP3[:10] + bytes(50 << 20))
    with hostile_server(lambda p, h: Answer(headers={**MPEG, "Content-Encoding": encoding},
                                            body=packed)) as server, \
            pytest.raises(DownloadError, match="passed the 1048576-byte limit"):
        async with local() as s:
            await s.suno.download(Track(id="t", audio_url=server.url + "/t.mp3"),
                                  tmp_path / "t.mp3", max_bytes=1 << 20)
    assert files(tmp_path) == []


@pytest.mark.parametrize(("head", "kind"), [
    pytest.param(b"ID3\x04\x00\x00\x00\x00\x00\x00\x00\x00", "mp3", id="id3"),
    pytest.param(b"\xff\xfb\x90\x64" + bytes(8), "mp3", id="mpeg-frame"),
    pytest.param(b"\xff\xf1\x50\x80" + bytes(8), "mp3", id="adts-aac"),
    pytest.param(b"RIFF\x24\x00\x00\x00WAVE", "wav", id="wav"),
    pytest.param(b"fLaC\x00\x00\x00\x22" + bytes(4), "flac", id="flac"),
    pytest.param(b"OggS\x00\x02" + bytes(6), "ogg", id="ogg"),
    pytest.param(b"\x00\x00\x00\x20ftypM4A ", "mp4", id="m4a"),
    pytest.param(b"\x00\x00\x00\x18ftypmp42", "mp4", id="mp4-video"),
    pytest.param(b"<!DOCTYPE html", None, id="html"),
    pytest.param(b'{"error": 1}', None, id="json"),
    pytest.param(b"RIFF\x24\x00\x00\x00AVI ", None, id="avi"),
    pytest.param(b"\x89PNG\r\n\x1a\n" + bytes(4), None, id="png"),
    pytest.param(b"", None, id="empty"),
])
def test_sniffing_by_the_first_bytes(head: bytes, kind: str | None) -> None:
    assert sniff_media(head) == kind


async def test_a_tiny_file_is_judged_on_what_there_is(tmp_path: Path) -> None:
    with hostile_server(lambda p, h: Answer(headers=MPEG, body=b"ID3\x04")) as server:
        got = await fetch(server.url + "/t.mp3", tmp_path)
    assert got.bytes_written == 4
    with hostile_server(lambda p, h: Answer(headers=MPEG, body=b"<p>")) as server, \
            pytest.raises(DownloadError, match="does not start like audio"):
        await fetch(server.url + "/u.mp3", tmp_path)


async def test_a_music_video_is_accepted(tmp_path: Path) -> None:
    video = b"\x00\x00\x00\x18ftypmp42" + bytes(5000)
    with hostile_server(lambda p, h: Answer(headers={"Content-Type": "video/mp4"},
                                            body=video)) as server:
        got = await fetch(server.url + "/t.mp4", tmp_path)
    assert got.bytes_written == len(video)


# -- SSRF: public addresses only ---------------------------------------------------------------


FORBIDDEN = [
    pytest.param("https://127.0.0.1/t.mp3", "loopback", id="loopback"),
    pytest.param("https://127.8.9.10:8443/t.mp3", "loopback", id="loopback-8"),
    pytest.param("https://169.254.169.254/latest/meta-data/", "link-local", id="metadata"),
    pytest.param("https://10.1.2.3/t.mp3", "private", id="private-10"),
    pytest.param("https://192.168.1.1/t.mp3", "private", id="private-192"),
    pytest.param("https://172.16.0.1/t.mp3", "private", id="private-172"),
    pytest.param("https://100.64.0.1/t.mp3", "not public", id="cgnat"),
    pytest.param("https://224.0.0.1/t.mp3", "multicast", id="multicast"),
    pytest.param("https://240.0.0.1/t.mp3", "private", id="reserved-v4"),
    pytest.param("https://0.0.0.0/t.mp3", "unspecified", id="unspecified"),
    pytest.param("https://[::1]/t.mp3", "loopback", id="v6-loopback"),
    pytest.param("https://[::]/t.mp3", "unspecified", id="v6-unspecified"),
    pytest.param("https://[fe80::1]/t.mp3", "link-local", id="v6-link-local"),
    pytest.param("https://[fd00::1]/t.mp3", "private", id="v6-unique-local"),
    pytest.param("https://[ff02::1]/t.mp3", "multicast", id="v6-multicast"),
    pytest.param("https://[::ffff:127.0.0.1]/t.mp3", "loopback", id="v4-mapped"),
    pytest.param("https://[::ffff:169.254.169.254]/t.mp3", "link-local", id="v4-mapped-meta"),
    pytest.param("https://[2002:7f00:1::]/t.mp3", "loopback", id="6to4"),
    pytest.param("https://[64:ff9b::a9fe:a9fe]/t.mp3", "link-local", id="nat64"),
    pytest.param("https://localhost/t.mp3", "loopback", id="name-to-loopback"),
    pytest.param("https://LocalHost/t.mp3", "loopback", id="name-in-capitals"),
]


@pytest.mark.parametrize(("url", "reason"), FORBIDDEN)
async def test_downloads_refuse_addresses_that_are_not_public(tmp_path: Path, url: str,
                                                              reason: str) -> None:
    """Finding: a track URL (from an answer or a forged callback) was fetched from any host,
    127.0.0.1 and 169.254.169.254 included."""
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, content=MP3, headers=MPEG)

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with MusicSession(suno_key=KEY, http_client=client, retry=FAST) as s:
        with pytest.raises(DownloadError, match=reason) as caught:
            await s.suno.download(Track(id="t", audio_url=url), tmp_path / "t.mp3")
    await client.aclose()
    assert "allow_private_hosts" in str(caught.value) and not caught.value.retryable
    assert sent == [] and files(tmp_path) == []


async def test_a_redirect_to_a_private_address_is_refused(tmp_path: Path) -> None:
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url))
        return httpx.Response(302, headers={"location": "https://169.254.169.254/creds"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with MusicSession(suno_key=KEY, http_client=client, retry=FAST) as s:
        with pytest.raises(DownloadError, match="link-local"):
            await s.suno.download(Track(id="t", audio_url="https://cdn.example/t.mp3"),
                                  tmp_path / "t.mp3")
    await client.aclose()
    assert sent == ["https://cdn.example/t.mp3"] and files(tmp_path) == []


async def test_a_name_with_one_private_address_among_public_ones_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def resolve(host: str, port: int, **kw: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in ("93.184.215.14", "10.0.0.7")]

    monkeypatch.setattr(_guard, "getaddrinfo", resolve)
    with pytest.raises(DownloadError, match=r"mixed\.test \(10\.0\.0\.7\)"):
        await fetch("https://mixed.test/t.mp3", tmp_path)


async def test_a_name_that_does_not_resolve_is_a_retryable_download_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def resolve(host: str, port: int, **kw: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(_guard, "getaddrinfo", resolve)
    with pytest.raises(DownloadError, match="cannot be resolved") as caught:
        await fetch("https://nowhere.test/t.mp3", tmp_path)
    assert caught.value.retryable


async def test_explicit_allowances(tmp_path: Path) -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        return httpx.Response(200, content=MP3, headers=MPEG)

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with MusicSession(suno_key=KEY, http_client=client, retry=FAST,
                            allow_private_hosts=("10.0.0.0/8", "[::1]", "Minio.Internal",
                                                 "127.0.0.1")) as s:
        for url in ("https://10.20.30.40/a.mp3", "https://[::1]:9000/a.mp3",
                    "https://minio.internal/a.mp3", "https://127.0.0.1/a.mp3"):
            await s.suno.download(Track(id="t", audio_url=url), tmp_path / "a.mp3")
        # a name is allowed as a name: another name for the same address is not
        with pytest.raises(DownloadError, match="loopback"):
            await s.suno.download(Track(id="t", audio_url="https://localhost/a.mp3"),
                                  tmp_path / "b.mp3")
    await client.aclose()
    assert seen == ["10.20.30.40", "::1", "minio.internal", "127.0.0.1"]
    for bad in (("10.0.0.0/99",), ("",), (5,)):
        with pytest.raises(ConfigurationError, match="allow_private_hosts"):
            MusicSession(suno_key=KEY, allow_private_hosts=bad)  # type: ignore[arg-type]


async def test_the_session_own_endpoint_is_allowed_and_nothing_else(tmp_path: Path) -> None:
    """An emulator session downloads from its own loopback host and port without any
    allowance; the same address on another port is still refused."""
    with hostile_server(lambda p, h: Answer(headers=MPEG, body=MP3)) as own, \
            hostile_server(lambda p, h: Answer(headers=MPEG, body=MP3)) as other:
        async with MusicSession(suno_key=KEY, base_url=own.url, retry=FAST,
                                allow_http_hosts=("127.0.0.1",)) as s:
            got = await s.suno.download(Track(id="t", audio_url=own.url + "/files/t.mp3"),
                                        tmp_path / "own.mp3")
            with pytest.raises(DownloadError, match="loopback"):
                await s.suno.download(Track(id="t", audio_url=other.url + "/t.mp3"),
                                      tmp_path / "other.mp3")
    assert got.bytes_written == len(MP3) and other.seen == []


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    """``localhost`` checks as 127.0.0.2 (an allowed network, serving audio) while the
    system resolves it to 127.0.0.1 (refused, serving "secrets") on the same port: a DNS
    rebinding between the check and the connection."""
    with ExitStack() as stack:
        try:
            checked = stack.enter_context(hostile_server(
                lambda p, h: Answer(headers=MPEG, body=MP3), host="127.0.0.2"))
            internal = stack.enter_context(hostile_server(
                lambda p, h: Answer(headers=MPEG, body=b"ID3 secrets"), host="127.0.0.1",
                port=checked.port))
        except OSError:  # pragma: no cover - no 127.0.0.2 (macOS), or the port is taken
            pytest.skip("needs the same free port on 127.0.0.1 and 127.0.0.2")

        async def resolve(host: str, port: int, **kw: Any) -> list[Any]:
            assert host == "localhost"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port))]

        monkeypatch.setattr(_guard, "getaddrinfo", resolve)
        yield checked, internal


async def test_the_session_own_client_is_pinned_to_the_checked_address(
        tmp_path: Path, rebinding: tuple[Any, Any]) -> None:
    checked, internal = rebinding
    async with local(allow_private_hosts=("127.0.0.2/32",)) as s:
        got = await s.suno.download(
            Track(id="t", audio_url=f"http://localhost:{checked.port}/t.mp3"),
            tmp_path / "t.mp3")
    assert (tmp_path / "t.mp3").read_bytes() == MP3 and got.bytes_written == len(MP3)
    assert len(checked.seen) == 1 and internal.seen == []
    assert checked.seen[0][1]["host"] == f"localhost:{checked.port}"


async def test_a_client_of_your_own_is_refused_the_rebound_answer(
        tmp_path: Path, rebinding: tuple[Any, Any]) -> None:
    checked, _ = rebinding
    client = httpx.AsyncClient()
    async with local(allow_private_hosts=("127.0.0.2/32",), http_client=client) as s:
        with pytest.raises(DownloadError, match="reached another address"):
            await s.suno.download(
                Track(id="t", audio_url=f"http://localhost:{checked.port}/t.mp3"),
                tmp_path / "t.mp3")
    await client.aclose()
    assert files(tmp_path) == []  # the GET went out (documented), its answer was not read


def test_refusal_reasons_and_policy_table() -> None:
    import ipaddress

    assert _guard.refusal(ipaddress.ip_address("93.184.215.14")) is None
    assert _guard.refusal(ipaddress.ip_address("2606:4700::1111")) is None
    assert _guard.refusal(ipaddress.ip_address("::ffff:8.8.8.8")) is None
    assert _guard.refusal(ipaddress.ip_address("192.0.2.1")) == "private"
    policy = _guard.HostPolicy.build(["10.0.0.0/8"], ["http://127.0.0.1:8000"])
    assert policy.allows_url(httpx.URL("http://127.0.0.1:8000/files/x"))
    assert not policy.allows_url(httpx.URL("http://127.0.0.1:8001/files/x"))
    assert policy.allows_address(ipaddress.ip_address("10.9.9.9"))
    assert policy.allows_address(ipaddress.ip_address("11.0.0.1"))
    assert not policy.allows_address(ipaddress.ip_address("192.168.0.1"))


def test_the_command_line_allows_private_hosts_explicitly(
        capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from aiomusic.cli import build_parser, main
    from aiomusic.cli._common import backend, for_cli

    assert main(["config", "--json", "--allow-private-host", "10.0.0.0/8",
                 "--allow-private-host", "minio.internal"]) == 0
    assert json.loads(capsys.readouterr().out)["allow_private_hosts"] == ["10.0.0.0/8",
                                                                        "minio.internal"]
    args = build_parser().parse_args(["credits", "--allow-private-host", "10.0.0.0/8"])
    with backend(args) as found:
        assert found.session["allow_private_hosts"] == ("10.0.0.0/8",)
    said = _guard._refused("cdn.test", __import__("ipaddress").ip_address("10.1.1.1"))
    assert "--allow-private-host HOST" in for_cli(said)
