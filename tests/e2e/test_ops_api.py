"""The ops API behind the ops token, end to end: Alertmanager's webhook (firing, repeated
firing, resolved; idempotent per fingerprint/startsAt/status with a stable received_at),
the alert list, the prober's journey-run reports (validated, retention of the last 50 per
journey and vantage), /api/v1/ops/status's alerts and journeys (also while the database is
down), the refusals (no token, wrong token, no [ops] token_file, bad bodies: nothing
stored), and the portal metrics the alert rules use."""

import datetime
import re
import secrets
import time

from harness import ContinuumTestCase

OPS_TOKEN = secrets.token_hex(32)


def alert(name, fingerprint, status="firing", starts="2026-12-02T10:00:00.123Z", ends=None,
          severity="page", **labels):
    return {
        "status": status,
        "labels": {"alertname": name, "severity": severity, **labels},
        "annotations": {"summary": f"{name} is {status}"},
        "startsAt": starts,
        "endsAt": ends or "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=up",
        "fingerprint": fingerprint,
    }


def webhook(*alerts, status=None):
    """An Alertmanager 0.25 webhook body (payload version 4)."""
    return {
        "receiver": "continuum-portal",
        "status": status or ("firing" if any(a["status"] == "firing" for a in alerts) else "resolved"),
        "alerts": list(alerts),
        "groupLabels": {"alertname": alerts[0]["labels"].get("alertname", "")},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "version": "4",
        "groupKey": "{}:{alertname=\"%s\"}" % alerts[0]["labels"].get("alertname", ""),
        "truncatedAlerts": 0,
    }


# Journey runs of the tests start here, one second apart (run i at RUNS_BASE + i s).
RUNS_BASE = (datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
             - datetime.timedelta(minutes=5))


def run_start(i):
    return (RUNS_BASE + datetime.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def run_report(journey, vantage, i, success=True):
    start = run_start(i)
    steps = [
        {"name": "login", "method": "POST", "path": "/api/v1/session", "status": 200,
         "duration_ms": 80.5, "budget_ms": 1000, "ok": True},
        {"name": "records", "method": "GET", "path": "/fhir/R4/Patient/1",
         "status": 200 if success else 503, "duration_ms": 12 + i, "budget_ms": 500, "ok": success},
    ]
    body = {"journey": journey, "vantage": vantage, "target": "http://127.0.0.1:8080",
            "started_at": start, "finished_at": start.replace(".000Z", ".900Z"),
            "success": success, "steps": steps}
    if not success:
        steps[1]["reason"] = "status"
        body["failed_step"] = "records"
        body["error"] = "GET /fhir/R4/Patient/1 answered 503"
    return body


class OpsApiTest(ContinuumTestCase):
    PATIENTS = 40
    FACILITIES = 1
    START_SERVER = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        token_file = cls.cluster.dir / "ops.token"
        token_file.write_text(OPS_TOKEN + "\n")
        token_file.chmod(0o600)
        cls.server = cls.cluster.add_server("node-1", {"ops": {"token_file": str(token_file)}})

    def post(self, path, body, token=OPS_TOKEN, **kw):
        return self.server.post_json(path, body, token=token, **kw)

    def count(self, table, where="true"):
        return int(self.cluster.scalar(f"SELECT count(*) FROM {table} WHERE {where}"))

    def status(self):
        r = self.server.get("/api/v1/ops/status", token=OPS_TOKEN)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def assertRefused(self, r, status, field=None):
        oo = self.assertOperationOutcome(r, status)
        if field:
            self.assertIn(f"'{field}'", oo["issue"][0]["diagnostics"], r)

    def test_status_needs_the_ops_token(self):
        # The ops view names regions, database members, dependencies and their last errors:
        # operators only (so do /metrics and /readyz's full body: test_ops_exposure).
        for what, kw, status in [("no token", {}, 401),
                                 ("wrong token", dict(token=secrets.token_hex(32)), 403),
                                 ("session token", dict(token=self.token("demo-provider")), 403)]:
            with self.subTest(what):
                r = self.server.get("/api/v1/ops/status", **kw)
                oo = self.assertOperationOutcome(r, status)
                self.assertIn("ops token", oo["issue"][0]["diagnostics"], r)
                for leak in ("dependencies", "tiers", "members", "journeys"):
                    self.assertNotIn(leak, r.text, r)
        r = self.server.get("/api/v1/ops/status", token=OPS_TOKEN)
        self.assertEqual(r.status, 200, r)
        self.assertIn("tiers", r.json())
        self.assertEqual(self.server.get("/healthz").status, 200)

    # -- alerts ------------------------------------------------------------------------------

    def test_alert_firing_repeated_resolved(self):
        fp = "a1f0000000000001"
        other = "a1f0000000000002"
        firing = webhook(alert("OpsE2eJourneyFailing", fp, journey="patient", vantage="edge"),
                         alert("OpsE2ePoolSaturated", other, severity="ticket", tier="high"))
        r = self.post("/api/v1/ops/alerts", firing)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"received": 2, "stored": 2})
        rows = self.cluster.rows("SELECT status, severity, labels, annotations, ends_at, received_by, "
                                 "received_at::text FROM ops_alert WHERE fingerprint = :'fp'", fp=fp)
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0]["status"], "firing")
        self.assertEqual(rows[0]["severity"], "page")
        self.assertEqual(rows[0]["labels"]["vantage"], "edge")
        self.assertEqual(rows[0]["annotations"]["summary"], "OpsE2eJourneyFailing is firing")
        self.assertIsNone(rows[0]["ends_at"])
        self.assertEqual(rows[0]["received_by"], "node-1")
        received_at = rows[0]["received_at"]

        # Alertmanager repeats the notification (repeat_interval, a second instance): stored once,
        # received_at unchanged.
        time.sleep(0.05)
        r = self.post("/api/v1/ops/alerts", firing)
        self.assertEqual(r.json(), {"received": 2, "stored": 0}, r)
        rows = self.cluster.rows("SELECT received_at::text FROM ops_alert WHERE fingerprint = :'fp'",
                                 fp=fp)
        self.assertEqual([x["received_at"] for x in rows], [received_at])

        # Firing now, in the status and the list.
        firing_now = {a["fingerprint"]: a for a in self.status()["alerts"]}
        self.assertIn(fp, firing_now)
        self.assertEqual(firing_now[fp]["alertname"], "OpsE2eJourneyFailing")
        self.assertEqual(firing_now[fp]["status"], "firing")
        self.assertEqual(firing_now[fp]["starts_at"], "2026-12-02T10:00:00.123Z")
        self.assertRegex(firing_now[fp]["received_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertIn(other, firing_now)
        listed = self.server.get("/api/v1/ops/alerts?status=firing&alertname=OpsE2eJourneyFailing",
                                 token=OPS_TOKEN)
        self.assertEqual(listed.status, 200, listed)
        self.assertEqual([a["fingerprint"] for a in listed.json()], [fp])

        # Resolved: a second row; no longer firing; the other alert still is.
        resolved = webhook(alert("OpsE2eJourneyFailing", fp, status="resolved",
                                 ends="2026-12-02T10:05:00Z", journey="patient", vantage="edge"))
        r = self.post("/api/v1/ops/alerts", resolved)
        self.assertEqual(r.json(), {"received": 1, "stored": 1}, r)
        self.assertEqual(self.count("ops_alert", f"fingerprint = '{fp}'"), 2)
        firing_now = {a["fingerprint"] for a in self.status()["alerts"]}
        self.assertNotIn(fp, firing_now)
        self.assertIn(other, firing_now)
        # A late repeat of the firing notification does not bring it back.
        self.post("/api/v1/ops/alerts", firing)
        self.assertNotIn(fp, {a["fingerprint"] for a in self.status()["alerts"]})

        listed = self.server.get("/api/v1/ops/alerts?alertname=OpsE2eJourneyFailing", token=OPS_TOKEN)
        self.assertEqual([(a["status"], a["ends_at"]) for a in listed.json()],
                         [("resolved", "2026-12-02T10:05:00.000Z"), ("firing", None)],
                         "newest first")
        # since: only what arrived from then on.
        since = listed.json()[0]["received_at"]
        listed = self.server.get(f"/api/v1/ops/alerts?since={since}&alertname=OpsE2eJourneyFailing",
                                 token=OPS_TOKEN)
        self.assertEqual([a["status"] for a in listed.json()], ["resolved"])
        self.assertEqual(self.server.get("/api/v1/ops/alerts?since=yesterday", token=OPS_TOKEN).status,
                         400)
        self.assertEqual(self.server.get("/api/v1/ops/alerts?state=firing", token=OPS_TOKEN).status,
                         400)

        # It fires again later: a new startsAt is a new firing.
        again = webhook(alert("OpsE2eJourneyFailing", fp, starts="2026-12-02T12:00:00Z",
                              journey="patient", vantage="edge"))
        self.assertEqual(self.post("/api/v1/ops/alerts", again).json()["stored"], 1)
        self.assertIn(fp, {a["fingerprint"] for a in self.status()["alerts"]})

        # One structured log line per alert.
        log = self.server.stderr_path.read_text()
        self.assertRegex(log, r'"event":"ops_alert","alertname":"OpsE2eJourneyFailing","status":"resolved",'
                              r'"severity":"page","fingerprint":"a1f0000000000001"')

    def test_refusals_store_nothing(self):
        body = webhook(alert("OpsE2eRefused", "bad0000000000001"))
        cases = [
            ("no token", dict(token=None), 401),
            ("wrong token", dict(token=secrets.token_hex(32)), 403),
            ("malformed", dict(token=None, headers={"Authorization": OPS_TOKEN}), 401),
            ("session-style token", dict(token=self.token("demo-provider")), 403),
        ]
        for what, kw, status in cases:
            with self.subTest(what):
                r = self.post("/api/v1/ops/alerts", body, **kw)
                self.assertRefused(r, status)
                if status == 401:
                    self.assertTrue(r.header("WWW-Authenticate", "").startswith("Bearer"), r)
                r = self.post("/api/v1/ops/journey-runs", run_report("patient", "refused", 1), **kw)
                self.assertRefused(r, status)
                self.assertRefused(self.server.get("/api/v1/ops/alerts", **kw), status)
        self.assertEqual(self.count("ops_alert", "alertname = 'OpsE2eRefused'"), 0)
        self.assertEqual(self.count("ops_journey_run", "vantage = 'refused'"), 0)
        log = self.server.stderr_path.read_text()
        self.assertIn('"event":"ops_token_refused","route":"ops.alerts.receive","reason":"no_token"', log)
        self.assertIn('"reason":"wrong_token"', log)
        self.assertNotIn(OPS_TOKEN, log)
        metrics = self.server.get("/metrics").text
        self.assertRegex(metrics, r'continuum_ops_refused_total\{reason="wrong_token"\} [1-9]')

        # Bad bodies: 400 naming the field (415 for another media type); nothing stored, not
        # even the valid alerts of the same payload.
        good = alert("OpsE2eRefused", "bad0000000000002")
        no_fingerprint = alert("OpsE2eRefused", "bad0000000000003")
        del no_fingerprint["fingerprint"]
        bad_time = alert("OpsE2eRefused", "bad0000000000004", starts="2026-12-02 10:00")
        no_name = alert("OpsE2eRefused", "bad0000000000005")
        del no_name["labels"]["alertname"]
        for what, payload, field in [
            ("missing fingerprint", webhook(good, no_fingerprint), "alerts[1].fingerprint"),
            ("bad startsAt", webhook(good, bad_time), "alerts[1].startsAt"),
            ("no alertname", webhook(no_name, good), "alerts[0].labels.alertname"),
            ("version 3", {**webhook(good), "version": "3"}, "version"),
            ("no alerts key", {k: v for k, v in webhook(good).items() if k != "alerts"}, "alerts"),
        ]:
            with self.subTest(what):
                self.assertRefused(self.post("/api/v1/ops/alerts", payload), 400, field)
        self.assertRefused(self.server.request("POST", "/api/v1/ops/alerts", body=b"{not json",
                                               token=OPS_TOKEN,
                                               headers={"Content-Type": "application/json"}), 400)
        self.assertRefused(self.server.request("POST", "/api/v1/ops/alerts", body=b"{}",
                                               token=OPS_TOKEN,
                                               headers={"Content-Type": "text/plain"}), 415)
        self.assertEqual(self.count("ops_alert", "alertname = 'OpsE2eRefused'"), 0)

        bad_run = run_report("patient", "refused", 1)
        bad_run["steps"][0]["duration_ms"] = "fast"
        self.assertRefused(self.post("/api/v1/ops/journey-runs", bad_run), 400, "steps[0].duration_ms")
        bad_run = run_report("patient", "refused", 1)
        del bad_run["success"]
        self.assertRefused(self.post("/api/v1/ops/journey-runs", bad_run), 400, "success")
        self.assertEqual(self.count("ops_journey_run", "vantage = 'refused'"), 0)

    def test_node_without_ops_token_refuses(self):
        other = self.cluster.add_server("node-no-ops", {"ops": None})
        try:
            r = other.post_json("/api/v1/ops/alerts", webhook(alert("OpsE2eNoToken", "cafe000000000001")),
                                token=OPS_TOKEN)
            oo = self.assertOperationOutcome(r, 403)
            self.assertIn("[ops] token_file", oo["issue"][0]["diagnostics"])
            self.assertEqual(self.count("ops_alert", "alertname = 'OpsE2eNoToken'"), 0)
            # So does the status view (topology and error text are for operators only).
            self.assertEqual(other.get("/api/v1/ops/status", token=OPS_TOKEN).status, 403)
        finally:
            other.stop()

    # -- journey runs --------------------------------------------------------------------

    def test_journey_runs_retention_and_status(self):
        for i in range(60):
            r = self.post("/api/v1/ops/journey-runs", run_report("patient", "edge", i, success=i != 59))
            self.assertEqual(r.status, 201, r)
        self.assertEqual(self.count("ops_journey_run", "journey = 'patient' AND vantage = 'edge'"), 50)
        oldest = self.cluster.scalar("SELECT to_char(min(started_at) AT TIME ZONE 'UTC', "
                                     "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM ops_journey_run "
                                     "WHERE journey = 'patient' AND vantage = 'edge'")
        self.assertEqual(oldest, run_start(10), "the 10 oldest runs are gone")
        # A retried report of the same run is stored once.
        r = self.post("/api/v1/ops/journey-runs", run_report("patient", "edge", 59, success=False))
        self.assertEqual((r.status, r.json()), (200, {"stored": False}), r)
        self.assertEqual(self.count("ops_journey_run", "journey = 'patient' AND vantage = 'edge'"), 50)
        # Another vantage keeps its own 50.
        self.assertEqual(self.post("/api/v1/ops/journey-runs",
                                   run_report("provider", "us-east", 3)).status, 201)

        runs = {(j["journey"], j["vantage"]): j for j in self.status()["journeys"]}
        last = runs[("patient", "edge")]
        self.assertFalse(last["success"])
        self.assertEqual(last["started_at"], run_start(59))
        self.assertEqual(last["finished_at"], run_start(59).replace(".000Z", ".900Z"))
        self.assertEqual(last["failed_step"], "records")
        self.assertEqual(last["error"], "GET /fhir/R4/Patient/1 answered 503")
        self.assertEqual([s["name"] for s in last["steps"]], ["login", "records"])
        self.assertEqual(last["steps"][1]["duration_ms"], 71)
        self.assertEqual(last["steps"][1]["reason"], "status")
        self.assertGreater(last["age_s"], 0)
        self.assertTrue(runs[("provider", "us-east")]["success"])
        self.assertIsNone(runs[("provider", "us-east")]["failed_step"])

    # -- metrics ---------------------------------------------------------------------------

    def test_metrics_for_alert_rules(self):
        text = self.server.get("/metrics").text
        for pattern in [
            r'continuum_build_info\{version="[^"]+",node="node-1",region="e2e"\} 1',
            # the release on every request series (canary and baseline told apart)
            r'continuum_http_request_duration_seconds_count\{route="[a-z_.]+",tier="[a-z]+",status="\d+",'
            r'version="[^"]+"\} \d+',
            r'continuum_tier_degraded\{tier="high",mode="read-only"\} 0',
            r'continuum_tier_degraded\{tier="low",mode="stale"\} 0',
            r'continuum_audit_journal_fs_avail_bytes [1-9]\d*',
            r'continuum_audit_journal_fs_size_bytes [1-9]\d*',
            r'continuum_db_pool_connections\{tier="critical",state="in_use"\} \d+',
            r'continuum_db_pool_size\{tier="ops"\} [1-9]',
            r'continuum_db_query_duration_seconds_bucket\{query="[a-z_.]+",outcome="ok",le="0.005"\} \d+',
            r'continuum_audit_journal_pending \d+',
            r'continuum_audit_ship_backlog \d+',
            r'continuum_ops_alerts_received_total\{status="firing"\} \d+',
            r'continuum_ops_alerts_received_total\{status="resolved"\} \d+',
        ]:
            self.assertRegex(text, pattern)
        version = re.search(r'continuum_build_info\{version="([^"]+)"', text).group(1)
        self.assertEqual(self.status()["version"], version, "/api/v1/ops/status names the release")
        avail = int(re.search(r"continuum_audit_journal_fs_avail_bytes (\d+)", text).group(1))
        size = int(re.search(r"continuum_audit_journal_fs_size_bytes (\d+)", text).group(1))
        self.assertLessEqual(avail, size)

    # -- last: the database goes away ------------------------------------------------------

    def test_zz_status_while_database_down(self):
        self.post("/api/v1/ops/alerts", webhook(alert("OpsE2eBeforeOutage", "dead000000000001")))
        self.cluster.pg.stop()
        try:
            t0 = time.monotonic()
            r = self.server.get("/api/v1/ops/status", token=OPS_TOKEN, timeout=10)
            self.assertLess(time.monotonic() - t0, 3.0)
            self.assertEqual(r.status, 200, r)
            st = r.json()
            self.assertIn("unavailable", st["alerts"])
            self.assertIn("unavailable", st["journeys"])
            self.assertIn("tiers", st)  # the rest still answers
            self.assertIn("database", st)
            r = self.post("/api/v1/ops/alerts", webhook(alert("OpsE2eDuringOutage", "dead000000000002")))
            self.assertEqual(r.status, 503, r)
            self.assertTrue(r.header("Retry-After"), r)
        finally:
            self.cluster.pg.start()
        self.server.wait_ready()

        def firing():
            alerts = self.status()["alerts"]
            return isinstance(alerts, list) and "dead000000000001" in {a["fingerprint"] for a in alerts}
        deadline = time.monotonic() + 20
        while not firing() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertTrue(firing())
