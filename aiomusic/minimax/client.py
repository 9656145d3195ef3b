"""The MiniMax side of a session: ``session.minimax``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._session import MusicSession

__all__ = ["MiniMaxClient"]


class MiniMaxClient:
    """MiniMax music-01 calls of one :class:`~aiomusic.MusicSession`."""

    def __init__(self, session: MusicSession) -> None:
        self._session = session
