"""``aiomusic config``: the settings a command would use, from flags and the environment."""

from __future__ import annotations

import argparse
import hashlib
import os
from typing import Any

from .._core._config import Endpoints, Keys
from ._common import ENVIRONMENT, NOWHERE, Output, add_service_options, loopback_host

__all__ = ["add_config_parser", "run_config"]


def add_config_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "config", help="print the settings a command would use (keys redacted)",
        description="Print the effective settings: base URLs, where MiniMax is called, the "
                    "callback URL, which keys are set (a fingerprint, never the key), logging.")
    add_service_options(parser)


def _fingerprint(key: str | None) -> str:
    if not key:
        return "not set"
    return f"set (sha256 {hashlib.sha256(key.encode()).hexdigest()[:8]}, {len(key)} chars)"


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The effective settings, keys as fingerprints."""
    keys = Keys.resolve(aimlapi=args.aimlapi_key, minimax=args.minimax_key,
                        suno=args.suno_key)
    endpoints = Endpoints.local(args.base_url) if args.base_url else Endpoints()
    allowed = list(args.allow_http_host)
    host = loopback_host(args.base_url) if args.base_url else None
    if host is not None:
        allowed.append(host)
    return {
        "endpoints": {name: endpoints.for_service_name(name)
                      for name in ("aimlapi", "minimax", "suno", "suno_upload")},
        "minimax_via": args.via,
        "suno_callback_url": args.callback_url or os.environ.get("AIOMUSIC_SUNO_CALLBACK_URL")
        or NOWHERE,
        "allow_http_hosts": allowed,
        "allow_private_hosts": list(getattr(args, "allow_private_host", ())),
        "keys": {"AIMLAPI_KEY": _fingerprint(keys.aimlapi),
                 "MINIMAX_API_KEY": _fingerprint(keys.minimax),
                 "SUNO_API_KEY": _fingerprint(keys.suno)},
        "log": os.environ.get("AIOMUSIC_LOG") or "off",
        "emulator": bool(args.emulator),
    }


def run_config(args: argparse.Namespace) -> int:
    output = Output(json_mode=args.json, plain=True)
    found = settings(args)
    output.data(found)
    for name, value in found.items():
        if isinstance(value, dict):
            output.say(f"{name}:")
            for inner, shown in value.items():
                output.say(f"  {inner}: {shown}")
        else:
            output.say(f"{name}: {value}")
    output.say("environment read: " + ", ".join(name for name, _ in ENVIRONMENT))
    return 0
