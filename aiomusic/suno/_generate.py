"""``session.suno``'s generation family: generate, extend, covers, add-vocals, mashup,
replace-section and sounds (Add Instrumental is in ``client.py``).

Each method checks every argument first (nothing is uploaded or paid for a bad one), uploads
local sources (checked by content), submits once (paid), and returns a `SunoTask`: the same
handle as Add Instrumental's, with ``wait()``, ``watch()``, ``tracks`` and downloads.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from .._core._operation import Operation
from . import _catalog as cat
from . import _ops_edit as edit
from . import _ops_family as family
from ._submit import Submitter
from ._tasks import SunoTask

if TYPE_CHECKING:
    from .._core._models import UploadedFile
    from .._core._retry import RetryPolicy
    from .._io._sources import AudioSource

__all__ = ["GenerationMethods"]


class GenerationMethods(Submitter):
    """The generation family's methods of `SunoClient`.

    Shared keyword arguments:
        callback_url: Where Suno POSTs the stages (else the attached receiver's URL, else
            ``MusicSession(suno_callback_url=...)``).
        upload_path: The folder on the upload host, for local sources.
        timeout: Total seconds for the uploads and the submission.
        retry: Overrides the session's retry policy. A submission is paid: after an
            ambiguous failure it is never re-sent on its own.

    Raises (every method):
        InputError: an argument is invalid, or a local source is not audio (nothing was
            uploaded or sent; ``problems`` lists every problem).
        ConfigurationError: no callback URL anywhere.
        InsufficientCreditsError: the account is out of credits (code 429; not retried).
        SubmissionUnknownError: the submission may have been taken without an answer.
        APIError: the service refused it.
    """

    async def _music(self, op: Operation, params: Any, *, sources: dict[str, Any] | None,
                     upload_path: str, timeout: float | None, retry: RetryPolicy | None
                     ) -> SunoTask:
        task_id, uploaded, _sent = await self._submit(op, params, kind="music",
                                                      sources=sources, upload_path=upload_path,
                                                      timeout=timeout, retry=retry)
        first: UploadedFile | None = uploaded[0] if uploaded else None
        return SunoTask(cast("Any", self), task_id, upload=first, submitted=True)

    async def generate(
        self, prompt: str | None = None, *, custom_mode: bool = False,
        instrumental: bool = False, style: str | None = None, title: str | None = None,
        model: str = cat.DEFAULT_MODEL, negative_tags: str | None = None,
        vocal_gender: str | None = None, style_weight: float | None = None,
        weirdness_constraint: float | None = None, audio_weight: float | None = None,
        persona_id: str | None = None, persona_model: str | None = None,
        callback_url: str | None = None, timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> SunoTask:
        """Generate two songs (paid): from a description (up to 500 characters), or in
        custom mode from your lyrics (``prompt``), ``style`` and ``title``, within the
        model's limits (V4: 3000/200/80 characters; V4_5ALL: 5000/1000/80; others
        5000/1000/100). ``instrumental`` makes music without vocals (then custom mode needs
        no lyrics). ``persona_id`` (custom mode) sings or styles it like a persona.
        """
        params = family.GenerateParams(
            prompt=prompt, custom_mode=custom_mode, instrumental=instrumental, style=style,
            title=title, model=model, negative_tags=negative_tags, vocal_gender=vocal_gender,
            style_weight=style_weight, weirdness_constraint=weirdness_constraint,
            audio_weight=audio_weight, persona_id=persona_id, persona_model=persona_model,
            callback_url=callback_url)
        return await self._music(family.GENERATE, params, sources=None, upload_path="",
                                 timeout=timeout, retry=retry)

    async def extend(
        self, audio_id: str, *, default_param_flag: bool = False, prompt: str | None = None,
        style: str | None = None, title: str | None = None, continue_at: float | None = None,
        model: str = cat.DEFAULT_MODEL, negative_tags: str | None = None,
        vocal_gender: str | None = None, style_weight: float | None = None,
        weirdness_constraint: float | None = None, audio_weight: float | None = None,
        persona_id: str | None = None, persona_model: str | None = None,
        callback_url: str | None = None, timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> SunoTask:
        """Continue one of your generated tracks (paid; two tracks). With
        ``default_param_flag``, this call's ``prompt``, ``style``, ``title`` and
        ``continue_at`` (seconds, before the track's end) are used; without, the source's.
        ``model`` must be the source track's model."""
        params = edit.ExtendParams(
            audio_id=audio_id, default_param_flag=default_param_flag, prompt=prompt,
            style=style, title=title, continue_at=continue_at, model=model,
            negative_tags=negative_tags, vocal_gender=vocal_gender, style_weight=style_weight,
            weirdness_constraint=weirdness_constraint, audio_weight=audio_weight,
            persona_id=persona_id, persona_model=persona_model, callback_url=callback_url)
        return await self._music(edit.EXTEND, params, sources=None, upload_path="",
                                 timeout=timeout, retry=retry)

    async def upload_cover(
        self, source: str | AudioSource, *, prompt: str | None = None,
        custom_mode: bool = False, instrumental: bool = False, style: str | None = None,
        title: str | None = None, model: str = cat.DEFAULT_MODEL,
        negative_tags: str | None = None, vocal_gender: str | None = None,
        style_weight: float | None = None, weirdness_constraint: float | None = None,
        audio_weight: float | None = None, persona_id: str | None = None,
        persona_model: str | None = None, callback_url: str | None = None,
        upload_path: str = "aiomusic", timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> SunoTask:
        """Cover your audio in a new style (paid; two tracks). ``source`` is an http(s) URL
        or a local file (checked: audio, at most 8 minutes, 1 with V4_5ALL; then uploaded).
        The other arguments are as for `generate()`."""
        params = family.UploadCoverParams(
            source=Path("."), prompt=prompt, custom_mode=custom_mode,
            instrumental=instrumental, style=style, title=title, model=model,
            negative_tags=negative_tags, vocal_gender=vocal_gender, style_weight=style_weight,
            weirdness_constraint=weirdness_constraint, audio_weight=audio_weight,
            persona_id=persona_id, persona_model=persona_model, callback_url=callback_url)
        return await self._music(family.UPLOAD_COVER, params, sources={"source": source},
                                 upload_path=upload_path, timeout=timeout, retry=retry)

    async def upload_extend(
        self, source: str | AudioSource, *, default_param_flag: bool = False,
        instrumental: bool = False, prompt: str | None = None, style: str | None = None,
        title: str | None = None, continue_at: float | None = None,
        model: str = cat.DEFAULT_MODEL, negative_tags: str | None = None,
        vocal_gender: str | None = None, style_weight: float | None = None,
        weirdness_constraint: float | None = None, audio_weight: float | None = None,
        persona_id: str | None = None, persona_model: str | None = None,
        callback_url: str | None = None, upload_path: str = "aiomusic",
        timeout: float | None = None, retry: RetryPolicy | None = None,
    ) -> SunoTask:
        """Continue your own audio (paid; two tracks); ``source`` as for `upload_cover()`,
        the rest as for `extend()` (``continue_at`` must fall before the audio's end)."""
        params = edit.UploadExtendParams(
            source=Path("."), default_param_flag=default_param_flag, instrumental=instrumental,
            prompt=prompt, style=style, title=title, continue_at=continue_at, model=model,
            negative_tags=negative_tags, vocal_gender=vocal_gender, style_weight=style_weight,
            weirdness_constraint=weirdness_constraint, audio_weight=audio_weight,
            persona_id=persona_id, persona_model=persona_model, callback_url=callback_url)
        return await self._music(edit.UPLOAD_EXTEND, params, sources={"source": source},
                                 upload_path=upload_path, timeout=timeout, retry=retry)

    async def add_vocals(
        self, source: str | AudioSource, *, prompt: str, title: str, style: str,
        negative_tags: str, model: str = cat.DEFAULT_ADD_MODEL,
        vocal_gender: str | None = None, style_weight: float | None = None,
        weirdness_constraint: float | None = None, audio_weight: float | None = None,
        callback_url: str | None = None, upload_path: str = "aiomusic",
        timeout: float | None = None, retry: RetryPolicy | None = None,
    ) -> SunoTask:
        """Sing over your instrumental track (paid; two tracks). ``model`` is ``V4_5PLUS``
        (default), ``V5`` or ``V5_5``."""
        params = family.AddVocalsParams(
            source=Path("."), prompt=prompt, title=title, style=style,
            negative_tags=negative_tags, model=model, vocal_gender=vocal_gender,
            style_weight=style_weight, weirdness_constraint=weirdness_constraint,
            audio_weight=audio_weight, callback_url=callback_url)
        return await self._music(family.ADD_VOCALS, params, sources={"source": source},
                                 upload_path=upload_path, timeout=timeout, retry=retry)

    async def mashup(
        self, source: str | AudioSource, second_source: str | AudioSource, *,
        prompt: str | None = None,
        custom_mode: bool = False, instrumental: bool = False, style: str | None = None,
        title: str | None = None, model: str = cat.DEFAULT_MODEL,
        negative_tags: str | None = None, vocal_gender: str | None = None,
        style_weight: float | None = None, weirdness_constraint: float | None = None,
        audio_weight: float | None = None, callback_url: str | None = None,
        upload_path: str = "aiomusic", timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> SunoTask:
        """Blend two tracks into a new song (paid; two tracks; no V5_5). Each source is a
        URL or a local file (both are checked before either is uploaded)."""
        params = family.MashupParams(
            source=Path("."), second_source=Path("."), prompt=prompt, custom_mode=custom_mode,
            instrumental=instrumental, style=style, title=title, model=model,
            negative_tags=negative_tags, vocal_gender=vocal_gender, style_weight=style_weight,
            weirdness_constraint=weirdness_constraint, audio_weight=audio_weight,
            callback_url=callback_url)
        return await self._music(family.MASHUP, params,
                                 sources={"source": source, "second_source": second_source},
                                 upload_path=upload_path, timeout=timeout, retry=retry)

    async def replace_section(
        self, *, prompt: str, tags: str, title: str, infill_start: float, infill_end: float,
        full_lyrics: str, task_id: str | None = None, audio_id: str | None = None,
        source: str | AudioSource | None = None, model: str | None = None,
        negative_tags: str | None = None, callback_url: str | None = None,
        upload_path: str = "aiomusic", timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> SunoTask:
        """Regenerate 6-60 s (``infill_start`` to ``infill_end``) of a generated track
        (``task_id`` + ``audio_id``) or of your own audio (``source`` + ``model``) with new
        lyrics (``prompt``); ``full_lyrics`` is the whole song's lyrics after the change."""
        params = edit.ReplaceSectionParams(
            task_id=task_id, audio_id=audio_id, source=None, prompt=prompt, tags=tags,
            title=title, infill_start=infill_start, infill_end=infill_end,
            full_lyrics=full_lyrics, negative_tags=negative_tags, model=model,
            callback_url=callback_url)
        return await self._music(edit.REPLACE_SECTION, params,
                                 sources={"source": source} if source is not None else None,
                                 upload_path=upload_path, timeout=timeout, retry=retry)

    async def sounds(
        self, prompt: str, *, model: str = "V5", sound_loop: bool = False,
        sound_tempo: int | None = None, sound_key: str = "Any", grab_lyrics: bool = False,
        callback_url: str | None = None, timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> SunoTask:
        """A sound effect or loop from a description (paid): ``sound_tempo`` 1-300 BPM,
        ``sound_key`` such as ``"Am"`` (``"Any"`` by default), ``sound_loop`` to loop."""
        params = family.SoundsParams(
            prompt=prompt, model=model, sound_loop=sound_loop, sound_tempo=sound_tempo,
            sound_key=sound_key, grab_lyrics=grab_lyrics, callback_url=callback_url)
        return await self._music(family.SOUNDS, params, sources=None, upload_path="",
                                 timeout=timeout, retry=retry)
