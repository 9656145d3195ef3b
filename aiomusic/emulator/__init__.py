"""A local emulator of the AI/ML API (music-01), MiniMax music and the Suno API.

Start it in-process with `Emulator` (``with`` or ``async with``), from the command
line with ``aiomusic emulator`` / ``python -m aiomusic.emulator``, or mount
`create_app()` in any ASGI server (with lifespan on). See docs/emulator.md.
"""

from __future__ import annotations

from ._app import EmulatorApp, create_app
from ._audio import sample_track
from ._config import FAULT_KINDS, OPERATIONS, EmulatorConfig, Faults, Limits, Timings
from ._runner import Emulator
from ._state import Counters

__all__ = [
    "FAULT_KINDS",
    "OPERATIONS",
    "Counters",
    "Emulator",
    "EmulatorApp",
    "EmulatorConfig",
    "Faults",
    "Limits",
    "Timings",
    "create_app",
    "sample_track",
]
