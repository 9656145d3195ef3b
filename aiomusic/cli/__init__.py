"""The ``aiomusic`` command: ``demo`` (the README's main job), ``batch``, the thin commands
``upload``, ``generate``, ``instrumental``, ``task``, ``credits``, and ``emulator``.

Everything beyond argparse (rich, the emulator, the library's clients) is imported only when a
command runs, so ``import aiomusic`` and ``aiomusic --help`` stay fast.

Exit status: 0 all done, 1 some jobs (or the call) failed, 2 usage errors, 130 stopped by
Ctrl-C (the journal is consistent; run the same command again to resume).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._version import __version__

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aiomusic",
        description="Async client for AI music services: MiniMax, the Suno API and the AI/ML API.",
        epilog="Exit status: 0 done, 1 some jobs failed, 2 usage error, 130 stopped (Ctrl-C).")
    parser.add_argument("--version", action="version", version=f"aiomusic {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="run a mixed batch on the embedded emulator, faults included",
        description="Start the embedded emulator (with rate-limit and maintenance faults "
                    "switched on), run a batch of MiniMax songs and Suno instrumentals "
                    "concurrently, write the audio to a folder and print a summary.")
    demo.add_argument("--out", default="aiomusic-demo", help="output folder (default: %(default)s)")
    demo.add_argument("--songs", type=int, default=8,
                      help="MiniMax songs to generate (default: %(default)s)")
    demo.add_argument("--instrumentals", type=int, default=4,
                      help="Suno instrumentals to make (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=7, help="fault seed (default: %(default)s)")
    demo.add_argument("--plain", action="store_true", help="plain line output, no live display")
    demo.add_argument("--json", action="store_true", help="JSON lines for scripts")
    from ._batch import add_batch_parser
    from ._commands import add_thin_parsers
    from ._common import add_service_options

    add_service_options(add_batch_parser(commands))
    add_thin_parsers(commands)
    from ._ops import add_operation_parsers

    add_operation_parsers(commands)
    from ._settings import add_config_parser

    add_config_parser(commands)
    listing = commands.add_parser("operations", help="list every operation (from the "
                                                     "declarations)")
    listing.add_argument("--markdown", action="store_true",
                         help="as the Markdown tables of docs/operations.md")
    commands.add_parser("emulator", help="serve the local emulator of both services "
                                          "(see 'aiomusic emulator --help')", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["emulator"]:
        try:
            from ..emulator._cli import main as emulator_main
        except ImportError as exc:  # the emulator's extra is not installed
            from ._common import EMULATOR_INSTALL

            print(f"aiomusic: the emulator needs its extra ({exc.name or exc} is missing): "
                  f"{EMULATOR_INSTALL}", file=sys.stderr)
            return 2
        return emulator_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(parser, args)
    except KeyboardInterrupt:  # before or after the async part, which stops cleanly itself
        print("aiomusic: stopped", file=sys.stderr)
        return 130


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command == "demo":
        if args.songs < 0 or args.instrumentals < 0 or args.songs + args.instrumentals < 1:
            parser.error("--songs and --instrumentals must not be negative, and at least one "
                         "job is needed")
        from ._demo import run_demo

        return run_demo(out=args.out, songs=args.songs, instrumentals=args.instrumentals,
                        seed=args.seed, plain=args.plain, json_mode=args.json)
    if args.command == "batch":
        from ._batch import run_batch_command

        return run_batch_command(args)
    if args.command == "config":
        from ._settings import run_config

        return run_config(args)
    if args.command == "operations":
        from ._ops import print_operations

        return print_operations(markdown=args.markdown)
    if getattr(args, "op", None) is not None:
        from ._ops import run_operation_command

        return run_operation_command(args)
    if args.command is not None:
        from ._commands import run_thin_command

        return run_thin_command(args)
    parser.print_help(sys.stderr)
    return 2

