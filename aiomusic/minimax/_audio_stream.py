"""`AudioStream`: a generation's decoded audio as an async iterator (music-01's `stream()`
and the current models' `stream_song()` / `stream_cover()` hand one out)."""

from __future__ import annotations

import anyio
import anyio.abc

from .._core._errors import AiomusicError
from .._core._models import GenerationResult

__all__ = ["AudioStream"]


class AudioStream:
    """Decoded audio bytes of a generation, as an async iterator; `result` at the end."""

    def __init__(self, receive: anyio.abc.ObjectReceiveStream[bytes]) -> None:
        self._receive = receive
        self.result: GenerationResult | None = None
        self.error: AiomusicError | None = None

    def __aiter__(self) -> AudioStream:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            if self.error is not None:
                raise self.error from None
            raise StopAsyncIteration from None
