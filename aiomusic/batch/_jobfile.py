"""The job file: JSON Lines (or TOML), checked line by line before anything runs.

A line names its service and, optionally, its operation (``op``); its other fields are the
operation's parameters, as declared (``aiomusic._core._operation``)::

    {"id": "song-01", "service": "minimax", "lyrics": "##Hello##", "reference": "ref.wav"}
    {"id": "inst-01", "service": "suno", "source": "vocals.mp3", "title": "Night",
     "tags": "piano, soft", "negative_tags": "metal"}
    {"id": "gen-01", "service": "suno", "op": "generate", "prompt": "a calm piano piece"}

Without ``op``, a line asks for its service's first operation (music-01 for MiniMax, Add
Instrumental for Suno: what earlier versions ran). ``after`` (and ``track``) makes a line follow
another job's result (``_chain.py``). Every problem names its line and field; all of them are
reported at once.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from .._core._errors import InputError
from .._core._operation import Operation, Output, find, operations, services
from ._chain import CHAIN_FIELDS, link, read_chain
from ._fields import COMMON, Fields, read_output, read_params, unknown_fields
from ._jobs import TRACK_NAME, Job, OperationJob, output_extension
from ._legacy import MINIMAX_FIELDS, SUNO_FIELDS, read_add_instrumental, read_music01

__all__ = ["JobFileError", "load_jobs", "parse_jobs"]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: The operations whose lines keep their historical readers and job types (see _legacy.py).
_LEGACY = {("minimax", "music-01"): (MINIMAX_FIELDS, read_music01),
           ("suno", "add-instrumental"): (SUNO_FIELDS, read_add_instrumental)}


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
    stems: dict[str, tuple[int, str]] = {}  # jobs writing tracks: <stem>-<n>.<ext>
    folders: dict[str, tuple[int, str]] = {}  # jobs filling a folder (stems)
    written: set[str] = set()  # every id written, on lines with problems too
    for line, item in items:
        if isinstance(item, dict):
            written.add(str(item.get("id", f"job-{line}")))
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
        _names, job_stems, job_folders = _claims(job)
        stems.update(dict.fromkeys(job_stems, (line, job.id)))
        folders.update(dict.fromkeys(job_folders, (line, job.id)))
        jobs.append(job)
    for job in jobs:
        for name in _claims(job)[0]:
            found = TRACK_NAME.fullmatch(name)
            if found and found.group(1) in stems:
                other_line, other_id = stems[found.group(1)]
                kind = "Suno job" if job_kind(jobs, other_id) == "suno" else "job"
                problems.append((job.line, "out", f"{job.out!r} would overwrite a track of "
                                                  f"{kind} {other_id!r} (line {other_line})"))
            inside = next((f for f in folders if name.startswith(f + "/")), None)
            if inside is not None:
                other_line, other_id = folders[inside]
                problems.append((job.line, "out", f"{job.out!r} is inside the stems folder "
                                                  f"of job {other_id!r} (line {other_line})"))
    jobs, chained = link(jobs, elsewhere=written)
    problems += chained
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


def _operation(fields: Fields, service: object) -> Operation | None:
    known = services()
    if service not in known:
        names = [f'"{s}"' for s in known if any(True for _ in operations(s))]
        fields.bad("service", f"must be {', '.join(names[:-1])} or {names[-1]}, "
                              f"got {service!r}")
        return None
    assert isinstance(service, str)
    name = fields.data.get("op")
    if name is None:
        return next(operations(service))
    op = find(service, name) if isinstance(name, str) else None
    if op is None:
        choices = ", ".join(o.name for o in operations(service))
        fields.bad("op", f"{service} has no operation {name!r}; use one of: {choices}"[:300])
    return op


def _build(line: int, item: object, base: Path) -> Job:
    if not isinstance(item, dict):
        raise _LineError([(None, f"must be a JSON object, got {type(item).__name__}")])
    fields = Fields(item)
    op = _operation(fields, item.get("service"))
    legacy = _LEGACY.get((op.service, op.name)) if op is not None else None
    if legacy is not None:
        known = legacy[0] if "op" in item else tuple(f for f in legacy[0] if f != "op")
        unknown_fields(fields, known + CHAIN_FIELDS)
    elif op is not None:
        unknown_fields(fields, COMMON + CHAIN_FIELDS + tuple(p.name for p in _params(op)))
    chain = read_chain(fields, op)
    # an unknown service or operation: its fields cannot be judged, only that one problem
    job_id = fields.text("id")
    if "id" not in item:
        job_id = f"job-{line}"
    elif item["id"] is None:
        fields.bad("id", "must be a non-empty string, got null")
    elif job_id is not None and not _ID.fullmatch(job_id):
        fields.bad("id", f"{job_id!r} must be 1-64 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
        job_id = None
    out = read_output(fields, job_id)
    job: Job | None = None
    if op is not None and legacy is not None:
        job = legacy[1](fields, job_id, out, base, line)
    elif op is not None:
        params = read_params(op, fields, base)
        if params is not None and job_id is not None and not fields.problems:
            job = OperationJob(id=job_id, op=op, params=params, line=line,
                               out=out or _default_out(op, params, job_id), chain=chain)
    if fields.problems or job is None:
        raise _LineError(fields.problems)
    return job


def job_kind(jobs: list[Job], job_id: str) -> str:
    return next(j.kind for j in jobs if j.id == job_id)


def _params(op: Operation | None) -> tuple[Any, ...]:
    from .._core._operation import params_of

    return () if op is None else params_of(op.params)


def _default_out(op: Operation, params: Any, job_id: str) -> str:
    if op.output in (Output.FILE, Output.DOCUMENT):
        return f"{job_id}.{output_extension(op, params)}"
    return job_id


def _claims(job: Job) -> tuple[set[str], set[str], set[str]]:
    """What a job writes: exact file names, track-name stems (``<stem>-<n>.<ext>``), and
    folders it fills (stems)."""
    output = job.op.output
    if output is Output.TRACKS:
        return set(), {job.out.casefold()}, set()
    if output is Output.STEMS:
        return set(), set(), {job.out.casefold()}
    if output is Output.NOTHING:
        return set(), set(), set()
    return {job.out.casefold()}, set(), set()
