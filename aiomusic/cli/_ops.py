"""The generic verbs: ``aiomusic <service> <operation> [options]``, one per declaration.

Each declared operation (``aiomusic._core._operation``) becomes a subcommand whose options are
its parameters (``--field-name``, or positional where declared), checked by the same reader as
a job file's line, and run as a one-job batch: the same uploads, paid-request safety,
downloads and files as ``aiomusic batch``. Adding an operation needs no edit here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import attrs

from .._core._operation import Delivery, Operation, Output, ParamInfo, find, operations
from .._core._operation import params_of as declared
from .._core._operation import services as declared_services
from ._command import run_session_command
from ._common import Output as Printer
from ._common import add_service_options, task_command

__all__ = ["add_operation_parsers", "run_operation_command"]

#: Parameters the service options already give (``--callback-url`` is the session's default
#: callback URL, which the operation uses when its own is not given).
_SERVICE_FLAGS = frozenset({"--callback-url"})
_TYPES: dict[str, Any] = {"int": int, "float": float, "weight": float}
_WHERE = {Output.FILE: "the file to write", Output.DOCUMENT: "the JSON file to write",
          Output.TRACKS: "the tracks' name stem: <OUT>-1.<ext>, <OUT>-2.<ext> and so on",
          Output.STEMS: "the folder to fill with one file per stem"}


def add_operation_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]
                          ) -> None:
    """One subcommand per service that declares operations, one sub-subcommand per op."""
    for service in declared_services():
        ops = list(operations(service))
        if not ops:
            continue
        names = ", ".join(op.name for op in ops)
        parser = commands.add_parser(service, help=f"{service}: {names}",
                                     description=f"Every {service} operation aiomusic "
                                                 "declares, run as a one-job batch.")
        verbs = parser.add_subparsers(dest="op", metavar="OPERATION", required=True)
        for op in ops:
            _add_operation(verbs, op)


def _add_operation(verbs: argparse._SubParsersAction[argparse.ArgumentParser],
                   op: Operation) -> None:
    parser = verbs.add_parser(op.name, aliases=list(op.aliases), help=op.summary,
                              description=f"{op.summary}. "
                                          f"{'Paid' if op.paid else 'Free'}; "
                                          f"{_WHERE.get(op.output, 'no file')}.")
    for info in declared(op.params):
        if info.cli not in _SERVICE_FLAGS:
            _add_param(parser, info)
    if op.output is not Output.NOTHING:
        parser.add_argument("--out", metavar="OUT",
                            help=f"{_WHERE[op.output]} (default: named after the operation)")
    if op.delivery is Delivery.TASK:
        parser.add_argument("--no-wait", action="store_true",
                            help="print the task id and stop (then follow it with the "
                                 "`aiomusic task` command it prints)")
    add_service_options(parser, services=frozenset({op.service}),
                        tasks=op.delivery is Delivery.TASK, via=op.name == "music-01")


def _add_param(parser: argparse.ArgumentParser, info: ParamInfo) -> None:
    text = info.help
    if info.choices and info.choices[0] not in text:
        text += f" ({', '.join(info.choices)})"
    if not info.required and info.default not in (None, False):
        text += " (default: %(default)s)"
    kwargs: dict[str, Any] = {"help": text, "dest": f"p_{info.name}"}
    if info.kind == "bool":
        kwargs.update(action=argparse.BooleanOptionalAction, default=None)
    elif info.kind == "texts":
        kwargs.update(action="append", metavar="TEXT")
    elif info.kind == "mapping":
        kwargs.update(action="append", metavar="KEY=JSON", type=_pair)
    else:
        kwargs.update(type=_TYPES.get(info.kind, str), metavar=info.name.upper())
        if info.default is not None and not info.required:
            kwargs["default"] = info.default
    if info.positional:
        kwargs.pop("dest")
        kwargs.update(nargs=None if info.required else "?")
        parser.add_argument(f"p_{info.name}", **kwargs)
    else:
        parser.add_argument(info.cli, required=info.required and info.kind != "bool",
                            **kwargs)


def _pair(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` for a mapping option: the value as JSON when it parses, else as text."""
    import json

    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


def _values(op: Operation, args: argparse.Namespace) -> dict[str, Any]:
    values = {}
    for info in declared(op.params):
        value = getattr(args, f"p_{info.name}", None)
        if value is not None:
            values[info.name] = list(value) if info.kind == "texts" else \
                dict(value) if info.kind == "mapping" else value
    return values


def run_operation_command(args: argparse.Namespace) -> int:
    """Run ``aiomusic <service> <op>``: 0 done, 1 the service or the work failed, 2 usage."""
    from ..batch._fields import Fields, read_params
    from ..batch._jobs import make_job, output_extension

    printer = Printer(json_mode=args.json, plain=args.plain)
    op = find(args.command, args.op)
    assert op is not None  # the parser offers declared operations only
    fields = Fields(_values(op, args))
    params = read_params(op, fields, Path.cwd())
    if params is None:
        for name, message in fields.problems:
            flag = next((i.cli for i in declared(op.params) if i.name == name), None)
            printer.error(f"{flag or name}: {message}")
        return 2
    default = op.name if op.output is not Output.FILE else \
        f"{op.name}.{output_extension(op, params)}"
    out = Path(args.out) if getattr(args, "out", None) else Path(default)
    job = make_job(op, _job_id(out), params, out.name)

    async def work(session: Any, poll: Any) -> None:
        from ..batch._runner import Batch

        if getattr(args, "no_wait", False):
            await _submit_only(session, op, params, printer)
            return
        batch = Batch(session, [job], out=out.parent, poll=poll)
        async with batch.results() as results:
            async for outcome in results:
                if outcome.error is not None:
                    raise outcome.error
                for file in outcome.files:
                    printer.say(f"wrote {file.path}: {file.size} bytes, sha256 {file.sha256}")
                if outcome.document is not None and not outcome.files:  # a quota, say
                    printer.say(json.dumps(_plain(outcome.document), indent=2, default=str))
                printer.data({"job": op.qualified, "status": outcome.status,
                              "task_id": outcome.task_id,
                              "document": _plain(outcome.document),
                              "files": [{"path": f.path, "bytes": f.size, "sha256": f.sha256}
                                        for f in outcome.files]})

    return run_session_command(args, printer, work)


async def _submit_only(session: Any, op: Operation, params: Any, printer: Printer) -> None:
    """Submit a task and print its id (local sources are uploaded first)."""
    from ..batch._execute import context_for, with_uploads

    async def upload(path: Path) -> str:  # a source must be audio by its content
        return str((await session.suno._upload(path, audio=True)).download_url)

    params = await with_uploads(op, params, upload)
    assert op.read is not None
    # read within the attempt: a submission answered without its task id is unknown
    task_id = await session._transport._submit(op.call(params, context_for(session, op,
                                                                            params)), op.read)
    printer.say(f"task id: {task_id}")
    printer.note(f"follow it with `{follow_command(op, task_id)}`")
    printer.data({"task_id": task_id, "status": "submitted"})


def follow_command(op: Operation, task_id: str) -> str:
    """The ``aiomusic task`` command that follows a task of ``op``."""
    if op.service == "aimlapi":
        return task_command(task_id, "--service aimlapi --wait --out .")
    kind = {"stems": "stems", "wav": "wav", "midi": "midi", "video": "mp4",
            "lyrics": "lyrics"}.get(op.name, "music")
    extra = "" if kind == "music" else f"--kind {kind} "
    return task_command(task_id, f"{extra}--wait --out .")


def _plain(value: Any) -> Any:
    return attrs.asdict(value) if attrs.has(type(value)) else value


def _job_id(out: Path) -> str:
    stem = "".join(c if c.isalnum() or c in "._-" else "-" for c in out.stem)[:64].strip("._-")
    return stem or "job"


def operations_markdown() -> str:
    """Every declared operation as Markdown tables: the page ``docs/operations.md``."""
    lines = ["# Operations", "",
             "<!-- generated by `aiomusic operations --markdown`; a test keeps it current -->",
             "", "Every operation aiomusic declares, by service. Each is a job-file line "
             "(`\"service\"` and `\"op\"`, then its fields) and a command "
             "(`aiomusic <service> <operation>`); the fields below are both the job file's "
             "keys and the command's options.", ""]
    for service in declared_services():
        ops = list(operations(service))
        if not ops:
            continue
        lines += [f"## {service}", "", "| operation | what it does | paid | result | writes |",
                  "|---|---|---|---|---|"]
        for op in ops:
            names = " / ".join(f"`{n}`" for n in (op.name, *op.aliases))
            lines.append(f"| {names} | {op.summary} | {'yes' if op.paid else 'no'} | "
                         f"{op.delivery.value.replace('_', ' ')} | {op.output.value} |")
        for op in ops:
            lines += ["", f"### {service} {op.name}", "", "| field | kind | required | "
                      "what it is |", "|---|---|---|---|"]
            for info in declared(op.params):
                required = "yes" if info.required else f"no (`{info.default}`)" \
                    if info.default not in (None, False) else "no"
                lines.append(f"| `{info.name}` | {info.kind} | {required} | "
                             f"{info.help.replace('|', '/')} |")
            if op.models:
                lines += ["", f"Documented models: {', '.join(f'`{m}`' for m in op.models)}; "
                              "other names pass through with a warning."]
        lines.append("")
    return "\n".join(lines)


def print_operations(*, markdown: bool) -> int:
    """``aiomusic operations``: what can be run, from the declarations."""
    if markdown:
        print(operations_markdown(), end="")
        return 0
    for op in operations():
        print(f"{op.service} {op.name:<22} {'paid' if op.paid else 'free':<5} {op.summary}")
    return 0
