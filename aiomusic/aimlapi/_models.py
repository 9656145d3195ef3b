"""The AI/ML API's music models on ``POST /v2/generate/audio``, one declaration each.

Each `Model` lists the fields its schema documents, with their limits (api-contracts.md §1.4,
api-contracts-2026-11.md §2). The validator (``_ops.py``) checks a request against its model's
own rules, the docs' model table is checked against these declarations, and a model id that is
not here passes through unchecked (the service decides).
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from .._core._models import BITRATES, SAMPLE_RATES

__all__ = ["FORMATS", "MODELS", "Model", "Rule"]

FORMATS = ("mp3", "wav", "pcm")


@attrs.frozen
class Rule:
    """One field as one model documents it.

    Attributes:
        name: The field (the job file's and the command line's name, and the wire name except
            for ``format``, ``sample_rate`` and ``bitrate``, which go into ``audio_setting``).
        required: Whether the model requires it.
        min_length: The fewest characters of a text.
        max_length: The most characters of a text.
        minimum: The smallest number.
        maximum: The largest number.
        choices: The allowed values.
        default: The service's default, for the docs.
    """

    name: str
    required: bool = False
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[object, ...] = ()
    default: object = None

    def describe(self) -> str:
        """The limits in words, for the docs' table (``10-300 characters``, ``1-47``...)."""
        parts = []
        if self.max_length is not None:
            parts.append(f"{self.min_length}-{self.max_length} characters"
                         if self.min_length is not None else
                         f"at most {self.max_length} characters")
        if self.minimum is not None or self.maximum is not None:
            parts.append(f"{self.minimum:g}-{self.maximum:g}" if self.maximum is not None
                         else f">= {self.minimum:g}")
        if self.choices:
            parts.append("/".join(str(c) for c in self.choices))
        if self.default is not None:
            parts.append(f"default {str(self.default).lower()}")
        return ", ".join(parts)


@attrs.frozen
class Model:
    """One model of the asynchronous family.

    Attributes:
        name: The model id (``minimax/music-2.6``).
        vendor: Who makes it.
        summary: One line for the docs.
        rules: Its documented fields (``model`` itself excepted).
        sample_rate_key: The key of the sample rate inside ``audio_setting``
            (``audio_sample_rate`` on music-1.5/2.0/2.6, ``sample_rate`` on music-cover), or
            ``None`` when the model takes no ``audio_setting``.
        suffix: The file type it answers with by default.
        timeout: How long the docs' own examples wait for it, in seconds.
    """

    name: str
    vendor: str
    summary: str
    rules: tuple[Rule, ...]
    sample_rate_key: str | None = None
    suffix: str = ".mp3"
    timeout: float = 1000.0

    def rule(self, name: str) -> Rule | None:
        """The rule of field ``name``, if the model documents it."""
        return next((r for r in self.rules if r.name == name), None)


def _audio_setting() -> tuple[Rule, ...]:
    return (Rule("format", choices=FORMATS, default="mp3"),
            Rule("sample_rate", choices=SAMPLE_RATES, default=44100),
            Rule("bitrate", choices=BITRATES, default=256000))


_LYRICS = Rule("lyrics", required=True, min_length=10, max_length=3000)

_ALL = (
    Model("stable-audio", "Stability AI",
          "Stable Audio: sounds and music clips of up to 47 s (WAV)",
          (Rule("prompt", required=True),
           Rule("seconds_start", minimum=1, maximum=47),
           Rule("seconds_total", minimum=1, maximum=47, default=30),
           Rule("steps", minimum=1, maximum=1000, default=100)),
          suffix=".wav", timeout=600.0),
    Model("google/lyria2", "Google", "Lyria 2: instrumental music from a prompt (WAV)",
          (Rule("prompt", required=True), Rule("negative_prompt"), Rule("seed", minimum=0)),
          suffix=".wav", timeout=600.0),
    Model("elevenlabs/eleven_music", "ElevenLabs",
          "Eleven Music: songs of 10 s to 5 min from a prompt (the length is a hint)",
          (Rule("prompt", required=True, max_length=2000),
           Rule("music_length_ms", minimum=10_000, maximum=300_000, default=10_000))),
    Model("minimax/music-1.5", "MiniMax", "music-1.5: songs of up to about 4 min",
          (Rule("prompt", required=True, min_length=10, max_length=300), _LYRICS,
           *_audio_setting()),
          sample_rate_key="audio_sample_rate", timeout=600.0),
    Model("minimax/music-2.0", "MiniMax", "music-2.0: songs from a prompt and lyrics",
          (Rule("prompt", required=True, min_length=10, max_length=2000), _LYRICS,
           *_audio_setting()),
          sample_rate_key="audio_sample_rate"),
    Model("minimax/music-2.6", "MiniMax",
          "music-2.6: songs, instrumentals, or lyrics written from the prompt",
          (Rule("prompt", max_length=2000), Rule("lyrics", max_length=3000),
           Rule("is_instrumental", default=False), Rule("lyrics_optimizer", default=False),
           *_audio_setting()),
          sample_rate_key="audio_sample_rate"),
    Model("minimax/music-cover", "MiniMax",
          "music-cover: a new performance of a reference track (6 s-6 min, <= 50 MB)",
          (Rule("prompt", required=True, min_length=10, max_length=2000),
           Rule("lyrics", min_length=10, max_length=3000),
           Rule("reference_audio_url", required=True), *_audio_setting()),
          sample_rate_key="sample_rate"),
    Model("minimax-music", "MiniMax",
          "legacy: a 1-min song in the style of a reference (> 15 s); the prompt is sung",
          (Rule("prompt", required=True, max_length=600),
           Rule("reference_audio_url", required=True)),
          timeout=600.0),
)

#: Every documented model, by id, in the docs' order.
MODELS: Mapping[str, Model] = {m.name: m for m in _ALL}
