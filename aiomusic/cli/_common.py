"""What the ``aiomusic`` commands share: service options, the backend, output and signals."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import attrs

from .._core._retry import RetryPolicy
from ..suno import PollSchedule

if TYPE_CHECKING:
    from ..emulator import Timings

__all__ = ["EMBEDDED", "EXIT_INTERRUPTED", "Backend", "Output", "Stop", "add_service_options",
           "backend", "one_error", "stop_on_signals"]

EMULATOR_KEY = "aiomusic-emulator-key"
#: How to install the emulator's extra, from a checkout (as the README installs) or the index.
EMULATOR_INSTALL = ("pip install -e '.[emulator]' in your aiomusic checkout (or "
                    "pip install 'aiomusic[emulator]')")
NOWHERE = "https://callbacks.invalid/aiomusic"
"""A callback URL for runs that only poll: Suno requires one on every submission."""


#: The environment variables the commands read, for --help and ``aiomusic config``.
ENVIRONMENT = (
    ("AIMLAPI_KEY", "the AI/ML API key (MiniMax music-01 by default, the AI/ML family)"),
    ("MINIMAX_API_KEY", "the key for MiniMax's own hosts (--via minimax, music-2.x)"),
    ("SUNO_API_KEY", "the sunoapi.org key"),
    ("AIOMUSIC_BASE_URL", "one base URL for every service, as --base-url"),
    ("AIOMUSIC_SUNO_CALLBACK_URL", "Suno's callBackUrl, as --callback-url"),
    ("AIOMUSIC_MINIMAX_VIA", "aimlapi or minimax, as --via"),
    ("AIOMUSIC_LOG", "debug, info, warning or error: log each request (keys redacted)"),
)
_ALL = frozenset({"minimax", "suno", "aimlapi"})


def environment_epilog() -> str:
    """The environment variables, for a parser's epilog."""
    width = max(len(name) for name, _ in ENVIRONMENT)
    return "environment:\n" + "\n".join(f"  {name:<{width}}  {what}"
                                          for name, what in ENVIRONMENT)


def add_service_options(parser: argparse.ArgumentParser, *,
                        services: frozenset[str] = _ALL, tasks: bool = True,
                        via: bool = True) -> None:
    """The options of a command that talks to ``services`` (only those that apply);
    ``tasks``: whether it submits or follows tasks (callback URL, polling); ``via``: whether
    it may call MiniMax music-01, the only model whose host ``--via`` chooses."""
    parser.epilog = environment_epilog()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    where = parser.add_argument_group("service")
    where.add_argument("--emulator", action="store_true",
                       help="run against an embedded emulator (no key or network needed)")
    where.add_argument("--base-url", metavar="URL", default=os.environ.get("AIOMUSIC_BASE_URL"),
                       help="one base URL for every service, e.g. an `aiomusic emulator` at "
                            "http://127.0.0.1:8765; plain-http downloads from a loopback base "
                            "URL are allowed (default: $AIOMUSIC_BASE_URL)")
    if "minimax" in services and via:
        where.add_argument("--via", choices=("aimlapi", "minimax"),
                           default=os.environ.get("AIOMUSIC_MINIMAX_VIA") or "aimlapi",
                           help="where MiniMax music-01 is called (default: "
                                "$AIOMUSIC_MINIMAX_VIA, else %(default)s)")
    if "suno" in services and tasks:
        where.add_argument("--callback-url", metavar="URL",
                           help="Suno's callBackUrl (default: $AIOMUSIC_SUNO_CALLBACK_URL, "
                                f"else {NOWHERE}: the service requires one, and the command "
                                "line follows tasks by polling, so none is needed)")
    if tasks and services != {"minimax"}:
        where.add_argument("--poll-interval", type=positive_float, metavar="S",
                           help="poll tasks first after S seconds, backing off to 10 x S "
                                "(at most 30 s; default: 3 s, or 0.5 s with --emulator)")
    where.add_argument("--allow-http-host", action="append", default=[], metavar="HOST",
                       help="download plain-http audio from HOST too (repeatable; loopback "
                            "base URLs are allowed already)")
    where.add_argument("--allow-private-host", action="append", default=[], metavar="HOST",
                       help="download from HOST (a name, an IP address or a network such as "
                            "10.0.0.0/8) although it is not a public address (repeatable; "
                            "the base URL's own host and port are allowed already)")
    keys = parser.add_argument_group(
        "keys", "Taken from the environment (see below); --aimlapi-key, --minimax-key and\n"
                "--suno-key exist, but flags show in the process list. Keys are never printed.")
    for flag in ("--aimlapi-key", "--minimax-key", "--suno-key"):
        # hidden, and there for every command: MiniMax may be served by the AI/ML API
        keys.add_argument(flag, metavar="KEY", help=argparse.SUPPRESS)
    shown = parser.add_argument_group("output")
    shown.add_argument("--json", action="store_true",
                       help="print JSON (one object per line) for scripts")
    shown.add_argument("--plain", action="store_true",
                       help="plain lines, no colours or live display")


def positive_float(text: str) -> float:
    """An argparse type: a finite number of seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be above zero, got {text}")
    return value


@attrs.frozen
class Backend:
    """How to reach the services: session arguments, the journal's endpoint label, polling."""

    session: dict[str, Any]
    endpoint: str | None = None
    poll: PollSchedule | None = None
    label: str = ""


@contextmanager
def backend(args: argparse.Namespace) -> Iterator[Backend]:
    """Session arguments from the options; starts the embedded emulator for ``--emulator``."""
    callback = getattr(args, "callback_url", None) or \
        os.environ.get("AIOMUSIC_SUNO_CALLBACK_URL") or NOWHERE
    kwargs: dict[str, Any] = {
        "aimlapi_key": args.aimlapi_key, "minimax_key": args.minimax_key,
        "suno_key": args.suno_key, "minimax_via": getattr(args, "via", "aimlapi"),
        "suno_callback_url": callback, "allow_http_hosts": tuple(args.allow_http_host),
        "allow_private_hosts": tuple(getattr(args, "allow_private_host", ())),
    }
    poll = None
    if getattr(args, "poll_interval", None) is not None:
        poll = PollSchedule(initial=args.poll_interval,
                            maximum=max(args.poll_interval, min(30.0, 10 * args.poll_interval)))
    if not args.emulator:
        if args.base_url:
            kwargs["base_url"] = args.base_url
            host = loopback_host(args.base_url)
            if host is not None:  # an emulator on this machine serves its files over http
                kwargs["allow_http_hosts"] = (*kwargs["allow_http_hosts"], host)
        yield Backend(kwargs, poll=poll, label=args.base_url or "the services' public hosts")
        return
    try:
        from ..emulator import Emulator, EmulatorConfig
    except ImportError as exc:  # pragma: no cover - the dev install has every extra
        Output.error(f"--emulator needs the emulator's extra ({exc.name or exc} is missing): "
                     f"{EMULATOR_INSTALL}")
        raise SystemExit(2) from exc
    with Emulator(EmulatorConfig(timings=emulator_timings())) as emu:
        yield emulated(emu.url, kwargs, poll=poll)


def loopback_host(url: str) -> str | None:
    """The host of ``url`` when it is this machine (localhost, 127.x, ::1), else None."""
    import ipaddress
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return host
    try:
        return host if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return None


EMBEDDED = "embedded emulator"
"""The journal's endpoint label for an embedded emulator (it lives as long as its command)."""


def emulator_timings() -> Timings:
    """Seconds instead of minutes: what `--emulator` and the demo run with."""
    from ..emulator import Timings

    return Timings(generate=0.8, suno_text=0.5, suno_first=1.2, suno_complete=2.5)


def emulated(url: str, kwargs: dict[str, Any] | None = None, *,
             poll: PollSchedule | None = None) -> Backend:
    """The backend of an embedded emulator at ``url``: any key, loopback downloads, a
    callback URL nobody needs, short retries and fast polls (``kwargs`` may override)."""
    result = dict(kwargs or {}, base_url=url)
    for name in ("aimlapi_key", "minimax_key", "suno_key"):
        result[name] = result.get(name) or EMULATOR_KEY
    result["suno_callback_url"] = result.get("suno_callback_url") or NOWHERE
    result["allow_http_hosts"] = (*result.get("allow_http_hosts", ()), "127.0.0.1")
    result["retry"] = RetryPolicy(base_delay=0.2, max_delay=2.0, maintenance_delay=0.5)
    return Backend(result, endpoint=EMBEDDED, poll=poll or fast_poll(),
                   label=f"the embedded emulator at {url}")


def fast_poll() -> PollSchedule:
    """Polling for an emulator, whose tasks take seconds instead of minutes."""
    return PollSchedule(initial=0.5, maximum=1.5)


class Output:
    """Prints for people (rich on a terminal, plain lines otherwise) or JSON for scripts."""

    def __init__(self, *, json_mode: bool = False, plain: bool = False) -> None:
        self.json = json_mode
        self.resume_hint = ""  # what to say if the command is stopped now
        self.rich = not json_mode and not plain and sys.stdout.isatty() and _has_rich()
        #: whether progress on stderr may be a live display (stderr is a terminal)
        self.live_stderr = not json_mode and not plain and sys.stderr.isatty() and _has_rich()
        self._console: Any = None
        if self.rich:
            from rich.console import Console

            self._console = Console(highlight=False)

    @property
    def console(self) -> Any:
        """The rich console, when output is rich."""
        return self._console

    def say(self, text: str, *, style: str | None = None) -> None:
        """A line for people (nothing in JSON mode)."""
        if self.json:
            return
        if self._console is not None:
            self._console.print(text, style=style, markup=False)
        else:
            print(text, flush=True)

    def data(self, obj: dict[str, Any]) -> None:
        """A JSON object on its own line (JSON mode only)."""
        if self.json:
            print(json.dumps(obj, default=str), flush=True)

    def note(self, text: str) -> None:
        """Progress for people, on stderr (nothing in JSON mode), so that stdout carries
        only results and ``$(aiomusic ...)`` captures nothing else."""
        if not self.json:
            print(text, file=sys.stderr, flush=True)

    @staticmethod
    def error(text: str) -> None:
        print(f"aiomusic: {text}", file=sys.stderr, flush=True)


def _has_rich() -> bool:
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


EXIT_INTERRUPTED = 130
SAME_PRESS = 0.3
"""Seconds within which a second signal is the same press: a terminal sends one SIGINT per
Ctrl-C, but ``timeout`` and some supervisors send it to the process and to its group."""
quit_now: Callable[[int], object] = os._exit  # no clean-up: what a second Ctrl-C asks for


@attrs.define
class Stop:
    """What Ctrl-C (or SIGTERM) did to a command: see `stop_on_signals()`."""

    scope: anyio.CancelScope = attrs.Factory(anyio.CancelScope)
    signal: int | None = None
    _first_at: float = 0.0

    async def watch(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                now = time.monotonic()
                if self.signal is None:
                    self.signal, self._first_at = int(signum), now
                    Output.error("stopping cleanly (press Ctrl-C again to quit at once)")
                    self.scope.cancel()
                elif now - self._first_at > SAME_PRESS:
                    Output.error("quit at once: a journal stays consistent (it is written to "
                                 "survive a kill), and the next run of a batch removes its "
                                 "partial files; a single command may leave a hidden .part file")
                    sys.stdout.flush()
                    quit_now(EXIT_INTERRUPTED)


@asynccontextmanager
async def stop_on_signals() -> AsyncIterator[Stop]:
    """Watch Ctrl-C and SIGTERM for as long as the block runs, clean-up included.

    The first signal cancels ``stop.scope``: run the work in ``with stop.scope:`` and it
    stops cleanly (journal entries, partial files), then ``stop.signal`` is set. Another
    signal during that clean-up quits the process at once. Errors of the block come out as
    themselves, not in an exception group.
    """
    stop = Stop()
    async with one_error(), anyio.create_task_group() as tg:
        await tg.start(stop.watch)
        try:
            yield stop
        finally:
            tg.cancel_scope.cancel()


@asynccontextmanager
async def one_error() -> AsyncIterator[None]:
    """Raise the one error of a task group's exception group as itself, for plain messages."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        if len(leaves) == 1:
            raise leaves[0] from group
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found


#: The library's advice is written for Python callers; on the command line the same advice
#: names flags and environment variables. One message source, two renderings: these rules
#: turn the first into the second (tests/test_cli_messages.py checks every Python phrase the
#: package writes into an error has a rendering).
CLI_RENDERINGS: tuple[tuple[str, str | Callable[[re.Match[str]], str]], ...] = (
    (r"MusicSession\(allow_http_hosts=\.\.\.\)", "--allow-http-host HOST"),
    (r"MusicSession\(allow_private_hosts=\.\.\.\)", "--allow-private-host HOST"),
    (r"pass (\w+)_key=\.\.\. to MusicSession or set the (\w+) environment variable",
     r"set the \2 environment variable (or --\1-key)"),
    (r"(the \w+ environment variable) or \w+_key=\.\.\.", r"\1"),
    (r"\(?RetryPolicy\(resubmit_unknown=True\)\)?", "--resubmit-unknown"),
    (r"\(?resubmit_unknown=True\)?", "--resubmit-unknown"),
    (r"session\.suno\.task\('([^']+)'\)",
     lambda m: f"`{task_command(m[1], '--wait')}`"),
    (r"session\.aimlapi\.task\('([^']+)'\)",
     lambda m: f"`{task_command(m[1], '--service aimlapi --wait')}`"),
    (r"MusicSession\(suno_callback_url=\.\.\.\)", "--callback-url URL"),
    (r"callback_url=\.\.\.", "--callback-url URL"),
    (r"session\.suno\.attach_receiver\(receiver, public_url\)",
     "--callback-url with your receiver's public URL"),
)


def task_command(task_id: str, flags: str = "") -> str:
    """The ``aiomusic task`` command line for ``task_id``.

    AI/ML API ids are nanoids, whose alphabet has ``-``: an id that starts with one would be
    read as an option, so it then goes last, after ``--``.
    """
    flags = f" {flags}" if flags else ""
    if task_id.startswith("-"):
        return f"aiomusic task{flags} -- {task_id}"
    return f"aiomusic task {task_id}{flags}"


def for_cli(message: str) -> str:
    """``message`` with its Python advice rendered for the command line."""
    for pattern, replacement in CLI_RENDERINGS:
        message = re.sub(pattern, replacement, message)
    return message


def describe(exc: BaseException) -> str:
    """An error as the command line shows it: its type and its advice in CLI terms."""
    return f"{type(exc).__name__}: {for_cli(str(exc))}"
