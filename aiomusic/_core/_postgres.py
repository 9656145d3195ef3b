"""What every PostgreSQL user of aiomusic checks first: the driver, and the URL."""

from __future__ import annotations

from typing import Any

from ._errors import ConfigurationError

__all__ = ["conninfo"]


def conninfo(url: str, *, what: str) -> dict[str, Any]:
    """The parts of ``url`` (a ``postgresql://`` URL or a libpq string), for ``what`` (the
    feature that needs PostgreSQL, for the message when psycopg is missing).

    Raises:
        ConfigurationError: psycopg is not installed, or ``url`` is not a PostgreSQL URL.
    """
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
    except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
        raise ConfigurationError(f'{what} in PostgreSQL need psycopg: '
                                 'pip install "aiomusic[postgres]"') from exc
    try:
        return conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigurationError("not a PostgreSQL URL: use postgresql://user@host/db"
                                 ) from exc
