"""Every code example in README.md and docs/*.md runs, against the emulator.

The convention (docs/architecture.md sums it up for writers):

- **Every ```python block runs.** The blocks of one page run in page order, in one namespace
  (``__name__ == "__main__"``), like the cells of a notebook: a later block may use what an
  earlier block of the same page imported or defined. A block may use top-level ``await``,
  ``async with`` and ``async for``, as in ``python -m asyncio``; such a block runs in an asyncio
  event loop. A block that calls ``anyio.run(main)`` runs as it is.
- **Where it runs.** Each page runs in a fresh temporary folder holding sample tracks
  (``reference.mp3``, ``reference.wav``, ``my-song.mp3``, ``vocals.mp3``, ``vocals.wav``, all
  longer than 10 s), with ``AIMLAPI_KEY``, ``MINIMAX_API_KEY`` and ``SUNO_API_KEY`` set to a
  test key. A ``MusicSession`` created without ``base_url=``, ``endpoints=`` or
  ``http_client=`` (an example written for the real services) is pointed at the shared
  emulator, with plain-http downloads allowed from it and Suno polled every few hundredths of a
  second instead of seconds. Nothing else differs: an example that names its own emulator
  (``with Emulator() as emu: ... base_url=emu.url``) runs exactly as printed.
- **Files.** A fenced block of any language with a ``title="NAME"`` attribute (which the site
  shows as the block's caption) is also written to ``NAME`` in the page's folder before the
  page runs, so a page can show a job file and then use it. A titled ``test_*.py`` block is
  a user's test module: after the page's blocks, pytest runs it there and it must pass.
- **Shell.** In ```console blocks (commands after ``$ ``) and ```bash / ```sh / ```shell
  blocks, a command that starts with ``aiomusic`` and passes ``--emulator`` is self-contained
  and cheap, so it runs (in page order, in the page's folder) and must exit with status 0. Its
  printed output is not compared. Other shell commands are shown, not run.
- **Excerpts.** A block that shows part of a file whose own tests run it
  (``examples/fastapi_app.py``: ``tests/test_fastapi_example.py``) holds the real code, so
  that the page reads well anywhere (GitHub, an editor), and has
  ``<!-- doc-test: excerpt PATH:NAME -->`` on the line before its fence. It is not run; it
  must equal the lines between the file's ``--8<-- [start:NAME]`` and ``--8<-- [end:NAME]``
  comments, dedented, so it cannot drift. Snippet lines (``--8<-- "path"``) inside a fence
  are refused: outside the docs site they show as themselves instead of the code.
- **Skipping**, only where running is impossible: ``<!-- doc-test: skip REASON -->`` on the
  line before the fence. The reason is required.
"""

from __future__ import annotations

import ast
import inspect
import re
import shlex
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

import aiomusic
from aiomusic import MusicSession
from aiomusic.emulator import Emulator, sample_track
from aiomusic.suno import PollSchedule

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
KEY = "doc-test-key"
SHELLS = {"console", "bash", "sh", "shell"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
_SKIP = re.compile(r"\s*<!--\s*doc-test:\s*skip\b\s*(?P<reason>.*?)\s*-->\s*")
_EXCERPT = re.compile(
    r"\s*<!--\s*doc-test:\s*excerpt\s+(?P<path>[^\s:]+):(?P<name>[\w-]+)\s*-->\s*")
_MARKER = re.compile(r"\s*<!--\s*doc-test:")  # a marker stands alone on its line
_SNIPPET = re.compile(r"^\s*-{1,}8<-{1,}\s+\"(?P<path>[^\"]+)\"\s*$")
_TITLE = re.compile(r"""title=(?P<q>["'])(?P<title>.+?)(?P=q)""")


@attrs.frozen
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    title: str | None
    source: str
    skip: str | None  # the reason, when marked
    excerpt: tuple[str, str] | None = None  # (path, section name), when marked

    @property
    def where(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page
        return f"{page}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page``, in order, with their doc-test markers."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence, info = opening["indent"], opening["fence"], opening["info"].strip()
        language = info.split()[0].strip("{}.").lower() if info else ""
        title = _TITLE.search(info)
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not (lines[i].strip().startswith(fence) and
                                      lines[i].strip().strip(fence[0]) == ""):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else
                        lines[i].lstrip())
            i += 1
        i += 1
        before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        skip, excerpt = _SKIP.fullmatch(before), _EXCERPT.fullmatch(before)
        found.append(Block(page, start + 1, language, title["title"] if title else None,
                           "\n".join(body) + "\n", skip["reason"] if skip else None,
                           (excerpt["path"], excerpt["name"]) if excerpt else None))
    return found


def section(path: str, name: str) -> str:
    """The lines between ``--8<-- [start:name]`` and ``--8<-- [end:name]`` in ``path``,
    dedented: what an excerpt of that section must show."""
    target = ROOT / path
    assert target.is_file(), f"{path} does not exist"
    lines = target.read_text(encoding="utf-8").splitlines()
    edges = [[i for i, text in enumerate(lines) if f"--8<-- [{edge}:{name}]" in text]
             for edge in ("start", "end")]
    assert [len(found) for found in edges] == [1, 1] and edges[0][0] < edges[1][0], \
        f"{path} needs one '--8<-- [start:{name}]' and, after it, one '--8<-- [end:{name}]'"
    return textwrap.dedent("\n".join(lines[edges[0][0] + 1:edges[1][0]])) + "\n"


def no_snippets(block: Block) -> None:
    """A snippet line reads as itself outside the docs site: a page shows the code instead."""
    for text in block.source.splitlines():
        assert _SNIPPET.match(text) is None, (
            f"{block.where}: {text.strip()!r} shows as a marker on GitHub and in editors; "
            "paste the code and mark the block '<!-- doc-test: excerpt PATH:NAME -->'")


def commands(block: Block) -> Iterator[list[str]]:
    """The self-contained ``aiomusic ... --emulator`` commands of a shell block."""
    joined: list[str] = []
    pending = ""
    for text in block.source.splitlines():
        pending += text.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        joined.append(pending)
        pending = ""
    for text in joined:
        stripped = text.strip()
        if block.language == "console":
            if not stripped.startswith("$ "):
                continue  # printed output
            stripped = stripped[2:]
        words = shlex.split(stripped, comments=True)
        if not words or words[0] != "aiomusic" or "--emulator" not in words:
            continue
        assert not set(words) & {"|", "||", "&", "&&", ";", ">", "<"}, \
            f"{block.where}: cannot run {stripped!r} without a shell; mark it skip"
        yield words


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.fixture
def page_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, fmt, seed in (("reference.mp3", "mp3", 1), ("reference.wav", "wav", 1),
                            ("my-song.mp3", "mp3", 2), ("vocals.mp3", "mp3", 3),
                            ("vocals.wav", "wav", 3)):
        (tmp_path / name).write_bytes(sample_track(12.0, format=fmt, seed=seed))
    for name in ("AIMLAPI_KEY", "MINIMAX_API_KEY", "SUNO_API_KEY"):
        monkeypatch.setenv(name, KEY)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def redirected(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """Sessions written for the real services talk to the emulator instead."""
    original = MusicSession.__init__

    def init(self: MusicSession, *args: Any, **kwargs: Any) -> None:
        real = all(kwargs.get(name) is None for name in ("base_url", "endpoints", "http_client"))
        if real:
            kwargs["base_url"] = emulator.url
            kwargs["allow_http_hosts"] = (*kwargs.get("allow_http_hosts", ()), "127.0.0.1")
        original(self, *args, **kwargs)
        if real:  # the shared emulator finishes a task at once: the first poll finds it done
            self.suno.poll_schedule = PollSchedule(initial=0.02, maximum=0.1)
            self.aimlapi.poll_schedule = PollSchedule(initial=0.02, maximum=0.1)

    monkeypatch.setattr(MusicSession, "__init__", init)
    return emulator


def run_python(block: Block, source: str, namespace: dict[str, Any]) -> None:
    code = compile(source, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                   dont_inherit=True)
    if not code.co_flags & inspect.CO_COROUTINE:
        exec(code, namespace)  # noqa: S102 - the docs' own examples
        return
    coroutine = eval(code, namespace)  # noqa: S307 - top-level await gives a coroutine

    async def main() -> None:
        await coroutine

    anyio.run(main)


def run_command(block: Block, words: list[str], folder: Path) -> None:
    program = "import sys; from aiomusic.cli import main; sys.exit(main())"
    done = subprocess.run([sys.executable, "-c", program, *words[1:]], cwd=folder,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, (f"{block.where}: {shlex.join(words)} exited with "
                                  f"{done.returncode}\n{done.stdout}\n{done.stderr}")


def run_tests(block: Block, folder: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           block.title or ""], cwd=folder, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, f"{block.where}: pytest failed\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_page_examples_run(page: Path, page_folder: Path, redirected: Emulator,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    found = blocks(page)
    for block in found:
        if block.title and block.skip is None:
            target = page_folder / block.title
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.source, encoding="utf-8")
    # The page runs as a script does: as the __main__ module (dataclasses and pydantic look
    # names up through sys.modules).
    main = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", main)
    namespace: dict[str, Any] = main.__dict__
    for block in found:
        if block.skip is not None or block.excerpt is not None:
            continue
        if block.language in ("python", "py"):
            run_python(block, block.source, namespace)
        elif block.language in SHELLS:
            for words in commands(block):
                run_command(block, words, page_folder)
    for block in found:
        if block.skip is None and block.title and re.fullmatch(r"test_\w*\.py", block.title):
            run_tests(block, page_folder)


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_markers_are_well_formed(page: Path) -> None:
    """A marker that does not parse would silently do nothing; a skip needs its reason."""
    text = page.read_text(encoding="utf-8")
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if not _MARKER.match(line):
            continue
        skip = _SKIP.fullmatch(line)
        assert (skip is not None and skip["reason"]) or _EXCERPT.fullmatch(line), \
            (f"{_page_id(page)}:{number}: use '<!-- doc-test: skip REASON -->' or "
             "'<!-- doc-test: excerpt PATH:NAME -->'")
        following = next((t for t in lines[number:] if t.strip()), "")
        assert _FENCE.match(following), \
            f"{_page_id(page)}:{number}: a doc-test marker goes on the line before a fence"
    for block in blocks(page):
        no_snippets(block)


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_excerpts_equal_their_sections(page: Path) -> None:
    """The code a page copies from a file is still that file's code."""
    for block in blocks(page):
        if block.excerpt is not None:
            path, name = block.excerpt
            assert block.source == section(path, name), \
                f"{block.where}: copy the section {name!r} of {path} here again"


def test_the_harness_finds_the_examples() -> None:
    """A parser regression must not turn the doc tests into no tests."""
    readme = [b for b in blocks(ROOT / "README.md") if b.language == "python"]
    assert len(readme) >= 3
    assert all("import" in b.source or "await" in b.source for b in readme)
    sample = blocks(ROOT / "docs" / "emulator.md")
    assert any(b.language == "console" for b in sample)


def test_parsing_of_fences_markers_titles_and_excerpts(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Text.\n\n<!-- doc-test: skip needs a real public URL -->\n```python\nx = 1\n```\n\n"
        "!!! note\n\n    ```json title=\"jobs/one.json\"\n    {\"a\": 1}\n    ```\n\n"
        "````markdown\n```python\nnot a block of its own\n```\n````\n\n"
        "<!-- doc-test: excerpt examples/fastapi_app.py:jobs -->\n```python\ndef add_song(): ...\n"
        "```\n\n```python\n--8<-- \"examples/fastapi_app.py:errors\"\n```\n", encoding="utf-8")
    first, titled, nested, excerpt, snippet = blocks(page)
    assert (first.line, first.language, first.skip) == (4, "python", "needs a real public URL")
    assert first.excerpt is None and no_snippets(first) is None
    assert (titled.language, titled.title, titled.source) == ("json", "jobs/one.json",
                                                              '{"a": 1}\n')
    assert nested.language == "markdown" and "not a block of its own" in nested.source
    assert (excerpt.excerpt, excerpt.skip) == (("examples/fastapi_app.py", "jobs"), None)
    # a section is the lines between its markers, dedented (this one is a method)
    jobs = section("examples/fastapi_app.py", "jobs")
    assert jobs.startswith("def add_song(self, ") and "--8<--" not in jobs
    assert excerpt.source != jobs
    with pytest.raises(AssertionError, match="one '--8<-- \\[start:nope\\]'"):
        section("examples/fastapi_app.py", "nope")
    with pytest.raises(AssertionError, match="shows as a marker on GitHub"):
        no_snippets(snippet)


def test_shell_commands_that_run() -> None:
    block = Block(ROOT / "README.md", 1, "console", None,
                  "$ aiomusic demo --emulator --songs 2 \\\n    --plain\nsome output\n"
                  "$ aiomusic emulator --port 8765\n$ aiomusic upload x.wav  # real service\n",
                  None)
    assert list(commands(block)) == [["aiomusic", "demo", "--emulator", "--songs", "2",
                                      "--plain"]]
    bash = attrs.evolve(block, language="bash",
                        source="aiomusic batch jobs.jsonl --emulator | tee log\n")
    with pytest.raises(AssertionError, match="without a shell"):
        list(commands(bash))


def test_every_error_class_has_an_entry_in_the_errors_reference() -> None:
    text = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^#{2,4} `?(\w+)`?\s*$", text, flags=re.MULTILINE))
    public = {name for name in aiomusic.__all__
              if isinstance(getattr(aiomusic, name), type)
              and issubclass(getattr(aiomusic, name), BaseException)}
    assert public - headings == set(), "add these to docs/errors.md"
    stale = {name for name in headings if name.endswith("Error")} - public
    assert stale == set(), "these are not aiomusic's errors (any more)"


def test_the_service_code_table_matches_the_classifier() -> None:
    from aiomusic._core._classify import HTTP_STATUSES, MINIMAX_CODES, SUNO_CODES

    text = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    table = text[text.index("## Service codes"):]
    tables = {"AI/ML API": HTTP_STATUSES, "MiniMax": MINIMAX_CODES, "Suno": SUNO_CODES}
    seen: dict[str, dict[int, tuple[str, bool]]] = {name: {} for name in tables}
    for row in table.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        code = re.match(r"(\d{3,4})\b", cells[1]) if len(cells) == 6 else None
        service = next((s for s in tables if cells[0].startswith(s)), None)
        if code is None or service is None:
            continue
        exception = re.search(r"`(\w+)`", cells[3])
        assert exception is not None, row
        seen[service][int(code[1])] = (exception[1], cells[4].startswith("yes"))
    for service, rules in tables.items():
        expected = {code: (rule.error.__name__, rule.retryable) for code, rule in rules.items()}
        assert seen[service] == expected, service
