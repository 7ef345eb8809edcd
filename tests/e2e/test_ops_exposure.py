"""What the operations endpoints tell whom (issue 10, smaller defects).

- /healthz and an anonymous /readyz say whether the node is alive and ready, and nothing
  else: the status code and {"status": ...} (HAProxy's check needs only the code).
- /readyz with the node's ops token: the full state (node, region, database, audit
  journal, tier modes and pools, dependencies with their last errors).
- /metrics: only with the ops token (Prometheus scrapes with it).
- Every refusal (no token, a wrong one, a session token, credentials on /readyz that are
  not the ops token) is an OperationOutcome, logged, counted and audited as denied; an
  anonymous /readyz is not a refusal and leaves no audit record.

The node has a dependency nobody answers, so the full body carries real error text that
the anonymous one must not.
"""

from __future__ import annotations

import secrets

from harness import ContinuumTestCase, free_port, wait_until

FULL_KEYS = {"status", "node", "region", "database", "audit", "tiers", "dependencies", "sessions",
             "audit_shipping", "schema"}


class OpsExposureTest(ContinuumTestCase):
    PATIENTS = 40
    FACILITIES = 1
    START_SERVER = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dead_port = free_port()  # nothing listens here: connections are refused
        cls.server = cls.cluster.add_server("node-1", {"dependencies": {"pharmacy": {
            "url": f"http://127.0.0.1:{cls.dead_port}", "allow_plaintext": True,
            "timeout_ms": 300, "check_interval_ms": 200, "failure_threshold": 1,
            "open_ms": 1000}}})
        cls.ops = cls.server.ops_token

    def full_readyz(self) -> dict:
        r = self.server.get("/readyz", token=self.ops)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def assertRefusedAndAudited(self, r, status: int, route: str, reason: str):
        oo = self.assertOperationOutcome(r, status)
        self.assertIn("ops token", oo["issue"][0]["diagnostics"], r)
        if status == 401:
            self.assertTrue((r.header("WWW-Authenticate") or "").startswith("Bearer"), r)
        rows = self.cluster.wait_audit(r.request_id, timeout=10)
        self.assertEqual([a["outcome"] for a in rows], ["denied"], rows)
        row = rows[0]
        self.assertEqual((row["actor"], row["role"], row["action"]), ("anonymous", "anonymous", "read"), row)
        self.assertEqual(row["client_address"], "127.0.0.1", row)
        self.assertEqual(row["detail"], f"ops token required on {route}: {reason}", row)
        self.assertEqual(row["patient_id"] or "", "", row)
        return rows

    def test_healthz_and_anonymous_readyz_are_minimal(self):
        # the full body names the failing dependency and its error: the anonymous one must not
        dep = wait_until(lambda: (d := self.full_readyz()["dependencies"]["pharmacy"])["last_error"] and d,
                         15, 0.2, "the pharmacy's last error in the full /readyz")
        self.assertNotEqual(dep["state"], "healthy", dep)
        r = self.server.get("/healthz", anonymous=True)
        self.assertEqual((r.status, r.json()), (200, {"status": "ok"}), r)
        r = self.server.get("/readyz", anonymous=True)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.content_type, "application/json", r)
        body = r.json()
        self.assertEqual(set(body), {"status"}, body)
        self.assertEqual(body, {"status": "ready"})
        for leak in ("e2e", "node-1", "pharmacy", str(self.dead_port), dep["last_error"], "tiers",
                     "critical", "database", "members", "pool", "error", "journal"):
            self.assertNotIn(leak, r.text, r)
        self.assertEqual(r.header("Cache-Control"), "no-store", r)
        # an anonymous readiness check is not a refusal: no audit record. Records ship in
        # journal order, so once a later refusal's record is in the table, this one would be.
        later = self.server.get("/metrics", anonymous=True)
        self.cluster.wait_audit(later.request_id, timeout=10)
        self.assertEqual(self.cluster.audit_rows(r.request_id), [], "anonymous /readyz audited")

    def test_readyz_with_the_ops_token_is_the_full_state(self):
        body = self.full_readyz()
        self.assertEqual(set(body) - {"ehr_sync"}, FULL_KEYS, body)  # ehr_sync: with [dependencies.ehr]
        self.assertEqual((body["status"], body["node"], body["region"]), ("ready", "node-1", "e2e"))
        self.assertEqual(set(body["tiers"]), {"critical", "high", "medium", "low"}, body)
        self.assertIn("pool_open", body["tiers"]["critical"])
        self.assertTrue(body["database"]["reachable"], body)
        self.assertIn("pharmacy", body["dependencies"])
        self.assertTrue(body["audit"]["healthy"], body)

    def test_metrics_need_the_ops_token(self):
        r = self.server.get("/metrics", anonymous=True)
        self.assertRefusedAndAudited(r, 401, "metrics", "no_token")
        self.assertNotIn("continuum_", r.text)
        for what, kw, status, reason in [
                ("wrong token", dict(token=secrets.token_hex(32)), 403, "wrong_token"),
                ("session token", dict(token=self.token("demo-provider")), 403, "wrong_token"),
                ("not bearer", dict(headers={"Authorization": self.ops}), 401, "malformed")]:
            with self.subTest(what):
                r = self.server.get("/metrics", **kw)
                self.assertRefusedAndAudited(r, status, "metrics", reason)
                self.assertNotIn("continuum_", r.text)
        r = self.server.get("/metrics", token=self.ops)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.content_type.startswith("text/plain"), r)
        self.assertRegex(r.text, r'continuum_ops_refused_total\{reason="no_token"\} [1-9]')
        self.assertRegex(r.text, r'continuum_ops_refused_total\{reason="wrong_token"\} ([2-9]|\d\d)')
        # the refusals are logged without the token
        log = self.server.stderr_path.read_text()
        self.assertIn('"event":"ops_token_refused","route":"metrics","reason":"no_token"', log)
        self.assertNotIn(self.ops, log)

    def test_readyz_with_credentials_that_are_not_the_ops_token_is_refused(self):
        for what, kw, status, reason in [
                ("wrong token", dict(token=secrets.token_hex(32)), 403, "wrong_token"),
                ("session token", dict(token=self.token("demo-patient")), 403, "wrong_token"),
                ("not bearer", dict(headers={"Authorization": "Basic b3BzOm9wcw=="}), 401, "malformed")]:
            with self.subTest(what):
                r = self.server.get("/readyz", **kw)
                self.assertRefusedAndAudited(r, status, "readyz", reason)
                for leak in ("tiers", "pharmacy", "node-1", "database"):
                    self.assertNotIn(leak, r.text, r)

    def test_node_without_ops_token(self):
        # No [ops] token_file: nobody is an operator there. /readyz still answers anonymously
        # (the edge needs it), /metrics and the full view are refused.
        other = self.cluster.add_server("node-no-ops", {"ops": None})
        try:
            self.assertIsNone(other.ops_token)
            r = other.get("/readyz")
            self.assertEqual((r.status, r.json()), (200, {"status": "ready"}), r)
            r = other.get("/metrics")
            oo = self.assertOperationOutcome(r, 403)
            self.assertIn("[ops] token_file", oo["issue"][0]["diagnostics"])
            r = other.get("/readyz", token=self.ops)
            self.assertOperationOutcome(r, 403)
            self.assertNotIn("tiers", r.text)
            rows = self.cluster.wait_audit(r.request_id, timeout=10)
            self.assertEqual([a["detail"] for a in rows], ["ops token required on readyz: not_configured"])
        finally:
            other.stop()

    def test_zz_not_ready_is_a_status_code_and_a_word(self):
        # Last (it stops PostgreSQL): the node is not ready; an anonymous caller sees 503 and
        # "not-ready", not why -- the database's error text is for the ops token.
        self.cluster.pg.stop()
        try:
            r = wait_until(lambda: (x := self.server.get("/readyz", anonymous=True, timeout=5)).status == 503
                           and x, 15, 0.2, "/readyz 503 with PostgreSQL stopped")
            self.assertEqual(r.json(), {"status": "not-ready"}, r)
            full = self.server.get("/readyz", token=self.ops, timeout=5)
            self.assertEqual(full.status, 503, full)
            db = full.json()["database"]
            self.assertFalse(db["reachable"], full)
            self.assertTrue(db.get("error"), full)
            self.assertEqual(full.json()["status"], "not-ready")
            self.assertEqual(self.server.get("/healthz", anonymous=True).json(), {"status": "ok"})
        finally:
            self.cluster.pg.start()
        wait_until(lambda: self.server.get("/readyz", anonymous=True).status == 200, 20, 0.3,
                   "ready again once PostgreSQL is back")
