"""pytest fixtures that run the aiomusic emulator for your own tests.

Not registered as a plugin: import the fixtures you want in your ``conftest.py``::

    from aiomusic.testing import emulator, emulator_config, emulator_factory, emulator_session

    # optional: change the shared emulator's config
    @pytest.fixture(scope="session")
    def emulator_config():
        return EmulatorConfig(limits=Limits.off())

Fixtures:
    emulator_config: session-scoped `EmulatorConfig` for the shared emulator (instant
        timings, default limits). Override it to change the shared emulator.
    emulator_session: one running `Emulator` for the whole session (startup ~0.2 s).
    emulator: the shared emulator, reset before each test (counters, uploads, tasks,
        credits, injected faults and rate windows start empty; faults and limits changed
        with `set_faults` / `set_limits` go back to the config).
    emulator_factory: ``emulator_factory(config)`` starts a private emulator that stops at
        the end of the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from .emulator import Emulator, EmulatorConfig, Timings

__all__ = ["emulator", "emulator_config", "emulator_factory", "emulator_session"]


@pytest.fixture(scope="session")
def emulator_config() -> EmulatorConfig:
    """The shared emulator's config: no waiting, default limits, no random faults."""
    return EmulatorConfig(timings=Timings.instant())


@pytest.fixture(scope="session")
def emulator_session(emulator_config: EmulatorConfig) -> Iterator[Emulator]:
    """One emulator for the whole test session."""
    with Emulator(emulator_config) as emu:
        yield emu


@pytest.fixture
def emulator(emulator_session: Emulator) -> Emulator:
    """The shared emulator, reset to its config before the test."""
    emulator_session.reset()
    return emulator_session


@pytest.fixture
def emulator_factory() -> Iterator[Callable[[EmulatorConfig], Emulator]]:
    """Start private emulators with their own config; all stop after the test."""
    started: list[Emulator] = []

    def start(config: EmulatorConfig | None = None) -> Emulator:
        emu = Emulator(config).start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()
