"""The current MiniMax models on ``session.minimax``: songs, covers, lyrics and quota.

`MusicMethods` is mixed into [`MiniMaxClient`][aiomusic.minimax.client.MiniMaxClient]. Every
method builds the declared parameters (``_ops``), checks them all before anything is sent, and
runs them with `run()`, which is also how job files and the command line execute them. These
calls always go to MiniMax's own hosts (``minimax_key``; the CN host with
``MusicSession(minimax_region="cn")``), whatever ``minimax_via`` says for music-01.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, overload

import anyio
import httpx

from .._core._call import Call
from .._core._config import Service
from .._core._errors import (
    AiomusicError,
    AudioValidationError,
    DownloadError,
    InputError,
)
from .._core._events import Progress
from .._core._models import AudioSetting, ExtraInfo
from .._core._operation import Context
from .._io._download import download_url
from .._io._files import Writer
from .._io._sources import AudioSource, local_source
from . import _catalog as catalog
from . import _music_answers as answers
from . import _music_io as music_io
from . import _music_protocol as music
from ._ops import (
    COVER,
    COVER_PREPROCESS,
    LYRICS,
    QUOTA,
    SONG,
    CoverParams,
    CoverPreprocessParams,
    LyricsParams,
    QuotaParams,
    SongParams,
)
from ._results import (
    CoverFeatures,
    LinkDownloadError,
    Lyrics,
    MusicLink,
    Quota,
    SongResult,
    WrittenSong,
)

if TYPE_CHECKING:
    from .._core._retry import RetryPolicy
    from .._core._session import MusicSession
    from .client import AudioStream

__all__ = ["MusicMethods"]

Destination = str | os.PathLike[str] | IO[bytes]
Source = str | AudioSource
_CTX = Context(service=Service.MINIMAX)
_OPS = {SongParams: SONG, CoverParams: COVER, CoverPreprocessParams: COVER_PREPROCESS,
        LyricsParams: LYRICS, QuotaParams: QUOTA}


def _setting(audio_setting: AudioSetting | None) -> dict[str, Any]:
    if audio_setting is None:
        return {}
    if not isinstance(audio_setting, AudioSetting):
        raise InputError("audio_setting must be an aiomusic.AudioSetting(format=..., "
                         "sample_rate=..., bitrate=..., channel=...)", field="audio_setting")
    return {"format": audio_setting.format.value, "sample_rate": audio_setting.sample_rate,
            "bitrate": audio_setting.bitrate, "channel": audio_setting.channel}


def _remaining(deadline: float | None) -> float | None:
    # at least a moment: a deadline passed already fails inside the download, which keeps
    # the paid link in the error (LinkDownloadError)
    return None if deadline is None else max(deadline - anyio.current_time(), 1e-3)


class MusicMethods:
    """MiniMax's current models: music-2.6 and the other prompt-and-lyrics models, covers,
    lyrics and the key's quota."""

    _session: MusicSession

    if TYPE_CHECKING:
        async def _decode(self, response: httpx.Response, call: Call, write: Writer
                          ) -> tuple[ExtraInfo, str | None]: ...

    # -- songs --------------------------------------------------------------------------------

    async def generate_song(
        self, destination: Destination, *, prompt: str | None = None,
        lyrics: str | None = None, model: str = catalog.DEFAULT_MODEL,
        is_instrumental: bool = False, lyrics_optimizer: bool = False,
        cover_feature_id: str | None = None, audio_setting: AudioSetting | None = None,
        aigc_watermark: bool = False, output_format: str = "hex", stream: bool = False,
        overwrite: bool = True, max_bytes: int | None = None, timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> SongResult:
        """Generate a song from a style prompt and lyrics, written to ``destination``.

        Args:
            destination: A path (written atomically: nothing is left there on failure) or a
                binary file object (written as the audio arrives).
            prompt: Style, mood and scene, up to 2000 characters; required with
                ``is_instrumental``.
            lyrics: Up to 3500 characters, with the structure tags ``[Intro]``, ``[Verse]``,
                ``[Pre Chorus]``, ``[Chorus]``, ``[Interlude]``, ``[Bridge]``, ``[Outro]``,
                ``[Post Chorus]``, ``[Transition]``, ``[Break]``, ``[Hook]``,
                ``[Build Up]``, ``[Inst]``, ``[Solo]``. Required unless ``is_instrumental``
                or ``lyrics_optimizer``.
            model: ``music-2.6`` (default), ``music-2.6-free``, ``music-2.5+``,
                ``music-2.5``, ``music-2.0``; a name aiomusic does not know is sent as it is
                (with a logged warning).
            is_instrumental: No vocals (music-2.6, music-2.5+).
            lyrics_optimizer: The service writes the lyrics from the prompt.
            cover_feature_id: The second step of a two-step cover (`preprocess_cover()`).
            audio_setting: Format, sample rate, bitrate and channels of the output.
            aigc_watermark: Embed MiniMax's AI-generated-content watermark.
            output_format: ``hex`` (the audio arrives in the answer) or ``url`` (a link,
                downloaded at once into a path destination; see `song_link()`).
            stream: Receive the audio as server-sent events while it is generated; the
                result then says ``time_to_first_audio``.
            overwrite: Whether an existing file at a path destination may be replaced.
            max_bytes: The largest download accepted (``output_format="url"``).
            timeout: Total seconds, retries and the download included.
            retry: Overrides the session's retry policy (a paid call is never re-sent after an
                ambiguous failure unless it says ``resubmit_unknown=True``).

        Raises:
            InputError: an argument is invalid (all problems in ``problems``; nothing sent).
            SubmissionUnknownError: the request may have been taken without an answer.
            UsageLimitError: the Token Plan's quota is spent (1028, 1030).
            PermissionDeniedError: the model is not on the key's plan (2061).
            LinkDownloadError: a link was generated but could not be downloaded.
        """
        params = SongParams(
            prompt=prompt, lyrics=lyrics, model=model, is_instrumental=is_instrumental,
            lyrics_optimizer=lyrics_optimizer, cover_feature_id=cover_feature_id,
            aigc_watermark=aigc_watermark, output_format=output_format, stream=stream,
            **_setting(audio_setting))
        result: SongResult = await self.run(params, destination, overwrite=overwrite,
                                            max_bytes=max_bytes, timeout=timeout, retry=retry)
        return result

    @asynccontextmanager
    async def stream_song(
        self, *, prompt: str | None = None, lyrics: str | None = None,
        model: str = catalog.DEFAULT_MODEL, is_instrumental: bool = False,
        lyrics_optimizer: bool = False, cover_feature_id: str | None = None,
        audio_setting: AudioSetting | None = None, aigc_watermark: bool = False,
        stream: bool = True, timeout: float | None = None, retry: RetryPolicy | None = None,
    ) -> AsyncIterator[AudioStream]:
        """Iterate over a song's audio while the service generates it (server-sent events).

        The arguments are those of `generate_song()`; ``stream=False`` waits for the whole
        answer and hands its decoded hex on in 64 KiB pieces instead. ``audio.result`` (a
        `SongResult`, with ``time_to_first_audio``) is set once the loop has ended. Once
        audio was handed out the call is never retried; a failure then raises from the loop.
        """
        params = SongParams(
            prompt=prompt, lyrics=lyrics, model=model, is_instrumental=is_instrumental,
            lyrics_optimizer=lyrics_optimizer, cover_feature_id=cover_feature_id,
            aigc_watermark=aigc_watermark, stream=stream, **_setting(audio_setting))
        async with self._audio_stream(params, timeout=timeout, retry=retry) as audio:
            yield audio

    async def song_link(
        self, *, prompt: str | None = None, lyrics: str | None = None,
        model: str = catalog.DEFAULT_MODEL, is_instrumental: bool = False,
        lyrics_optimizer: bool = False, cover_feature_id: str | None = None,
        audio_setting: AudioSetting | None = None, aigc_watermark: bool = False,
        timeout: float | None = None, retry: RetryPolicy | None = None,
    ) -> MusicLink:
        """Generate a song and leave it at the service: its link, valid 24 hours.

        The arguments are those of `generate_song()`. The link is a signed URL (keep it
        private); ``expires_at`` says until when it works. Fetch it with `download_link()`.
        """
        params = SongParams(
            prompt=prompt, lyrics=lyrics, model=model, is_instrumental=is_instrumental,
            lyrics_optimizer=lyrics_optimizer, cover_feature_id=cover_feature_id,
            aigc_watermark=aigc_watermark, output_format="url", **_setting(audio_setting))
        link: MusicLink = await self.run(params, timeout=timeout, retry=retry)
        return link

    async def download_link(self, link: MusicLink, destination: str | os.PathLike[str], *,
                            overwrite: bool = True, max_bytes: int | None = None,
                            timeout: float | None = None, retry: RetryPolicy | None = None
                            ) -> SongResult:
        """Download a song's link atomically (resuming a dropped transfer); free.

        Raises:
            InputError: the link has expired (generate the song again).
            LinkDownloadError: the download failed (``error.link`` is the link).
        """
        if link.expired(margin=dt.timedelta(0)):
            raise InputError(f"the link expired at {link.expires_at:%Y-%m-%d %H:%M} UTC; "
                             "MiniMax keeps songs 24 hours: generate it again", field="link")
        path = Path(destination)
        try:
            got = await download_url(self._session, link.url, path, key=os.fspath(path),
                                     overwrite=overwrite, max_bytes=max_bytes, timeout=timeout,
                                     retry=retry)
        except AiomusicError as exc:  # a refused URL, the network, the deadline: all the same
            url = exc.url if isinstance(exc, DownloadError) else \
                str(httpx.URL(link.url).copy_with(query=None))
            raise LinkDownloadError(
                f"the song was generated (and paid for) but its download failed: {exc}; its "
                f"link works until {link.expires_at:%Y-%m-%d %H:%M} UTC: retry with "
                "session.minimax.download_link(error.link, path)", link=link, url=url,
                retryable=exc.retryable) from exc
        return SongResult(status=2, extra_info=link.extra_info, trace_id=link.trace_id,
                          path=path, bytes_written=got.bytes_written, sha256=got.sha256,
                          model=link.model, link=link)

    # -- covers -------------------------------------------------------------------------------

    async def cover(
        self, destination: Destination, source: Source | None = None, *, prompt: str,
        lyrics: str | None = None, cover_feature_id: str | None = None,
        model: str = catalog.DEFAULT_COVER_MODEL, seed: int | None = None,
        audio_setting: AudioSetting | None = None, aigc_watermark: bool = False,
        output_format: str = "hex", stream: bool = False, name: str | None = None,
        overwrite: bool = True, max_bytes: int | None = None, timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> SongResult:
        """A cover of ``source`` in the style of ``prompt``, written to ``destination``.

        Args:
            destination: As for `generate_song()`.
            source: The track to cover: an http(s) URL (sent as ``audio_url``), or a path,
                bytes, a seekable file object or an async iterable of bytes (sent as
                ``audio_base64``, streamed from disk, never built in memory). It must be mp3,
                wav or flac, last 6 s to 6 min and be at most 50 MB; a local file is checked
                before anything is sent. Leave it out with ``cover_feature_id``.
            prompt: The cover's style, up to 2000 characters.
            lyrics: The cover's lyrics (default: the service transcribes the reference's).
            cover_feature_id: Instead of ``source``: an id from `preprocess_cover()`.
            model: ``music-cover`` (default) or ``music-cover-free``.
            seed: 0 to 1,000,000, for reproducible results.
            name: The local source's name in errors.

        The other arguments are those of `generate_song()`.

        Raises:
            AudioValidationError: the local reference is not usable (nothing sent).
        """
        params = CoverParams(
            source=source, prompt=prompt, lyrics=lyrics, cover_feature_id=cover_feature_id,
            model=model, seed=seed, aigc_watermark=aigc_watermark, output_format=output_format,
            stream=stream, **_setting(audio_setting))
        result: SongResult = await self.run(params, destination, name=name, overwrite=overwrite,
                                            max_bytes=max_bytes, timeout=timeout, retry=retry)
        return result

    @asynccontextmanager
    async def stream_cover(
        self, source: Source | None = None, *, prompt: str, lyrics: str | None = None,
        cover_feature_id: str | None = None, model: str = catalog.DEFAULT_COVER_MODEL,
        seed: int | None = None, audio_setting: AudioSetting | None = None,
        aigc_watermark: bool = False, stream: bool = True, name: str | None = None,
        timeout: float | None = None, retry: RetryPolicy | None = None,
    ) -> AsyncIterator[AudioStream]:
        """Iterate over a cover's audio while it is generated (see `stream_song()`)."""
        params = CoverParams(
            source=source, prompt=prompt, lyrics=lyrics, cover_feature_id=cover_feature_id,
            model=model, seed=seed, aigc_watermark=aigc_watermark, stream=stream,
            **_setting(audio_setting))
        async with self._audio_stream(params, name=name, timeout=timeout, retry=retry) as audio:
            yield audio

    async def preprocess_cover(self, source: Source, *, model: str = catalog.DEFAULT_COVER_MODEL,
                               name: str | None = None, timeout: float | None = None,
                               retry: RetryPolicy | None = None) -> CoverFeatures:
        """The first step of a two-step cover: a feature id, and the lyrics heard in the track.

        Edit ``features.lyrics`` as you like, then generate with
        ``generate_song(path, prompt=..., lyrics=..., cover_feature_id=features.feature_id)``
        (or `cover()` with ``cover_feature_id``). ``source`` is as for `cover()`. Paid.
        """
        params = CoverPreprocessParams(source=source, model=model)
        features: CoverFeatures = await self.run(params, name=name, timeout=timeout,
                                                 retry=retry)
        return features

    # -- lyrics and quota ---------------------------------------------------------------------

    async def write_lyrics(self, prompt: str | None = None, *, title: str | None = None,
                           timeout: float | None = None, retry: RetryPolicy | None = None
                           ) -> Lyrics:
        """Lyrics written from an idea (``prompt``, up to 2000 characters; random when empty),
        with a title and style tags: ready for `generate_song()`. Paid."""
        lyrics: Lyrics = await self.run(LyricsParams(prompt=prompt, title=title),
                                        timeout=timeout, retry=retry)
        return lyrics

    async def edit_lyrics(self, lyrics: str, *, prompt: str | None = None,
                          title: str | None = None, timeout: float | None = None,
                          retry: RetryPolicy | None = None) -> Lyrics:
        """``lyrics`` (up to 3500 characters) reworked as ``prompt`` asks. Paid."""
        edited: Lyrics = await self.run(
            LyricsParams(mode="edit", lyrics=lyrics, prompt=prompt, title=title),
            timeout=timeout, retry=retry)
        return edited

    async def write_song(self, destination: Destination, *, idea: str | None = None,
                         title: str | None = None, style: str | None = None,
                         **options: Any) -> WrittenSong:
        """Lyrics from an idea, then a song from them: two paid calls in a row.

        ``style`` is the song's prompt (default: the style tags the lyrics came with);
        ``options`` are `generate_song()`'s (``model``, ``audio_setting``, ``stream``...).
        The lyrics are in the result even when you keep only the song.
        """
        lyrics = await self.write_lyrics(idea, title=title, timeout=options.get("timeout"),
                                         retry=options.get("retry"))
        prompt = (style or lyrics.style)[:music.MAX_PROMPT] or None
        song = await self.generate_song(destination, prompt=prompt, lyrics=lyrics.lyrics,
                                        **options)
        return WrittenSong(lyrics=lyrics, song=song)

    async def quota(self, *, timeout: float | None = None, retry: RetryPolicy | None = None
                    ) -> Quota:
        """What the key's Token Plan still allows, per model (free)."""
        quota: Quota = await self.run(QuotaParams(), timeout=timeout, retry=retry)
        return quota

    # -- the one way in -----------------------------------------------------------------------

    @overload
    async def run(self, params: SongParams | CoverParams, destination: Destination, *,
                  name: str | None = None, overwrite: bool = True, max_bytes: int | None = None,
                  timeout: float | None = None, retry: RetryPolicy | None = None
                  ) -> SongResult: ...

    @overload
    async def run(self, params: Any, destination: None = None, *, name: str | None = None,
                  overwrite: bool = True, max_bytes: int | None = None,
                  timeout: float | None = None, retry: RetryPolicy | None = None) -> Any: ...

    async def run(self, params: Any, destination: Destination | None = None, *,
                  name: str | None = None, overwrite: bool = True, max_bytes: int | None = None,
                  timeout: float | None = None, retry: RetryPolicy | None = None) -> Any:
        """Run one declared MiniMax operation's parameters (what job files and the command
        line call): a song or cover into ``destination`` (a `SongResult`; without one, a
        ``output_format="url"`` request gives its `MusicLink`), a preprocess (its
        `CoverFeatures`), lyrics (`Lyrics`) or the quota (`Quota`).

        Raises:
            InputError: the parameters are invalid (every problem in ``problems``).
        """
        op = _OPS.get(type(params))
        if op is None:
            raise TypeError(f"not the parameters of a current MiniMax operation: "
                            f"{type(params).__name__}")
        op.check(params)
        if isinstance(params, SongParams | CoverParams):
            return await self._music(params, destination, name=name, overwrite=overwrite,
                                     max_bytes=max_bytes, timeout=timeout, retry=retry)
        if isinstance(params, CoverPreprocessParams):
            async with self._prepared(params, name=name, key=None) as call:
                body = await self._session._send(call, timeout=timeout, retry=retry)
            return answers.read_features(body)
        body = await self._session._send(op.call(params, _CTX), timeout=timeout, retry=retry)
        assert op.read is not None
        return op.read(body)

    # -- the parts ----------------------------------------------------------------------------

    @asynccontextmanager
    async def _prepared(self, params: SongParams | CoverParams | CoverPreprocessParams, *,
                        name: str | None, key: str | None) -> AsyncIterator[Call]:
        """The call, with a local reference checked and ready to stream as base64."""
        if isinstance(params, SongParams):
            yield music.music_call(music.song_payload(params), operation="minimax.song",
                                   key=key)
            return
        if isinstance(params, CoverParams):
            call = music.music_call(music.cover_payload(params), operation="minimax.cover",
                                    key=key)
        else:
            call = music.preprocess_json_call(music.preprocess_payload(params), key=key)
        source = params.source
        if source is None or (isinstance(source, str) and "://" in source):
            yield call
            return
        async with local_source(source, name=name) as local:
            info = await local.validate(min_duration=music.COVER_MIN_SECONDS,
                                        max_duration=music.COVER_MAX_SECONDS,
                                        formats=music.COVER_FORMATS)
            if info.size > music.COVER_MAX_BYTES:
                raise AudioValidationError(
                    f"{local.name}: is {info.size} bytes; MiniMax takes at most 50 MB "
                    f"({music.COVER_MAX_BYTES} bytes)", source=local.name,
                    duration=info.duration)
            yield music.with_file(call, local.open, info.size)

    def _result(self, params: SongParams | CoverParams) -> music_io.Result:
        def make(decoded: music_io.Decoded, path: Path | None, written: int, sha256: str
                 ) -> SongResult:
            return SongResult(status=2, extra_info=decoded.extra, trace_id=decoded.trace_id,
                              path=path, bytes_written=written, sha256=sha256,
                              model=params.model, streamed=params.stream,
                              time_to_first_audio=decoded.first_audio)
        return make

    def _reader(self, params: SongParams | CoverParams, call: Call
                ) -> tuple[Call, music_io.Reader]:
        if not params.stream:
            return call, music_io.hex_reader(self._decode)
        call, sent = music_io.stream_call(self._session, call)
        return call, music_io.sse_reader(self._session, self._decode, sent)

    async def _music(self, params: SongParams | CoverParams, destination: Destination | None,
                     *, name: str | None, overwrite: bool, max_bytes: int | None,
                     timeout: float | None, retry: RetryPolicy | None) -> SongResult | MusicLink:
        is_path = isinstance(destination, str | os.PathLike)
        if destination is not None and not is_path and not hasattr(destination, "write"):
            raise TypeError("destination must be a path or a binary file object, got "
                            f"{type(destination).__name__}")
        key = os.fspath(destination) if is_path else None  # type: ignore[arg-type]
        if params.output_format == "url" and not params.stream:
            if destination is not None and not is_path:
                raise InputError("output_format='url' downloads into a path; for a file "
                                 "object use hex", field="output_format")
            return await self._via_link(params, destination, name=name, key=key,
                                        overwrite=overwrite, max_bytes=max_bytes,
                                        timeout=timeout, retry=retry)
        if destination is None:
            raise TypeError("a song needs a destination (or use stream_song())")
        async with self._prepared(params, name=name, key=key) as call:
            call, read = self._reader(params, call)
            result = self._result(params)
            handler = music_io.to_path(read, Path(key), overwrite, result) if key is not None \
                else music_io.to_file(read, destination, result)  # type: ignore[arg-type]
            song: SongResult = await self._session._send(call, handler, timeout=timeout,
                                                         retry=retry)
        if song.time_to_first_audio is not None:
            self._session.emit(Progress(operation=call.operation, key=key or "",
                                        stage="streamed", done=song.bytes_written))
        return song

    async def _via_link(self, params: SongParams | CoverParams, destination: Any, *,
                        name: str | None, key: str | None, overwrite: bool,
                        max_bytes: int | None, timeout: float | None,
                        retry: RetryPolicy | None) -> SongResult | MusicLink:
        deadline = None if timeout is None else anyio.current_time() + timeout
        async with self._prepared(params, name=name, key=key) as call:
            body = await self._session._send(call, timeout=timeout, retry=retry)
        link = answers.read_link(body, model=params.model)
        if destination is None:
            return link
        self._session.emit(Progress(operation=call.operation, key=key or "", stage="linked"))
        return await self.download_link(link, destination, overwrite=overwrite,
                                        max_bytes=max_bytes, timeout=_remaining(deadline),
                                        retry=retry)

    @asynccontextmanager
    async def _audio_stream(self, params: SongParams | CoverParams, *, name: str | None = None,
                            timeout: float | None, retry: RetryPolicy | None
                            ) -> AsyncIterator[AudioStream]:
        _OPS[type(params)].check(params)
        async with self._prepared(params, name=name, key=None) as call:
            call, read = self._reader(params, call)
            async with music_io.streaming(self._session, call, read, self._result(params),
                                          batch=None if params.stream else 64 * 1024,
                                          timeout=timeout, retry=retry) as audio:
                yield audio
