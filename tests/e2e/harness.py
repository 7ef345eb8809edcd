"""Black-box harness for Continuum's end-to-end suite (Python stdlib only).

A `Cluster` owns one temporary folder with everything a test needs:

    tmp/continuum-e2e-XXXX/
      pg/            throwaway PostgreSQL 15 (scripts/pg-tmp), migrated and seeded
      cluster.key    token signing key, shared by every node of the cluster
      node-1/        one folder per `continuum serve`: config.toml, stdout.log,
                     stderr.log, audit/ (the node's journal), ops.token (its [ops]
                     token_file, unless the test configures [ops] itself)

It starts PostgreSQL, runs `continuum migrate` and `continuum seed` (or copies a data folder
where the run's first class did that: CONTINUUM_E2E_TEMPLATES below), starts one or
more `continuum serve` processes on free ports and waits for /readyz. It offers request
helpers (JSON, FHIR, raw bytes over a socket), process control (SIGKILL, SIGTERM,
restart), PostgreSQL stop/start/kill and a psql helper for checks in SQL.

Every node has an ops token by default (`Server.ops_token`). /metrics and /readyz's full
body need it, so the request helpers send it on GET /readyz and /metrics when the test
passes no token of its own; `anonymous=True` sends no credentials at all (what HAProxy's
check or a stranger sees). A test that wants a node without [ops] passes {"ops": None}.

Everything it starts is stopped by PID: in `Cluster.close()` (test class cleanup), at
interpreter exit (atexit), when the runner receives SIGTERM/SIGHUP (turned into
KeyboardInterrupt so cleanup runs) and when the global deadline
(CONTINUUM_E2E_DEADLINE_S, default 1200 s) expires. Every wait has a timeout.

A binary built with ASan/UBSan (scripts/test's asan step) reports a memory error,
undefined behaviour or, at a graceful exit, a leak on its stderr; the process may even
exit 0 (UBSan without halt_on_error). `Cluster.close()` therefore reads every node's
stderr.log, and the harness every CLI run's stderr, for such a report and fails the
test class with it (the folder is kept so the whole log can be read).

Environment:
  CONTINUUM_BIN             binary under test (default: <repo>/build/continuum)
  CONTINUUM_E2E_KEEP=1      keep the temporary folders (logs, journals, postgres.log)
  CONTINUUM_E2E_DEADLINE_S  global deadline for the whole run
  CONTINUUM_E2E_TEMPLATES   a folder for migrated and seeded PostgreSQL data folders, one per
                            (binary, patients, facilities): the first class that needs one
                            builds it (initdb, `continuum migrate`, `continuum seed`, clean
                            shutdown), the others copy it instead of doing the same again.
                            tests/run_modules.py sets it for its run and removes it after.
"""

from __future__ import annotations

import atexit
import base64
import faulthandler
import fcntl
import hashlib
import http.client
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("CONTINUUM_BIN", str(REPO / "build" / "continuum")))
PG_TMP = REPO / "scripts" / "pg-tmp"
PSQL = shutil.which("psql") or "/usr/bin/psql"
PG_ISREADY = "/usr/lib/postgresql/15/bin/pg_isready"
DEMO_PASSWORD = "continuum-demo"
KEEP = os.environ.get("CONTINUUM_E2E_KEEP") == "1"
FHIR_JSON = "application/fhir+json"
# GETs of these paths carry the node's ops token unless the test says otherwise: their
# content (topology, errors, metrics) is for operators (README "Operations endpoints").
OPS_TOKEN_PATHS = ("/readyz", "/metrics")

# --------------------------------------------------------------------------------------
# Process-wide safety net: cleanup at exit, on SIGTERM/SIGHUP and at a global deadline.

_live: set = set()
_live_lock = threading.Lock()


def _register(obj) -> None:
    with _live_lock:
        _live.add(obj)


def _unregister(obj) -> None:
    with _live_lock:
        _live.discard(obj)


def cleanup_all() -> None:
    """Closes every live Cluster (stops servers and PostgreSQL). Idempotent."""
    with _live_lock:
        objs = list(_live)
    for obj in objs:
        try:
            obj.close()
        except Exception as e:  # noqa: BLE001 - cleanup must go on
            print(f"e2e cleanup: {obj!r}: {e}", file=sys.stderr)


atexit.register(cleanup_all)


def _raise_interrupt(signum, frame):
    # unittest swallows SystemExit inside a test but lets KeyboardInterrupt through;
    # the interpreter then unwinds and atexit stops everything we started.
    raise KeyboardInterrupt(f"e2e: received signal {signum}")


def _install_signal_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _raise_interrupt)


def _start_watchdog() -> None:
    deadline = float(os.environ.get("CONTINUUM_E2E_DEADLINE_S", "1200"))

    def fire():
        print(f"\ne2e: global deadline of {deadline:.0f}s reached; stopping", file=sys.stderr)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)  # main thread stuck in C code: clean up from here and leave
        cleanup_all()
        os._exit(124)

    t = threading.Timer(deadline, fire)
    t.daemon = True
    t.start()


_install_signal_handlers()
_start_watchdog()

# --------------------------------------------------------------------------------------
# Small utilities


def new_request_id() -> str:
    return "e2e-" + uuid.uuid4().hex


def listen_port_range() -> tuple[int, int]:
    """Where tests pick listening ports: from 20000 up to just below the kernel's ephemeral
    range (net.ipv4.ip_local_port_range, 32768-60999 by default). A port in the ephemeral
    range may be held for a moment by any outgoing connection on the machine, so a server
    started there fails to bind at random; bind(0) would pick exactly such a port."""
    try:
        lo = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        lo = 32768
    return 20000, max(20001, lo - 1)


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port(span: int = 1) -> int:
    """A random port (with `span - 1` free ports after it) below the ephemeral range, free
    right now. The caller binds it soon after; a lost race is retried by the caller."""
    lo, hi = listen_port_range()
    for _ in range(500):
        p = random.randrange(lo, hi - span + 2)
        if all(port_is_free(p + i) for i in range(span)):
            return p
    raise RuntimeError(f"no free port in {lo}-{hi}")


def stop_process(proc: subprocess.Popen | None, timeout: float = 10, name: str = "") -> int | None:
    """SIGTERM, wait; SIGKILL when it does not exit in time. Returns the exit code (None
    when there is no process)."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"e2e: {name or proc.args[0]} ignored SIGTERM for {timeout}s; SIGKILL", file=sys.stderr)
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


def wait_until(predicate, timeout: float, interval: float = 0.1, message: str = "condition"):
    """Polls predicate() until it returns a truthy value (returned) or timeout (raises)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - keep polling, report the last error
            last_exc = e
        if time.monotonic() >= deadline:
            extra = f" (last error: {last_exc!r})" if last_exc else ""
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {message}{extra}")
        time.sleep(interval)


def run(cmd, timeout: float, check: bool = False, **kw) -> subprocess.CompletedProcess:
    """subprocess.run with a mandatory timeout and captured text output."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    cp = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)
    if check and cp.returncode != 0:
        raise RuntimeError(
            f"command failed (exit {cp.returncode}): {' '.join(map(str, cmd))}\n"
            f"stdout: {cp.stdout[-2000:]}\nstderr: {cp.stderr[-4000:]}")
    return cp


def tail(path: Path, lines: int = 40) -> str:
    try:
        data = Path(path).read_bytes()[-64 * 1024:]
    except OSError:
        return "(missing)"
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


# A sanitizer report (ASan, LSan, UBSan) in a process's stderr.
SANITIZER_REPORT = re.compile(
    r"ERROR: (AddressSanitizer|LeakSanitizer)|SUMMARY: (AddressSanitizer|LeakSanitizer|"
    r"UndefinedBehaviorSanitizer)|^\S+:\d+:\d+: runtime error: ", re.M)


def sanitizer_report(text: str) -> str | None:
    """The first sanitizer report in `text` (up to 4000 characters of it), or None."""
    m = SANITIZER_REPORT.search(text)
    if not m:
        return None
    start = text.rfind("\n", 0, m.start()) + 1
    return text[start:start + 4000]


def require_binary() -> None:
    if not BINARY.is_file() or not os.access(BINARY, os.X_OK):
        raise RuntimeError(f"{BINARY} not found: build it first "
                           "(cmake -S . -B build -G Ninja && ninja -C build) or set CONTINUUM_BIN")


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"unsupported TOML value {v!r}")


def to_toml(cfg: dict) -> str:
    out = []

    def section(name, table):
        out.append(f"[{name}]")
        subs, arrays = [], []
        for k, v in table.items():
            if isinstance(v, dict):
                subs.append((f"{name}.{k}", v))
            elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
                arrays.append((f"{name}.{k}", v))  # an array of tables: [[name.k]]
            else:
                out.append(f"{k} = {_toml_value(v)}")
        out.append("")
        for sub_name, sub in subs:
            section(sub_name, sub)
        for arr_name, items in arrays:
            for item in items:
                out.append(f"[[{arr_name}]]")
                out.extend(f"{k} = {_toml_value(v)}" for k, v in item.items())
                out.append("")

    for name, table in cfg.items():
        section(name, table)
    return "\n".join(out)


def deep_merge(base: dict, extra: dict | None) -> dict:
    out = json.loads(json.dumps(base))
    for k, v in (extra or {}).items():
        if v is None:  # None removes a key: the server's own default applies
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


# --------------------------------------------------------------------------------------
# HTTP


class Response:
    """A complete HTTP response. `request_id` is the X-Request-Id the client sent."""

    def __init__(self, status, reason, headers, body: bytes, request_id=None, elapsed=0.0):
        self.status = status
        self.reason = reason
        self.headers = headers  # http.client.HTTPMessage (case-insensitive) or dict-like
        self.body = body
        self.request_id = request_id
        self.elapsed = elapsed

    def header(self, name, default=None):
        return self.headers.get(name, default)

    @property
    def content_type(self) -> str:
        return (self.header("Content-Type") or "").split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        body = self.text
        if len(body) > 600:
            body = body[:600] + "..."
        return f"<HTTP {self.status} {self.reason} rid={self.request_id} body={body!r}>"


class RawHeaders(dict):
    """Case-insensitive header map for responses read from a raw socket."""

    def get(self, name, default=None):
        return super().get(name.lower(), default)


def _read_raw_response(sock: socket.socket, deadline: float) -> tuple[bytes, bool]:
    """Reads until a complete response (Content-Length / chunked / close) or deadline.
    Returns (bytes, complete)."""
    buf = b""
    while True:
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buf[:head_end].decode("latin-1")
            m = re.search(r"(?im)^content-length:\s*(\d+)\s*$", head)
            body = buf[head_end + 4:]
            if m and len(body) >= int(m.group(1)):
                return buf, True
            if re.search(r"(?im)^transfer-encoding:\s*chunked", head) and body.endswith(b"0\r\n\r\n"):
                return buf, True
            status = head.split(" ", 2)[1] if " " in head else ""
            if not m and status in ("204", "304"):
                return buf, True
        left = deadline - time.monotonic()
        if left <= 0:
            return buf, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout, TimeoutError):
            return buf, False
        if not chunk:
            return buf, head_end >= 0
        buf += chunk


def parse_raw_response(data: bytes, request_id=None) -> Response | None:
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    lines = data[:head_end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        return None
    headers = RawHeaders()
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = data[head_end + 4:]
    if "chunked" in (headers.get("transfer-encoding") or "").lower():
        out, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        body = out
    elif headers.get("content-length"):
        body = body[:int(headers.get("content-length"))]
    return Response(int(parts[1]), parts[2] if len(parts) > 2 else "", headers, body, request_id)


class KeepAliveClient:
    """One persistent HTTP/1.1 connection (for load); reconnects after an error."""

    def __init__(self, port: int, timeout: float = 10.0):
        self.port = port
        self.timeout = timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None, token=None, request_id=None):
        rid = request_id or new_request_id()
        h = {"X-Request-Id": rid, "Accept": "application/json"}
        if token:
            h["Authorization"] = f"Bearer {token}"
        h.update(headers or {})
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        t0 = time.monotonic()
        try:
            self.conn.request(method, path, body=body, headers=h)
            r = self.conn.getresponse()
            data = r.read()
        except Exception:
            self.close()
            raise
        if r.will_close:
            self.close()
        return Response(r.status, r.reason, r.headers, data, rid, time.monotonic() - t0)

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None


# --------------------------------------------------------------------------------------
# PostgreSQL


class PgInstance:
    """A throwaway PostgreSQL started with scripts/pg-tmp in `dir`."""

    def __init__(self, dir: Path):
        self.dir = Path(dir)
        self.url = None

    def start(self, timeout: float = 120) -> str:
        cp = run([PG_TMP, "start", self.dir], timeout=timeout, check=True)
        self.url = cp.stdout.strip().splitlines()[-1]
        if not self.url.startswith("postgresql://"):
            raise RuntimeError(f"pg-tmp start printed {cp.stdout!r}")
        return self.url

    def as_role(self, role: str) -> str:
        """The URL as another role (pg-tmp creates both; src/audit/README.md): "continuum_owner"
        owns the database and runs migrate/seed, "continuum_portal" is what `continuum serve`
        connects as. `url` itself is the superuser's, for the tests' own SQL."""
        return self.url.replace("postgresql://postgres@", f"postgresql://{role}@", 1)

    @property
    def owner_url(self) -> str:
        return self.as_role("continuum_owner")

    @property
    def portal_url(self) -> str:
        return self.as_role("continuum_portal")

    def stop(self, timeout: float = 90) -> None:
        """Fast shutdown (pg_ctl -m fast); falls back to SIGKILL by PID."""
        try:
            run([PG_TMP, "stop", self.dir], timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        if self.postmaster_pid():
            self.kill()

    def postmaster_pid(self) -> int | None:
        try:
            pid = int((self.dir / "data" / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid

    def kill(self, timeout: float = 10) -> None:
        """SIGKILL the postmaster and its children (by PID, read from /proc)."""
        pid = self.postmaster_pid()
        if not pid:
            return
        children = _children_of(pid)
        for p in [pid] + children:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # Wait until the processes are gone from /proc (reaped, not zombies): PostgreSQL
        # refuses to start while the PID in postmaster.pid still exists.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in [pid] + children):
            time.sleep(0.05)

    def running(self) -> bool:
        if not self.url:
            return False
        port = urlsplit(self.url).port
        return run([PG_ISREADY, "-q", "-h", "127.0.0.1", "-p", port, "-U", "postgres"], timeout=10).returncode == 0

    def psql(self, sql: str, timeout: float = 30, database_url: str | None = None, **variables) -> str:
        """Runs SQL (from stdin, so :'var' interpolation works); returns unaligned,
        tuples-only output. Raises RuntimeError on any SQL error."""
        cmd = [PSQL, database_url or self.url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        for k, v in variables.items():
            cmd += ["-v", f"{k}={v}"]
        cp = subprocess.run(cmd, input=sql, capture_output=True, text=True, timeout=timeout)
        if cp.returncode != 0:
            raise RuntimeError(f"psql failed: {cp.stderr.strip()}\nSQL: {sql}")
        return cp.stdout

    def rows(self, sql: str, timeout: float = 30, **variables) -> list[dict]:
        """Rows of a SELECT as dicts (through json_agg, so types survive)."""
        inner = sql.strip().rstrip(";")
        out = self.psql(f"SELECT coalesce(json_agg(t), '[]'::json) FROM ({inner}) t;",
                        timeout=timeout, **variables)
        return json.loads(out.strip() or "[]")

    def scalar(self, sql: str, timeout: float = 30, **variables):
        rows = self.rows(sql, timeout=timeout, **variables)
        if not rows:
            return None
        return next(iter(rows[0].values()))


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    return out


# --------------------------------------------------------------------------------------
# continuum serve


class Server:
    """One `continuum serve` process of a Cluster."""

    def __init__(self, cluster: "Cluster", name: str, overrides: dict | None = None,
                 binary: Path | None = None):
        self.cluster = cluster
        self.name = name
        self.binary = Path(binary) if binary else BINARY  # another release: test_schema_compat
        self.dir = cluster.dir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.audit_dir = self.dir / "audit"
        self.config_path = self.dir / "config.toml"
        self.stdout_path = self.dir / "stdout.log"
        self.stderr_path = self.dir / "stderr.log"
        self.overrides = overrides or {}
        self.default_ops_token_path = self.dir / "ops.token"
        self.port = None
        self.proc: subprocess.Popen | None = None
        # A file descriptor for the server's stderr instead of stderr.log (e.g. the write
        # end of a pipe nobody reads, to show that logging never blocks requests).
        self.stderr_fd: int | None = None

    # -- configuration -----------------------------------------------------------------

    def config(self) -> dict:
        base = {
            "server": {"listen_address": "127.0.0.1", "listen_port": self.port, "threads": 2,
                       "body_limit_bytes": 65536},
            "node": {"region": "e2e", "node_id": self.name},
            "database": {"url": self.cluster.pg.portal_url},
            "auth": {"key_file": str(self.cluster.key_file), "session_idle_s": 900,
                     "session_absolute_s": 3600, "max_login_failures": 5, "lockout_s": 60,
                     # The suite logs in hundreds of users on a 2-core box: no CPU share
                     # for hashing here. The login-flood test (test_bulkhead) removes this
                     # and runs the node's defaults.
                     "login_cpu_percent": 100},
            "audit": {"enabled": True, "dir": str(self.audit_dir), "ship_interval_ms": 100},
            "ops": {"token_file": str(self.default_ops_token_path)},
        }
        # A key overridden with None is left out (deep_merge), e.g. {"ops": None}: no ops
        # token; {"auth": {"login_cpu_percent": None}}: the node's default.
        return deep_merge(base, self.overrides)

    @property
    def ops_token(self) -> str | None:
        """The token of this node's [ops] token_file (the harness's own or the test's), or
        None when the node has no [ops] section."""
        f = self.config().get("ops", {}).get("token_file")
        if not f:
            return None
        try:
            return Path(f).read_text().strip() or None
        except OSError:
            return None

    @property
    def body_limit(self) -> int:
        return self.config()["server"]["body_limit_bytes"]

    def write_config(self) -> None:
        cfg = self.config()
        if cfg.get("ops", {}).get("token_file") == str(self.default_ops_token_path) and \
                not self.default_ops_token_path.exists():
            fd = os.open(self.default_ops_token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
        self.config_path.write_text(to_toml(cfg))

    # -- process control ---------------------------------------------------------------

    def start(self, wait: bool = True, timeout: float = 30, new_port: bool = False) -> "Server":
        require_binary()
        if self.alive():
            raise RuntimeError(f"{self.name} already running (pid {self.proc.pid})")
        for attempt in range(3):
            if self.port is None or new_port or attempt > 0:
                self.port = free_port()
            self.write_config()
            with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
                marker = f"\n==== e2e: start {time.strftime('%H:%M:%S')} port {self.port}\n".encode()
                out.write(marker)
                err.write(marker)
                out.flush()
                err.flush()
                self.proc = subprocess.Popen(
                    [str(self.binary), "serve", "--config", str(self.config_path)],
                    stdin=subprocess.DEVNULL, stdout=out,
                    stderr=err if self.stderr_fd is None else self.stderr_fd, cwd=self.dir,
                    start_new_session=True)
            if not wait:
                return self
            try:
                self.wait_ready(timeout)
                return self
            except RuntimeError:
                if not self.alive() and re.search(r"(?i)address (already )?in use", tail(self.stderr_path, 20)):
                    continue  # lost the race for the free port: pick another one
                raise
        raise RuntimeError(f"{self.name}: could not bind a free port")

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before ready\n"
                                   f"stderr:\n{tail(self.stderr_path)}\nstdout:\n{tail(self.stdout_path)}")
            try:
                if self.get("/readyz", timeout=2, anonymous=True).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout}s\n"
                           f"stderr:\n{tail(self.stderr_path)}\nstdout:\n{tail(self.stdout_path)}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def signal(self, sig) -> None:
        if self.alive():
            os.kill(self.proc.pid, sig)

    def kill9(self, timeout: float = 10) -> int | None:
        """SIGKILL (crash); returns the exit status (negative signal number)."""
        if not self.proc:
            return None
        self.signal(signal.SIGKILL)
        return self.wait(timeout)

    def terminate(self) -> None:
        """Sends SIGTERM (graceful shutdown) without waiting."""
        self.signal(signal.SIGTERM)

    def wait(self, timeout: float = 20) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM, wait; SIGKILL if it does not exit in time. Returns the exit code."""
        if not self.proc:
            return None
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.terminate()
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"e2e: {self.name} ignored SIGTERM for {timeout}s; SIGKILL", file=sys.stderr)
            return self.kill9()

    def restart(self, kill: bool = True, timeout: float = 30) -> "Server":
        if self.alive():
            self.kill9() if kill else self.stop()
        return self.start(timeout=timeout)

    def log_tail(self, lines: int = 40) -> str:
        return (f"--- {self.name} stderr ({self.stderr_path}):\n{tail(self.stderr_path, lines)}\n"
                f"--- {self.name} stdout ({self.stdout_path}):\n{tail(self.stdout_path, lines)}")

    # -- HTTP ----------------------------------------------------------------------------

    def request(self, method: str, path: str, body=None, headers: dict | None = None,
                token: str | None = None, timeout: float = 10, request_id: str | None = None,
                port: int | None = None, anonymous: bool = False) -> Response:
        """One request on a fresh connection. Sends a new X-Request-Id unless given
        (request_id="" sends none). `body` may be bytes, str, or a dict/list (JSON).
        GET /readyz and /metrics carry the node's ops token unless a token is given or
        `anonymous` (no credentials at all)."""
        h = {"Accept": "application/fhir+json, application/json"}
        rid = new_request_id() if request_id is None else request_id
        if rid:
            h["X-Request-Id"] = rid
        if anonymous:
            token = None
        elif token is None and method == "GET" and urlsplit(path).path in OPS_TOKEN_PATHS:
            token = self.ops_token
        if token:
            h["Authorization"] = f"Bearer {token}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        elif isinstance(body, str):
            body = body.encode()
        h.update(headers or {})
        h = {k: v for k, v in h.items() if v is not None}
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=timeout)
        t0 = time.monotonic()
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, r.reason, r.headers, data, rid, time.monotonic() - t0)
        finally:
            conn.close()

    def get(self, path, token=None, **kw) -> Response:
        return self.request("GET", path, token=token, **kw)

    def post_json(self, path, obj, token=None, content_type="application/json", headers=None, **kw):
        h = {"Content-Type": content_type}
        h.update(headers or {})
        return self.request("POST", path, body=json.dumps(obj).encode(), token=token, headers=h, **kw)

    def delete(self, path, token=None, **kw) -> Response:
        return self.request("DELETE", path, token=token, **kw)

    def fhir(self, path: str, token=None, params: dict | None = None, **kw) -> Response:
        p = "/fhir/R4/" + path.lstrip("/")
        if params:
            p += ("&" if "?" in p else "?") + urlencode(params)
        return self.get(p, token=token, **kw)

    def login_response(self, username: str, password: str = DEMO_PASSWORD,
                       retry_throttled: bool = True, max_wait: float = 40, **kw) -> Response:
        """POST /api/v1/session; waits out 429 (Retry-After) unless retry_throttled=False."""
        deadline = time.monotonic() + max_wait
        while True:
            r = self.post_json("/api/v1/session", {"username": username, "password": password}, **kw)
            if r.status != 429 or not retry_throttled or time.monotonic() >= deadline:
                return r
            try:
                wait = float(r.header("Retry-After") or 1)
            except ValueError:
                wait = 1.0
            time.sleep(max(0.2, min(wait, deadline - time.monotonic())))

    def login(self, username: str, password: str = DEMO_PASSWORD) -> str:
        r = self.login_response(username, password)
        if r.status != 200:
            raise AssertionError(f"login {username} failed: {r!r}")
        token = r.json().get("access_token")
        if not token:
            raise AssertionError(f"login {username}: no access_token in {r!r}")
        return token

    def logout(self, token: str) -> Response:
        return self.delete("/api/v1/session", token=token)

    def raw(self, data: bytes | list, timeout: float = 10, pause: float = 0.0,
            request_id=None) -> Response | None:
        """Sends bytes over a fresh socket (a list = chunks sent `pause` s apart) and
        reads one response. Tolerates the server closing early (e.g. 413 before the whole
        body is read). Returns None if no parsable response arrived."""
        chunks = data if isinstance(data, list) else [data]
        deadline = time.monotonic() + timeout
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            for i, chunk in enumerate(chunks):
                if i and pause:
                    time.sleep(pause)
                try:
                    s.sendall(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    break
            buf, _ = _read_raw_response(s, deadline)
        return parse_raw_response(buf, request_id)

    def client(self, timeout: float = 10) -> KeepAliveClient:
        return KeepAliveClient(self.port, timeout)

    # -- audit ---------------------------------------------------------------------------

    def journal_files(self) -> list[Path]:
        """Files under the audit dir whose first line is a JSON journal record."""
        out = []
        if not self.audit_dir.exists():
            return out
        for p in sorted(self.audit_dir.rglob("*")):
            if not p.is_file():
                continue
            try:
                with open(p, "rb") as f:
                    first = f.readline()
                rec = json.loads(first)
            except (OSError, ValueError):
                continue
            if isinstance(rec, dict) and "seq" in rec and "hash" in rec:
                out.append(p)
        return out

    def journal_bytes(self) -> bytes:
        """The journal's records: every segment without the zero-filled space an open
        journal keeps ahead of its writes ([audit] preallocate_kb)."""
        return b"".join(p.read_bytes().rstrip(b"\0") for p in self.journal_files())

    def journal_records(self) -> list[tuple[Path, int, bytes, dict]]:
        """(file, byte offset, raw line, parsed record) for every complete journal line."""
        out = []
        for p in self.journal_files():
            data = p.read_bytes()
            off = 0
            for line in data.split(b"\n"):
                if line.strip():
                    try:
                        out.append((p, off, line, json.loads(line)))
                    except ValueError:
                        pass
                off += len(line) + 1
        return out


# --------------------------------------------------------------------------------------
# Cluster


class Cluster:
    """PostgreSQL + migrated/seeded database + any number of `continuum serve` nodes."""

    def __init__(self, patients: int = 300, facilities: int = 4, label: str = "e2e"):
        self.patients = patients
        self.facilities = facilities
        self.dir = Path(tempfile.mkdtemp(prefix=f"continuum-{label}-"))
        os.chmod(self.dir, 0o755)  # postgres must traverse into pg/
        self.pg = PgInstance(self.dir / "pg")
        self.key_file = self.dir / "cluster.key"
        self.servers: list[Server] = []
        self.closed = False
        self.failed = False  # set by tests: keeps logs visible
        self.sanitizer_reports: list[str] = []  # from CLI runs and, at close, node stderr
        _register(self)

    def __repr__(self):
        return f"<Cluster {self.dir}>"

    @property
    def url(self) -> str:
        return self.pg.url

    def start(self, migrate: bool = True, seed: bool = True) -> "Cluster":
        templates = os.environ.get("CONTINUUM_E2E_TEMPLATES")
        if migrate and seed and templates:
            self._copy_template(Path(templates))
            self.pg.start()
            return self
        self.pg.start()
        if migrate:
            self.migrate()
        if seed:
            self.seed()
        return self

    def _copy_template(self, root: Path) -> None:
        """Puts a copy of the migrated and seeded data folder for this binary, patient and
        facility count into pg/data, building it first when no class of the run has. What a
        class gets is what `migrate` and `seed` would have made here: the same binary ran
        them on an empty database, and the copy is taken after a clean shutdown."""
        require_binary()
        st = BINARY.resolve().stat()
        key = hashlib.sha256(f"{BINARY.resolve()}|{st.st_mtime_ns}|{st.st_size}|{self.patients}|"
                             f"{self.facilities}".encode()).hexdigest()[:16]
        done = root / key
        with open(root / f"{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another module of the run may be building it
            if not (done / "pg" / "data" / "PG_VERSION").exists():
                build = root / f"{key}.build"
                shutil.rmtree(build, ignore_errors=True)
                build.mkdir(mode=0o755)
                pg = PgInstance(build / "pg")
                try:
                    pg.start()
                    self.migrate(pg.owner_url)
                    self.seed(pg.owner_url)
                finally:
                    pg.stop()
                # Only a clean shutdown makes a folder to copy (pg.stop falls back to SIGKILL,
                # which leaves postmaster.pid and a database that needs recovery).
                if (build / "pg" / "data" / "postmaster.pid").exists():
                    raise RuntimeError(f"template PostgreSQL in {build} did not shut down cleanly")
                os.rename(build, done)
        self.pg.dir.mkdir(mode=0o755)
        if os.geteuid() == 0:   # pg-tmp runs PostgreSQL as postgres when we are root
            shutil.chown(self.pg.dir, "postgres", "postgres")
        run(["cp", "-a", done / "pg" / "data", self.pg.dir / "data"], timeout=60, check=True)
        # pg-tmp's config names the folder of the server's socket: this copy's own.
        conf = self.pg.dir / "data" / "postgresql.conf"
        text = conf.read_text()
        old = f"unix_socket_directories = '{root.resolve() / (key + '.build') / 'pg'}'"
        if old not in text:
            raise RuntimeError(f"template config without {old!r}")
        conf.write_text(text.replace(old, f"unix_socket_directories = '{self.pg.dir.resolve()}'"))

    def cli(self, *args, timeout: float = 120, check: bool = False,
            binary: Path | None = None) -> subprocess.CompletedProcess:
        require_binary()
        try:
            cp = run([str(binary or BINARY), *args], timeout=timeout, check=check, cwd=self.dir)
        except RuntimeError as e:
            self._note_sanitizer(f"continuum {args[0] if args else ''}", str(e))
            raise
        self._note_sanitizer(f"continuum {args[0] if args else ''}", cp.stderr)
        return cp

    def _note_sanitizer(self, what: str, stderr: str) -> None:
        report = sanitizer_report(stderr or "")
        if report:
            self.sanitizer_reports.append(f"{what}:\n{report}")
            print(f"\ne2e: sanitizer report from {what}:\n{report}", file=sys.stderr)

    def migrate(self, database_url: str | None = None) -> subprocess.CompletedProcess:
        return self.cli("migrate", "--database-url", database_url or self.pg.owner_url, timeout=120,
                        check=True)

    def seed(self, database_url: str | None = None, patients: int | None = None,
             facilities: int | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return self.cli("seed", "--database-url", database_url or self.pg.owner_url,
                        "--patients", str(patients or self.patients),
                        "--facilities", str(facilities or self.facilities), timeout=600, check=check)

    def add_server(self, name: str = "node-1", overrides: dict | None = None,
                   start: bool = True, binary: Path | None = None) -> Server:
        s = Server(self, name, overrides, binary)
        self.servers.append(s)
        if start:
            s.start()
        return s

    def audit_verify(self, *journal_dirs, timeout: float = 120) -> subprocess.CompletedProcess:
        dirs = journal_dirs or [s.audit_dir for s in self.servers]
        args = ["audit", "verify", "--database-url", self.url]
        # The operators' pinned keys: each node's head-signing public key (the nodes
        # create their keys at start; a node never started has none to pin).
        lines = []
        for s in self.servers:
            key = s.dir / f"audit-signing-{s.name}.key"
            if key.exists():
                cp = self.cli("audit", "pubkey", "--key-file", str(key), "--node-id", s.name, check=True)
                lines.append(cp.stdout.strip())
        if lines:
            trusted = self.dir / "trusted-audit-keys"
            trusted.write_text("\n".join(lines) + "\n")
            args += ["--trusted-keys", str(trusted)]
        for d in dirs:
            args += ["--journal", str(d)]
        return self.cli(*args, timeout=timeout)

    # -- SQL shortcuts -------------------------------------------------------------------

    def sql(self, sql: str, **variables) -> str:
        return self.pg.psql(sql, **variables)

    def rows(self, sql: str, **variables) -> list[dict]:
        return self.pg.rows(sql, **variables)

    def scalar(self, sql: str, **variables):
        return self.pg.scalar(sql, **variables)

    def audit_rows(self, request_id: str) -> list[dict]:
        return self.rows("SELECT * FROM audit_event WHERE request_id = :'rid' ORDER BY node_id, seq",
                         rid=request_id)

    def wait_audit(self, request_id: str, timeout: float = 10, predicate=None,
                   attempts: bool = False) -> list[dict]:
        """Waits until audit_event holds a row for request_id (matching predicate). A write's
        "attempt" record (durable before the write is sent) is left out unless `attempts`:
        the row waited for is the request's outcome."""
        def found():
            rows = self.audit_rows(request_id)
            rows = [r for r in rows if (attempts or r["outcome"] != "attempt")
                    and (predicate is None or predicate(r))]
            return rows
        return wait_until(found, timeout, 0.2, f"audit_event row for request {request_id}")

    # -- teardown ------------------------------------------------------------------------

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for s in self.servers:
            try:
                s.stop(timeout=15)
            except Exception as e:  # noqa: BLE001
                print(f"e2e: stopping {s.name}: {e}", file=sys.stderr)
        for s in self.servers:  # every run of every node appends to its stderr.log
            try:
                text = s.stderr_path.read_bytes().decode("utf-8", "replace")
            except OSError:
                continue
            self._note_sanitizer(f"{s.name} ({s.stderr_path})", text)
        try:
            self.pg.stop()
        except Exception as e:  # noqa: BLE001
            print(f"e2e: stopping PostgreSQL: {e}", file=sys.stderr)
            self.pg.kill()
        _unregister(self)
        if KEEP or self.sanitizer_reports:
            print(f"e2e: kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        if self.sanitizer_reports:
            raise AssertionError(f"sanitizer report(s) from the processes under test (logs kept in "
                                 f"{self.dir}):\n" + "\n".join(self.sanitizer_reports))


# --------------------------------------------------------------------------------------
# unittest base class and FHIR assertions


class ContinuumTestCase(unittest.TestCase):
    """One Cluster per test class: PostgreSQL, migrated, seeded, one node started."""

    PATIENTS = 300
    FACILITIES = 4
    SERVER_OVERRIDES: dict = {}
    START_SERVER = True

    cluster: Cluster
    server: Server

    @classmethod
    def setUpClass(cls):
        require_binary()
        cls.cluster = Cluster(cls.PATIENTS, cls.FACILITIES, label=cls.__name__.lower()[:24])
        cls.addClassCleanup(cls.cluster.close)
        cls.cluster.start()
        cls._tokens = {}
        if cls.START_SERVER:
            cls.server = cls.cluster.add_server("node-1", cls.SERVER_OVERRIDES)

    def tearDown(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is not None and not getattr(outcome, "success", True):
            for s in self.cluster.servers:
                print(f"\n{s.log_tail(30)}", file=sys.stderr)

    # -- helpers ---------------------------------------------------------------------------

    @classmethod
    def token(cls, username: str, server: Server | None = None) -> str:
        """A cached token for username (log in once per class and server)."""
        server = server or cls.server
        key = (server.name, username)
        if key not in cls._tokens:
            cls._tokens[key] = server.login(username)
        return cls._tokens[key]

    def assertOperationOutcome(self, r: Response, status: int | tuple, code: str | None = None):
        statuses = status if isinstance(status, tuple) else (status,)
        self.assertIn(r.status, statuses, r)
        self.assertIn(r.content_type, ("application/fhir+json", "application/json"),
                      f"error content type: {r!r}")
        try:
            oo = r.json()
        except ValueError:
            self.fail(f"error body is not JSON: {r!r}")
        self.assertEqual(oo.get("resourceType"), "OperationOutcome", r)
        issues = oo.get("issue")
        self.assertTrue(isinstance(issues, list) and issues, f"OperationOutcome without issue: {r!r}")
        self.assertIn(issues[0].get("severity"), ("error", "fatal"), r)
        self.assertTrue(issues[0].get("code"), f"issue without code: {r!r}")
        if code:
            self.assertEqual(issues[0].get("code"), code, r)
        return oo

    def assertBundle(self, r: Response, status: int = 200) -> dict:
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.content_type, FHIR_JSON, f"content type: {r!r}")
        b = r.json()
        self.assertEqual(b.get("resourceType"), "Bundle", r)
        for e in b.get("entry", []) or []:
            self.assertIn("resource", e, f"bundle entry without resource: {e}")
        return b

    def assertEchoesRequestId(self, r: Response):
        if r.request_id:
            self.assertEqual(r.header("X-Request-Id"), r.request_id, f"X-Request-Id not echoed: {r!r}")

    def fetch_all(self, path: str, token: str, params: dict | None = None, max_pages: int = 50,
                  server: Server | None = None) -> tuple[list[dict], dict]:
        """Follows Bundle link next; returns (resources, first bundle)."""
        server = server or self.server
        r = server.fhir(path, token=token, params=params)
        first = self.assertBundle(r)
        b, resources = first, []
        for _ in range(max_pages):
            resources += [e["resource"] for e in b.get("entry", []) or []]
            nxt = next((l.get("url") for l in b.get("link", []) or [] if l.get("relation") == "next"), None)
            if not nxt:
                return resources, first
            u = urlsplit(nxt)
            path_q = u.path + (("?" + u.query) if u.query else "")
            b = self.assertBundle(server.get(path_q, token=token))
        self.fail(f"more than {max_pages} pages for {path}")


def resources_of(bundle: dict, resource_type: str | None = None) -> list[dict]:
    res = [e["resource"] for e in bundle.get("entry", []) or [] if "resource" in e]
    if resource_type:
        res = [r for r in res if r.get("resourceType") == resource_type]
    return res


def reference_of(value) -> str | None:
    """The reference string of a Reference (or of the first of a list of them)."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        return value.get("reference")
    return None


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def note_body(patient_id: str, text: str, title: str = "Progress note", **extra) -> dict:
    body = {
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "preliminary",
        "subject": {"reference": f"Patient/{patient_id}"},
        "content": [{"attachment": {"contentType": "text/plain", "data": b64(text), "title": title}}],
    }
    body.update(extra)
    return body


def q(s: str) -> str:
    """Percent-encodes a path segment."""
    return quote(s, safe="")
