"""Batch progress for the ``aiomusic`` command: a live display, plain lines, or JSON lines.

All three are fed the session's [`JobProgress`][aiomusic.JobProgress] events and the outcomes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._core._events import JobProgress
from ..batch._runner import BatchSummary, JobOutcome
from ._common import Output

__all__ = ["Reporter", "describe_outcome", "outcome_dict", "summary_lines"]

_BYTE_STAGES = frozenset({"decoding", "downloading", "uploading"})
_END_STAGES = frozenset({"completed", "skipped", "failed", "unknown", "blocked"})


class Reporter:
    """Shows a batch as it runs; picks rich, plain or JSON output from ``output``."""

    def __init__(self, output: Output, *, total: int) -> None:
        self.output = output
        self.total = total
        self.ended = 0
        self._stages: dict[str, str] = {}
        self._progress: Any = None
        self._overall: Any = None
        self._rows: dict[str, str] = {}
        self._live: Any = None

    def __enter__(self) -> Reporter:
        if self.output.rich:
            from rich.console import Group
            from rich.live import Live
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
            from rich.table import Table

            self._progress = Progress("{task.description}", BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=self.output.console)
            self._overall = self._progress.add_task("jobs", total=self.total)
            reporter = self

            class _View:
                def __rich__(self) -> Group:
                    table = Table.grid(padding=(0, 2))
                    for job, text in list(reporter._rows.items())[:12]:
                        table.add_row(f"  {job}", text)
                    more = len(reporter._rows) - 12
                    if more > 0:
                        table.add_row(f"  ... {more} more", "")
                    return Group(reporter._progress, table)

            self._live = Live(_View(), console=self.output.console, refresh_per_second=8,
                              transient=True)
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
            self._progress = None

    # -- feeding ----------------------------------------------------------------------------

    def event(self, event: JobProgress) -> None:
        if event.stage in _END_STAGES:
            return  # the outcome says it
        if self._live is not None:
            self._show(event)
            return
        if self.output.json:
            return
        stage = event.stage + (f" ({event.detail})" if event.detail else "")
        if self._stages.get(event.job) == stage or (event.stage in _BYTE_STAGES and
                                                    self._stages.get(event.job, "")
                                                    .startswith(event.stage)):
            return  # plain output shows a change of stage once, not every byte count
        self._stages[event.job] = stage
        self.output.say(f"  ..    {event.job}: {stage}")

    def outcome(self, outcome: JobOutcome) -> None:
        self.ended += 1
        self._stages.pop(outcome.job.id, None)
        self._rows.pop(outcome.job.id, None)
        if self._progress is not None:
            self._progress.advance(self._overall)
        if self.output.json:
            self.output.data(outcome_dict(outcome))
            return
        style = {"completed": "green", "skipped": "cyan", "failed": "red",
                 "unknown": "yellow", "blocked": "magenta"}[outcome.status]
        self.output.say(f"[{self.ended:>{len(str(self.total))}}/{self.total}] "
                        f"{describe_outcome(outcome)}", style=style)

    def _show(self, event: JobProgress) -> None:
        text = event.stage
        if event.done is not None:
            text += f" {_size(event.done)}"
            if event.total:
                text += f" of {_size(event.total)}"
        if event.detail:
            text += f" ({event.detail})"
        self._rows[event.job] = text


def describe_outcome(outcome: JobOutcome) -> str:
    """One line about a job's end, for people."""
    job = outcome.job
    if outcome.ok:
        files = ", ".join(f"{f.path.name} ({_size(f.size)}, sha256 {f.sha256[:10]})"
                          for f in outcome.files)
        how = {"completed": "ok  ", "skipped": "done"}[outcome.status]
        extra = " [task resumed]" if outcome.resumed else ""
        note = f" - {outcome.note}" if outcome.note and outcome.status == "completed" else ""
        return f"{how}  {job.id}: {files}{extra}{note}"
    error = outcome.error
    label = {"failed": "FAIL", "blocked": "SKIP"}.get(outcome.status, "????")
    said = f"{type(error).__name__}: {error}" if error is not None else outcome.note
    task = f" (task {outcome.task_id})" if outcome.task_id else ""
    return f"{label}  {job.id}{task}: {said}"


def outcome_dict(outcome: JobOutcome) -> dict[str, Any]:
    """A job's end as JSON-ready data."""
    error = outcome.error
    return {
        "event": "job", "id": outcome.job.id, "service": outcome.job.kind,
        "status": outcome.status,
        "files": [{"path": str(f.path), "sha256": f.sha256, "bytes": f.size}
                  for f in outcome.files],
        "task_id": outcome.task_id, "trace_id": outcome.trace_id, "retries": outcome.retries,
        "resumed": outcome.resumed, "note": outcome.note or None,
        "error": None if error is None else {"type": type(error).__name__,
                                             "message": str(error)},
    }


def summary_lines(summary: BatchSummary, *, pauses: int = 0) -> list[str]:
    """The summary, for people."""
    done = summary.completed + summary.skipped
    # a rate over a few files or seconds (a resume that adopted one finished file) says
    # nothing: 1 file in 0.02 s read "3,612 songs per minute"
    rate = f", {summary.songs_per_minute:.0f} songs per minute" \
        if summary.files >= 2 and summary.seconds >= 5 else ""
    lines = [f"{done} of {summary.total} jobs done: {summary.files} audio files "
             f"({_size(summary.bytes)}) written in {summary.seconds:.1f} s{rate}"
             + (f"; {summary.skipped} already done before" if summary.skipped else "")]
    lines.append(f"retries absorbed: {_counts(summary.retry_reasons) or 'none'}; "
                 f"lane pauses: {pauses}")
    if summary.failed:
        lines.append(f"failed: {_counts(summary.failed)}")
    paid = {name.replace("_", " "): n for name, n in summary.submissions.items() if n}
    if paid:
        lines.append("paid requests sent: " + ", ".join(f"{n} {name}"
                                                          for name, n in paid.items()))
    if summary.to_check:
        lines.append(f"{len(summary.to_check)} job(s) may have been charged without their "
                     "audio; check your account (quote the ids) before paying again:")
        lines += [f"  {item['job']}: {item['fate']}" + "".join(
            f", {name} {item[key]}" for key, name in (("trace_id", "trace"),
                                                       ("task_id", "task")) if item[key])
            for item in summary.to_check]
        what = sorted({_AGAIN[str(item["fate"])] for item in summary.to_check})
        lines.append(f"  to pay for them again: --pay-again {' / '.join(what)} (or a job id)")
    if summary.blocked:
        lines.append(f"not run: {summary.blocked} job(s) whose parent (after) did not "
                     "complete; nothing was sent for them: they run when the same batch runs "
                     "again once their parent completes")
    if summary.stopped and summary.not_run:
        lines.append(f"not run: {summary.not_run} job(s) stay pending; run the same command "
                     "again once the cause below is fixed")
    return lines


_AGAIN = {"unknown": "unknown", "failed after taken": "failed", "missing": "missing"}


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} x {name}" for name, n in counts.items())


def _size(n: int) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    return f"{n / 1024:.1f} KiB"
