"""A folder of files that appears whole or not at all (the stems of a separation).

The files are written into a hidden staging folder beside the target, which is renamed into
place only when every file is complete: a folder rename is atomic, so a reader sees no folder
or the whole set, and needs no marker file. On any failure (or cancellation) the staging folder
is removed. A killed process leaves ``.<name>.<hex>.partial`` behind; `staging_of()` names
the target such a folder belongs to, so the next batch run can remove it.
"""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

__all__ = ["atomic_folder", "staging_of"]

_STAGING = re.compile(r"\.(.+)\.[0-9a-f]{8}\.partial")


def staging_of(name: str) -> str | None:
    """The target folder's name, if ``name`` is a staging folder `atomic_folder` made."""
    found = _STAGING.fullmatch(name)
    return None if found is None else found.group(1)


@asynccontextmanager
async def atomic_folder(target: Path, *, overwrite: bool = False) -> AsyncIterator[Path]:
    """Yield a staging folder; on a clean exit it becomes ``target`` (atomically).

    Raises:
        FileExistsError: ``target`` exists and ``overwrite`` is false (checked first, and
            again before the rename).
    """
    if not overwrite and await anyio.Path(target).exists():
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    staging = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    await anyio.Path(staging).mkdir(parents=True)
    try:
        yield staging
        await anyio.to_thread.run_sync(_swap, staging, target, overwrite)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(shutil.rmtree, staging, True)
        raise


def _swap(staging: Path, target: Path, overwrite: bool) -> None:
    """Rename the complete ``staging`` folder to ``target`` (an old one goes only after)."""
    old = None
    if target.exists():
        if not overwrite:
            raise FileExistsError(f"{target} appeared meanwhile; nothing was replaced")
        old = target.with_name(f".{target.name}.{secrets.token_hex(4)}.old")
        target.rename(old)
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
