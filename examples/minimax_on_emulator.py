"""Upload a reference and generate a song with MiniMax music-01, against the local emulator.

Run it with ``python examples/minimax_on_emulator.py``; it needs ``pip install "aiomusic[all]"``.
Against the real AI/ML API, drop the emulator and ``base_url``, and set ``AIMLAPI_KEY``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

import aiomusic
from aiomusic.emulator import Emulator
from aiomusic.emulator._audio import render

LYRICS = "##Side by side, through thick and thin,\n\nFriends forever, me and you!##"


async def make_song(base_url: str, folder: Path) -> aiomusic.GenerationResult:
    reference = folder / "reference.wav"
    reference.write_bytes(render(1, 12.0, fmt="wav", sample_rate=22050, channels=1,
                                 bitrate=128000).data)
    async with aiomusic.MusicSession(base_url=base_url, aimlapi_key="any-key") as session:
        ref = await session.minimax.upload_reference(reference, purpose="song")
        return await session.minimax.generate(
            folder / "song.mp3",
            lyrics=LYRICS,
            refer_voice=ref.voice_id,
            refer_instrumental=ref.instrumental_id,
            audio_setting=aiomusic.AudioSetting(format="mp3", sample_rate=44100, bitrate=128000),
        )


def main(folder: Path) -> None:
    with Emulator() as emu:
        result = anyio.run(make_song, emu.url, folder)
    print(f"wrote {result.path}: {result.bytes_written} bytes, {result.duration:.1f} s, "
          f"sha256 {result.sha256}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
