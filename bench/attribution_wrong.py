"""Why bench/attribution.py's wrong and unattributed calls went wrong: read a kept run's store
(`--keep`), regenerate the traffic's truth from its seed, and classify each such call.

  .venv/bin/python bench/attribution_wrong.py --run SEED:FOLDER [--run SEED:FOLDER ...]
  .venv/bin/python bench/attribution_wrong.py --sim 1,4,5 [--size 1.2]   (in-process replay)

Pure reading: the store's sessions (utm_campaign c<visit>[-tab] names the visit), leases and
calls; the truth from bench/attribution_traffic.make_traffic(seed). Times are the traffic's
seconds (the store's wall clock less the offset the landings give).

Per wrong call on a re-leased number (the caller's visit V held it, then W got it):
- at the re-lease: how many numbers were live, cooling (< cooldown since their lease ended),
  rested (>= cooldown: a free number, the pool should have taken one) and past the late
  window (>= 45 s: nobody can call for the last holder any more); how long V had been gone;
  how many non-live numbers had been gone longer than V (the oldest-first choice); whether V
  had called by then (the "called" tier) or never heartbeated (the "quiet" tier).
- (a) a better number existed: a rested or past-window one, or one gone longer whose last
  holder was as silent (no tier reason to prefer the one taken), or one whose holder called.
- (b) at the call, the model (bench/attribution_model.py, what a tracker sees) favoured V
  over W, yet W was credited: a decision that the information could have got right.
- (c) other.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.attribution_model import hazard_seen, silent_share
from bench.attribution_traffic import COOLDOWN, GRACE, HEARTBEAT, WINDOW, Traffic, make_traffic

LATE_SPAN = WINDOW - GRACE


@dataclass(frozen=True)
class LeaseRow:
    number: str
    visitor_id: str
    visit: int  # -1 when unknown
    started: float
    last_seen: float
    until: float


@dataclass(frozen=True)
class CallRow:
    index: int
    visit: int  # truth
    kind: str  # traffic kind
    at: float
    dialed: str
    credited: str  # visitor id credited, '' when none
    attribution: str
    confidence: float | None
    rival: str
    verdict: str


def _secs(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def load_store(folder: Path, traffic: Traffic) -> tuple[list[LeaseRow], list[CallRow]]:
    """A kept run's leases and calls, in the traffic's seconds, calls matched to the truth."""
    con = sqlite3.connect(f"file:{folder / 'ctgw.db'}?mode=ro", uri=True)
    try:
        visit_of: dict[str, int] = {}
        offsets = []
        for session_id, created, campaign in con.execute(
            "SELECT session_id, created_at, utm_campaign FROM sessions"
        ):
            if not campaign.startswith("c"):
                continue
            index = int(campaign[1:].removesuffix("-tab"))
            visit_of[session_id] = index
            v = traffic.visits[index]
            at = v.tab_at if campaign.endswith("-tab") and v.tab_at is not None else v.start
            offsets.append(_secs(created) - at)
        # The landing is the session's earliest moment: renewals come later, so take a low
        # quantile rather than the median.
        offset = sorted(offsets)[len(offsets) // 20]
        leases = [
            LeaseRow(
                number,
                visitor,
                visit_of.get(session_id, -1),
                _secs(started) - offset,
                _secs(seen) - offset,
                _secs(until) - offset,
            )
            for number, visitor, session_id, started, seen, until in con.execute(
                "SELECT number, visitor_id, session_id, started_at, last_seen, until FROM leases"
            )
        ]
        stored: dict[str, list[tuple[float, str, str, str, str]]] = {}
        for caller, dialed, started, kind, visitor, snapshot in con.execute(
            "SELECT caller, dialed, started_at, attribution_kind, visitor_id, attribution"
            " FROM calls ORDER BY started_at"
        ):
            stored.setdefault(caller, []).append(
                (_secs(started) - offset, dialed, kind, visitor, snapshot)
            )
    finally:
        con.close()
    calls = []
    by_caller: dict[str, list[int]] = {}
    for call in traffic.calls:
        by_caller.setdefault(traffic.visits[call.visit].caller, []).append(call.index)
    for caller, indices in by_caller.items():
        rows = stored.get(caller, [])
        for k, index in enumerate(indices):
            call = traffic.calls[index]
            truth = traffic.visits[call.visit]
            if k >= len(rows):
                calls.append(
                    CallRow(
                        index,
                        call.visit,
                        call.kind,
                        call.at,
                        "",
                        "",
                        "lost",
                        None,
                        "",
                        "unattributed",
                    )
                )
                continue
            at, dialed, kind, visitor, snapshot = rows[k]
            extra = json.loads(snapshot or "{}")
            attributed = kind in ("active", "probable")
            verdict = (
                "unattributed"
                if not attributed
                else ("right" if visitor == truth.visitor_id else "wrong")
            )
            calls.append(
                CallRow(
                    index,
                    call.visit,
                    call.kind,
                    at,
                    dialed,
                    visitor if attributed else "",
                    kind,
                    extra.get("confidence"),
                    extra.get("other_visitor_id") or "",
                    verdict,
                )
            )
    calls.sort(key=lambda c: c.index)
    return leases, calls


def load_sim(seed: int, multiple: float) -> tuple[Traffic, list[LeaseRow], list[CallRow]]:
    from bench.attribution_sim import EPOCH, rules_for, simulate
    from bench.attribution_traffic import peak_live

    traffic = make_traffic(seed, 4.0)
    result = simulate(traffic, max(1, round(multiple * peak_live(traffic))), rules_for())

    def s(t: datetime) -> float:
        return (t - EPOCH).total_seconds()

    leases = [
        LeaseRow(lz.number, lz.visitor_id, visit, s(lz.started_at), s(lz.last_seen), s(lz.until))
        for visit, lz in result.leases.values()
    ]
    calls = [
        CallRow(
            c.index,
            c.visit,
            c.kind,
            c.at,
            c.dialed,
            c.credited,
            c.attribution,
            c.confidence,
            c.rival,
            c.verdict,
        )
        for c in result.calls
    ]
    return traffic, leases, calls


@dataclass
class Finding:
    call: CallRow
    cls: str
    detail: dict[str, object]


def _state_at(
    leases_by_number: dict[str, list[LeaseRow]], numbers: list[str], at: float
) -> dict[str, tuple[str, float, LeaseRow | None]]:
    """Per number at `at` (just before any lease starting then): live / gone for how long."""
    state: dict[str, tuple[str, float, LeaseRow | None]] = {}
    for number in numbers:
        latest: LeaseRow | None = None
        for lease in leases_by_number.get(number, []):
            if lease.started < at:
                latest = lease
        if latest is None:
            state[number] = ("never", float("inf"), None)
        elif latest.until > at:
            state[number] = ("live", 0.0, latest)
        else:
            state[number] = ("gone", at - latest.until, latest)
    return state


def _called_by(calls: list[CallRow], traffic: Traffic, visitor_id: str, at: float) -> bool:
    return any(c.at < at and traffic.visits[c.visit].visitor_id == visitor_id for c in calls)


def _seen(traffic: Traffic, visit: int, at: float) -> tuple[float, int, bool]:
    """What a tracker saw of a visit at `at`: (seconds since landing, heartbeats, closed)."""
    v = traffic.visits[visit]
    u = at - v.start
    beats = sum(1 for b in v.heartbeats() if b <= at)
    closed = beats == len(v.heartbeats()) and v.start + HEARTBEAT * (beats + 1) <= at
    return u, beats, closed


def _risk(traffic: Traffic, calls: list[CallRow], last: LeaseRow | None, at: float) -> float:
    """How likely the number's last holder still makes a first call after `at`, as a tracker
    sees it (0 when the holder called already: their next call comes from a known phone)."""
    if last is None or last.visit < 0 or at - last.until >= LATE_SPAN:
        return 0.0
    if _called_by(calls, traffic, last.visitor_id, at):
        return 0.0
    return silent_share(*_seen(traffic, last.visit, at))


def classify(traffic: Traffic, leases: list[LeaseRow], calls: list[CallRow]) -> list[Finding]:
    by_number: dict[str, list[LeaseRow]] = {}
    for lease in sorted(leases, key=lambda x: x.started):
        by_number.setdefault(lease.number, []).append(lease)
    numbers = sorted(by_number)
    findings = []
    for call in calls:
        if call.verdict == "right":
            continue
        truth = traffic.visits[call.visit]
        detail: dict[str, object] = {
            "kind": call.kind,
            "attribution": call.attribution,
            "conf": round(call.confidence, 2) if call.confidence is not None else None,
        }
        if call.verdict == "unattributed":
            detail["dialed"] = call.dialed
            findings.append(Finding(call, "unattributed", detail))
            continue
        earlier = [c for c in calls if c.visit == call.visit and c.at < call.at]
        if call.kind == "repeat" and earlier and all(c.verdict != "right" for c in earlier):
            detail["first_call"] = earlier[-1].verdict
            findings.append(Finding(call, "cascade: repeat of a call that went wrong", detail))
            continue
        on = by_number.get(call.dialed, [])
        mine = [x for x in on if x.visitor_id == truth.visitor_id and x.started <= call.at]
        theirs = [x for x in on if x.visitor_id == call.credited and x.started <= call.at]
        if not mine or not theirs:
            findings.append(Finding(call, "c: no lease of the caller on the number", detail))
            continue
        v_lease = mine[-1]
        # W's lease that took the number from V (not a later renewal of W's on it).
        after = [x for x in theirs if x.started >= v_lease.started]
        w_lease = after[0] if after else theirs[-1]
        if w_lease.started < v_lease.started:
            findings.append(Finding(call, "b?: credited the older holder", detail))
            continue
        s = w_lease.started
        gone = s - v_lease.until
        state = _state_at(by_number, numbers, s)
        kinds: Counter[str] = Counter()
        older = 0
        best_other = 1.0
        for number, (what, age, last) in state.items():
            if what == "live":
                kinds["live"] += 1
                continue
            kinds["rested" if age >= COOLDOWN else "cooling"] += 1
            if number == call.dialed:
                continue
            if age >= LATE_SPAN:
                kinds["other_past_window"] += 1
            if age > gone:
                older += 1
            best_other = min(best_other, _risk(traffic, calls, last, s))
        chosen = _risk(traffic, calls, v_lease, s)
        detail.update(
            gone_at_release=round(gone, 1),
            call_age=round(call.at - v_lease.until, 1),
            w_age_at_call=round(call.at - w_lease.started, 1),
            state=dict(kinds),
            older_nonlive=older,
            v_quiet=v_lease.last_seen <= v_lease.started + 1e-6,
            risk_chosen=round(chosen, 3),
            risk_best_other=round(best_other, 3),
        )
        # What a tracker saw at the call: hazards of V (the caller) and W (the credited).
        v_known = any(c.credited == truth.visitor_id for c in earlier)
        hv = hazard_seen(*_seen(traffic, call.visit, call.at)) if not earlier else 0.0
        w_called = _called_by(calls, traffic, call.credited, call.at)
        hw = hazard_seen(*_seen(traffic, w_lease.visit, call.at)) if not w_called else 0.0
        p_caller = 1.0 if v_known else (hv / (hv + hw) if hv + hw > 0 else 0.5)
        detail.update(p_caller=round(p_caller, 2), w_called_before=w_called)
        free = "after its full cooldown" if gone >= COOLDOWN else "under pressure"
        if best_other + 0.02 < chosen:
            why = (
                "V quiet"
                if detail["v_quiet"]
                else ("a holder had called" if best_other == 0 else "older")
            )
            cls = f"a: a less risky number was free ({why})"
        elif p_caller > 0.5:
            cls = "b: the information at the call favoured the caller" + (
                " (W had called from another phone)"
                if w_called
                else " (W landed < 2 s before: nobody dials that fast here)"
                if call.at - w_lease.started < 2.0
                else ""
            )
        elif call.kind in ("late", "repeat"):
            cls = f"forced: late caller, number re-leased {free}"
        else:
            cls = "c: other"
        findings.append(Finding(call, cls, detail))
    return findings


def report(
    label: str, traffic: Traffic, leases: list[LeaseRow], calls: list[CallRow]
) -> Counter[str]:
    verdicts = Counter(c.verdict for c in calls)
    n = len(calls)
    print(
        f"\n== {label}: {n} calls, right {100 * verdicts['right'] / n:.2f} %, wrong"
        f" {100 * verdicts['wrong'] / n:.2f} %, unattributed {100 * verdicts['unattributed'] / n:.2f} %"
    )
    findings = classify(traffic, leases, calls)
    counts = Counter(f.cls for f in findings)
    for f in findings:
        print(
            f"  call {f.call.index:>3} at {f.call.at:6.1f} {f.call.verdict:<12} {f.cls}: {json.dumps(f.detail)}"
        )
    gones = [
        float(str(f.detail["gone_at_release"])) for f in findings if "gone_at_release" in f.detail
    ]
    if gones:
        print(
            f"  V gone at re-lease (s): min {min(gones)} median {statistics.median(gones)} max {max(gones)}"
        )
    for cls, k in counts.most_common():
        print(f"  {k:>3}  {cls}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--run", action="append", default=[], help="SEED:FOLDER of a kept run")
    parser.add_argument("--sim", default="", help="seeds to replay in-process instead")
    parser.add_argument("--size", type=float, default=1.2, help="with --sim: x peak live")
    args = parser.parse_args()
    total: Counter[str] = Counter()
    for item in args.run:
        seed, _, folder = item.partition(":")
        traffic = make_traffic(int(seed), 4.0)
        leases, calls = load_store(Path(folder), traffic)
        total += report(f"seed {seed} ({folder})", traffic, leases, calls)
    for seed in (int(s) for s in args.sim.split(",") if s):
        traffic, leases, calls = load_sim(seed, args.size)
        total += report(f"sim seed {seed} x{args.size}", traffic, leases, calls)
    print("\nall:")
    for cls, k in total.most_common():
        print(f"  {k:>3}  {cls}")


if __name__ == "__main__":
    main()
