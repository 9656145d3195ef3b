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
from typing import TYPE_CHECKING, Any, overload

import httpx

from .._core._config import Service
from .._core._errors import (
    AiomusicError,
    DownloadError,
    InputError,
)
from .._core._models import AudioSetting
from .._core._operation import Context
from .._io._download import download_url
from .._io._sources import AudioSource
from . import _catalog as catalog
from . import _music_answers as answers
from . import _music_protocol as music
from ._audio_stream import AudioStream
from ._music_parts import OPS, Destination, MusicParts
from ._ops import (
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

__all__ = ["MusicMethods"]

Source = str | AudioSource
_CTX = Context(service=Service.MINIMAX)


def _setting(audio_setting: AudioSetting | None) -> dict[str, Any]:
    if audio_setting is None:
        return {}
    if not isinstance(audio_setting, AudioSetting):
        raise InputError("audio_setting must be an aiomusic.AudioSetting(format=..., "
                         "sample_rate=..., bitrate=..., channel=...)", field="audio_setting")
    return {"format": audio_setting.format.value, "sample_rate": audio_setting.sample_rate,
            "bitrate": audio_setting.bitrate, "channel": audio_setting.channel}


class MusicMethods(MusicParts):
    """MiniMax's current models: music-2.6 and the other prompt-and-lyrics models, covers,
    lyrics and the key's quota."""

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
                                     retry=retry, service=Service.MINIMAX,
                                     operation="minimax.download")
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
        op = OPS.get(type(params))
        if op is None:
            raise TypeError(f"not the parameters of a current MiniMax operation: "
                            f"{type(params).__name__}")
        op.check(params)
        if isinstance(params, SongParams | CoverParams):
            return await self._music(params, destination, name=name, overwrite=overwrite,
                                     max_bytes=max_bytes, timeout=timeout, retry=retry)
        if isinstance(params, CoverPreprocessParams):
            async with self._prepared(params, name=name, key=None) as call:
                # read within the attempt: a paid answer that cannot be read has an unknown fate
                return await self._session._submit(call, answers.read_features,
                                                   timeout=timeout, retry=retry)
        assert op.read is not None
        return await self._session._submit(op.call(params, _CTX), op.read, timeout=timeout,
                                           retry=retry)
