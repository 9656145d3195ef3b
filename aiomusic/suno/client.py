"""The Suno side of a session: ``session.suno``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _protocol as proto

if TYPE_CHECKING:
    from .._retry import RetryPolicy
    from .._session import MusicSession

__all__ = ["SunoClient"]


class SunoClient:
    """Suno API calls of one :class:`~aiomusic.MusicSession`."""

    def __init__(self, session: MusicSession) -> None:
        self._session = session

    async def get_credits(self, *, timeout: float | None = None,
                          retry: RetryPolicy | None = None) -> int:
        """The account's remaining credits.

        Raises:
            AuthenticationError: the key was refused.
            AiomusicError: any other failure, typed.
        """
        body = await self._session._send(proto.credits_call(), timeout=timeout, retry=retry)
        return proto.parse_credits(body)
