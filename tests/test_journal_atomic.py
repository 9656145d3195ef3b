"""A journal write of several statements is one transaction: all of it or none of it.

The journal's connection is in autocommit mode, where ``with connection:`` opens no
transaction; each statement committed alone, so a kill between the intent (the job's
``submitting``) and its ledger row kept the one without the other (seen by the kill -9 test
of chained jobs: a job ``unknown`` with no attempt in the ledger).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from aiomusic.batch._journal import Journal, JournalWriteError
from aiomusic.batch._journal_db import write

pytestmark = pytest.mark.anyio


async def test_a_failed_statement_undoes_the_ones_before_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = await Journal.open(path, endpoint="http://x")
    await journal.add("a", kind="k", fingerprint="f")
    with pytest.raises(JournalWriteError):
        await journal._run(write, journal._db, [
            ("UPDATE jobs SET state = 'submitting' WHERE id = ?", ("a",)),
            ("INSERT INTO no_such_table VALUES (1)", ())])
    assert not journal._db.in_transaction
    assert (await journal.records())["a"].state.value == "pending"
    await journal.aclose()


async def test_the_intent_and_its_ledger_row_are_one_transaction(tmp_path: Path) -> None:
    """Every statement of a write runs inside one open transaction (none commits alone)."""
    path = tmp_path / "journal.sqlite"
    journal = await Journal.open(path, endpoint="http://x")
    await journal.add("a", kind="k", fingerprint="f")
    seen: list[bool] = []
    journal._db.set_trace_callback(lambda sql: seen.append(journal._db.in_transaction)
                                   if sql.startswith(("UPDATE", "INSERT")) else None)
    await journal.sending("a", "suno.generate", 1)
    journal._db.set_trace_callback(None)
    assert seen == [True, True]
    await journal.aclose()
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT count(*) FROM attempts").fetchone()[0] == 1
