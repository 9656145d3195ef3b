"""Running a command that talks to the services: the backend, a session, Ctrl-C, stages on
stderr (a spinner on a terminal), and exit statuses. Shared by the thin commands and the
generic verbs."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio

from .._core._events import Event, Progress
from .._core._task import PollSchedule
from ._common import EXIT_INTERRUPTED, Output, backend, describe, stop_on_signals

__all__ = ["run_session_command", "stages"]


@contextmanager
def stages(output: Output) -> Iterator[Callable[[Event], None]]:
    """Stages on stderr (stdout carries only results: ids, paths or JSON): a spinner with the
    stage and the elapsed time on a terminal, a line per stage otherwise."""
    shown: set[tuple[str, str]] = set()
    started = time.monotonic()
    # stderr decides: `$(aiomusic upload ...)` pipes stdout yet still shows the spinner
    spinner = _Spinner(started) if output.live_stderr else None

    def show(event: Event) -> None:
        if not isinstance(event, Progress) or event.stage == "decoding":
            return
        if spinner is not None:
            spinner.stage = f"{event.operation} {event.key}: {event.stage}"
        elif (event.key, event.stage) not in shown:
            shown.add((event.key, event.stage))
            output.note(f"  ..  {event.operation} {event.key}: {event.stage} "
                        f"({time.monotonic() - started:.0f} s)")

    if spinner is None:
        yield show
        return
    from rich.console import Console
    from rich.live import Live

    # transient: the spinner line disappears when the command ends, leaving only results;
    # results printed meanwhile go above it when stdout is the same terminal, and straight
    # to stdout when it is a pipe (never into the spinner's stderr)
    on_terminal = sys.stdout.isatty()
    with Live(spinner, console=Console(stderr=True), refresh_per_second=4, transient=True,
              redirect_stdout=on_terminal, redirect_stderr=False):
        yield show


class _Spinner:
    """A rich renderable: the current stage and the seconds since the command started,
    redrawn by rich.live a few times a second (so silence never lasts minutes)."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.stage = "starting"

    def __rich__(self) -> Any:
        from rich.spinner import Spinner

        return Spinner("dots", text=f"{self.stage} ({time.monotonic() - self.started:.0f} s)")


def run_session_command(args: argparse.Namespace, output: Output,
                        work: Callable[[Any, PollSchedule | None], Awaitable[None]]) -> int:
    """Run ``work(session, poll)`` for a command: the backend its options name, a session,
    Ctrl-C handling, stages on stderr; 0 done, 1 the service or the work failed, 2 usage or
    configuration (nothing was sent), 130 stopped."""
    from .._core._errors import AiomusicError, ConfigurationError, InputError
    from .._core._session import MusicSession

    async def main(session_kwargs: dict[str, Any], poll: PollSchedule | None) -> int | None:
        async with stop_on_signals() as stop, MusicSession(**session_kwargs) as session:
            with stages(output) as show, stop.scope:
                session.subscribe(show)
                await work(session, poll)
        return stop.signal

    try:
        with backend(args) as where:
            stopped = anyio.run(main, where.session, where.poll)
    except (ConfigurationError, InputError) as exc:
        output.error(describe(exc))
        return 2
    except AiomusicError as exc:
        output.error(describe(exc))
        return 1
    except OSError as exc:
        output.error(f"{exc.strerror or exc}: {exc.filename or ''}")
        return 1
    if stopped is not None:
        output.error("stopped" + (f"; {output.resume_hint}" if output.resume_hint else ""))
        return EXIT_INTERRUPTED
    return 0
