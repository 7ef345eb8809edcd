"""The operations dashboard's data, end to end: the operations programs' reports
(POST /api/v1/ops/reports: validated, one row per kind and id, the newest version wins;
list and read behind the ops token) and the charts (GET /api/v1/ops/series) from a real
Prometheus scraping the node: request rate, 5xx rate and p99 per tier, the fixed charts
only, 501 on a node without [ops] prometheus_url and 503 naming Prometheus when it is
gone. The dashboard itself is driven in a browser by tests/web (the ops scenario)."""

import secrets
import time

from harness import ContinuumTestCase, free_port, wait_until
from prom import Prometheus

OPS_TOKEN = secrets.token_hex(32)


def report(rid="r20261203T101500Z", outcome="running (canary)", ended=None, kind="rollout", **extra):
    body = {"kind": kind, "id": rid, "title": "v1.0 -> v1.1", "outcome": outcome,
            "started_at": "2026-12-03T10:15:00.000Z", "ended_at": ended,
            "text": f"rollout {rid}: {outcome}",
            "report": {"judgements": [{"at": 1796292900, "percent": 1, "verdict": "pass",
                                       "line": "errors 0/412 vs 0/40811"}]}}
    body.update(extra)
    return body


class OpsDashboardApiTest(ContinuumTestCase):
    PATIENTS = 30
    FACILITIES = 1
    START_SERVER = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token_file = cls.cluster.dir / "dashboard-ops.token"
        cls.token_file.write_text(OPS_TOKEN + "\n")
        cls.token_file.chmod(0o600)
        cls.prom = Prometheus(cls.cluster.dir / "prometheus", port=free_port())
        cls.addClassCleanup(cls.prom.stop)
        cls.server = cls.cluster.add_server("node-1", {"ops": {"token_file": str(cls.token_file),
                                                               "prometheus_url": cls.prom.url}})
        cls.prom.start([cls.server.port], cls.token_file)

    def post(self, body, token=OPS_TOKEN):
        return self.server.post_json("/api/v1/ops/reports", body, token=token)

    def get(self, path, token=OPS_TOKEN):
        return self.server.get(path, token=token)

    def rows(self, where="true"):
        return int(self.cluster.scalar(f"SELECT count(*) FROM ops_report WHERE {where}"))

    # -- reports ---------------------------------------------------------------------------

    def test_report_stored_replaced_listed_and_read(self):
        rid = "r" + secrets.token_hex(6)
        r = self.post(report(rid))
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json(), {"kind": "rollout", "id": rid})
        listed = [x for x in self.get("/api/v1/ops/reports?kind=rollout").json() if x["id"] == rid]
        self.assertEqual(len(listed), 1)
        self.assertEqual(listed[0]["outcome"], "running (canary)")
        self.assertIsNone(listed[0]["ended_at"])
        self.assertEqual(listed[0]["received_by"], "node-1")
        # the rollout goes on: the newer version replaces the row
        r = self.post(report(rid, outcome="done", ended="2026-12-03T11:00:00Z"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.rows(f"id = '{rid}'"), 1)
        full = self.get(f"/api/v1/ops/reports/rollout/{rid}")
        self.assertEqual(full.status, 200, full)
        f = full.json()
        self.assertEqual((f["outcome"], f["ended_at"]), ("done", "2026-12-03T11:00:00.000Z"))
        self.assertEqual(f["text"], f"rollout {rid}: done")
        self.assertEqual(f["report"]["judgements"][0]["line"], "errors 0/412 vs 0/40811")
        self.assertIn("no-store", full.headers.get("cache-control", ""))
        # the same id under another kind is another report
        self.assertEqual(self.post(report(rid, kind="chaos-run", outcome="hypothesis held")).status, 201)
        self.assertEqual(self.rows(f"id = '{rid}'"), 2)
        kinds = {x["kind"] for x in self.get("/api/v1/ops/reports").json() if x["id"] == rid}
        self.assertEqual(kinds, {"rollout", "chaos-run"})
        self.assertEqual({x["kind"] for x in self.get("/api/v1/ops/reports?kind=chaos-run").json()},
                         {"chaos-run"})
        self.assertOperationOutcome(self.get(f"/api/v1/ops/reports/chaos-day/{rid}"), 404)

    def test_bad_reports_and_callers_store_nothing(self):
        before = self.rows()
        rid = "bad" + secrets.token_hex(4)
        for what, body, field in [
                ("kind", report(rid, kind="deploy"), "kind"),
                ("id", report("../" + rid), "id"),
                ("started_at", report(rid, started_at="yesterday"), "started_at"),
                ("ended before started", report(rid, ended="2026-12-03T09:00:00Z"), "ended_at"),
                ("report not an object", report(rid, report=[1, 2]), "report"),
                ("unknown field", report(rid, extra=1), "extra")]:
            with self.subTest(what):
                oo = self.assertOperationOutcome(self.post(body), 400)
                self.assertIn(f"'{field}'", oo["issue"][0]["diagnostics"])
        self.assertOperationOutcome(self.post(report(rid), token=None), 401)
        self.assertOperationOutcome(self.post(report(rid), token=secrets.token_hex(32)), 403)
        self.assertOperationOutcome(self.post(report(rid), token=self.token("demo-provider")), 403)
        self.assertOperationOutcome(self.get("/api/v1/ops/reports", token=None), 401)
        self.assertOperationOutcome(self.get("/api/v1/ops/reports?kind=deploy"), 400)
        self.assertOperationOutcome(self.get("/api/v1/ops/reports?limit=0"), 400)
        self.assertOperationOutcome(self.get("/api/v1/ops/reports/deploy/x"), 400)
        self.assertEqual(self.rows(), before)

    # -- charts ----------------------------------------------------------------------------

    def series(self, chart, minutes=5):
        r = self.get(f"/api/v1/ops/series?chart={chart}&minutes={minutes}")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_charts_from_prometheus(self):
        # traffic on two tiers, and one 5xx-free stretch
        token = self.token("demo-patient")
        pid = self.cluster.scalar("SELECT patient_id FROM account WHERE username = 'demo-patient'")

        def traffic_seen():
            for _ in range(10):
                self.assertEqual(self.server.get(f"/fhir/R4/Patient/{pid}/$summary", token=token).status, 200)
                self.assertEqual(self.server.get(f"/fhir/R4/Appointment?patient={pid}", token=token).status, 200)
            got = {s["name"]: s for s in self.series("requests")["series"]}
            return all(any(v for _, v in got.get(t, {"points": []})["points"]) for t in ("critical", "high"))
        wait_until(traffic_seen, 60, interval=1, message="request rates for critical and high in Prometheus")
        req = self.series("requests")
        self.assertEqual((req["chart"], req["unit"], req["step_s"]), ("requests", "req/s", 5))
        names = [s["name"] for s in req["series"]]
        self.assertEqual(names[:2], ["critical", "high"])   # tier order
        self.assertNotIn("ops", names)                      # the dashboard's own calls are not traffic
        for s in req["series"]:
            for t, v in s["points"]:
                self.assertIsInstance(t, (int, float))
                self.assertTrue(v is None or v >= 0)
        lat = {s["name"]: s for s in self.series("latency")["series"]}
        self.assertTrue(any(v and v > 0 for _, v in lat["critical"]["points"]), lat)
        err = {s["name"]: s for s in self.series("errors")["series"]}
        self.assertIn("critical", err)                      # 0, not absent, without errors
        self.assertTrue(all(v in (0, None) for _, v in err["critical"]["points"]), err)
        self.assertEqual(self.series("requests", minutes=360)["step_s"], 180)

    def test_chart_requests_refused(self):
        for path, status, words in [
                ("/api/v1/ops/series", 400, "chart is required"),
                ("/api/v1/ops/series?chart=up", 400, "no chart 'up'"),
                ("/api/v1/ops/series?chart=requests&minutes=3", 400, "minutes"),
                ("/api/v1/ops/series?chart=requests&query=up", 400, "query")]:
            with self.subTest(path):
                oo = self.assertOperationOutcome(self.get(path), status)
                self.assertIn(words, oo["issue"][0]["diagnostics"])
        self.assertOperationOutcome(self.get("/api/v1/ops/series?chart=requests", token=None), 401)
        self.assertOperationOutcome(self.get("/api/v1/ops/series?chart=requests",
                                             token=self.token("demo-provider")), 403)

    def test_node_without_prometheus_says_so(self):
        node = self.cluster.add_server("node-noprom", {"ops": {"token_file": str(self.token_file)}})
        try:
            oo = self.assertOperationOutcome(node.get("/api/v1/ops/series?chart=requests", token=OPS_TOKEN), 501)
            self.assertIn("prometheus_url", oo["issue"][0]["diagnostics"])
        finally:
            node.stop()

    def test_zz_prometheus_gone(self):
        self.prom.stop()
        t0 = time.monotonic()
        oo = self.assertOperationOutcome(self.get("/api/v1/ops/series?chart=requests"), 503)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertIn("Prometheus", oo["issue"][0]["diagnostics"])
        self.assertEqual(self.get("/api/v1/ops/status").status, 200)  # the rest of the view stands
