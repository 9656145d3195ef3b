"""The fault matrix: every emulator fault x every call kind x every service it applies to.

Each cell injects one fault (over real loopback HTTP), makes one call, and checks the
invariants of DESIGN.md, whatever the outcome:

- the outcome is success (the fault absorbed by exactly the expected retry or resume) or
  exactly the documented error class, never a raw ``KeyError``/``TypeError``/httpx error;
- no partial file: nothing at a destination after a failure, and no ``.part`` file ever;
- no duplicate paid submission: the emulator charged exactly once when the call submits;
- no busy pooled connection, no lane permit held and no lane left paused afterwards.

``MATRIX`` is the single source of truth; ``docs/reliability.md`` shows it as a table, and
``test_docs_show_the_matrix`` keeps the two in step.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import attrs
import httpx
import pytest

from aiomusic import (
    AiomusicError,
    AudioDecodeError,
    DeadlineExceededError,
    Event,
    MaintenanceError,
    MusicSession,
    Progress,
    RateLimitError,
    RetryScheduled,
    ServerError,
    ServiceUnavailableError,
    SubmissionUnknownError,
    TaskFailedError,
)
from aiomusic.callbacks import CallbackReceiver
from aiomusic.emulator import Emulator, Timings
from aiomusic.emulator._config import FAULT_KINDS
from aiomusic.suno import PollSchedule

from .reliability_helpers import (
    FAST,
    FAST_CONFIG,
    LYRICS,
    NOWHERE,
    REFERENCE,
    STEM,
    SUNO_ARGS,
    Switch,
    assert_released,
    partial_files,
    serve,
)

pytestmark = pytest.mark.anyio
KEY = "sk-matrix-test"
TINY = PollSchedule(initial=0.002, maximum=0.01)
NEVER = PollSchedule(initial=3600, maximum=3600, jitter=0)  # callbacks only
DOCS = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"


# -- the expected outcomes --------------------------------------------------------------------


@attrs.frozen
class Outcome:
    """What a cell must end with.

    Attributes:
        error: The exact error class raised, or ``None`` for success.
        absorbed: On success, the error class name one retry absorbed, ``"resume"`` for a
            download resumed with a Range request, or ``None`` when nothing went wrong.
        reason: ``SubmissionUnknownError.reason``.
        status: ``TaskFailedError.status``.
        source: ``TaskResult.source`` (``"poll"`` or ``"callback"``).
    """

    error: type[AiomusicError] | None = None
    absorbed: str | None = None
    reason: str | None = None
    status: str | None = None
    source: str | None = None
    per_service: dict[str, Outcome] | None = None

    def of(self, service: str) -> Outcome:
        """The outcome for ``service`` (cells whose outcome depends on the service)."""
        return self if self.per_service is None else self.per_service[service]


OK = Outcome()
RETRIED = Outcome(absorbed="rejection")  # the class depends on the service: REJECTED below
TRANSPORT = Outcome(absorbed="TransportError")
RESUMED = Outcome(absorbed="resume")
LOST = Outcome(error=SubmissionUnknownError, reason="connection lost")
#: A 5xx to a paid request: its outcome by service.
BY_SERVICE = Outcome(per_service={
    "aimlapi": RETRIED, "minimax": Outcome(error=SubmissionUnknownError, reason="server error"),
    "suno": Outcome(error=SubmissionUnknownError, reason="server error")})
#: The error each service's definite refusal is classified as (and retried).
REJECTED: dict[str, dict[str, type[AiomusicError]]] = {
    "aimlapi": {"rate_limit": RateLimitError, "maintenance": MaintenanceError,
                "server_error": ServiceUnavailableError},
    "minimax": {"rate_limit": RateLimitError, "maintenance": MaintenanceError,
                "server_error": ServerError},
    "suno": {"rate_limit": RateLimitError, "maintenance": MaintenanceError,
             "server_error": ServerError},
}

KINDS = ("minimax.upload", "generate.path", "generate.file", "stream", "suno.upload",
         "suno.add_instrumental", "suno.wait", "suno.credits", "suno.download",
         "suno.callbacks")
MINIMAX_KINDS = ("minimax.upload", "generate.path", "generate.file", "stream")
#: Kinds whose call (or preparation) submits one paid task.
PAID_KINDS = ("generate.path", "generate.file", "stream", "suno.add_instrumental",
              "suno.wait", "suno.download", "suno.callbacks")
TASK_FAULTS = ("create_task_failed", "generate_audio_failed", "callback_exception",
               "sensitive_word_error")


def _matrix() -> dict[str, dict[str, Outcome | None]]:
    """fault -> call kind -> outcome; ``None`` where the fault cannot hit that call."""
    free_json = ("minimax.upload", "suno.upload", "suno.wait", "suno.credits")
    paid = ("generate.path", "generate.file", "stream", "suno.add_instrumental")
    audio = ("generate.path", "generate.file", "stream")
    rows: dict[str, dict[str, Outcome | None]] = {f: dict.fromkeys(KINDS) for f in FAULT_KINDS}
    for fault in ("rate_limit", "maintenance", "server_error"):
        rows[fault].update(dict.fromkeys((*free_json, *paid), RETRIED))
    # a 5xx to a paid request may come after the work: only AI/ML's 503 (in its own words)
    # is a refusal; MiniMax 1024 and Suno 500 have an unknown fate (never re-sent)
    rows["server_error"].update(dict.fromkeys(paid, BY_SERVICE))
    for fault in ("reset_before_answer", "reset_mid_body", "truncated_body"):
        rows[fault].update(dict.fromkeys(free_json, TRANSPORT))
        rows[fault].update(dict.fromkeys(paid, LOST))
        rows[fault]["suno.download"] = TRANSPORT if fault == "reset_before_answer" else RESUMED
    rows["slow_drip"].update(dict.fromkeys((*free_json, *paid, "suno.download"), OK))
    rows["malformed_json"].update(dict.fromkeys(free_json, Outcome(absorbed="JsonError")))
    rows["malformed_json"].update(dict.fromkeys((*audio, "suno.add_instrumental"), Outcome(
        error=SubmissionUnknownError, reason="malformed answer")))
    for fault in ("invalid_hex", "odd_length_hex"):
        rows[fault].update(dict.fromkeys(audio, Outcome(error=AudioDecodeError)))
    for fault in TASK_FAULTS:
        failed = Outcome(error=TaskFailedError, status=fault.upper())
        rows[fault].update({"suno.add_instrumental": OK, "suno.wait": failed,
                            "suno.callbacks": failed})
    rows["callback_failure"]["suno.callbacks"] = Outcome(source="poll")
    rows["callback_duplicate"]["suno.callbacks"] = Outcome(source="callback")
    return rows


MATRIX = _matrix()


def services(kind: str) -> tuple[str, ...]:
    return ("aimlapi", "minimax") if kind in MINIMAX_KINDS else ("suno",)


def cells() -> Iterator[Any]:
    for fault, row in MATRIX.items():
        for kind, outcome in row.items():
            if outcome is None:
                continue
            for service in services(kind):
                yield pytest.param(fault, kind, service, outcome.of(service),
                                   id=f"{fault}-{kind}-{service}")


# -- the calls --------------------------------------------------------------------------------


@attrs.define
class Env:
    """One cell's session, emulator, folder and what the preparation produced."""

    session: MusicSession
    emu: Emulator
    folder: Path
    service: str
    voice: str = ""
    url: str = ""
    task: Any = None
    track: Any = None
    poll: PollSchedule = TINY


def operation(kind: str, service: str, fault: str) -> str:
    """The emulator operation the fault targets for a call kind."""
    prefix = "aiml" if service == "aimlapi" else "minimax"
    if fault in TASK_FAULTS:
        return "suno.add_instrumental"
    return {
        "minimax.upload": f"{prefix}.upload", "generate.path": f"{prefix}.generate",
        "generate.file": f"{prefix}.generate", "stream": f"{prefix}.generate",
        "suno.upload": "files.stream_upload", "suno.add_instrumental": "suno.add_instrumental",
        "suno.wait": "suno.record_info", "suno.credits": "suno.credit",
        "suno.download": "files.download", "suno.callbacks": "suno.callback",
    }[kind]


async def prepare(kind: str, env: Env) -> None:
    """What a call needs before it can be made (done before the fault is injected)."""
    s = env.session
    if kind in ("generate.path", "generate.file", "stream"):
        ref = await s.minimax.upload_reference(REFERENCE, purpose="voice")
        assert ref.voice_id
        env.voice = ref.voice_id
    if kind.startswith("suno.") and kind not in ("suno.upload", "suno.credits"):
        env.url = (await s.suno.upload(STEM, name="stem.wav")).download_url
    if kind == "suno.download":
        env.task = await s.suno.add_instrumental(env.url, **SUNO_ARGS)
        env.track = (await env.task.wait(timeout=30)).tracks[0]


async def act(kind: str, env: Env, timeout: float | None = None) -> Any:
    """Make the call under test; returns what ``check_success`` needs."""
    s, folder = env.session, env.folder
    if kind == "minimax.upload":
        return await s.minimax.upload_reference(REFERENCE, purpose="song", timeout=timeout)
    if kind == "generate.path":
        return await s.minimax.generate(folder / "song.mp3", lyrics=LYRICS,
                                        refer_voice=env.voice, timeout=timeout)
    if kind == "generate.file":
        buffer = io.BytesIO()
        return buffer, await s.minimax.generate(buffer, lyrics=LYRICS, refer_voice=env.voice,
                                                timeout=timeout)
    if kind == "stream":
        received = bytearray()
        async with s.minimax.stream(lyrics=LYRICS, refer_voice=env.voice,
                                    timeout=timeout) as audio:
            async for chunk in audio:
                received += chunk
        return bytes(received), audio.result
    if kind == "suno.upload":
        return await s.suno.upload(STEM, timeout=timeout)
    if kind == "suno.add_instrumental":
        return await s.suno.add_instrumental(env.url, timeout=timeout, **SUNO_ARGS)
    if kind == "suno.wait":
        env.task = env.task or await s.suno.add_instrumental(env.url, **SUNO_ARGS)
        return await env.task.wait(timeout=timeout or 30)
    if kind == "suno.credits":
        return await s.suno.get_credits(timeout=timeout)
    if kind == "suno.download":
        return await env.track.download(folder / "track.mp3", timeout=timeout)
    assert kind == "suno.callbacks"
    task = await s.suno.add_instrumental(env.url, **SUNO_ARGS)
    return await task.wait(timeout=30, poll=env.poll)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_success(kind: str, env: Env, got: Any, outcome: Outcome, paid: int) -> None:
    folder = env.folder
    if kind == "minimax.upload":
        assert got.voice_id and got.instrumental_id
    elif kind == "generate.path":
        assert sorted(p.name for p in folder.iterdir()) == ["song.mp3"]
        assert got.sha256 == sha((folder / "song.mp3").read_bytes())
        assert got.bytes_written == got.extra_info.size > 0
    elif kind == "generate.file":
        buffer, result = got
        assert result.sha256 == sha(buffer.getvalue()) and result.bytes_written > 0
    elif kind == "stream":
        received, result = got
        assert result is not None and result.sha256 == sha(received) and received
    elif kind == "suno.upload":
        assert got.download_url.startswith(env.emu.url)
    elif kind == "suno.add_instrumental":
        assert got.task_id
    elif kind == "suno.wait":
        assert len(got.tracks) == 2 and got.source == "poll"
    elif kind == "suno.credits":
        assert got == FAST_CONFIG.suno_credits - FAST_CONFIG.suno_task_cost * paid
    elif kind == "suno.download":
        assert sorted(p.name for p in folder.iterdir()) == ["track.mp3"]
        assert got.sha256 == sha((folder / "track.mp3").read_bytes())
        assert got.resumes == (1 if outcome.absorbed == "resume" else 0)
    else:
        assert len(got.tracks) == 2 and got.source == outcome.source


def check_error(error: BaseException, outcome: Outcome) -> None:
    assert type(error) is outcome.error, repr(error)
    if outcome.reason is not None:
        assert isinstance(error, SubmissionUnknownError) and error.reason == outcome.reason
    if outcome.status is not None:
        assert isinstance(error, TaskFailedError) and error.status == outcome.status
        assert error.error_code is not None


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fast_emu() -> Iterator[Emulator]:
    with Emulator(FAST_CONFIG) as emulator:
        yield emulator


@pytest.fixture
def emu(fast_emu: Emulator) -> Iterator[Emulator]:
    fast_emu.reset()
    yield fast_emu
    fast_emu.reset()


@pytest.fixture(scope="module")
def callback_server() -> Iterator[tuple[Switch, str]]:
    switch = Switch()
    with serve(switch) as url:
        yield switch, url


def make_session(emu: Emulator, service: str, events: list[Event]) -> MusicSession:
    s = MusicSession(aimlapi_key=KEY, minimax_key=KEY, suno_key=KEY, base_url=emu.url,
                     minimax_via="minimax" if service == "minimax" else "aimlapi",
                     allow_http_hosts=("127.0.0.1",), retry=FAST,
                     suno_callback_url=NOWHERE, on_event=events.append)
    s.suno.poll_schedule = TINY
    return s


async def run_cell(emu: Emulator, folder: Path, service: str, kind: str, fault: str,
                   events: list[Event], *, count: int, receiver: CallbackReceiver | None,
                   public: str | None, timeout: float | None = None
                   ) -> tuple[Env, Any, BaseException | None, int]:
    """Prepare, inject, act; returns (env, result, error, index of the act's first event)."""
    async with make_session(emu, service, events) as s:
        env = Env(s, emu, folder, service)
        if receiver is not None and public is not None:
            s.suno.attach_receiver(receiver, public)
            # callbacks alone, except where they are dropped and polling must take over
            env.poll = TINY if fault == "callback_failure" else NEVER
        target = operation(kind, service, fault)
        if fault in TASK_FAULTS:
            emu.inject(fault, operation=target, count=count)
        await prepare(kind, env)
        if fault not in TASK_FAULTS:
            emu.inject(fault, operation=target, count=count)
        start = len(events)
        got: Any = None
        error: BaseException | None = None
        with anyio.fail_after(60):  # a hang guard, not a timing assertion
            try:
                got = await act(kind, env, timeout)
            except AiomusicError as exc:
                error = exc
        # DESIGN invariants 1 and 6: nothing checked out, held or paused once the call ended
        assert_released(s)
        assert partial_files(folder) == []
        if error is not None:
            assert [p.name for p in folder.iterdir()] == []
    return env, got, error, start


# -- the matrix -------------------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "kind", "service", "outcome"), list(cells()))
async def test_fault_matrix(emu: Emulator, tmp_path: Path,
                            callback_server: tuple[Switch, str], fault: str, kind: str,
                            service: str, outcome: Outcome) -> None:
    receiver = public = None
    if kind == "suno.callbacks":
        switch, public = callback_server
        switch.target = receiver = CallbackReceiver()
    count = 3 if fault in ("callback_failure", "callback_duplicate") else 1
    events: list[Event] = []
    env, got, error, start = await run_cell(emu, tmp_path, service, kind, fault, events,
                                            count=count, receiver=receiver, public=public)
    target = operation(kind, service, fault)
    with anyio.fail_after(20):  # callbacks are posted in the background: let them all go
        while emu.counters.fired(fault, operation=target) < count:
            await anyio.sleep(0.01)
    counters = emu.counters
    # the cell is not vacuous: the fault really hit the call
    assert counters.fired(fault, operation=target) == count
    # DESIGN invariant 2: a paid submission is charged once, never re-sent blindly (the
    # emulator's server_error refuses before any work, which a client cannot know: it is
    # then charged never, and sent once)
    refused = fault == "server_error" and outcome.error is not None
    assert counters.paid() == (1 if kind in PAID_KINDS and not refused else 0)
    retries = [e.reason for e in events[start:] if isinstance(e, RetryScheduled)]
    resumes = [e for e in events[start:] if isinstance(e, Progress) and e.stage == "resuming"]
    if outcome.error is not None:
        assert error is not None, f"expected {outcome.error.__name__}, got {got!r}"
        check_error(error, outcome)
        assert retries == []  # a definite failure is not retried
        return
    assert error is None, repr(error)
    check_success(kind, env, got, outcome, counters.paid())
    if outcome.absorbed == "rejection":
        assert retries == [REJECTED[service][fault].__name__]
    elif outcome.absorbed == "resume":
        assert retries == [] and len(resumes) == 1
    elif outcome.absorbed is not None:
        assert retries == [outcome.absorbed]
    elif kind != "suno.callbacks":  # callbacks: polls may race the deliveries
        assert retries == [] and resumes == []
    if fault == "callback_duplicate":
        assert receiver is not None
        with anyio.fail_after(20):  # the emulator posts the last copy right after
            while receiver.ignored < count:
                await anyio.sleep(0.01)
        assert receiver.accepted == 3


# -- slow drip past the caller's deadline -----------------------------------------------------

#: A drip of 10 pieces 0.15 s apart (1.5 s) against a deadline of 0.4 s.
SLOW_CONFIG = attrs.evolve(FAST_CONFIG, timings=Timings(
    generate=0, upload=0, suno_text=0, suno_first=0, suno_complete=0,
    slow_drip_interval=0.15, slow_drip_pieces=10))
DEADLINE = 0.4
DEADLINE_CELLS = {
    "minimax.upload": Outcome(error=DeadlineExceededError),
    "generate.path": Outcome(error=SubmissionUnknownError, reason="deadline"),
    "generate.file": Outcome(error=SubmissionUnknownError, reason="deadline"),
    "stream": Outcome(error=SubmissionUnknownError, reason="deadline"),
    "suno.upload": Outcome(error=DeadlineExceededError),
    "suno.add_instrumental": Outcome(error=SubmissionUnknownError, reason="deadline"),
    "suno.wait": Outcome(error=DeadlineExceededError),
    "suno.credits": Outcome(error=DeadlineExceededError),
    "suno.download": Outcome(error=DeadlineExceededError),
}


@pytest.fixture(scope="module")
def slow_emu() -> Iterator[Emulator]:
    with Emulator(SLOW_CONFIG) as emulator:
        yield emulator
        # let the last drip (abandoned by its client) end, rather than be cut by the shutdown
        drain(emulator)


def drain(emulator: Emulator, *, limit: float = 5.0) -> None:
    server = emulator._server
    end = time.monotonic() + limit
    while server is not None and server.server_state.tasks and time.monotonic() < end:
        time.sleep(0.01)


@pytest.mark.parametrize(("kind", "outcome"), [
    pytest.param(kind, outcome, id=kind) for kind, outcome in DEADLINE_CELLS.items()])
async def test_slow_drip_past_the_deadline(slow_emu: Emulator, tmp_path: Path, kind: str,
                                           outcome: Outcome) -> None:
    slow_emu.reset()
    events: list[Event] = []
    _env, _got, error, _start = await run_cell(slow_emu, tmp_path, "aimlapi", kind,
                                               "slow_drip", events, count=1, receiver=None,
                                               public=None, timeout=DEADLINE)
    assert error is not None
    check_error(error, outcome)
    if isinstance(error, DeadlineExceededError):
        # the caller's own deadline, even when an inner poll or resume hit it (regression)
        assert isinstance(error, TimeoutError)
        assert error.timeout == DEADLINE
        assert f"{DEADLINE:g} s" in str(error)
    if kind == "suno.wait":
        assert "session.suno.task(" in str(error)  # how to resume the task later
    assert slow_emu.counters.paid() == (1 if kind in PAID_KINDS else 0)


# -- the table is complete, and the docs show it ----------------------------------------------


def test_every_fault_kind_has_a_row_and_every_row_a_cell() -> None:
    assert set(MATRIX) == set(FAULT_KINDS)
    for fault, row in MATRIX.items():
        assert set(row) == set(KINDS)
        assert any(row.values()), f"{fault} hits no call kind"
    for kind in KINDS:
        assert any(MATRIX[f][kind] for f in FAULT_KINDS), f"{kind} meets no fault"


_COLUMNS = {"minimax.upload": "MiniMax upload", "generate.path": "generate → path",
            "generate.file": "generate → file object", "stream": "stream",
            "suno.upload": "Suno upload", "suno.add_instrumental": "add_instrumental",
            "suno.wait": "wait (record-info)", "suno.credits": "credits",
            "suno.download": "download", "suno.callbacks": "callbacks"}


_SERVICES = {"aimlapi": "AI/ML", "minimax": "MiniMax", "suno": "Suno"}


def _cell_text(outcome: Outcome | None) -> str:
    if outcome is None:
        return "n/a"
    if outcome.per_service is not None:  # "text (service, service); text (service)"
        texts: dict[str, list[str]] = {}
        for name, one in outcome.per_service.items():
            texts.setdefault(_cell_text(one), []).append(_SERVICES[name])
        return "; ".join(f"{text} on {', '.join(names)}" for text, names in texts.items())
    if outcome.error is not None:
        text = f"`{outcome.error.__name__}`"
        return text + (f" ({outcome.reason})" if outcome.reason else "")
    if outcome.absorbed == "rejection":
        return "retried, ok"
    if outcome.absorbed == "resume":
        return "resumed, ok"
    if outcome.absorbed is not None:
        return f"retried ({outcome.absorbed}), ok"
    if outcome.source is not None:
        return f"ok (by {outcome.source})"
    return "ok"


def render_matrix() -> str:
    """The matrix as the markdown table docs/reliability.md shows."""
    header = "| fault | " + " | ".join(_COLUMNS[k] for k in KINDS) + " |"
    rule = "|---|" + "---|" * len(KINDS)
    rows = [f"| `{fault}` | " + " | ".join(_cell_text(MATRIX[fault][k]) for k in KINDS) + " |"
            for fault in FAULT_KINDS]
    slow = "| `slow_drip` past `timeout=` | " + " | ".join(
        _cell_text(DEADLINE_CELLS.get(k)) for k in KINDS) + " |"
    return "\n".join([header, rule, *rows, slow])


def test_docs_show_the_matrix() -> None:
    assert render_matrix() in DOCS.read_text(encoding="utf-8"), (
        "docs/reliability.md is out of date; paste in:\n" + render_matrix())


# -- never a raw httpx exception ---------------------------------------------------------------


async def test_generate_from_an_answer_httpx_has_already_read(tmp_path: Path) -> None:
    """``httpx.MockTransport`` (the seam users test with) hands over answers built with
    ``json=``, which httpx reads at once; decoding one must still work, not raise
    ``httpx.StreamConsumed``."""
    audio = b"\x01\x02\x03"

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": {"audio": audio.hex(), "status": 2},
                                         "base_resp": {"status_code": 0}})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with MusicSession(aimlapi_key=KEY, http_client=client, retry=FAST) as s:
        result = await s.minimax.generate(tmp_path / "a.mp3", lyrics=LYRICS, refer_voice="v")
    await client.aclose()
    assert result.bytes_written == 3 and (tmp_path / "a.mp3").read_bytes() == audio
