"""The thin commands: ``upload``, ``generate``, ``instrumental``, ``task`` and ``credits``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import attrs

from .._core._errors import InputError
from .._core._models import AudioSetting, Purpose
from .._core._paid_errors import PreflightError
from .._core._session import MusicSession
from .._io._preflight import AUDIO_EXTENSIONS, check_extension, check_folder
from ..suno import PollSchedule, SunoTask
from ._command import run_session_command
from ._common import (
    Output,
    add_service_options,
    task_command,
)

__all__ = ["COMMANDS", "add_thin_parsers"]

Command = Callable[[MusicSession, argparse.Namespace, Output, "PollSchedule | None"],
                   Awaitable[None]]


def add_thin_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = commands.add_parser("upload", help="upload a reference track (MiniMax) or a file "
                                            "(Suno File Upload)")
    up.add_argument("file", metavar="FILE", help="the audio file (WAV or MP3)")
    up.add_argument("--purpose", choices=[p.value for p in Purpose], default="song",
                    help="MiniMax purpose (default: %(default)s)")
    up.add_argument("--suno", action="store_true",
                    help="upload to Suno's File Upload API instead (kept 3 days)")
    gen = commands.add_parser("generate", help="generate one MiniMax music-01 song")
    gen.add_argument("output", metavar="OUT", help="the audio file to write")
    lyrics = gen.add_mutually_exclusive_group(required=True)
    lyrics.add_argument("--lyrics", help="the lyrics (\\n for new lines)")
    lyrics.add_argument("--lyrics-file", metavar="FILE", help="read the lyrics from FILE")
    gen.add_argument("--voice-id", help="a voice id from `aiomusic upload`")
    gen.add_argument("--instrumental-id", help="an instrumental id from `aiomusic upload`")
    gen.add_argument("--reference", metavar="FILE", help="upload this reference first")
    gen.add_argument("--purpose", choices=[p.value for p in Purpose], default="song",
                     help="how --reference is uploaded (default: %(default)s)")
    gen.add_argument("--format", choices=("mp3", "wav", "pcm"),
                     help="the audio format (default: OUT's extension, else mp3)")
    gen.add_argument("--sample-rate", type=int, default=44100, metavar="HZ",
                     help="16000, 24000, 32000 or 44100 (default: %(default)s)")
    gen.add_argument("--bitrate", type=int, default=256000, metavar="BPS",
                     help="32000, 64000, 128000 or 256000 (default: %(default)s)")
    inst = commands.add_parser("instrumental", help="Suno Add Instrumental: submit, follow, "
                                                    "download")
    inst.add_argument("source", metavar="SOURCE", help="a vocal track: a URL or a local file")
    inst.add_argument("--title", required=True, help="the track's title (up to 100 characters)")
    inst.add_argument("--tags", required=True, help="styles wanted")
    inst.add_argument("--negative-tags", required=True, help="styles to avoid")
    inst.add_argument("--vocal-gender", choices=("m", "f"), help="a hint: m or f")
    for name in ("style-weight", "weirdness-constraint", "audio-weight"):
        inst.add_argument(f"--{name}", type=float, metavar="0..1",
                          help=f"the {name.replace('-', ' ')}, 0 to 1 in steps of 0.01")
    inst.add_argument("--model", default="V4_5PLUS",
                      help="V4_5PLUS or V5; newer V... names pass through (default: %(default)s)")
    inst.add_argument("--out", metavar="DIR", default=".",
                      help="where to download the tracks (default: the current folder)")
    inst.add_argument("--no-wait", action="store_true",
                      help="print the task id and stop (follow it with `aiomusic task`)")
    task = commands.add_parser("task", help="show a task (Suno, or an AI/ML generation); "
                                            "--wait, --out to download")
    task.add_argument("task_id", metavar="TASK-ID", help="the task id a submission printed")
    task.add_argument("--service", choices=("suno", "aimlapi"), default=None,
                      help="whose task it is (default: aimlapi for an AI/ML generation id "
                           "'<uuid>:<model>', else suno)")
    task.add_argument("--kind", choices=("music", "stems", "wav", "midi", "mp4", "lyrics"),
                      default="music",
                      help="a Suno task's kind: a generation (music, default) or a follow-up")
    task.add_argument("--wait", action="store_true", help="wait until the task ends")
    task.add_argument("--out", metavar="DIR", help="download the results into DIR")
    commands.add_parser("credits", help="show the Suno account's remaining credits")
    uses = {"upload": ({"minimax", "suno"}, False), "generate": ({"minimax"}, False),
            "instrumental": ({"suno"}, True), "task": ({"suno", "aimlapi"}, True),
            "credits": ({"suno"}, False)}
    for name, (services, tasks) in uses.items():
        add_service_options(commands.choices[name], services=frozenset(services), tasks=tasks)


#: The formats MiniMax writes, by what an extension says.
_FORMATS = {"mp3": "mp3", "wav": "wav", "pcm": "pcm"}


def run_thin_command(args: argparse.Namespace) -> int:
    """Run one thin command; 0 done, 1 the service or the work failed, 2 usage."""
    output = Output(json_mode=args.json, plain=args.plain)
    command = COMMANDS[args.command]

    async def work(session: MusicSession, poll: PollSchedule | None) -> None:
        await command(session, args, output, poll)

    return run_session_command(args, output, work)


async def _upload(session: MusicSession, args: argparse.Namespace, output: Output,
                  _poll: PollSchedule | None) -> None:
    if args.suno:
        done = await session.suno.upload(args.file)
        output.say(f"uploaded: {done.download_url} (kept until {done.expires_at:%Y-%m-%d %H:%M} "
                   "UTC)")
        output.data({"download_url": done.download_url, "file_name": done.file_name,
                     "expires_at": done.expires_at})
        return
    ref = await session.minimax.upload_reference(args.file, purpose=args.purpose)
    output.say(f"voice_id: {ref.voice_id or '-'}\ninstrumental_id: {ref.instrumental_id or '-'}")
    output.data({"purpose": ref.purpose.value, "voice_id": ref.voice_id,
                 "instrumental_id": ref.instrumental_id, "trace_id": ref.trace_id})


async def _generate(session: MusicSession, args: argparse.Namespace, output: Output,
                    _poll: PollSchedule | None) -> None:
    out = Path(args.output)
    fmt = args.format or _FORMATS.get(AUDIO_EXTENSIONS.get(out.suffix.lower(), ""), "mp3")
    problem = check_extension(out.name, fmt)
    if problem is not None:  # before anything is uploaded or paid for
        raise PreflightError(f"{problem}; nothing was sent")
    # a command-line user naming nodir/x.mp3 wants nodir: made before paying, not after
    await anyio.Path(out.parent).mkdir(parents=True, exist_ok=True)
    lyrics = args.lyrics.replace("\\n", "\n") if args.lyrics is not None else \
        await anyio.Path(args.lyrics_file).read_text(encoding="utf-8")
    voice, instrumental = args.voice_id, args.instrumental_id
    if args.reference:
        ref = await session.minimax.upload_reference(args.reference, purpose=args.purpose)
        voice, instrumental = voice or ref.voice_id, instrumental or ref.instrumental_id
    try:
        setting = AudioSetting(format=fmt, sample_rate=args.sample_rate,
                               bitrate=args.bitrate)
    except ValueError as exc:
        reason = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        raise InputError(f"audio setting: {reason}", field="audio_setting") from exc
    result = await session.minimax.generate(out, lyrics=lyrics, refer_voice=voice,
                                            refer_instrumental=instrumental,
                                            audio_setting=setting)
    output.say(f"wrote {result.path}: {result.bytes_written} bytes, "
               f"{result.duration or 0:.1f} s, sha256 {result.sha256}")
    output.data({"path": result.path, "bytes": result.bytes_written,
                 "duration": result.duration, "sha256": result.sha256,
                 "trace_id": result.trace_id})


async def _instrumental(session: MusicSession, args: argparse.Namespace, output: Output,
                        poll: PollSchedule | None) -> None:
    source: str = args.source
    if not args.no_wait:  # the tracks will need a folder: make sure of it before paying
        await anyio.to_thread.run_sync(check_folder, Path(args.out))
    task = await session.suno.add_instrumental(
        source, title=args.title, tags=args.tags, negative_tags=args.negative_tags,
        vocal_gender=args.vocal_gender, style_weight=args.style_weight,
        weirdness_constraint=args.weirdness_constraint, audio_weight=args.audio_weight,
        model=args.model)
    output.say(f"task id: {task.task_id}")
    if args.no_wait:
        output.data({"task_id": task.task_id, "status": "submitted"})
        return
    # a Ctrl-C from here on leaves a paid task running: say how to follow it
    follow = task_command(task.task_id, f"--wait --out {args.out}")
    output.resume_hint = (f"task {task.task_id} was submitted and goes on at the service: "
                          f"follow it with `{follow}`")
    await _follow(task, Path(args.out), output, poll)


async def _task(session: MusicSession, args: argparse.Namespace, output: Output,
                poll: PollSchedule | None) -> None:
    if task_service(args.task_id, args.service) == "aimlapi":
        await _generation(session, args, output, poll)
        return
    if args.kind != "music":
        await _follow_up(session, args, output, poll)
        return
    task = session.suno.task(args.task_id)
    if args.wait or args.out:
        await _follow(task, Path(args.out) if args.out else None, output, poll)
        return
    record = await task.refresh()
    output.say(f"task {record.task_id}: {record.raw_status or record.status.value}")
    for track in record.tracks:
        output.say(f"  {track.id}: {track.title or ''} {track.audio_url or '(no audio yet)'}")
    output.data({"task_id": record.task_id, "status": record.status.value,
                 "tracks": [attrs.asdict(t) for t in record.tracks]})


async def _follow_up(session: MusicSession, args: argparse.Namespace, output: Output,
                     poll: PollSchedule | None) -> None:
    """``aiomusic task ID --kind stems|wav|midi|mp4|lyrics``: a Suno follow-up by its id."""
    task = session.suno.follow(args.task_id, kind=args.kind)
    if not (args.wait or args.out):
        snap = await task.refresh()
        output.say(f"{args.kind} task {task.task_id}: {snap.status}")
        output.data({"task_id": task.task_id, "kind": args.kind, "status": snap.status})
        return
    record = await task.wait(poll=poll)
    written: list[Path] = []
    if args.out is not None:
        folder = Path(args.out)
        await anyio.Path(folder).mkdir(parents=True, exist_ok=True)
        name = "".join(c if c.isalnum() or c in "._-" else "-" for c in task.task_id)[:100]
        if args.kind == "stems":
            written = list((await task.download(folder / name)).paths.values())
        elif args.kind in ("wav", "mp4"):
            written = [(await task.download(folder / f"{name}.{args.kind}")).path]
        elif args.kind == "midi":
            written = [await task.save(folder / f"{name}.mid")]
        else:
            path = folder / f"{name}.json"
            await anyio.Path(path).write_text(json.dumps(attrs.asdict(record), default=str,
                                                         indent=2), encoding="utf-8")
            written = [path]
    for path in written:
        output.say(f"wrote {path}")
    if not written:
        output.say(f"{args.kind} task {task.task_id}: done")
    output.data({"task_id": task.task_id, "kind": args.kind, "status": "done",
                 "files": [str(p) for p in written]})


def task_service(task_id: str, given: str | None) -> str:
    """Whose task ``task_id`` is: as given, else AI/ML for its '<id>:<model>' ids, else Suno."""
    return given or ("aimlapi" if ":" in task_id else "suno")


async def _generation(session: MusicSession, args: argparse.Namespace, output: Output,
                      poll: PollSchedule | None) -> None:
    """``aiomusic task ID --service aimlapi``: an AI/ML API generation, by its id."""
    task = session.aimlapi.task(args.task_id)
    if not (args.wait or args.out):
        snap = await task.refresh()
        output.say(f"generation {task.task_id}: {snap.status}")
        output.data({"task_id": task.task_id, "status": snap.status,
                     "urls": [a.url for a in snap.assets]})
        return
    await task.wait(poll=poll)
    if args.out is None:
        output.say(f"generation {task.task_id}: completed")
        output.data({"task_id": task.task_id, "status": "completed"})
        return
    await anyio.Path(args.out).mkdir(parents=True, exist_ok=True)
    name = "".join(c if c.isalnum() or c in "._-" else "-" for c in task.task_id)[:100]
    done = (await task.download(Path(args.out) / f"{name}.mp3")).download
    output.say(f"wrote {done.path}: {done.bytes_written} bytes, sha256 {done.sha256}")
    output.data({"task_id": task.task_id, "status": "completed",
                 "files": [{"path": done.path, "bytes": done.bytes_written,
                            "sha256": done.sha256}]})


async def _follow(task: SunoTask, out: Path | None, output: Output,
                  poll: PollSchedule | None) -> None:
    result = await task.wait(poll=poll)
    if out is None:
        output.say(f"task {task.task_id}: {result.status.value}, {len(result.tracks)} tracks")
        output.data({"task_id": task.task_id, "status": result.status.value,
                     "tracks": [t.audio_url for t in result.tracks]})
        return
    await anyio.Path(out).mkdir(parents=True, exist_ok=True)
    files = await result.download_all(out)
    for done in files:
        output.say(f"wrote {done.path}: {done.bytes_written} bytes, sha256 {done.sha256}")
    output.data({"task_id": task.task_id, "status": result.status.value,
                 "files": [{"path": f.path, "bytes": f.bytes_written, "sha256": f.sha256}
                           for f in files]})


async def _credits(session: MusicSession, _args: argparse.Namespace, output: Output,
                   _poll: PollSchedule | None) -> None:
    credits = await session.suno.get_credits()
    output.say(f"credits: {credits}")
    output.data({"credits": credits})


COMMANDS: dict[str, Command] = {"upload": _upload, "generate": _generate,
                                "instrumental": _instrumental, "task": _task,
                                "credits": _credits}
