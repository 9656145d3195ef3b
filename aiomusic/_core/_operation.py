"""Operations, declared once: what a call needs, what it costs, and how its result arrives.

About thirty operations share a handful of patterns. Each is declared here once, as an
[`Operation`][aiomusic._core._operation.Operation]: its parameters (an attrs class whose fields
carry `param()` metadata), a pure validator and request builder, a pure answer reader, whether
it is paid, its lane, how the result arrives (`Delivery`), what it leaves on disk (`Output`),
and, for a result followed by id, its `TaskSpec`. Job files, the command line's generic verbs,
the journal's fingerprints, the docs' tables and the emulator's routes are derived from these
declarations instead of repeating them.

Nothing here does I/O. The registry imports a service's declarations only when one of its
operations is asked for, so ``import aiomusic`` stays light and the core imports no service.
"""

from __future__ import annotations

import enum
import hashlib
import importlib
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from ._checks import Checks, Problem
from ._config import LaneKind, Service

if TYPE_CHECKING:
    from ._call import Call
    from ._task import TaskSpec

__all__ = [
    "Checks",
    "Context",
    "Delivery",
    "Operation",
    "Output",
    "Problem",
    "find",
    "operations",
    "param",
    "params_of",
]


class Delivery(enum.StrEnum):
    """How an operation's result arrives."""

    INLINE_HEX = "inline_hex"
    """Audio as one hex string inside a JSON answer, decoded as it streams (MiniMax)."""
    SSE_HEX = "sse_hex"
    """Server-sent events, each with a hex chunk; the last one says the song is complete."""
    JSON = "json"
    """A synchronous JSON answer (lyrics, a persona, timestamped lyrics, quota)."""
    URL = "url"
    """A JSON answer carrying a link to download at once (it expires)."""
    TASK = "task"
    """A task id, followed through a status endpoint (and callbacks, where the service has
    them) until its outputs can be downloaded."""


class Output(enum.StrEnum):
    """What an operation leaves on disk, for batches and the command line."""

    FILE = "file"
    """One audio (or video) file: ``out`` itself."""
    TRACKS = "tracks"
    """Several tracks: ``<out>-1.<ext>``, ``<out>-2.<ext>``..."""
    STEMS = "stems"
    """A folder ``<out>/`` with one file per stem (``vocals.mp3``, ``drums.mp3``...)."""
    DOCUMENT = "document"
    """A JSON (or text) document: lyrics, timings, a persona id."""
    NOTHING = "nothing"
    """No file (an account look-up)."""


Kind = Literal["text", "int", "float", "bool", "choice", "url", "file", "source", "texts",
               "weight", "id", "mapping"]


def param(*, help: str, kind: Kind = "text", default: Any = attrs.NOTHING,
          wire: str | None = None, choices: Sequence[str] = (), minimum: float | None = None,
          maximum: float | None = None, max_length: int | None = None,
          cli: str | None = None, positional: bool = False) -> Any:
    """An attrs field that is also a user-facing parameter.

    Args:
        help: One line for ``--help``, job-file errors and the docs' tables.
        kind: How job files and the command line read it: ``text``, ``int``, ``float``,
            ``bool``, ``choice`` (one of ``choices``), ``url`` (absolute http(s)), ``file`` (a
            local file), ``source`` (a URL, or a local file uploaded first), ``texts`` (a
            list of strings), ``weight`` (0-1 in steps of 0.01), ``id`` (a non-empty id),
            ``mapping`` (a JSON object, e.g. extra fields sent as they are).
        default: The default (none: the parameter is required).
        wire: The service's name for it, when the builder sends it as is.
        choices: The documented values of a ``choice``; others pass with a warning when the
            operation says unknown values pass through (model names do).
        minimum: The smallest number allowed.
        maximum: The largest number allowed.
        max_length: The most characters allowed.
        cli: The command line's option (default: ``--`` plus the name with dashes).
        positional: Whether the command line takes it as a positional argument.
    """
    metadata = {"aiomusic": {"help": help, "kind": kind, "wire": wire,
                             "choices": tuple(choices), "minimum": minimum,
                             "maximum": maximum, "max_length": max_length, "cli": cli,
                             "positional": positional}}
    if default is attrs.NOTHING:
        return attrs.field(metadata=metadata, kw_only=True)
    return attrs.field(default=default, metadata=metadata, kw_only=True)


@attrs.frozen
class ParamInfo:
    """A parameter's declaration, read back from its attrs field."""

    name: str
    help: str
    kind: Kind
    required: bool
    default: Any
    wire: str | None
    choices: tuple[str, ...]
    minimum: float | None
    maximum: float | None
    max_length: int | None
    cli: str
    positional: bool


def params_of(cls: type[Any]) -> tuple[ParamInfo, ...]:
    """The parameters an attrs class declares with `param()`, in field order."""
    found = []
    for field in attrs.fields(cls):
        meta = field.metadata.get("aiomusic")
        if meta is None:
            continue
        required = field.default is attrs.NOTHING
        found.append(ParamInfo(
            name=field.name, help=meta["help"], kind=meta["kind"], required=required,
            default=None if required else field.default, wire=meta["wire"],
            choices=meta["choices"], minimum=meta["minimum"], maximum=meta["maximum"],
            max_length=meta["max_length"],
            cli=meta["cli"] or "--" + field.name.replace("_", "-"),
            positional=meta["positional"]))
    return tuple(found)


@attrs.frozen
class Context:
    """What a pure request builder may know beyond the parameters.

    Attributes:
        service: The host family the call goes to (MiniMax's own hosts or the AI/ML API).
        callback_url: The callback URL to send, where the service takes one.
    """

    service: Service
    callback_url: str | None = None


@attrs.frozen
class Operation:
    """One operation of one service, declared once.

    Attributes:
        service: The job file's ``service`` and the command line's service verb: ``minimax``,
            ``suno`` or ``aimlapi``.
        name: The job file's ``op`` and the command line's operation verb (``generate``,
            ``stems``...), unique within the service.
        summary: One line for ``--help`` and the docs.
        params: The attrs class of its parameters (fields made with `param()`).
        paid: Whether a call costs money: then it is never re-sent blindly.
        lane: The lane its request runs in.
        delivery: How the result arrives.
        output: What it leaves on disk.
        validate: Adds every problem of a parameters object to a `Checks` (pure, cross-field
            rules; kinds and ranges declared with `param()` are checked by the caller first).
        call: Builds the HTTP call from valid parameters (pure).
        read: Reads a classified JSON answer into the operation's result (pure): the task id
            of a `TASK`, the document of a `JSON`, the link of a `URL`.
        task: How a `TASK` result is followed.
        models: The documented model names, when the operation takes a ``model``; others pass
            through with a warning.
        aliases: Other names the job file and command line accept.
        perform: For an operation whose client decides how the result arrives (MiniMax's
            songs: hex, SSE or a link, by their parameters): ``await perform(session, params,
            destination)`` does the whole operation, writing a file result to
            ``destination`` (a path, for a ``FILE`` output) or returning the document
            (``destination`` is ``None``). Batches and the command line then call it instead of
            the generic delivery.
        on_refused: When the service refuses the paid request in a way that means the work
            exists already (Suno's WAV conversion answers 409 "already exists"), this finds
            it: ``await on_refused(session, params, error)`` gives the existing task's id,
            or ``None`` to let the refusal stand. Nothing is paid twice either way.
    """

    service: str
    name: str
    summary: str
    params: type[Any]
    paid: bool
    lane: LaneKind
    delivery: Delivery
    output: Output
    validate: Callable[[Any, Checks], None]
    call: Callable[[Any, Context], Call]
    read: Callable[[Mapping[str, Any]], Any] | None = None
    task: TaskSpec | None = None
    models: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    on_refused: Callable[[Any, Any, Exception], Awaitable[str | None]] | None = None
    perform: Callable[[Any, Any, Path | None], Awaitable[Any]] | None = None

    @property
    def qualified(self) -> str:
        """``service.name``: the operation's name in events, journals and logs."""
        return f"{self.service}.{self.name}"

    def check(self, params: Any) -> None:
        """Run the validator; raise an `InputError` carrying every problem, if any."""
        checks = Checks()
        self.validate(params, checks)
        checks.raise_first()

    def fingerprint(self, params: Any, *extra: object) -> str:
        """A short digest of what a job asks for: a journal refuses a changed job under the
        same id. Stable across runs and versions for the same operation and parameters."""
        data = attrs.asdict(params, value_serializer=_plain)
        text = json.dumps([self.qualified, data, *extra], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def _plain(_inst: object, _field: object, value: object) -> object:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


# -- the registry ----------------------------------------------------------------------------

#: The module declaring each service's operations, imported on first use.
_DECLARATIONS = {
    "minimax": "aiomusic.minimax._ops",
    "suno": "aiomusic.suno._ops",
    "aimlapi": "aiomusic.aimlapi._ops",
}
_REGISTRY: dict[tuple[str, str], Operation] = {}


def register(*ops: Operation) -> None:
    """Add operations to the registry (their declaring module calls this at import)."""
    for op in ops:
        for name in (op.name, *op.aliases):
            key = (op.service, name)
            known = _REGISTRY.get(key)
            if known is not None and known is not op:
                raise RuntimeError(f"two operations are named {op.service}.{name}")
            _REGISTRY[key] = op


def _load(service: str) -> None:
    module = _DECLARATIONS.get(service)
    if module is not None:
        importlib.import_module(module)


def services() -> tuple[str, ...]:
    """The services that declare operations."""
    return tuple(_DECLARATIONS)


def operations(service: str | None = None) -> Iterator[Operation]:
    """Every declared operation (of ``service``), each once, in declaration order."""
    for name in (service,) if service else tuple(_DECLARATIONS):
        _load(name)
    seen: set[int] = set()
    for name in (service,) if service else tuple(_DECLARATIONS):
        for (svc, _name), op in _REGISTRY.items():
            if svc == name and id(op) not in seen:
                seen.add(id(op))
                yield op


def find(service: str, name: str) -> Operation | None:
    """The operation ``service.name`` (or one of its aliases), if declared."""
    _load(service)
    return _REGISTRY.get((service, name))
