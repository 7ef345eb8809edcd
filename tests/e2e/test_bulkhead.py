"""Bulkheads: a saturated medium tier (payments processor hung, the tier's in-flight
limit exhausted, a flood of billing requests) does not move the latency of critical
reads. Both p99 figures are measured in the same run and printed."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

from harness import ContinuumTestCase
from stubdeps import StubDeps

READERS = 4
PHASE_S = 8.0
FLOODERS = 48


FLOOD = r"""
import http.client, json, signal, sys, threading, time, uuid
port, token, invoice, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
counts, lock = {}, threading.Lock()
def run():
    while not stop.is_set():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            c.request("POST", "/api/v1/payments",
                      body=json.dumps({"invoice": "Invoice/" + invoice, "amount_cents": 1}),
                      headers={"Authorization": "Bearer " + token, "Content-Type": "application/json",
                               "Idempotency-Key": str(uuid.uuid4())})
            resp = c.getresponse()
            status = resp.status
            retry_after = float(resp.getheader("Retry-After") or 0)
            resp.read()
        except Exception:
            status, retry_after = 0, 1.0
        finally:
            c.close()
        with lock:
            counts[status] = counts.get(status, 0) + 1
        if retry_after:
            stop.wait(retry_after)
ts = [threading.Thread(target=run) for _ in range(n)]
for t in ts: t.start()
while not stop.is_set(): time.sleep(0.1)
for t in ts: t.join(40)
print(json.dumps(counts))
"""


def p(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


class BulkheadTest(ContinuumTestCase):
    START_SERVER = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.deps = StubDeps().start()
        cls.addClassCleanup(cls.deps.close)
        cls.server = cls.cluster.add_server("node-1", {
            "server": {"threads": 2},
            # The breaker is kept from opening, the worst case: every billing request
            # waits out the hung processor.
            "dependencies": {"payments": cls.deps.dependency("payments",
                                                             timeout_ms=2000, failure_threshold=100000,
                                                             failure_rate_pct=100)},
            "database": {"medium": {"max_in_flight": 8}}})

    def read_phase(self, tokens, stop_at, out):
        def reader(i):
            tok, pid = tokens[i % len(tokens)]
            client = self.server.client(timeout=10)
            try:
                while time.monotonic() < stop_at:
                    t0 = time.monotonic()
                    r = client.request("GET", f"/fhir/R4/Patient/{pid}/$summary", token=tok)
                    dt = time.monotonic() - t0
                    out.append((r.status, dt))
            finally:
                client.close()
        threads = [threading.Thread(target=reader, args=(i,)) for i in range(READERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(PHASE_S + 30)

    def test_critical_reads_unaffected_by_a_medium_tier_flood(self):
        tokens = [(self.token(f"patient-{i}"), str(i)) for i in range(2, 2 + READERS)]
        row = self.cluster.rows("SELECT patient_id, min(id) AS inv FROM invoice WHERE status = "
                                "'issued' GROUP BY patient_id ORDER BY patient_id LIMIT 1")[0]
        payer = self.token(f"patient-{row['patient_id']}")
        invoice = row["inv"]
        # Warm-up.
        self.read_phase(tokens, time.monotonic() + 1.0, [])
        # On a shared 2-core machine a single pair of figures can be skewed by unrelated
        # work; the pair is measured up to three times, and the first pair within the
        # bound passes. Every pair is printed.
        results = []
        for attempt in range(3):
            base = []
            self.read_phase(tokens, time.monotonic() + PHASE_S, base)
            # The flood: the processor hangs; billing requests pile up. It runs in its
            # own process (its threads must not share this one's GIL with the readers);
            # its clients wait as long as the answer's Retry-After asks (2 s after a
            # "busy" 503, 5 s after a 202 "queued"), as a well-behaved app does.
            self.deps.set_fault("payments", "timeout")
            flood = subprocess.Popen(
                [sys.executable, "-c", FLOOD, str(self.server.port), payer, str(invoice),
                 str(FLOODERS)], stdout=subprocess.PIPE, text=True)
            try:
                time.sleep(2.0)
                loaded = []
                self.read_phase(tokens, time.monotonic() + PHASE_S, loaded)
                ready = self.server.get("/readyz").json()
            finally:
                flood.terminate()
                out, _ = flood.communicate(timeout=60)
                self.deps.set_fault("payments", "ok")
            flood_status = {int(k): v
                            for k, v in json.loads(out.strip().splitlines()[-1]).items()}
            ok_base = [dt for st, dt in base if st == 200]
            ok_loaded = [dt for st, dt in loaded if st == 200]
            p99_base, p99_loaded = p(ok_base, 0.99) * 1000, p(ok_loaded, 0.99) * 1000
            print(f"\n[bulkhead] attempt {attempt + 1}: critical $summary reads: unloaded "
                  f"n={len(base)} p50={p(ok_base, 0.5) * 1000:.2f} ms p99={p99_base:.2f} ms | "
                  f"medium-tier flood n={len(loaded)} p50={p(ok_loaded, 0.5) * 1000:.2f} ms "
                  f"p99={p99_loaded:.2f} ms ({(p99_loaded / p99_base - 1) * 100:+.1f}%) | "
                  f"flood answers {dict(sorted(flood_status.items()))}")
            self.assertEqual(len(ok_base), len(base), "critical reads failed without load")
            self.assertEqual(len(ok_loaded), len(loaded), "critical reads failed under the flood")
            self.assertIn(503, flood_status, "the medium tier was never saturated")
            self.assertGreater(flood_status.get(202, 0), 0, "no billing request was queued")
            self.assertEqual(ready["tiers"]["critical"]["mode"], "normal")
            results.append((p99_base, p99_loaded))
            if p99_loaded <= p99_base * 1.2:
                break
            time.sleep(3)  # the hung requests time out; the next pair starts clean
        self.assertLessEqual(results[-1][1], results[-1][0] * 1.2,
                             f"critical p99 under the flood vs unloaded, all attempts: {results}")
