"""Latency of critical reads with and without a load, measured once in interleaved
windows (off, on, off, on, ...) so that whatever else the machine does (other builds on
a shared 2-core box) weighs on both sides alike. Used by the bulkhead tests.

Every read counts: an error status, a connection error or a timeout is a failure (kept,
never dropped from the figures), and the run must collect a minimum number of samples
per side. The figures compare p99 of the "on" windows with p99 of the "off" windows of
the same run; the first `settle_s` of each window (the load starting or draining) is
left out of both."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from harness import KeepAliveClient


def percentile(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


@dataclass
class Sample:
    start: float
    latency: float
    ok: bool
    detail: str = ""


class Readers:
    """`n` threads reading `/fhir/R4/Patient/{pid}/$summary` back to back, each on its
    own keep-alive connection, until stop(). Every attempt is a Sample."""

    def __init__(self, port: int, tokens: list[tuple[str, str]], n: int = 4, timeout: float = 5.0):
        self.port, self.tokens, self.n, self.timeout = port, tokens, n, timeout
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(n)]

    def _run(self, i):
        tok, pid = self.tokens[i % len(self.tokens)]
        client = KeepAliveClient(self.port, timeout=self.timeout)
        try:
            while not self._stop.is_set():
                t0 = time.monotonic()
                try:
                    r = client.request("GET", f"/fhir/R4/Patient/{pid}/$summary", token=tok)
                    s = Sample(t0, time.monotonic() - t0, r.status == 200,
                               "" if r.status == 200 else f"status {r.status}")
                except Exception as e:  # a timeout or a broken connection: a failure
                    s = Sample(t0, time.monotonic() - t0, False, f"{type(e).__name__}: {e}")
                with self._lock:
                    self.samples.append(s)
        finally:
            client.close()

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)
        alive = [t for t in self._threads if t.is_alive()]
        if alive:
            raise AssertionError(f"{len(alive)} reader threads did not finish")


@dataclass
class Comparison:
    off: list[float] = field(default_factory=list)
    on: list[float] = field(default_factory=list)
    failures: list[Sample] = field(default_factory=list)
    total: int = 0

    def p(self, side, q):
        return percentile(getattr(self, side), q) * 1000

    def summary(self, label):
        p99_off, p99_on = self.p("off", 0.99), self.p("on", 0.99)
        return (f"[{label}] critical $summary reads, interleaved windows: off n={len(self.off)} "
                f"p50={self.p('off', 0.5):.2f} ms p99={p99_off:.2f} ms | on n={len(self.on)} "
                f"p50={self.p('on', 0.5):.2f} ms p99={p99_on:.2f} ms "
                f"({(p99_on / p99_off - 1) * 100:+.1f}%) | failures {len(self.failures)} of {self.total}")


def interleaved(readers: Readers, load_on, load_off, windows: int = 30, window_s: float = 3.0,
                settle_s: float = 1.0) -> Comparison:
    """Runs `windows` windows alternately without and with the load (starting without),
    reading all along; returns the samples of each side (after each window's settle
    time) and every failure of the whole run."""
    spans = []  # (from, to, side)
    readers.start()
    try:
        time.sleep(0.5)  # connections open, caches warm
        for w in range(windows):
            side = "on" if w % 2 else "off"
            (load_on if side == "on" else load_off)()
            t0 = time.monotonic()
            spans.append((t0 + settle_s, t0 + window_s, side))
            time.sleep(max(0.0, t0 + window_s - time.monotonic()))
        load_off()
    finally:
        readers.stop()
    c = Comparison()
    c.total = len(readers.samples)
    for s in readers.samples:
        if not s.ok:
            c.failures.append(s)
            continue
        for lo, hi, side in spans:
            if lo <= s.start < hi:
                getattr(c, side).append(s.latency)
                break
    return c


# A flood in a process of its own (its threads must not share the readers' GIL),
# switched on and off by lines on its stdin ("on", "off", "quit"); prints its answers'
# status counts as JSON when it quits. Its clients wait as long as a 503's Retry-After
# asks (capped at 2 s), as a well-behaved app does; any other answer is followed at once
# by the next request. Kinds: "payments" (POST /api/v1/payments with fresh keys) and
# "login" (wrong passwords for real usernames, from a new X-Forwarded-For address each
# time).
FLOOD = r"""
import http.client, json, random, sys, threading, time, uuid
port, kind, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
args = json.loads(sys.argv[4])
on, stop = threading.Event(), threading.Event()
counts, lock = {}, threading.Lock()
def request(c, rnd):
    if kind == "payments":
        c.request("POST", "/api/v1/payments",
                  body=json.dumps({"invoice": "Invoice/" + args["invoice"], "amount_cents": 1}),
                  headers={"Authorization": "Bearer " + args["token"], "Content-Type": "application/json",
                           "Idempotency-Key": str(uuid.uuid4())})
    else:
        addr = "10.%d.%d.%d" % (rnd.randrange(256), rnd.randrange(256), rnd.randrange(1, 255))
        c.request("POST", "/api/v1/session",
                  body=json.dumps({"username": rnd.choice(args["users"]), "password": "guess-%d" % rnd.randrange(10**9)}),
                  headers={"Content-Type": "application/json", "X-Forwarded-For": addr})
def run(i):
    rnd = random.Random(i)
    while not stop.is_set():
        if not on.wait(0.1):
            continue
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            request(c, rnd)
            resp = c.getresponse()
            status = resp.status
            retry_after = float(resp.getheader("Retry-After") or 0) if status == 503 else 0
            resp.read()
        except Exception:
            status, retry_after = 0, 1.0
        finally:
            c.close()
        with lock:
            counts[status] = counts.get(status, 0) + 1
        if retry_after:
            stop.wait(min(retry_after, 2.0))
ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
for t in ts: t.start()
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "on": on.set()
    elif cmd == "off": on.clear()
    elif cmd == "quit": break
on.clear(); stop.set()
for t in ts: t.join(40)
print(json.dumps(counts), flush=True)
"""


class Flood:
    def __init__(self, port: int, kind: str, threads: int, **args):
        self.proc = subprocess.Popen([sys.executable, "-c", FLOOD, str(port), kind, str(threads),
                                      json.dumps(args)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def _send(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def on(self):
        self._send("on")

    def off(self):
        self._send("off")

    def close(self) -> dict[int, int]:
        """Stops the flood; its answers' status counts."""
        if self.proc.poll() is None:
            try:
                self._send("quit")
                out, _ = self.proc.communicate(timeout=60)
            except Exception:
                self.proc.kill()
                self.proc.wait(10)
                raise
        else:
            out = self.proc.stdout.read()
        lines = out.strip().splitlines()
        return {int(k): v for k, v in json.loads(lines[-1]).items()} if lines else {}
