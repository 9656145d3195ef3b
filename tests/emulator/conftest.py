from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from emu_helpers import KEY

from aiomusic.emulator import Emulator
from aiomusic.testing import (  # noqa: F401 - fixtures
    emulator,
    emulator_config,
    emulator_factory,
    emulator_session,
)


@pytest.fixture
def client(emulator: Emulator) -> Iterator[httpx.Client]:  # noqa: F811
    with httpx.Client(
        base_url=emulator.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30
    ) as c:
        yield c
