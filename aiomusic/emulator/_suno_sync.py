"""Suno's synchronous answers: timestamped lyrics (free) and personas (paid, once per track).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _suno_outputs as out
from ._http import Req
from ._suno import charge, success
from ._suno_family import finished_track
from ._suno_followups import params_of, refuse, store

if TYPE_CHECKING:
    from ._context import App, Routes

__all__ = ["ROUTES", "persona", "timestamped_lyrics"]


async def timestamped_lyrics(app: App, req: Req) -> None:
    got = await params_of(app, req, callback=False)
    if got is None:
        return
    key, params = got
    found = finished_track(app, key, params.get("audioId"), params.get("taskId"))
    if found is None:
        await refuse(app, req, "invalid", "taskId and audioId must name a finished track")
        return
    music, track = found
    instrumental = music.param.get("instrumental") or music.operation == "add_instrumental"
    lyrics = ""
    if not instrumental:
        lyrics = music.param.get("prompt", "") if music.param.get("customMode") else \
            "[Verse]\n" + "\n".join(out.lyrics_lines(track["seed"], music.param.get("prompt",
                                                                                  "")))
    aligned = out.words(lyrics, track["seconds"])
    await success(app, req, {"alignedWords": aligned, "waveformData": [0.1, 0.4, 0.8, 0.3],
                             "hootCer": 0.05 if aligned else None, "isStreamed": False})


async def persona(app: App, req: Req) -> None:
    got = await params_of(app, req, callback=False)
    if got is None:
        return
    key, params = got
    found = finished_track(app, key, params.get("audioId"), params.get("taskId"))
    start, end = params.get("vocalStart", 0), params.get("vocalEnd", 30)
    problem = None
    if found is None:
        problem = "taskId and audioId must name a finished track of yours"
    elif not all(isinstance(params.get(n), str) and params[n].strip()
                 for n in ("name", "description")):
        problem = "name and description are required"
    elif not isinstance(start, int | float) or not isinstance(end, int | float) or \
            not 10 <= end - start <= 30:
        problem = "the vocal segment must last 10-30 s"
    if problem:
        await refuse(app, req, "invalid", problem)
        return
    state = store(app)
    if params["audioId"] in state.personas:
        await refuse(app, req, "exists", "a persona was already made from this track")
        return
    if not charge(app, key):
        await refuse(app, req, "credits", "Insufficient credits")
        return
    app.state.count_submission(key, req.operation)
    made = {"personaId": app.state.new_task_id()[:24], "name": params["name"],
            "description": params["description"]}
    state.personas[params["audioId"]] = made
    await success(app, req, made)


#: This module's routes (the app merges every handler module's table).
ROUTES: Routes = {
    ("POST", "/api/v1/generate/get-timestamped-lyrics"): (
        "suno.timestamped_lyrics", timestamped_lyrics),
    ("POST", "/api/v1/generate/generate-persona"): ("suno.persona", persona),
}
