"""``aiomusic batch``: run a job file with a journal, progress and a summary."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import anyio
import attrs

from .._core._errors import AiomusicError, ConfigurationError
from .._core._events import Event, JobProgress, PauseStarted
from .._core._paid_errors import BatchStoppedError
from .._core._session import MusicSession
from ..batch._jobfile import JobFileError, load_jobs
from ..batch._jobs import Job
from ..batch._paid import Resubmit
from ..batch._runner import Batch, BatchSummary
from ._common import (
    EMBEDDED,
    EXIT_INTERRUPTED,
    Backend,
    Output,
    backend,
    positive_float,
    stop_on_signals,
)
from ._progress import Reporter, summary_lines

__all__ = ["DEFAULT_JOURNAL", "Drive", "add_batch_parser", "drive", "run_batch_command"]

DEFAULT_JOURNAL = "aiomusic-journal.sqlite"


def add_batch_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]
                     ) -> argparse.ArgumentParser:
    batch = commands.add_parser(
        "batch", help="run a job file (JSON Lines) concurrently, resumable",
        description="Run every job of a JSON Lines job file concurrently: MiniMax generations "
                    "and Suno Add Instrumental tasks, mixed. A journal records each job, so the "
                    "same command run again resumes: finished jobs are skipped, submitted Suno "
                    "tasks are followed by id, and nothing paid is sent twice. See "
                    "docs/batch.md for the job format.")
    batch.add_argument("jobs", metavar="JOBS", help="the job file (.jsonl, or .toml)")
    batch.add_argument("--out", metavar="DIR", help="folder for the audio (required, except "
                                                    "for --report with --journal)")
    batch.add_argument("--journal", metavar="FILE",
                       help=f"the journal (default: DIR/{DEFAULT_JOURNAL})")
    batch.add_argument("--no-journal", action="store_true", help="keep no journal (no resume)")
    batch.add_argument("--concurrency", type=_positive_int, default=8, metavar="N",
                       help="jobs working at once (default: %(default)s)")
    batch.add_argument("--report", action="store_true",
                       help="print the journal's ledger of an earlier run (every paid attempt "
                            "and its fate, with trace ids) and stop; sends nothing, needs no "
                            "key")
    money = batch.add_argument_group(
        "options that may cost money",
        "A re-run pays only for jobs the service never took. These send paid requests again "
        "for jobs an earlier run may already have paid for: you may pay twice.")
    money.add_argument("--pay-again", action="append", default=[], metavar="WHAT",
                       help="pay again for: 'unknown' (jobs whose paid request has an unknown "
                            "fate), 'failed' (the service took the job and then it failed), "
                            "'missing' (a finished job's file is gone), or a JOB-ID; "
                            "repeatable. MAY COST MONEY")
    money.add_argument("--resubmit-unknown", action="store_true",
                       help="the same as --pay-again unknown. MAY COST MONEY")
    batch.add_argument("--generate-timeout", type=positive_float, default=600.0, metavar="S",
                       help="seconds per MiniMax generation (default: %(default)s)")
    batch.add_argument("--task-timeout", type=positive_float, default=900.0, metavar="S",
                       help="seconds to wait for each Suno task (default: %(default)s)")
    return batch


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def run_batch_command(args: argparse.Namespace) -> int:
    output = Output(json_mode=args.json, plain=args.plain)
    if args.out is None and not (args.report and args.journal):
        output.error("--out DIR is required (--report needs --out DIR or --journal FILE)")
        return 2
    journal = None if args.no_journal else Path(args.journal or Path(args.out) / DEFAULT_JOURNAL)
    if args.report:
        from ._report import print_report

        return print_report(journal, Path(args.jobs), output)
    try:
        jobs = load_jobs(args.jobs)
    except JobFileError as exc:
        output.error(str(exc))
        return 2
    except IsADirectoryError:
        output.error(f"{args.jobs} is a folder: give the job file in it (.jsonl or .toml)")
        return 2
    except OSError as exc:
        output.error(f"cannot read the job file {args.jobs}: {exc.strerror or exc}")
        return 2
    again = tuple(args.pay_again) + (("unknown",) if args.resubmit_unknown else ())
    try:
        Resubmit.parse(again, job_ids=[job.id for job in jobs])
    except ValueError as exc:
        output.error(f"--pay-again: {exc}")
        return 2
    with backend(args) as where:
        output.say(f"{len(jobs)} jobs against {where.label}")
        result = anyio.run(drive, Drive(where, jobs, Path(args.out), journal, args.concurrency,
                                        again, args.generate_timeout, args.task_timeout,
                                        job_file=Path(args.jobs)), output)
        # Reported before an embedded emulator stops: a late Ctrl-C loses nothing then.
        return finish(result, output, journal=journal, again="the same command",
                      ephemeral=where.endpoint == EMBEDDED)


@attrs.frozen
class Drive:
    """One batch to run from the command line."""

    backend: Backend
    jobs: Sequence[Job]
    out: Path
    journal: Path | None
    concurrency: int = 8
    pay_again: tuple[str, ...] = ()
    generate_timeout: float = 600.0
    task_timeout: float = 900.0
    job_file: Path | None = None


@attrs.frozen
class Result:
    summary: BatchSummary | None
    pauses: int = 0
    error: str | None = None
    signal: int | None = None
    usage: bool = False  # the batch stopped before paying for anything: exit 2


async def drive(plan: Drive, output: Output) -> Result:
    """Run the batch with progress; Ctrl-C stops it cleanly (twice: at once)."""
    pauses = 0
    try:
        async with stop_on_signals() as stop, MusicSession(**plan.backend.session) as session:
            batch = Batch(session, plan.jobs, out=plan.out, journal=plan.journal,
                          concurrency=plan.concurrency, resubmit=plan.pay_again,
                          job_file=plan.job_file, generate_timeout=plan.generate_timeout,
                          task_timeout=plan.task_timeout, poll=plan.backend.poll,
                          endpoint=plan.backend.endpoint)
            with Reporter(output, total=len(plan.jobs)) as reporter:

                def listen(event: Event) -> None:
                    nonlocal pauses
                    if isinstance(event, JobProgress):
                        reporter.event(event)
                    elif isinstance(event, PauseStarted):
                        pauses += 1

                session.subscribe(listen)
                with stop.scope:
                    async with batch.results() as results:
                        async for outcome in results:
                            reporter.outcome(outcome)
    except ConfigurationError as exc:  # JournalError, PreflightError: nothing was sent
        return Result(None, error=f"{type(exc).__name__}: {exc}")
    except BatchStoppedError as exc:
        # exit 2 when this run paid for nothing (a refused key, a full disk at the start)
        paid = batch.summary.submissions
        nothing = not any(paid.get(f) for f in ("taken", "unknown", "failed_after_taken"))
        return Result(batch.summary, pauses, error=f"{type(exc).__name__}: {exc}",
                      signal=stop.signal, usage=nothing)
    except AiomusicError as exc:  # before any job ran (the journal's disk, say)
        return Result(None, error=f"{type(exc).__name__}: {exc}")
    return Result(batch.summary, pauses, signal=stop.signal)


def finish(result: Result, output: Output, *, journal: Path | None, again: str,
           ephemeral: bool = False) -> int:
    """Print the summary (or the error) and choose the exit status.

    ``ephemeral``: the services were an embedded emulator, whose tasks end with the command.
    """
    if result.summary is None:
        output.error(result.error or "the batch did not run")
        return 2
    summary = result.summary
    if output.json:
        output.data({"event": "summary", **summary.as_dict(), "pauses": result.pauses,
                     "journal": str(journal) if journal else None})
    else:
        output.say("")
        for line in summary_lines(summary, pauses=result.pauses):
            output.say(line)
    if result.error is not None:  # stopped sending paid requests: the journal says the rest
        output.error(result.error)
        return 2 if result.usage else 1
    if result.signal is not None or summary.interrupted:
        if journal is not None:
            hint = (f"stopped: the journal {journal} is consistent; run {again} again to "
                    "resume (finished jobs are skipped, submitted tasks followed by id)")
            if ephemeral:
                hint += ("; but the embedded emulator's Suno tasks ended with this command, so "
                         "to resume them, run `aiomusic emulator` in another terminal and pass "
                         "its --base-url instead of --emulator")
        else:
            hint = "stopped; no journal was kept, so a new run starts over"
        output.error(hint)
        return EXIT_INTERRUPTED
    return 0 if summary.ok else 1
