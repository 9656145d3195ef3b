"""Batch jobs and the job file: JSON Lines (or TOML), checked line by line before anything runs.

A MiniMax line::

    {"id": "song-01", "service": "minimax", "lyrics": "##Hello##", "reference": "ref.wav"}

A Suno line::

    {"id": "inst-01", "service": "suno", "source": "vocals.mp3", "title": "Night",
     "tags": "piano, soft", "negative_tags": "metal"}

Every problem names its line and field; all of them are reported at once.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import attrs

from .._core._config import Service
from .._core._errors import InputError
from .._core._models import AudioFormat, AudioSetting, Purpose
from .._io._download import name_problem
from ..minimax import _protocol as minimax_proto
from ..suno import _protocol as suno_proto

__all__ = ["Job", "JobFileError", "MiniMaxJob", "SunoJob", "load_jobs", "parse_jobs"]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
TRACK_NAME = re.compile(r"(.+)-\d+\.[a-z0-9]+")  # the name of a Suno job's track
_CHECK_CALLBACK = "https://callback.invalid/check"  # stands in for the real one while checking


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


Job = MiniMaxJob | SunoJob


class JobFileError(InputError):
    """The job file has problems; nothing was sent.

    Attributes:
        problems: Every problem found, as ``(line, field, message)``; ``line`` is 1-based and
            ``field`` is ``None`` when the whole line is at fault.
    """

    def __init__(self, path: str, problems: list[tuple[int, str | None, str]]) -> None:
        shown = [f"  {path}:{line}: {f'{field}: ' if field else ''}{text}"
                 for line, field, text in problems[:20]]
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{path}: {len(problems)} {noun} in the job file; nothing was "
                         "sent. Fix them and run again:\n" + "\n".join(shown) + more,
                         field=problems[0][1] if problems else None)
        self.path = path
        self.problems = problems


_COMMON = ("id", "service", "out")
_MINIMAX_FIELDS = (*_COMMON, "lyrics", "reference", "purpose", "voice_reference",
                             "instrumental_reference", "refer_voice", "refer_instrumental",
                             "format", "sample_rate", "bitrate")
_SUNO_FIELDS = (*_COMMON, "source", "title", "tags", "negative_tags", "vocal_gender",
                          "style_weight", "weirdness_constraint", "audio_weight", "model",
                          "callback_url")


def load_jobs(path: str | Path) -> list[Job]:
    """Read and check a job file: JSON Lines (``.jsonl``, ``.json``) or TOML (``[[job]]``).

    Relative file paths inside it are taken from the job file's folder.

    Raises:
        JobFileError: any line has a problem (all of them are listed).
        FileNotFoundError: the job file does not exist.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")  # a byte-order mark is tolerated
    except UnicodeDecodeError as exc:
        raise JobFileError(str(file), [(1, None, f"not UTF-8 text ({exc.reason} at byte "
                                                 f"{exc.start}); save the file as UTF-8")]
                           ) from exc
    if file.suffix.lower() == ".toml":
        try:
            tables = tomllib.loads(text).get("job", [])
        except tomllib.TOMLDecodeError as exc:
            raise JobFileError(str(file), [(1, None, f"not valid TOML: {exc}")]) from exc
        except RecursionError:  # tomllib recurses once per level of nested arrays and tables
            raise JobFileError(str(file), [(1, None, "not usable TOML: arrays or tables are "
                                                     "nested far too deeply")]) from None
        if not isinstance(tables, list):
            raise JobFileError(str(file), [(1, "job", "use [[job]] tables, one per job")])
        return parse_jobs(((i, t) for i, t in enumerate(tables, 1)), base=file.parent,
                          where=str(file))
    return parse_jobs(_json_lines(text, str(file)), base=file.parent, where=str(file))


def parse_jobs(items: Iterable[tuple[int, object]], *, base: Path = Path(),
               where: str = "<jobs>") -> list[Job]:
    """Check ``(line, mapping)`` items and build the jobs; all problems raise together."""
    problems: list[tuple[int, str | None, str]] = []
    jobs: list[Job] = []
    seen_ids: dict[str, int] = {}
    seen_outputs: dict[str, tuple[int, str]] = {}
    stems: dict[str, tuple[int, str]] = {}  # Suno jobs write <stem>-<n>.<ext>
    for line, item in items:
        if isinstance(item, _Problem):
            problems.append((line, None, item.text))
            continue
        try:
            job = _build(line, item, base)
        except _LineError as exc:
            problems.extend((line, field, text) for field, text in exc.problems)
            continue
        if job.id in seen_ids:
            problems.append((line, "id", f"{job.id!r} is already used on line "
                                         f"{seen_ids[job.id]}; every job needs its own id"))
            continue
        seen_ids[job.id] = line
        for output in job.outputs:
            folded = output.casefold()
            if folded in seen_outputs:
                other_line, other_id = seen_outputs[folded]
                problems.append((line, "out", f"{output!r} is also the output of job "
                                              f"{other_id!r} (line {other_line})"))
            seen_outputs[folded] = (line, job.id)
        if isinstance(job, SunoJob):
            stems[job.out.casefold()] = (line, job.id)
        jobs.append(job)
    for job in jobs:
        if isinstance(job, MiniMaxJob):
            found = TRACK_NAME.fullmatch(job.out.casefold())
            if found and found.group(1) in stems:
                other_line, other_id = stems[found.group(1)]
                problems.append((job.line, "out", f"{job.out!r} would overwrite a track of "
                                                  f"Suno job {other_id!r} (line {other_line})"))
    if problems:
        raise JobFileError(where, problems)
    if not jobs:
        raise JobFileError(where, [(1, None, "no jobs: write one JSON object per line")])
    return jobs


# -- internals ---------------------------------------------------------------------------------


@attrs.frozen
class _Problem:
    text: str


class _LineError(Exception):
    def __init__(self, problems: list[tuple[str | None, str]]) -> None:
        super().__init__(problems)
        self.problems = problems


def _json_lines(text: str, where: str) -> Iterable[tuple[int, object]]:
    # only "\n" ends a line: JSON strings may hold U+2028 and other separators
    for number, raw in enumerate(text.split("\n"), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            yield number, json.loads(stripped)
        except json.JSONDecodeError as exc:
            yield number, _Problem(f"not valid JSON ({exc.msg} at column {exc.colno}); write "
                                   "one JSON object per line")
        except (ValueError, RecursionError) as exc:  # huge integers, absurd nesting
            yield number, _Problem(f"not usable JSON ({type(exc).__name__}); write one plain "
                                   "JSON object per line")


class _Fields:
    """Reads a line's fields, collecting problems instead of stopping at the first."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.problems: list[tuple[str | None, str]] = []

    def bad(self, field: str | None, text: str) -> None:
        self.problems.append((field, text))

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.data.get(name)
        if value is None:
            if required:
                self.bad(name, "is required")
            return None
        if not isinstance(value, str) or (required and not value.strip()):
            self.bad(name, f"must be a non-empty string, got {value!r}"[:200])
            return None
        return value

    def number(self, name: str, kind: type[int] | type[float]) -> Any:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                (kind is int and not isinstance(value, int)):
            self.bad(name, f"must be {'an integer' if kind is int else 'a number'}, "
                           f"got {value!r}"[:200])
            return None
        try:
            float(value)
        except OverflowError:
            self.bad(name, f"is far too large ({len(str(abs(value)))} digits)")
            return None
        return value

    def file(self, name: str, base: Path) -> Path | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            path = base / Path(value).expanduser()  # an absolute path replaces the folder
            found = path.is_file()
        except (OSError, RuntimeError, ValueError) as exc:  # too long, ~nobody, NUL byte
            self.bad(name, f"{value[:100]!r} cannot be used as a path ({exc})"[:300])
            return None
        if not found:
            self.bad(name, f"{value!r} is not a file (paths are relative to the job file's "
                           f"folder: {path})"[:400])
            return None
        return path


def _build(line: int, item: object, base: Path) -> Job:
    if not isinstance(item, dict):
        raise _LineError([(None, f"must be a JSON object, got {type(item).__name__}")])
    fields = _Fields(item)
    service = item.get("service")
    known: tuple[str, ...] = _MINIMAX_FIELDS if service == "minimax" else \
        _SUNO_FIELDS if service == "suno" else _COMMON
    for name in item:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            fields.bad(str(name), f"unknown field{hint}")
    job_id = fields.text("id")
    if "id" not in item:
        job_id = f"job-{line}"
    elif item["id"] is None:
        fields.bad("id", "must be a non-empty string, got null")
    elif job_id is not None and not _ID.fullmatch(job_id):
        fields.bad("id", f"{job_id!r} must be 1-64 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
        job_id = None
    out = _output(fields, job_id)
    job: Job | None = None
    if service == "minimax":
        job = _minimax(fields, job_id, out, base, line)
    elif service == "suno":
        job = _suno(fields, job_id, out, base, line)
    else:
        fields.bad("service", f"must be \"minimax\" or \"suno\", got {service!r}")
    if fields.problems or job is None:
        raise _LineError(fields.problems)
    return job


def _output(fields: _Fields, job_id: str | None) -> str | None:
    out = fields.text("out")
    if out is None:
        problem = None if job_id is None else name_problem(job_id)
        if problem is not None:  # the id names the output file when "out" is not given
            fields.bad("id", f"{job_id!r} would name the output file, which is not portable: "
                             f"{problem}; choose another id or give an 'out'")
        return None
    pure = PurePosixPath(out.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or out.startswith("~") or \
            any(ch in out for ch in "\0:") or not pure.name:
        fields.bad("out", f"{out!r} must be a relative path inside the output folder "
                          "(no '..', no drive, no absolute path)")
        return None
    for part in pure.parts:
        problem = name_problem(part, max_bytes=200)  # room for "-2.flac" and ".part" suffixes
        if problem is not None:
            fields.bad("out", f"{out!r} is not a portable file name: {problem}; use letters, "
                              "digits and '-', '_', '.' inside the name")
            return None
    return pure.as_posix()


def _minimax(fields: _Fields, job_id: str | None, out: str | None, base: Path,
             line: int) -> MiniMaxJob | None:
    lyrics = fields.text("lyrics")
    reference = fields.file("reference", base)
    voice_ref = fields.file("voice_reference", base)
    inst_ref = fields.file("instrumental_reference", base)
    refer_voice = fields.text("refer_voice")
    refer_inst = fields.text("refer_instrumental")
    purpose = Purpose.SONG
    raw_purpose = fields.data.get("purpose")
    if raw_purpose is not None:
        try:
            purpose = Purpose(raw_purpose)
        except ValueError:
            fields.bad("purpose", f"must be song, voice or instrumental, got {raw_purpose!r}")
    if raw_purpose is not None and "reference" not in fields.data:
        fields.bad("purpose", "applies to 'reference' only; give a reference file too")
    gives_voice = reference is not None and purpose in (Purpose.SONG, Purpose.VOICE)
    gives_inst = reference is not None and purpose in (Purpose.SONG, Purpose.INSTRUMENTAL)
    for name, many in (("voice", [gives_voice, voice_ref is not None, refer_voice is not None]),
                       ("instrumental", [gives_inst, inst_ref is not None,
                                         refer_inst is not None])):
        if sum(many) > 1:
            fields.bad(f"{name}_reference", f"the {name} comes from more than one field; "
                                            "keep one")
    setting = _audio_setting(fields)
    placeholder_voice = "checking" if gives_voice or voice_ref or refer_voice else None
    placeholder_inst = "checking" if gives_inst or inst_ref or refer_inst else None
    if not fields.problems and setting is not None:
        try:
            minimax_proto.check_generate(Service.AIMLAPI, lyrics=lyrics,
                                         refer_voice=placeholder_voice,
                                         refer_instrumental=placeholder_inst,
                                         audio_setting=setting)
        except InputError as exc:
            field = exc.field
            if field == "refer_voice":
                field = "reference"
            fields.bad(field, exc.message)
    if fields.problems or job_id is None or setting is None:
        return None
    return MiniMaxJob(id=job_id, lyrics=lyrics, reference=reference, purpose=purpose,
                      voice_reference=voice_ref, instrumental_reference=inst_ref,
                      refer_voice=refer_voice, refer_instrumental=refer_inst,
                      audio_setting=setting, out=out or f"{job_id}.{setting.format.value}",
                      line=line)


def _audio_setting(fields: _Fields) -> AudioSetting | None:
    raw: dict[str, Any] = {}
    fmt = fields.data.get("format")
    if fmt is not None:
        try:
            raw["format"] = AudioFormat(fmt)
        except ValueError:
            fields.bad("format", f"must be mp3, wav or pcm, got {fmt!r}")
            return None
    for name in ("sample_rate", "bitrate"):
        value = fields.number(name, int)
        if value is not None:
            raw[name] = value
    try:
        return AudioSetting(**raw)
    except ValueError as exc:
        name = "sample_rate" if "sample_rate" in str(exc) else "bitrate"
        reason = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        fields.bad(name, f"{raw.get(name)!r} is not allowed: {reason[:160]}")
        return None


def _suno(fields: _Fields, job_id: str | None, out: str | None, base: Path,
          line: int) -> SunoJob | None:
    raw_source = fields.text("source", required=True)
    source: str | Path | None = None
    if raw_source is not None:
        source = raw_source if "://" in raw_source else fields.file("source", base)
    title = fields.text("title", required=True)
    tags = fields.text("tags", required=True)
    negative = fields.text("negative_tags", required=True)
    gender = fields.text("vocal_gender")
    weights = {n: fields.number(n, float)
               for n in ("style_weight", "weirdness_constraint", "audio_weight")}
    model = fields.text("model") or suno_proto.DEFAULT_MODEL
    callback = fields.text("callback_url")
    if fields.problems or job_id is None or source is None or title is None or tags is None \
            or negative is None:
        return None
    url = source if isinstance(source, str) else "https://upload.invalid/check"
    try:
        suno_proto.check_add_instrumental(
            upload_url=url, title=title, tags=tags, negative_tags=negative,
            callback_url=callback or _CHECK_CALLBACK, vocal_gender=gender, model=model,
            **weights)
    except InputError as exc:
        fields.bad(_SUNO_WIRE.get(exc.field or "", exc.field), exc.message)
        return None
    return SunoJob(id=job_id, source=source, title=title, tags=tags, negative_tags=negative,
                   vocal_gender=gender, model=model, callback_url=callback, out=out or job_id,
                   line=line, **weights)


_SUNO_WIRE = {"upload_url": "source"}


def _fingerprint(job: Job) -> str:
    """A hash of what the job asks for: a journal refuses a changed job under the same id."""
    data = attrs.asdict(job, filter=lambda a, _v: a.name != "line",
                        value_serializer=lambda _i, _a, v: str(v) if isinstance(v, Path) else v)
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
