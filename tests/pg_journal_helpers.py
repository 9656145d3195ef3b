"""A fresh batch journal in PostgreSQL for each test: its own schema on the test server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest


def schema_url(server: str, schema: str) -> str:
    """``server`` with every connection's search_path set to ``schema`` (one batch each)."""
    sep = "&" if "?" in server else "?"
    return f"{server}{sep}options={quote(f'-csearch_path={schema}')}"


def sql(url: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    """Run one statement (committed); its rows."""
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        cur = conn.execute(query, args or None)
        return cur.fetchall() if cur.description is not None else []


@pytest.fixture
def pg_journal(postgres_url: str) -> Iterator[str]:
    """The URL of a batch journal in a schema of its own, dropped afterwards."""
    schema = f"aiomusic_test_{uuid.uuid4().hex[:12]}"
    sql(postgres_url, f"CREATE SCHEMA {schema}")
    try:
        yield schema_url(postgres_url, schema)
    finally:
        sql(postgres_url, f"DROP SCHEMA {schema} CASCADE")
