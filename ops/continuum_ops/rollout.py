"""`scripts/cluster rollout` / `continuum cluster rollout`: the canary rollout controller.

The decisions are rollout_plan.decide() (steps, weights, transitions, persisted state) and
judge.judge() (canary against baseline); this module observes the cluster and acts:

  observe  which portal nodes run (the Supervisor's pid files) and are ready (/readyz 200),
           and the weights HAProxy has (`show servers state`; a server in MAINT counts as
           not registered)
  act      start_nodes  start the new release's nodes in the cluster's other release slot
                        (topology.SLOTS: the node ports + 50, named <region>-c, -d, ...) and
                        add them to every portal backend at runtime (`add server`, weight 0;
                        a backup server in the other regions' backends, as the template does
                        for the live nodes), then `enable health` and `enable server`
           set_weights  `set weight` in the node's own region backend, mirrored on its
                        backup entries elsewhere (a weight-0 server is no one's backup)
           judge        counts over the window from Prometheus (two instant snapshots, at
                        the window's start and at now, subtracted: exact integers):
                        requests and errors per side from HAProxy's per-server counters
                        (haproxy_server_http_responses_total by code; 5xx, response errors
                        and connection errors are errors), latency histograms from the nodes'
                        continuum_http_request_duration_seconds (tier != ops), restarts from
                        continuum_process_start_time_seconds when the nodes export it
           stop_nodes   `set server state drain` everywhere, wait (10 s at most) until HAProxy
                        has no session on it, SIGTERM (the node drains itself too), wait for
                        the exit, then `set server state maint` and `del server` everywhere
  finish   done: <state>/release.json names the new slot, binary and overlay, so `up` and
           HAProxy's template serve the new release from then on; the report is written to
           <state>/rollout/<id>.report.{json,txt} in every outcome.

State: <state>/rollout/current.json (rollout_plan.save_state: atomic, durable) is written
before every action, so a controller killed anywhere resumes with `rollout --resume` (or is
aborted: `rollout --abort`). One controller at a time (flock on <state>/rollout/lock).
Operators' commands to a running controller (`rollout --command advance|resume|rollback|
abort`) go through <state>/rollout/command, which the controller reads between actions.
Every decision is logged (one line with its numbers) and kept in the state's events and
judgements, which `status` shows.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path

from . import haproxy as hap
from .haproxy import MAINT_BITS, portal_servers  # noqa: F401 (portal_servers: used by the tests)
from . import judge as judge_mod
from . import monitoring
from . import reports
from . import rollout_plan as plan
from .topology import Node, other_slot
from .util import ClusterError, http_get, http_json, log, write_atomic

# Portal backend server options (the template's `default-server` of `defaults edge`:
# dynamically added servers do not inherit it).
SERVER_OPTS = ("check inter 500 fastinter 500 downinter 1s fall 2 rise 2 observe layer4 error-limit 1 "
               "on-error mark-down")
DRAIN_WAIT_S = 10.0
# Latency is compared on the requests a release serves, not on the password hash: logins
# (session.create, Argon2id by design ~0.2 s, CPU-budgeted) and the ops routes are left out.
# And not on warm-up: every weight change moves sessions to the canary, which then opens
# database connections for the higher concurrency (its pools grow on demand); measured
# here, a good release's p99 over the first seconds after 5% -> 25% was 474 ms against the
# baseline's 99 ms, which the exact tail test rightly calls a regression. So the latency
# window of a step starts LATENCY_WARMUP_S after the step began (errors count from the
# first canary traffic on, warm-up or not). The pinned journeys are counted over the same
# window as latency (a journey is a chain of timed requests).
LATENCY_ROUTES_EXCLUDED = "session.create|session.totp.confirm|session.totp.enrol"
LATENCY_WARMUP_S = 10.0


# --------------------------------------------------------------------------------------
# Pure parts (unit-tested): HAProxy state, Prometheus samples, the judge's input
# --------------------------------------------------------------------------------------

def observed_weights(servers: dict[str, dict[str, dict]]) -> dict[str, dict[str, int]]:
    """The weights a rollout sees: servers in maintenance are not registered."""
    return {be: {name: s["weight"] for name, s in ss.items() if not s["admin"] & MAINT_BITS}
            for be, ss in servers.items()}


def counter_delta(before: dict, after: dict) -> dict:
    """Per series: after - before; a counter that went down was reset (HAProxy reloaded, a node
    restarted) and counts from zero; a series absent before counts from zero."""
    out = {}
    for k, v in after.items():
        b = before.get(k, 0.0)
        out[k] = v - b if v >= b else v
    return out


def side_counts(responses: dict, failures: dict, servers: list[str]) -> tuple[int, int]:
    """(requests, errors) of `servers` from the window's deltas: responses {(server, code):
    n} (code 1xx..5xx, other), failures {server: n} (response + connection errors)."""
    req = err = 0
    for (srv, code), n in responses.items():
        if srv in servers:
            req += n
            if code == "5xx":
                err += n
    for srv, n in failures.items():
        if srv in servers:
            req += n
            err += n
    return int(round(req)), int(round(err))


def buckets_of(delta: dict) -> list[tuple[float, int]] | None:
    """{le: cumulative count} -> sorted [(le, count)] ending at +Inf, or None when empty."""
    if not delta:
        return None
    bs = sorted(((float("inf") if le in ("+Inf", "Inf") else float(le)), int(round(c))) for le, c in delta.items())
    if not bs or bs[-1][0] != float("inf"):
        return None
    out, prev = [], 0
    for le, c in bs:
        c = max(c, prev)
        out.append((le, c))
        prev = c
    return out


def latency_by_route(delta: dict, nodes: list[str]) -> dict[str, judge_mod.Latency]:
    """{(node, route, le): count growth} -> {route: Latency} summed over `nodes` (routes
    without a full histogram left out)."""
    per: dict[str, dict[str, float]] = {}
    for (node, route, le), v in delta.items():
        if node in nodes:
            d = per.setdefault(route, {})
            d[le] = d.get(le, 0.0) + v
    out = {}
    for route, d in per.items():
        b = buckets_of(d)
        if b and b[-1][1] > 0:
            out[route] = judge_mod.Latency(buckets=b)
    return out


def restarts_of(starts_before: dict, starts_after: dict, nodes: list[str]) -> int:
    """Restarts in the window: nodes whose process start time changed (a node that was not
    there before is its first start, not a restart)."""
    n = 0
    for node in nodes:
        a, b = starts_after.get(node), starts_before.get(node)
        if a is not None and b is not None and a != b:
            n += 1
    return n


# --------------------------------------------------------------------------------------
# Prometheus
# --------------------------------------------------------------------------------------

class Prometheus:
    def __init__(self, base: str):
        self.base = base.rstrip("/")

    def query(self, q: str, at: float) -> list[dict]:
        url = f"{self.base}/api/v1/query?" + urllib.parse.urlencode({"query": q, "time": f"{at:.3f}"})
        d = http_json(url, timeout=10)
        if not d or d.get("status") != "success":
            raise ClusterError(f"Prometheus query failed: {q} ({(d or {}).get('error', 'no answer')})")
        return d["data"]["result"]

    def vector(self, q: str, at: float, by: tuple[str, ...]) -> dict:
        out = {}
        for r in self.query(q, at):
            key = tuple(r["metric"].get(k, "") for k in by)
            out[key[0] if len(by) == 1 else key] = float(r["value"][1])
        return out


# --------------------------------------------------------------------------------------
# The controller
# --------------------------------------------------------------------------------------

class Controller:
    def __init__(self, cluster):
        self.c = cluster
        self.dir = cluster.state / "rollout"
        self.file = self.dir / "current.json"
        self.command_file = self.dir / "command"
        self._lock = None
        self.rt = hap.Runtime(cluster.haproxy_cmd, cluster.haproxy_each)
        self.prom = Prometheus(cluster.prometheus_url)
        self.publisher = reports.Publisher.for_cluster(cluster)

    # ---- locking, files ----------------------------------------------------------------

    def lock(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        f = open(self.dir / "lock", "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            f.close()
            if e.errno in (errno.EAGAIN, errno.EACCES):
                raise ClusterError(f"another rollout controller runs on {self.c.state} (lock {self.dir / 'lock'}); "
                                   f"send it a command with `rollout --command ...`") from None
            raise
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._lock = f

    def load(self) -> plan.RolloutState | None:
        try:
            return plan.load_state(self.file)
        except plan.StateError as e:
            raise ClusterError(f"{self.file}: {e}") from None

    def save(self, s: plan.RolloutState) -> None:
        plan.save_state(self.file, s)
        self.publish(s)

    def publish(self, s: plan.RolloutState, final: bool = False) -> None:
        """The report so far on the operations dashboard (reports.py; at most every 5 s
        while it runs, and once more at the end)."""
        r = plan.report(s)
        new = r["release"].get("version") or r["release"].get("binary") or "?"
        old = r["baseline_release"].get("version") or r["baseline_release"].get("binary") or "?"
        self.publisher.send(reports.payload("rollout", s.id, f"{old} -> {new}", r["outcome"], s.created_at,
                                            r["ended_at"], plan.report_text(s), r), final=final)

    # ---- HAProxy -----------------------------------------------------------------------

    def hap(self, command: str) -> str:
        try:
            return self.rt.cmd(command)
        except RuntimeError as e:
            raise ClusterError(str(e)) from None

    def servers(self) -> dict[str, dict[str, dict]]:
        return self.rt.servers()

    def backends_of(self, servers: dict, name: str) -> list[str]:
        return self.rt.backends_of(servers, name)

    def register(self, n: Node) -> None:
        """n in every portal backend: its region's as a server, the others' as a backup;
        weight 0 until the plan gives it traffic."""
        servers = self.servers()
        for r in self.c.topo.regions:
            be = f"portal-{r.name}"
            have = servers.get(be, {}).get(n.name)
            if have is None:
                backup = " backup" if r.name != n.region else ""
                self.hap(f"add server {be}/{n.name} {n.host}:{n.port} weight 0{backup} {SERVER_OPTS}")
                self.hap(f"enable health {be}/{n.name}")
                self.hap(f"enable server {be}/{n.name}")
            elif have["admin"] & MAINT_BITS:
                self.hap(f"set weight {be}/{n.name} 0")
                self.hap(f"set server {be}/{n.name} state ready")

    def unregister(self, name: str) -> None:
        servers = self.servers()
        for be in self.backends_of(servers, name):
            self.hap(f"set server {be}/{name} state maint")
            self.c.haproxy_cmd(f"shutdown sessions server {be}/{name}")
            self.hap(f"del server {be}/{name}")

    # ---- observation -------------------------------------------------------------------

    def observe(self, s: plan.RolloutState) -> plan.Observation:
        names = s.canary_nodes + s.baseline_nodes
        nodes = {}
        for name in names:
            running = self.c.sup.alive(f"portal-{name}")
            ready = False
            if running:
                n = self.c.topo.node(name)
                r = http_get(f"http://{n.host}:{n.port}/readyz", timeout=1.5)
                ready = r is not None and r[0] == 200
            nodes[name] = plan.NodeObs(running, ready)
        return plan.Observation(time.time(), nodes, observed_weights(self.servers()))

    # ---- actions -----------------------------------------------------------------------

    def start_nodes(self, s: plan.RolloutState, names: list[str]) -> None:
        binary = Path(s.release["binary"])
        for name in names:
            n = self.c.topo.node(name)
            self.c.start_node(n, binary, s.release.get("overlay"))
        self.write_targets(s, with_canary=True)
        for name in names:
            self.register(self.c.topo.node(name))

    def set_weights(self, weights: dict[str, dict[str, int]]) -> None:
        want = {srv: w for ws in weights.values() for srv, w in ws.items()}
        servers = self.servers()
        for srv, w in want.items():
            for be in self.backends_of(servers, srv):
                if servers[be][srv]["admin"] & MAINT_BITS:
                    continue
                if servers[be][srv]["weight"] != w:
                    self.hap(f"set weight {be}/{srv} {w}")

    def stop_nodes(self, names: list[str]) -> None:
        servers = self.servers()
        for name in names:
            for be in self.backends_of(servers, name):
                if not servers[be][name]["admin"] & MAINT_BITS:
                    self.hap(f"set server {be}/{name} state drain")
        deadline = time.monotonic() + DRAIN_WAIT_S
        while time.monotonic() < deadline and any(self.rt.sessions(n) for n in names):
            time.sleep(0.2)
        self.c.sup.stop_drained([f"portal-{n}" for n in names], 30)
        for name in names:
            self.unregister(name)

    def write_targets(self, s: plan.RolloutState, with_canary: bool) -> None:
        """Prometheus' portal.json: the live nodes, and the canary nodes while they run; the
        prober's journeys pinned to the canary nodes (vantage "canary") likewise."""
        if not self.c.with_monitoring:
            return
        self.c.probe_up([f"http://{self.c.topo.node(n).host}:{self.c.topo.node(n).port}" for n in s.canary_nodes]
                        if with_canary else None)
        extra = [self.c.topo.node(n) for n in s.canary_nodes] if with_canary else []
        f = self.c.mon_dir / "prometheus" / "targets" / "portal.json"
        targets = [(f"{n.host}:{n.port}", {"region": n.region, "node": n.name})
                   for n in self.c.topo.nodes + extra]
        write_atomic(f, monitoring.file_sd(targets))

    # ---- the judge's input -------------------------------------------------------------

    def snapshot(self, at: float, nodes: list[str]) -> dict:
        sel = "|".join(nodes)
        resp = self.prom.vector(f'sum by (server, code) (haproxy_server_http_responses_total'
                                f'{{proxy=~"portal-.+",server=~"{sel}"}})', at, ("server", "code"))
        fail = self.prom.vector(f'sum by (server) (haproxy_server_response_errors_total'
                                f'{{proxy=~"portal-.+",server=~"{sel}"}}) + sum by (server) '
                                f'(haproxy_server_connection_errors_total{{proxy=~"portal-.+",server=~"{sel}"}})',
                                at, ("server",))
        lat = self.prom.vector(
            f'sum by (node, route, le) (continuum_http_request_duration_seconds_bucket{{job="portal",'
            f'node=~"{sel}",tier!="ops",route!~"{LATENCY_ROUTES_EXCLUDED}"}})', at, ("node", "route", "le"))
        starts = self.prom.vector(f'max by (node) (continuum_process_start_time_seconds{{job="portal",'
                                  f'node=~"{sel}"}})', at, ("node",))
        journeys = self.prom.vector(f'sum by (result) (continuum_probe_journey_runs_total'
                                    f'{{vantage="{monitoring.CANARY_VANTAGE}"}})', at, ("result",))
        # the same journeys against the baseline's nodes: the region vantages (the edge's
        # may land on the canary)
        regions = "|".join(self.c.topo.names)
        base_journeys = self.prom.vector(f'sum by (result) (continuum_probe_journey_runs_total'
                                         f'{{vantage=~"{regions}"}})', at, ("result",))
        return {"responses": resp, "failures": fail, "latency": lat, "starts": starts, "journeys": journeys,
                "baseline_journeys": base_journeys}

    def side(self, before: dict, after: dict, nodes: list[str], lat_before: dict, lat_after: dict,
             with_restarts: bool) -> judge_mod.Side:
        resp = counter_delta(before["responses"], after["responses"])
        fail = counter_delta(before["failures"], after["failures"])
        req, err = side_counts(resp, fail, nodes)
        restarts = restarts_of(before["starts"], after["starts"], nodes) if with_restarts else None
        return judge_mod.Side(max(req, err), err, None, restarts,
                              latency_by_route=latency_by_route(counter_delta(lat_before, lat_after), nodes))

    def judge(self, s: plan.RolloutState, a: plan.Action) -> judge_mod.Verdict:
        now = time.time() - 1.5       # the last scrapes (1 s interval) are in by then
        since = a.since or now
        lat_since = max(a.step_since or since, since) + LATENCY_WARMUP_S
        nodes = s.canary_nodes + s.baseline_nodes
        after = self.snapshot(now, nodes)
        before = self.snapshot(since, nodes)
        warm = self.snapshot(lat_since, nodes) if lat_since < now else None
        if warm is not None:
            lat_before, lat_after = warm["latency"], after["latency"]
        else:
            lat_before = lat_after = {}      # still warming up: no latency evidence yet
        with_restarts = bool(after["starts"])
        canary = self.side(before, after, s.canary_nodes, lat_before, lat_after, with_restarts)
        baseline = self.side(before, after, s.baseline_nodes, lat_before, lat_after, with_restarts)
        if self.c.with_monitoring:
            # The journeys' window is the latency window: a journey's login and reads in the
            # seconds after a weight change meet the same warm-up (measured: the first pinned
            # runs timed out reading from the canary, 5 s, while the baseline's took 2-4 s).
            for side, key in ((canary, "journeys"), (baseline, "baseline_journeys")):
                runs = counter_delta(warm[key], after[key]) if warm is not None else {}
                side.journeys_passed = int(round(runs.get("success", 0)))
                side.journeys_failed = int(round(runs.get("failure", 0)))
        cfg = judge_mod.JudgeConfig(**s.judge_config)
        return judge_mod.judge(canary, baseline, cfg, (since, now))

    # ---- the loop ----------------------------------------------------------------------

    def take_command(self, s: plan.RolloutState) -> plan.RolloutState:
        try:
            cmd = self.command_file.read_text().strip()
        except FileNotFoundError:
            return s
        self.command_file.unlink(missing_ok=True)
        if not cmd:
            return s
        try:
            s2 = plan.operator(s, cmd, time.time())
        except ValueError as e:
            log(f"rollout: operator command {cmd!r} refused: {e}")
            return s
        log(f"rollout: operator command {cmd}: phase {s2.phase} ({s2.reason})")
        self.save(s2)
        return s2

    def run(self, s: plan.RolloutState, max_seconds: float | None = None) -> plan.RolloutState:
        t_end = None if max_seconds is None else time.monotonic() + max_seconds
        last_line = None
        while True:
            s = self.take_command(s)
            if s.phase not in plan.TERMINAL:
                self.write_targets(s, with_canary=True)    # `up` may have rewritten them
            obs = self.observe(s)
            s, a = plan.decide(s, obs)
            self.save(s)                      # durable before it is acted on
            line = f"rollout {s.id}: {s.phase} step {s.step + 1} ({s.percent:g}%): {a.kind}: {a.reason}"
            if a.kind != "wait" or line != last_line:
                log(line)
            last_line = line
            if a.kind == "finished":
                self.finish(s)
                return s
            if a.kind == "start_nodes":
                self.start_nodes(s, a.nodes)
            elif a.kind == "set_weights":
                self.set_weights(a.weights)
                log(f"rollout {s.id}: weights " + "; ".join(
                    f"{be}: " + ", ".join(f"{k}={v}" for k, v in ws.items()) for be, ws in a.weights.items()))
            elif a.kind == "stop_nodes":
                self.stop_nodes(a.nodes)
            elif a.kind == "judge":
                try:
                    v = self.judge(s, a)
                except (ClusterError, ValueError) as e:
                    log(f"rollout {s.id}: cannot judge now ({e}); retrying in 2 s")
                    time.sleep(2)
                    continue
                log(f"rollout {s.id}: judge at {a.percent:g}%: {v.line()}")
                s = plan.record_verdict(s, v, a.step, time.time())
                self.save(s)
            elif a.kind == "wait":
                deadline = a.until if a.until is not None else time.time() + 1
                while time.time() < deadline and not self.command_file.exists():
                    time.sleep(min(0.25, max(0.0, deadline - time.time())))
            if t_end is not None and time.monotonic() > t_end:
                log(f"rollout {s.id}: controller time limit reached in phase {s.phase}; resume with --resume")
                return s

    def finish(self, s: plan.RolloutState) -> None:
        if s.phase == "done" and self.c.release.get("slot") == s.baseline_release.get("slot"):
            from .cluster import Cluster, write_release
            write_release(self.c.state, {"slot": s.release["slot"], "binary": s.release["binary"],
                                         "overlay": s.release.get("overlay"), "version": s.release.get("version")})
            # the new live slot: HAProxy's template, Prometheus' targets and the prober's
            # vantage points now name the new release's nodes
            c = Cluster(self.c.state, self.c.offset)
            c.load_secrets()
            c.haproxy_up()
            if c.with_monitoring:
                c.monitoring_up()
                c.probe_up()
            self.c = c
        elif s.phase != "done":
            self.write_targets(s, with_canary=False)
        text = plan.report_text(s)
        write_atomic(self.dir / f"{s.id}.report.json", json.dumps(plan.report(s), indent=1) + "\n")
        write_atomic(self.dir / f"{s.id}.report.txt", text + "\n")
        self.publish(s, final=True)
        shutil.copy(self.file, self.dir / f"{s.id}.state.json")
        self.file.unlink()
        print(text, flush=True)


# --------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------

def binary_version(binary: Path) -> str:
    try:
        cp = subprocess.run([str(binary), "version"], capture_output=True, text=True, timeout=10)
        if cp.returncode == 0 and cp.stdout.strip():
            return cp.stdout.strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "unknown"


def stage_overlay(state: Path, overlay: Path) -> Path:
    """A copy of the release's overlay under <state>/releases/overlays/<sha256 prefix>.toml:
    `up` and restarts read it for as long as the release lives, whatever becomes of the
    file it was given as."""
    if not overlay.is_file():
        raise ClusterError(f"--overlay {overlay}: no such file")
    data = overlay.read_bytes()
    d = state / "releases" / "overlays"
    d.mkdir(parents=True, exist_ok=True)
    dst = d / f"{hashlib.sha256(data).hexdigest()[:16]}.toml"
    if not dst.exists():
        tmp = dst.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, dst)
    return dst


def stage_binary(state: Path, binary: Path) -> Path:
    """A copy of the release's binary under <state>/releases/<sha256 prefix>/: a later build
    into the same path must not change what the nodes of this release run."""
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise ClusterError(f"--binary {binary}: not an executable file")
    h = hashlib.sha256(binary.read_bytes()).hexdigest()[:16]
    d = state / "releases" / h
    d.mkdir(parents=True, exist_ok=True)
    dst = d / "continuum"
    if not dst.exists():
        tmp = d / "continuum.tmp"
        shutil.copy2(binary, tmp)
        os.replace(tmp, dst)
    # The web app's bundle goes with its release: a node finds web/dist beside its binary
    # (or one folder up, as build/continuum finds the checkout's web/dist).
    web = d / "web" / "dist"
    if not (web / "index.html").exists():
        src = next((p for p in (binary.resolve().parent / ".." / "web" / "dist",
                                binary.resolve().parent / "web" / "dist") if (p / "index.html").is_file()), None)
        if src is not None:
            tmp = d / "web" / "dist.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(src, tmp)
            os.replace(tmp, web)
        else:
            log(f"release {h}: no web/dist beside {binary}: its nodes serve the API without the web app")
    return dst


def layout_of(c, servers: dict) -> dict[str, plan.RegionLayout]:
    out = {}
    for r in c.topo.regions:
        be = f"portal-{r.name}"
        have = servers.get(be, {})
        original = {}
        for n in r.nodes:
            w = have.get(n.name, {}).get("weight")
            original[n.name] = w if isinstance(w, int) and w > 0 else 1
        out[r.name] = plan.RegionLayout(be, [n.name for n in r.nodes], [n.name for n in r.other_nodes], original)
    return out


def start(c, binary: str, overlay: str | None, config: plan.PlanConfig, judge_cfg: judge_mod.JudgeConfig,
          max_seconds: float | None = None) -> plan.RolloutState:
    ctl = Controller(c)
    ctl.lock()
    if ctl.file.exists():
        s = ctl.load()
        raise ClusterError(f"a rollout is in progress ({s.id if s else '?'}, phase {s.phase if s else '?'}): "
                           f"`rollout --resume` continues it, `rollout --abort` ends it")
    if not c.with_monitoring:
        raise ClusterError("a rollout is judged from Prometheus, and this cluster runs without the monitoring "
                           "stack (CLUSTER_NO_MONITORING=1)")
    if not c.sup.pids.is_dir() or not all(c.sup.alive(f"portal-{n.name}") for n in c.topo.nodes):
        raise ClusterError("the cluster is not up (every live portal node must run): `scripts/cluster up` first")
    c.load_secrets()
    c.synthetic_accounts()     # the "canary" vantage's accounts (idempotent)
    if overlay:
        overlay = str(stage_overlay(c.state, Path(overlay).resolve()))
    staged = stage_binary(c.state, Path(binary).resolve())
    release = {"binary": str(staged), "source": str(Path(binary).resolve()), "overlay": overlay,
               "version": binary_version(staged), "slot": other_slot(c.topo.slot)}
    baseline = {"binary": str(c.bin), "overlay": c.release.get("overlay"), "version": binary_version(c.bin),
                "slot": c.topo.slot}
    rid = time.strftime("r%Y%m%dT%H%M%SZ", time.gmtime())
    try:
        s = plan.new_rollout(rid, time.time(), layout_of(c, ctl.servers()), release, baseline, config, judge_cfg)
    except ValueError as e:
        raise ClusterError(f"rollout refused: {e}") from None
    ctl.command_file.unlink(missing_ok=True)
    ctl.save(s)
    log(f"rollout {rid}: {baseline['version']} (slot {baseline['slot']}) -> {release['version']} "
        f"(slot {release['slot']}, {staged}); steps "
        + ", ".join(f"{x.percent:g}%" + (f" hold {x.hold_s:g}s" if x.hold_s else "") for x in config.steps))
    return ctl.run(s, max_seconds)


def resume(c, abort: bool = False, max_seconds: float | None = None) -> plan.RolloutState:
    ctl = Controller(c)
    ctl.lock()
    s = ctl.load()
    if s is None:
        raise ClusterError(f"no rollout in progress ({ctl.file} does not exist)")
    c.load_secrets()
    if abort:
        try:
            s = plan.operator(s, "abort", time.time(), "operator (--abort)")
        except ValueError as e:
            raise ClusterError(f"abort refused: {e}") from None
        ctl.save(s)
    log(f"rollout {s.id}: resuming in phase {s.phase}, step {s.step + 1} ({s.percent:g}%)")
    return ctl.run(s, max_seconds)


def command(c, cmd: str) -> None:
    if cmd not in plan.COMMANDS:
        raise ClusterError(f"unknown command {cmd!r}: one of {', '.join(plan.COMMANDS)}")
    ctl = Controller(c)
    if not ctl.file.exists():
        raise ClusterError("no rollout in progress")
    write_atomic(ctl.command_file, cmd + "\n", 0o600)
    log(f"rollout: {cmd} sent to the controller (it acts on it between two actions); "
        f"no controller running? `rollout --resume` picks it up")


def status(c) -> dict | None:
    """The rollout in progress (or None): phase, step, shares, the last judgement."""
    ctl = Controller(c)
    try:
        s = ctl.load()
    except ClusterError as e:
        return {"error": str(e)}
    if s is None:
        return None
    last = s.judgements[-1] if s.judgements else None
    return {"id": s.id, "phase": s.phase, "reason": s.reason, "step": s.step + 1, "percent": s.percent,
            "canary_nodes": s.canary_nodes if s.phase not in plan.TERMINAL else [],
            "shares": s.last_shares, "release": s.release, "baseline_release": s.baseline_release,
            "last_judgement": last and {k: last.get(k) for k in ("at", "verdict", "line")},
            "updated_at": s.updated_at}
