"""The FastAPI example's page in a real browser: headless Chromium, driven by Playwright.

The example is served as in ``tests/test_fastapi_example.py`` (uvicorn in a thread, the emulator
behind it). The emulator takes ``GENERATION`` seconds per song and streams it over that time,
as MiniMax's current models do, so "the page plays the song while it is generated" can be
checked against the emulator's own timeline: the browser records when audio data arrived and
when playback started and advanced, a thread records when the emulator finished its answer,
and the first must come before the second.

Chromium is Debian's (``apt-get install chromium``; Playwright's own browser download cannot
work here), launched with the flags that work on this machine. Without Chromium or the
``playwright`` package the test is skipped with the reason, and fails when ``CI=true``
(``tests/servers.py``); ``.ci/run`` installs Chromium.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from aiomusic.emulator import Emulator, EmulatorConfig, Limits, Timings

from .reliability_helpers import FAST
from .servers import unavailable
from .test_fastapi_example import KEY, serve

CHROMIUM = Path("/usr/bin/chromium")
# --headless comes from Playwright; the rest keep Chromium off this machine's closed network
# (it would retry Google's hosts at every start) and let the page play without a click.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required"]
GENERATION = 10.0  # seconds per song at the emulator: its first audio comes after 30 % of it
GUARD_MS = 30_000  # a hang guard for each wait in the browser, not a timing assertion

# Installed before the page's own script: the first time each media event fired (wall clock,
# in ms, as time.time() counts), and the first time playback had advanced.
RECORDER = """
window.seen = {};
document.addEventListener("DOMContentLoaded", () => {
  const player = document.querySelector("audio");
  const note = name => { if (!(name in window.seen)) window.seen[name] = Date.now(); };
  for (const name of ["loadeddata", "playing"]) player.addEventListener(name, () => note(name));
  player.addEventListener("timeupdate", () => { if (player.currentTime > 0) note("advanced"); });
});
"""


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Playwright's Chromium type, pointed at Debian's Chromium."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the browser test needs Playwright: pip install -e '.[dev]'")
    if not CHROMIUM.is_file():
        unavailable(f"the browser test needs Chromium at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as playwright:
        yield playwright.chromium


@pytest.fixture(scope="module")
def paced() -> Iterator[Emulator]:
    config = EmulatorConfig(timings=Timings(generate=GENERATION), limits=Limits.off(),
                            track_seconds=(40.0, 40.0))
    with Emulator(config) as emu:
        yield emu


@contextmanager
def generations(emulator: Emulator) -> Iterator[list[tuple[float, float]]]:
    """The emulator's timeline: (start, end) of each answer, by time.time(), from its count
    of requests in flight (it counts one down after the last byte of the answer went out)."""
    spans: list[tuple[float, float]] = []
    stop = threading.Event()

    def watch() -> None:
        began = None
        while not stop.is_set():
            busy = emulator.app.state.in_flight[KEY] > 0
            if busy and began is None:
                began = time.time()
            elif not busy and began is not None:
                spans.append((began, time.time()))
                began = None
            time.sleep(0.002)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield spans
    finally:
        stop.set()
        thread.join()


@pytest.mark.timeout(60)
def test_the_page_plays_a_song_while_it_is_generated(chromium: Any, paced: Emulator,
                                                     tmp_path: Path) -> None:
    paced.reset()
    context = chromium.launch_persistent_context(
        tmp_path / "profile", executable_path=str(CHROMIUM), headless=True, args=FLAGS,
        viewport={"width": 900, "height": 760})
    context.set_default_timeout(GUARD_MS)
    try:
        with serve(paced, tmp_path) as served, generations(paced) as spans:
            page = context.new_page()
            page.add_init_script(RECORDER)
            answer = page.goto(served.url + "/")
            assert answer is not None and answer.ok, "the example serves its page at /"
            page.fill("#prompt", "dream pop, hazy guitars")
            page.click("button[type=submit]")
            page.wait_for_function("'advanced' in window.seen")
            status = page.locator("#status")
            assert "while the rest is still being generated" in status.inner_text()
            page.screenshot(path=tmp_path / "playing.png")
            page.wait_for_function(
                "document.getElementById('status').textContent.includes('has arrived')")
            page.screenshot(path=tmp_path / "done.png")
            seen: dict[str, float] = page.evaluate("window.seen")
            (job,) = served.music.songs.values()
            # what the page checks itself never reaches the app
            page.fill("#lyrics", "")
            page.click("button[type=submit]")
            assert status.inner_text() == "Write some lyrics, or tick Instrumental."
            # a busy service: the app's 503 (after the library's retries) reads as such
            paced.inject("rate_limit", operation="minimax.generate", count=FAST.max_attempts)
            page.check("#instrumental")
            page.click("button[type=submit]")
            page.wait_for_function("document.getElementById('status').className === 'error'")
            busy = status.inner_text()
            page.screenshot(path=tmp_path / "busy.png")
        (start, end) = (s * 1000 for s in spans[0])
        # audio arrived, and playback started and advanced, while the emulator was generating
        assert start < seen["loadeddata"] < end, (spans, seen)
        assert seen["loadeddata"] <= seen["playing"] <= seen["advanced"] < end, (spans, seen)
        assert job.status == "done" and job.result.bytes_written > 0
        assert busy.startswith("The music service is busy: try again in"), busy
        assert [j.status for j in served.music.songs.values()] == ["done", "failed"]
    finally:
        context.close()
    assert len(spans) == 1  # one song generated: the others never reached the service
    assert paced.counters.paid(operation="minimax.generate") == 1
