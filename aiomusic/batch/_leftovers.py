"""Files of a batch's jobs on disk: digests, and what a killed run left half-written."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from .._core._log import logger
from .._core._operation import Output
from .._io._files import temporary_file_of
from .._io._folders import staging_of
from ._jobs import TRACK_NAME, Job

__all__ = ["remove_leftovers", "sha256_file"]


def sha256_file(path: Path) -> tuple[str, int]:
    """The SHA-256 and size of a file (run it in a worker thread)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def remove_leftovers(out: Path, jobs: Sequence[Job]) -> list[Path]:
    """Remove the temporary files that a killed run left for these jobs' outputs (worker thread).

    A file being written is a hidden temporary file until it is complete. A run that is killed
    (SIGKILL, a power cut) cannot remove it, so the next run of the same jobs does: the jobs
    own their outputs (their names are unique in a job file). Only the names a job can write
    are matched: a file job's ``out``, a track job's ``<out>-<n>.<ext>``, anything in a stem
    job's folder. Best effort: a file that cannot be removed is logged and left.
    """
    files: dict[Path, set[str]] = {}  # by folder: the file names jobs write
    stems: dict[Path, set[str]] = {}  # by folder: the name stems of jobs writing tracks
    for job in jobs:
        dest = out / job.out
        shape = job.op.output
        if shape is Output.STEMS:
            files.setdefault(dest, set()).add("*")  # inside: anything half-written
            files.setdefault(dest.parent, set()).add(dest.name)  # beside: its staging folder
        else:
            (stems if shape is Output.TRACKS else files).setdefault(dest.parent, set()).add(
                dest.name)
    removed: list[Path] = []
    for folder in files.keys() | stems.keys():
        try:
            entries = list(os.scandir(folder))
        except OSError:  # no folder yet, or none to read: the job's own writing will tell
            continue
        ours, our_stems = files.get(folder, set()), stems.get(folder, set())
        for entry in entries:
            target = temporary_file_of(entry.name)
            folder_of = staging_of(entry.name)
            if folder_of is not None and folder_of in ours:
                # a stems folder being staged when a run was killed: never complete, remove
                shutil.rmtree(entry.path, ignore_errors=True)
                logger.info("removed %s, a partial folder left by an earlier run", entry.path)
                removed.append(Path(entry.path))
                continue
            if target is None:
                continue
            track = TRACK_NAME.fullmatch(target)
            if target not in ours and "*" not in ours and \
                    not (track and track.group(1) in our_stems):
                continue
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                logger.warning("cannot remove %s, left by an earlier run: %s", entry.path,
                               exc.strerror or exc)
                continue
            logger.info("removed %s, a partial file left by an earlier run", entry.path)
            removed.append(Path(entry.path))
    return removed
