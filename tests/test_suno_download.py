"""Track downloads: atomic files, Range resume, refused URLs, redirects, types and sizes."""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from aiomusic import (
    ConfigurationError,
    DeadlineExceededError,
    DownloadError,
    MusicSession,
    RetryPolicy,
    TaskResult,
    Track,
)
from aiomusic._io import _files
from aiomusic._io._download import audio_suffix, check_download_url, safe_filename
from aiomusic.emulator import Emulator
from aiomusic.suno._tasks import PollSchedule

from .conftest import make_wav

pytestmark = pytest.mark.anyio
KEY = "sk-suno-test"
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05)
ARGS = {"title": "Night/City: Lights?", "tags": "rock", "negative_tags": "jazz"}


def session(emulator: Emulator, **kw: object) -> MusicSession:
    s = MusicSession(suno_key=KEY, base_url=emulator.url, allow_http_hosts=("127.0.0.1",),
                     retry=FAST, suno_callback_url="http://127.0.0.1:9/x",
                     **kw)  # type: ignore[arg-type]
    s.suno.poll_schedule = PollSchedule(initial=0.005, maximum=0.02)
    return s


async def finished(s: MusicSession) -> TaskResult:
    task = await s.suno.add_instrumental(make_wav(3.0), **ARGS)
    return await task.wait(timeout=20)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("fault", ["reset_mid_body", "truncated_body"])
async def test_download_resumes_after_a_dropped_connection(emulator: Emulator, tmp_path: Path,
                                                           fault: str) -> None:
    async with session(emulator) as s:
        result = await finished(s)
        track = result.tracks[0]
        clean = await track.download(tmp_path / "clean.mp3")
        emulator.inject(fault, operation="files.download", count=2)
        resumed = await s.suno.download(track, tmp_path / "resumed.mp3")
    assert resumed.resumes == 2 and clean.resumes == 0
    assert resumed.sha256 == clean.sha256 == hashlib.sha256(
        (tmp_path / "resumed.mp3").read_bytes()).hexdigest()
    assert resumed.content_type == "audio/mpeg" and resumed.track_id == track.id
    assert emulator.counters.fired(fault, operation="files.download") == 2
    assert leftovers(tmp_path) == ["clean.mp3", "resumed.mp3"]


async def test_download_all_names_files_safely(emulator: Emulator, tmp_path: Path) -> None:
    async with session(emulator) as s:
        result = await finished(s)
        files = await result.download_all(tmp_path)
    assert len(files) == 2 and len({f.path for f in files}) == 2
    for file, track in zip(files, result.tracks, strict=True):
        assert file.path.parent == tmp_path
        assert file.path.name == f"Night_City_ Lights_ - {track.id}.mp3"
        assert file.path.stat().st_size == file.bytes_written
    assert not [n for n in leftovers(tmp_path) if n.endswith(".part")]


async def test_non_https_is_refused_unless_allowed(emulator: Emulator, tmp_path: Path) -> None:
    async with session(emulator) as s:
        result = await finished(s)
    # a loopback endpoint's own files come over http (an emulator); any other http host
    # still needs to be named
    async with MusicSession(suno_key=KEY, base_url=emulator.url) as own:
        await own.suno.download(result.tracks[0], tmp_path / "own.mp3")
    elsewhere = Track(id="x", audio_url="http://cdn.example/a.mp3?token=1")
    async with MusicSession(suno_key=KEY, base_url=emulator.url) as strict:
        with pytest.raises(DownloadError, match="https") as caught:
            await strict.suno.download(elsewhere, tmp_path / "a.mp3")
    assert "?" not in caught.value.url
    (tmp_path / "own.mp3").unlink()
    assert leftovers(tmp_path) == []
    with pytest.raises(ConfigurationError, match="not tied"):
        await Track(id="x", audio_url="https://e.com/a.mp3").download(tmp_path / "b.mp3")
    with pytest.raises(ConfigurationError):
        await TaskResult(task_id="t", tracks=(Track(id="x"),)).download_all(tmp_path)
    assert await TaskResult(task_id="t", tracks=()).download_all(tmp_path) == ()


def mock_session(handler: Callable[[httpx.Request], httpx.Response], **kw: object
                 ) -> MusicSession:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return MusicSession(suno_key=KEY, http_client=client, retry=FAST,
                        **kw)  # type: ignore[arg-type]


#: An MP3 by its first bytes (an ID3 tag): downloads refuse what does not start like audio.
AUDIO = b"ID3\x04\x00\x00\x00\x00\x00\x00" + (bytes(range(256)) * 64)[10:]


class Dropping(httpx.AsyncByteStream):
    """A body that breaks after ``cut`` bytes."""

    def __init__(self, data: bytes, cut: int) -> None:
        self.data, self.cut = data, cut

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data[:self.cut]
        raise httpx.ReadError("connection reset")


async def test_redirects_are_followed_and_rechecked(tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        assert "authorization" not in request.headers  # never send the key to a CDN
        path = request.url.path
        if path == "/a.mp3":
            return httpx.Response(302, headers={"location": "/b.mp3"})
        if path == "/b.mp3":
            return httpx.Response(301, headers={"location": "https://cdn.example/c.mp3"})
        if path == "/c.mp3":
            return httpx.Response(200, content=AUDIO, headers={"content-type": "audio/mpeg"})
        if path == "/http":
            return httpx.Response(302, headers={"location": "http://evil.example/x.mp3"})
        if path == "/loop":
            return httpx.Response(307, headers={"location": "/loop"})
        return httpx.Response(302)

    async with mock_session(handler) as s:
        got = await s.suno.download(Track(id="t", audio_url="https://api.example/a.mp3"),
                                    tmp_path / "t.mp3")
        assert got.url == "https://cdn.example/c.mp3" and got.bytes_written == len(AUDIO)
        with pytest.raises(DownloadError, match="https"):
            await s.suno.download(Track(id="t", audio_url="https://api.example/http"),
                                  tmp_path / "u.mp3")
        with pytest.raises(DownloadError, match="redirects"):
            await s.suno.download(Track(id="t", audio_url="https://api.example/loop"),
                                  tmp_path / "v.mp3")
        with pytest.raises(DownloadError, match="Location"):
            await s.suno.download(Track(id="t", audio_url="https://api.example/none"),
                                  tmp_path / "w.mp3")
    assert seen[:3] == ["https://api.example/a.mp3", "https://api.example/b.mp3",
                        "https://cdn.example/c.mp3"]
    assert leftovers(tmp_path) == ["t.mp3"]


async def test_server_ignoring_range_is_handled(tmp_path: Path) -> None:
    calls: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers.get("range"))
        headers = {"content-type": "application/octet-stream", "etag": '"v1"'}
        if len(calls) == 1:
            return httpx.Response(200, stream=Dropping(AUDIO, 1000),
                                  headers={**headers, "content-length": str(len(AUDIO))})
        return httpx.Response(200, content=AUDIO, headers=headers)  # ignores Range

    async with mock_session(handler) as s:
        got = await s.suno.download(Track(id="t", audio_url="https://x.example/a"),
                                    tmp_path / "a.mp3")
    assert calls == [None, "bytes=1000-"]
    assert (tmp_path / "a.mp3").read_bytes() == AUDIO and got.resumes == 1


async def test_partial_content_resume_and_416_at_the_end(tmp_path: Path) -> None:
    calls: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers.get("range"))
        size = len(AUDIO)
        if len(calls) == 1:
            return httpx.Response(200, stream=Dropping(AUDIO, size),
                                  headers={"content-type": "audio/wav",
                                           "content-length": str(size)})
        return httpx.Response(416, headers={"content-range": f"bytes */{size}"})

    async with mock_session(handler) as s:
        got = await s.suno.download(Track(id="t", audio_url="https://x.example/a"),
                                    tmp_path / "a.wav")
    assert got.bytes_written == len(AUDIO) and calls == [None, f"bytes={len(AUDIO)}-"]


@pytest.mark.parametrize(("response", "message"), [
    pytest.param(httpx.Response(200, content=b"<html>", headers={"content-type": "text/html"}),
                  "not audio", id="html"),
    pytest.param(httpx.Response(200, content=AUDIO, headers={"content-type": "audio/mpeg"}),
                  "limit", id="too-big"),
    pytest.param(httpx.Response(404), "HTTP 404", id="404"),
    pytest.param(httpx.Response(206, content=AUDIO, headers={"content-type": "audio/mpeg"}),
                 "Content-Range", id="206-without-range"),
])
async def test_refused_answers_leave_nothing(tmp_path: Path, response: httpx.Response,
                                             message: str) -> None:
    async with mock_session(lambda request: response) as s:
        with pytest.raises(DownloadError, match=message):
            await s.suno.download(Track(id="t", audio_url="https://x.example/a"),
                                  tmp_path / "a.mp3", max_bytes=1000)
    assert leftovers(tmp_path) == []


async def test_announced_size_above_the_limit(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=AUDIO, headers={"content-type": "audio/mpeg",
                                                           "content-length": str(len(AUDIO))})

    async with mock_session(handler) as s:
        with pytest.raises(DownloadError, match="above"):
            await s.suno.download(Track(id="t", audio_url="https://x.example/a"),
                                  tmp_path / "a.mp3", max_bytes=100)
        with pytest.raises(ValueError, match="max_bytes"):
            await s.suno.download(Track(id="t", audio_url="https://x.example/a"),
                                  tmp_path / "a.mp3", max_bytes=0)
        with pytest.raises(DownloadError, match="no audio URL"):
            await s.suno.download(Track(id="t"), tmp_path / "a.mp3")


async def test_server_errors_are_retried(tmp_path: Path) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) < 3:
            return httpx.Response(503)
        return httpx.Response(200, content=AUDIO, headers={"content-type": "audio/mpeg"})

    async with mock_session(handler) as s:
        got = await s.suno.download(Track(id="t", audio_url="https://x.example/a"),
                                    tmp_path / "a.mp3")
    assert got.bytes_written == len(AUDIO) and len(calls) == 3


@pytest.mark.parametrize(("url", "ok"), [
    pytest.param("https://cdn.example/a.mp3", True, id="https"),
    pytest.param("http://127.0.0.1:8000/a.mp3", True, id="allowed-http"),
    pytest.param("http://cdn.example/a.mp3", False, id="http"),
    pytest.param("ftp://cdn.example/a.mp3", False, id="ftp"),
    pytest.param("file:///etc/passwd", False, id="file"),
    pytest.param("/relative.mp3", False, id="relative"),
    pytest.param("https://", False, id="no-host"),
])
def test_check_download_url(url: str, ok: bool) -> None:
    if ok:
        assert check_download_url(url, frozenset({"127.0.0.1"}))
    else:
        with pytest.raises(DownloadError):
            check_download_url(url, frozenset({"127.0.0.1"}))


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("Iron Man", "Iron Man", id="plain"),
    pytest.param("../../etc/passwd", "_.._etc_passwd", id="traversal"),
    pytest.param("a\\b/c", "a_b_c", id="separators"),
    pytest.param("bad\x00name\x1f\u202e", "bad_name__", id="control"),
    pytest.param("CON", "_CON", id="device"),
    pytest.param("com1.mp3", "_com1.mp3", id="device-ext"),
    pytest.param("  ..  ", "track", id="only-dots"),
    pytest.param(None, "track", id="none"),
    pytest.param("é" * 100, "é" * 60, id="long-utf8"),
    pytest.param('a<b>c:"d|e?f*', "a_b_c__d_e_f_", id="windows"),
])
def test_safe_filename(text: str | None, expected: str) -> None:
    assert safe_filename(text) == expected


def test_audio_suffix() -> None:
    assert audio_suffix("https://x/a.WAV?sig=1") == ".wav"
    assert audio_suffix("https://x/stream/abc") == ".mp3"
    assert audio_suffix(None, "audio/wav") == ".wav"
    assert audio_suffix("::not a url::") == ".mp3"


def resuming(second: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
    """A server that drops the first answer after 1000 bytes, then answers ``second``."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(200, stream=Dropping(AUDIO, 1000),
                                  headers={"content-type": "audio/mpeg", "etag": '"v1"',
                                           "content-length": str(len(AUDIO))})
        return second

    return handler


@pytest.mark.parametrize(("second", "message"), [
    pytest.param(httpx.Response(200, content=AUDIO, headers={"etag": '"v2"'}), "changed",
                 id="etag-changed"),
    pytest.param(httpx.Response(206, content=AUDIO[2000:], headers={
        "content-range": f"bytes 2000-{len(AUDIO) - 1}/{len(AUDIO)}"}), "resumed at byte",
        id="gap"),
])
async def test_inconsistent_resumes_are_refused(tmp_path: Path, second: httpx.Response,
                                                message: str) -> None:
    async with mock_session(resuming(second)) as s:
        with pytest.raises(DownloadError, match=message):
            await s.suno.download(Track(id="t", audio_url="https://x.example/a"),
                                  tmp_path / "a.mp3")
    assert leftovers(tmp_path) == []


async def test_partial_answer_with_unknown_total(tmp_path: Path) -> None:
    second = httpx.Response(206, content=AUDIO[1000:], headers={
        "content-type": "audio/mpeg", "content-range": f"bytes 1000-{len(AUDIO) - 1}/*"})
    async with mock_session(resuming(second)) as s:
        got = await s.suno.download(Track(id="t", audio_url="https://x.example/a"),
                                    tmp_path / "a.mp3")
    assert (tmp_path / "a.mp3").read_bytes() == AUDIO and got.resumes == 1


async def test_streamed_size_limit_without_length_and_type(tmp_path: Path) -> None:
    class Endless(httpx.AsyncByteStream):
        """Not a generator: the download stops reading it early."""

        def __init__(self) -> None:
            self.left = 100

        def __aiter__(self) -> Endless:
            return self

        async def __anext__(self) -> bytes:
            if not self.left:
                raise StopAsyncIteration
            self.left -= 1
            return AUDIO[:10] + b"\0" * 4086

    async with mock_session(lambda request: httpx.Response(200, stream=Endless())) as s:
        with pytest.raises(DownloadError, match="passed the"):
            await s.suno.download(Track(id="t", audio_url="https://x.example/a"),
                                  tmp_path / "a.mp3", max_bytes=10_000)
    assert leftovers(tmp_path) == []


async def test_download_deadline(tmp_path: Path) -> None:
    async with mock_session(lambda request: httpx.Response(200, content=AUDIO)) as s:
        with pytest.raises(DeadlineExceededError):
            await s.suno.download(Track(id="t", audio_url="https://x.example/a"),
                                  tmp_path / "a.mp3", timeout=1e-9)
    assert leftovers(tmp_path) == []


async def test_download_all_reports_the_first_failure_and_keeps_the_rest(tmp_path: Path
                                                                        ) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/good.mp3":
            return httpx.Response(200, content=AUDIO, headers={"content-type": "audio/mpeg"})
        return httpx.Response(404)

    same = "Same Title"
    tracks = (Track(id="a", title=same, audio_url="https://x.example/good.mp3"),
              Track(id="a", title=same, audio_url="https://x.example/bad.mp3"))
    async with mock_session(handler) as s:
        with pytest.raises(DownloadError, match="404"):
            await s.suno.download_all(TaskResult(task_id="t", tracks=tracks), tmp_path)
    assert leftovers(tmp_path) == ["Same Title - a.mp3"]


class Chunked(httpx.AsyncByteStream):
    """A body in 64 KiB pieces; it breaks after ``cut`` bytes when ``cut`` is set.

    An iterator rather than an async generator: a body abandoned half read leaves nothing
    to finalize.
    """

    def __init__(self, data: bytes, cut: int | None = None) -> None:
        self.data, self.cut = data, cut
        self.sent = 0

    def __aiter__(self) -> Chunked:
        return self

    async def __anext__(self) -> bytes:
        end = len(self.data) if self.cut is None else self.cut
        if self.sent >= end:
            if self.cut is not None:
                raise httpx.ReadError("connection reset")
            raise StopAsyncIteration
        piece = self.data[self.sent:min(self.sent + 64 * 1024, end)]
        self.sent += len(piece)
        return piece


async def test_long_download_resumed_in_the_middle_of_a_batch(tmp_path: Path) -> None:
    big = AUDIO[:10] + os.urandom((3 << 20) - 10)  # several batches, resumed inside one
    cut = (3 << 20) // 2 + 12_345
    calls: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers.get("range"))
        if len(calls) == 1:
            return httpx.Response(200, stream=Chunked(big, cut), headers={
                "content-type": "audio/mpeg", "content-length": str(len(big))})
        return httpx.Response(206, stream=Chunked(big[cut:]), headers={
            "content-type": "audio/mpeg", "content-range": f"bytes {cut}-{len(big) - 1}/"
                                                           f"{len(big)}"})

    async with mock_session(handler) as s:
        got = await s.suno.download(Track(id="t", audio_url="https://x.example/a"),
                                    tmp_path / "a.mp3")
    assert calls == [None, f"bytes={cut}-"]
    assert (tmp_path / "a.mp3").read_bytes() == big
    assert got.bytes_written == len(big) and got.resumes == 1
    assert got.sha256 == hashlib.sha256(big).hexdigest()


async def test_full_disk_during_a_download_leaves_nothing(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def fills_up(fd: int, pieces: list[bytes], digest: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_files, "_write_all", fills_up)
    requests = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal requests
        requests += 1
        return httpx.Response(200, stream=Chunked(AUDIO[:10] + bytes(3 << 20)),
                              headers={"content-type": "audio/mpeg"})

    async with mock_session(handler) as s:
        with pytest.raises(OSError, match="No space") as caught:
            await s.suno.download(Track(id="t", audio_url="https://x.example/a"),
                                  tmp_path / "a.mp3")
    assert type(caught.value) is OSError
    assert requests == 1  # a local failure is not retried over the network
    assert leftovers(tmp_path) == []
