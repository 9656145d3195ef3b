from __future__ import annotations

import subprocess
import sys

import aiomusic


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then CamelCase names, then the rest, each sorted."""
    if name.isupper():
        return (0, name)
    return (1, name) if name[0].isupper() else (2, name)


def test_all_is_sorted_and_complete() -> None:
    assert aiomusic.__all__ == sorted(aiomusic.__all__, key=_isort_key)
    assert len(set(aiomusic.__all__)) == len(aiomusic.__all__)
    for name in aiomusic.__all__:
        assert hasattr(aiomusic, name), name


def test_version_is_exposed() -> None:
    assert aiomusic.__version__.count(".") >= 2


def test_every_error_derives_from_the_base() -> None:
    for name in aiomusic.__all__:
        obj = getattr(aiomusic, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, aiomusic.AiomusicError), name


def test_import_stays_light() -> None:
    """``import aiomusic`` adds neither the CLI's rich nor the emulator's server.

    httpx itself imports rich when click, rich and pygments are all installed, so what counts
    is what aiomusic loads beyond its own dependencies.
    """
    code = ("import sys, httpx, anyio, attrs, cattrs; before = set(sys.modules); "
            "import aiomusic; new = set(sys.modules) - before; "
            "bad = [m for m in ('rich', 'uvicorn', 'lameenc', 'starlette', 'sqlite3') "
            "if m in new]; print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""
