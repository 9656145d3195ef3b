"""Configuration of the emulator: timings, limits, faults and the whole config."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

__all__ = ["FAULT_KINDS", "OPERATIONS", "EmulatorConfig", "Faults", "Limits", "Timings"]

#: Every operation the emulator serves; faults can target one or a dotted prefix ("suno").
OPERATIONS = (
    "aiml.upload",
    "aiml.generate",
    "aiml.audio.submit",
    "aiml.audio.status",
    "aiml.audio.download",
    "minimax.upload",
    "minimax.generate",
    "minimax.cover_preprocess",
    "minimax.lyrics",
    "minimax.quota",
    "minimax.files",
    "suno.add_instrumental",
    "suno.record_info",
    "suno.credit",
    "suno.callback",
    "suno.generate",
    "suno.extend",
    "suno.upload_cover",
    "suno.upload_extend",
    "suno.add_vocals",
    "suno.mashup",
    "suno.replace_section",
    "suno.sounds",
    "suno.stems",
    "suno.stems_record",
    "suno.wav",
    "suno.wav_record",
    "suno.midi",
    "suno.midi_record",
    "suno.video",
    "suno.mp4_record",
    "suno.lyrics",
    "suno.lyrics_record",
    "suno.timestamped_lyrics",
    "suno.persona",
    "files.stream_upload",
    "files.base64_upload",
    "files.url_upload",
    "files.download",
)

#: Fault kinds. Rejections come before any charge; the rest after the work is done.
FAULT_KINDS = (
    "rate_limit",  # the service's rate-limit rejection (429 / 1002 / 430)
    "maintenance",  # Suno 455, AI/ML 500 "model under maintenance", MiniMax 1001
    "server_error",  # a 5xx answer (Suno body 500, MiniMax 1024)
    "reset_before_answer",  # connection aborted after the request was processed
    "reset_mid_body",  # connection aborted in the middle of the body
    "truncated_body",  # fewer bytes than Content-Length, then the connection ends
    "slow_drip",  # the body trickles in small pieces
    "malformed_json",  # a complete HTTP answer whose JSON is broken
    "invalid_hex",  # generate: non-hex characters inside data.audio
    "odd_length_hex",  # generate: data.audio has an odd number of digits
    "create_task_failed",  # Suno task statuses (decided at submission)
    "generate_audio_failed",  # also: an AI/ML async generation ends in status "error", and a
    # Suno follow-up in its own state (GENERATE_WAV_FAILED, GENERATE_MP4_FAILED...)
    "callback_exception",
    "sensitive_word_error",
    "callback_failure",  # one callback delivery is dropped (counted as failed)
    "callback_duplicate",  # one callback is delivered twice
)


@attrs.frozen(kw_only=True)
class Timings:
    """How long things take, in seconds, before multiplying by `scale`.

    Suno stage times are measured from the submission.
    """

    generate: float = 0.5
    upload: float = 0.0
    suno_text: float = 0.5
    suno_first: float = 1.0
    suno_complete: float = 2.0
    slow_drip_interval: float = 0.2
    slow_drip_pieces: int = 10
    #: How long Suno keeps a follow-up's record and files after the task (14 days).
    suno_retention: float = 14 * 24 * 3600.0
    #: AI/ML async family: at least this long "queued", then this long "generating" (a slot
    #: permitting); its links expire this long after completion.
    aiml_queue: float = 0.3
    aiml_generate: float = 1.0
    aiml_link_ttl: float = 86400.0
    scale: float = 1.0

    @classmethod
    def instant(cls) -> Timings:
        """No waiting at all (stages move on at the next poll)."""
        return cls(generate=0, suno_text=0, suno_first=0, suno_complete=0, slow_drip_interval=0.05,
                   aiml_queue=0, aiml_generate=0)

    @classmethod
    def real(cls) -> Timings:
        """About the real services' times: 60 s per generation, ~3 min per Suno task."""
        return cls(generate=60, upload=2, suno_text=20, suno_first=60, suno_complete=180,
                   aiml_queue=5, aiml_generate=90)

    def seconds(self, name: str) -> float:
        value: float = getattr(self, name)
        return value * self.scale


@attrs.frozen(kw_only=True)
class Limits:
    """Per-key limits. Defaults follow the published numbers (MiniMax paid tier, Suno)."""

    enabled: bool = True
    minimax_requests: int = 120  # per window, per key, on the AI/ML and MiniMax music paths
    minimax_window: float = 60.0
    minimax_concurrent: int = 20  # generations in flight per key
    suno_requests: int = 20  # per window, per key, on /api/v1
    suno_window: float = 10.0
    suno_code: int = 430  # body code for "too frequent"; 405 is the other documented one
    #: AI/ML: send Retry-After with a 429: the seconds until the window has room for a rate
    #: refusal, this many for a concurrency refusal (whole seconds, rounded up).
    retry_after: float | None = None
    #: AI/ML: also send ``x-ratelimit-limit-requests``, ``x-ratelimit-remaining-requests`` and
    #: ``x-ratelimit-reset-requests`` with a 429, as OpenAI-style gateways do.
    rate_headers: bool = False
    aiml_generating: int = 4  # AI/ML async family: generating at once per key (others queue)
    aiml_queued: int = 64  # ... queued or generating per key; more are refused with 429

    @classmethod
    def off(cls) -> Limits:
        return cls(enabled=False)


def _check_rates(instance: Faults, attribute: object, value: Mapping[str, float]) -> None:
    for key, rate in value.items():
        kind, _, op = key.partition("@")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        if op and not any(o == op or o.startswith(op + ".") for o in OPERATIONS):
            raise ValueError(f"unknown operation {op!r} in fault {key!r}")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate for {key!r} must be within 0..1, got {rate}")


@attrs.frozen(kw_only=True)
class Faults:
    """Random faults: ``rates`` maps ``"kind"`` or ``"kind@operation"`` to a probability.

    The operation may be a prefix: ``"server_error@suno": 0.1``. Draws use
    ``random.Random(seed)``, so a run with the same requests in the same order repeats.
    """

    rates: Mapping[str, float] = attrs.field(factory=dict, validator=_check_rates)
    seed: int = 0

    @classmethod
    def parse(cls, specs: list[str], *, seed: int = 0) -> Faults:
        """Build from ``["kind=rate", "kind@op=rate"]`` strings (the CLI form)."""
        rates: dict[str, float] = {}
        for spec in specs:
            name, sep, rate = spec.partition("=")
            if not sep:
                raise ValueError(f"fault must look like NAME=RATE, got {spec!r}")
            rates[name.strip()] = float(rate)
        return cls(rates=rates, seed=seed)


def _keys(value: Iterable[str] | None) -> frozenset[str] | None:
    return None if value is None else frozenset(value)


@attrs.frozen(kw_only=True)
class EmulatorConfig:
    """Everything the emulator does differently from its defaults."""

    api_keys: frozenset[str] | None = attrs.field(default=None, converter=_keys)
    timings: Timings = attrs.field(factory=Timings)
    limits: Limits = attrs.field(factory=Limits)
    faults: Faults = attrs.field(factory=Faults)
    #: Length of generated tracks: chosen from this range by the track's seed.
    track_seconds: tuple[float, float] = (8.0, 20.0)
    #: Size knob: make every music-01 track about this many bytes (overrides track_seconds).
    generate_audio_bytes: int | None = None
    channels: int = 2
    #: Order of the generate answer's top-level keys ("data" first makes clients scan).
    key_order: tuple[str, ...] = ("data", "extra_info", "analysis_info", "trace_id", "base_resp")
    lyrics_max: int = 600
    suno_credits: int = 100_000
    #: AI/ML credits per key for the async family (None: unlimited); out of credits is a 403.
    aiml_credits: float | None = None
    suno_task_cost: int = 12
    #: Suno createTime as epoch milliseconds (as seen live) or as "YYYY-MM-DD HH:MM:SS".
    suno_time_as_string: bool = False
    hex_chunk_bytes: int = 256 * 1024
    callback_timeout: float = 15.0
    callback_retries: int = 3
    #: Required on the admin paths (``/_emulator/...`` but ``health``), as
    #: ``Authorization: Bearer <token>`` or ``X-Emulator-Admin-Token``; ``None``: open.
    admin_token: str | None = attrs.field(default=None, repr=False)
    #: Hosts (``host`` or ``host:port``) whose URLs ``uploadUrl`` and ``fileUrl`` may name; by
    #: default the emulator fetches only the files it serves itself.
    fetch_hosts: frozenset[str] = attrs.field(factory=frozenset, converter=frozenset)
    #: Sign Suno callbacks with this key, as kie.ai does (X-Webhook-Timestamp/-Signature).
    webhook_hmac_key: str | None = None
