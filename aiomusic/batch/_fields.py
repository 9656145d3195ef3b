"""Reading a job file's fields: every problem collected, each named by its field.

`Fields` reads one line's values by kind (the job file's own type checks and messages);
`read_params` reads the parameters an operation declares (``param()``) from a line.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from .._core._operation import Checks, Operation, ParamInfo, params_of
from .._io._names import name_problem

__all__ = ["COMMON", "Fields", "read_output", "read_params", "unknown_fields"]

#: Fields every line may have, whatever its operation.
COMMON = ("id", "service", "op", "out")


class Fields:
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
            what = "is a folder, not a file" if path.is_dir() else "is not a file"
            self.bad(name, f"{value!r} {what} (paths are relative to the job file's "
                           f"folder: {path})"[:400])
            return None
        return path



    def flag(self, name: str) -> bool | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.bad(name, f"must be true or false, got {value!r}"[:200])
            return None
        return value

    def texts(self, name: str) -> tuple[str, ...] | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip()
                                                  for v in value):
            self.bad(name, f"must be a list of non-empty strings, got {value!r}"[:200])
            return None
        return tuple(value)

    def mapping(self, name: str) -> dict[str, Any] | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            self.bad(name, f"must be a JSON object, got {value!r}"[:200])
            return None
        return dict(value)

    def source(self, name: str, base: Path, *, required: bool) -> str | Path | None:
        """A URL as it is, or a local file (which must exist)."""
        raw = self.text(name, required=required)
        if raw is None:
            return None
        return raw if "://" in raw else self.file(name, base)


def unknown_fields(fields: Fields, known: tuple[str, ...]) -> None:
    """Report every field of the line that is not in ``known``, suggesting the nearest."""
    for name in fields.data:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            fields.bad(str(name), f"unknown field{hint}")


def _read(fields: Fields, info: ParamInfo, base: Path) -> Any:
    name = info.name
    if info.kind in ("text", "choice", "url", "id"):
        return fields.text(name, required=info.required)
    if info.kind == "int":
        return fields.number(name, int)
    if info.kind in ("float", "weight"):
        return fields.number(name, float)
    if info.kind == "bool":
        return fields.flag(name)
    if info.kind == "texts":
        return fields.texts(name)
    if info.kind == "mapping":
        return fields.mapping(name)
    if info.kind == "file":
        return fields.file(name, base)
    return fields.source(name, base, required=info.required)


def read_params(op: Operation, fields: Fields, base: Path) -> Any | None:
    """The operation's parameters from a line, checked (``None`` after any problem).

    Types come first (the kinds the declaration gives), then the declared limits, then the
    operation's own rules, so a line's problems are all reported at once.
    """
    declared = params_of(op.params)
    values: dict[str, Any] = {}
    for info in declared:
        value = _read(fields, info, base)
        if value is None:
            reported = any(field == info.name for field, _ in fields.problems)
            if info.required and not reported:
                fields.bad(info.name, "is required")
            continue
        values[info.name] = value
    checks = Checks()
    for info in declared:  # the values that did read: their declared limits
        _check_declared(checks, info, values.get(info.name), op)
    params = op.params(**values) if not checks.problems and not fields.problems else None
    if params is not None:
        op.validate(params, checks)  # cross-field rules need every value
    for problem in checks.problems:
        fields.bad(problem.field, problem.message)
    return None if checks.problems else params


def _check_declared(checks: Checks, info: ParamInfo, value: Any, op: Operation) -> None:
    if value is None:
        return
    if isinstance(value, str) and info.max_length is not None:
        checks.text(info.name, value, max_length=info.max_length)
    elif isinstance(value, int | float) and (info.minimum is not None or
                                             info.maximum is not None):
        checks.number(info.name, value, minimum=info.minimum, maximum=info.maximum)
    if info.kind == "choice" and info.choices:
        checks.choice(info.name, value, info.choices,
                      open_ended=info.name == "model" and bool(op.models))
    elif info.kind == "weight":
        checks.number(info.name, value, minimum=0, maximum=1)


def read_output(fields: Fields, job_id: str | None = None) -> str | None:
    """The line's ``out``, a relative path of portable names; ``None`` when absent (then the
    id names the output file, so it must be a portable name too) or refused."""
    out = fields.text("out")
    if out is None:
        problem = None if job_id is None else name_problem(job_id)
        if problem is not None:
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


