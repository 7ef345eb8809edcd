"""[fault_injection]: the test-only defects the rollout tests switch on (a "bad release" is
this binary with one of them in its config).

- error_permille: exactly p of every 1,000 API requests are answered 500 (an
  OperationOutcome) before any handler work: a failed write leaves no row; ops routes
  (/readyz, /metrics) are never failed; the node exports continuum_fault_injection_active 1.
- extra_latency_ms: every API request is that much slower; /readyz is not.
- crash_on_start: the node exits 70 before it listens.
- never_ready: /readyz stays 503 while the API works.
"""

from __future__ import annotations

import time
import uuid

from harness import ContinuumTestCase, note_body


class FaultInjectionTest(ContinuumTestCase):
    PATIENTS = 20
    FACILITIES = 1
    START_SERVER = False

    def test_error_permille_fails_exactly_that_share_and_writes_nothing(self):
        s = self.cluster.add_server("faulty", {"fault_injection": {"error_permille": 100}})
        try:
            m = s.get("/metrics")
            self.assertEqual(m.status, 200, m)
            self.assertIn("continuum_fault_injection_active 1", m.text)
            token = s.login("provider-1")      # request 0 of the node's count: not failed
            statuses = [s.get("/fhir/R4/Patient/1/$summary", token=token).status for _ in range(100)]
            self.assertEqual(statuses.count(500), 10, statuses)
            self.assertEqual(statuses.count(200), 90, statuses)
            # the login was the node's request 0; request i fails when floor((i + 1) / 10)
            # > floor(i / 10): request 9 (the 9th read), 19, ...
            self.assertEqual([i for i, st in enumerate(statuses) if st == 500], list(range(8, 100, 10)))
            for _ in range(30):
                self.assertEqual(s.get("/readyz").status, 200, "an ops route was failed")
            # the failed requests carry an OperationOutcome; a failed write writes nothing
            failed_writes = 0
            for i in range(20):
                title = "e2e-fault-" + uuid.uuid4().hex[:12]
                r = s.post_json("/fhir/R4/DocumentReference", note_body("1", "BP 120/80 " + title, title=title),
                                token=token, headers={"Idempotency-Key": title})
                n = self.cluster.scalar("SELECT count(*) AS n FROM clinical_note WHERE title = :'t'", t=title)
                if r.status == 500:
                    oo = self.assertOperationOutcome(r, 500)
                    self.assertIn("Injected fault", oo["issue"][0]["diagnostics"])
                    self.assertEqual(n, 0, "a failed write left a note")
                    failed_writes += 1
                else:
                    self.assertEqual(r.status, 201, r)
                    self.assertEqual(n, 1)
            self.assertEqual(failed_writes, 2)
        finally:
            s.stop()

    def test_extra_latency_slows_the_api_not_readyz(self):
        s = self.cluster.add_server("slow", {"fault_injection": {"extra_latency_ms": 300}})
        try:
            token = s.login("provider-1")
            t0 = time.monotonic()
            self.assertEqual(s.get("/fhir/R4/Patient/1/$summary", token=token).status, 200)
            self.assertGreaterEqual(time.monotonic() - t0, 0.3)
            t0 = time.monotonic()
            self.assertEqual(s.get("/readyz").status, 200)
            self.assertLess(time.monotonic() - t0, 0.3)
        finally:
            s.stop()

    def test_crash_on_start_and_never_ready(self):
        s = self.cluster.add_server("crash", {"fault_injection": {"crash_on_start": True}}, start=False)
        s.start(wait=False)
        self.assertEqual(s.wait(20), 70)
        s = self.cluster.add_server("never", {"fault_injection": {"never_ready": True}}, start=False)
        s.start(wait=False)
        try:
            time.sleep(3)
            self.assertTrue(s.alive())
            self.assertEqual(s.get("/readyz").status, 503)
            self.assertEqual(s.get("/healthz").status, 200)
            token = s.login("provider-1")
            self.assertEqual(s.get("/fhir/R4/Patient/1/$summary", token=token).status, 200)
        finally:
            s.stop()

    def test_a_bad_value_is_refused_at_start(self):
        s = self.cluster.add_server("bad", {"fault_injection": {"error_permille": 5000}}, start=False)
        s.start(wait=False)
        self.assertNotEqual(s.wait(20), 0)
        with open(s.stderr_path) as f:
            self.assertIn("fault_injection.error_permille", f.read())
