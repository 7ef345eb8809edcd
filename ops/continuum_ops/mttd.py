"""Time to detect: inject faults into a running cluster with its monitoring stack, and
measure fault -> the first matching alert received by the portal's webhook (the time the
portal recorded when it first received it; the prober's alert log is a second witness for
when the portal itself cannot record). Then revert and wait for the resolution.

Also: a quiet period with no fault, counting every alert that fires (false alerts).
"""

from __future__ import annotations

import json
import statistics
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .cluster import Cluster
from .faults import Fault
from .util import ClusterError, log


def parse_time(s: str) -> float:
    """RFC 3339 (with Z or an offset, with or without fractions) -> unix seconds."""
    s = s.strip().replace("Z", "+00:00")
    if "." in s:
        head, rest = s.split(".", 1)
        frac = ""
        while rest and rest[0].isdigit():
            frac, rest = frac + rest[0], rest[1:]
        s = f"{head}.{(frac + '000000')[:6]}{rest}"
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Sample:
    kind: str
    target: str
    detected_s: float | None          # None: not detected within the timeout
    alert: str | None = None
    resolved_s: float | None = None   # from the revert to the resolution received
    note: str = ""


@dataclass
class Alerts:
    """Reads what the webhooks received."""
    c: Cluster
    log_file: Path | None = None

    def _get(self, url: str, timeout: float = 3.0):
        token = self.c.ops_token_file.read_text().strip()
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def portal(self, since: float) -> list[dict]:
        """Alert records from the portal (any node that answers: the edge first)."""
        bases = [f"http://127.0.0.1:{self.c.topo.haproxy['http']}"]
        bases += [f"http://{n.host}:{n.port}" for n in self.c.topo.nodes]
        for b in bases:
            try:
                out = self._get(f"{b}/api/v1/ops/alerts?since={iso(since)}")
            except Exception:  # noqa: BLE001 - try the next node
                continue
            return out.get("alerts", out) if isinstance(out, dict) else out
        return []

    def logged(self, since: float) -> list[dict]:
        """The prober's alert log (JSON lines): a witness that needs no database."""
        out = []
        if not self.log_file or not self.log_file.exists():
            return out
        for line in self.log_file.read_text().splitlines():
            try:
                a = json.loads(line)
            except ValueError:
                continue
            a.setdefault("alertname", (a.get("labels") or {}).get("alertname"))
            if a.get("received_at") and parse_time(a["received_at"]) >= since:
                out.append(a)
        return out

    def received(self, since: float) -> list[dict]:
        """Both witnesses, one record per (alert, start, status) with the earliest receipt:
        Alertmanager re-sends a firing alert whenever its group changes, and the prober's log
        keeps every delivery."""
        best: dict[tuple, dict] = {}
        for a in self.portal(since) + self.logged(since):
            a = dict(a)
            a["starts_at"] = a.get("starts_at") or a.get("startsAt") or ""
            key = (a.get("fingerprint"), a["starts_at"], a.get("status"))
            if key not in best or parse_time(a["received_at"]) < parse_time(best[key]["received_at"]):
                best[key] = a
        return list(best.values())

    def active(self) -> list[dict]:
        """Alerts Alertmanager holds as active now (not silenced, not inhibited), with when
        each began firing (`starts_at`, RFC 3339)."""
        url = (f"http://127.0.0.1:{self.c.topo.monitoring['alertmanager']}/api/v2/alerts"
               f"?active=true&silenced=false&inhibited=false")
        with urllib.request.urlopen(url, timeout=3) as r:
            return [{"alertname": a["labels"].get("alertname"), "labels": a["labels"],
                     "starts_at": a.get("startsAt", "")} for a in json.loads(r.read())]


def started_after(a: dict, t0: float) -> bool:
    """The alert began firing at or after t0 (Prometheus' startsAt is when it fired): one that
    was pending or firing before the fault is no detection of it."""
    try:
        return parse_time(a.get("starts_at") or a.get("startsAt") or "") >= t0 - 0.5
    except ValueError:
        return False


def first_match(records: list[dict], fault: Fault, status: str, since: float,
                started: float | None = None, fingerprint: str | None = None) -> tuple[float, str, dict] | None:
    """(time received, alert name, record) of the earliest matching record; with
    `fingerprint`, only that alert's records (its resolution)."""
    best = None
    for a in records:
        if a.get("status") != status or not fault.matches(a):
            continue
        if fingerprint is not None and a.get("fingerprint") != fingerprint:
            continue
        if started is not None and not started_after(a, started):
            continue
        t = parse_time(a["received_at"])
        if t >= since and (best is None or t < best[0]):
            best = (t, a["alertname"], a)
    return best


def measure(c: Cluster, fault: Fault, alerts: Alerts, timeout: float = 60, resolve_timeout: float = 180) -> Sample:
    log(f"fault: {fault.describe()}")
    t0 = time.time()
    try:
        fault.inject(c)
        hit = None
        while time.time() - t0 < timeout:
            hit = first_match(alerts.received(t0 - 1), fault, "firing", t0, started=t0)
            if hit:
                break
            time.sleep(0.5)
    finally:
        t_rev = time.time()
        fault.revert(c)
    if not hit:
        return Sample(fault.kind, fault.target, None, note=f"no matching alert within {timeout:.0f}s")
    s = Sample(fault.kind, fault.target, hit[0] - t0, hit[1])
    log(f"  detected in {s.detected_s:.1f}s by {s.alert}; reverted, waiting for the resolution")
    # Resolved: the alert that detected the fault (its fingerprint) was resolved. Other
    # alerts of the fault's family may stay longer by design (a slow-burn SLO ticket).
    fp = hit[2].get("fingerprint")
    while time.time() - t_rev < resolve_timeout:
        r = first_match(alerts.received(t0 - 1), fault, "resolved", t_rev - 1, started=t0, fingerprint=fp)
        if r:
            s.resolved_s = max(0.0, r[0] - t_rev)
            break
        time.sleep(1)
    else:
        s.note = f"not resolved within {resolve_timeout:.0f}s of the revert"
    return s


def quiet_period(c: Cluster, alerts: Alerts, seconds: float) -> tuple[list[dict], list[dict]]:
    """(false alerts, standing alerts) that began firing in a quiet period. Standing alerts
    (faults.STANDING: a host disk over 70 %, ...) state a fact about the machine the test
    cannot control; they are reported, not counted as false."""
    from .faults import STANDING
    t0 = time.time()
    log(f"quiet period: {seconds:.0f}s with no fault")
    time.sleep(seconds)
    fired = [a for a in alerts.received(t0) if a.get("status") == "firing" and started_after(a, t0)]
    return [a for a in fired if a.get("alertname") not in STANDING], [a for a in fired if a.get("alertname") in STANDING]


def table(samples: list[Sample]) -> str:
    kinds: dict[str, list[Sample]] = {}
    for s in samples:
        kinds.setdefault(s.kind, []).append(s)
    lines = [f"{'fault class':<34} {'n':>3} {'missed':>6} {'min s':>7} {'median s':>9} {'max s':>7}  first alert",
             "-" * 95]

    def row(name: str, ss: list[Sample]) -> str:
        d = [s.detected_s for s in ss if s.detected_s is not None]
        missed = sum(1 for s in ss if s.detected_s is None)
        names = sorted({s.alert for s in ss if s.alert})
        if not d:
            return f"{name:<34} {len(ss):>3} {missed:>6} {'-':>7} {'-':>9} {'-':>7}  {', '.join(names)}"
        return (f"{name:<34} {len(ss):>3} {missed:>6} {min(d):>7.1f} {statistics.median(d):>9.1f} {max(d):>7.1f}"
                f"  {', '.join(names)}")
    for k, ss in kinds.items():
        lines.append(row(k, ss))
    lines.append("-" * 95)
    lines.append(row("all", samples))
    return "\n".join(lines)


@dataclass
class Summary:
    samples: list[Sample] = field(default_factory=list)
    false_alerts: list[dict] = field(default_factory=list)
    standing_alerts: list[dict] = field(default_factory=list)
    quiet_s: float = 0

    def detected(self) -> list[float]:
        return [s.detected_s for s in self.samples if s.detected_s is not None]

    def missed(self) -> list[Sample]:
        return [s for s in self.samples if s.detected_s is None]

    def unresolved(self) -> list[Sample]:
        return [s for s in self.samples if s.detected_s is not None and s.resolved_s is None]

    def to_json(self) -> dict:
        d = self.detected()
        return {"samples": [s.__dict__ for s in self.samples],
                "median_s": statistics.median(d) if d else None, "max_s": max(d) if d else None,
                "missed": len(self.missed()), "unresolved": len(self.unresolved()),
                "quiet_s": self.quiet_s, "false_alerts": self.false_alerts,
                "standing_alerts": self.standing_alerts}


def run(c: Cluster, faults: list[Fault], repeat: int, quiet_s: float, timeout: float = 60,
        log_file: Path | None = None) -> Summary:
    from .faults import wait_quiet
    alerts = Alerts(c, log_file)
    out = Summary(quiet_s=quiet_s)
    for i in range(repeat):
        for f in faults:
            wait_quiet(c, alerts.active)
            s = measure(c, f, alerts, timeout)
            if s.detected_s is None:
                log(f"  NOT DETECTED: {s.note}")
            out.samples.append(s)
    if quiet_s > 0:
        wait_quiet(c, alerts.active)
        out.false_alerts, out.standing_alerts = quiet_period(c, alerts, quiet_s)
    return out


def check(summary: Summary, median_max: float = 10.0, max_max: float = 20.0) -> list[str]:
    """The targets, as sentences for what was missed."""
    problems = []
    for s in summary.missed():
        problems.append(f"{s.kind} ({s.target}) was not detected: {s.note}")
    for s in summary.unresolved():
        problems.append(f"{s.kind} ({s.target}): the alert did not resolve after the revert ({s.note})")
    d = summary.detected()
    if d and statistics.median(d) > median_max:
        problems.append(f"median time to detect {statistics.median(d):.1f}s > {median_max:.0f}s")
    if d and max(d) > max_max:
        problems.append(f"longest time to detect {max(d):.1f}s > {max_max:.0f}s")
    if summary.false_alerts:
        names = sorted({a.get('alertname') for a in summary.false_alerts})
        problems.append(f"{len(summary.false_alerts)} alerts fired in the quiet period: {', '.join(map(str, names))}")
    return problems
