"""A separate process using a shared lane, for tests/test_shared_lanes.py.

``python -m tests.shared_lane_child URL KEY MODE N BACKEND``; the lane's configuration comes as
JSON in ``LANE_CONFIG``. Modes:

- ``run``: N requests through the lane, each holding its permit a moment; prints the starts
  and, per request, the store's time at its start and while still holding the permit (JSON).
- ``hold``: takes N permits, prints ``held``, and sleeps until killed.
"""

from __future__ import annotations

import json
import os
import sys

import anyio

from aiomusic import LaneConfig, PostgresLanes, RedisLanes
from aiomusic._core._lane_store import LaneRef, LaneStore, fingerprint
from aiomusic._core._shared_lanes import SharedLane


def make_store(url: str, **options: float) -> LaneStore:
    if url.startswith("redis"):
        return RedisLanes(url, **options)
    return PostgresLanes(url, **options)


def shared_lane(store: LaneStore, key: str, config: LaneConfig) -> SharedLane:
    ref = LaneRef(ident=f"{fingerprint(key)}:suno.poll", config=config)
    return SharedLane("suno.poll", config, store, ref)


async def run(lane: SharedLane, store: LaneStore, n: int, hold: float) -> list[list[float]]:
    spans: list[list[float]] = []

    async def one() -> None:
        async with lane.permit() as permit:
            await anyio.sleep(hold)
            seen = await anyio.to_thread.run_sync(store.observe, lane._ref)
            spans.append([permit.sent_at, seen.now])
            lane.succeeded(permit)

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return spans


async def hold(lane: SharedLane, n: int) -> None:
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            async def keep() -> None:
                async with lane.permit():
                    await anyio.sleep(3600)
            tg.start_soon(keep)
        while lane.sending < n:
            await anyio.sleep(0.01)
        print("held", flush=True)


def main(argv: list[str]) -> int:
    url, key, mode, n, backend = argv
    options = json.loads(os.environ.get("LANE_OPTIONS", "{}"))
    config = LaneConfig(**json.loads(os.environ["LANE_CONFIG"]))
    with make_store(url, **options) as store:
        lane = shared_lane(store, key, config)
        if mode == "run":
            spans = anyio.run(run, lane, store, int(n), 0.02, backend=backend)
            print(json.dumps(spans))
        else:
            anyio.run(hold, lane, int(n), backend=backend)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
