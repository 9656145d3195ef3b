"""The ``aiomusic`` command: ``demo`` (the README's main job) and ``emulator``.

rich is imported lazily, only where output is drawn, so ``import aiomusic`` stays light.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._version import __version__

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aiomusic",
        description="Async client for MiniMax music-01 and Suno Add Instrumental.",
    )
    parser.add_argument("--version", action="version", version=f"aiomusic {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="generate songs on the embedded emulator, faults included",
        description="Start the embedded emulator (with rate-limit and maintenance faults "
                    "switched on), generate a batch of songs concurrently, write them to a "
                    "folder and print a summary.")
    demo.add_argument("--out", default="aiomusic-demo", help="output folder (default: %(default)s)")
    demo.add_argument("--songs", type=int, default=12, help="songs to generate (default: 12)")
    demo.add_argument("--seed", type=int, default=7, help="fault seed (default: 7)")
    demo.add_argument("--plain", action="store_true", help="plain line output, no colours")
    commands.add_parser("emulator", help="serve the local emulator of both services "
                                          "(see 'aiomusic emulator --help')", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 done, 1 some jobs failed, 2 usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["emulator"]:
        from .emulator._cli import main as emulator_main

        return emulator_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.songs < 1:
            parser.error("--songs must be at least 1")
        from ._demo import run_demo

        return run_demo(out=args.out, songs=args.songs, seed=args.seed, plain=args.plain)
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
