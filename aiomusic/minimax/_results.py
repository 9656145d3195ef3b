"""What the current MiniMax music calls return: frozen models, read from the answers elsewhere."""

from __future__ import annotations

import datetime as dt

import attrs

from .._core._errors import DownloadError
from .._core._models import ExtraInfo, GenerationResult

__all__ = [
    "CoverFeatures",
    "LinkDownloadError",
    "Lyrics",
    "ModelQuota",
    "MusicLink",
    "Quota",
    "SongResult",
    "WrittenSong",
]

#: How long MiniMax keeps a song's link (``output_format="url"``): "download promptly".
LINK_LIFETIME = dt.timedelta(hours=24)


@attrs.frozen
class MusicLink:
    """A generated song left at the service, as a link (``output_format="url"``).

    Attributes:
        url: The link, signed: treat it like a password until it expires.
        expires_at: When it stops working: the link's own ``Expires`` when it has one, else
            24 hours after the answer, as MiniMax documents.
        model: The model that made it.
        extra_info: What the service says about the audio.
        trace_id: The service's trace id.
    """

    url: str = attrs.field(repr=False)
    expires_at: dt.datetime
    model: str
    extra_info: ExtraInfo = attrs.field(factory=ExtraInfo)
    trace_id: str | None = None

    def expired(self, *, now: dt.datetime | None = None,
                margin: dt.timedelta = dt.timedelta(minutes=5)) -> bool:
        """Whether the link no longer works (or will not within ``margin``)."""
        return (now or dt.datetime.now(dt.UTC)) + margin >= self.expires_at


@attrs.frozen
class SongResult(GenerationResult):
    """A finished generation of a current model (a `GenerationResult` with more to say).

    Attributes:
        model: The model that made it.
        streamed: Whether it arrived as server-sent events (``stream=True``).
        time_to_first_audio: Seconds from sending the request to the first decoded audio
            byte (streamed generations; ``None`` otherwise).
        link: The link it was downloaded from (``output_format="url"``).
    """

    model: str = ""
    streamed: bool = False
    time_to_first_audio: float | None = None
    link: MusicLink | None = None


@attrs.frozen
class Lyrics:
    """Lyrics written (or edited) by ``/v1/lyrics_generation``, ready for a generation.

    Attributes:
        title: The song's title (yours, when you gave one).
        style_tags: The styles the service suggests, in its order.
        lyrics: The lyrics, with structure tags (``[Verse]``, ``[Chorus]``...).
        trace_id: The service's trace id.
    """

    title: str
    style_tags: tuple[str, ...]
    lyrics: str
    trace_id: str | None = None

    @property
    def style(self) -> str:
        """The style tags as one prompt (``"indie folk, warm, acoustic guitar"``)."""
        return ", ".join(self.style_tags)


@attrs.frozen
class CoverFeatures:
    """A reference track prepared for a two-step cover (``/v1/music_cover_preprocess``).

    Attributes:
        feature_id: Pass it as ``cover_feature_id`` to a generation.
        lyrics: The lyrics the service heard in the track: edit them, then pass them on.
        structure: The service's reading of the track's sections, when it gives one.
        duration: Seconds of the reference, when given.
        trace_id: The service's trace id.
    """

    feature_id: str
    lyrics: str = ""
    structure: str | None = None
    duration: float | None = None
    trace_id: str | None = None


@attrs.frozen
class ModelQuota:
    """One model's allowance on a Token Plan (``/v1/token_plan/remains``).

    Attributes:
        model: The model (or model family) the allowance is for.
        total: Calls allowed in the current interval.
        used: Calls used in it.
        interval_start: When the interval began.
        interval_end: When it ends (and the allowance comes back).
        weekly_total: Calls allowed this week, when the plan has a weekly cap.
        weekly_used: Calls used this week.
    """

    model: str
    total: int
    used: int
    interval_start: dt.datetime | None = None
    interval_end: dt.datetime | None = None
    weekly_total: int | None = None
    weekly_used: int | None = None

    @property
    def remaining(self) -> int:
        """Calls left in the current interval (and week, when there is a weekly cap)."""
        left = max(0, self.total - self.used)
        if self.weekly_total is not None:
            left = min(left, max(0, self.weekly_total - (self.weekly_used or 0)))
        return left


@attrs.frozen
class Quota:
    """What a MiniMax key may still use (free to ask).

    Attributes:
        models: One allowance per model, in the service's order.
        trace_id: The service's trace id.
    """

    models: tuple[ModelQuota, ...]
    trace_id: str | None = None

    def for_model(self, model: str) -> ModelQuota | None:
        """The allowance of ``model`` (exactly, else the first whose name it starts with)."""
        for entry in self.models:
            if entry.model == model:
                return entry
        return next((e for e in self.models if model.startswith(e.model)), None)


@attrs.frozen
class WrittenSong:
    """Lyrics written by the service, and the song generated from them.

    Attributes:
        lyrics: What `write_lyrics()` gave.
        song: The generation.
    """

    lyrics: Lyrics
    song: SongResult


class LinkDownloadError(DownloadError):
    """A song was generated (and paid for) as a link, but downloading it failed.

    The link still works until ``link.expires_at``: fetch it again with
    ``session.minimax.download_link(error.link, path)`` instead of generating again.

    Attributes:
        link: The song's link.
    """

    def __init__(self, message: str, *, link: MusicLink, url: str,
                 retryable: bool = False) -> None:
        super().__init__(message, url=url, retryable=retryable)
        self.link = link
