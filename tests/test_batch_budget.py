"""Spending you can see and cap in batches (issue 21): the ledger per job and service, the
budget guard around each paid submission, the journal's ``spending`` table, resumes.

Money is checked with the emulator's own counters: what reached it as a paid submission.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from aiomusic import (
    Batch,
    Budget,
    Cost,
    JobOutcome,
    LaneConfig,
    Ledger,
    MusicSession,
    PollSchedule,
    RetryPolicy,
)
from aiomusic.batch._jobfile import parse_jobs
from aiomusic.batch._journal import Journal
from aiomusic.batch._outcome import spending_lines, spent
from aiomusic.batch._spend import parse_budget
from aiomusic.emulator import Emulator, EmulatorConfig, Limits, Timings

from .test_cli_batch import run_in_pty

pytestmark = pytest.mark.anyio
KEY = "sk-budget-5e1f"
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05, maintenance_delay=0.01)
TINY = PollSchedule(initial=0.01, maximum=0.05)
STABLE = 80_000  # credits the emulator charges for one stable-audio clip ($0.04)


#: The emulator runs without limits here: the lanes need not keep the real services' pace.
OPEN = {f"{service}.{lane}": LaneConfig(max_concurrency=32)
        for service in ("suno", "aimlapi", "minimax") for lane in ("submit", "poll", "transfer")}


def session(emulator: Emulator) -> MusicSession:
    return MusicSession(aimlapi_key=KEY, suno_key=KEY, minimax_key=KEY, base_url=emulator.url,
                        allow_http_hosts=("127.0.0.1",), retry=FAST, lanes=OPEN,
                        suno_callback_url="http://127.0.0.1:9/no-op")


def clip(job_id: str, model: str = "stable-audio", **extra: Any) -> dict[str, Any]:
    fields = {"seconds_total": 5} if model == "stable-audio" else {}
    return {"id": job_id, "service": "aimlapi", "op": "generate", "model": model,
            "prompt": f"rain {job_id}", **fields, **extra}


async def run(emulator: Emulator, lines: list[dict[str, Any]], base: Path, *,
              budget: Any = None, journal: Path | None = None, concurrency: int = 8
              ) -> tuple[dict[str, JobOutcome], Batch]:
    jobs = parse_jobs(list(enumerate(lines, 1)), base=base)
    found: dict[str, JobOutcome] = {}
    async with session(emulator) as s:
        batch = Batch(s, jobs, out=base / "out", poll=TINY, budget=budget, journal=journal,
                      concurrency=concurrency)
        async with batch.results() as results:
            async for outcome in results:
                found[outcome.job.id] = outcome
    return found, batch


def states(journal: Path) -> dict[str, str]:
    with closing(sqlite3.connect(journal)) as db:
        return dict(db.execute("SELECT id, state FROM jobs").fetchall())


async def test_every_aiml_job_carries_its_cost_and_the_summary_adds_them_up(
        emulator: Emulator, tmp_path: Path) -> None:
    found, batch = await run(emulator, [clip("a"), clip("b"), clip("c")], tmp_path)
    assert {o.status for o in found.values()} == {"completed"}
    assert all(o.cost is not None and o.cost.amount == STABLE for o in found.values())
    lines = {line["unit"]: line for line in batch.summary.spending}
    assert lines["credits"]["charged"] == 3 * STABLE
    assert lines["credits"]["unknown"] == 0
    assert lines["submissions"]["total"] == 3
    assert sorted(j["job"] for j in batch.summary.jobs_spent) == ["a", "b", "c"]
    assert batch.summary.spending_lines() == ["aimlapi: 240,000 credits, 3 paid submissions"]
    assert batch.summary.held_back == 0 and batch.summary.budget == ()


async def test_a_credits_budget_stops_before_the_limit_and_holds_the_rest_pending(
        emulator: Emulator, tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    lines = [clip(f"s{i}") for i in range(10)]
    found, batch = await run(emulator, lines, tmp_path, journal=journal,
                             budget=Budget(200_000, "credits", service="aimlapi"))
    # the first is a probe (its cost unknown until it ends), then one more fits: 160,000
    assert emulator.counters.paid(key=KEY) == 2
    assert len(found) == 2 and {o.status for o in found.values()} == {"completed"}
    summary = batch.summary
    assert summary.held_back == 8 and not summary.interrupted
    assert "budget 200,000 credits on aimlapi" in summary.budget[0]
    held = [job for job, state in states(journal).items() if state == "pending"]
    assert len(held) == 8  # never sent: pending, not unknown
    # a bigger budget in all: what the first run spent counts
    found, batch = await run(emulator, lines, tmp_path, journal=journal,
                             budget=Budget(400_000, "credits", service="aimlapi"))
    assert emulator.counters.paid(key=KEY) == 5
    assert sum(o.status == "completed" for o in found.values()) == 3
    assert batch.summary.held_back == 5
    credits = next(x for x in batch.summary.spending if x["unit"] == "credits")
    assert credits["charged"] == 5 * STABLE
    opened = await Journal.open(journal, endpoint=None)
    rows = await opened.spending()
    await opened.aclose()
    assert len(rows) == 5 and {r.state for r in rows} == {"charged"}


# -- the command line -------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("aimlapi=5usd", Budget(5, "usd", service="aimlapi"), id="usd"),
    pytest.param("aimlapi=$0.50", Budget(0.5, "usd", service="aimlapi"), id="dollar-sign"),
    pytest.param("suno=500credits~12", Budget(500, "credits", service="suno", estimate=12),
                 id="credits-with-estimate"),
    pytest.param("200", Budget(200, "submissions"), id="submissions-everywhere"),
    pytest.param("minimax=1_000 submissions", Budget(1000, "submissions", service="minimax"),
                 id="submissions-one-service"),
])
def test_budget_words(text: str, expected: Budget) -> None:
    assert parse_budget(text) == expected


@pytest.mark.parametrize(("text", "said"), [
    pytest.param("five dollars", "cannot read the budget", id="words"),
    pytest.param("aimlapi=5eur", "unknown unit 'eur'", id="unit"),
    pytest.param("udio=5usd", "unknown service 'udio'", id="service"),
    pytest.param("500credits", "needs a service", id="credits-without-service"),
])
def test_budget_words_that_say_nothing_are_refused(text: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        parse_budget(text)


def _jobfile(folder: Path, lines: list[dict[str, Any]]) -> Path:
    path = folder / "jobs.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "AIMLAPI_KEY": KEY, "COLUMNS": "120", "AIOMUSIC_LOG": ""}
    return subprocess.run([sys.executable, "-m", "aiomusic.cli", *args], capture_output=True,
                          text=True, env=environ, timeout=120, check=False)


def test_cli_budget_summary_and_report(emulator: Emulator, tmp_path: Path) -> None:
    jobs = _jobfile(tmp_path, [clip(f"s{i}") for i in range(6)])
    out = tmp_path / "out"
    base = ["batch", str(jobs), "--out", str(out), "--base-url", emulator.url,
            "--allow-http-host", "127.0.0.1", "--poll-interval", "0.05"]
    assert _cli(*base, "--budget", "aimlapi=5eur").returncode == 2
    assert emulator.counters.paid() == 0
    done = _cli(*base, "--budget", "aimlapi=200000credits", "--json")
    assert done.returncode == 1, done.stderr  # not every job ran
    objects = [json.loads(line) for line in done.stdout.splitlines()]
    summary = objects[-1]
    assert summary["held_back"] == 4 and emulator.counters.paid() == 2
    assert "200,000 credits on aimlapi" in summary["budget"][0]
    credits = next(x for x in summary["spending"] if x["unit"] == "credits")
    assert credits["charged"] == 2 * STABLE
    costs = [o["cost"] for o in objects if o.get("event") == "job"]
    assert costs == [{"amount": STABLE, "unit": "credits", "service": "aimlapi",
                      "usd": None}] * 2
    plain = _cli(*base, "--budget", "aimlapi=200000credits")
    assert plain.returncode == 1 and emulator.counters.paid() == 2  # still stopped
    assert "spent: aimlapi: 160,000 credits, 2 paid submissions" in plain.stdout
    assert "held back by the budget: 4 job(s) never sent" in plain.stdout
    status, text = run_in_pty([sys.executable, "-m", "aiomusic.cli", *base,
                               "--budget", "aimlapi=200000credits"])
    assert status == 1 and "held back by the budget: 4 job(s)" in text
    report = _cli(*base, "--report")
    assert "spent: aimlapi: 160,000 credits" in report.stdout
    assert report.stdout.count("aimlapi  80,000 credits") == 2
    as_json = [json.loads(x) for x in _cli(*base, "--report", "--json").stdout.splitlines()]
    spent = [x for x in as_json if x["event"] == "spent"]
    assert len(spent) == 2 and {x["amount"] for x in spent} == {STABLE}
    help_text = _cli("batch", "--help").stdout
    assert "--budget" in help_text and "never sends anything again" in help_text


# -- the test: 200 mixed jobs stop at their budgets ------------------------------------

def mixed(count: int) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for i in range(count):
        kind = i % 3
        if kind == 0:
            lines.append(clip(f"a{i:03}"))
        elif kind == 1:
            lines.append({"id": f"s{i:03}", "service": "suno", "op": "generate",
                          "prompt": f"a song about the number {i}"})
        else:
            lines.append({"id": f"m{i:03}", "service": "minimax", "op": "song",
                          "prompt": "calm", "is_instrumental": True})
    return lines


async def test_two_hundred_mixed_jobs_stop_at_their_budgets_leaving_nothing_unknown(
        emulator: Emulator, tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    budgets = [Budget(1_000_000, "credits", service="aimlapi"),  # 12 clips at 80,000
               Budget(30, "submissions", service="suno"),
               Budget(25, "submissions", service="minimax")]
    found, batch = await run(emulator, mixed(200), tmp_path, journal=journal, budget=budgets,
                             concurrency=16)
    counters = emulator.counters
    assert dict(counters.submissions) == {(KEY, "aiml.audio.submit"): 12,
                                          (KEY, "suno.generate"): 30,
                                          (KEY, "minimax.generate"): 25}
    # every job the guard admitted ran to its end; none was left unknown
    assert len(found) == 67 and {o.status for o in found.values()} == {"completed"}
    summary = batch.summary
    assert summary.held_back == 133 and summary.unknown == 0 and not summary.interrupted
    assert len(summary.budget) == 3
    journaled = states(journal)
    assert sorted(set(journaled.values())) == ["completed", "pending"]
    assert sum(s == "pending" for s in journaled.values()) == 133
    spent = {(x["service"], x["unit"]): x for x in summary.spending}
    assert spent["aimlapi", "credits"]["charged"] == 12 * STABLE <= 1_000_000
    assert spent["suno", "submissions"]["total"] == 30
    assert spent["minimax", "submissions"]["total"] == 25


async def test_a_suno_credits_budget_measures_its_probe_by_the_balance(
        emulator: Emulator, tmp_path: Path) -> None:
    lines = [{"id": f"s{i}", "service": "suno", "op": "generate", "prompt": f"song {i}"}
             for i in range(6)]
    found, batch = await run(emulator, lines, tmp_path,
                             budget=Budget(40, "credits", service="suno"))
    # the emulator charges 12 credits a task: the probe measured it, two more fit (36)
    assert emulator.counters.paid(key=KEY) == 3 and batch.summary.held_back == 3
    costs = sorted((o.cost.amount if o.cost else 0) for o in found.values())
    assert costs == [0, 0, 12]
    assert batch.summary.spending_lines() == [
        "suno: 12 credits + 24 credits estimated, 3 paid submissions"]
    # the account's balance before and after the batch: what the three really cost
    (balance,) = batch.summary.balances
    assert balance["service"] == "suno" and balance["spent"] == 36
    assert balance["before"] - balance["after"] == 36


async def test_a_budget_in_a_unit_the_service_does_not_report_stops_after_one(
        emulator: Emulator, tmp_path: Path) -> None:
    _found, batch = await run(emulator, [clip(f"c{i}") for i in range(4)], tmp_path,
                             budget=Budget(1.0, "usd", service="aimlapi"))
    # Stable Audio reports credits, not dollars: the probe ran, then the budget says why not
    assert emulator.counters.paid(key=KEY) == 1 and batch.summary.held_back == 3
    assert "is not known" in batch.summary.budget[0]


async def test_refused_attempts_cost_nothing_and_unknown_ones_count(
        emulator: Emulator, tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    emulator.inject("rate_limit", operation="aiml.audio.submit", count=2)  # refused, retried
    emulator.inject("malformed_json", operation="aiml.audio.submit")  # taken, answer lost
    _found, batch = await run(emulator, [clip(f"c{i}") for i in range(6)], tmp_path,
                             journal=journal, concurrency=1,
                             budget=Budget(3, "submissions", service="aimlapi"))
    summary = batch.summary
    assert summary.submissions["refused"] == 2
    assert emulator.counters.paid(key=KEY) == 3  # the lost answer's generation counts
    assert summary.unknown == 1 and summary.completed == 2 and summary.held_back == 3
    journaled = states(journal)
    assert sorted(journaled.values()).count("unknown") == 1  # the fault's, not the guard's
    assert sorted(journaled.values()).count("pending") == 3
    line = next(x for x in summary.spending if x["unit"] == "submissions")
    assert line["total"] == 3
    # a re-run counts the first run's spending (refused attempts were given back)
    _found, batch = await run(emulator, [clip(f"c{i}") for i in range(6)], tmp_path,
                             journal=journal, budget=Budget(3, "submissions",
                                                            service="aimlapi"))
    assert emulator.counters.paid(key=KEY) == 3 and batch.summary.held_back == 3


async def test_a_resumed_task_settles_the_run_that_paid_for_it(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    config = EmulatorConfig(timings=Timings(aiml_queue=0.0, aiml_generate=1.5),
                            limits=Limits.off())
    with Emulator(config) as emulator:
        lines = [clip("slow")]
        jobs = parse_jobs(list(enumerate(lines, 1)), base=tmp_path)
        async with session(emulator) as s:
            first = Batch(s, jobs, out=tmp_path / "out", poll=TINY, journal=journal,
                          task_timeout=0.2)
            await first.run()
        assert first.summary.failed  # the wait timed out; the task goes on at the service
        (entry,) = first.summary.jobs_spent
        assert entry["state"] == "estimated" and entry["amount"] is None
        async with session(emulator) as s:
            second = Batch(s, jobs, out=tmp_path / "out", poll=TINY, journal=journal,
                           task_timeout=30)
            await second.run()
        assert emulator.counters.paid() == 1
    assert second.summary.completed == 1
    (entry,) = second.summary.jobs_spent
    assert (entry["run"], entry["state"], entry["amount"]) == (1, "charged", STABLE)


def test_the_summary_in_words_says_what_is_estimated_and_what_is_not_known() -> None:
    ledger = Ledger()
    ledger.submitted("a@1", "aimlapi", reserve={"usd": 0.2})
    ledger.charged("a@1", Cost(390_000, "credits", "aimlapi", usd=0.195))
    ledger.submitted("b@1", "aimlapi", reserve={"usd": 0.2})
    ledger.finished("b@1")  # its fate unknown: its reservation stands
    ledger.submitted("c@2", "suno", reserve={})
    ledger.finished("c@2")
    lines, jobs = spent(ledger)
    assert spending_lines(lines) == [
        "aimlapi: $0.195 + $0.2 estimated, 390,000 credits (1 job(s) not reported), "
        "2 paid submissions",
        "suno: 1 paid submission"]
    assert [(j["job"], j["run"], j["state"], j["unit"], j["amount"]) for j in jobs] == [
        ("c", 2, "estimated", None, None), ("b", 1, "estimated", "usd", 0.2),
        ("a", 1, "charged", "credits", 390_000)]
