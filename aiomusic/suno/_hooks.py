"""Reading the callback bodies of every Suno endpoint, and an optional HMAC verifier (pure).

Each endpoint calls back with its own body:

- the generation family: ``{code, msg, data: {callbackType, task_id, data: [tracks]}}``, in
  stages ``text``, ``first``, ``complete`` (or ``error``);
- lyrics: ``{code, msg, data: {callbackType: "complete", taskId, data | lyricsData: [...]}}``;
- WAV: ``{code, msg, data: {task_id, audioWavUrl | audio_wav_url}}``;
- vocal removal: ``{code, msg, data: {task_id, vocal_removal_info | vocal_separation_info}}``;
- MIDI: ``{task_id?, code, msg, data: {state, taskId?, instruments}}``;
- music video: ``{code, msg, data: {task_id, video_url}}``.

`read_callback()` reads any of them into a `TaskSnapshot` (a *hint*: the task's status
endpoint confirms it before anything is downloaded), by the kind the callback URL names
(``?kind=wav``, which aiomusic adds to the URLs it sends) or else by the body's shape.

sunoapi.org signs nothing (aiomusic's secret token in the callback path is the default
protection); its sibling kie.ai documents an HMAC, which ``aiomusic.callbacks.WebhookVerifier``
checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._core._converter import optional_int, optional_str, snake, structure
from .._core._models import CallbackEvent, CallbackType, TaskStatus
from .._core._task import Asset, Phase, TaskSnapshot
from . import _records as rec

__all__ = ["KINDS", "detect_kind", "read_callback", "route", "task_id_of"]

#: The kinds of task a callback can be about (the ``kind`` query of a callback URL).
KINDS = ("music", "lyrics", "wav", "stems", "midi", "mp4")
_STAGES = {CallbackType.TEXT: (TaskStatus.TEXT_SUCCESS, Phase.RUNNING),
           CallbackType.FIRST: (TaskStatus.FIRST_SUCCESS, Phase.RUNNING),
           CallbackType.COMPLETE: (TaskStatus.SUCCESS, Phase.SUCCEEDED)}


def _data(body: Mapping[str, Any]) -> dict[str, Any]:
    data = body.get("data")
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValueError(f"a callback's data must be an object, got {type(data).__name__}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.setdefault(snake(str(key)), value)
    return out


def task_id_of(body: Mapping[str, Any]) -> str:
    """The task a callback is about (``data.task_id``, ``data.taskId`` or top-level).

    Raises:
        ValueError: it names none.
    """
    data = _data(body)
    for value in (data.get("task_id"), body.get("task_id"), body.get("taskId")):
        found = optional_str(value, None)
        if found:
            return found
    raise ValueError("a callback has no task id")


def detect_kind(body: Mapping[str, Any]) -> str:
    """The kind of task a callback body is about, from its shape (``"music"`` when unsure:
    a failure's body looks the same for every kind, and means the same)."""
    data = _data(body)
    if "vocal_removal_info" in data or "vocal_separation_info" in data:
        return "stems"
    if "audio_wav_url" in data:
        return "wav"
    if "video_url" in data:
        return "mp4"
    if "instruments" in data or "state" in data:
        return "midi"
    items = data.get("lyrics_data", data.get("data"))
    if "lyrics_data" in data or (isinstance(items, list) and items and
                                 isinstance(items[0], Mapping) and "text" in items[0] and
                                 "id" not in items[0]):
        return "lyrics"
    return "music"


def _failure(body: Mapping[str, Any], task_id: str) -> TaskSnapshot | None:
    code = optional_int(body.get("code"), None)
    if code is None or code == 200:
        return None
    return TaskSnapshot(task_id=task_id, phase=Phase.FAILED, status="error", rank=3,
                        error_code=code, error_message=optional_str(body.get("msg"), None))


def _music(body: Mapping[str, Any]) -> TaskSnapshot:
    return event_snapshot(structure(body, CallbackEvent, what="a Suno callback"))


def event_snapshot(event: CallbackEvent) -> TaskSnapshot:
    """A staged callback of the generation family as a hint (confirmed before it counts),
    named by the status it stands for (``TEXT_SUCCESS``...); ``record`` is the event."""
    if event.callback_type is CallbackType.ERROR or event.code != 200:
        return TaskSnapshot(task_id=event.task_id, phase=Phase.FAILED, status="error", rank=3,
                            error_code=event.code, error_message=event.msg or None,
                            record=event)
    status, phase = _STAGES[event.callback_type]
    assets = tuple(Asset(url=t.audio_url, name=t.id, title=t.title, duration=t.duration)
                   for t in event.tracks if t.audio_url)
    return TaskSnapshot(task_id=event.task_id, phase=phase, status=status, rank=status.rank,
                        assets=assets, record=event)


def _single(body: Mapping[str, Any], assets: tuple[Asset, ...], record: Any) -> TaskSnapshot:
    task_id = task_id_of(body)
    failed = _failure(body, task_id)
    if failed is not None:
        return failed
    return TaskSnapshot(task_id=task_id, phase=Phase.SUCCEEDED, status="SUCCESS", rank=3,
                        assets=assets, record=record)


def _lyrics(body: Mapping[str, Any]) -> TaskSnapshot:
    data = _data(body)
    items = data.get("lyrics_data", data.get("data"))
    kind = (optional_str(data.get("callback_type"), None) or "complete").lower()
    record = rec.read_lyrics_items(items)
    if kind == "error":
        return TaskSnapshot(task_id=task_id_of(body), phase=Phase.FAILED, status="error",
                            rank=3, error_code=optional_int(body.get("code"), None),
                            error_message=optional_str(body.get("msg"), None))
    return _single(body, (), record)


def _url_asset(name: str, kind: str, *keys: str) -> Callable[[Mapping[str, Any]], TaskSnapshot]:
    def read(body: Mapping[str, Any]) -> TaskSnapshot:
        data = _data(body)
        url = next((u for k in keys if (u := optional_str(data.get(k), None))), None)
        assets = (Asset(url=url, name=name, kind=kind),) if url else ()
        return _single(body, assets, url)
    return read


def _stems(body: Mapping[str, Any]) -> TaskSnapshot:
    data = _data(body)
    stems = rec.read_stems(data.get("vocal_removal_info", data.get("vocal_separation_info")))
    assets = tuple(Asset(url=url, name=name) for name, url in stems.items())
    return _single(body, assets, stems)


def _midi(body: Mapping[str, Any]) -> TaskSnapshot:
    return _single(body, (), rec.read_midi_data(body.get("data")))


_READERS: Mapping[str, Callable[[Mapping[str, Any]], TaskSnapshot]] = {
    "music": _music,
    "lyrics": _lyrics,
    "wav": _url_asset("wav", "audio", "audio_wav_url"),
    "stems": _stems,
    "midi": _midi,
    "mp4": _url_asset("video", "video", "video_url"),
}


@rec.reading("a Suno callback")
def read_callback(body: object, kind: str | None = None) -> TaskSnapshot:
    """A callback body of any Suno endpoint as a task snapshot (a hint, see the module).

    Args:
        body: The decoded JSON body.
        kind: One of `KINDS`, when the callback URL says; else the body's shape decides.

    Raises:
        ResponseError: the body is not a callback of that kind (no task id, wrong types).
    """
    if not isinstance(body, Mapping):
        raise ValueError(f"a callback body must be an object, got {type(body).__name__}")
    chosen = kind if kind is not None and kind in _READERS else detect_kind(body)
    if chosen == "music" and kind is None and "callback_type" not in _data(body):
        return _unknown(body)
    return _READERS[chosen](body)


def _unknown(body: Mapping[str, Any]) -> TaskSnapshot:
    """A body without a kind's fields: a failure (whose shape every kind shares), or not a
    Suno callback at all."""
    failed = _failure(body, task_id_of(body))
    if failed is None:
        raise ValueError("the body is not a Suno callback of any known kind")
    return failed


def reader(kind: str) -> Callable[[Mapping[str, Any]], TaskSnapshot]:
    """The callback reader of one kind (a `TaskSpec`'s ``read_callback``)."""
    def read(body: Mapping[str, Any]) -> TaskSnapshot:
        return read_callback(body, kind)
    read.__name__ = f"read_{kind}_callback"
    return read


def route(data: object, kind: str | None = None) -> tuple[CallbackEvent | None, TaskSnapshot]:
    """What a receiver keeps of a decoded callback body: the generation family's
    `CallbackEvent` (``None`` for other endpoints) and the snapshot of any endpoint.

    Raises:
        ResponseError: the body is not a Suno callback.
    """
    snapshot = read_callback(data, kind)
    event = snapshot.record if isinstance(snapshot.record, CallbackEvent) else None
    return event, snapshot
