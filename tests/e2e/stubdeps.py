"""`continuum stub-deps` as a test fixture: the stand-in external dependencies (EHR,
pharmacy, insurance, payments, SMS, SMTP) on a free port range, with helpers for the
admin API (fault modes, received logs). Reusable by any suite that needs them:

    deps = StubDeps().start()          # registered with the harness's cleanup
    deps.set_fault("payments", "error")
    deps.port("payments"), deps.url("ehr"), deps.log("payments")
    deps.close()                       # SIGTERM, then SIGKILL; by PID

Its folder (/tmp/continuum-stubdeps-XXXX/) holds stderr.log (JSON lines) and, with
data_dir=True, the data directory. Kept when CONTINUUM_E2E_KEEP=1.

TLS (the default, tls=True): the fixture makes its own test CA in its folder
(scripts/test-ca DIR/tls: one CA per fixture, never shared), the stand-ins serve HTTPS on
the dependency ports and offer SMTP STARTTLS, and deps.dependency(name) is the portal's
[dependencies.<name>] table for it (https:// or smtp:// URL and ca_file = the fixture's
CA). The admin port stays plain HTTP. tls=False: plain stand-ins (their own protocol
tests), and dependency() then sets allow_plaintext = true.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness

OFFSETS = {"admin": 0, "ehr": 1, "pharmacy": 2, "insurance": 3, "payments": 4, "sms": 5, "smtp": 25}
DEPENDENCIES = ["ehr", "pharmacy", "insurance", "payments", "sms", "smtp"]


def free_base_port() -> int:
    """A base port whose whole range (base .. base+25) is free right now, below the kernel's
    ephemeral port range (harness.listen_port_range)."""
    lo, hi = harness.listen_port_range()
    for _ in range(200):
        base = random.randrange(lo, hi - 25)
        if all(harness.port_is_free(base + o) for o in OFFSETS.values()):
            return base
    raise RuntimeError("no free port range for stub-deps")


class HttpResult:
    def __init__(self, status: int, headers, body: bytes, elapsed: float):
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed = elapsed

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<HTTP {self.status} {self.body[:400]!r}>"


def make_test_ca(folder: Path, san: str | None = None) -> Path:
    """scripts/test-ca into `folder`: ca.pem, server.pem, server.key."""
    cmd = [str(harness.REPO / "scripts" / "test-ca"), str(folder)] + ([san] if san else [])
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    return folder


def http_request(port: int, method: str, path: str, body=None, headers=None,
                 timeout: float = 10.0, ssl_context: ssl.SSLContext | None = None) -> HttpResult:
    """One request on a fresh connection (HTTPS with `ssl_context`). Raises OSError
    (refused, timed out, certificate) as is."""
    h = dict(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        h.setdefault("Content-Type", "application/json")
    if ssl_context is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=ssl_context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t0 = time.monotonic()
    try:
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        payload = r.read()
        return HttpResult(r.status, r.headers, payload, time.monotonic() - t0)
    finally:
        conn.close()


class StubDeps:
    def __init__(self, update_interval_ms: int = 0, data_dir: bool = False, patients: int = 300,
                 label: str = "stubdeps", facilities: int | None = None, seed: int | None = None,
                 tls: bool = True, tls_dir: Path | None = None):
        self.update_interval_ms = update_interval_ms
        self.patients = patients
        self.facilities = facilities  # None: the stand-in's default
        self.seed = seed
        self.dir = Path(tempfile.mkdtemp(prefix=f"continuum-{label}-"))
        self.data_dir = self.dir / "data" if data_dir else None
        self.stderr_path = self.dir / "stderr.log"
        self.base = None
        self.proc: subprocess.Popen | None = None
        self.closed = False
        harness._register(self)
        self.tls_dir = None
        if tls:  # tls_dir: serve another fixture's certificate (or a hand-made one)
            self.tls_dir = Path(tls_dir) if tls_dir else make_test_ca(self.dir / "tls")

    def __repr__(self):
        return f"<StubDeps {self.dir} base={self.base}>"

    # -- process control -----------------------------------------------------------------

    def start(self, timeout: float = 20, keep_port: bool = False) -> "StubDeps":
        harness.require_binary()
        for attempt in range(3):
            if not keep_port or self.base is None or attempt > 0:
                self.base = free_base_port()
            cmd = [str(harness.BINARY), "stub-deps", "--listen", "127.0.0.1",
                   "--base-port", str(self.base), "--ehr-patients", str(self.patients),
                   "--ehr-update-interval-ms", str(self.update_interval_ms)]
            if self.facilities is not None:
                cmd += ["--ehr-facilities", str(self.facilities)]
            if self.seed is not None:
                cmd += ["--seed", str(self.seed)]
            if self.data_dir:
                cmd += ["--data-dir", str(self.data_dir)]
            if self.tls_dir:
                cmd += ["--tls-cert", str(self.tls_dir / "server.pem"),
                        "--tls-key", str(self.tls_dir / "server.key")]
            with open(self.stderr_path, "ab") as err:
                err.write(f"\n==== e2e: start {time.strftime('%H:%M:%S')} base {self.base}\n".encode())
                err.flush()
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                             cwd=self.dir, start_new_session=True)
            try:
                self.wait_ready(timeout)
                return self
            except RuntimeError:
                if not self.alive() and re.search(r"(?i)address (already )?in use",
                                                  harness.tail(self.stderr_path, 5)):
                    continue  # lost the race for the range: pick another
                raise
        raise RuntimeError("stub-deps: could not bind a free port range")

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"stub-deps exited with {self.proc.returncode} before ready:\n"
                                   f"{harness.tail(self.stderr_path)}")
            try:
                if http_request(self.base, "GET", "/healthz", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"stub-deps not ready after {timeout}s:\n{harness.tail(self.stderr_path)}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM, wait; SIGKILL when it does not exit in time. Returns the exit code."""
        return harness.stop_process(self.proc, timeout, "stub-deps")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.stop()
        finally:
            harness._unregister(self)
            if harness.KEEP:
                print(f"e2e: kept {self.dir}", file=sys.stderr)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    # -- addresses and the admin API -----------------------------------------------------

    def port(self, name: str) -> int:
        return self.base + OFFSETS[name]

    @property
    def ca_file(self) -> Path | None:
        return self.tls_dir / "ca.pem" if self.tls_dir else None

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def dependency(self, name: str, **extra) -> dict:
        """The portal's [dependencies.<name>] table for this stand-in."""
        port = self.port(name)
        if name == "smtp":
            d = {"url": f"smtp://127.0.0.1:{port}"}
        elif self.tls_dir:
            d = {"url": f"https://127.0.0.1:{port}"}
        else:
            d = {"url": f"http://127.0.0.1:{port}"}
        if self.tls_dir:
            d["ca_file"] = str(self.ca_file)
        else:
            d["allow_plaintext"] = True
        d.update(extra)
        return d

    def request(self, name: str, method: str, path: str, body=None, headers=None,
                timeout: float = 10.0) -> HttpResult:
        ctx = self.ssl_context() if self.tls_dir and name not in ("admin", "smtp") else None
        return http_request(self.port(name), method, path, body, headers, timeout, ctx)

    def admin(self, method: str, path: str, body=None) -> HttpResult:
        return self.request("admin", method, path, body)

    def set_fault(self, dependency: str, mode: str, delay_ms: int | None = None) -> dict:
        body = {"mode": mode}
        if delay_ms is not None:
            body["delay_ms"] = delay_ms
        r = self.admin("PUT", f"/admin/faults/{dependency}", body)
        if r.status != 200:
            raise RuntimeError(f"setting {dependency} to {mode}: {r!r}")
        return r.json()

    def reset(self) -> None:
        r = self.admin("DELETE", "/admin/faults")
        if r.status != 200:
            raise RuntimeError(f"resetting faults: {r!r}")
        for d in DEPENDENCIES:
            self.admin("DELETE", f"/admin/log/{d}")

    def log(self, dependency: str) -> list[dict]:
        r = self.admin("GET", f"/admin/log/{dependency}")
        if r.status != 200:
            raise RuntimeError(f"reading the {dependency} log: {r!r}")
        return r.json()["entries"]

    def access_lines(self) -> list[dict]:
        out = []
        for line in self.stderr_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out
