"""Batch jobs: one operation, its parameters and its output, under an id.

Any declared operation can be a job (`OperationJob`). The two operations aiomusic started
with keep their own typed job classes, `MiniMaxJob` (music-01) and `SunoJob` (Add
Instrumental): their fields, file names and journal fingerprints are those of earlier versions,
so a journal written by one still resumes. Both expose ``op`` and ``params`` like any job, and
the runner treats every job alike.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import attrs

from .._core._models import AudioSetting, Purpose
from .._core._operation import Operation, Output, find
from ..suno import _protocol as suno_proto

__all__ = ["TRACK_NAME", "Chain", "ChainResult", "Job", "MiniMaxJob", "OperationJob",
           "OutputFile", "SunoJob", "make_job", "output_extension"]

TRACK_NAME = re.compile(r"(.+)-\d+\.[a-z0-9]+")  # the name of a job's track: <out>-<n>.<ext>


@attrs.frozen
class OutputFile:
    """A file a job wrote (or had written in an earlier run, verified)."""

    path: Path
    sha256: str
    size: int


def _optional_path(value: str | os.PathLike[str] | None) -> Path | None:
    return None if value is None else Path(value)


def _source(value: str | os.PathLike[str]) -> str | Path:
    if isinstance(value, str) and "://" in value:
        return value
    return Path(value)


@attrs.frozen(kw_only=True)
class MiniMaxJob:
    """A music-01 generation: references are uploaded (once per file), then the song is made.

    Attributes:
        id: A unique name in the batch: letters, digits, ``.``, ``_``, ``-`` (up to 64).
        lyrics: The lyrics (up to 600 characters).
        reference: A track uploaded with ``purpose`` (``song`` gives both ids).
        purpose: How ``reference`` is uploaded: ``song``, ``voice`` or ``instrumental``.
        voice_reference: An a cappella track uploaded with purpose ``voice``.
        instrumental_reference: A backing track uploaded with purpose ``instrumental``.
        refer_voice: A voice id from an earlier upload, instead of a file.
        refer_instrumental: An instrumental id from an earlier upload, instead of a file.
        audio_setting: The output's format, sample rate and bitrate.
        out: The output file, relative to the batch's folder (default ``<id>.<format>``).
    """

    id: str
    lyrics: str | None
    reference: Path | None = attrs.field(default=None, converter=_optional_path)
    purpose: Purpose = attrs.field(default=Purpose.SONG, converter=Purpose)
    voice_reference: Path | None = attrs.field(default=None, converter=_optional_path)
    instrumental_reference: Path | None = attrs.field(default=None, converter=_optional_path)
    refer_voice: str | None = None
    refer_instrumental: str | None = None
    audio_setting: AudioSetting = attrs.field(factory=AudioSetting)
    out: str = attrs.field(default="")
    line: int = attrs.field(default=0, eq=False)

    kind: Literal["minimax"] = attrs.field(default="minimax", init=False)

    def __attrs_post_init__(self) -> None:
        if not self.out:
            object.__setattr__(self, "out", f"{self.id}.{self.audio_setting.format.value}")

    @property
    def outputs(self) -> tuple[str, ...]:
        return (self.out,)

    def fingerprint(self) -> str:
        return _fingerprint(self)

    @property
    def op(self) -> Operation:
        return _op("minimax", "music-01")

    @property
    def params(self) -> Any:
        """The job as the music-01 operation's parameters."""
        setting = self.audio_setting
        return self.op.params(lyrics=self.lyrics, refer_voice=self.refer_voice,
                              refer_instrumental=self.refer_instrumental,
                              reference=self.reference, purpose=self.purpose.value,
                              voice_reference=self.voice_reference,
                              instrumental_reference=self.instrumental_reference,
                              format=setting.format.value, sample_rate=setting.sample_rate,
                              bitrate=setting.bitrate)


@attrs.frozen(kw_only=True)
class SunoJob:
    """A Suno Add Instrumental task: the source is uploaded (if local), the task submitted and
    followed, and its tracks downloaded as ``<out>-1.<ext>``, ``<out>-2.<ext>``, ...

    Attributes:
        id: A unique name in the batch.
        source: A vocal track: an http(s) URL the service can fetch, or a local file.
        title: The track's title.
        tags: Styles, moods and instruments wanted.
        negative_tags: Styles to avoid.
        out: The output name stem, relative to the batch's folder (default: the id).
    """

    id: str
    source: str | Path = attrs.field(converter=_source)
    title: str
    tags: str
    negative_tags: str
    vocal_gender: str | None = None
    style_weight: float | None = None
    weirdness_constraint: float | None = None
    audio_weight: float | None = None
    model: str = suno_proto.DEFAULT_MODEL
    callback_url: str | None = None
    out: str = ""
    line: int = attrs.field(default=0, eq=False)

    kind: Literal["suno"] = attrs.field(default="suno", init=False)

    def __attrs_post_init__(self) -> None:
        if not self.out:
            object.__setattr__(self, "out", self.id)

    @property
    def outputs(self) -> tuple[str, ...]:
        return (self.out,)

    def fingerprint(self) -> str:
        return _fingerprint(self)

    @property
    def op(self) -> Operation:
        return _op("suno", "add-instrumental")

    @property
    def params(self) -> Any:
        """The job as the Add Instrumental operation's parameters."""
        return self.op.params(source=self.source, title=self.title, tags=self.tags,
                              negative_tags=self.negative_tags, vocal_gender=self.vocal_gender,
                              style_weight=self.style_weight,
                              weirdness_constraint=self.weirdness_constraint,
                              audio_weight=self.audio_weight, model=self.model,
                              callback_url=self.callback_url)


@attrs.frozen
class Chain:
    """A job that follows another job's result (``after`` in the job file; see ``_chain.py``).

    Attributes:
        after: The parent job's id.
        track: Which of the parent's tracks fills ``audio_id`` (1-based; ``None``: not given,
            the first).
        fills: The parameters the parent's result fills (``task_id``, ``audio_id``).
        hand: The fillable parameters the line gives by hand.
    """

    after: str
    track: int | None = None
    fills: tuple[str, ...] = ()
    hand: tuple[str, ...] = ()

    @property
    def index(self) -> int:
        """The parent's track that fills ``audio_id``, 0-based."""
        return (self.track or 1) - 1

    def placeholder(self, name: str) -> str:
        """What stands in for a filled parameter until the parent's result is known."""
        if name == "audio_id":
            return f"<track {self.track or 1} of {self.after}>"
        return f"<{name} of {self.after}>"


@attrs.frozen
class ChainResult:
    """What a parent job leaves for the jobs that follow it: its task id and its tracks' ids
    (in the order of its files ``<out>-1``, ``<out>-2``...)."""

    task_id: str | None
    tracks: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class OperationJob:
    """Any declared operation as a batch job.

    Attributes:
        id: A unique name in the batch: letters, digits, ``.``, ``_``, ``-`` (up to 64).
        op: The operation.
        params: Its parameters (checked).
        out: The output, relative to the batch's folder: a file, a name stem for tracks
            (``<out>-1.<ext>``...), or a folder of stems, as the operation's output says.
        chain: The job whose result it follows (its parameters hold placeholders for the
            filled values until that result is known), if any.
    """

    id: str
    op: Operation = attrs.field(eq=False)
    params: Any
    out: str
    line: int = attrs.field(default=0, eq=False)
    chain: Chain | None = None

    @property
    def kind(self) -> str:
        return self.op.qualified

    @property
    def outputs(self) -> tuple[str, ...]:
        return (self.out,)

    def fingerprint(self) -> str:
        chain = self.chain
        if chain is None:
            return self.op.fingerprint(self.params, self.out)
        # the job as written: a filled value (the parent's ids) is not part of what it asks
        written = attrs.evolve(self.params, **{f: chain.placeholder(f) for f in chain.fills})
        return self.op.fingerprint(written, self.out,
                                   {"after": chain.after, "track": chain.track})


Job = MiniMaxJob | SunoJob | OperationJob


def make_job(op: Operation, job_id: str, params: Any, out: str, *, line: int = 0) -> Job:
    """The job for ``op``: the typed job of music-01 and Add Instrumental (which know their
    references and uploads, and keep their fingerprints), an `OperationJob` otherwise."""
    if op.qualified == "minimax.music-01":
        return MiniMaxJob(id=job_id, lyrics=params.lyrics, reference=params.reference,
                          purpose=Purpose(params.purpose),
                          voice_reference=params.voice_reference,
                          instrumental_reference=params.instrumental_reference,
                          refer_voice=params.refer_voice,
                          refer_instrumental=params.refer_instrumental,
                          audio_setting=params.audio_setting, out=out, line=line)
    if op.qualified == "suno.add-instrumental":
        return SunoJob(id=job_id, source=params.source, title=params.title, tags=params.tags,
                       negative_tags=params.negative_tags, vocal_gender=params.vocal_gender,
                       style_weight=params.style_weight,
                       weirdness_constraint=params.weirdness_constraint,
                       audio_weight=params.audio_weight, model=params.model,
                       callback_url=params.callback_url, out=out, line=line)
    return OperationJob(id=job_id, op=op, params=params, out=out, line=line)


def output_extension(op: Operation, params: Any) -> str:
    """The default file extension of an operation's output: its format parameter when it
    has one, else what the output is (``json`` for documents, ``mp3`` for audio)."""
    if op.output is Output.DOCUMENT:
        return "json"
    fmt = getattr(params, "format", None) or getattr(params, "output_format", None)
    return fmt if isinstance(fmt, str) and fmt.isalnum() else "mp3"


def _op(service: str, name: str) -> Operation:
    found = find(service, name)
    assert found is not None  # declared in the service's _ops module
    return found


def _fingerprint(job: Job) -> str:
    """A hash of what the job asks for: a journal refuses a changed job under the same id."""
    data = attrs.asdict(job, filter=lambda a, _v: a.name != "line",
                        value_serializer=lambda _i, _a, v: str(v) if isinstance(v, Path) else v)
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
