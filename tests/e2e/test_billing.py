"""Medium tier: billing and insurance. Requests for external services are queued
durably when the service is down (202 + status URL), survive a node restart, and are
processed exactly once when the service returns. Each dependency has a circuit breaker
(closed / open / half-open) reported in /readyz."""

from __future__ import annotations

import time
import uuid

from harness import ContinuumTestCase
from stubdeps import StubDeps


class BillingTest(ContinuumTestCase):
    START_SERVER = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.deps = StubDeps().start()
        cls.addClassCleanup(cls.deps.close)
        dep = lambda name: cls.deps.dependency(name, timeout_ms=800, check_interval_ms=300,
                                               failure_threshold=3, open_ms=1000)
        cls.server = cls.cluster.add_server("node-1", {
            "dependencies": {"payments": dep("payments"), "insurance": dep("insurance"),
                             "pharmacy": dep("pharmacy")},
            "jobs": {"poll_ms": 200}})

    def setUp(self):
        self.deps.reset()
        self.wait_dependency("payments", "closed")

    def wait_dependency(self, name, breaker, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            r = self.server.get("/readyz")
            d = r.json().get("dependencies", {}).get(name, {})
            if d.get("breaker") == breaker or time.monotonic() > deadline:
                return d
            time.sleep(0.1)

    def open_invoice(self, patient_id):
        return self.cluster.scalar(
            "SELECT min(id) FROM invoice WHERE patient_id = :'p' AND status = 'issued'",
            p=patient_id)

    def patient_with_invoice(self, skip=()):
        rows = self.cluster.rows(
            "SELECT patient_id, min(id) AS invoice FROM invoice WHERE status = 'issued' "
            "GROUP BY patient_id ORDER BY patient_id LIMIT 40")
        for row in rows:
            if str(row["patient_id"]) not in skip and int(row["patient_id"]) > 1:
                return str(row["patient_id"]), str(row["invoice"])
        self.fail("no patient with an open invoice")

    def pay(self, token, invoice, cents, key):
        return self.server.post_json("/api/v1/payments",
                                     {"invoice": f"Invoice/{invoice}", "amount_cents": cents},
                                     token=token, headers={"Idempotency-Key": key})

    def charges(self, reference):
        return [c for c in self.deps.log("payments")
                if reference in str(c)]

    def test_account_invoices_coverage(self):
        pid, invoice = self.patient_with_invoice()
        tok = self.token(f"patient-{pid}")
        r = self.server.fhir("Account", token=tok, params={"patient": pid})
        self.assertEqual(r.status, 200, r)
        acct = r.json()["entry"][0]["resource"]
        ext = {e["url"].rsplit("/", 1)[-1]: e for e in acct["extension"]}
        self.assertGreater(ext["account-balance"]["valueMoney"]["value"], 0)
        self.assertGreaterEqual(ext["account-open-invoices"]["valueUnsignedInt"], 1)
        self.assertNotIn("balance", acct)
        r = self.server.fhir("Invoice", token=tok, params={"patient": pid})
        self.assertEqual(r.status, 200, r)
        self.assertIn(invoice, [e["resource"]["id"] for e in r.json()["entry"]])
        r = self.server.fhir("Coverage", token=tok, params={"patient": pid})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(r.json()["entry"]), 1)
        self.assertEqual(self.server.fhir("Invoice", token=tok, params={"patient": "1"}).status,
                         403)

    def test_payment_now_and_exactly_once(self):
        pid, invoice = self.patient_with_invoice(skip=())
        tok = self.token(f"patient-{pid}")
        key = str(uuid.uuid4())
        r = self.pay(tok, invoice, 1000, key)
        self.assertEqual(r.status, 201, r)
        job = r.json()
        self.assertEqual(job["status"], "succeeded", job)
        again = self.pay(tok, invoice, 1000, key)
        self.assertEqual(again.status, 200, again)
        self.assertEqual(again.json()["id"], job["id"])
        self.assertEqual(len(self.charges(f"invoice-{invoice}")), 1)
        self.assertEqual(self.cluster.scalar(
            "SELECT paid_cents FROM invoice WHERE id = :'i'", i=invoice), 1000)
        other = self.pay(tok, invoice, 2000, key)
        self.assertEqual(other.status, 409, other)
        self.assertEqual(self.pay(tok, invoice, 10**8, str(uuid.uuid4())).status, 400)
        r = self.server.post_json("/api/v1/payments", {"invoice": invoice, "amount_cents": 5},
                                  token=tok)
        self.assertEqual(r.status, 400, r)  # no Idempotency-Key

    def test_queued_while_down_survives_restart_processed_once(self):
        pid, invoice = self.patient_with_invoice(skip=())
        tok = self.token(f"patient-{pid}")
        self.deps.set_fault("payments", "error")
        key = str(uuid.uuid4())
        r = self.pay(tok, invoice, 700, key)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.header("X-Continuum-Degraded"), "queued")
        location = r.header("Location")
        job_id = r.json()["id"]
        self.assertTrue(location.endswith(f"/api/v1/jobs/{job_id}"))
        # The breaker opens after a few failures: further requests do not call the service.
        for _ in range(4):
            self.pay(tok, invoice, 1, str(uuid.uuid4()))
        d = self.wait_dependency("payments", "open", timeout=5)
        self.assertEqual(d.get("breaker"), "open", d)
        self.assertEqual(self.server.get("/readyz").json()["tiers"]["medium"]["mode"], "queued")
        st = self.server.get(f"/api/v1/jobs/{job_id}", token=tok)
        self.assertEqual(st.status, 200, st)
        self.assertIn(st.json()["status"], ("queued", "processing"))
        # A node restart loses nothing: the queue is in PostgreSQL.
        self.server.restart(kill=True)
        self.deps.set_fault("payments", "ok")
        deadline = time.monotonic() + 20
        while True:
            st = self.server.get(f"/api/v1/jobs/{job_id}", token=tok)
            if st.json().get("status") == "succeeded" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(st.json()["status"], "succeeded", st)
        self.assertEqual(len([c for c in self.deps.log("payments")
                              if f"continuum-job-{job_id}" in str(c)]), 1)
        self.wait_dependency("payments", "closed")

    def test_breaker_half_open_then_closed(self):
        # Every configured dependency: its checks and calls open the breaker when it
        # refuses connections; once it is back, a half-open trial closes it again.
        for name in ("payments", "insurance", "pharmacy"):
            with self.subTest(dependency=name):
                self.deps.set_fault(name, "refuse")
                d = self.wait_dependency(name, "open", timeout=10)
                self.assertEqual(d.get("breaker"), "open", d)
                self.assertEqual(d.get("state"), "down")
                ops = self.server.get("/api/v1/ops/status")
                self.assertEqual(ops.status, 200, ops)
                self.assertEqual(ops.json()["dependencies"][name]["breaker"], "open")
                self.assertTrue(ops.json()["dependencies"][name]["fallback_in_effect"])
                self.assertIn("queued" if name != "pharmacy" else "last known",
                              ops.json()["dependencies"][name]["fallback"])
                self.assertEqual(ops.json()["tiers"]["medium"]["mode"], "queued")
                self.assertEqual(ops.json()["tiers"]["critical"]["mode"], "normal")
                self.deps.set_fault(name, "ok")
                d = self.wait_dependency(name, "closed", timeout=10)
                self.assertEqual(d.get("breaker"), "closed", d)
                ops = self.server.get("/api/v1/ops/status").json()["dependencies"][name]
                self.assertFalse(ops["fallback_in_effect"], ops)
                metrics = self.server.get("/metrics").text
                self.assertIn(f'continuum_dependency_calls_total{{dependency="{name}",'
                              f'event="opened"}}', metrics)

    def test_insurance_verification(self):
        pid, _ = self.patient_with_invoice()
        tok = self.token(f"patient-{pid}")
        cov = self.server.fhir("Coverage", token=tok, params={"patient": pid}).json()
        cid = cov["entry"][0]["resource"]["id"]
        r = self.server.post_json("/api/v1/insurance/verify",
                                  {"coverage": f"Coverage/{cid}", "service": "office-visit"},
                                  token=tok, headers={"Idempotency-Key": str(uuid.uuid4())})
        self.assertIn(r.status, (201, 422), r)
        self.assertIn("eligible", r.json().get("result", {}), r)
        self.deps.set_fault("insurance", "timeout")
        r = self.server.post_json("/api/v1/insurance/verify", {"coverage": f"Coverage/{cid}"},
                                  token=tok, headers={"Idempotency-Key": str(uuid.uuid4())})
        self.assertEqual(r.status, 202, r)
        self.deps.set_fault("insurance", "ok")

    def test_pharmacy_fill_status_live_then_last_known_and_queued_refills(self):
        pid = "1"
        tok = self.token("demo-patient")
        med = self.cluster.scalar("SELECT min(id) FROM medication WHERE patient_id = 1")
        r = self.server.get(f"/api/v1/medications/{med}/fill-status", token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["source"], "live")
        live = r.json()["status"]
        self.assertEqual(self.server.get(f"/api/v1/medications/{med}/fill-status",
                                         token=self.token("patient-2")).status, 403)
        self.deps.set_fault("pharmacy", "refuse")
        try:
            r = self.server.get(f"/api/v1/medications/{med}/fill-status", token=tok)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["source"], "last-known")
            self.assertEqual(r.json()["status"], live)
            self.assertIn("as_of", r.json())
            self.assertEqual(r.header("X-Continuum-Degraded"), "stale")
            key = str(uuid.uuid4())
            r = self.server.post_json("/api/v1/refills",
                                      {"medication": f"MedicationStatement/{med}"},
                                      token=tok, headers={"Idempotency-Key": key})
            self.assertEqual(r.status, 202, r)
            job = r.json()["id"]
        finally:
            self.deps.set_fault("pharmacy", "ok")
        deadline = time.monotonic() + 20
        while True:
            st = self.server.get(f"/api/v1/jobs/{job}", token=tok).json()
            if st["status"] == "succeeded" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(st["status"], "succeeded", st)
        self.assertEqual(len([x for x in self.deps.log("pharmacy")
                              if f"continuum-job-{job}" in str(x)]), 1)
