"""MiniMax's cover preprocess, lyrics generation and Token Plan quota.

- ``POST /v1/music_cover_preprocess``: ``model`` (a cover model) and ``audio_url`` or
  ``audio_base64`` (mp3/wav/flac, 6 s to 6 min, 50 MB): answers a ``cover_feature_id`` and the
  lyrics "heard" in the track (``formatted_lyrics``), ``structure_result`` and
  ``audio_duration``. The id is what a generation's ``cover_feature_id`` takes.
- ``POST /v1/lyrics_generation``: ``mode`` ``write_full_song`` (``prompt`` up to 2000) or
  ``edit`` (``lyrics`` up to 3500 to rework); ``title`` is kept. Answers ``song_title``,
  ``style_tags`` (comma-separated) and tagged ``lyrics``.
- ``GET /v1/token_plan/remains``: ``model_remains`` per model for the key (free; see
  `_music_state` for how a key's plan and quota are chosen).

Each is gated (auth, rate window, rejection faults) and takes the body faults.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import anyio

from ._audio import seed_of
from ._cover_audio import load_reference, probe_reference
from ._http import BODY_FAULTS, Req, send_json
from ._minimax import Invalid, _invalid
from ._music_state import Feature, music_state
from ._state import new_trace_id

if TYPE_CHECKING:
    from ._context import App, Routes

__all__ = ["lyrics", "preprocess", "quota"]

_OK = {"status_code": 0, "status_msg": "success"}
_WORDS = ("river", "neon", "summer", "echo", "highway", "lantern", "ocean", "velvet", "ember",
          "midnight", "paper", "silver", "thunder", "garden", "window", "compass")
_STYLES = ("indie folk", "synthwave", "dream pop", "lo-fi hip hop", "soul", "acoustic ballad",
           "city pop", "post-rock")
_MOODS = ("warm", "melancholic", "uplifting", "nostalgic", "hopeful", "restless")


def _line(rng: random.Random) -> str:
    words = rng.sample(_WORDS, 4)
    return f"{words[0].capitalize()} and {words[1]}, {words[2]} in the {words[3]}"


def write_lyrics(seed: int, sections: tuple[str, ...] = ("Verse", "Chorus", "Verse", "Chorus",
                                                          "Bridge", "Outro")) -> str:
    """Tagged lyrics, the same for the same seed."""
    rng = random.Random(seed)
    return "\n".join(f"[{section}]\n" + "\n".join(_line(rng) for _ in range(2 if
                     section in ("Bridge", "Outro") else 4)) for section in sections)


async def _json(app: App, req: Req) -> dict[str, Any] | None:
    try:
        params = await req.json()
    except ValueError:
        params = None
    if not isinstance(params, dict):
        await _invalid(app, req, "minimax", Invalid("body must be a JSON object", schema=True))
        return None
    return params


async def _answer(app: App, req: Req, body: dict[str, Any]) -> None:
    trace = new_trace_id()
    fault = app.draw_fault(req.operation, BODY_FAULTS)
    await send_json(req.send, body | {"trace_id": trace, "base_resp": _OK},
                    headers={"Trace-Id": trace}, fault=fault, timings=app.config.timings)


async def preprocess(app: App, req: Req) -> None:
    key = await app.gate(req, "minimax")
    if key is None or (params := await _json(app, req)) is None:
        return
    try:
        model = params.get("model")
        if model not in ("music-cover", "music-cover-free"):
            raise Invalid(f"model: expected music-cover or music-cover-free, got {model!r}",
                          schema=False)
        given = [n for n in ("audio_url", "audio_base64") if params.get(n)]
        if len(given) != 1:
            raise Invalid("give exactly one of audio_url and audio_base64", schema=False)
        data = await load_reference(app, req, params, given[0])
        seconds = probe_reference(data)
    except Invalid as exc:
        await _invalid(app, req, "minimax", exc)
        return
    app.state.count_submission(key, req.operation)
    await anyio.sleep(app.config.timings.seconds("generate") / 4)
    seed = seed_of(data[:65536], len(data))
    heard = write_lyrics(seed, ("Verse", "Chorus", "Verse", "Chorus"))
    feature_id = music_state(app.state).new_feature(Feature(seed, seconds, heard))
    await _answer(app, req, {"cover_feature_id": feature_id, "formatted_lyrics": heard,
                             "structure_result": "verse-chorus-verse-chorus",
                             "audio_duration": round(seconds, 3)})


async def lyrics(app: App, req: Req) -> None:
    key = await app.gate(req, "minimax")
    if key is None or (params := await _json(app, req)) is None:
        return
    mode, prompt = params.get("mode"), params.get("prompt") or ""
    old, title = params.get("lyrics"), params.get("title")
    try:
        if mode not in ("write_full_song", "edit"):
            raise Invalid("mode: one of write_full_song, edit", schema=False)
        for name, value, most in (("prompt", prompt, 2000), ("lyrics", old, 3500),
                                  ("title", title, 200)):
            if value is not None and (not isinstance(value, str) or len(value) > most):
                raise Invalid(f"{name}: a string of at most {most} characters", schema=False)
        if mode == "edit" and not old:
            raise Invalid("lyrics: required in edit mode", schema=False)
    except Invalid as exc:
        await _invalid(app, req, "minimax", exc)
        return
    app.state.count_submission(key, req.operation)
    await anyio.sleep(app.config.timings.seconds("generate") / 10)
    seed = seed_of(mode, prompt, old)
    rng = random.Random(seed)
    text = write_lyrics(seed)
    if mode == "edit":  # keep the user's lines, rework the last section
        text = f"{str(old).rstrip()}\n[Outro]\n{_line(rng)}"
    styles = [rng.choice(_STYLES), rng.choice(_MOODS), f"{rng.randrange(70, 140)} bpm"]
    await _answer(app, req, {"song_title": title or " ".join(rng.sample(_WORDS, 2)).title(),
                             "style_tags": ", ".join(styles), "lyrics": text})


async def quota(app: App, req: Req) -> None:
    key = await app.gate(req, "minimax")
    if key is None:
        return
    await _answer(app, req, {"model_remains": music_state(app.state).remains(key)})


#: This module's routes (the app merges every handler module's table).
ROUTES: Routes = {
    ("POST", "/v1/music_cover_preprocess"): ("minimax.cover_preprocess", preprocess),
    ("POST", "/v1/lyrics_generation"): ("minimax.lyrics", lyrics),
    ("GET", "/v1/token_plan/remains"): ("minimax.quota", quota),
}
