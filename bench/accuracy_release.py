"""The accuracy figure published with each release (issue 11): the real daemon on fixed seeds
and pool sizes beside the naive tracker, and the in-process sim over many seeds, written to
docs/accuracy.md as one section per release (newest first; a run of the same version and
commit replaces its section).

Run by hand from the project folder (`make accuracy`); the daemon part takes about seven
minutes per `--jobs` batch of configurations and loads every CPU:
  .venv/bin/python bench/accuracy_release.py [--seeds 1-6] [--sizes 1.2,1.4] [--jobs 6]
      [--sim-seeds 1-40] [--sim-sizes 1.2,1.3,1.4,1.5] [--sim-policies reuse,reuse-noshare]
      [--sim-only] [--out docs/accuracy.md]

The goal (issue 11): at least 99 % of calls to the right visit and at most 0.5 % wrong. A row
meets it or not; the sim counts the seeds that do.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.attribution import run_all
from bench.attribution_score import score_naive
from bench.attribution_sim import rules_for, seeds_arg, simulate
from bench.attribution_traffic import make_traffic, peak_live

ROOT = Path(__file__).resolve().parents[1]
GOAL_RIGHT, GOAL_WRONG = 99.0, 0.5
_HEADER = (
    "# Accuracy per release\n\n"
    'Written by `make accuracy` (bench/accuracy_release.py); README "Accuracy" explains the\n'
    "traffic, the naive tracker and the goal (at least 99 % right, at most 0.5 % wrong).\n"
    "Newest first.\n"
)


def meets(right: float, wrong: float) -> bool:
    return right >= GOAL_RIGHT and wrong <= GOAL_WRONG


def sim_rows(seeds: list[int], sizes: list[float], policy: str) -> list[dict[str, Any]]:
    """Per size: right / wrong / unattributed over every call of every seed, the seeds that
    meet the goal, and the naive tracker's totals on the same visitors."""
    rules = rules_for(policy)
    traffics = [make_traffic(seed, 4.0) for seed in seeds]
    rows = []
    for multiple in sizes:
        ours: Counter[str] = Counter()
        naive: Counter[str] = Counter()
        met = 0
        for traffic in traffics:
            size = max(1, round(multiple * peak_live(traffic)))
            result = simulate(traffic, size, rules)
            ours.update(result.counts())
            pct = result.pct()
            met += meets(pct["right"], pct["wrong"])
            score = score_naive(traffic, size)
            naive.update(right=score.right, wrong=score.wrong, unattributed=score.unattributed)
        rows.append(
            {
                "policy": policy,
                "multiple": multiple,
                "seeds": len(seeds),
                "met": met,
                "ctgw": _shares(ours),
                "naive": _shares(naive),
            }
        )
    return rows


def _shares(counts: Counter[str]) -> dict[str, float]:
    n = sum(counts.values()) or 1
    return {k: round(100.0 * counts[k] / n, 2) for k in ("right", "wrong", "unattributed")}


def daemon_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """bench/attribution.py's runs (the real daemon), sorted by size then seed."""
    bench = argparse.Namespace(
        seeds=",".join(str(s) for s in seeds_arg(args.seeds)),
        sizes=args.sizes,
        policy=args.policy,
        min_cooldown=None,
        dial_delay=None,
        minutes=4.0,
        late_share=None,
        rate=1.0,
        jobs=args.jobs,
        keep=False,
        tree=ROOT,
    )
    results = asyncio.run(run_all(bench))
    return sorted(results, key=lambda r: (float(r["multiple"]), int(r["seed"])))


def render(meta: dict[str, str], daemon: list[dict[str, Any]], sim: list[dict[str, Any]]) -> str:
    lines = [
        f"## ctgw {meta['version']} ({meta['commit']}, {meta['date']})",
        "",
        f"Machine: {meta['machine']}. Policy `{meta['policy']}`.",
        "",
    ]
    if daemon:
        lines += [
            "The real daemon (HTTP sessions and heartbeats, FastAGI calls), one run per row:",
            "",
            "| seed | pool (x peak live) | calls | ctgw right / wrong / unattributed % | goal |"
            " naive right / wrong % |",
            "|---|---|---|---|---|---|",
        ]
        for r in daemon:
            c, n = r["ctgw"], r["naive"]
            goal = "**yes**" if meets(c["right"], c["wrong"]) else "no"
            lines.append(
                f"| {r['seed']} | {r['pool']} ({r['multiple']}x) | {r['calls']} |"
                f" {c['right']} / {c['wrong']} / {c['unattributed']} | {goal} |"
                f" {n['right']} / {n['wrong']} |"
            )
        lines.append("")
    if sim:
        seeds = sim[0]["seeds"]
        lines += [
            f"In-process (bench/attribution_sim.py, the same rules as the daemon), {seeds} seeds,"
            " every call of every seed:",
            "",
            "| policy | pool (x peak live) | ctgw right / wrong / unattributed % |"
            " seeds meeting the goal | naive right / wrong % |",
            "|---|---|---|---|---|",
        ]
        for row in sim:
            c, n = row["ctgw"], row["naive"]
            lines.append(
                f"| {row['policy']} | {row['multiple']}x |"
                f" {c['right']} / {c['wrong']} / {c['unattributed']} |"
                f" {row['met']} of {row['seeds']} | {n['right']} / {n['wrong']} |"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def merge(existing: str, section: str) -> str:
    """`section` first under the header; an older section with the same title is replaced."""
    title = section.splitlines()[0]
    body = existing[len(_HEADER) :] if existing.startswith(_HEADER) else ""
    kept = [s for s in re.split(r"(?m)^(?=## )", body) if s.strip() and not s.startswith(title)]
    return _HEADER + "\n" + section + "".join("\n" + s.strip("\n") + "\n" for s in kept)


def release_meta(policy: str) -> dict[str, str]:
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown commit"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return {
        "version": metadata.version("ctgw"),
        "commit": commit,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} CPUs, load average at the end {load}",
        "policy": policy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", default="1-6", help="daemon seeds, e.g. 1-6 or 1,4,5")
    parser.add_argument("--sizes", default="1.2,1.4", help="daemon pool sizes, x peak live")
    parser.add_argument("--sim-seeds", default="1-40")
    parser.add_argument("--sim-sizes", default="1.2,1.3,1.4,1.5")
    parser.add_argument("--policy", default="reuse")
    parser.add_argument(
        "--sim-policies",
        default="reuse,reuse-noshare",
        help="the sim's policies (reuse-noshare: share_called_numbers off, for comparison)",
    )
    parser.add_argument("--jobs", type=int, default=6, help="daemons run side by side")
    parser.add_argument("--sim-only", action="store_true", help="no daemon runs")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "accuracy.md")
    args = parser.parse_args()
    sizes = [float(s) for s in args.sim_sizes.split(",") if s]
    sim = [
        row
        for policy in args.sim_policies.split(",")
        if policy
        for row in sim_rows(seeds_arg(args.sim_seeds), sizes, policy)
    ]
    daemon = [] if args.sim_only else daemon_rows(args)
    section = render(release_meta(args.policy), daemon, sim)
    existing = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
    args.out.write_text(merge(existing, section), encoding="utf-8")
    sys.stdout.write(section)
    sys.stdout.write(f"written to {args.out}\n")


if __name__ == "__main__":
    main()
