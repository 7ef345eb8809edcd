"""Faults to inject into a running local cluster, each with inject / revert and the alerts
that should say so. Used by bench/mttd (time to detect) and its short version in the tests.

A fault only touches what it names and its revert puts it back; `revert` is safe to call
twice and after a failed `inject`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .cluster import PSQL, Cluster
from .util import ClusterError, log, wait_for


@dataclass
class Fault:
    kind: str                   # the fault class (a row of the MTTD table)
    target: str                 # what it hits (region, dependency, table)
    alerts: set[str]            # any of these alert names counts as detection ...
    labels: dict[str, str] = field(default_factory=dict)   # ... when it carries these labels
    by_name: set[str] = field(default_factory=set)         # ... or, by name alone, one of these

    def inject(self, c: Cluster) -> None:
        raise NotImplementedError

    def revert(self, c: Cluster) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.kind} ({self.target})"

    def matches(self, alert: dict) -> bool:
        """An alert names this fault: one of its alerts with the fault's labels (a region's
        fault is not detected by an alert about another region, nor by one about no region),
        or one of the few that are specific by name alone (PatroniNoLeader)."""
        name = alert.get("alertname")
        if name in self.by_name:
            return True
        if name not in self.alerts:
            return False
        labels = alert.get("labels") or {}
        return all(labels.get(k) == v for k, v in self.labels.items())


class NodesStopped(Fault):
    """Every portal node of a region SIGKILLed (processes gone; the rest of the region lives)."""

    def __init__(self, region: str):
        super().__init__("region's portal nodes stopped", region,
                         {"PortalRegionDown", "PortalNodeDown", "EdgeBackendDown", "JourneyFailingFromOneVantage"},
                         {"region": region})

    def inject(self, c: Cluster) -> None:
        for n in c.topo.region(self.target).nodes:
            p = c.sup.live_pid(f"portal-{n.name}")
            if p:
                os.kill(p, signal.SIGKILL)

    def revert(self, c: Cluster) -> None:
        c.preflight()
        c.portal_up([self.target])
        names = [n.name for n in c.topo.region(self.target).nodes]
        wait_for(60, f"portal nodes of {self.target}", lambda: c.nodes_ready(names))


class PrimaryRegionKilled(Fault):
    def __init__(self, region: str):
        super().__init__("primary's region killed", region,
                         {"RegionDown", "PatroniMemberDown", "PortalRegionDown", "EtcdMemberDown",
                          "EdgeBackendDown", "PortalNodeDown", "PostgresExporterCannotConnect"}, {"region": region},
                         {"PatroniNoLeader"})

    def inject(self, c: Cluster) -> None:
        c.kill_region(self.target)

    def revert(self, c: Cluster) -> None:
        c.start_region(self.target)


class DependencyFault(Fault):
    """A stand-in's fault mode: refuse (connection refused), slow (answers after delay_ms),
    error (503), timeout (never answers)."""

    def __init__(self, dependency: str, mode: str, delay_ms: int = 3000):
        super().__init__(f"dependency {mode}", dependency, {"DependencyDown", "DependencyDegraded"},
                         {"dependency": dependency})
        self.mode, self.delay_ms = mode, delay_ms

    def _admin(self, c: Cluster, method: str, path: str, body: dict | None = None) -> None:
        req = urllib.request.Request(f"http://{c.topo.service_host}:{c.topo.stub_base}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            r.read()

    def inject(self, c: Cluster) -> None:
        self._admin(c, "PUT", f"/admin/faults/{self.target}", {"mode": self.mode, "delay_ms": self.delay_ms})

    def revert(self, c: Cluster) -> None:
        self._admin(c, "PUT", f"/admin/faults/{self.target}", {"mode": "ok"})


class QuerySlowed(Fault):
    """A lock held on a table a journey reads: an ACCESS EXCLUSIVE lock taken on the primary
    is replayed on the standbys too, so reads of that table wait everywhere."""

    def __init__(self, table: str = "medication"):
        super().__init__("query slowed (lock held)", table,
                         {"JourneyFailingFromEdge", "JourneyFailingFromMultipleVantages", "QueryLatencyTrendingUp",
                          "SLOErrorBudgetBurn", "DbPoolSaturated"})
        self.proc: subprocess.Popen | None = None

    APP = "continuum-fault-query-slowed"

    def _psql(self, c: Cluster, sql: str) -> list:
        return [str(PSQL), "-X", "-q", f"host=127.0.0.1 port={c.topo.haproxy['pg_primary']} user=postgres "
                f"dbname=continuum application_name={self.APP}", "-c", sql]

    def inject(self, c: Cluster) -> None:
        # statement_timeout bounds the lock even if this process dies without its revert
        # (psql killed, controller killed): the server ends the statement, the implicit
        # transaction aborts, the lock goes.
        sql = (f"SET statement_timeout = '180s'; BEGIN; LOCK TABLE {self.target} IN ACCESS EXCLUSIVE MODE; "
               f"SELECT pg_sleep(170); ROLLBACK;")
        self.proc = subprocess.Popen(self._psql(c, sql), env=self._env(c), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _env(self, c: Cluster) -> dict:
        return {"PGPASSWORD": c.secrets["SUPERUSER_PASSWORD"], "PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "5"}

    def revert(self, c: Cluster) -> None:
        # End the holder on the server (whatever became of our psql), then reap psql.
        subprocess.run(self._psql(c, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     f"WHERE application_name = '{self.APP}' AND pid <> pg_backend_pid()"),
                       env=self._env(c), stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        if self.proc:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


class EdgeBackendDown(Fault):
    """The edge's own servers for a region put in maintenance through HAProxy's runtime API
    (the nodes themselves are fine; the region's traffic goes to the backups)."""

    def __init__(self, region: str):
        super().__init__("edge backend of a region down", region, {"EdgeBackendDown", "EdgeNoServers"},
                         {"region": region})

    def _set(self, c: Cluster, state: str) -> None:
        for n in c.topo.region(self.target).nodes:
            out = c.haproxy_cmd(f"set server portal-{self.target}/{n.name} state {state}")
            if out.strip():
                raise ClusterError(f"haproxy: {out.strip()}")

    def inject(self, c: Cluster) -> None:
        self._set(c, "maint")

    def revert(self, c: Cluster) -> None:
        self._set(c, "ready")


class NodesPaused(Fault):
    """Every portal node of a region SIGSTOPped: the grey failure -- the processes exist, their
    ports accept connections (the kernel's backlog), nothing answers. Revert: SIGCONT."""

    def __init__(self, region: str):
        super().__init__("region's portal nodes paused", region,
                         {"PortalRegionDown", "PortalNodeDown", "EdgeBackendDown", "JourneyFailingFromOneVantage"},
                         {"region": region})

    def _signal(self, c: Cluster, sig: int) -> None:
        for n in c.topo.region(self.target).nodes:
            p = c.sup.live_pid(f"portal-{n.name}")
            if p:
                try:
                    os.kill(p, sig)
                except OSError:
                    pass

    def inject(self, c: Cluster) -> None:
        self._signal(c, signal.SIGSTOP)

    def revert(self, c: Cluster) -> None:
        self._signal(c, signal.SIGCONT)


class RegionPaused(Fault):
    """Every process of a region SIGSTOPped (etcd, Patroni, PostgreSQL, portal nodes): a
    region that hangs instead of dying. Patroni elsewhere sees the leader key expire only if
    the primary's region is the paused one. Revert: SIGCONT to the same process trees (found
    again from the pid files, so a revert after the controller died finds them too)."""

    def __init__(self, region: str):
        super().__init__("region paused", region,
                         {"RegionDown", "PatroniMemberDown", "PortalRegionDown", "EtcdMemberDown",
                          "EdgeBackendDown", "PortalNodeDown", "PostgresExporterCannotConnect"}, {"region": region},
                         {"PatroniNoLeader"})

    def _procs(self, c: Cluster) -> list[int]:
        from .procs import closure, snapshot
        return sorted(closure(snapshot(), c.region_roots(self.target), os.getsid(0)))

    def inject(self, c: Cluster) -> None:
        for p in self._procs(c):
            try:
                os.kill(p, signal.SIGSTOP)
            except OSError:
                pass

    def revert(self, c: Cluster) -> None:
        for p in self._procs(c):
            try:
                os.kill(p, signal.SIGCONT)
            except OSError:
                pass


class RegionPartitioned(Fault):
    """A region cut off from the other regions while every process in it lives: an nftables
    table inside its network namespace drops its traffic with their addresses (netns.py),
    `both` ways, `outbound` only or `inbound` only. The edge, the monitoring and the
    stand-ins (on the bridge's address) still reach it and it them, as users still reach a
    region whose inter-region links broke. Its etcd member is in the minority: if it held
    the primary, Patroni there cannot renew the leader key and demotes it, and the others
    elect the sync standby. Needs a cluster whose regions run in namespaces (CLUSTER_NETNS=1
    at its first `up`). Revert: the table dropped (idempotent; a dead controller's revert
    does the same)."""

    def __init__(self, region: str, direction: str = "both"):
        from .netns import DIRECTIONS
        if direction not in DIRECTIONS:
            raise ClusterError(f"partition direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        super().__init__("region partitioned", region,
                         {"PatroniMemberDown", "EtcdMemberDown", "PortalRegionDown", "PortalNodeDown",
                          "PortalCannotReachDatabase", "ReplicationLagHigh", "EdgeBackendDown",
                          "JourneyFailingFromOneVantage"}, {"region": region},
                         {"PatroniNoLeader", "PostgresNoSyncStandby"})
        self.direction = direction

    def inject(self, c: Cluster) -> None:
        from . import netns
        if not c.topo.netns:
            raise ClusterError("partition-region needs the regions in network namespaces of their own: "
                               "a cluster made with CLUSTER_NETNS=1 at its first `up` (see deploy/README.md)")
        netns.partition(c.topo.netns, self.target, self.direction)
        peers = [r for r in c.topo.names if r != self.target]
        log(f"partition: {self.target} ({c.topo.region(self.target).host}) cut off from {', '.join(peers)} "
            f"({self.direction})")

    def revert(self, c: Cluster) -> None:
        from . import netns
        if c.topo.netns:
            netns.unpartition(c.topo.netns, self.target)

    def describe(self) -> str:
        return f"{self.kind} ({self.target}, {self.direction})"


class ConnectionsExhausted(Fault):
    """PostgreSQL's max_connections exhausted from outside on the primary: `count` sessions
    (default: every free non-reserved slot) of an outside client that only sleep. New
    connections of the portal's pools fail ("too many clients") while the ones they hold keep
    working. Revert: pg_terminate_backend of those sessions (by application_name, so a revert
    after the controller died finds them too)."""

    APP = "continuum-fault-exhaust"

    def __init__(self, target: str = "primary", count: int | None = None, hold_s: int = 600):
        super().__init__("connections exhausted", target, {"DbPoolSaturated", "PostgresConnectionsHigh", "PostgresConnectionSlotsExhausted",
                                                           "JourneyFailingFromEdge", "SLOErrorBudgetBurn"})
        self.count, self.hold_s = count, hold_s
        self.procs: list[subprocess.Popen] = []

    def _conn(self, c: Cluster) -> str:
        return (f"host=127.0.0.1 port={c.topo.haproxy['pg_primary']} user=postgres dbname=continuum "
                f"application_name={self.APP}")

    def _env(self, c: Cluster) -> dict:
        return {"PGPASSWORD": c.secrets["SUPERUSER_PASSWORD"], "PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "5"}

    def free_slots(self, c: Cluster) -> int:
        cp = c.psql(self._conn(c).replace(self.APP, "continuum-fault-probe"),
                    "SELECT current_setting('max_connections')::int - "
                    "current_setting('superuser_reserved_connections')::int - count(*) FROM pg_stat_activity "
                    "WHERE backend_type = 'client backend'", c.secrets["SUPERUSER_PASSWORD"])
        if cp.returncode != 0:
            raise ClusterError(f"connections-exhausted: cannot read the primary's connections: {cp.stderr.strip()}")
        return int(cp.stdout.strip())

    def inject(self, c: Cluster) -> None:
        c.load_secrets()
        # Every free slot but the reserved ones (an operator and the revert still get in).
        n = self.count if self.count is not None else max(0, self.free_slots(c))
        sql = f"SET statement_timeout = '{self.hold_s + 10}s'; SELECT pg_sleep({self.hold_s});"
        # One small shell starts the n clients: n forks of this (large, threaded) controller
        # took ~150 ms each under the load generator, 19 s for 123 sessions.
        # As the application's owner role, not the superuser: PostgreSQL then keeps the
        # reserved slots free however the count races with the portal's pools (the exporter
        # and an operator connect as the superuser: the alert and the revert need them).
        script = 'for i in $(seq "$1"); do "$2" -X -q "$3" -c "$4" </dev/null >/dev/null 2>&1 & done; wait'
        conn = self._conn(c).replace("user=postgres", "user=continuum")
        env = {**self._env(c), "PGPASSWORD": c.secrets["APP_PASSWORD"]}
        self.procs.append(subprocess.Popen(
            ["/bin/sh", "-c", script, "sh", str(n), str(PSQL), conn, sql], env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        log(f"connections-exhausted: {n} outside sessions on the primary")

    def revert(self, c: Cluster) -> None:
        c.load_secrets()
        subprocess.run([str(PSQL), "-X", "-q", self._conn(c).replace(self.APP, "continuum-fault-revert"), "-c",
                        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
                        f"'{self.APP}'"], env=self._env(c), stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=30)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.procs = []


class PoolHeld(Fault):
    """Every connection of one tier's pools held inside every portal node (the nodes' chaos
    hook, POST /api/v1/ops/chaos/pool-hold; [ops] chaos_hooks): that tier's requests find no
    connection and fail or fall back as the tier is designed to, the other tiers' pools are
    untouched. The hold ends by itself after hold_s (a controller that died leaves it for at
    most that long); revert: DELETE on every node."""

    def __init__(self, tier: str, hold_s: int = 600):
        super().__init__("tier's pool held", tier, {"DbPoolSaturated", "TierDegraded"}, {"tier": tier})
        self.hold_s = hold_s

    def _call(self, c: Cluster, method: str, body: dict | None) -> list[dict]:
        token = c.ops_token_file.read_text().strip()
        out, errors = [], []
        for n in c.topo.nodes:
            if not c.sup.alive(f"portal-{n.name}"):
                continue
            url = f"http://{n.host}:{n.port}/api/v1/ops/chaos/pool-hold"
            if method == "DELETE":
                url += f"?tier={self.target}"
            req = urllib.request.Request(url, method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=20) as r:
                    out.append({"node": n.name, **json.loads(r.read())})
            except (urllib.error.URLError, OSError, ValueError) as e:
                errors.append(f"{n.name}: {e}")
        if errors and method == "POST":
            raise ClusterError(f"pool hold refused: {'; '.join(errors)} (is [ops] chaos_hooks on?)")
        return out

    def inject(self, c: Cluster) -> None:
        got = self._call(c, "POST", {"tier": self.target, "seconds": self.hold_s})
        held = sum(g.get("held", 0) for g in got)
        wanted = sum(g.get("wanted", 0) for g in got)
        log(f"fault: {self.target} tier's pools held on {len(got)} nodes ({held} of {wanted} connections)")

    def revert(self, c: Cluster) -> None:
        self._call(c, "DELETE", None)


class JournalDiskFilled(Fault):
    """The audit journal filesystem of every portal node of a region filled by a ballast file
    (<volume>/ballast, beside the journal folder) to `percent` % used, and `full_after_s`
    later (when given) to 100 %: the predictive alert (AuditJournalDiskFilling) has that long
    to page before the disk is full. Full, a node's appends fail (ENOSPC): its PHI responses
    are withheld (503) and it turns not-ready, so the edge sends its region's traffic to its
    other node or region. Needs journal volumes (CLUSTER_JOURNAL_VOLUME_MB at the cluster's
    first `up`: the machine's own disk is never filled). Revert: the ballast removed."""

    BALLAST = "ballast"

    def __init__(self, region: str, percent: float = 95, full_after_s: float | None = None):
        super().__init__("journal disk filled", region,
                         {"AuditJournalDiskFilling", "AuditJournalFailing", "DiskWillFillIn4Hours"},
                         {"region": region})
        self.percent, self.full_after_s = percent, full_after_s
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None

    def _volumes(self, c: Cluster) -> list[Path]:
        vols = [c.volume_dir(n) for n in c.topo.region(self.target).nodes]
        missing = [str(v) for v in vols if not os.path.ismount(v)]
        if missing:
            raise ClusterError(f"fill-disk {self.target}: no journal volume mounted at {', '.join(missing)}: "
                               f"start a new cluster with CLUSTER_JOURNAL_VOLUME_MB=128 (the machine's own "
                               f"disk is never filled)")
        return vols

    @staticmethod
    def fill(vol: Path, percent: float) -> int:
        """Grows (or shrinks) vol's ballast so that the filesystem is `percent` % used;
        returns the bytes still free."""
        ballast = vol / JournalDiskFilled.BALLAST
        st = os.statvfs(vol)
        size, avail = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
        have = ballast.stat().st_size if ballast.exists() else 0
        want = max(0, have + avail - int(size * (100 - percent) / 100))
        fd = os.open(ballast, os.O_CREAT | os.O_WRONLY, 0o600)
        try:
            if want < have:
                os.ftruncate(fd, want)
            else:
                # At 100 % the filesystem's own metadata takes some of the last blocks: step
                # down until what is left fits.
                step = want - have
                while step >= 4096:
                    try:
                        os.posix_fallocate(fd, 0, have + step)
                        have += step
                        break
                    except OSError:
                        step //= 2
                if percent >= 100:   # and the crumbs
                    while True:
                        try:
                            os.posix_fallocate(fd, 0, have + 4096)
                            have += 4096
                        except OSError:
                            break
            os.fsync(fd)
        finally:
            os.close(fd)
        st = os.statvfs(vol)
        return st.f_bavail * st.f_frsize

    def inject(self, c: Cluster) -> None:
        vols = self._volumes(c)
        for v in vols:
            left = self.fill(v, self.percent)
            log(f"fill-disk: {v} at {self.percent:g} % ({left >> 10} KiB free)")
        if self.full_after_s is not None and self.percent < 100:
            t0 = time.monotonic()

            def later() -> None:
                if self._stop.wait(self.full_after_s):
                    return
                for v in vols:
                    left = self.fill(v, 100)
                    log(f"fill-disk: {v} full ({left >> 10} KiB free) {time.monotonic() - t0:.1f}s after "
                        f"{self.percent:g} %")
            self._timer = threading.Thread(target=later, name="fill-disk", daemon=True)
            self._timer.start()

    def revert(self, c: Cluster) -> None:
        self._stop.set()
        if self._timer:
            self._timer.join(30)
        for n in c.topo.region(self.target).nodes:
            ballast = c.volume_dir(n) / self.BALLAST
            if ballast.exists():
                ballast.unlink()
                log(f"fill-disk: {ballast} removed")

    def describe(self) -> str:
        then = f", 100 % after {self.full_after_s:g}s" if self.full_after_s is not None else ""
        return f"{self.kind} ({self.target}: {self.percent:g} %{then})"


class EdgeInstanceKilled(Fault):
    """One HAProxy edge instance SIGKILLed (haproxy.EDGE_INSTANCES). The other one listens on
    the same ports (SO_REUSEPORT): new connections go to it; requests in flight on the dead
    one, and connections waiting in its accept queue, are lost (a client resends those).
    Revert: `up` of the edge (the dead instance starts with the survivor's server state)."""

    def __init__(self, instance: str):
        super().__init__("edge instance killed", instance, {"HAProxyDown"}, {"edge": instance})

    def inject(self, c: Cluster) -> None:
        others = [n for n in c.edge_instances() if n.name != self.target and c.sup.alive(n.name)]
        if not others:
            raise ClusterError(f"kill-edge {self.target}: no other edge instance is up: that would "
                               f"take the whole edge down")
        p = c.sup.live_pid(self.target)
        if p:
            os.kill(p, signal.SIGKILL)
            log(f"kill-edge: SIGKILL {self.target} (pid {p}); {others[0].name} serves alone")

    def revert(self, c: Cluster) -> None:
        c.haproxy_up()


class DatabaseNetwork(Fault):
    """The network between the portal nodes and one region's PostgreSQL degraded, through
    that region's net-proxy (`continuum net-proxy`; Cluster.netproxy_up): `toxics` as its
    admin API takes them -- latency_ms/jitter_ms (every answer of the database held that
    long: a slow database as the portal sees it), rate_kb_s, hold (+ close_after_ms: a
    black hole), reset, down. Patroni, HAProxy and replication are not on this path, so
    the database itself stays healthy and no failover follows. Revert: the toxics off (a
    DELETE, idempotent; a dead controller's revert does the same)."""

    KEYS = ("latency_ms", "jitter_ms", "rate_kb_s", "hold", "close_after_ms", "reset", "down")

    def __init__(self, region: str, toxics: dict):
        kind = ("database slowed (network latency)" if toxics.get("latency_ms") else
                "database unreachable (network)" if toxics.get("hold") or toxics.get("down") or toxics.get("reset")
                else "database network degraded")
        super().__init__(kind, region, {"QueryLatencyTrendingUp", "DbPoolSaturated", "SLOErrorBudgetBurn",
                                        "JourneyFailingFromEdge", "JourneyFailingFromMultipleVantages",
                                        "PortalNodeNotReady", "PortalRegionDown", "PortalCannotReachDatabase"})
        unknown = set(toxics) - set(self.KEYS)
        if unknown:
            raise ClusterError(f"database network fault: unknown toxic(s) {sorted(unknown)}")
        self.toxics = dict(toxics)

    def _admin(self, c: Cluster, method: str, body: dict | None = None) -> dict:
        r = c.topo.region(self.target)
        req = urllib.request.Request(f"http://{r.host}:{r.pg_proxy_admin}/proxies/{self.target}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise ClusterError(f"net-proxy {self.target}: {method} refused ({e.code}): "
                               f"{e.read().decode(errors='replace')[:300]}") from None

    def inject(self, c: Cluster) -> None:
        out = self._admin(c, "PUT", self.toxics)
        log(f"net-proxy {self.target}: toxics {json.dumps(out.get('toxics', {}), sort_keys=True)} "
            f"({out.get('connections_open')} connections open)")

    def revert(self, c: Cluster) -> None:
        if not c.sup.alive(f"netproxy-{self.target}"):
            return   # gone with its region: it comes back without toxics
        self._admin(c, "DELETE")

    def describe(self) -> str:
        return f"{self.kind} ({self.target}: {json.dumps(self.toxics, sort_keys=True)})"


def primary_region(c: Cluster) -> str:
    st = c.status()
    if not st["primary"]:
        raise ClusterError("no primary: the cluster is not healthy")
    return st["primary"]


# Slow-burn error-budget alerts (deploy/prometheus/rules/slo.yml): by design they stay for
# 30 minutes to hours after any incident (their long window remembers it), so they do not
# make a cluster "not quiet" between two faults; every other alert does.
SLOW_BURN_WINDOWS = ("6h/30m", "1d/2h", "3d/6h")


# Alerts about the machine or an earlier incident rather than the present: a disk that is
# 70 % full (on this shared machine it is, and stays so), a certificate's age, webhook
# deliveries that failed while a region was dead (5 minutes of memory).
STANDING = {"DiskUsageHigh", "DiskWillFillIn4Days", "CertificateExpiresIn30Days", "AlertmanagerNotificationsFailing"}


def lingering(alert: dict) -> bool:
    labels = alert.get("labels") or {}
    return labels.get("window") in SLOW_BURN_WINDOWS or (alert.get("alertname") or labels.get("alertname")) in STANDING


def wait_quiet(c: Cluster, alerts_firing, timeout: float = 600) -> None:
    """Until the cluster is healthy and no alert fires (standing and slow-burn tickets aside)."""
    t0 = time.monotonic()

    def quiet() -> bool:
        firing = [a for a in alerts_firing() if not lingering(a)]
        return not firing and c.status()["healthy"]
    try:
        wait_for(timeout, "a healthy cluster with no alert firing", quiet, interval=2)
    except ClusterError:
        log(f"still firing after {time.monotonic() - t0:.0f}s: "
            f"{sorted(a['alertname'] for a in alerts_firing() if not lingering(a))}")
        raise
