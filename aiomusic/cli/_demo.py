"""``aiomusic demo``: a mixed batch on the embedded emulator, with faults absorbed.

It writes a reference track, a vocal track and the job file into the output folder, runs the
batch (MiniMax songs and Suno instrumentals) and prints the summary with the emulator's count
of paid submissions: one per job, never more.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio

from ..batch._jobfile import load_jobs
from ._batch import Drive, drive, finish
from ._common import EMULATOR_INSTALL, Output, emulated, emulator_timings

__all__ = ["run_demo"]

_VERSES = [
    "Side by side, through thick and thin", "Storms may come, but we stay true",
    "City lights and midnight trains", "Paper boats on silver rain",
    "Every road leads back to you", "Dancing shadows on the wall",
    "Coffee cups and open skies", "We were young and unafraid",
    "Hold the line and sing it loud", "Morning breaks on quiet streets",
    "Echoes of a summer song", "Lanterns drifting out to sea",
]
_STYLES = [("Harbour Lights", "piano, strings, cinematic", "heavy metal, distortion"),
           ("Night Drive", "synthwave, bass, drums", "acoustic, folk"),
           ("Sunday Morning", "acoustic guitar, soft, warm", "edm, aggressive"),
           ("Rooftops", "lo-fi, jazzy, mellow", "screaming, noise")]


def _lyrics(i: int) -> str:
    first = _VERSES[i % len(_VERSES)]
    second = _VERSES[(i * 5 + 3) % len(_VERSES)]
    # the song's number makes every song of any --songs count its own (the emulator's audio
    # is derived from the request)
    return f"##{first},\n{second}.\n\nLa la la, song number {i + 1}!##"


def write_demo_jobs(folder: Path, *, songs: int, instrumentals: int, seed: int) -> Path:
    """Write the demo's reference, vocal track and job file into ``folder``."""
    from ..emulator import sample_track

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "reference.wav").write_bytes(sample_track(14.0, seed=seed))
    (folder / "vocals.mp3").write_bytes(sample_track(12.0, format="mp3", seed=seed + 1))
    lines = [{"id": f"song-{i + 1:02d}", "service": "minimax", "lyrics": _lyrics(i),
              "reference": "reference.wav", "format": "mp3", "sample_rate": 44100,
              "bitrate": 128000} for i in range(songs)]
    for i in range(instrumentals):
        title, tags, negative = _STYLES[i % len(_STYLES)]
        lines.append({"id": f"instrumental-{i + 1:02d}", "service": "suno",
                      "source": "vocals.mp3", "title": title, "tags": tags,
                      "negative_tags": negative, "style_weight": 0.65, "audio_weight": 0.5})
    jobs = folder / "jobs.jsonl"
    jobs.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return jobs


def run_demo(*, out: str, songs: int, instrumentals: int, seed: int, plain: bool,
             json_mode: bool = False) -> int:
    """Run the demo; 0 when every job's audio was written, 1 otherwise."""
    output = Output(json_mode=json_mode, plain=plain)
    try:
        from ..emulator import Emulator, EmulatorConfig, Faults
    except ImportError as exc:
        output.error(f"the demo needs the emulator's extra ({exc.name or exc} is missing): "
                     f"{EMULATOR_INSTALL}")
        return 2
    folder = Path(out)
    jobs = load_jobs(write_demo_jobs(folder, songs=songs, instrumentals=instrumentals,
                                     seed=seed))
    # A few rejections and maintenance answers, to show them absorbed without a lost song.
    faults = Faults(rates={"rate_limit@aiml.generate": 0.2, "maintenance@aiml.generate": 0.1,
                           "server_error@aiml.upload": 0.3,
                           "maintenance@suno.add_instrumental": 0.25,
                           "rate_limit@suno.record_info": 0.1}, seed=seed)
    config = EmulatorConfig(timings=emulator_timings(), faults=faults,
                            track_seconds=(10.0, 20.0))
    with Emulator(config) as emu:
        output.say(f"Emulator of the AI/ML API, MiniMax and Suno running at {emu.url}")
        output.say(f"{len(jobs)} jobs ({songs} MiniMax songs, {instrumentals} Suno "
                   f"instrumentals) from {folder / 'jobs.jsonl'}")
        result = anyio.run(drive, Drive(emulated(emu.url), jobs, folder, None), output)
        paid = emu.counters.paid(operation="aiml.generate") + \
            emu.counters.paid(operation="suno.add_instrumental")
        fired = emu.counters.fired()
        # Reported before the emulator stops: a late Ctrl-C then loses nothing but the stop.
        status = finish(result, output, journal=None, again="aiomusic demo")
        output.say(f"faults the emulator fired: {fired}; paid submissions: {paid} for "
                   f"{len(jobs)} jobs" +
                   (" (no duplicate submissions)" if paid == len(jobs) else ""))
        output.data({"event": "emulator", "faults_fired": fired, "paid_submissions": paid})
        if status == 0:
            output.say(f"Listen: {folder}/song-01.mp3 - or run the same jobs yourself: "
                       f"aiomusic batch {folder / 'jobs.jsonl'} --out songs --emulator")
    return status
