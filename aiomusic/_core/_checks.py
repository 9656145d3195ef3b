"""Every problem of a request, found before anything is sent: `Checks` collects them."""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from ._errors import InputError

__all__ = ["Checks", "Problem"]


@attrs.frozen
class Problem:
    """One thing wrong with a request, found before anything is sent."""

    field: str | None
    message: str


class Checks:
    """Collects every problem of a request instead of stopping at the first.

    Validators call `fail()` (or the typed helpers) for each problem; `raise_first()` raises
    an [`InputError`][aiomusic.InputError] naming the first one and carrying all of them in
    its ``problems`` attribute, so a job file can list every problem of a line at once.
    """

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def __bool__(self) -> bool:
        return not self.problems

    def fail(self, field: str | None, message: str) -> None:
        self.problems.append(Problem(field, message))

    def failed(self, field: str) -> bool:
        """Whether ``field`` already has a problem (later rules about it are moot)."""
        return any(p.field == field for p in self.problems)

    def text(self, field: str, value: object, *, required: bool = True,
             max_length: int | None = None, min_length: int | None = None) -> str | None:
        """A string field: present when required, within its length limits."""
        if value is None:
            if required:
                self.fail(field, "is required")
            return None
        if not isinstance(value, str):
            self.fail(field, f"must be a string, got {type(value).__name__}")
            return None
        if required and not value.strip():
            self.fail(field, "is required and must not be empty")
            return None
        if max_length is not None and len(value) > max_length:
            self.fail(field, f"must be at most {max_length} characters, got {len(value)}")
        if min_length is not None and value.strip() and len(value) < min_length:
            self.fail(field, f"must be at least {min_length} characters, got {len(value)}")
        return value

    def number(self, field: str, value: object, *, integer: bool = False,
               minimum: float | None = None, maximum: float | None = None) -> float | None:
        """A number within its range (``None`` passes: the field is optional)."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                (integer and not isinstance(value, int)):
            self.fail(field, f"must be {'an integer' if integer else 'a number'}, "
                             f"got {value!r}"[:200])
            return None
        try:
            number = float(value)
        except OverflowError:
            self.fail(field, f"is far too large ({len(str(abs(value)))} digits)")
            return None
        if not math.isfinite(number):
            self.fail(field, f"must be a finite number, got {value!r}")
            return None
        low = "" if minimum is None else f"{minimum:g}"
        high = "" if maximum is None else f"{maximum:g}"
        if (minimum is not None and number < minimum) or \
                (maximum is not None and number > maximum):
            span = f"from {low} to {high}" if low and high else \
                f"at least {low}" if low else f"at most {high}"
            self.fail(field, f"must be {span}, got {value!r}")
            return None
        return number

    def choice(self, field: str, value: object, choices: Sequence[str], *,
               open_ended: bool = False) -> str | None:
        """One of ``choices``; with ``open_ended`` any other non-empty string passes (the
        caller warns): model names grow faster than this library."""
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(field, f"must be one of {', '.join(choices)}, got {value!r}"[:300])
            return None
        if value not in choices and not open_ended:
            self.fail(field, f"must be one of {', '.join(choices)}, got {value!r}"[:300])
            return None
        return value

    def exclusive(self, *fields: tuple[str, object], why: str = "") -> None:
        """At most one of ``fields`` is set (truthy)."""
        given = [name for name, value in fields if value]
        if len(given) > 1:
            self.fail(given[1], f"cannot be combined with {given[0]}{f' ({why})' if why else ''}")

    def raise_first(self) -> None:
        """Raise an `InputError` for the first problem (all of them in ``problems``)."""
        if not self.problems:
            return
        first = self.problems[0]
        more = f" (and {len(self.problems) - 1} more problem"
        more += "s)" if len(self.problems) > 2 else ")"
        message = f"{first.field}: {first.message}" if first.field else first.message
        error = InputError(message + (more if len(self.problems) > 1 else ""),
                           field=first.field)
        error.problems = tuple(self.problems)  # type: ignore[attr-defined]
        raise error
