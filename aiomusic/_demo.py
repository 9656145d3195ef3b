"""``aiomusic demo``: a batch of songs on the embedded emulator, with faults absorbed."""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import attrs

from ._errors import AiomusicError
from ._events import Event, PauseStarted, RetryScheduled
from ._models import AudioSetting, GenerationResult
from ._retry import RetryPolicy
from ._session import MusicSession

__all__ = ["run_demo"]

_VERSES = [
    "Side by side, through thick and thin", "Storms may come, but we stay true",
    "City lights and midnight trains", "Paper boats on silver rain",
    "Every road leads back to you", "Dancing shadows on the wall",
    "Coffee cups and open skies", "We were young and unafraid",
    "Hold the line and sing it loud", "Morning breaks on quiet streets",
    "Echoes of a summer song", "Lanterns drifting out to sea",
]
_DEMO_KEY = "aiomusic-demo-key"


@attrs.frozen
class Outcome:
    name: str
    result: GenerationResult | None = None
    error: AiomusicError | None = None


def _lyrics(i: int) -> str:
    first = _VERSES[i % len(_VERSES)]
    second = _VERSES[(i * 5 + 3) % len(_VERSES)]
    return f"##{first},\n{second}.\n\nLa la la, here we go again!##"


def run_demo(*, out: str, songs: int, seed: int, plain: bool) -> int:
    """Run the demo; returns 0 when every song was written, 1 otherwise."""
    try:
        from .emulator import Emulator, EmulatorConfig, Faults, Timings
        from .emulator._audio import render
    except ImportError as exc:
        print(f"aiomusic demo needs the emulator extra: pip install 'aiomusic[emulator]' "
              f"({exc})", file=sys.stderr)
        return 2
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    reference = folder / "reference.wav"
    reference.write_bytes(render(seed, 14.0, fmt="wav", sample_rate=22050, channels=1,
                                 bitrate=128000).data)
    # A few rejections and maintenance answers, to show them absorbed without a lost song.
    faults = Faults(rates={"rate_limit@aiml.generate": 0.2, "maintenance@aiml.generate": 0.1,
                           "server_error@aiml.upload": 0.3}, seed=seed)
    config = EmulatorConfig(timings=Timings(generate=0.8), faults=faults,
                            track_seconds=(10.0, 20.0))
    say = _printer(plain)
    with Emulator(config) as emu:
        say(f"Emulator of the AI/ML API, MiniMax and Suno running at {emu.url}")
        started = time.perf_counter()
        outcomes, events = anyio.run(_batch, emu.url, reference, folder, songs)
        wall = time.perf_counter() - started
        paid = emu.counters.paid(operation="aiml.generate")
        fired = emu.counters.faults
    ok = [o for o in outcomes if o.result is not None]
    for outcome in outcomes:
        if outcome.result is not None:
            r = outcome.result
            say(f"  ok    {outcome.name}: {r.bytes_written / 1024:7.1f} KiB, "
                f"{(r.duration or 0):5.1f} s of audio, sha256 {(r.sha256 or '')[:12]}")
        else:
            say(f"  FAIL  {outcome.name}: {type(outcome.error).__name__}: {outcome.error}")
    retries = Counter(e.reason for e in events if isinstance(e, RetryScheduled))
    pauses = sum(1 for e in events if isinstance(e, PauseStarted))
    say("")
    say(f"{len(ok)} of {len(outcomes)} songs written to {folder}/ in {wall:.1f} s "
        f"({len(ok) / wall * 60:.0f} songs per minute)")
    absorbed = ", ".join(f"{n} x {reason}" for reason, n in sorted(retries.items())) or "none"
    say(f"retries absorbed: {absorbed}; lane pauses: {pauses}")
    say(f"faults the emulator fired: {sum(fired.values())}; paid generations: {paid} "
        f"for {len(ok)} songs (no duplicate submissions)" if paid == len(outcomes) else
        f"faults fired: {sum(fired.values())}; paid generations: {paid}")
    return 0 if len(ok) == len(outcomes) else 1


async def _batch(url: str, reference: Path, folder: Path, songs: int
                 ) -> tuple[list[Outcome], list[Event]]:
    events: list[Event] = []
    outcomes: list[Outcome] = []
    retry = RetryPolicy(base_delay=0.2, max_delay=2.0, maintenance_delay=0.5)
    async with MusicSession(aimlapi_key=_DEMO_KEY, base_url=url, retry=retry,
                            on_event=events.append) as session:
        ref = await session.minimax.upload_reference(reference, purpose="song")

        async def one(i: int) -> None:
            name = f"song-{i + 1:02d}.mp3"
            try:
                result = await session.minimax.generate(
                    folder / name, lyrics=_lyrics(i), refer_voice=ref.voice_id,
                    refer_instrumental=ref.instrumental_id,
                    audio_setting=AudioSetting(format="mp3", sample_rate=44100,
                                               bitrate=128000),
                    timeout=120)
                outcomes.append(Outcome(name, result=result))
            except AiomusicError as exc:
                outcomes.append(Outcome(name, error=exc))

        async with anyio.create_task_group() as tg:
            for i in range(songs):
                tg.start_soon(one, i)
    outcomes.sort(key=lambda o: o.name)
    return outcomes, events


def _printer(plain: bool) -> Any:
    if plain or not sys.stdout.isatty():
        return lambda text: print(text, flush=True)
    try:
        from rich.console import Console
    except ImportError:
        return lambda text: print(text, flush=True)
    console = Console(highlight=False)
    return lambda text: console.print(text, markup=False)
