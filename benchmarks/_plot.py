"""B1's plots: limit, requests in flight and refusals over time, one panel per client.

matplotlib comes with the ``dev`` extra and is imported only here, when a plot is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["point"]

TITLES = {"aiomusic": "aiomusic, rate told", "aiomusic-untold": "aiomusic, nothing told",
          "gather-retry-after": "gather + Retry-After loop"}


def in_flight(requests: list[list[float]]) -> tuple[list[float], list[int]]:
    """The number of requests in flight (sent, not answered) at every change."""
    changes = sorted([(r[0], 1) for r in requests] + [(r[1], -1) for r in requests])
    times, counts, now = [0.0], [0], 0
    for at, step in changes:
        now += step
        times.append(at)
        counts.append(now)
    return times, counts


def point(path: Path, label: str, ideal: float, runs: dict[str, dict[str, Any]]) -> None:
    """One PNG for one point: a panel per client (the round with the median ratio)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(len(runs), 1, figsize=(9, 2.6 * len(runs)), sharex=True,
                                squeeze=False)
    for ax, (client, run) in zip(axes[:, 0], runs.items(), strict=True):
        times, counts = in_flight(run["requests"])
        ax.step(times, counts, where="post", color="tab:blue", lw=1, label="in flight")
        if "limits" in run:
            limits = run["limits"] + [[run["seconds"], run["limits"][-1][1]]]
            ax.step([t for t, _ in limits], [v for _, v in limits], where="post",
                    color="tab:orange", lw=1.5, label="limit")
        for at, seconds in run.get("pauses", []):
            ax.axvspan(at, at + seconds, color="tab:red", alpha=0.12, lw=0)
        refused = [r[1] for r in run["requests"] if not r[2]]
        if refused:
            ax.plot(refused, [0] * len(refused), "|", color="tab:red", ms=12,
                    label=f"refusals ({len(refused)})")
        ax.axvline(ideal, color="grey", ls="--", lw=0.8)
        share = len(refused) / max(1, len(run["requests"]))
        ratio = run["ok"] / (run["ok"] + run["failed"]) * ideal / run["seconds"]
        ax.set_title(f"{TITLES.get(client, client)}: {ratio:.2f} of ideal, "
                     f"{100 * share:.1f} % refused", fontsize=9, loc="left")
        ax.set_ylabel("requests")
        ax.legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("seconds (dashed: the ideal's end; shaded: lane paused)")
    figure.suptitle(f"B1 at {label}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
