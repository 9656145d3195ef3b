"""Submitting a declared Suno operation: check everything, upload local sources, then pay.

The order is the safety rule (DESIGN invariant 8): every parameter is checked (every problem
named at once), every local source is checked *by its content* (its first bytes must be
audio; a WAV or MP3 is measured, and must fit the operation's length limits), and only then
are the sources uploaded (free) and the paid request sent once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from .._core._config import Service
from .._core._errors import AudioValidationError, InputError
from .._core._events import Progress
from .._core._models import UploadedFile
from .._core._operation import Context, Operation
from .._io._audio import probe_audio
from .._io._sources import LocalSource, local_source
from . import _catalog as cat
from . import _family as fam

if TYPE_CHECKING:
    from .._core._retry import RetryPolicy
    from .._core._transport import Transport
    from .._io._sources import AudioSource

__all__ = ["Submitter", "audio_kind"]

#: Operations whose uploaded audio must be at most 8 minutes (1 with V4_5ALL).
_LENGTH_LIMITED = ("upload-cover", "upload-extend")


def audio_kind(head: bytes) -> str | None:
    """``wav``, ``mp3``, ``flac``, ``ogg`` or ``m4a`` from a file's first bytes (never its
    name); ``None`` when they are not audio."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[4:8] == b"ftyp":
        return "m4a"
    return None


def _head(local: LocalSource) -> bytes:
    with local.open() as handle:
        return handle.read(16)


_LOCAL = Path("<local file, uploaded first>")


def _split(sources: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """The parameter values of ``sources`` (a local one stands as a placeholder path until it
    is uploaded), and every local source as (field, value)."""
    values: dict[str, Any] = {}
    local: list[tuple[str, Any]] = []
    for field, value in sources.items():
        if value is None or value == "" or fam.is_url(value):
            values[field] = value
        else:
            local.append((field, value))
            values[field] = _LOCAL
    return values, local


class Submitter:
    """What every Suno operation method shares (mixed into `SunoClient`)."""

    _session: Transport
    _receiver_url: str | None

    if TYPE_CHECKING:
        def _callback_url(self, explicit: str | None) -> str: ...

        async def upload(self, source: AudioSource, *, upload_path: str = "aiomusic",
                         name: str | None = None, timeout: float | None = None,
                         retry: RetryPolicy | None = None) -> UploadedFile: ...

    def _hook(self, explicit: str | None, kind: str) -> str:
        """The callback URL to send; the attached receiver's names the task's kind."""
        url = self._callback_url(explicit)
        if kind != "music" and explicit is None and url == self._receiver_url:
            url += ("&" if "?" in url else "?") + f"kind={kind}"
        return url

    async def _submit(self, op: Operation, params: Any, *, kind: str,
                      upload_path: str = "aiomusic", sources: Mapping[str, Any] | None = None,
                      timeout: float | None = None, retry: RetryPolicy | None = None
                      ) -> tuple[str, tuple[UploadedFile, ...], Any]:
        """Check, upload, pay: the task id, the uploads, and the parameters as sent.

        ``sources`` maps a source field to what the caller gave: a URL, or a local path,
        bytes, file object or async iterable.
        """
        values, locals_ = _split(sources or {})
        if values:
            params = attrs.evolve(params, **values)
        hook = self._hook(getattr(params, "callback_url", None), kind) \
            if hasattr(params, "callback_url") else None
        if hook is not None:
            params = attrs.evolve(params, callback_url=hook)
        op.check(params)
        model = getattr(params, "model", None)
        if isinstance(model, str) and op.models:
            cat.warn_unknown_model(op.qualified, model, op.models)
        uploaded: list[UploadedFile] = []
        async with contextlib.AsyncExitStack() as stack:
            opened = [(field, await stack.enter_async_context(local_source(value)))
                      for field, value in locals_]
            for field, local in opened:  # every check before the first upload
                await self._check_local(op, params, field, local)
            urls: dict[str, str] = {}
            for field, local in opened:
                done = await self.upload(local.probe, upload_path=upload_path,
                                         name=local.name, timeout=timeout, retry=retry)
                uploaded.append(done)
                urls[field] = done.download_url
        if urls:
            params = attrs.evolve(params, **urls)
        assert op.read is not None
        # read within the attempt: a submission answered without its task id has an unknown
        # fate (it may have been taken), like any unreadable answer to a paid call
        task_id: str = await self._session._submit(op.call(params, Context(Service.SUNO, hook)),
                                                   op.read, timeout=timeout, retry=retry)
        self._session.emit(Progress(operation=op.qualified, key=task_id, stage="submitted"))
        return task_id, tuple(uploaded), params

    async def _check_local(self, op: Operation, params: Any, field: str,
                           local: LocalSource) -> None:
        head = await anyio.to_thread.run_sync(_head, local)
        kind = audio_kind(head)
        if kind is None:
            raise InputError(f"{field}: {local.name} is not audio (its first bytes are not "
                             "WAV, MP3, FLAC, OGG or M4A); nothing was uploaded or sent",
                             field=field)
        if kind not in ("wav", "mp3"):
            return
        info = await anyio.to_thread.run_sync(lambda: probe_audio(local.probe,
                                                                  name=local.name))
        limit = 60.0 if getattr(params, "model", None) == "V4_5ALL" else 480.0
        if op.name in _LENGTH_LIMITED and info.duration > limit:
            raise AudioValidationError(
                f"{local.name}: lasts {info.duration:.1f} s; {op.name} takes at most "
                f"{limit / 60:g} min{' with V4_5ALL' if limit == 60 else ''}",
                source=local.name, duration=info.duration)
        ends = [("continue_at", getattr(params, "continue_at", None)),
                ("infill_end", getattr(params, "infill_end", None))]
        for name, at in ends:
            if isinstance(at, int | float) and at >= info.duration:
                raise InputError(f"{name}: must be before the end of {local.name} "
                                 f"({info.duration:.1f} s), got {at:g}", field=name)
