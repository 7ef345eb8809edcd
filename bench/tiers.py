#!/usr/bin/env python3
"""The server's own view of a benchmark run, by tier: requests, failures and latency.

  bench/tiers.py snapshot BASE_URL TOKEN_FILE FILE   # before the run (TOKEN_FILE: the ops token)
  bench/tiers.py report BASE_URL TOKEN_FILE FILE     # after it: one line per tier

Reads continuum_http_request_duration_seconds (labels route, tier, status) from the
node's /metrics, subtracts the snapshot, and prints per tier (critical, high, medium, low):
requests, their share of all, non-2xx answers, and p50/p99 estimated from the histogram's
buckets the way Prometheus' histogram_quantile does (linear within a bucket; the buckets are
0.5, 1, 2.5, 5, 10, 25, 50, 100 ms, ...: a p99 of 17 ms means "between 10 and 25 ms").
The report also names every route with a non-2xx answer, and what critical first did in the
run (src/resilience/critical_first.hpp: lower-tier requests that waited their turn, of them
overdue, and the event-loop lag probes, of them late and taken while engaged). Exit 1 when the metrics cannot be
read."""

from __future__ import annotations

import json
import re
import sys
import urllib.request

NAME = "continuum_http_request_duration_seconds"
TIERS = ("critical", "high", "medium", "low")
LINE = re.compile(r'^(\w+)\{(.*)\} (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(base: str, token: str) -> dict:
    """{"buckets": {tier: {le: count}}, "status": {"tier route status": count},
    "gate": {"series": value} (the continuum_critical_first_* counters)}"""
    req = urllib.request.Request(base + "/metrics", headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read().decode()
    buckets: dict[str, dict[str, float]] = {}
    status: dict[str, float] = {}
    gate: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("continuum_critical_first_") and line.split(" ")[0].endswith(
                ("_total", '_total{tier="high"}', '_total{tier="medium"}', '_total{tier="low"}')):
            series, value = line.rsplit(" ", 1)
            gate[series] = float(value)
            continue
        m = LINE.match(line)
        if not m or not m.group(1).startswith(NAME):
            continue
        labels = dict(LABEL.findall(m.group(2)))
        tier = labels.get("tier", "")
        value = float(m.group(3))
        if m.group(1) == NAME + "_bucket":
            b = buckets.setdefault(tier, {})
            b[labels["le"]] = b.get(labels["le"], 0) + value
        elif m.group(1) == NAME + "_count":
            key = f'{tier} {labels.get("route", "")} {labels.get("status", "")}'
            status[key] = status.get(key, 0) + value
    return {"buckets": buckets, "status": status, "gate": gate}


def quantile(q: float, cumulative: list[tuple[float, float]]) -> float:
    """histogram_quantile over (upper bound, cumulative count), +Inf last; in seconds."""
    total = cumulative[-1][1]
    if total <= 0:
        return float("nan")
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in cumulative:
        if count >= rank:
            if le == float("inf"):
                return prev_le  # beyond the last finite bucket: its bound, as Prometheus does
            width = count - prev_count
            return prev_le + (le - prev_le) * ((rank - prev_count) / width if width else 1)
        prev_le, prev_count = le, count
    return prev_le


def report(before: dict, after: dict) -> list[str]:
    out = []
    totals = {}
    for tier in TIERS:
        a = after["buckets"].get(tier, {})
        b = before["buckets"].get(tier, {})
        cum = sorted(((float(le), a[le] - b.get(le, 0)) for le in a), key=lambda x: x[0])
        totals[tier] = cum
    all_requests = sum(c[-1][1] for c in totals.values() if c)
    failed: dict[str, float] = {}
    bad_routes = []
    for key, n in after["status"].items():
        d = n - before["status"].get(key, 0)
        tier, route, status = key.split(" ")
        if d > 0 and not status.startswith("2") and tier in TIERS:
            failed[tier] = failed.get(tier, 0) + d
            bad_routes.append(f"{route} {status}: {int(d)}")
    out.append(f'{"tier":<9} {"requests":>9} {"share":>6} {"non-2xx":>8} {"p50 ms":>8} {"p99 ms":>8}')
    for tier in TIERS:
        cum = totals[tier]
        n = cum[-1][1] if cum else 0
        if n <= 0:
            out.append(f"{tier:<9} {0:>9} {'-':>6} {0:>8} {'-':>8} {'-':>8}")
            continue
        out.append(f"{tier:<9} {int(n):>9} {100 * n / all_requests:>5.1f}% {int(failed.get(tier, 0)):>8} "
                   f"{1000 * quantile(0.5, cum):>8.2f} {1000 * quantile(0.99, cum):>8.2f}")
    for r in sorted(bad_routes):
        out.append(f"  non-2xx: {r}")
    gate = {k: v - before.get("gate", {}).get(k, 0) for k, v in after.get("gate", {}).items()}
    if gate:
        def g(name: str, tier: str | None = None) -> int:
            return int(gate.get(f'continuum_critical_first_{name}' + (f'{{tier="{tier}"}}' if tier else ""), 0))
        waited = ", ".join(f"{t} {g('waits_total', t)}" for t in TIERS[1:])
        overdue = sum(g("overdue_total", t) for t in TIERS[1:])
        out.append(f"critical first: waited their turn {waited} (overdue {overdue}); "
                   f"lag probes {g('lag_probes_total')}, late {g('late_probes_total')}, "
                   f"engaged {g('engaged_probes_total')}")
    return out


def main() -> int:
    if len(sys.argv) != 5 or sys.argv[1] not in ("snapshot", "report"):
        print(__doc__, file=sys.stderr)
        return 2
    cmd, base, token_file, path = sys.argv[1:]
    token = open(token_file).read().strip()
    try:
        now = scrape(base, token)
    except OSError as e:
        print(f"bench/tiers.py: cannot read {base}/metrics: {e}", file=sys.stderr)
        return 1
    if cmd == "snapshot":
        with open(path, "w") as f:
            json.dump(now, f)
        return 0
    with open(path) as f:
        before = json.load(f)
    print("\n".join(report(before, now)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
