"""A small FastAPI service built the way aiomusic recommends.

- One ``MusicSession`` for the whole app, opened in the lifespan and shared by every request.
- One task group, also opened in the lifespan, owns the background work. Shutting the app down
  cancels that work *before* the session closes, so no task outlives the app.
- ``POST /references`` uploads a reference track (multipart) and returns its MiniMax ids.
- ``POST /songs`` starts a music-01 generation and returns a job id at once;
  ``POST /tracks`` does the same with MiniMax's current models (music-2.6: a style prompt and
  lyrics). ``GET /songs/{id}`` reports either job, and ``GET /songs/{id}/audio`` returns the
  audio.
  - ``"delivery": "file"`` (the default) generates in the background into ``songs_dir``.
    The audio endpoint serves the finished file.
  - ``"delivery": "live"`` streams the audio to the listener of ``GET /songs/{id}/audio``
    *while it is being decoded*: no file, no buffer. The generation starts when the listener
    connects, and stops (cleanly, nothing left behind) if the listener goes away. A current
    model's track streams *while it is being generated* (server-sent events under the hood).
- ``GET /listen?prompt=...&lyrics=...`` is the shortest way to hear a track as it is made:
  point an ``<audio>`` element at it. ``GET /`` is a page that does it for you: write a style
  and lyrics, and the track plays while it is generated.
- ``POST /instrumentals`` submits a Suno Add Instrumental task. The callback URL points back
  at this app, where a ``CallbackReceiver`` is mounted. ``GET /instrumentals/{id}`` reports it.
- Library errors become HTTP answers: a rate limit is 503 with ``Retry-After``, bad input is
  422 with the library's message, and a key or configuration problem is a 500 whose message
  gives nothing away.

Run it against the emulator (``pip install "aiomusic[all]" fastapi``)::

    aiomusic emulator --port 8765 &
    AIOMUSIC_BASE_URL=http://127.0.0.1:8765 AIMLAPI_KEY=any MINIMAX_API_KEY=any \\
        SUNO_API_KEY=any uvicorn examples.fastapi_app:app --port 8000

and open http://127.0.0.1:8000/ in a browser. Against the real services, leave
``AIOMUSIC_BASE_URL`` unset, set real keys, and set ``AIOMUSIC_PUBLIC_URL`` to the https URL
where Suno can reach this app.

Several worker processes (``uvicorn --workers 4``) share one key's limits when
``AIOMUSIC_LANES`` names a Redis (``redis://127.0.0.1:6379/0``, ``pip install
"aiomusic[redis]"``) or a PostgreSQL (``postgresql://...``): every worker's session then takes
its permits and starts from there (see docs/scale.md). Without it each worker would spend the
whole budget by itself. ``AIOMUSIC_LANE_LIMITS`` overrides lane limits as JSON, e.g.
``{"aimlapi.submit": {"rate": 60, "per": 60, "max_concurrency": 10}}``. Job state (``GET
/songs/{id}``) stays in the worker that took the job: give each worker's jobs to a shared store
or route a client back to its worker if it polls.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import anyio.abc
import httpx
from fastapi import FastAPI, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    Response,
    StreamingResponse,
)
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.types import Receive, Scope, Send

import aiomusic
from aiomusic.callbacks import CallbackReceiver
from aiomusic.suno import PollSchedule

logger = logging.getLogger("aiomusic.example")

CALLBACK_PATH = "/suno/callbacks"
MEDIA_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav"}


# -- settings ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """What the app needs to know; :meth:`from_env` reads it from the environment."""

    base_url: str | None = None
    """One URL for every service, e.g. an emulator (``AIOMUSIC_BASE_URL``)."""
    public_url: str = "http://127.0.0.1:8000"
    """Where Suno can reach this app, for callbacks (``AIOMUSIC_PUBLIC_URL``)."""
    songs_dir: Path = Path("songs")
    """Where file deliveries are written (``AIOMUSIC_SONGS_DIR``)."""
    callback_token: str | None = None
    """The secret in the callback URL (``AIOMUSIC_CALLBACK_TOKEN``). Keep it stable across
    restarts if tasks outlive the process; random when unset."""
    aimlapi_key: str | None = None
    """``None``: aiomusic reads ``AIMLAPI_KEY``."""
    minimax_key: str | None = None
    """``None``: aiomusic reads ``MINIMAX_API_KEY`` (the current models, on MiniMax's hosts)."""
    suno_key: str | None = None
    """``None``: aiomusic reads ``SUNO_API_KEY``."""
    retry: aiomusic.RetryPolicy | None = None
    """The session's retry policy (``None``: aiomusic's default)."""
    poll: PollSchedule | None = None
    """How Suno tasks poll as a fallback to callbacks (``None``: aiomusic's default)."""
    song_timeout: float = 900.0
    """Seconds a background generation may take, retries included."""
    instrumental_timeout: float = 900.0
    """Seconds to follow a Suno task before giving up on it (it goes on at the service)."""
    lanes: str | None = None
    """Where worker processes share the keys' limits: a ``redis://`` or ``postgresql://`` URL
    (``AIOMUSIC_LANES``); ``None``: each process alone."""
    lane_limits: Mapping[str, aiomusic.LaneConfig] = dataclasses.field(default_factory=dict)
    """Lane limits to override (``AIOMUSIC_LANE_LIMITS``, JSON by lane name)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            base_url=env.get("AIOMUSIC_BASE_URL") or None,
            public_url=env.get("AIOMUSIC_PUBLIC_URL") or cls.public_url,
            songs_dir=Path(env.get("AIOMUSIC_SONGS_DIR") or cls.songs_dir),
            callback_token=env.get("AIOMUSIC_CALLBACK_TOKEN") or None,
            lanes=env.get("AIOMUSIC_LANES") or None,
            lane_limits={name: aiomusic.LaneConfig(**limits) for name, limits in
                         json.loads(env.get("AIOMUSIC_LANE_LIMITS") or "{}").items()},
        )


# --8<-- [start:session]
def open_session(settings: Settings) -> aiomusic.MusicSession:
    """The app's one session. An emulator's plain-http host may serve downloads too."""
    hosts: tuple[str, ...] = ()
    if settings.base_url and settings.base_url.startswith("http://"):
        hosts = (httpx.URL(settings.base_url).host,)
    return aiomusic.MusicSession(
        base_url=settings.base_url, aimlapi_key=settings.aimlapi_key,
        minimax_key=settings.minimax_key, suno_key=settings.suno_key, retry=settings.retry,
        allow_http_hosts=hosts, lanes=settings.lane_limits, lane_store=settings.lanes)
# --8<-- [end:session]


# -- request bodies (FastAPI answers 422 when they do not validate) ---------------------------


class SongRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lyrics: str = Field(min_length=1, max_length=600)
    refer_voice: str | None = Field(default=None, min_length=1)
    refer_instrumental: str | None = Field(default=None, min_length=1)
    format: Literal["mp3", "wav"] = "mp3"
    delivery: Literal["file", "live"] = "file"

    @model_validator(mode="after")
    def _one_reference(self) -> SongRequest:
        if self.refer_voice is None and self.refer_instrumental is None:
            raise ValueError("give refer_voice, refer_instrumental or both "
                             "(POST /references returns them)")
        return self

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``generate()`` / ``stream()``."""
        return {"lyrics": self.lyrics, "refer_voice": self.refer_voice,
                "refer_instrumental": self.refer_instrumental,
                "audio_setting": aiomusic.AudioSetting(format=self.format)}

    def generate(self, session: aiomusic.MusicSession, path: Path, timeout: float
                 ) -> Awaitable[aiomusic.GenerationResult]:
        return session.minimax.generate(path, **self.arguments(), timeout=timeout)

    def stream(self, session: aiomusic.MusicSession, timeout: float
               ) -> AbstractAsyncContextManager[aiomusic.AudioStream]:
        return session.minimax.stream(**self.arguments(), timeout=timeout)


class TrackRequest(BaseModel):
    """A track by MiniMax's current models: a style prompt, and lyrics unless instrumental."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=2000)
    lyrics: str | None = Field(default=None, min_length=1, max_length=3500)
    model: str = Field(default="music-2.6", min_length=1)
    is_instrumental: bool = False
    format: Literal["mp3", "wav"] = "mp3"
    delivery: Literal["file", "live"] = "live"

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``generate_song()`` / ``stream_song()``."""
        return {"prompt": self.prompt, "lyrics": self.lyrics, "model": self.model,
                "is_instrumental": self.is_instrumental,
                "audio_setting": aiomusic.AudioSetting(format=self.format)}

    # --8<-- [start:tracks]
    def generate(self, session: aiomusic.MusicSession, path: Path, timeout: float
                 ) -> Awaitable[aiomusic.SongResult]:
        # stream=True: the audio is written as it is generated, not when it is all done
        return session.minimax.generate_song(path, **self.arguments(), stream=True,
                                             timeout=timeout)

    def stream(self, session: aiomusic.MusicSession, timeout: float
               ) -> AbstractAsyncContextManager[aiomusic.AudioStream]:
        # server-sent events under the hood: each piece is passed on as soon as it arrives
        return session.minimax.stream_song(**self.arguments(), timeout=timeout)
    # --8<-- [end:tracks]


class InstrumentalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_url: str = Field(pattern=r"^https?://", description="the vocal stem, fetchable by Suno")
    title: str = Field(min_length=1, max_length=100)
    tags: str = Field(min_length=1)
    negative_tags: str = Field(min_length=1)
    vocal_gender: Literal["m", "f"] | None = None
    style_weight: float | None = Field(default=None, ge=0, le=1)
    weirdness_constraint: float | None = Field(default=None, ge=0, le=1)
    audio_weight: float | None = Field(default=None, ge=0, le=1)


# -- errors -----------------------------------------------------------------------------------

# --8<-- [start:errors]
# The service is busy or out of budget: the client should come back later.
_BUSY: dict[type[aiomusic.AiomusicError], float] = {
    aiomusic.RateLimitError: 5.0,
    aiomusic.ServiceUnavailableError: 30.0,  # MaintenanceError too
    aiomusic.UsageLimitError: 600.0,
}
# The caller's input is at fault: say what is wrong, in the library's words.
_BAD_INPUT = (aiomusic.InputError, aiomusic.BadRequestError, aiomusic.ContentPolicyError)
# Our own set-up is at fault: the details go to the log, never to the client.
_OURS = (aiomusic.AuthenticationError, aiomusic.PermissionDeniedError,
         aiomusic.ConfigurationError, aiomusic.NotFoundError, aiomusic.SessionClosedError,
         aiomusic.InsufficientCreditsError, aiomusic.LaneStoreError)
_TIMEOUTS = (aiomusic.DeadlineExceededError, aiomusic.GenerationTimeoutError,
             aiomusic.TransferTimeoutError)


def problem(exc: aiomusic.AiomusicError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The HTTP status, JSON body and headers that report ``exc`` to a client."""
    body: dict[str, Any] = {"error": type(exc).__name__, "detail": exc.message}
    headers: dict[str, str] = {}
    for kind, default_wait in _BUSY.items():
        if isinstance(exc, kind):
            wait = exc.retry_after if exc.retry_after is not None else default_wait
            body["retry_after"] = headers["Retry-After"] = str(max(1, math.ceil(wait)))
            return 503, body, headers
    if isinstance(exc, _BAD_INPUT):
        if isinstance(exc, aiomusic.InputError) and exc.field:
            body["field"] = exc.field
        return 422, body, headers
    if isinstance(exc, _OURS):  # the details are logged where the error happens
        body = {"error": "ServiceMisconfigured",
                "detail": "the music service is not set up correctly on this server; "
                          "the operator has been told"}
        return 500, body, headers
    if isinstance(exc, _TIMEOUTS):
        return 504, body, headers
    return 502, body, headers  # the service failed or answered nonsense
# --8<-- [end:errors]


def error_response(exc: aiomusic.AiomusicError) -> JSONResponse:
    status, body, headers = problem(exc)
    return JSONResponse(body, status_code=status, headers=headers)


def log_failure(what: str, exc: aiomusic.AiomusicError) -> None:
    """Log a failure; our own set-up problems loudly, since only the operator can fix them."""
    level = logging.ERROR if isinstance(exc, _OURS) else logging.INFO
    logger.log(level, "%s failed: %s: %s", what, type(exc).__name__, exc)


async def _aiomusic_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, aiomusic.AiomusicError)
    log_failure(f"{request.method} {request.url.path}", exc)
    return error_response(exc)


# -- jobs -------------------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class SongJob:
    id: str
    request: SongRequest | TrackRequest
    status: Literal["running", "ready", "streaming", "done", "failed", "cancelled"]
    path: Path | None = None
    result: aiomusic.GenerationResult | None = None
    error: aiomusic.AiomusicError | None = None

    def view(self) -> dict[str, Any]:
        result = self.result
        return {
            "id": self.id,
            "status": self.status,
            "delivery": self.request.delivery,
            "audio_url": f"/songs/{self.id}/audio",
            "result": None if result is None else {
                "bytes": result.bytes_written, "sha256": result.sha256,
                "duration": result.duration, "trace_id": result.trace_id,
                "time_to_first_audio": getattr(result, "time_to_first_audio", None)},
            "error": None if self.error is None else problem(self.error)[1],
        }


@dataclasses.dataclass(eq=False)
class InstrumentalJob:
    task: aiomusic.SunoTask
    error: aiomusic.AiomusicError | None = None

    def view(self) -> dict[str, Any]:
        task, result = self.task, self.task.result
        status = task.status
        return {
            "id": task.task_id,
            "status": None if status is None else status.value,
            "done": result is not None or self.error is not None,
            "learnt_by": None if result is None else result.source,  # "callback" or "poll"
            "tracks": [{"id": t.id, "title": t.title, "audio_url": t.audio_url,
                        "duration": t.duration} for t in task.tracks],
            "error": None if self.error is None else problem(self.error)[1],
        }


class Music:
    """What the lifespan shares with the handlers: the session, the task group, the jobs."""

    def __init__(self, session: aiomusic.MusicSession, group: anyio.abc.TaskGroup,
                 settings: Settings, receiver: CallbackReceiver) -> None:
        self.session = session
        self.settings = settings
        self.receiver = receiver
        self.songs: dict[str, SongJob] = {}
        self.instrumentals: dict[str, InstrumentalJob] = {}
        self.active = 0
        """Generations and task follow-ups running right now."""
        self._group = group

    # --8<-- [start:jobs]
    def add_song(self, request: SongRequest | TrackRequest) -> SongJob:
        job = SongJob(id=uuid.uuid4().hex, request=request, status="running")
        self.songs[job.id] = job
        if request.delivery == "live":
            job.status = "ready"  # starts when its listener connects
        else:
            job.path = self.settings.songs_dir / f"{job.id}.{request.format}"
            self._group.start_soon(self._generate, job, name=f"song {job.id}")
        return job
    # --8<-- [end:jobs]

    def song(self, job_id: str) -> SongJob:
        job = self.songs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no song job {job_id!r}")
        return job

    def follow(self, task: aiomusic.SunoTask) -> InstrumentalJob:
        job = InstrumentalJob(task)
        self.instrumentals[task.task_id] = job
        self._group.start_soon(self._follow, job, name=f"suno task {task.task_id}")
        return job

    # --8<-- [start:generate]
    async def _generate(self, job: SongJob) -> None:
        assert job.path is not None
        self.active += 1
        try:
            job.result = await job.request.generate(self.session, job.path,
                                                    self.settings.song_timeout)
            job.status = "done"
        except aiomusic.AiomusicError as exc:
            job.error, job.status = exc, "failed"
            log_failure(f"song {job.id}", exc)
        except Exception:  # one job's bug must not take the app down
            logger.exception("song %s failed unexpectedly", job.id)
            job.error = aiomusic.AiomusicError("internal error")
            job.status = "failed"
        finally:
            self.active -= 1
            if job.status == "running":  # cancelled: the app is shutting down
                job.status = "cancelled"
    # --8<-- [end:generate]

    async def _follow(self, job: InstrumentalJob) -> None:
        self.active += 1
        try:
            # Wakes as soon as the receiver gets the task's callback; polls as a fallback.
            await job.task.wait(timeout=self.settings.instrumental_timeout,
                                poll=self.settings.poll)
        except aiomusic.AiomusicError as exc:
            # TaskFailedError, or DeadlineExceededError: the task then goes on at Suno, and
            # session.suno.task(task_id) can resume it
            job.error = exc
            log_failure(f"suno task {job.task.task_id}", exc)
        except Exception:  # one task's bug must not take the app down
            logger.exception("suno task %s failed unexpectedly", job.task.task_id)
            job.error = aiomusic.AiomusicError("internal error")
        finally:
            self.active -= 1


# -- live audio -------------------------------------------------------------------------------


class _Chunks:
    """The first chunk (already received), then the rest of the stream."""

    def __init__(self, first: bytes = b"", rest: aiomusic.AudioStream | None = None) -> None:
        self._first: bytes | None = first if rest is not None else None
        self._rest = rest

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        if self._rest is None:
            raise StopAsyncIteration
        return await self._rest.__anext__()


async def _first_chunk(audio: aiomusic.AudioStream, receive: Receive
                       ) -> tuple[bytes | None, aiomusic.AiomusicError | None]:
    """Wait for the first audio bytes, or for the listener to leave (``(None, None)``)."""
    first: bytes | None = None
    error: aiomusic.AiomusicError | None = None
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

        group.start_soon(watch)
        try:
            first = await audio.__anext__()
        except StopAsyncIteration:
            first = b""
        except aiomusic.AiomusicError as exc:
            error = exc
        group.cancel_scope.cancel()
    return first, error


# --8<-- [start:live]
class LiveAudio(StreamingResponse):
    """Streams a generation to the client while it is being decoded.

    The generation lives inside this response, in one task: when the client disconnects,
    Starlette cancels the streaming, the ``stream()`` block exits, and aiomusic closes the
    service's answer and releases its permit. Nothing is written to disk. An error before the
    first byte becomes a proper error answer (503, 422, ...); after it, the body is cut off.
    """

    def __init__(self, music: Music, job: SongJob) -> None:
        super().__init__(_Chunks(), media_type=MEDIA_TYPES[job.request.format])
        self._music, self._job = music, job

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        music, job = self._music, self._job
        music.active += 1
        try:
            started, error = await self._play(scope, receive, send)
        finally:
            music.active -= 1
            if job.status == "streaming":  # the listener left before the end
                job.status = "cancelled"
        if error is None:
            return
        job.error, job.status = error, "failed"
        log_failure(f"live song {job.id}", error)
        if not started:
            await error_response(error)(scope, receive, send)
        # else: the client sees a cut-off body, as uvicorn closes the connection

    async def _play(self, scope: Scope, receive: Receive, send: Send
                    ) -> tuple[bool, aiomusic.AiomusicError | None]:
        """Stream the song; returns whether the answer started, and the error if any."""
        job = self._job
        try:
            async with job.request.stream(self._music.session,
                                          self._music.settings.song_timeout) as audio:
                # Nothing is raised inside this block: stream() would wrap it in a group.
                first, error = await _first_chunk(audio, receive)
                if first is None or error is not None:
                    return False, error  # failed, or the listener left before the first byte
                self.body_iterator = _Chunks(first, audio)
                try:
                    await super().__call__(scope, receive, send)
                except aiomusic.AiomusicError as exc:
                    return True, exc
                if audio.result is not None:  # None when the listener left mid-way
                    job.result, job.status = audio.result, "done"
        except aiomusic.AiomusicError as exc:  # refused before sending (InputError)
            return False, exc
        return True, None
# --8<-- [end:live]


# -- the page ---------------------------------------------------------------------------------

# GET /: a page to hear a track while it is generated. It asks POST /tracks for a live track
# and points an <audio> element at its audio_url; GET /songs/{id} tells how it ended.
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hear a song while it is made</title>
<style>
  :root { color-scheme: light dark; }
  body { font: 17px/1.5 system-ui, sans-serif; max-width: 38rem; margin: 2.5rem auto;
         padding: 0 1.25rem; }
  h1 { font-size: 1.6rem; margin-bottom: .25rem; }
  .lead { margin-top: 0; opacity: .8; }
  label { display: block; margin-top: 1.1rem; font-weight: 600; }
  input[type=text], textarea { width: 100%; box-sizing: border-box; margin-top: .3rem;
                               padding: .5rem .6rem; font: inherit; border-radius: 6px;
                               border: 1px solid #8a8a8a; }
  textarea { min-height: 7.5rem; resize: vertical; }
  textarea:disabled { opacity: .45; }
  label.check { font-weight: normal; }
  .actions { display: flex; align-items: center; gap: 1rem; margin-top: 1.4rem; }
  button { font: inherit; font-weight: 600; padding: .55rem 1.3rem; border: 0;
           border-radius: 6px; background: #3451b2; color: #fff; cursor: pointer; }
  button:disabled { opacity: .5; cursor: progress; }
  .cost { font-size: .9rem; opacity: .7; }
  audio { display: block; width: 100%; margin-top: 1.6rem; }
  #status { min-height: 3em; margin-top: .8rem; }
  #status.error { color: #c62828; }
</style>
</head>
<body>
<h1>Hear a song while it is made</h1>
<p class="lead">MiniMax sends the song while it generates it: it starts playing within
seconds, long before the whole song is done.</p>
<form id="song">
  <label for="prompt">Style</label>
  <input id="prompt" name="prompt" type="text" required maxlength="2000"
         value="dream pop, hazy guitars, slow and warm">
  <label for="lyrics">Lyrics</label>
  <textarea id="lyrics" name="lyrics" maxlength="3500">[Verse]
Paper boats on silver rain
[Chorus]
Carry me home again</textarea>
  <label class="check"><input id="instrumental" type="checkbox"> Instrumental (no lyrics)</label>
  <div class="actions">
    <button type="submit">Generate and play</button>
    <span class="cost">Each song is one paid generation.</span>
  </div>
</form>
<audio id="player" controls></audio>
<p id="status" role="status" aria-live="polite"></p>
<script>
const form = document.getElementById("song"), player = document.getElementById("player");
const lyrics = document.getElementById("lyrics");
const instrumental = document.getElementById("instrumental");
const button = form.querySelector("button"), line = document.getElementById("status");
let job = null, asked = 0, waited = null;  // seconds from asking to hearing

function say(text, error = false) {
  line.textContent = text;
  line.className = error ? "error" : "";
}
function problem(body) {  // an aiomusic error, or FastAPI's list of invalid fields
  if (body.retry_after) return `The music service is busy: try again in ${body.retry_after} s.`;
  if (Array.isArray(body.detail)) {
    return body.detail.map(e => `${e.loc.at(-1)}: ${e.msg}`).join("; ");
  }
  return body.detail || "Something went wrong.";
}
function minutes(s) {
  return `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
}

instrumental.addEventListener("change", () => { lyrics.disabled = instrumental.checked; });

form.addEventListener("submit", async event => {
  event.preventDefault();
  if (!instrumental.checked && !lyrics.value.trim()) {
    say("Write some lyrics, or tick Instrumental.", true);
    lyrics.focus();
    return;
  }
  button.disabled = true;
  say("Starting…");
  const body = {prompt: form.prompt.value, is_instrumental: instrumental.checked};
  if (!instrumental.checked) body.lyrics = lyrics.value.trim();
  try {
    const answer = await fetch("/tracks", {method: "POST", body: JSON.stringify(body),
                                           headers: {"content-type": "application/json"}});
    const created = await answer.json();
    if (!answer.ok) throw new Error(problem(created));
    job = created;
    asked = performance.now();
    waited = null;
    say("Generating: the first notes usually arrive within seconds…");
    player.src = job.audio_url;
    player.play().catch(() => {});  // a failure shows as the "error" event
    watch(job);
  } catch (error) {
    say(error.message, true);
    button.disabled = false;
  }
});

player.addEventListener("playing", () => {
  if (job && job.status !== "done") {
    waited ??= ((performance.now() - asked) / 1000).toFixed(1);
    say(`Playing ${waited} s after you asked, while the rest is still being generated.`);
  }
});

async function watch(current) {  // until the generation ends: done, failed or cancelled;
  // a failure before the first note leaves the player silent, and shows here
  while (job === current) {
    const view = await (await fetch(`/songs/${current.id}`)).json();
    if (view.status === "done") {
      current.status = "done";
      const length = view.result.duration ? ` (${minutes(view.result.duration)})` : "";
      say(`The whole song has arrived${length}. ` +
          (waited ? `It began playing ${waited} s after you asked.` : "Press play to hear it."));
      break;
    }
    if (view.status === "failed" || view.status === "cancelled") {
      say(view.error ? problem(view.error) : "The generation stopped before the end.", true);
      job = null;
      break;
    }
    await new Promise(resolve => setTimeout(resolve, 1000));
  }
  button.disabled = false;
}
</script>
</body>
</html>
"""


# -- the app ----------------------------------------------------------------------------------


def _music(request: Request) -> Music:
    music: Music = request.app.state.music
    return music


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; ``settings`` default to :meth:`Settings.from_env`."""
    settings = settings or Settings.from_env()
    receiver = CallbackReceiver(token=settings.callback_token)

    # --8<-- [start:lifespan]
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.songs_dir.mkdir(parents=True, exist_ok=True)
        # The session is entered first and closed last; the task group inside it is cancelled
        # (and its tasks finished) before the session closes.
        async with open_session(settings) as session, anyio.create_task_group() as group:
            session.suno.attach_receiver(receiver, settings.public_url.rstrip("/") +
                                         CALLBACK_PATH)
            app.state.music = Music(session, group, settings, receiver)
            try:
                yield
            finally:
                group.cancel_scope.cancel()

    app = FastAPI(title="aiomusic example", lifespan=lifespan)
    app.add_exception_handler(aiomusic.AiomusicError, _aiomusic_error)
    app.mount(CALLBACK_PATH, receiver)  # Suno POSTs to /suno/callbacks/<token>
    # --8<-- [end:lifespan]

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        """The page: hear a track while it is generated."""
        return PAGE

    @app.post("/references", status_code=201)
    async def upload_reference(
            request: Request, file: UploadFile,
            purpose: Annotated[Literal["song", "voice", "instrumental"], Form()] = "song",
    ) -> dict[str, str | None]:
        """Upload a reference track (WAV or MP3, 10 s to 10 min); returns its ids."""
        ref = await _music(request).session.minimax.upload_reference(
            file.file, purpose=purpose, name=file.filename or None)
        return {"voice_id": ref.voice_id, "instrumental_id": ref.instrumental_id}

    @app.post("/songs", status_code=202)
    async def create_song(request: Request, body: SongRequest) -> dict[str, Any]:
        """Start a generation; poll ``GET /songs/{id}``, fetch ``GET /songs/{id}/audio``."""
        return _music(request).add_song(body).view()

    @app.post("/tracks", status_code=202)
    async def create_track(request: Request, body: TrackRequest) -> dict[str, Any]:
        """A track by a current model; live (the default) plays at ``GET /songs/{id}/audio``."""
        return _music(request).add_song(body).view()

    @app.get("/listen", response_model=None)
    async def listen(
            request: Request, prompt: Annotated[str, Query(min_length=1, max_length=2000)],
            lyrics: Annotated[str | None, Query(min_length=1, max_length=3500)] = None,
            model: Annotated[str, Query(min_length=1)] = "music-2.6",
            instrumental: bool = False) -> Response:
        """Hear a track while it is generated: ``<audio src="/listen?prompt=...">``."""
        music = _music(request)
        job = music.add_song(TrackRequest(prompt=prompt, lyrics=lyrics, model=model,
                                          is_instrumental=instrumental))
        job.status = "streaming"
        return LiveAudio(music, job)

    @app.get("/songs/{job_id}")
    async def get_song(request: Request, job_id: str) -> dict[str, Any]:
        return _music(request).song(job_id).view()

    @app.get("/songs/{job_id}/audio", response_model=None)
    async def get_song_audio(request: Request, job_id: str) -> Response:
        music = _music(request)
        job = music.song(job_id)
        if job.request.delivery == "live":
            if job.status != "ready":
                raise HTTPException(409, f"live song {job_id} is {job.status}: it plays once; "
                                         "POST /songs again for another")
            job.status = "streaming"  # claimed: a second listener gets 409
            return LiveAudio(music, job)
        if job.status == "done" and job.path is not None:
            return FileResponse(job.path, media_type=MEDIA_TYPES[job.request.format])
        if job.status == "running":
            raise HTTPException(409, f"song {job_id} is still being generated",
                                headers={"Retry-After": "5"})
        raise HTTPException(409, f"song {job_id} is {job.status}: see GET /songs/{job_id}")

    # --8<-- [start:instrumentals]
    @app.post("/instrumentals", status_code=202)
    async def create_instrumental(request: Request, body: InstrumentalRequest
                                  ) -> dict[str, Any]:
        """Submit a Suno Add Instrumental task; its callbacks come back to this app."""
        music = _music(request)
        task = await music.session.suno.add_instrumental(
            body.source_url, title=body.title, tags=body.tags, negative_tags=body.negative_tags,
            vocal_gender=body.vocal_gender, style_weight=body.style_weight,
            weirdness_constraint=body.weirdness_constraint, audio_weight=body.audio_weight)
        return music.follow(task).view()
    # --8<-- [end:instrumentals]

    @app.get("/instrumentals/{task_id}")
    async def get_instrumental(request: Request, task_id: str) -> dict[str, Any]:
        job = _music(request).instrumentals.get(task_id)
        if job is None:
            raise HTTPException(404, f"no instrumental task {task_id!r}")
        return job.view()

    @app.get("/healthz")
    async def health(request: Request) -> dict[str, int]:
        music = _music(request)
        return {"active": music.active, "callbacks_accepted": music.receiver.accepted}

    return app


app = create_app()
"""For ``uvicorn examples.fastapi_app:app``: settings from the environment."""
