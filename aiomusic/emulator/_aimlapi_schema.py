"""The AI/ML API async family's request schemas, as the emulated service checks them.

The emulator plays the service, so it keeps its own copy of the documented schemas (not the
client's declarations): a client bug then shows up as the service's own 400. Messages follow
the service's validator (zod): ``prompt: String must contain at most 300 character(s)``.
Unknown top-level keys are stripped, as zod does, so extra fields pass through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["PRICES", "SCHEMAS", "Schema", "check"]

SAMPLE_RATES = (16000, 24000, 32000, 44100)
BITRATES = (32000, 64000, 128000, 256000)
FORMATS = ("mp3", "wav", "pcm")


@attrs.frozen
class Field:
    kind: type
    required: bool = False
    min_len: int | None = None
    max_len: int | None = None
    minimum: int | None = None
    maximum: int | None = None


@attrs.frozen
class Schema:
    """One model: its fields, its ``audio_setting`` sample-rate key (None: no setting), what
    it answers with, its illustrative price, and when the service reports usage."""

    fields: Mapping[str, Field]
    setting_key: str | None = None
    fmt: str = "mp3"
    usd: float = 0.05
    reports_usd: bool = True
    usage_at_submit: bool = False  # MiniMax models: meta.usage from the first answer on
    reference: str | None = None  # "cover" (6 s-6 min, <= 50 MB) or "legacy" (> 15 s)


_P = Field(str, required=True)
_MM = {"prompt": Field(str, True, 10, 2000), "lyrics": Field(str, True, 10, 3000)}

SCHEMAS: Mapping[str, Schema] = {
    "stable-audio": Schema({"prompt": _P, "seconds_start": Field(int, minimum=1, maximum=47),
                            "seconds_total": Field(int, minimum=1, maximum=47),
                            "steps": Field(int, minimum=1, maximum=1000)},
                           fmt="wav", usd=0.04, reports_usd=False),
    "google/lyria2": Schema({"prompt": _P, "negative_prompt": Field(str),
                             "seed": Field(int, minimum=0)}, fmt="wav", usd=0.08,
                            reports_usd=False),
    "elevenlabs/eleven_music": Schema({"prompt": Field(str, True, max_len=2000),
                                       "music_length_ms": Field(int, minimum=10_000,
                                                                maximum=300_000)}, usd=0.3),
    "minimax/music-1.5": Schema({**_MM, "prompt": Field(str, True, 10, 300)},
                                setting_key="audio_sample_rate", usd=0.03,
                                usage_at_submit=True),
    "minimax/music-2.0": Schema(_MM, setting_key="audio_sample_rate", usd=0.039,
                                usage_at_submit=True),
    "minimax/music-2.6": Schema({"prompt": Field(str, max_len=2000),
                                 "lyrics": Field(str, max_len=3000),
                                 "is_instrumental": Field(bool),
                                 "lyrics_optimizer": Field(bool)},
                                setting_key="audio_sample_rate", usd=0.195,
                                usage_at_submit=True),
    "minimax/music-cover": Schema({**_MM, "lyrics": Field(str, False, 10, 3000),
                                   "reference_audio_url": Field(str, required=True)},
                                  setting_key="sample_rate", usd=0.195, usage_at_submit=True,
                                  reference="cover"),
    "minimax-music": Schema({"prompt": Field(str, True), "reference_audio_url": _P},
                            usd=0.035, reports_usd=False, reference="legacy"),
}
#: AI/ML credits per US dollar (the docs' example: 390,000 credits = $0.195).
CREDITS_PER_USD = 2_000_000
PRICES = {name: s.usd for name, s in SCHEMAS.items()}


def _field(name: str, value: Any, spec: Field) -> str | None:
    kind = {str: "string", int: "number", bool: "boolean"}[spec.kind]
    if not isinstance(value, spec.kind) or (spec.kind is int and isinstance(value, bool)):
        return f"{name}: Expected {kind}, received {type(value).__name__}"
    if isinstance(value, str):
        if spec.min_len is not None and len(value) < spec.min_len:
            return f"{name}: String must contain at least {spec.min_len} character(s)"
        if spec.max_len is not None and len(value) > spec.max_len:
            return f"{name}: String must contain at most {spec.max_len} character(s)"
    if isinstance(value, int) and not isinstance(value, bool):
        if spec.minimum is not None and value < spec.minimum:
            return f"{name}: Number must be greater than or equal to {spec.minimum}"
        if spec.maximum is not None and value > spec.maximum:
            return f"{name}: Number must be less than or equal to {spec.maximum}"
    return None


def _setting(value: Any, key: str) -> list[str]:
    if not isinstance(value, dict):
        return ["audio_setting: Expected object"]
    issues = []
    extra = sorted(set(value) - {"format", "bitrate", key})
    if extra:
        issues.append("audio_setting: Unrecognized key(s) in object: "
                      + ", ".join(f"'{k}'" for k in extra))
    if value.get("format") not in FORMATS:
        issues.append("audio_setting.format: Invalid enum value. Expected 'mp3' | 'wav' | "
                      f"'pcm', received {value.get('format')!r}")
    for name, allowed in ((key, SAMPLE_RATES), ("bitrate", BITRATES)):
        if name in value and value[name] not in allowed:
            issues.append(f"audio_setting.{name}: Invalid enum value, received "
                          f"{value[name]!r}")
    return issues


def check(body: Any) -> tuple[Schema | None, list[str]]:
    """(the model's schema, every issue of the body): an empty list means valid."""
    if not isinstance(body, dict):
        return None, ["Expected object"]
    schema = SCHEMAS.get(body.get("model"))  # type: ignore[arg-type]
    if schema is None:
        names = " | ".join(f"'{m}'" for m in SCHEMAS)
        return None, [f"model: Invalid enum value. Expected {names}, received "
                      f"{body.get('model')!r}"]
    issues = []
    for name, spec in schema.fields.items():
        if body.get(name) is None:
            if spec.required:
                issues.append(f"{name}: Required")
            continue
        issue = _field(name, body[name], spec)
        if issue:
            issues.append(issue)
    if "audio_setting" in body and schema.setting_key is not None:
        issues.extend(_setting(body["audio_setting"], schema.setting_key))
    if body["model"] == "minimax/music-2.6" and not body.get("lyrics") and \
            body.get("is_instrumental") is not True and body.get("lyrics_optimizer") is not True:
        issues.append("lyrics: Required unless is_instrumental or lyrics_optimizer is true")
    return schema, issues
