"""`scripts/cluster chaos run FILE | day [FILE ...] | revert | list`: chaos experiments on the local cluster
(issue 12), in the shape of Chaos Toolkit's: a steady-state hypothesis, a method (faults,
each with a target and a hold), rollbacks (every fault's revert, always run), abort
conditions, and a result (JSON and text) per run.

An experiment is a JSON file (deploy/chaos/*.json):

    {"title": "...", "description": "...",
     "hypothesis": {"window_s": 5, "critical_success_min": 1.0, "critical_p99_ms": 3000,
                    "min_requests": 3},
     "method": [{"fault": "pause-nodes", "target": "us-west", "hold_s": 20}],
     "abort_after_s": 20, "recovery_timeout_s": 120, "before_s": 10, "after_s": 10}

Targets are region names or roles resolved when the step starts: "primary" (the primary's
region), "sync-standby", "replica" (a region that is neither), or a dependency / table name
for the faults that take one. Faults (ops/continuum_ops/faults.py): kill-region,
kill-nodes, pause-nodes, pause-region, dependency (params: mode = error|timeout|slow|refuse,
delay_ms), slow-query (target: a table), edge-backend-down, exhaust-connections (params:
count), hold-pool (target: a tier, critical|high|medium|low: every connection of that tier's
pools held inside every portal node; [ops] chaos_hooks), database-network (params: the net-proxy's toxics), kill-edge (target: an edge
instance), fill-disk (params: percent, full_after_s; the region's journal volumes),
partition-region (params: direction = both|outbound|inbound; regions in network namespaces,
CLUSTER_NETNS=1). "client_retries" (0-3, default 0): the load's clients resend a request that got
no answer at all that many times (the report also counts what would have failed without).

A run: replay the revert journal (faults a dead controller left injected), wait for a
healthy cluster, start the mixed load through the edge (load.py: patients reading their
records, providers writing notes, every request recorded, no client retries), check the
hypothesis over `before_s`; then per step: write the fault to the journal, inject it, check
the hypothesis every window while it holds, revert it (also on abort, Ctrl-C or error),
take it off the journal, and measure the time until the hypothesis holds again; last,
`after_s` of checks, stop the load, and check every acknowledged write in the database
(lost, duplicated). The hypothesis of a window: at least min_requests answers, a share of
successful critical-tier answers >= critical_success_min, p99 latency <= critical_p99_ms.
A step aborts (its fault reverted at once, the remaining steps skipped) when the
hypothesis has been broken for abort_after_s in a row.

With the monitoring stack, time to detect is the first alert that names the fault
(faults.Fault.matches), from the portal's alert log.

A day (`day`): every experiment in turn under ONE steady load (one ledger of acknowledged
writes), a healthy cluster awaited between two; each experiment's figures and write check
cover its own window; the day's report checks the targets (day_summary).

Exit codes: 0 the hypothesis held throughout (a day: every target met), 3 it did not (or the
run aborted), 1 error.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import faults as F
from .util import ClusterError, log, write_atomic

FAULTS = ("kill-region", "kill-nodes", "pause-nodes", "pause-region", "dependency", "slow-query",
          "edge-backend-down", "exhaust-connections", "hold-pool", "database-network", "kill-edge",
          "fill-disk", "partition-region")
ROLES = ("primary", "sync-standby", "replica")


@dataclass
class Hypothesis:
    window_s: float = 5.0
    critical_success_min: float = 1.0
    critical_p99_ms: float = 3000.0
    min_requests: int = 3


@dataclass
class Step:
    fault: str
    target: str
    hold_s: float
    params: dict = field(default_factory=dict)


@dataclass
class Experiment:
    title: str
    method: list[Step]
    description: str = ""
    hypothesis: Hypothesis = field(default_factory=Hypothesis)
    abort_after_s: float = 20.0
    recovery_timeout_s: float = 120.0
    before_s: float = 10.0
    after_s: float = 10.0
    client_retries: int = 0     # the load's clients resend a request that got no answer at all


def _number(d: dict, key: str, where: str, default: float, lo: float, hi: float) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise ValueError(f"{where}.{key} must be a number from {lo:g} to {hi:g}, got {v!r}")
    return float(v)


def _keys(d: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")


def parse_experiment(doc: object, name: str = "experiment") -> Experiment:
    """An Experiment from a decoded JSON document; ValueError naming the first problem."""
    if not isinstance(doc, dict):
        raise ValueError(f"{name}: must be a JSON object")
    _keys(doc, {"title", "description", "hypothesis", "method", "abort_after_s", "recovery_timeout_s",
                "before_s", "after_s", "client_retries"}, name)
    title = doc.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ValueError(f"{name}.title must be a non-empty string")
    h = doc.get("hypothesis", {})
    if not isinstance(h, dict):
        raise ValueError(f"{name}.hypothesis must be an object")
    _keys(h, {"window_s", "critical_success_min", "critical_p99_ms", "min_requests"}, f"{name}.hypothesis")
    hyp = Hypothesis(_number(h, "window_s", f"{name}.hypothesis", 5, 1, 60),
                     _number(h, "critical_success_min", f"{name}.hypothesis", 1.0, 0, 1),
                     _number(h, "critical_p99_ms", f"{name}.hypothesis", 3000, 1, 600000),
                     int(_number(h, "min_requests", f"{name}.hypothesis", 3, 0, 100000)))
    method = doc.get("method")
    if not isinstance(method, list) or not method:
        raise ValueError(f"{name}.method must be a non-empty list of steps")
    steps = []
    for i, st in enumerate(method):
        where = f"{name}.method[{i}]"
        if not isinstance(st, dict):
            raise ValueError(f"{where} must be an object")
        _keys(st, {"fault", "target", "hold_s", "params"}, where)
        if st.get("fault") not in FAULTS:
            raise ValueError(f"{where}.fault must be one of {', '.join(FAULTS)}, got {st.get('fault')!r}")
        target = st.get("target", "")
        if not isinstance(target, str):
            raise ValueError(f"{where}.target must be a string")
        params = st.get("params", {})
        if not isinstance(params, dict):
            raise ValueError(f"{where}.params must be an object")
        _check_params(st["fault"], target, params, where)
        steps.append(Step(st["fault"], target, _number(st, "hold_s", where, 20, 1, 3600), params))
    return Experiment(title.strip(), steps, str(doc.get("description", "")), hyp,
                      _number(doc, "abort_after_s", name, 20, 1, 3600),
                      _number(doc, "recovery_timeout_s", name, 120, 5, 3600),
                      _number(doc, "before_s", name, 10, 0, 3600),
                      _number(doc, "after_s", name, 10, 0, 3600),
                      int(_number(doc, "client_retries", name, 0, 0, 3)))


def _check_params(fault: str, target: str, params: dict, where: str) -> None:
    allowed = {"dependency": {"mode", "delay_ms"}, "exhaust-connections": {"count"},
               "database-network": set(F.DatabaseNetwork.KEYS),
               "fill-disk": {"percent", "full_after_s"}, "partition-region": {"direction"}}.get(fault, set())
    _keys(params, allowed, f"{where}.params")
    if fault == "dependency":
        if not target:
            raise ValueError(f"{where}.target must name a dependency (e.g. \"payments\")")
        if params.get("mode") not in ("error", "timeout", "slow", "refuse"):
            raise ValueError(f"{where}.params.mode must be error, timeout, slow or refuse")
        if "delay_ms" in params:
            _number(params, "delay_ms", f"{where}.params", 3000, 0, 600000)
    elif fault == "slow-query":
        if not target.isidentifier():
            raise ValueError(f"{where}.target must be a table name, got {target!r}")
    elif fault == "exhaust-connections":
        if "count" in params:
            _number(params, "count", f"{where}.params", 1, 1, 10000)
    elif fault == "hold-pool":
        if target not in ("critical", "high", "medium", "low"):
            raise ValueError(f"{where}.target must be a tier: critical, high, medium or low")
    elif fault == "kill-edge":
        from .haproxy import EDGE_INSTANCES
        if target not in EDGE_INSTANCES:
            raise ValueError(f"{where}.target must be an edge instance ({', '.join(EDGE_INSTANCES)})")
    elif fault == "fill-disk":
        if not target:
            raise ValueError(f"{where}.target must be a region or one of {', '.join(ROLES)}")
        _number(params, "percent", f"{where}.params", 95, 50, 100)
        if "full_after_s" in params:
            _number(params, "full_after_s", f"{where}.params", 0, 0, 3600)
    elif fault == "partition-region":
        from .netns import DIRECTIONS
        if not target:
            raise ValueError(f"{where}.target must be a region or one of {', '.join(ROLES)}")
        if params.get("direction", "both") not in DIRECTIONS:
            raise ValueError(f"{where}.params.direction must be one of {', '.join(DIRECTIONS)}")
    elif fault == "database-network":
        if not target:
            raise ValueError(f"{where}.target must be a region or one of {', '.join(ROLES)}")
        if not params:
            raise ValueError(f"{where}.params must name at least one toxic ({', '.join(F.DatabaseNetwork.KEYS)})")
        for k in ("latency_ms", "jitter_ms", "rate_kb_s", "close_after_ms"):
            if k in params:
                _number(params, k, f"{where}.params", 0, 0, 600000)
        for k in ("hold", "reset", "down"):
            if k in params and not isinstance(params[k], bool):
                raise ValueError(f"{where}.params.{k} must be true or false")
        if params.get("jitter_ms", 0) > params.get("latency_ms", 0):
            raise ValueError(f"{where}.params.jitter_ms must not exceed latency_ms")
        if params.get("close_after_ms") and not params.get("hold"):
            raise ValueError(f"{where}.params.close_after_ms goes with hold: true")
    elif not target:
        raise ValueError(f"{where}.target must be a region or one of {', '.join(ROLES)}")


def load_experiment(path: str | Path) -> Experiment:
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except OSError as e:
        raise ValueError(f"{p}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not JSON: {e}") from None
    return parse_experiment(doc, p.name)


# ---- the hypothesis over a window of the load's records ---------------------------------------


@dataclass
class Window:
    t0: float
    t1: float
    requests: int
    failed: int
    p99_ms: float | None
    ok: bool
    why: str = ""


def p99(values: list[float]) -> float | None:
    """The nearest-rank 99th percentile."""
    if not values:
        return None
    v = sorted(values)
    return v[max(0, math.ceil(0.99 * len(v)) - 1)]


def judge_window(recs, t0: float, t1: float, h: Hypothesis) -> Window:
    """Requests answered in [t0, t1): the critical tier's (load.records(): readers and writers)."""
    inside = [r for r in recs if t0 <= r.answered < t1]
    failed = [r for r in inside if not r.ok]
    lat = [(r.answered - r.sent) * 1000 for r in inside if r.ok]
    q = p99(lat)
    why = []
    if len(inside) < h.min_requests:
        why.append(f"{len(inside)} answers < {h.min_requests} (a stall)")
    if inside and (len(inside) - len(failed)) / len(inside) < h.critical_success_min:
        kinds = sorted({r.failure_kind for r in failed})
        why.append(f"{len(failed)} of {len(inside)} failed ({', '.join(kinds)[:160]})")
    if q is not None and q > h.critical_p99_ms:
        why.append(f"p99 {q:.0f} ms > {h.critical_p99_ms:.0f} ms")
    return Window(t0, t1, len(inside), len(failed), q, not why, "; ".join(why))


# ---- the revert journal -------------------------------------------------------------------------


class Journal:
    """<state>/chaos/journal.json: the faults injected and not yet reverted. Written before a
    fault is injected and after it is reverted, so a controller that dies in between leaves
    the fault on record, and the next `chaos run` or `chaos revert` reverts it."""

    def __init__(self, state: Path):
        self.path = Path(state) / "chaos" / "journal.json"

    def entries(self) -> list[dict]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except json.JSONDecodeError as e:
            raise ClusterError(f"{self.path} is damaged ({e}): revert by hand, then delete it") from None

    def _write(self, entries: list[dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(entries, indent=1) + "\n")

    def add(self, entry: dict) -> None:
        self._write(self.entries() + [entry])

    def remove(self, entry_id: str) -> None:
        self._write([e for e in self.entries() if e.get("id") != entry_id])


def make_fault(kind: str, target: str, params: dict | None = None) -> F.Fault:
    """A fault from its journal entry (kind, resolved target, params)."""
    params = params or {}
    if kind == "kill-region":
        return F.PrimaryRegionKilled(target)
    if kind == "kill-nodes":
        return F.NodesStopped(target)
    if kind == "pause-nodes":
        return F.NodesPaused(target)
    if kind == "pause-region":
        return F.RegionPaused(target)
    if kind == "dependency":
        return F.DependencyFault(target, params["mode"], int(params.get("delay_ms", 3000)))
    if kind == "slow-query":
        return F.QuerySlowed(target)
    if kind == "edge-backend-down":
        return F.EdgeBackendDown(target)
    if kind == "exhaust-connections":
        n = params.get("count")
        return F.ConnectionsExhausted(target or "primary", int(n) if n is not None else None)
    if kind == "hold-pool":
        return F.PoolHeld(target or "medium", int(params.get("hold_s", 600)))
    if kind == "kill-edge":
        return F.EdgeInstanceKilled(target)
    if kind == "fill-disk":
        after = params.get("full_after_s")
        return F.JournalDiskFilled(target, float(params.get("percent", 95)),
                                   float(after) if after is not None else None)
    if kind == "partition-region":
        return F.RegionPartitioned(target, str(params.get("direction", "both")))
    if kind == "database-network":
        return F.DatabaseNetwork(target, {k: (int(v) if not isinstance(v, bool) else v) for k, v in params.items()})
    raise ClusterError(f"unknown fault {kind!r}")


def replay(c, journal: Journal) -> list[str]:
    """Reverts every fault the journal holds (oldest last); returns what it reverted."""
    done = []
    for e in reversed(journal.entries()):
        f = make_fault(e["fault"], e["target"], e.get("params"))
        log(f"chaos: reverting {f.describe()} left injected by run {e.get('run')}")
        f.revert(c)
        journal.remove(e["id"])
        done.append(f.describe())
    return done


# ---- running ------------------------------------------------------------------------------------


def resolve_target(c, step: Step) -> str:
    if step.fault in ("dependency", "slow-query", "kill-edge", "hold-pool"):
        return step.target
    if step.fault == "exhaust-connections":
        return "primary"
    if step.target not in ROLES:
        c.topo.region(step.target)   # raises for an unknown region
        return step.target
    st = c.status()
    by_role = {r["role"]: r["name"] for r in st["regions"]}
    if step.target == "primary":
        if not st["primary"]:
            raise ClusterError("no primary to target")
        return st["primary"]
    if step.target == "sync-standby":
        if "sync_standby" not in by_role:
            raise ClusterError("no sync standby to target")
        return by_role["sync_standby"]
    others = [r["name"] for r in st["regions"] if r["role"] not in ("primary", "sync_standby")]
    if not others:
        raise ClusterError("no replica region (neither primary nor sync standby) to target")
    return others[0]


def _sql(c):
    c.load_secrets()
    conn = f"host=127.0.0.1 port={c.topo.haproxy['pg_primary']} user=postgres dbname=continuum"

    def run(q: str) -> str:
        for _ in range(30):
            cp = c.psql(conn, q, c.secrets["SUPERUSER_PASSWORD"], timeout=30)
            if cp.returncode == 0:
                return cp.stdout
            time.sleep(1)
        raise ClusterError(f"SQL on the primary failed: {cp.stderr.strip()}")
    return run


def parse_audit_verify(out: str, rc: int) -> dict:
    """`continuum audit verify` output: note/PROBLEM lines and a last line "OK|FAILED: N
    journal records, M table rows, K problem(s)"."""
    problems = [ln[len("PROBLEM "):] for ln in out.splitlines() if ln.startswith("PROBLEM ")]
    notes = [ln[len("note: "):] for ln in out.splitlines() if ln.startswith("note: ")]
    m = re.search(r"^(OK|FAILED): (\d+) journal records, (\d+) table rows, (\d+) problem", out, re.M)
    if not m:
        return {"ok": False, "problems": problems or [f"no verdict in the output (exit {rc}): {out.strip()[-300:]}"],
                "notes": notes[:10]}
    return {"ok": m.group(1) == "OK" and rc == 0 and not problems, "journal_records": int(m.group(2)),
            "table_rows": int(m.group(3)), "problems": problems[:20], "problem_count": int(m.group(4)),
            "notes": notes[:10]}


def audit_verify(c, timeout: float = 900) -> dict:
    """`continuum audit verify` over every node's journal and the audit_event table on the
    primary: each chain intact (hashes, sequence, signed heads), each table row equal to its
    journal record. Records not shipped yet are notes, not problems."""
    try:
        c.load_secrets()
        password = c.secrets["SUPERUSER_PASSWORD"]
    except (ClusterError, KeyError, OSError) as e:
        return {"ok": False, "problems": [f"audit verify: no superuser password ({e})"]}
    dirs = c.audit_dirs()
    if not dirs:
        return {"ok": False, "problems": ["no audit journal folder found"]}
    url = f"postgresql://postgres@127.0.0.1:{c.topo.haproxy['pg_primary']}/continuum"
    args = [str(c.bin), "audit", "verify", "--database-url", url]
    for d in dirs:
        args += ["--journal", str(d)]
    env = {**os.environ, "PGPASSWORD": password}
    t0 = time.monotonic()
    try:
        cp = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "problems": [f"audit verify did not finish within {timeout:.0f}s"]}
    except OSError as e:
        return {"ok": False, "problems": [f"audit verify could not run: {e}"]}
    out = parse_audit_verify(cp.stdout, cp.returncode)
    if cp.returncode not in (0, 1):
        out["ok"] = False
        out["problems"] = out.get("problems", []) + [f"exit {cp.returncode}: {cp.stderr.strip()[-300:]}"]
    out["journals"] = len(dirs)
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


class Interrupted(Exception):
    pass


class Signals:
    """SIGINT/SIGTERM while installed: raise Interrupted until `finishing()`, then only
    recorded (`pending`), so the final checks and the report are still written; `restore()`
    puts back the handlers that were there before."""

    def __init__(self):
        self.pending: list[str] = []
        self._finishing = False
        self._old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in self._old:
            signal.signal(s, self._handle)

    def _handle(self, sig, frame):
        if self._finishing:
            self.pending.append(signal.Signals(sig).name)
            return
        raise Interrupted(signal.Signals(sig).name)

    def finishing(self) -> None:
        self._finishing = True

    def restore(self) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


TIER_CLIENTS = 2   # patients going round the high, medium and low tiers beside the critical load


def new_load(c, sql, readers: int, writers: int, client_retries: int = 0, tier_clients: int = TIER_CLIENTS):
    """The critical tier's readers and writers, and `tier_clients` patients going round
    the other three tiers (load.TIER_REQUESTS), counted apart."""
    from .load import MixedLoad, pick_readers, pick_writers
    regions = c.topo.names
    patients = pick_readers(sql, regions, readers + tier_clients)
    return MixedLoad(f"http://127.0.0.1:{c.topo.haproxy['http']}", patients[:readers],
                     pick_writers(sql, regions, writers), pause=0.05, timeout=30,
                     client_retries=client_retries, tier_clients=patients[readers:])


def run(c, exp: Experiment, readers: int = 4, writers: int = 2, alerts_log: Path | None = None,
        load=None, sql=None, rid: str | None = None) -> dict:
    """Runs the experiment; returns the result (also written to <state>/chaos/<id>.json/.txt).
    `load`: a running load shared with other experiments (a chaos day): it is neither started
    nor stopped here, and the figures and the write check cover this experiment's window."""
    journal = Journal(c.state)
    rid = rid or time.strftime("c%Y%m%dT%H%M%SZ", time.gmtime())
    result: dict = {"id": rid, "title": exp.title, "experiment": asdict(exp), "started": time.time(),
                    "replayed": replay(c, journal), "steps": [], "held": True, "aborted": None}
    if not c.status()["healthy"]:
        raise ClusterError("the cluster is not healthy: `scripts/cluster up` (or wait) before an experiment")
    sql = sql or _sql(c)
    shared = load is not None
    if shared:
        load.client_retries = exp.client_retries
    else:
        load = new_load(c, sql, readers, writers, exp.client_retries)
    t_start = time.monotonic()
    alerts = None
    if c.with_monitoring:
        from .mttd import Alerts
        alerts = Alerts(c, alerts_log)
    # Until the fault is reverted a signal stops the run at once (the finally reverts);
    # during the final checks and the save it is only recorded, so the result is written.
    sigs = Signals()
    if not shared:
        load.login()
        load.start()
    try:
        result["before"] = _hold(load, exp.hypothesis, exp.before_s, None)
        if not all(w["ok"] for w in result["before"]["windows"]):
            result["held"] = False
            result["aborted"] = "the hypothesis did not hold before any fault: nothing to learn from a fault"
        for step in ([] if result["aborted"] else exp.method):
            res = _step(c, exp, step, load, journal, rid, alerts)
            result["steps"].append(res)
            if not res["held"]:
                result["held"] = False
            if res.get("aborted"):
                result["aborted"] = res["aborted"]
                break
        if not result["aborted"]:
            t_after = time.monotonic()
            result["after"] = _hold(load, exp.hypothesis, exp.after_s, None)
            if not all(w["ok"] for w in result["after"]["windows"]):
                result["held"] = False
            # the other tiers back to normal on their own: every request of theirs sent
            # after the hypothesis held again was answered
            result["tiers_after_failed"] = load.tier_failures_between(t_after, time.monotonic() - 1.0)
    except Interrupted as e:
        result["held"] = False
        result["aborted"] = f"interrupted ({e}); every injected fault was reverted"
    finally:
        sigs.finishing()
        if shared:
            t_end = time.monotonic()
            time.sleep(1.0)   # the window's last requests get their answers
            result["load"] = load.figures(t_start, t_end, counts_in_window=True)
        else:
            load.stop()
            result["load"] = load.figures()
        try:
            result["writes"] = (load.verify_writes(sql, t_start, t_end) if shared else load.verify_writes(sql))
        except ClusterError as e:
            result["writes"] = {"error": str(e)}
        try:
            result["audit"] = (load.verify_audit(sql, t_start, t_end) if shared else load.verify_audit(sql))
        except ClusterError as e:
            result["audit"] = {"error": str(e)}
        result["finished"] = time.time()
        w = result.get("writes", {})
        if w.get("lost") or w.get("duplicates") or w.get("wrong_ids"):
            result["held"] = False
        if result["audit"].get("missing") or result["audit"].get("error"):
            result["held"] = False
        if sigs.pending and not result["aborted"]:
            result["held"] = False
            result["aborted"] = f"interrupted ({sigs.pending[0]}) during the final checks"
        try:
            _save(c, result)
        finally:
            sigs.restore()
    return result


def _hold(load, h: Hypothesis, seconds: float, on_window) -> dict:
    """Checks the hypothesis every window for `seconds`; on_window(window) -> str | None stops
    early with that reason."""
    windows = []
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        t0 = time.monotonic()
        time.sleep(min(h.window_s, max(0.0, t_end - t0)))
        w = judge_window(load.records(), t0, time.monotonic(), h)
        windows.append(w)
        if on_window:
            stop = on_window(w)
            if stop:
                return {"windows": [asdict(x) for x in windows], "stopped": stop}
    return {"windows": [asdict(x) for x in windows], "stopped": None}


def _step(c, exp: Experiment, step: Step, load, journal: Journal, rid: str, alerts) -> dict:
    h = exp.hypothesis
    target = resolve_target(c, step)
    fault = make_fault(step.fault, target, step.params)
    entry = {"id": f"{rid}-{len(journal.entries())}-{step.fault}", "run": rid, "fault": step.fault,
             "target": target, "params": step.params, "injected_at": time.time()}
    res: dict = {"fault": step.fault, "target": target, "describe": fault.describe(), "held": True}
    log(f"chaos {rid}: inject {fault.describe()} for {step.hold_s:g}s")
    journal.add(entry)
    t_inject = time.time()
    broken_since = [None]
    detected = [None]

    def watch(w: Window) -> str | None:
        if alerts is not None and detected[0] is None:
            from .mttd import first_match
            try:
                hit = first_match(alerts.received(t_inject - 1), fault, "firing", t_inject, started=t_inject)
            except Exception:  # noqa: BLE001 - the alert log is a witness, not a dependency
                hit = None
            if hit:
                detected[0] = {"alert": hit[1], "after_s": round(hit[0] - t_inject, 2)}
        if w.ok:
            broken_since[0] = None
            return None
        res["held"] = False
        if broken_since[0] is None:
            broken_since[0] = w.t0
        if w.t1 - broken_since[0] >= exp.abort_after_s:
            return f"the hypothesis was broken for {w.t1 - broken_since[0]:.0f}s (abort_after_s {exp.abort_after_s:g}): {w.why}"
        return None
    revert_error = None
    try:
        fault.inject(c)
        held = _hold(load, h, step.hold_s, watch)
        res["during"] = held
        if held["stopped"]:
            res["aborted"] = held["stopped"]
            log(f"chaos {rid}: abort: {held['stopped']}")
    finally:
        t_revert = time.monotonic()
        log(f"chaos {rid}: revert {fault.describe()}")
        try:
            fault.revert(c)
            journal.remove(entry["id"])
        except Exception as e:  # noqa: BLE001 - any failed revert (a timeout too) is reported
            # The entry stays in the journal: `chaos revert` (and the next run) replays it.
            revert_error = str(e)
            log(f"chaos {rid}: the revert FAILED (left in the revert journal): {e}")
        res["revert_s"] = round(time.monotonic() - t_revert, 2)
    if revert_error is not None:
        res["held"] = False
        res["revert_error"] = revert_error
        res["aborted"] = f"the revert failed (left in the revert journal for `chaos revert`): {revert_error}"
        res["detected"] = detected[0]
        res["monitoring"] = alerts is not None
        return res
    # recovery: until a window holds again
    recovered = None
    t_end = time.monotonic() + exp.recovery_timeout_s
    recovery = []
    while time.monotonic() < t_end:
        t0 = time.monotonic()
        time.sleep(h.window_s)
        w = judge_window(load.records(), t0, time.monotonic(), h)
        recovery.append(asdict(w))
        if w.ok:
            recovered = round(w.t0 - t_revert, 2) if recovery[:-1] else 0.0
            break
    res["recovery"] = recovery
    res["recovered_after_revert_s"] = recovered
    if recovered is None:
        res["held"] = False
        res["aborted"] = res.get("aborted") or f"the hypothesis did not hold again within {exp.recovery_timeout_s:g}s"
    res["detected"] = detected[0]
    res["monitoring"] = alerts is not None
    return res


def _save(c, result: dict, render=None, html: str | None = None, kind: str = "chaos-run") -> None:
    """<state>/chaos/<id>.json, .txt (the readable report, also printed) and .html (the
    same with each experiment's timeline: chaos_html); and the report on the operations
    dashboard (reports.py)."""
    from . import chaos_html, reports
    d = Path(c.state) / "chaos"
    d.mkdir(parents=True, exist_ok=True)
    write_atomic(d / f"{result['id']}.json", json.dumps(result, indent=1, default=str) + "\n")
    text = (render or report)(result)
    write_atomic(d / f"{result['id']}.txt", text)
    write_atomic(d / f"{result['id']}.html", html if html is not None else chaos_html.run_html(result))
    print(text + f"  report: {d / (result['id'] + '.html')}\n", flush=True)
    if kind == "chaos-day":
        n = len(result.get("files") or [])
        title = f"chaos day: {n} experiment{'s' if n != 1 else ''}"
        outcome = "targets met" if (result.get("summary") or {}).get("met") else "targets missed"
    else:
        title = result.get("title") or result["id"]
        outcome = ("hypothesis held" if result.get("held") else "hypothesis broken") + (
            f"; aborted: {result['aborted']}" if result.get("aborted") else "")
    reports.Publisher.for_cluster(c).send(
        reports.payload(kind, result["id"], title, outcome, result.get("started") or time.time(),
                        result.get("finished"), text, result), final=True)


def report(r: dict) -> str:
    lines = [f"chaos run {r['id']}: {r['title']}",
             f"  result: hypothesis {'HELD' if r['held'] else 'BROKEN'}"
             + (f"; aborted: {r['aborted']}" if r.get("aborted") else "")]
    if r.get("replayed"):
        lines.append(f"  reverted first (left by an earlier run): {', '.join(r['replayed'])}")

    def windows(tag: str, ws: list[dict]) -> str:
        bad = [w for w in ws if not w["ok"]]
        n = sum(w["requests"] for w in ws)
        f = sum(w["failed"] for w in ws)
        worst = max((w["p99_ms"] or 0) for w in ws) if ws else 0
        s = f"  {tag}: {len(ws)} window(s), {n} answers, {f} failed, worst p99 {worst:.0f} ms"
        if bad:
            s += f"; broken in {len(bad)}: {bad[0]['why']}"
        return s
    if r.get("before"):
        lines.append(windows("before", r["before"]["windows"]))
    for s in r["steps"]:
        lines.append(f"  step {s['describe']}: {'held' if s['held'] else 'BROKEN'}"
                     + (f", aborted: {s['aborted']}" if s.get("aborted") else ""))
        if s.get("during"):
            lines.append("  " + windows("during", s["during"]["windows"]))
        if s.get("revert_error"):
            lines.append(f"    revert FAILED after {s.get('revert_s')}s: {s['revert_error'][:500]}")
        lines.append(f"    revert {s.get('revert_s')}s; hypothesis held again "
                     + (f"{s['recovered_after_revert_s']}s after the revert" if s.get("recovered_after_revert_s") is not None
                        else "NOT within the recovery timeout"))
        det = s.get("detected")
        lines.append(f"    detected: {det['alert']} after {det['after_s']}s" if det else
                     "    detected: no alert matched" if s.get("monitoring", True) else
                     "    detected: - (the cluster runs without the monitoring stack)")
    if r.get("after"):
        lines.append(windows("after", r["after"]["windows"]))
    ld, w = r.get("load") or {}, r.get("writes") or {}
    retries = ld.get("client_retries", 0)
    how = (f"clients resend an unanswered request up to {retries} time(s): {ld.get('retried', 0)} resent; "
           f"without that {ld.get('failed_without_client_retries', 0)} would have failed; "
           if retries else "no client retries; ")
    lines.append(f"  load: {ld.get('sent', 0)} requests, {ld.get('failed', 0)} failed ({how}"
                 f"the edge retries), longest stall reads {ld.get('read_stall_s', 0):.2f}s writes "
                 f"{ld.get('write_stall_s', 0):.2f}s")
    lines.append(f"  writes: {w.get('acked_writes', '?')} acknowledged, lost {w.get('lost', '?')}, duplicated "
                 f"{w.get('duplicates', '?')}, wrong ids {w.get('wrong_ids', '?')}")
    if r.get("audit"):
        lines.append("  audit: " + audit_line(r["audit"]))
    if ld.get("tiers"):
        after = r.get("tiers_after_failed")
        lines.append("  other tiers: " + "; ".join(
            f"{t} {x['sent']} requests, {x['failed']} failed"
            + (f" ({', '.join(f'{k} x{v}' for k, v in sorted(x['failed_by_kind'].items()))})" if x["failed"] else "")
            + f", longest stall {x['stall_s']:.2f}s" for t, x in ld["tiers"].items())
            + ("" if after is None else "; after the revert: " + (
                "every request answered" if not any(after.values())
                else ", ".join(f"{t} {n} failed" for t, n in after.items() if n))))
    return "\n".join(lines) + "\n"


# ---- a chaos day ---------------------------------------------------------------------------------

TTD_TARGET_S = 10.0


def audit_line(a: dict) -> str:
    if a.get("error"):
        return f"could not be checked: {a['error']}"
    return (f"{a.get('acked_phi', '?')} acknowledged PHI answers, {a.get('missing', '?')} without their audit "
            f"record in audit_event" + (f" ({'; '.join(a['missing_detail'])})" if a.get("missing_detail") else ""))


def verify_line(v: dict) -> str:
    if v.get("ok"):
        return (f"OK: {v.get('journal_records')} journal records in {v.get('journals')} journals, "
                f"{v.get('table_rows')} table rows, 0 problems ({v.get('seconds')}s)")
    return f"FAILED: {'; '.join(v.get('problems') or ['?'])}"


def day_summary(results: list[dict], monitoring: bool) -> dict:
    """The day over its experiments' results, and the targets (issue 12): the critical tier
    (the load's readers and writers) with 0 failed requests in every experiment, 0 lost or
    duplicated acknowledged writes, every hypothesis held, the other tiers back to normal
    after each revert, median time to detect <= 10 s (with the monitoring stack). Pure:
    unit-tested."""
    rows = []
    ttd: list[float] = []
    for r in results:
        ld, w = r.get("load") or {}, r.get("writes") or {}
        det = [s["detected"]["after_s"] for s in r.get("steps", []) if s.get("detected")]
        missed = [s["describe"] for s in r.get("steps", []) if not s.get("detected")]
        rec = [s.get("recovered_after_revert_s") for s in r.get("steps", [])]
        ttd += det
        rows.append({"id": r.get("id"), "title": r.get("title"), "held": bool(r.get("held")),
                     "aborted": r.get("aborted"), "requests": ld.get("sent", 0), "failed": ld.get("failed", 0),
                     "failed_without_client_retries": ld.get("failed_without_client_retries", ld.get("failed", 0)),
                     "read_stall_s": ld.get("read_stall_s"), "write_stall_s": ld.get("write_stall_s"),
                     "acked_writes": w.get("acked_writes"), "lost": w.get("lost"), "duplicates": w.get("duplicates"),
                     "write_check_error": w.get("error"), "detected_after_s": det, "undetected": missed,
                     "recovered_after_revert_s": rec, "tiers": ld.get("tiers"),
                     "tiers_after_failed": r.get("tiers_after_failed"),
                     "acked_phi": (r.get("audit") or {}).get("acked_phi"),
                     "audit_missing": (r.get("audit") or {}).get("missing"),
                     "audit_error": (r.get("audit") or {}).get("error"),
                     "ran": "load" in r})   # "could not run" has no load figures (nor an audit)
    med = None
    if ttd:
        v = sorted(ttd)
        med = v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
    targets = {
        "critical_0_failed": {"met": all(x["failed"] == 0 for x in rows),
                              "detail": {x["title"]: x["failed"] for x in rows if x["failed"]}},
        "no_lost_or_duplicated_writes": {
            "met": all(x["lost"] == 0 and x["duplicates"] == 0 and not x["write_check_error"] for x in rows),
            "detail": {x["title"]: {"lost": x["lost"], "duplicates": x["duplicates"], "error": x["write_check_error"]}
                       for x in rows if x["lost"] or x["duplicates"] or x["write_check_error"]}},
        # every acknowledged PHI answer of the load has its audit record (in audit_event)
        "no_lost_audit_records": {
            "met": all(x["audit_missing"] == 0 and not x["audit_error"] for x in rows if x["ran"]),
            "detail": {x["title"]: {"missing": x["audit_missing"], "error": x["audit_error"]}
                       for x in rows if x["ran"] and (x["audit_missing"] != 0 or x["audit_error"])}},
        "every_hypothesis_held": {"met": all(x["held"] for x in rows),
                                  "detail": {x["title"]: x["aborted"] or "broken" for x in rows if not x["held"]}},
        # high, medium and low back to normal on their own after each revert (what they did
        # during the fault -- read-only, queued, stale -- is in each experiment's report)
        "other_tiers_back_after_revert": {
            "met": all(not any((x["tiers_after_failed"] or {}).values()) for x in rows),
            "detail": {x["title"]: {t: n for t, n in x["tiers_after_failed"].items() if n}
                       for x in rows if any((x["tiers_after_failed"] or {}).values())}},
    }
    if monitoring:
        targets["median_time_to_detect_le_10s"] = {"met": med is not None and med <= TTD_TARGET_S,
                                                   "detail": {"median_s": med, "samples": len(ttd)}}
    return {"experiments": rows, "requests": sum(x["requests"] for x in rows),
            "failed": sum(x["failed"] for x in rows),
            "failed_without_client_retries": sum(x["failed_without_client_retries"] for x in rows),
            "median_time_to_detect_s": med, "targets": targets,
            "met": all(t["met"] for t in targets.values())}


def day_report(d: dict) -> str:
    s = d["summary"]
    lines = [f"chaos day {d['id']}: {len(s['experiments'])} experiment(s), {s['requests']} requests, "
             f"{s['failed']} failed ({s['failed_without_client_retries']} without client retries)",
             f"  targets: {'ALL MET' if s['met'] else 'MISSED'}"]
    for name, t in s["targets"].items():
        lines.append(f"    {name}: {'met' if t['met'] else 'MISSED'}" + (f" {t['detail']}" if t["detail"] else ""))
    lines.append("")
    lines.append(f"  {'experiment':58s} {'held':5s} {'req':>6s} {'fail':>4s} {'lost':>4s} {'dup':>3s} "
                 f"{'ttd s':>7s} {'recover s':>9s}")
    for x in s["experiments"]:
        ttd = ",".join(f"{v:g}" for v in x["detected_after_s"]) or "-"
        rec = ",".join("-" if v is None else f"{v:g}" for v in x["recovered_after_revert_s"]) or "-"
        lines.append(f"  {x['title'][:58]:58s} {'yes' if x['held'] else 'NO':5s} {x['requests']:6d} "
                     f"{x['failed']:4d} {x['lost'] if x['lost'] is not None else '?':>4} "
                     f"{x['duplicates'] if x['duplicates'] is not None else '?':>3} {ttd:>7s} {rec:>9s}")
    for name, why in (d.get("skipped") or {}).items():
        lines.append(f"  skipped {name}: {why}")
    if d.get("writes"):
        w = d["writes"]
        lines.append(f"  the day's ledger: {w.get('acked_writes', '?')} acknowledged writes, lost {w.get('lost', '?')}, "
                     f"duplicated {w.get('duplicates', '?')}, wrong ids {w.get('wrong_ids', '?')}")
    if d.get("audit"):
        lines.append("  the day's audit: " + audit_line(d["audit"]))
    if d.get("audit_verify"):
        lines.append("  audit verify: " + verify_line(d["audit_verify"]))
    if d.get("interrupted"):
        lines.append(f"  INTERRUPTED: {d['interrupted']}")
    if d.get("left_injected"):
        lines.append(f"  LEFT INJECTED: {d['left_injected']}")
    return "\n".join(lines) + "\n"


def day(c, files: list[Path], readers: int = 4, writers: int = 2, settle_s: float = 180) -> dict:
    """Every experiment in turn under one steady load (one ledger of acknowledged writes for
    the whole day); between two, until the cluster is healthy again. Writes
    <state>/chaos/day-<id>.json and .txt."""
    exps = [(Path(f), load_experiment(f)) for f in files]   # every file parses before anything runs
    did = time.strftime("day%Y%m%dT%H%M%SZ", time.gmtime())
    replay(c, Journal(c.state))
    wait_healthy(c, settle_s)
    sql = _sql(c)
    load = new_load(c, sql, readers, writers)
    load.login()
    load.start()
    results: list[dict] = []
    out: dict = {"id": did, "started": time.time(), "files": [str(f) for f, _ in exps], "skipped": {}}
    sigs = Signals()   # between experiments too: the day's report is written whatever stops it
    try:
        for i, (f, exp) in enumerate(exps):
            log(f"chaos day {did}: experiment {i + 1} of {len(exps)}: {f.name}")
            if any(st.fault == "fill-disk" for st in exp.method) and not c.has_journal_volumes():
                out["skipped"][f.name] = ("needs journal volumes (a cluster started with "
                                          "CLUSTER_JOURNAL_VOLUME_MB=128): the machine's own disk is never filled")
                log(f"chaos day {did}: {f.name} skipped: {out['skipped'][f.name]}")
                continue
            if any(st.fault == "partition-region" for st in exp.method) and not c.topo.netns:
                out["skipped"][f.name] = ("needs the regions in network namespaces (a cluster started with "
                                          "CLUSTER_NETNS=1): on shared loopback no region can be cut off")
                log(f"chaos day {did}: {f.name} skipped: {out['skipped'][f.name]}")
                continue
            try:
                # what an earlier experiment could not revert is retried first (run() would,
                # but only once the cluster is healthy, which it may not be without it)
                left = replay(c, Journal(c.state))
                if left:
                    log(f"chaos day {did}: reverted what was left: {', '.join(left)}")
                wait_healthy(c, settle_s)
                results.append(run(c, exp, load=load, sql=sql, rid=f"{did}-{i + 1:02d}"))
                if str(results[-1].get("aborted") or "").startswith("interrupted"):
                    out["interrupted"] = f"during {f.name}: {results[-1]['aborted']}"
                    log(f"chaos day {did}: interrupted; the remaining experiments are skipped")
                    break
            except ClusterError as e:
                results.append({"id": f"{did}-{i + 1:02d}", "title": exp.title, "held": False,
                                "aborted": f"could not run: {e}", "steps": []})
    except Interrupted as e:
        out["interrupted"] = str(e)
        log(f"chaos day {did}: interrupted ({e}) between experiments; the remaining ones are skipped")
    finally:
        sigs.finishing()
        load.stop()
        # what a failed or cut-short revert left behind is retried; what stays is reported
        try:
            left = replay(c, Journal(c.state))
            if left:
                out["reverted_at_the_end"] = left
        except Exception as e:  # noqa: BLE001 - reported, never hides the day's report
            out["left_injected"] = f"{e}: `scripts/cluster chaos revert` retries"
        out["finished"] = time.time()
        out["load"] = load.figures()
        try:
            out["writes"] = load.verify_writes(sql)
        except ClusterError as e:
            out["writes"] = {"error": str(e)}
        try:
            out["audit"] = load.verify_audit(sql)
        except ClusterError as e:
            out["audit"] = {"error": str(e)}
        out["audit_verify"] = audit_verify(c)
        out["summary"] = day_summary(results, c.with_monitoring)
        w = out["writes"]
        if w.get("lost") or w.get("duplicates") or w.get("error"):
            out["summary"]["met"] = False
        # the day's audit: every PHI answer of the whole day, and every chain and table row
        t = out["summary"]["targets"]["no_lost_audit_records"]
        a, v = out["audit"], out["audit_verify"]
        if a.get("missing") or a.get("error") or not v.get("ok"):
            t["met"] = False
            out["summary"]["met"] = False
            t["detail"]["the whole day"] = {"missing": a.get("missing"), "error": a.get("error"),
                                            "verify": verify_line(v)}
        if sigs.pending:
            out.setdefault("interrupted", f"{sigs.pending[0]} during the final checks")
        # a day cut short, or one that left a fault injected, has not shown its targets
        done = {"met": not out.get("interrupted") and not out.get("left_injected"),
                "detail": {k: out[k] for k in ("interrupted", "left_injected") if out.get(k)}}
        out["summary"]["targets"]["day_ran_to_the_end_and_reverted"] = done
        if not done["met"]:
            out["summary"]["met"] = False
        from . import chaos_html
        try:
            _save(c, out, day_report, chaos_html.day_html(out, results), kind="chaos-day")
        finally:
            sigs.restore()
    return out


def wait_healthy(c, seconds: float) -> None:
    from .util import wait_for
    wait_for(seconds, "a healthy cluster", lambda: c.status()["healthy"], interval=2)


def list_experiments(folder: Path) -> list[tuple[str, str]]:
    out = []
    for p in sorted(Path(folder).glob("*.json")):
        try:
            out.append((p.name, load_experiment(p).title))
        except ValueError as e:
            out.append((p.name, f"INVALID: {e}"))
    return out
