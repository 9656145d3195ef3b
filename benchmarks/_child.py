"""One measured case in a fresh process: ``python -m benchmarks._child MODULE KIND PARAMS``.

Every case process imports the same modules before it runs anything, so the baseline process
(``_child baseline``) has exactly the imports of the cases it is subtracted from. The case
prints one JSON line: what it measured, plus ``peak_kib`` (peak RSS) and ``rss_kib``.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
import anyio.to_thread
import httpx

import aiomusic
import aiomusic.minimax.client
import aiomusic.suno.client

from . import _common, _goodput, _overhead, _tasks, _transfer  # noqa: F401 - same imports

Case = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]

__all__ = ["BASELINES", "main"]


async def baseline(params: dict[str, Any]) -> dict[str, Any]:
    """An idle process: the imports and an event loop, nothing else."""
    return {}


async def baseline_warm(params: dict[str, Any]) -> dict[str, Any]:
    """The fixed costs every case pays whatever its size: an httpx client (its SSL context),
    one small request (httpx's lazily imported transport modules) and one worker thread."""
    async with httpx.AsyncClient() as client:
        (await client.get(params["url"] + "/_emulator/health")).raise_for_status()
    await anyio.to_thread.run_sync(lambda: None)
    return {}


BASELINES: Mapping[str, Case] = {"baseline": baseline, "baseline-warm": baseline_warm}


def main(argv: list[str]) -> int:
    module, kind, raw = argv
    params: dict[str, Any] = json.loads(raw)
    if module == "baseline":
        case = BASELINES[kind]
    else:
        cases: Mapping[str, Case] = importlib.import_module(f"benchmarks.{module}").CASES
        case = cases[kind]

    async def run() -> dict[str, Any]:
        return await case(params)

    before = resource.getrusage(resource.RUSAGE_SELF)
    result = anyio.run(run)
    after = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_seconds"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["peak_kib"] = _common.peak_rss_kib()
    result["rss_kib"] = _common.rss_kib()
    result["aiomusic"] = aiomusic.__version__
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
