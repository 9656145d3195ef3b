"""`aiomusic emulator`: serve the emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import attrs

from ._config import EmulatorConfig, Faults, Limits, Timings
from ._runner import Emulator

__all__ = ["build_parser", "main"]


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Add the emulator's options to `parser` (or a new one)."""
    p = parser or argparse.ArgumentParser(
        prog="aiomusic emulator",
        description="Serve a local emulator of the AI/ML API, MiniMax and Suno music APIs.",
    )
    p.add_argument("--host", default="127.0.0.1",
                   help="the address to serve on (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=8765,
                   help="the port (default: %(default)s; 0 picks a free one)")
    p.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accept only this key (repeatable); default: any non-empty key",
    )
    p.add_argument(
        "--speed",
        default="fast",
        help="fast (default), instant, real, or a scale factor for the fast times",
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME[@OP]=RATE",
        help="random fault rate, e.g. server_error=0.1 or reset_mid_body@aiml=0.5",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random faults")
    p.add_argument(
        "--admin-token",
        default=os.environ.get("AIOMUSIC_EMULATOR_ADMIN_TOKEN"),
        metavar="TOKEN",
        help="require this token on /_emulator/... (Authorization: Bearer TOKEN); default: "
        "$AIOMUSIC_EMULATOR_ADMIN_TOKEN, else open",
    )
    p.add_argument(
        "--fetch-host",
        action="append",
        dest="fetch_hosts",
        default=[],
        metavar="HOST[:PORT]",
        help="a host whose URLs uploadUrl/fileUrl may name (repeatable); default: only the "
        "emulator's own files",
    )
    p.add_argument("--no-limits", action="store_true", help="disable rate and concurrency limits")
    p.add_argument(
        "--rate", type=int, metavar="N", help="MiniMax/AI-ML requests per window per key"
    )
    p.add_argument(
        "--rate-window",
        type=float,
        metavar="S",
        help="seconds of the MiniMax/AI-ML rate window (default 60: --rate is per minute)",
    )
    p.add_argument("--concurrency", type=int, metavar="N", help="generations in flight per key")
    p.add_argument("--suno-rate", type=int, metavar="N", help="Suno requests per 10 s per key")
    p.add_argument("--retry-after", type=float, metavar="S",
                   help="send Retry-After with AI/ML 429s: the wait for a rate refusal, S "
                        "seconds for a concurrency refusal")
    p.add_argument("--rate-headers", action="store_true",
                   help="send x-ratelimit-*-requests headers with AI/ML 429s")
    p.add_argument(
        "--audio-bytes",
        type=int,
        metavar="N",
        help="make every music-01 track about N bytes (X-Emulator-Audio-Bytes per request)",
    )
    return p


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    if args.speed == "fast":
        timings = Timings()
    elif args.speed == "instant":
        timings = Timings.instant()
    elif args.speed == "real":
        timings = Timings.real()
    else:
        timings = Timings(scale=float(args.speed))
    limits = Limits(enabled=not args.no_limits, retry_after=args.retry_after,
                    rate_headers=args.rate_headers)
    if args.rate is not None:
        limits = attrs.evolve(limits, minimax_requests=args.rate)
    if args.rate_window is not None:
        limits = attrs.evolve(limits, minimax_window=args.rate_window)
    if args.concurrency is not None:
        limits = attrs.evolve(limits, minimax_concurrent=args.concurrency)
    if args.suno_rate is not None:
        limits = attrs.evolve(limits, suno_requests=args.suno_rate)
    return EmulatorConfig(
        api_keys=args.api_keys,
        timings=timings,
        limits=limits,
        faults=Faults.parse(args.fault, seed=args.seed),
        generate_audio_bytes=args.audio_bytes,
        admin_token=args.admin_token or None,
        fetch_hosts=frozenset(h.lower() for h in args.fetch_hosts),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator from the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"aiomusic emulator: {exc}", file=sys.stderr)
        return 2
    emu = Emulator(config, host=args.host, port=args.port)
    emu.start()
    print(f"aiomusic emulator listening on {emu.url}", flush=True)
    try:
        emu.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    return 0
