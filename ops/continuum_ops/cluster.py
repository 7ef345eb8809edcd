"""The local multi-region cluster: bring it up, take it down, report, break and mend regions.

Per region of deploy/regions.conf: one etcd 3.4 member, one Patroni 3.0.2 node (PostgreSQL
15, run as `postgres`) and its portal nodes (`continuum serve`); one HAProxy 2.6 as the
HTTP(S) edge and PostgreSQL router; `continuum stub-deps` for the external services.
Everything lives under one state folder (configs, pids/, logs/, secrets), except
PostgreSQL's folders when the postgres user cannot reach the state folder (see pgroot.py).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

from . import haproxy, monitoring, netns, patroni, pgroot, portal
from .procs import Supervisor, closure, cmdline, descendants, live, snapshot
from .topology import (MAX_OFFSET, SLOTS, Node, Topology, ephemeral_range, listening_ports, max_offset, port_problems,
                       reserved_ports)
from .util import ClusterError, all_ok, binary_knows, http_get, http_json, log, render, render_text, wait_for, write_atomic

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
PSQL = PG_BIN / "psql"
ETCD, ETCDCTL = Path("/usr/bin/etcd"), Path("/usr/bin/etcdctl")
ETCD_NICE = -5
PATRONI, PATRONICTL = Path("/usr/bin/patroni"), Path("/usr/bin/patronictl")
HAPROXY, OPENSSL = Path("/usr/sbin/haproxy"), Path("/usr/bin/openssl")
PG_USER = pgroot.PG_USER


def env_int(name: str, default: int) -> int:
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


RELEASE_FILE = "release.json"


def read_release(state: Path) -> dict:
    """<state>/release.json: {"slot": "a"|"b", "binary": path|null, "overlay": path|null,
    "version": ...}; the defaults when absent."""
    out = {"slot": "a", "binary": None, "overlay": None, "version": None}
    f = Path(state) / RELEASE_FILE
    if not f.exists():
        return out
    try:
        d = json.loads(f.read_text())
    except (OSError, ValueError) as e:
        raise ClusterError(f"{f} is unreadable ({e}); it names the live release") from None
    if not isinstance(d, dict) or d.get("slot") not in SLOTS:
        raise ClusterError(f"{f}: slot must be one of {', '.join(SLOTS)}")
    out.update({k: d.get(k) for k in out})
    return out


def write_release(state: Path, release: dict) -> None:
    write_atomic(Path(state) / RELEASE_FILE, json.dumps(release, indent=1, sort_keys=True) + "\n", 0o600,
                 durable=True)


class Cluster:
    def __init__(self, state: Path, offset: int | None = None):
        self.state = Path(os.path.realpath(state))
        self.env_file = self.state / "cluster.env"
        recorded = self._read_env()
        rec_off = recorded.get("PORT_OFFSET")
        if rec_off is not None and offset is not None and int(rec_off) != offset:
            raise ClusterError(f"{self.state} was created with port offset {rec_off}, not {offset} "
                               f"(remove the folder to change it)")
        self.offset = int(rec_off) if rec_off is not None else (offset or 0)
        self.recorded_pg_root = recorded.get("PG_ROOT")
        # Regions in network namespaces of their own (netns.py): chosen at the first `up`
        # (CLUSTER_NETNS=1), then recorded in cluster.env; a cluster never changes mode.
        if recorded.get("NETNS") is not None:
            self.netns_index = int(recorded["NETNS"]) or None
        elif os.environ.get("CLUSTER_NETNS", "0") == "1" and "PORT_OFFSET" not in recorded:
            self.netns_index = netns.choose_index()
        else:
            self.netns_index = None
        # The live release (`continuum rollout` writes it when a new release reaches 100%):
        # its slot (which node ports serve), its binary and its config overlay. Without the
        # file: slot a, CONTINUUM_BIN (default build/continuum), no overlay.
        self.release = read_release(self.state)
        self.topo = Topology((DEPLOY / "regions.conf").read_text(), self.offset,
                             env_int("STUB_BASE_PORT", 9100), slot=self.release["slot"], netns=self.netns_index)
        self.bin = Path(self.release.get("binary") or os.environ.get("CONTINUUM_BIN")
                        or REPO / "build" / "continuum")
        self.patients = env_int("CLUSTER_PATIENTS", 10000)
        self.with_deps = os.environ.get("CLUSTER_NO_DEPS", "0") != "1"
        self.with_monitoring = os.environ.get("CLUSTER_NO_MONITORING", "0") != "1"
        self.up_timeout = env_int("UP_TIMEOUT", 120)
        self.node_timeout = env_int("NODE_TIMEOUT", 60)
        self.pg_root = Path(self.recorded_pg_root) if self.recorded_pg_root else self.state / "patroni"
        self.sup = Supervisor(self.state, [self.state, self.pg_root], log)
        self.tls_pem = Path(os.environ["CLUSTER_TLS_PEM"]) if os.environ.get("CLUSTER_TLS_PEM") \
            else self.state / "haproxy" / "edge.pem"
        self.secrets: dict[str, str] = {}

    # ---- state folder ------------------------------------------------------------------

    def _read_env(self) -> dict[str, str]:
        out = {}
        try:
            for line in self.env_file.read_text().splitlines():
                k, sep, v = line.partition("=")
                if sep:
                    out[k.strip()] = v.strip()
        except OSError:
            pass
        return out

    def _write_env(self) -> None:
        write_atomic(self.env_file, f"PORT_OFFSET={self.offset}\nPG_ROOT={self.pg_root}\n"
                                    f"NETNS={self.netns_index or 0}\n")

    def load_secrets(self) -> None:
        f = self.state / "secrets.env"
        # APP_PASSWORD: the owner role `continuum` (migrate, seed); PORTAL_PASSWORD: the
        # portal nodes' role continuum_portal (added to an older state folder on first use).
        names = ("SUPERUSER_PASSWORD", "REPLICATION_PASSWORD", "REWIND_PASSWORD", "APP_PASSWORD",
                 "PORTAL_PASSWORD")
        have = {}
        if f.exists():
            for line in f.read_text().splitlines():
                k, _, v = line.partition("=")
                have[k] = v
        if not f.exists() or any(n not in have for n in names):
            for n in names:
                have.setdefault(n, secrets.token_hex(16))
            write_atomic(f, "".join(f"{k}={v}\n" for k, v in have.items()), 0o600)
        self.secrets.update(have)

    def make_key(self) -> None:
        """The portal nodes' shared token signing key, and the ops token (Alertmanager's
        webhook, the prober's reports, Prometheus' scrapes of the nodes' /metrics): 64 hex
        chars + newline each, 0600 (Prometheus runs as the launcher's user), made once."""
        for k in (self.state / "cluster.key", self.ops_token_file):
            if not (k.exists() and k.stat().st_size > 0):
                write_atomic(k, secrets.token_hex(32) + "\n", 0o600)

    @property
    def stub_tls_dir(self) -> Path:
        return self.state / "stubdeps-tls"

    @property
    def ops_token_file(self) -> Path:
        return self.state / "ops.token"

    def make_cert(self) -> None:
        if os.environ.get("CLUSTER_TLS_PEM"):
            if not os.access(self.tls_pem, os.R_OK):
                raise ClusterError(f"CLUSTER_TLS_PEM={self.tls_pem} is not readable")
            return
        if self.tls_pem.exists() and self.tls_pem.stat().st_size > 0:
            return
        d = self.tls_pem.parent
        log(f"making a self-signed demo certificate for the edge: {self.tls_pem}")
        old = os.umask(0o077)
        try:
            cp = subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                 "-nodes", "-days", "365", "-subj", "/CN=localhost/O=Continuum demo",
                                 "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                                 "-keyout", d / "edge.key.tmp", "-out", d / "edge.crt.tmp"],
                                capture_output=True, timeout=60)
            if cp.returncode != 0:
                raise ClusterError("openssl could not make a certificate: " + cp.stderr.decode()[-300:])
            write_atomic(self.tls_pem, (d / "edge.crt.tmp").read_text() + (d / "edge.key.tmp").read_text(), 0o600)
        finally:
            os.umask(old)
            for f in ("edge.key.tmp", "edge.crt.tmp"):
                (d / f).unlink(missing_ok=True)

    def check_ports(self) -> None:
        eph = ephemeral_range()
        problems = port_problems(self.topo.ports(), eph, reserved_ports())
        if problems:
            at_zero = Topology((DEPLOY / "regions.conf").read_text(), 0, env_int("STUB_BASE_PORT", 9100)).ports()
            raise ClusterError(problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
                               + f"; with this deploy/regions.conf the port offset may be at most "
                                 f"{min(MAX_OFFSET, max_offset(at_zero, eph))}")

    def need_ports(self, what: str, ports: list[int], region: str | None = None) -> None:
        """`region`: ports of that region's processes; in a namespace of the cluster's own
        nothing else can hold them (and /proc/net shows the root namespace's only)."""
        if region is not None and self.topo.netns:
            return
        busy = listening_ports()
        for p in ports:
            if p in busy:
                raise ClusterError(f"port {p} (for {what}) is already in use by a listening process "
                                   f"(another --state? --port-offset? ss -ltnp 'sport = :{p}')")

    def preflight(self) -> None:
        if os.geteuid() != 0:
            raise ClusterError(f"run as root (Patroni is started as {PG_USER} via setpriv)")
        for b in (ETCD, ETCDCTL, PATRONI, PATRONICTL, HAPROXY, OPENSSL, PG_BIN / "postgres"):
            if not os.access(b, os.X_OK):
                raise ClusterError(f"missing {b} (run scripts/setup; see deploy/README.md for packages)")
        if not os.access(self.bin, os.X_OK):
            raise ClusterError(f"missing {self.bin} (scripts/build continuum, or set CONTINUUM_BIN)")
        self.check_ports()
        for d in (self.state, self.sup.pids, self.sup.logs):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state, 0o755)   # our own folder; the secrets in it are 0600
        root, why = pgroot.choose(self.state, self.recorded_pg_root, pgroot.reachable_by_postgres)
        if root != self.state / "patroni":
            blocker = pgroot.first_blocking_folder(self.state)
            if not self.recorded_pg_root:
                log(f"PostgreSQL folders go to {root}: {why}"
                    + (f" ({blocker} is not open to it)" if blocker else ""))
            try:
                pgroot.prepare_external(root, self.state)
            except OSError as e:
                raise ClusterError(f"the postgres user cannot reach {self.state} and {root} cannot be made "
                                   f"({e}); use --state with a folder every user may pass through "
                                   f"(e.g. under /var/tmp)") from None
        else:
            root.mkdir(exist_ok=True)
            os.chmod(root, 0o755)   # whatever the umask: postgres passes through to its region's folder
        if not pgroot.reachable_by_postgres(root):
            raise ClusterError(f"the {PG_USER} user cannot reach {root} (blocked at "
                               f"{pgroot.first_blocking_folder(root)}); choose a --state it can reach")
        self.pg_root = root
        self.sup = Supervisor(self.state, [self.state, self.pg_root], log)
        self._write_env()
        if self.topo.netns:
            netns.setup(self.topo.netns)
        self.load_secrets()
        self.make_key()

    # ---- etcd --------------------------------------------------------------------------

    def etcd_endpoints(self) -> str:
        return ",".join(f"http://{r.host}:{r.etcd_client}" for r in self.topo.regions)

    def etcd_up(self, names: list[str]) -> None:
        initial = ",".join(f"{r.name}=http://{r.host}:{r.etcd_peer}" for r in self.topo.regions)
        for name in names:
            r = self.topo.region(name)
            d = self.state / "etcd" / name
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o700)
            render(DEPLOY / "etcd" / "etcd.conf.yml.tmpl", d / "etcd.conf.yml", {
                "REGION": name, "HOST": r.host, "ETCD_DATA_DIR": d / "data", "ETCD_CLIENT_PORT": r.etcd_client,
                "ETCD_PEER_PORT": r.etcd_peer, "ETCD_INITIAL_CLUSTER": initial})
            if self.sup.alive(f"etcd-{name}"):
                continue
            self.need_ports(f"etcd {name}", [r.etcd_client, r.etcd_peer], name)
            log(f"starting etcd {name} (client {r.etcd_client}, peer {r.etcd_peer})")
            # etcd's heartbeats must not wait behind the portal's and PostgreSQL's work on
            # a shared machine (a late heartbeat is an election): a higher CPU priority, as
            # a dedicated etcd host would have.
            self.sup.start(f"etcd-{name}", [*self.topo.enter(name), ETCD, "--config-file", d / "etcd.conf.yml"], cwd=d,
                           nice=ETCD_NICE if os.geteuid() == 0 else 0)

    def etcd_quorum(self) -> bool:
        try:
            cp = subprocess.run([ETCDCTL, f"--endpoints={self.etcd_endpoints()}", "--dial-timeout=1s",
                                 "--command-timeout=2s", "endpoint", "health"],
                                env={**os.environ, "ETCDCTL_API": "3"}, capture_output=True, timeout=15)
        except subprocess.TimeoutExpired:
            return False
        return cp.returncode == 0

    def etcd_member_healthy(self, name: str) -> bool:
        r = self.topo.region(name)
        j = http_json(f"http://{r.host}:{r.etcd_client}/health")
        return bool(j) and j.get("health") == "true"

    # ---- Patroni -----------------------------------------------------------------------

    def patroni_dir(self, name: str) -> Path:
        return self.pg_root / name

    def patroni_cfg(self, name: str) -> Path:
        return self.patroni_dir(name) / "patroni.yml"

    def patroni_up(self, names: list[str]) -> None:
        uid, gid = pgroot.pg_ids()
        etcd_hosts = ",".join(f"{r.host}:{r.etcd_client}" for r in self.topo.regions)
        for name in names:
            r = self.topo.region(name)
            d = self.patroni_dir(name)
            (d / "pglog").mkdir(parents=True, exist_ok=True)
            for p in (d, d / "pglog"):
                os.chown(p, uid, gid)
            os.chmod(d, 0o700)
            render(DEPLOY / "patroni" / "patroni.yml.tmpl", self.patroni_cfg(name), {
                "REGION": name, "HOST": r.host, "CLIENT_NET": self.topo.client_net,
                "REST_PORT": r.rest, "PG_PORT": r.pg, "NODE_DIR": d, "PG_BIN": PG_BIN,
                "ETCD_HOSTS": etcd_hosts, "SUPERUSER_PASSWORD": self.secrets["SUPERUSER_PASSWORD"],
                "REPLICATION_PASSWORD": self.secrets["REPLICATION_PASSWORD"],
                "REWIND_PASSWORD": self.secrets["REWIND_PASSWORD"]}, mode=0o600)
            os.chown(self.patroni_cfg(name), uid, gid)
            if self.sup.alive(f"patroni-{name}"):
                continue
            if self.postmaster_pid(name) is None:
                self.need_ports(f"patroni {name}", [r.rest, r.pg], name)
            else:
                self.need_ports(f"Patroni REST {name}", [r.rest], name)
            log(f"starting patroni {name} (REST {r.rest}, postgres {r.pg})")
            # setpriv execs (unlike runuser, which forks), so the PID is Patroni's own; the
            # working directory is the node's own folder (postgres must be able to enter it).
            self.sup.start(f"patroni-{name}", [
                *self.topo.enter(name), "setpriv", f"--reuid={PG_USER}", f"--regid={PG_USER}", "--init-groups", "--",
                PATRONI, self.patroni_cfg(name)], cwd=d,
                env={"PATH": "/usr/bin:/bin", "HOME": "/var/lib/postgresql", "LANG": "C.UTF-8",
                     "LC_ALL": "C.UTF-8"})

    def postmaster_pid(self, name: str) -> int | None:
        data = self.patroni_dir(name) / "data"
        try:
            pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if live(pid) and str(data) in cmdline(pid) else None

    def cluster_json(self) -> dict | None:
        for r in self.topo.regions:
            j = http_json(f"http://{r.host}:{r.rest}/cluster")
            if j is not None:
                return j
        return None

    def patroni_alive_or_die(self, names: list[str]) -> None:
        """A Patroni that exited while we wait is a failure now, with its last log lines."""
        for n in names:
            # Only "has the process exited": its command line can read empty for a moment
            # while it execs (setpriv -> patroni), which `alive` would take for "not ours".
            pid = self.sup.pid(f"patroni-{n}")
            if pid is None or not live(pid):
                raise ClusterError(f"patroni {n} exited; last lines of {self.sup.logs}/patroni-{n}.log:\n"
                                   + self.sup.log_tail(f"patroni-{n}.log"))

    def psql(self, conninfo: str, sql: str, password: str | None = None, timeout: float = 10,
             stdin: str | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "PGCONNECT_TIMEOUT": "3"}
        if password:
            env["PGPASSWORD"] = password
        args = [PSQL, "-X", "-qAt", "-F:", "-v", "ON_ERROR_STOP=1", conninfo]
        if sql:
            args += ["-c", sql]
        try:
            return subprocess.run(args, input=stdin, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:   # a slow server is a failed attempt, retried by the caller
            return subprocess.CompletedProcess(args, 124, "", f"psql timed out after {timeout:.0f}s")

    def leader_addr(self) -> tuple[str, int] | None:
        """(host, port) of the leader's PostgreSQL, as Patroni publishes it."""
        m = patroni.leader(self.cluster_json())
        return (str(m.get("host") or "127.0.0.1"), int(m["port"])) if m else None

    def replication(self) -> dict[str, dict]:
        """application_name -> {state, sync_state}, as the primary sees it."""
        addr = self.leader_addr()
        if addr is None:
            return {}
        try:
            cp = self.psql(f"host={addr[0]} port={addr[1]} user=postgres dbname=postgres",
                           "select application_name, state, sync_state from pg_stat_replication",
                           self.secrets.get("SUPERUSER_PASSWORD"), timeout=5)
        except subprocess.TimeoutExpired:
            return {}
        out = {}
        for line in cp.stdout.splitlines() if cp.returncode == 0 else []:
            f = (line.split(":") + ["", ""])[:3]
            out[f[0]] = {"state": f[1], "sync_state": f[2]}
        return out

    # ---- a replica the primary can no longer feed -----------------------------------------
    # PostgreSQL 15's pg_rewind makes the old primary's pg_wal look like the source's: WAL
    # files the source no longer has are deleted, also those the rewound server needs to
    # replay from its last checkpoint before the divergence. Seen
    # on a chaos day (2026-12-04): the old primary's last completed checkpoint was ~560 MB
    # of WAL before the new primary's promotion (a spread checkpoint was in flight when its
    # region was killed), the new primary kept 256 MB (wal_keep_size), and the restarted
    # member asked for the missing segment every 5 s forever ("requested WAL segment ...
    # has already been removed"): its region never came back. Streaming cannot resume; the
    # member is re-created from the leader (`patronictl reinit`, a base backup).
    WAL_GONE = "has already been removed"

    def pg_log_mark(self, name: str) -> dict[str, int]:
        """The sizes of the member's PostgreSQL logs now: what is written after is new."""
        d = self.patroni_dir(name) / "pglog"
        return {p.name: p.stat().st_size for p in d.glob("postgresql-*.log")} if d.is_dir() else {}

    def wal_gone_since(self, name: str, mark: dict[str, int]) -> bool:
        d = self.patroni_dir(name) / "pglog"
        if not d.is_dir():
            return False
        for p in d.glob("postgresql-*.log"):
            start = mark.get(p.name, 0)
            try:
                with open(p, "rb") as f:
                    if p.stat().st_size < start:   # truncated (a week's rotation)
                        start = 0
                    f.seek(start)
                    text = f.read(8 << 20).decode(errors="replace")
            except OSError:
                continue
            # the standby's side ("could not receive data from WAL stream: ERROR: requested
            # WAL segment ... has already been removed"); the primary's log has the same
            # ERROR from its walsender
            if any("could not receive data from WAL stream" in ln and self.WAL_GONE in ln
                   for ln in text.splitlines()):
                return True
        return False

    def reinit_member(self, name: str) -> bool:
        """patronictl reinit; True when Patroni took it (3.0.2 prints "Failed: ..." and exits
        0 when it refuses, e.g. while the member is still starting)."""
        log(f"{name}: the primary no longer has the WAL this member needs to catch up (pg_rewind "
            f"removed the member's own copy): re-creating it from the leader (patronictl reinit)")
        try:
            cp = subprocess.run([PATRONICTL, "-c", self.patroni_cfg(name), "reinit", "--force", "continuum",
                                 name], capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            log(f"{name}: patronictl reinit timed out; tried again on the next check")
            return False
        if cp.returncode != 0 or "Success" not in cp.stdout:
            log(f"{name}: patronictl reinit refused ({(cp.stdout + cp.stderr).strip()[-300:]}); "
                f"tried again on the next check")
            return False
        return True

    def repair_starved(self, names: list[str], marks: dict[str, dict[str, int]], done: set[str]) -> None:
        """Re-creates (once per wait, retried until Patroni takes it) each member whose log
        shows, since its mark, that the primary cannot feed it any more."""
        leader = (patroni.leader(self.cluster_json()) or {}).get("name")
        for name in names:
            if name != leader and name not in done and self.wal_gone_since(name, marks.get(name, {})):
                if self.reinit_member(name):
                    done.add(name)

    def region_serving(self, name: str) -> bool:
        streaming = {k for k, v in self.replication().items() if v["state"] == "streaming"}
        return patroni.serving(self.cluster_json(), name, streaming)

    def create_database(self) -> bool:
        addr = self.leader_addr()
        if addr is None:
            return False
        pw = self.secrets["APP_PASSWORD"]
        ppw = self.secrets["PORTAL_PASSWORD"]
        # Two roles (src/audit/README.md): `continuum` owns the database (migrations);
        # continuum_portal gets only the grants of db/migrations/0013_roles.sql.
        sql = (f"SELECT format('CREATE ROLE continuum LOGIN PASSWORD %L', '{pw}')\n"
               " WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'continuum') \\gexec\n"
               f"SELECT format('CREATE ROLE continuum_portal LOGIN PASSWORD %L', '{ppw}')\n"
               " WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'continuum_portal') \\gexec\n"
               f"SELECT format('ALTER ROLE continuum_portal LOGIN PASSWORD %L', '{ppw}') \\gexec\n"
               "SELECT 'CREATE DATABASE continuum OWNER continuum'\n"
               " WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'continuum') \\gexec\n")
        conn = f"host={addr[0]} port={addr[1]} user=postgres dbname=postgres"
        cp = self.psql(conn, "", self.secrets["SUPERUSER_PASSWORD"], stdin=sql)
        if cp.returncode != 0:
            return False
        # Every member must have it (a standby replays CREATE DATABASE a moment later): the
        # multi-host URL of `migrate` and the nodes' region URLs may land on any of them, and
        # libpq does not try the next host after "database does not exist".
        for r in self.topo.regions:
            check = self.psql(f"host={r.host} port={r.pg} user=postgres dbname=postgres",
                              "SELECT count(*) FROM pg_database WHERE datname = 'continuum'",
                              self.secrets["SUPERUSER_PASSWORD"])
            if check.returncode != 0 or check.stdout.strip() != "1":
                return False
        return True

    def primary_url(self, me: str | None = None) -> str:
        """The owner role's write URL (migrate, seed, synthetic-accounts)."""
        return portal.primary_url(self.topo, me or self.topo.names[0], self.secrets["APP_PASSWORD"])

    def portal_primary_url(self, me: str) -> str:
        """The portal role's write URL (`continuum serve`)."""
        return portal.primary_url(self.topo, me, self.secrets["PORTAL_PASSWORD"], portal.PORTAL_ROLE, via_proxy=True)

    def run_bin(self, args: list[str], logname: str, what: str, timeout: float = 900) -> None:
        with open(self.sup.logs / logname, "ab") as f:
            cp = subprocess.run([str(self.bin), *args], stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, timeout=timeout)
        if cp.returncode != 0:
            raise ClusterError(f"{what} failed; last lines of {self.sup.logs / logname}:\n"
                               + self.sup.log_tail(logname, 20))

    def migrate_and_seed(self) -> None:
        url = self.primary_url()
        log(f"migrating ({self.bin} migrate)")
        self.run_bin(["migrate", "--database-url", url], "migrate.log", "continuum migrate")
        cp = self.psql(url, "SELECT CASE WHEN to_regclass('patient') IS NULL THEN 0 "
                            "ELSE (SELECT count(*) FROM patient) END")
        if cp.returncode != 0:
            raise ClusterError(f"cannot count patients: {cp.stderr.strip()[-300:]}")
        n = int(cp.stdout.strip() or 0)
        if n == 0:
            log(f"seeding {self.patients} patients, 20 facilities")
            self.run_bin(["seed", "--database-url", url, "--patients", str(self.patients), "--facilities", "20"],
                         "seed.log", "continuum seed")
        else:
            log(f"database already has {n} patients: not seeding")
            # Idempotent upkeep of a running demo: the article library as shipped, and
            # bookable slots for the next four weeks (slots open day by day).
            try:
                self.run_bin(["content", "load", "--database-url", url], "seed.log", "continuum content load")
            except ClusterError as e:
                log(f"warning: {e}")
            if self.psql(url, "SELECT continuum_open_slots(28)").returncode != 0:
                log("warning: could not open new appointment slots")

    # ---- stand-ins and portal nodes -----------------------------------------------------

    def stubdeps_up(self) -> None:
        if not self.with_deps or self.sup.alive("stubdeps"):
            return
        self.need_ports("stub-deps", self.topo.stub_ports())
        d = self.state / "stubdeps"
        d.mkdir(exist_ok=True)
        ehr = portal.ehr_patients(self.patients)
        # The cluster's own test CA (kept with the state; the portal configs trust it).
        tls = self.stub_tls_dir
        san = "IP:127.0.0.1,DNS:localhost" + (f",IP:{self.topo.service_host}" if self.topo.netns else "")
        cp = subprocess.run([REPO / "scripts" / "test-ca", tls, san], capture_output=True, timeout=60)
        if cp.returncode != 0:
            raise ClusterError("scripts/test-ca failed: " + cp.stderr.decode()[-300:])
        args = [self.bin, "stub-deps", "--listen", self.topo.service_host, "--base-port", str(self.topo.stub_base),
                "--data-dir", d,
                "--tls-cert", tls / "server.pem", "--tls-key", tls / "server.key"]
        if ehr:
            args += ["--ehr-patients", str(ehr), "--ehr-facilities", "20"]
        log(f"starting stub-deps (admin {self.topo.service_host}:{self.topo.stub_base}; "
            f"faults: PUT /admin/faults/{{dependency}})")
        self.sup.start("stubdeps", args, cwd=d)

    def netproxy_up(self, names: list[str]) -> None:
        """Each region's net-proxy (`continuum net-proxy`): the portal nodes' path to that
        region's PostgreSQL, where the chaos experiments slow or break the network. It
        belongs to its region (a region's kill takes it along)."""
        for name in names:
            if self.sup.alive(f"netproxy-{name}"):
                continue
            r = self.topo.region(name)
            self.need_ports(f"net-proxy {name}", [r.pg_proxy, r.pg_proxy_admin], name)
            d = self.state / "netproxy"
            d.mkdir(exist_ok=True)
            log(f"starting net-proxy {name} ({r.host}:{r.pg_proxy} -> postgres {r.host}:{r.pg}; "
                f"admin http://{r.host}:{r.pg_proxy_admin}/proxies)")
            self.sup.start(f"netproxy-{name}", [*self.topo.enter(name), self.bin, "net-proxy", "--admin-host", r.host,
                                                "--admin-port", str(r.pg_proxy_admin),
                                                # (the state path in its command line is how
                                                # the supervisor knows the process as ours)
                                                "--status-file", d / f"{name}.json", "--proxy",
                                                f"{name},{r.host}:{r.pg_proxy},{r.host}:{r.pg}"], cwd=d)
        urls = [f"http://{self.topo.region(n).host}:{self.topo.region(n).pg_proxy_admin}/healthz" for n in names]
        wait_for(10, "net-proxy admin APIs", lambda: all(all_ok(urls)))

    def with_topology(self, binary: Path | None = None) -> bool:
        v = os.environ.get("CLUSTER_NO_TOPOLOGY", "")
        if v in ("0", "1"):
            return v == "0"
        return binary_knows(Path(binary or self.bin), b"max_replica_lag_ms")

    def prometheus_line(self, binary: Path) -> str:
        """[ops] prometheus_url: the dashboard's charts come from the cluster's Prometheus
        through the node (a build from before the key existed would refuse it)."""
        if not self.with_monitoring:
            return "# prometheus_url: none (the cluster runs without monitoring)"
        if not binary_knows(Path(binary), b"prometheus_url"):
            return "# prometheus_url: not known to this release's binary"
        return f'prometheus_url = "{self.prometheus_url}"'

    @property
    def prometheus_url(self) -> str:
        """Prometheus listens where the regions reach it (topology.service_host)."""
        return f"http://{self.topo.service_host}:{self.topo.monitoring['prometheus']}"

    def portal_up(self, names: list[str]) -> None:
        if not self.with_topology(self.bin):
            log("portal configs without [topology] (CLUSTER_NO_TOPOLOGY)")
        for name in names:
            for n in self.topo.region(name).nodes:
                self.start_node(n, self.bin, self.release.get("overlay"))

    def node_config(self, n: Node, binary: Path, overlay: str | None) -> Path:
        """Renders node n's continuum.toml (deploy/portal/continuum.toml.tmpl; then the
        release's config overlay, a TOML file appended as it is: a rollout's way to give the
        new release settings of its own, e.g. [fault_injection] in the tests)."""
        if not self.secrets:
            self.load_secrets()
        pw = self.secrets["PORTAL_PASSWORD"]
        deps = portal.dependencies_block(self.topo, self.patients, self.with_deps,
                                         str(self.stub_tls_dir / "ca.pem"))
        topo = portal.topology_block(self.topo, n.region, pw) + "\n" if self.with_topology(binary) else ""
        d = self.state / "portal" / n.name
        d.mkdir(parents=True, exist_ok=True)
        self.ensure_volume(n)
        self.audit_dir(n).mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)
        values = {"LISTEN_ADDRESS": n.host, "TRUSTED_PROXY": self.topo.service_host,
                  "PORTAL_PORT": n.port, "REGION": n.region, "NODE": n.name,
                  "WRITE_URL": self.portal_primary_url(n.region), "TOPOLOGY": topo, "DEPENDENCIES": deps,
                  "KEY_FILE": self.state / "cluster.key", "OPS_TOKEN_FILE": self.ops_token_file,
                  "AUDIT_DIR": self.audit_dir(n), "PUBLIC_BASE_URL": portal.public_base_url(self.topo),
                  "OPS_PROMETHEUS": self.prometheus_line(binary),
                  # this cluster practises chaos days: the hooks inside the nodes (behind the
                  # ops token) are on, unless the release's binary predates them
                  "OPS_CHAOS_HOOKS": ("chaos_hooks = true" if binary_knows(binary, b"chaos_hooks")
                                      else "# chaos_hooks: not known to this release's binary")}
        text = render_text((DEPLOY / "portal" / "continuum.toml.tmpl").read_text(), values)
        if overlay:
            try:
                extra = Path(overlay).read_text()
            except OSError as e:
                raise ClusterError(f"config overlay {overlay}: {e}") from None
            text += f"\n# ---- release config overlay {overlay}\n" + extra
        write_atomic(d / "continuum.toml", text, 0o600)
        return d / "continuum.toml"

    # ---- audit journal volumes ------------------------------------------------------------
    # Opt-in (CLUSTER_JOURNAL_VOLUME_MB=N at the first `up`; root, mkfs.ext4 and mount): each
    # portal node's audit journal on a small ext4 filesystem of its own, a loop-mounted image
    # (<state>/volumes/<node>.img, no blocks reserved for root), as a real node would have a
    # journal volume. The chaos fault fill-disk needs it. Once an image exists the node keeps
    # it (a later `up` mounts it again); `down` unmounts, `destroy` removes the images.

    def journal_volume_mb(self) -> int:
        v = os.environ.get("CLUSTER_JOURNAL_VOLUME_MB", "").strip() or "0"
        if not v.isdigit() or (v != "0" and int(v) < 16):
            raise ClusterError(f"CLUSTER_JOURNAL_VOLUME_MB={v!r}: a size in MiB, at least 16 (0: none)")
        return int(v)

    def volume_image(self, n: Node) -> Path:
        return self.state / "volumes" / f"{n.name}.img"

    def volume_dir(self, n: Node) -> Path:
        return self.state / "portal" / n.name / "volume"

    def audit_dir(self, n: Node) -> Path:
        if self.volume_image(n).exists():
            return self.volume_dir(n) / "audit"
        return self.state / "portal" / n.name / "audit"

    def audit_dirs(self) -> list[Path]:
        """Every portal node's audit journal folder that exists (both release slots)."""
        return [d for d in (self.audit_dir(n) for n in self.topo.nodes + self.topo.other_nodes) if d.is_dir()]

    def ensure_volume(self, n: Node) -> None:
        img, mnt = self.volume_image(n), self.volume_dir(n)
        if not img.exists():
            mb = self.journal_volume_mb()
            if mb == 0:
                return
            if os.geteuid() != 0 or not shutil.which("mkfs.ext4"):
                raise ClusterError("CLUSTER_JOURNAL_VOLUME_MB needs root and mkfs.ext4 (e2fsprogs)")
            img.parent.mkdir(parents=True, exist_ok=True)
            tmp = img.with_suffix(".tmp")
            fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
            try:
                os.posix_fallocate(fd, 0, mb << 20)   # real blocks: the host disk cannot run out under it
            finally:
                os.close(fd)
            cp = subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", "-L", f"journal-{n.name}"[:16], str(tmp)],
                                capture_output=True, text=True, timeout=60)
            if cp.returncode != 0:
                raise ClusterError(f"mkfs.ext4 {tmp}: {cp.stderr.strip()}")
            os.replace(tmp, img)
            log(f"journal volume for {n.name}: {mb} MiB ext4 ({img})")
        mnt.mkdir(parents=True, exist_ok=True)
        if not os.path.ismount(mnt):
            cp = subprocess.run(["mount", "-o", "loop", str(img), str(mnt)], capture_output=True, text=True,
                                timeout=60)
            if cp.returncode != 0:
                raise ClusterError(f"mount {img} on {mnt}: {cp.stderr.strip()}")

    def has_journal_volumes(self) -> bool:
        return all(os.path.ismount(self.volume_dir(n)) for n in self.topo.nodes)

    def unmount_volumes(self) -> None:
        for n in self.topo.nodes + self.topo.other_nodes:
            mnt = self.volume_dir(n)
            if os.path.ismount(mnt):
                cp = subprocess.run(["umount", str(mnt)], capture_output=True, text=True, timeout=60)
                if cp.returncode != 0:   # still busy (a node that would not stop): detach it lazily
                    log(f"umount {mnt}: {cp.stderr.strip()}; detaching lazily")
                    subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=60)

    def start_node(self, n: Node, binary: Path, overlay: str | None) -> bool:
        """Starts portal node n (config rendered first) unless it runs; True when started."""
        cfg = self.node_config(n, binary, overlay)
        if self.sup.alive(f"portal-{n.name}"):
            return False
        self.need_ports(f"portal node {n.name}", [n.port], n.region)
        log(f"starting portal node {n.name} ({n.host}:{n.port}, {binary})")
        self.sup.start(f"portal-{n.name}", [*self.topo.enter(n.region), binary, "serve", "--config", cfg],
                       cwd=cfg.parent)
        return True

    def nodes_ready(self, names: list[str]) -> bool:
        urls = []
        for nn in names:
            n = self.topo.node(nn)
            if not self.sup.alive(f"portal-{nn}"):
                tail = self.sup.log_tail(f"portal-{nn}.log", 5)
                if "topology" in tail and "unknown key" in tail:
                    raise ClusterError(f"portal node {nn} rejects [topology]: this binary does not know it yet; "
                                       f"run with CLUSTER_NO_TOPOLOGY=1")
                raise ClusterError(f"portal node {nn} exited; last lines of {self.sup.logs}/portal-{nn}.log:\n{tail}")
            urls.append(f"http://{n.host}:{n.port}/readyz")
        return all(all_ok(urls))

    # ---- HAProxy -----------------------------------------------------------------------

    @property
    def haproxy_dir(self) -> Path:
        return self.state / "haproxy"

    def edge_instances(self) -> list[haproxy.Instance]:
        return haproxy.instances(self.topo, self.haproxy_dir)

    def haproxy_each(self, command: str) -> list[str]:
        """One runtime API command on every live edge instance; their answers."""
        out = []
        for inst in self.edge_instances():
            if self.sup.alive(inst.name):
                out.append(haproxy.runtime(inst.admin_sock, command))
        if not out:
            raise ClusterError("no HAProxy edge instance is running")
        return out

    def haproxy_cmd(self, command: str) -> str:
        """A runtime API command for the edge: a change (set, add, del, enable, disable,
        shutdown ...) goes to every live instance, so that both route alike, and the first
        answer that is not an empty success is returned (the caller judges it); a `show`
        asks the first live instance."""
        if command.lstrip().startswith("show "):
            for inst in self.edge_instances():
                if self.sup.alive(inst.name):
                    return haproxy.runtime(inst.admin_sock, command)
            raise ClusterError("no HAProxy edge instance is running")
        answers = self.haproxy_each(command)
        return next((a for a in answers if a.strip() not in haproxy.Runtime.OK_ANSWERS), answers[0])

    def rollout_canary(self) -> list[str]:
        """The new release's nodes of a rollout in progress (none when there is none)."""
        from . import rollout
        st = rollout.status(self)
        return list((st or {}).get("canary_nodes") or [])

    def haproxy_up(self) -> None:
        """Every edge instance: started when dead, reloaded (seamlessly) when its rendered
        config changed. An instance started while another serves takes that one's server
        state (weights, drain/maint, check results), so both route alike at once."""
        d = self.haproxy_dir
        d.mkdir(exist_ok=True)
        os.chmod(d, 0o700)
        self.make_cert()
        shutil.copy(DEPLOY / "haproxy" / "regions.map", d / "regions.map")
        canary = self.rollout_canary()
        for inst in self.edge_instances():
            self._haproxy_instance_up(inst, canary)

    def _haproxy_instance_up(self, inst: haproxy.Instance, canary: list[str]) -> None:
        d = self.haproxy_dir
        cfg = inst.cfg
        render(DEPLOY / "haproxy" / "haproxy.cfg.tmpl", cfg,
               haproxy.template_values(self.topo, d, self.tls_pem, canary, inst))
        cp = subprocess.run([HAPROXY, "-c", "-q", "-f", cfg], capture_output=True, text=True, timeout=30)
        if cp.returncode != 0:
            raise ClusterError(f"haproxy config invalid: {cfg}\n{cp.stderr[-1000:]}")
        running = cfg.with_name(cfg.name + ".running")
        if self.sup.alive(inst.name):
            if running.exists() and running.read_bytes() == cfg.read_bytes():
                return
            # changed template or ports: seamless reload (the new process takes the listening
            # sockets over from the old one, which finishes its sessions; hard-stop-after bounds it)
            old = self.sup.pid(inst.name)
            log(f"{inst.name} config changed: reloading (old pid {old} hands over its sockets)")
            try:
                write_atomic(inst.server_state, haproxy.runtime(inst.admin_sock, "show servers state"))
            except OSError:
                write_atomic(inst.server_state, "1\n")
            self.sup.start(inst.name, [HAPROXY, "-db", "-f", cfg, "-x", inst.admin_sock, "-sf", str(old)], cwd=d)
            shutil.copy(cfg, running)
            return
        peers = [i for i in self.edge_instances() if i.name != inst.name and self.sup.alive(i.name)]
        state = "1\n"   # a fresh start must not trust an old run's checks ...
        if peers:        # ... but a live peer's are current
            try:
                state = haproxy.runtime(peers[0].admin_sock, "show servers state")
            except OSError:
                pass
        write_atomic(inst.server_state, state)
        h = self.topo.haproxy
        shared = [h["pg_primary"], h["pg_replicas"], h["http"], h["https"]]
        self.need_ports(inst.name, [inst.stats_port] + ([] if peers else shared))
        log(f"starting {inst.name} (edge http://127.0.0.1:{h['http']} https://127.0.0.1:{h['https']}, "
            f"postgres primary :{h['pg_primary']}, replicas :{h['pg_replicas']}, stats :{inst.stats_port}"
            f"{'; beside ' + peers[0].name + ' on the same ports' if peers else ''})")
        self.sup.start(inst.name, [HAPROXY, "-db", "-f", cfg], cwd=d)
        shutil.copy(cfg, running)

    def haproxy_ready(self) -> bool:
        cp = self.psql(f"host=127.0.0.1 port={self.topo.haproxy['pg_primary']} user=postgres dbname=continuum",
                       "select not pg_is_in_recovery()", self.secrets["SUPERUSER_PASSWORD"], timeout=5)
        return cp.returncode == 0 and cp.stdout.strip() == "t"

    def edge_urls(self) -> list[str]:
        h = self.topo.haproxy
        return [f"http://127.0.0.1:{h['http']}/readyz", f"https://127.0.0.1:{h['https']}/readyz"]

    def edge_ready(self) -> bool:
        return all(all_ok(self.edge_urls()))

    # ---- monitoring --------------------------------------------------------------------

    @property
    def mon_dir(self) -> Path:
        return self.state / "monitoring"

    def monitoring_names(self) -> list[str]:
        if not self.with_monitoring:
            return []
        return (["prometheus", "alertmanager", "node-exporter", "blackbox-exporter", "probe"]
                + [f"postgres-exporter-{r}" for r in self.topo.names])

    def data_folders(self) -> list[tuple[str, str, str]]:
        out = [("postgres", r, str(self.patroni_dir(r))) for r in self.topo.names]
        out += [("etcd", r, str(self.state / "etcd" / r)) for r in self.topo.names]
        out += [("audit", n.name, str(self.audit_dir(n))) for n in self.topo.nodes]
        out.append(("prometheus", "prometheus", str(self.mon_dir / "prometheus")))
        return [f for f in out if Path(f[2]).exists()]

    def monitoring_up(self) -> None:
        """Prometheus, Alertmanager and the exporters, our own instances (data in the state
        folder). A changed configuration is applied with SIGHUP (both reload it)."""
        if not self.with_monitoring:
            return
        for b in monitoring.BINARIES:
            if not os.access(b, os.X_OK):
                raise ClusterError(f"missing {b} (run scripts/setup), or set CLUSTER_NO_MONITORING=1")
        m = self.topo.monitoring
        d = self.mon_dir
        for sub in ("prometheus/data", "prometheus/targets", "alertmanager/data", "textfile"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        for name, targets in monitoring.scrape_targets(self.topo, self.with_deps).items():
            write_atomic(d / "prometheus" / "targets" / name, monitoring.file_sd(targets))
        write_atomic(d / "textfile" / "continuum_folders.prom", monitoring.folder_info(self.data_folders()))
        prom_cfg = d / "prometheus" / "prometheus.yml"
        changed = render(DEPLOY / "prometheus" / "prometheus.yml.tmpl", prom_cfg,
                         monitoring.prometheus_values(self.topo, d, DEPLOY, self.ops_token_file))
        am_cfg = d / "alertmanager" / "alertmanager.yml"
        am_changed = render(DEPLOY / "alertmanager" / "alertmanager.yml.tmpl", am_cfg, {
            "WEBHOOK_CONFIGS": monitoring.webhook_configs(self.topo), "OPS_TOKEN_FILE": self.ops_token_file},
            mode=0o600)
        rules_stamp = "".join(f"{f.name}:{f.stat().st_mtime_ns};"
                              for f in sorted((DEPLOY / "prometheus" / "rules").glob("*.yml")))
        changed |= write_atomic(d / "prometheus" / "rules.stamp", rules_stamp)
        self._start_or_reload("prometheus", changed, [
            monitoring.PROMETHEUS, f"--config.file={prom_cfg}", f"--storage.tsdb.path={d / 'prometheus' / 'data'}",
            f"--web.listen-address={self.topo.service_host}:{m['prometheus']}", "--storage.tsdb.retention.time=15d",
            "--web.enable-lifecycle", f"--web.external-url={self.prometheus_url}/"],
            d / "prometheus", [m["prometheus"]])
        self._start_or_reload("alertmanager", am_changed, [
            monitoring.ALERTMANAGER, f"--config.file={am_cfg}", f"--storage.path={d / 'alertmanager' / 'data'}",
            f"--web.listen-address=127.0.0.1:{m['alertmanager']}", "--cluster.listen-address=",
            f"--web.external-url=http://127.0.0.1:{m['alertmanager']}/"],
            d / "alertmanager", [m["alertmanager"]])
        self._start_or_reload("node-exporter", False, [
            monitoring.NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{m['node_exporter']}",
            f"--collector.textfile.directory={d / 'textfile'}"], d, [m["node_exporter"]])
        # copies in the state folder: a process is recognised as ours by a state path in its argv
        bb_changed = write_atomic(d / "blackbox.yml", (DEPLOY / "prometheus" / "blackbox.yml").read_text())
        write_atomic(d / "postgres_queries.yml", (DEPLOY / "prometheus" / "postgres_queries.yml").read_text())
        self._start_or_reload("blackbox-exporter", bb_changed, [
            monitoring.BLACKBOX, f"--config.file={d / 'blackbox.yml'}",
            f"--web.listen-address=127.0.0.1:{m['blackbox']}"], d, [m["blackbox"]])
        for r, port in zip(self.topo.regions, self.topo.postgres_exporter_ports()):
            name = f"postgres-exporter-{r.name}"
            if self.sup.alive(name):
                continue
            self.need_ports(name, [port])
            env = {"PATH": "/usr/bin:/bin",
                   "DATA_SOURCE_NAME": f"host={r.host} port={r.pg} user=postgres dbname=postgres "
                                       f"password={self.secrets['SUPERUSER_PASSWORD']} sslmode=disable "
                                       f"connect_timeout=2"}
            log(f"starting {name} (127.0.0.1:{port})")
            self.sup.start(name, [monitoring.POSTGRES_EXPORTER, f"--web.listen-address=127.0.0.1:{port}",
                                  f"--extend.query-path={d / 'postgres_queries.yml'}",
                                  f"--log.level=warn"], d, env=env)

    @property
    def synthetic_password_file(self) -> Path:
        return self.state / "synthetic.password"

    def synthetic_accounts(self) -> None:
        """The prober's synthetic patient and accounts per vantage (idempotent)."""
        if not self.with_monitoring:
            return
        f = self.synthetic_password_file
        if not (f.exists() and f.stat().st_size > 0):
            write_atomic(f, secrets.token_hex(16) + "\n", 0o600)
        names = ["edge"] + self.topo.names + [monitoring.CANARY_VANTAGE]
        args = ["synthetic-accounts", "--database-url", self.primary_url(), "--password-file", str(f)]
        for n in names:
            args += ["--vantage", n]
        self.run_bin(args, "seed.log", "continuum synthetic-accounts")

    def probe_up(self, canary_urls: list[str] | None = None) -> None:
        """`canary_urls`: a rollout's new nodes get journeys of their own (vantage "canary")."""
        if not self.with_monitoring:
            return
        d = self.mon_dir / "probe"
        d.mkdir(parents=True, exist_ok=True)
        cfg = d / "probe.toml"
        changed = write_atomic(cfg, monitoring.probe_toml(
            self.topo, float(os.environ.get("PROBE_INTERVAL_S", "5")), str(DEPLOY / "probe" / "journeys"),
            str(self.synthetic_password_file), str(self.ops_token_file), str(d / "alerts.log"), canary_urls))
        if changed and self.sup.alive("probe"):
            log("probe: configuration changed, restarting it")
            self.sup.stop(["probe"], signal.SIGTERM, 10)
        if self.sup.alive("probe"):
            return
        self.need_ports("probe", [self.topo.monitoring["prober"]])
        log(f"starting probe (journeys every {os.environ.get('PROBE_INTERVAL_S', '5')} s from "
            f"{', '.join(['edge'] + self.topo.names)}; 127.0.0.1:{self.topo.monitoring['prober']})")
        self.sup.start("probe", [self.bin, "probe", "--config", cfg], d)

    def monitoring_status(self) -> dict | None:
        if not self.with_monitoring:
            return None
        m = self.topo.monitoring
        urls = {"prometheus": self.prometheus_url,
                "alertmanager": f"http://127.0.0.1:{m['alertmanager']}",
                "probe": f"http://127.0.0.1:{m['prober']}"}
        oks = all_ok([urls["prometheus"] + "/-/ready", urls["alertmanager"] + "/-/ready",
                      urls["probe"] + "/healthz"], timeout=1.5)
        out = {k: {"url": u, "pid": self.sup.live_pid(k), "ready": ok}
               for (k, u), ok in zip(urls.items(), oks)}
        out["exporters"] = {n: self.sup.live_pid(n) for n in self.monitoring_names()
                            if n not in ("prometheus", "alertmanager", "probe")}
        return out

    def _start_or_reload(self, name: str, changed: bool, argv: list, cwd: Path, ports: list[int]) -> None:
        if self.sup.alive(name):
            if changed:
                log(f"{name}: configuration changed, reloading (SIGHUP)")
                self.sup.signal(name, signal.SIGHUP)
            return
        self.need_ports(name, ports)
        where = next((a.split("=", 1)[1] for a in map(str, argv) if a.startswith("--web.listen-address=")),
                     f"127.0.0.1:{ports[0]}")
        log(f"starting {name} ({where})")
        self.sup.start(name, argv, cwd)

    def monitoring_ready(self) -> bool:
        if not self.with_monitoring:
            return True
        m = self.topo.monitoring
        for n in self.monitoring_names():
            if not self.sup.alive(n):
                raise ClusterError(f"{n} exited; last lines of {self.sup.logs}/{n}.log:\n"
                                   + self.sup.log_tail(f"{n}.log"))
        return all(all_ok([f"{self.prometheus_url}/-/ready",
                           f"http://127.0.0.1:{m['alertmanager']}/-/ready"]))

    # ---- commands ----------------------------------------------------------------------

    def all_alive(self) -> bool:
        names = list(haproxy.EDGE_INSTANCES) + (["stubdeps"] if self.with_deps else [])
        names += [f"{k}-{r}" for r in self.topo.names for k in ("etcd", "patroni", "netproxy")]
        names += [f"portal-{n.name}" for n in self.topo.nodes]
        names += self.monitoring_names()
        return all(self.sup.alive(n) for n in names)

    def up(self) -> None:
        t0 = time.monotonic()
        self.preflight()
        names = self.topo.names
        all_nodes = [n.name for n in self.topo.nodes]
        if (self.all_alive() and patroni.healthy(self.cluster_json(), len(names)) and self.haproxy_ready()
                and self.nodes_ready(all_nodes) and self.edge_ready()):
            self.haproxy_up()   # applies a changed HAProxy template (reload), else nothing
            self.monitoring_up()   # likewise for Prometheus and Alertmanager (SIGHUP)
            self.probe_up()
            log(f"already up ({self.state})")
            self.print_status()
            return
        self.etcd_up(names)
        wait_for(60, "etcd quorum", self.etcd_quorum)
        log(f"etcd quorum: {self.etcd_endpoints()}")
        marks = {n: self.pg_log_mark(n) for n in names}
        reinit: set[str] = set()
        self.patroni_up(names)
        log(f"waiting for a leader and a sync_standby (up to {self.up_timeout}s)")

        def patroni_ready() -> bool:
            self.patroni_alive_or_die(names)
            if patroni.healthy(self.cluster_json(), len(names)):
                return True
            self.repair_starved(names, marks, reinit)
            return False
        try:
            wait_for(self.up_timeout, "Patroni leader + sync_standby", patroni_ready)
        except ClusterError as e:
            raise ClusterError(f"{e}: Patroni not healthy; see {self.sup.logs}/patroni-*.log\n"
                               + self.patronictl_list()) from None
        wait_for(30, "database continuum", self.create_database)
        self.migrate_and_seed()
        self.haproxy_up()
        wait_for(30, "HAProxy -> primary", self.haproxy_ready)
        self.stubdeps_up()
        self.netproxy_up(names)
        self.portal_up(names)
        log(f"waiting for {len(all_nodes)} portal nodes to be ready (up to {self.node_timeout}s)")
        wait_for(self.node_timeout, "portal nodes /readyz", lambda: self.nodes_ready(all_nodes))
        wait_for(30, "edge /readyz", self.edge_ready)
        if self.with_monitoring:
            self.synthetic_accounts()
            self.monitoring_up()
            self.probe_up()
            wait_for(60, "Prometheus and Alertmanager ready", self.monitoring_ready)
        h = self.topo.haproxy
        log(f"up in {time.monotonic() - t0:.0f}s. edge: http://127.0.0.1:{h['http']} https://127.0.0.1:{h['https']}; "
            f"primary via HAProxy: postgresql://continuum@127.0.0.1:{h['pg_primary']}/continuum "
            f"(passwords in {self.state}/secrets.env)")
        self.print_status()

    def patronictl_list(self) -> str:
        try:
            cp = subprocess.run([PATRONICTL, "-c", self.patroni_cfg(self.topo.names[0]), "list"],
                                capture_output=True, text=True, timeout=10)
            return cp.stdout + cp.stderr
        except subprocess.TimeoutExpired:
            return "(patronictl list timed out)"

    def stop_orphan_postmaster(self, name: str) -> None:
        pid = self.postmaster_pid(name)
        if pid is None:
            return
        log(f"stopping orphan postmaster of {name} (pid {pid})")
        d = self.patroni_dir(name)
        cp = subprocess.run(["setpriv", f"--reuid={PG_USER}", f"--regid={PG_USER}", "--init-groups", "--",
                             PG_BIN / "pg_ctl", "-D", d / "data", "-m", "fast", "-w", "-t", "30", "stop"],
                            capture_output=True, cwd=d, timeout=60)
        if cp.returncode != 0:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def down(self) -> None:
        if not self.sup.pids.is_dir():
            log(f"nothing to stop ({self.state})")
            return
        names = self.topo.names
        took: list[str] = []

        def phase(label: str, fn) -> None:
            t = time.monotonic()
            fn()
            took.append(f"{label} {time.monotonic() - t:.1f}s")
        # The watchers first, so that taking the cluster down raises no alert.
        mon = ["probe", "prometheus", "alertmanager", "node-exporter", "blackbox-exporter"]
        phase("monitoring", lambda: self.sup.stop(mon + [f"postgres-exporter-{r}" for r in names],
                                                  signal.SIGTERM, 15))
        # Portal nodes first (they drain in-flight requests and flush their audit journal).
        phase("portal", lambda: self.sup.stop([f"portal-{n.name}" for n in self.topo.nodes + self.topo.other_nodes],
                                              signal.SIGTERM, 20))
        self.unmount_volumes()
        phase("edge", lambda: self.sup.stop(list(haproxy.EDGE_INSTANCES), signal.SIGTERM, 10))
        phase("stand-ins", lambda: self.sup.stop(["stubdeps"] + [f"netproxy-{r}" for r in names],
                                                 signal.SIGTERM, 10))
        # Patroni stops its PostgreSQL on SIGTERM: all at once, then wait.
        phase("patroni", lambda: self.sup.stop([f"patroni-{r}" for r in names], signal.SIGTERM, 60))
        for r in names:
            self.stop_orphan_postmaster(r)
        # etcd one member at a time: stopped all together they took 7 s (the leader's
        # shutdown seemingly waiting on peers that are going too), one by one 0.4 s.
        phase("etcd", lambda: [self.sup.stop([f"etcd-{r}"], signal.SIGTERM, 20) for r in names])
        log("down: " + ", ".join(took))
        log(f"down ({self.state} kept; `destroy` removes it)")

    def destroy(self, kill: bool = False) -> None:
        """down, then SIGKILL what is left of the processes we start (by program, naming our
        folders, and their children; never a session, never our own ancestors: a `tail -f` of
        a log or the shell that runs us is not ours), then remove the folders. `kill`: no
        down first, everything SIGKILLed at once (a test cluster whose data nobody keeps; an
        orderly down of three regions takes ~10 s, mostly Patroni stopping PostgreSQL)."""
        if not kill:
            self.down()
        from .procs import ancestors, our_program
        snap = snapshot()
        mine = ancestors(snap, os.getpid())
        roots = [str(self.state) + "/", str(self.pg_root) + "/"]
        left = [p for p in snap if p not in mine and live(p) and our_program(p)
                and any(r in cmdline(p) for r in roots)]
        if left:
            victims = descendants(snap, left) - mine
            log(f"{'' if kill else 'after down, '}{len(left)} of our processes remain: SIGKILL {sorted(victims)}")
            for p in victims:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            deadline = time.monotonic() + 10
            while any(live(p) for p in victims) and time.monotonic() < deadline:
                time.sleep(0.05)
        self.unmount_volumes()   # again: a node SIGKILLed just now held its volume
        if self.topo.netns:
            try:
                netns.teardown(self.topo.netns)
            except (ClusterError, OSError, subprocess.TimeoutExpired) as e:
                log(f"removing the network namespaces failed ({e}): `ip netns list`, `ip link del "
                    f"{self.topo.netns.bridge}`")
        if self.pg_root != self.state / "patroni" and (self.pg_root / "OWNER").exists():
            shutil.rmtree(self.pg_root, ignore_errors=True)
        shutil.rmtree(self.state, ignore_errors=True)
        log(f"destroyed {self.state}" + ("" if self.pg_root == self.state / "patroni" else f" and {self.pg_root}"))

    def region_roots(self, name: str) -> list[int]:
        r = self.topo.region(name)
        out = [self.sup.live_pid(p) for p in [f"etcd-{name}", f"patroni-{name}", f"netproxy-{name}"] +
               [f"portal-{n.name}" for n in r.nodes + r.other_nodes]]
        out.append(self.postmaster_pid(name))
        return [p for p in out if p is not None]

    def kill_region(self, name: str) -> None:
        self.topo.region(name)
        roots = self.region_roots(name)
        if not roots:
            log(f"region {name}: nothing running")
            return
        me = os.getsid(0)
        # Freeze (SIGSTOP: nothing can fork or react any more), take the process tree once
        # more for anything forked meanwhile, then SIGKILL the whole set at once.
        victims = closure(snapshot(), roots, me)
        for p in victims:
            try:
                os.kill(p, signal.SIGSTOP)
            except OSError:
                pass
        victims = closure(snapshot(), roots, me)
        for p in victims:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        log(f"kill-region {name}: SIGKILL {len(victims)} processes (etcd, Patroni, PostgreSQL, net-proxy, "
            f"portal nodes)")
        end = time.monotonic() + 10
        while True:
            left = [p for p in victims if live(p)]
            if not left:
                break
            if time.monotonic() > end:
                raise ClusterError(f"{len(left)} processes of region {name} survived SIGKILL: {left}")
            time.sleep(0.1)
        log(f"region {name} is dead")

    def start_region(self, name: str) -> None:
        t0 = time.monotonic()
        r = self.topo.region(name)
        self.preflight()
        if not any(self.sup.alive(n) for n in haproxy.EDGE_INSTANCES):
            raise ClusterError("HAProxy is not running: use 'up' to start the whole cluster")
        self.etcd_up([name])
        wait_for(60, f"etcd {name}", lambda: self.etcd_member_healthy(name))
        marks = {name: self.pg_log_mark(name)}
        reinit: set[str] = set()
        self.patroni_up([name])
        log(f"waiting for {name}'s PostgreSQL to stream from the primary (or lead) (up to {self.up_timeout}s)")

        def serving() -> bool:
            self.patroni_alive_or_die([name])
            if self.region_serving(name):
                return True
            self.repair_starved([name], marks, reinit)
            return False
        try:
            wait_for(self.up_timeout, f"{name} streaming", serving)
        except ClusterError as e:
            raise ClusterError(f"{e}; see {self.sup.logs}/patroni-{name}.log\n{self.patronictl_list()}") from None
        self.netproxy_up([name])
        self.portal_up([name])
        nodes = [n.name for n in r.nodes]
        wait_for(self.node_timeout, f"portal nodes of {name}", lambda: self.nodes_ready(nodes))
        log(f"region {name} is back in {time.monotonic() - t0:.0f}s")
        self.print_status()

    # ---- status ------------------------------------------------------------------------

    def status(self) -> dict:
        if self.state.joinpath("secrets.env").exists() and not self.secrets:
            self.load_secrets()
        cj = self.cluster_json() or {}
        repl = self.replication() if self.secrets.get("SUPERUSER_PASSWORD") else {}
        nodes = self.topo.nodes
        oks = all_ok([f"http://{n.host}:{n.port}/readyz" for n in nodes] + self.edge_urls(), timeout=1.5)
        node_ok = {n.name: ok for n, ok in zip(nodes, oks)}
        edge_http_ok, edge_https_ok = oks[-2], oks[-1]
        pid = self.sup.live_pid
        regions = []
        for r in self.topo.regions:
            m = patroni.member(cj, r.name)
            role = patroni.role(m)
            lag = (m or {}).get("lag")
            etcd_ok = self.etcd_member_healthy(r.name)
            regions.append({
                "name": r.name, "member": r.name, "role": role, "state": (m or {}).get("state", "down"),
                "lag_bytes": 0 if role == "primary" else (lag if isinstance(lag, int) else None),
                "timeline": (m or {}).get("timeline"),
                "replication": repl.get(r.name, {}).get("state") or None,
                "postgres": f"{r.host}:{r.pg}", "patroni_rest": f"{r.host}:{r.rest}",
                "net_proxy": {"postgres": f"{r.host}:{r.pg_proxy}", "admin": f"http://{r.host}:{r.pg_proxy_admin}",
                              "pid": pid(f"netproxy-{r.name}")},
                "patroni_pid": pid(f"patroni-{r.name}"),
                "data_dir": str(self.patroni_dir(r.name) / "data"),
                "etcd": {"client": f"{r.host}:{r.etcd_client}", "health": "healthy" if etcd_ok else "down",
                         "pid": pid(f"etcd-{r.name}")},
                "portal_nodes": [{"name": n.name, "address": f"{n.host}:{n.port}", "pid": pid(f"portal-{n.name}"),
                                  "ready": node_ok[n.name] and pid(f"portal-{n.name}") is not None}
                                 for n in r.nodes],
            })
        primary = next((r["name"] for r in regions if r["role"] == "primary"), None)
        sync = [r["name"] for r in regions if r["role"] == "sync_standby"]
        hap = pid("haproxy")
        edge = [{"name": i.name, "pid": pid(i.name), "stats": f"http://127.0.0.1:{i.stats_port}/",
                 "admin_socket": str(i.admin_sock)} for i in self.edge_instances()]
        healthy = (primary is not None and bool(sync)
                   and all(r["state"] in patroni.RUNNING for r in regions)
                   and all(r["etcd"]["health"] == "healthy" for r in regions)
                   and all(p["ready"] for r in regions for p in r["portal_nodes"])
                   and all(i["pid"] is not None for i in edge) and edge_http_ok and edge_https_ok)
        h = self.topo.haproxy
        return {
            "state_dir": str(self.state),
            "pg_root": str(self.pg_root),
            "port_offset": self.offset,
            "network": ({"namespaces": {r: self.topo.netns.namespace(r) for r in self.topo.names},
                         "bridge": self.topo.netns.bridge, "gateway": self.topo.netns.gateway,
                         "partitioned": [r for r in self.topo.names if netns.partitioned(self.topo.netns, r)]}
                        if self.topo.netns else None),
            "healthy": healthy,
            "primary": primary,
            "sync_standby": sync,
            "edge": {"http": f"http://127.0.0.1:{h['http']}", "https": f"https://127.0.0.1:{h['https']}",
                     "pid": hap, "ready": edge_http_ok and edge_https_ok},
            "haproxy": {"pid": hap, "postgres_primary": f"127.0.0.1:{h['pg_primary']}",
                        "postgres_replicas": f"127.0.0.1:{h['pg_replicas']}",
                        "stats": f"http://127.0.0.1:{h['stats']}/",
                        "admin_socket": str(self.haproxy_dir / "admin.sock"), "instances": edge},
            "stub_deps": {"admin": f"http://{self.topo.service_host}:{self.topo.stub_base}", "pid": pid("stubdeps")}
            if self.with_deps else None,
            "regions": regions,
            "monitoring": self.monitoring_status(),
            "release": {"slot": self.topo.slot, "binary": str(self.bin), "overlay": self.release.get("overlay"),
                        "version": self.release.get("version")},
            "rollout": rollout_status(self),
        }

    def print_status(self, as_json: bool = False) -> None:
        print(format_status(self.status(), as_json), flush=True)


def rollout_status(c: "Cluster") -> dict | None:
    from . import rollout
    return rollout.status(c)


def format_status(out: dict, as_json: bool = False) -> str:
    if as_json:
        return json.dumps(out, indent=2)
    e = out["edge"]
    inst = out["haproxy"].get("instances") or []
    alive = [i for i in inst if i["pid"]]
    lines = [f"cluster: {'HEALTHY' if out['healthy'] else 'NOT HEALTHY'}   state: {out['state_dir']}"
             + (f"   port offset: {out['port_offset']}" if out["port_offset"] else ""),
             f"edge:    {e['http']}  {e['https']}  {'ready' if e['ready'] else 'NOT READY'}  "
             f"(haproxy {len(alive)} of {len(inst)} up: "
             f"{', '.join(i['name'] + (' pid ' + str(i['pid']) if i['pid'] else ' DOWN') for i in inst)}; postgres primary {out['haproxy']['postgres_primary']}, "
             f"replicas {out['haproxy']['postgres_replicas']}, stats {out['haproxy']['stats']})"]
    hdr = (f"{'region':<12} {'role':<13} {'state':<10} {'lag(bytes)':>10} {'TL':>3} {'postgres':<16} "
           f"{'patroni':<16} {'pid':>7}  etcd")
    lines += [hdr, "-" * len(hdr)]
    for r in out["regions"]:
        lag = "-" if r["lag_bytes"] is None else str(r["lag_bytes"])
        lines.append(f"{r['name']:<12} {r['role']:<13} {r['state']:<10} {lag:>10} {str(r['timeline'] or '-'):>3} "
                     f"{r['postgres']:<16} {r['patroni_rest']:<16} {str(r['patroni_pid'] or '-'):>7}  "
                     f"{r['etcd']['health']} ({r['etcd']['client']}, pid {r['etcd']['pid'] or '-'})")
        for p in r["portal_nodes"]:
            lines.append(f"  portal {p['name']:<14} {p['address']:<16} pid {str(p['pid'] or '-'):>7}  "
                         f"{'ready' if p['ready'] else 'NOT READY'}")
    mon = out.get("monitoring")
    if mon:
        lines.append("monitoring: " + "  ".join(
            f"{k} {mon[k]['url']} {'ready' if mon[k]['ready'] else 'NOT READY'}"
            for k in ("prometheus", "alertmanager", "probe")))
    ro = out.get("rollout")
    if ro:
        lj = (ro.get("last_judgement") or {}).get("line") or "-"
        lines.append(f"rollout {ro.get('id')}: {ro.get('phase')} at step {ro.get('step')} ({ro.get('percent')}%) "
                     f"{ro.get('reason') or ''}; last judgement: {lj}")
    if out["pg_root"] != out["state_dir"] + "/patroni":
        lines.append(f"PostgreSQL folders: {out['pg_root']} (the postgres user cannot reach the state folder)")
    return "\n".join(lines)
