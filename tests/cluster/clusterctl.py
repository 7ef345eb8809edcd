"""Driving `scripts/cluster` from Python (stdlib only): the failover suite and bench/drill.

    c = ClusterHandle.create(keep=False)      # fresh state folder, free port offset; `up`
    c.wait_healthy()
    st = c.status()                           # `scripts/cluster status --json`
    c.kill_region("us-east"); c.start_region("us-east")
    c.psql("SELECT 1")                        # via HAProxy's primary port (app role)
    c.close()                                 # `down`, stragglers SIGKILLed, state removed

Safety nets (as in tests/e2e/harness.py): every handle that was created here is closed at
interpreter exit (atexit); SIGTERM/SIGHUP become KeyboardInterrupt so that the interpreter
unwinds; `start_watchdog(seconds)` sends SIGTERM to ourselves at a global deadline and, if
the main thread is stuck, cleans up from the watchdog thread and exits 124. Every
subprocess and every wait has a timeout. A handle only ever stops processes whose command
line names its own state folder (or the children of such a postmaster), by PID.
"""

from __future__ import annotations

import atexit
import fcntl
import faulthandler
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "cluster"
DEPLOY = REPO / "deploy"
PSQL = "/usr/lib/postgresql/15/bin/psql" if os.path.exists("/usr/lib/postgresql/15/bin/psql") else "psql"
PATRONICTL = "/usr/bin/patronictl"
SYS_PY = "/usr/bin/python3"

sys.path.insert(0, str(REPO / "ops"))
from continuum_ops import netns  # noqa: E402
from continuum_ops.haproxy import runtime as haproxy_runtime  # noqa: E402
from continuum_ops.topology import (HAPROXY_PORTS, Topology, ephemeral_range, port_problems,  # noqa: E402
                                    reserved_ports)


def log(msg: str) -> None:
    print(f"[cluster-test {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Safety nets

_live: set = set()
_live_lock = threading.Lock()


def cleanup_all() -> None:
    with _live_lock:
        objs = list(_live)
    for obj in objs:
        try:
            obj.close()
        except Exception as e:  # noqa: BLE001 - cleanup must go on
            print(f"cluster cleanup: {obj!r}: {e}", file=sys.stderr)


atexit.register(cleanup_all)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"received signal {signum}")


def install_signal_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _raise_interrupt)


_watchdog = None


def start_watchdog(deadline_s: float, what: str = "cluster tests") -> None:
    """At the deadline: SIGTERM to ourselves (-> KeyboardInterrupt -> cleanup); if still
    alive 90 s later, clean up from this thread and exit 124."""
    global _watchdog
    if _watchdog is not None:
        return

    def fire():
        print(f"\n{what}: global deadline of {deadline_s:.0f}s reached; stopping", file=sys.stderr)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(90)
        cleanup_all()
        os._exit(124)

    _watchdog = threading.Timer(deadline_s, fire)
    _watchdog.daemon = True
    _watchdog.start()


# --------------------------------------------------------------------------------------
# Ports


def cluster_ports(offset: int) -> list[int]:
    return [p for p, _ in Topology((DEPLOY / "regions.conf").read_text(), offset).ports()]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


# Offsets this process holds: a lock file per offset, locked until the process exits, so
# that test modules run side by side (tests/run_modules.py) never pick the same offset in
# the seconds between choosing it and their cluster binding its ports.
_OFFSET_LOCKS: dict[int, int] = {}
OFFSET_LOCK_DIR = Path("/run/lock") if os.path.isdir("/run/lock") else Path(tempfile.gettempdir())


def reserve_offset(offset: int) -> bool:
    """Takes the offset for this process; False if a process (this one included: a
    cluster it made earlier may still be up) holds it."""
    if offset in _OFFSET_LOCKS:
        return False
    fd = os.open(OFFSET_LOCK_DIR / f"continuum-cluster-offset-{offset}.lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _OFFSET_LOCKS[offset] = fd
    return True


def free_offset(candidates=range(2000, 10001, 1000)) -> int:
    """The first offset whose ports are all free and all below the kernel's ephemeral range,
    and that no other process (another test module) has reserved; it stays reserved for
    this process."""
    eph, reserved = ephemeral_range(), reserved_ports()
    usable = [off for off in candidates
              if not port_problems(Topology((DEPLOY / "regions.conf").read_text(), off).ports(), eph, reserved)]
    for off in usable:
        if all(port_free(p) for p in cluster_ports(off)) and reserve_offset(off):
            return off
    raise RuntimeError(f"no port offset in {usable} (of {list(candidates)}, the ones below the ephemeral "
                       f"range {eph[0]}-{eph[1]}) has all its ports free")


# --------------------------------------------------------------------------------------
# Processes


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _ppids() -> dict[int, int]:
    out = {}
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                with open(f"/proc/{e}/stat") as f:
                    out[int(e)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    return out


def pg_root_of(state: Path) -> Path:
    """Where the cluster keeps PostgreSQL's folders (cluster.env), default <state>/patroni."""
    try:
        for line in (state / "cluster.env").read_text().splitlines():
            if line.startswith("PG_ROOT="):
                return Path(line.split("=", 1)[1].strip())
    except OSError:
        pass
    return state / "patroni"


def processes_of(state: Path, also: tuple[Path, ...] = ()) -> list[int]:
    """PIDs whose command line names the state folder (or the cluster's PostgreSQL folder, or
    a folder in `also`), and all their descendants."""
    needles = [str(p) + "/" for p in (state, pg_root_of(state), *also)]
    me = os.getpid()
    roots = [p for p in _ppids() if p != me and any(n in _cmdline(p) + "/" for n in needles) and _alive(p)]
    ppid = _ppids()
    want, todo = set(roots), list(roots)
    while todo:
        p = todo.pop()
        for child, parent in ppid.items():
            if parent == p and child not in want:
                want.add(child)
                todo.append(child)
    return sorted(p for p in want if _alive(p) and p != me)


def run(cmd, timeout: float, check: bool = False, env=None, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("stdin", subprocess.DEVNULL)
    cp = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                        env=env, **kw)
    if check and cp.returncode != 0:
        raise RuntimeError(f"command failed (exit {cp.returncode}): {' '.join(map(str, cmd))}\n"
                           f"stdout: {cp.stdout[-3000:]}\nstderr: {cp.stderr[-5000:]}")
    return cp


def wait_until(predicate, timeout: float, interval: float = 0.5, message: str = "condition"):
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = predicate()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - keep polling, report the last error
            last_exc = e
        if time.monotonic() >= deadline:
            extra = f" (last error: {last_exc!r})" if last_exc else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {message}{extra}")
        time.sleep(interval)


# --------------------------------------------------------------------------------------
# The cluster


class ClusterHandle:
    """One `scripts/cluster` state folder. `owned`: we created it (close() stops it and
    removes the folder unless keep)."""

    def __init__(self, state: Path, offset: int | None, owned: bool, keep: bool = False,
                 patients: int | None = None, monitoring: bool = True, netns: bool = False):
        self.state = Path(state).resolve()
        self.monitoring = monitoring
        self.netns = netns   # regions in network namespaces of their own (CLUSTER_NETNS=1)
        self.offset = offset
        self.owned = owned
        self.keep = keep
        self.patients = patients
        self.closed = False
        self.failed = False   # set by a failed test: close() keeps a copy of the logs
        self.regions = Topology((DEPLOY / "regions.conf").read_text(), 0).names
        with _live_lock:
            _live.add(self)

    def __repr__(self):
        return f"<ClusterHandle {self.state} offset={self.offset}>"

    @classmethod
    def create(cls, keep: bool = False, patients: int | None = None, offset: int | None = None,
               prefix: str = "cct-", monitoring: bool = True, netns: bool = False) -> "ClusterHandle":
        # short path: PostgreSQL's socket lives in <state>/patroni/<region>/ (107-byte limit)
        state = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        os.chmod(state, 0o755)
        off = offset if offset is not None else free_offset()
        return cls(state, off, owned=True, keep=keep, patients=patients, monitoring=monitoring, netns=netns)

    # -- scripts/cluster -------------------------------------------------------------------

    def _env(self):
        env = dict(os.environ)
        if self.patients:
            env["CLUSTER_PATIENTS"] = str(self.patients)
        if not self.monitoring:
            env["CLUSTER_NO_MONITORING"] = "1"
        env["CLUSTER_NETNS"] = "1" if self.netns else "0"
        return env

    def topology(self) -> Topology:
        """The cluster's topology as `scripts/cluster` recorded it (port offset, namespaces)."""
        rec = {}
        try:
            for line in (self.state / "cluster.env").read_text().splitlines():
                k, _, v = line.partition("=")
                rec[k.strip()] = v.strip()
        except OSError:
            pass
        return Topology((DEPLOY / "regions.conf").read_text(), int(rec.get("PORT_OFFSET", self.offset or 0)),
                        netns=int(rec.get("NETNS", "0")) or None)

    def cmd(self, *args, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        argv = [SCRIPT, *args, "--state", self.state]
        if self.offset is not None:
            argv += ["--port-offset", str(self.offset)]
        t0 = time.monotonic()
        cp = run(argv, timeout=timeout, check=False, env=self._env())
        if check and cp.returncode != 0:
            raise RuntimeError(f"scripts/cluster {' '.join(map(str, args))} failed (exit {cp.returncode}, "
                               f"{time.monotonic() - t0:.1f}s)\nstdout: {cp.stdout[-3000:]}\n"
                               f"stderr: {cp.stderr[-5000:]}")
        return cp

    def up(self, timeout: float = 300) -> None:
        t0 = time.monotonic()
        self.cmd("up", timeout=timeout)
        if self.offset is None:
            env = (self.state / "cluster.env").read_text()
            self.offset = int(env.split("PORT_OFFSET=")[1].split()[0])
        log(f"up in {time.monotonic() - t0:.1f}s ({self.state}, port offset {self.offset})")

    def down(self, timeout: float = 180) -> None:
        self.cmd("down", timeout=timeout, check=False)

    def status(self, timeout: float = 30) -> dict:
        cp = self.cmd("status", "--json", timeout=timeout)
        return json.loads(cp.stdout)

    def kill_region(self, region: str, timeout: float = 60) -> None:
        self.cmd("kill-region", region, timeout=timeout)

    def start_region(self, region: str, timeout: float = 300) -> None:
        self.cmd("start-region", region, timeout=timeout)

    def switchover(self, leader: str, candidate: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cfg = pg_root_of(self.state) / leader / "patroni.yml"
        return run(["timeout", "-k", "5", str(int(timeout)), SYS_PY, PATRONICTL, "-c", cfg, "switchover",
                    "--leader", leader, "--candidate", candidate, "--force"], timeout=timeout + 10, check=True)

    # -- addresses, secrets, SQL -------------------------------------------------------------

    @property
    def edge(self) -> str:
        return f"http://127.0.0.1:{HAPROXY_PORTS['http'] + self.offset}"

    @property
    def pg_primary_port(self) -> int:
        return HAPROXY_PORTS["pg_primary"] + self.offset

    def secrets(self) -> dict:
        out = {}
        for line in (self.state / "secrets.env").read_text().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip()
        return out

    def psql(self, sql: str, superuser: bool = False, timeout: float = 30, retry_s: float = 30) -> str:
        """Runs SQL on the primary through HAProxy (app role, or postgres); unaligned,
        tuples-only, '|'-separated. Retries connection failures for up to retry_s (the
        primary may just have changed)."""
        s = self.secrets()
        user, pw = ("postgres", s["SUPERUSER_PASSWORD"]) if superuser else ("continuum", s["APP_PASSWORD"])
        env = dict(os.environ, PGPASSWORD=pw, PGCONNECT_TIMEOUT="3")
        conn = f"host=127.0.0.1 port={self.pg_primary_port} user={user} dbname=continuum"
        deadline = time.monotonic() + retry_s
        while True:
            cp = run([PSQL, conn, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"], timeout=timeout,
                     env=env, input=sql, stdin=None)
            if cp.returncode == 0:
                return cp.stdout
            transient = cp.returncode == 2 or "read-only" in cp.stderr or "recovery" in cp.stderr
            if not transient or time.monotonic() >= deadline:
                raise RuntimeError(f"psql failed (exit {cp.returncode}): {cp.stderr.strip()}\nSQL: {sql}")
            time.sleep(1)

    # -- etcd -------------------------------------------------------------------------------

    def _etcdctl(self, *args: str, timeout: float = 15) -> subprocess.CompletedProcess:
        topo = self.topology()
        eps = ",".join(f"http://{r.host}:{r.etcd_client}" for r in topo.regions)
        return run(["etcdctl", f"--endpoints={eps}", "--dial-timeout=1s", "--command-timeout=5s", *args],
                   timeout=timeout, check=True, env={**os.environ, "ETCDCTL_API": "3"})

    def etcd_members(self) -> dict[str, str]:
        """{region: member id in hex} of the etcd cluster."""
        j = json.loads(self._etcdctl("member", "list", "-w", "json").stdout)
        return {m["name"]: format(m["ID"], "x") for m in j["members"]}

    def etcd_leader(self) -> str:
        """The region whose etcd member leads."""
        ids = {v: k for k, v in self.etcd_members().items()}
        st = json.loads(self._etcdctl("endpoint", "status", "-w", "json").stdout)
        return ids[format(st[0]["Status"]["leader"], "x")]

    def log_etcd_leader_changes(self) -> None:
        """Logs etcd's leader changes as each live member saw them since it started (its
        etcd_server_leader_changes_seen_total): an election nobody caused by killing or
        moving a leader is a member that missed heartbeats (a starved or slow etcd)."""
        topo = self.topology()
        seen = []
        for r in topo.regions:
            try:
                with urllib.request.urlopen(f"http://{r.host}:{r.etcd_client}/metrics", timeout=2) as resp:
                    text = resp.read().decode()
            except OSError:
                seen.append(f"{r.name} down")
                continue
            n = next((line.split()[-1] for line in text.splitlines()
                      if line.startswith("etcd_server_leader_changes_seen_total")), "?")
            seen.append(f"{r.name} {n}")
        log("etcd leader changes seen (per live member, since it started): " + ", ".join(seen))

    def etcd_move_leader(self, region: str) -> None:
        """Make `region`'s etcd member the leader (etcdctl move-leader), and wait for it."""
        if self.etcd_leader() == region:
            return
        self._etcdctl("move-leader", self.etcd_members()[region])
        wait_until(lambda: self.etcd_leader() == region, 15, 0.5, f"etcd leader in {region}")

    # -- roles and health --------------------------------------------------------------------

    @staticmethod
    def region(st: dict, name: str) -> dict:
        return next(r for r in st["regions"] if r["name"] == name)

    @staticmethod
    def role_of(st: dict, role: str) -> list[str]:
        return [r["name"] for r in st["regions"] if r["role"] == role]

    @staticmethod
    def fully_healthy(st: dict, max_lag: int = 256 * 1024) -> tuple[bool, str]:
        """healthy, every region up, every standby streaming with lag <= max_lag."""
        if not st.get("healthy"):
            return False, "status says not healthy"
        for r in st["regions"]:
            if r["role"] == "down":
                return False, f"{r['name']} is down"
            if r["role"] != "primary":
                if r.get("lag_bytes") is None or r["lag_bytes"] > max_lag:
                    return False, f"{r['name']} lags {r.get('lag_bytes')} bytes"
                if r.get("replication") != "streaming":
                    return False, f"{r['name']} replication is {r.get('replication')}"
            if not all(p["ready"] for p in r["portal_nodes"]):
                return False, f"a portal node of {r['name']} is not ready"
        if len(ClusterHandle.role_of(st, "primary")) != 1:
            return False, "not exactly one primary"
        return True, "ok"

    def wait_healthy(self, timeout: float = 120, repair_after: float | None = None) -> dict:
        """Waits until fully healthy; returns the status. With repair_after, runs `up`
        (idempotent) once if it is not healthy after that many seconds."""
        t0 = time.monotonic()
        repaired = repair_after is None
        last = "no status yet"
        while True:
            try:
                st = self.status()
                ok, last = self.fully_healthy(st)
                if ok:
                    return st
            except Exception as e:  # noqa: BLE001 - keep polling
                last = repr(e)
            el = time.monotonic() - t0
            if not repaired and el >= repair_after:
                repaired = True
                log(f"not healthy after {el:.0f}s ({last}): running `up`")
                try:
                    self.up(timeout=max(60, timeout - el))
                except Exception as e:  # noqa: BLE001
                    log(f"`up` failed: {e}")
            if time.monotonic() - t0 >= timeout:
                raise TimeoutError(f"cluster not fully healthy after {timeout:.0f}s: {last}")
            time.sleep(1)

    def haproxy_sessions(self) -> dict[str, int]:
        """Total sessions (stot) per portal node over all edge backends (runtime API)."""
        lines = haproxy_runtime(self.state / "haproxy" / "admin.sock", "show stat").splitlines()
        hdr = lines[0].lstrip("# ").split(",")
        out: dict[str, int] = {}
        for line in lines[1:]:
            f = dict(zip(hdr, line.split(",")))
            if f.get("pxname", "").startswith("portal-") and f.get("svname") not in ("FRONTEND", "BACKEND"):
                out[f["svname"]] = out.get(f["svname"], 0) + int(f.get("stot") or 0)
        return out

    def log_grep(self, name: str, needles: list[str], limit: int = 40) -> str:
        """Lines of logs/<name> that contain any of needles."""
        p = self.state / "logs" / name
        try:
            text = p.read_text(errors="replace").splitlines()
        except OSError:
            return f"({p} missing)"
        hits = [ln for ln in text if any(n in ln for n in needles)]
        return f"--- {p} ({len(hits)} matching lines):\n" + "\n".join(hits[:limit])

    def log_tail(self, name: str, lines: int = 30) -> str:
        p = self.state / "logs" / name
        try:
            data = p.read_bytes()[-64 * 1024:].decode("utf-8", "replace").splitlines()
        except OSError:
            return f"({p} missing)"
        return f"--- {p}:\n" + "\n".join(data[-lines:])

    def print_failure_logs(self, lines: int = 40) -> None:
        """For a failed test: the tails of the Patroni and etcd logs on stderr (CI keeps its
        output, not /tmp), and keep a copy of the logs when the cluster is closed."""
        self.failed = True
        logs = self.state / "logs"
        try:
            names = sorted(n for n in os.listdir(logs) if n.startswith(("patroni-", "etcd-")))
        except OSError:
            names = []
        for n in names:
            print(f"\n{self.log_tail(n, lines)}", file=sys.stderr, flush=True)

    # -- teardown -----------------------------------------------------------------------------

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            if self.owned and self.keep:
                log(f"CONTINUUM_CLUSTER_KEEP=1 / --keep: cluster left running in {self.state} "
                    f"(stop: scripts/cluster down --state {self.state})")
                return
            if not self.owned:
                return
            self.log_etcd_leader_changes()
            t0 = time.monotonic()
            if not self.failed:
                # Nothing of a passing module's cluster is kept: SIGKILL it all at once
                # (an orderly down took ~10 s per module; test_private_checkout tests that).
                # A module that marks its handle failed keeps the orderly down and its logs.
                pg_root = pg_root_of(self.state)   # read before the state folder goes
                try:
                    cp = self.cmd("destroy", "--kill", timeout=120, check=False)
                    if (cp.returncode == 0 and not processes_of(self.state, (pg_root,))
                            and not self.state.exists() and not pg_root.exists()):
                        log(f"cluster killed and {self.state} removed ({time.monotonic() - t0:.1f}s)")
                        return
                    log(f"destroy --kill left something (exit {cp.returncode}): {cp.stderr[-2000:]}")
                except (subprocess.TimeoutExpired, OSError) as e:
                    log(f"destroy --kill failed: {e}; an orderly down instead")
            try:
                self.down()
            except Exception as e:  # noqa: BLE001
                log(f"down failed: {e}")
            left = processes_of(self.state)
            if left:
                log(f"after down, {len(left)} processes of {self.state} remain: SIGKILL {left}")
                for p in left:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
                wait_until(lambda: not any(_alive(p) for p in left), 10, 0.1, "stragglers to die")
            if self.failed and (self.state / "logs").is_dir():
                kept = Path(f"{self.state}-logs")
                shutil.copytree(self.state / "logs", kept, dirs_exist_ok=True)
                for pg in pg_root_of(self.state).glob("*/pglog"):
                    shutil.copytree(pg, kept / f"pglog-{pg.parent.name}", dirs_exist_ok=True)
                log(f"a test failed: logs kept in {kept}")
            pg_root = pg_root_of(self.state)
            plan = self.topology().netns   # its network namespaces, if any (read before the folder goes)
            if plan is not None:
                try:
                    netns.teardown(plan)
                except Exception as e:  # noqa: BLE001
                    log(f"removing the network namespaces of {self.state} failed: {e}")
            if pg_root != self.state / "patroni" and (pg_root / "OWNER").exists():
                shutil.rmtree(pg_root, ignore_errors=True)
            shutil.rmtree(self.state, ignore_errors=True)
            log(f"cluster down and {self.state} removed ({time.monotonic() - t0:.1f}s)")
        finally:
            with _live_lock:
                _live.discard(self)


# --------------------------------------------------------------------------------------
# What the databases themselves say during a primary change


# Across a primary change, writes must be acknowledged again within this long of the new
# primary having completed a synchronous commit (clusterctl.PrimaryWatch): the portal's
# share (probes every 0.5 s, reconnects, the held commits' 100 ms barrier). The
# database's share before it (Patroni's leader race, PostgreSQL's promotion, a sync standby
# named by the new leader's next loop) is reported: on this loaded 2-core host it has run
# from 9 to over 15 s in a switchover (CI, stop 38: 15.3 s with every write acknowledged).
# The portal's share was 3.4-4.4 s in 5 of 20 switchovers (one test_3, four
# pg-maintenance) until its connects went past a host that accepts and closes (a stopped
# old primary behind its net-proxy: src/db/hosts.hpp; deploy/README "A primary change's
# write stall"); otherwise 1.7 s or less.
WRITE_RESUME_MAX_S = 3.0


class PrimaryWatch:
    """Polls the candidates' PostgreSQL directly (superuser, past the net-proxies) beside a
    failover or switchover, every `interval` seconds, until `timeout` or `stop()`:

    - `writable`: when the first answer that found a candidate out of recovery arrived
      (the new primary exists for any client: reads can go to it);
    - `sync_ready`: when the first answer that found it out of recovery with a synchronous
      standby named, after a synchronous commit, arrived (the portal acknowledges a
      clinical write only then: db::Connection::Run, require_sync_standby);
    - `region`: that candidate; `sync_last_no`: when the last answer that found no sync standby on it arrived. The
      moment itself lies between `sync_last_no` and `sync_ready`; a bound is judged from
      `sync_ready`, the latest it can be (the query's own latency, a few ms, in the
      portal's favour), and the log shows the bracket.

    Patroni's GET /primary answers 200 as soon as it holds the leader key, before `pg_ctl
    promote` ran (patroni/api.py 3.0.2: the status is the leader key's); on a loaded host
    PostgreSQL's promotion then took seconds, which no portal node can shorten, so a bound
    on the portal's own share starts from these."""

    # Out of recovery, a standby named, and a synchronous commit done: txid_current() gives
    # the statement's transaction an xid, so its commit (synchronous_commit = on) waits
    # until the named standby has flushed it, and psql prints the row only after the
    # commit (the answer follows ReadyForQuery). The same proof the portal's held commits
    # wait for (db::Connection::Run: a barrier committed while a standby is named). A
    # standby merely "streaming" in pg_stat_replication may not have flushed the commits
    # waiting on it yet.
    SQL = ("SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN false ELSE "
           "current_setting('synchronous_standby_names') <> '' AND txid_current() IS NOT NULL END")

    def __init__(self, c: ClusterHandle, candidates: list[str], timeout: float = 90,
                 interval: float = 0.1):
        regions = {r.name: r for r in c.topology().regions}
        self.targets = [(name, f"host={regions[name].host} port={regions[name].pg} user=postgres "
                         f"dbname=postgres connect_timeout=2") for name in candidates]
        self.env = dict(os.environ, PGPASSWORD=c.secrets()["SUPERUSER_PASSWORD"])
        self.timeout, self.interval = timeout, interval
        self.writable: float | None = None
        self.sync_ready: float | None = None
        self.sync_last_no: float | None = None
        self.region: str | None = None
        self.errors: dict[str, str] = {}   # each candidate's last psql error output
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        # One psql per candidate, kept open and fed a query per poll: a psql started per
        # poll cost ~30 ms of CPU (measured), ~0.3 of a core at this rate, enough to slow
        # the very promotion being timed on 2 cores. Started again after a lost connection,
        # at most once a second per candidate (a member restarting refuses for seconds).
        self._psql: dict[str, tuple[subprocess.Popen, object]] = {}
        self._next_start: dict[str, float] = {}

    def _ask(self, name: str, conninfo: str) -> tuple[bool, bool] | None:
        """(in recovery, a synchronous commit done), or None when it did not answer."""
        got = self._psql.get(name)
        if got is not None and got[0].poll() is not None:
            self._close(name)
            got = None
        if got is None:
            if time.monotonic() < self._next_start.get(name, 0.0):
                return None
            self._next_start[name] = time.monotonic() + 1.0
            err = tempfile.TemporaryFile()
            try:
                p = subprocess.Popen([PSQL, conninfo, "-X", "-A", "-t", "-q"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=err, env=self.env)
            except OSError as e:
                err.close()
                self.errors[name] = f"psql did not start: {e}"
                return None
            got = self._psql[name] = (p, err)
        p = got[0]
        line = b""
        try:
            p.stdin.write(self.SQL.encode() + b";\n")
            p.stdin.flush()
            end = time.monotonic() + 3
            while not line.endswith(b"\n"):
                left = end - time.monotonic()
                if left <= 0 or not select.select([p.stdout], [], [], left)[0]:
                    raise TimeoutError
                chunk = os.read(p.stdout.fileno(), 4096)
                if not chunk:
                    raise EOFError   # psql ended: the connection failed or was lost
                line += chunk
        except (OSError, TimeoutError, EOFError):
            self._close(name)
            return None
        recovery, _, sync = line.decode(errors="replace").strip().partition("|")
        return recovery == "t", sync == "t"

    def _close(self, name: str) -> None:
        got = self._psql.pop(name, None)
        if got is None:
            return
        p, err = got
        p.kill()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass
        for f in (p.stdin, p.stdout):
            try:
                f.close()
            except OSError:
                pass
        try:
            err.seek(0)
            text = err.read().decode(errors="replace").strip()
            if text:
                self.errors[name] = text[-500:]
            err.close()
        except OSError:
            pass

    def _watch(self) -> None:
        end = time.monotonic() + self.timeout
        try:
            while not self._stop.is_set() and time.monotonic() < end:
                for name, conninfo in self.targets:
                    got = self._ask(name, conninfo)
                    answered = time.monotonic()
                    if got is None or got[0]:
                        continue
                    if self.writable is None:
                        self.writable, self.region = answered, name
                    if name != self.region:
                        continue
                    if not got[1]:
                        self.sync_last_no = answered
                    else:
                        self.sync_ready = answered
                        return
                self._stop.wait(self.interval)
        finally:
            for name in list(self._psql):
                self._close(name)

    def start(self) -> "PrimaryWatch":
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def write_stall_problem(self, load, fig: dict, window_start: float, resume_max_s: float,
                            stall_max_s: float) -> tuple[str | None, str]:
        """Judges the load's write stalls (`load`'s records, `fig` from its figures(
        window_start=...)): (problem or None, a line for the log).

        - The stall across the primary change (from the last acknowledged write before the
          candidate was writable to the first after it) must end within resume_max_s of
          `sync_ready`: the portal's share (probes, reconnects, the held commits'
          barrier). What comes before (the old primary stopping, Patroni's leader race,
          PostgreSQL's promotion, a sync standby named) is the database's, and reported.
        - The longest stall, when it is another one, is bounded by stall_max_s (a write's
          deadline)."""
        if self.writable is None:
            return (f"no candidate answered out of recovery (psql: {self.errors or 'no error'})",
                    "write stall: the new primary was never seen")
        acked = sorted(r.answered for r in load.records("write") if r.ok and r.answered >= window_start)
        before = [t for t in acked if t <= self.writable]
        after = [t for t in acked if t > self.writable]
        prev = before[-1] if before else window_start
        if not after:
            return "no write was acknowledged after the new primary", "write stall: no write after the change"
        nxt = after[0]
        if self.sync_ready is None:
            return (f"{self.region} never completed a synchronous commit "
                    f"(psql: {self.errors or 'no error'})", f"write stall {nxt - prev:.2f}s; no sync standby seen")
        late = nxt - self.sync_ready
        rel = (lambda t: f"+{t - window_start:.1f}s")
        bracket = rel(self.sync_last_no) + ".." if self.sync_last_no is not None else ""
        line = (f"write stall across the change {nxt - prev:.2f}s from {rel(prev)}: {self.region} writable "
                f"{rel(self.writable)}, a sync standby {bracket}{rel(self.sync_ready)}, writes again "
                f"{late:+.2f}s after that (limit {resume_max_s:.1f}s); longest stall {fig['write_stall_s']:.2f}s "
                f"from +{fig['write_stall_at_s']:.1f}s")
        if late > resume_max_s:
            return (f"writes resumed {late:.2f}s after the new primary had a synchronous standby "
                    f"(limit {resume_max_s:.1f}s)"), line
        longest_start = window_start + fig["write_stall_at_s"]
        if abs(longest_start - prev) > 0.01 and fig["write_stall_s"] > stall_max_s:
            return (f"a write stall of {fig['write_stall_s']:.2f}s outside the primary change "
                    f"(limit {stall_max_s:.1f}s)"), line
        return None, line
