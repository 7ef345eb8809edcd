"""`continuum probe` (synthetic journeys) and `continuum synthetic-accounts`, end to end.

One portal node on a real PostgreSQL, synthetic accounts for two vantages: `edge` (node-1)
and `stopped` (node-2, stopped halfway through). The prober runs the shipped journeys
every second against both, reports runs to a small HTTP server of this test (standing in
for the portal's POST /api/v1/ops/journey-runs) and receives an Alertmanager webhook.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import harness
from harness import BINARY, REPO, ContinuumTestCase, free_port, wait_until

PASSWORD = "synthetic-e2e-9f3a7c1d5e2b8a6f4c0d"   # 32+ characters: a generated secret
REPORT_TOKEN = "0123456789abcdef"
JOURNEY_STEPS = {
    "patient": ["login", "summary", "medications", "find_slot", "book", "cancel", "logout"],
    "provider": ["login", "lookup", "history", "add_note", "sign", "logout"],
}


class ReportSink:
    """A tiny HTTP server that records the journey runs POSTed to it."""

    def __init__(self):
        self.runs: list[dict] = []
        self.auth: list[str] = []
        self.closed = False
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                sink.auth.append(self.headers.get("Authorization") or "")
                try:
                    sink.runs.append(json.loads(body))
                except ValueError:
                    sink.runs.append({"unparsable": body.decode("utf-8", "replace")})
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        for _ in range(20):
            port = free_port()
            try:
                self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
                break
            except OSError:
                continue
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        harness._register(self)

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.server.shutdown()
        self.server.server_close()
        harness._unregister(self)


class ProbeProcess:
    """One `continuum probe` process, stopped by PID."""

    def __init__(self, dir: Path, config: Path):
        self.dir = dir
        self.config = config
        self.stderr_path = dir / "probe.stderr.log"
        self.proc = None
        harness._register(self)

    def start(self):
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen([str(BINARY), "probe", "--config", str(self.config)],
                                         stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         cwd=self.dir, start_new_session=True)

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        harness._unregister(self)


def http_get(port: int, path: str, timeout: float = 5) -> tuple[int, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.status, r.read().decode()


class ProbeTest(ContinuumTestCase):
    # Two logins a second per vantage from one address: above the default login throttle.
    # Deadlines raised: four Argon2id logins a second on two cores shared with builds.
    SERVER_OVERRIDES = {"auth": {"login_burst": 1000, "login_rate_per_minute": 60000},
                        "database": {"critical": {"deadline_ms": 20000},
                                     "high": {"deadline_ms": 20000}}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.cluster
        cls.node2 = c.add_server("node-2", cls.SERVER_OVERRIDES)
        cls.pw_file = c.dir / "synthetic.password"
        cls.pw_file.write_text(PASSWORD + "\n")
        cls.provision = c.cli("synthetic-accounts", "--database-url", c.url, "--vantage", "edge",
                              "--vantage", "stopped", "--password-file", cls.pw_file, check=True)
        cls.reprovision = c.cli("synthetic-accounts", "--database-url", c.url, "--vantage", "edge",
                                "--vantage", "stopped", "--password-file", cls.pw_file, check=True)
        cls.synthetic_id = str(c.scalar("SELECT id FROM patient WHERE mrn = 'SYNTHETIC-edge'"))
        # The shipped journeys, with budgets raised: this test is about behaviour, and the
        # two cores are shared with builds; the budget itself is covered by unit tests.
        jdir = c.dir / "journeys"
        jdir.mkdir()
        for f in (REPO / "deploy" / "probe" / "journeys").glob("*.json"):
            j = json.loads(f.read_text())
            for s in j["steps"]:
                s["budget_ms"] = 20000
            (jdir / f.name).write_text(json.dumps(j))
        cls.sink = ReportSink()
        cls.addClassCleanup(cls.sink.close)
        token_file = c.dir / "report.token"
        token_file.write_text(REPORT_TOKEN + "\n")
        cls.alerts_log = c.dir / "alerts.jsonl"
        cls.probe_port = free_port()
        config = c.dir / "probe.toml"
        config.write_text(f"""
[probe]
listen_address = "127.0.0.1"
listen_port = {cls.probe_port}
interval_s = 1
journeys_dir = "journeys"
request_timeout_ms = 25000

[report]
url = "http://127.0.0.1:{cls.sink.port}/api/v1/ops/journey-runs"
token_file = "report.token"
timeout_ms = 1000

[alerts]
log_file = "alerts.jsonl"

[[vantage]]
name = "edge"
base_urls = ["http://127.0.0.1:{cls.server.port}"]
password_file = "synthetic.password"

[[vantage]]
name = "stopped"
base_urls = ["http://127.0.0.1:{cls.node2.port}"]
password_file = "synthetic.password"
""")
        check = c.cli("probe", "--config", config, "--check")
        assert check.returncode == 0, check.stderr
        cls.probe = ProbeProcess(c.dir, config)
        cls.addClassCleanup(cls.probe.close)
        cls.probe.start()
        wait_until(lambda: http_get(cls.probe_port, "/metrics")[0] == 200, 15, 0.2,
                   "the prober's /metrics")

    def tearDown(self):
        super().tearDown()
        outcome = getattr(self, "_outcome", None)
        if outcome is not None and not getattr(outcome, "success", True):
            print("\n" + harness.tail(self.probe.stderr_path, 40))
            try:
                print(http_get(self.probe_port, "/runs")[1][-6000:])
            except OSError as e:
                print(f"/runs: {e}")

    def metrics(self) -> str:
        return http_get(self.probe_port, "/metrics")[1]

    def runs(self) -> dict:
        out = {}
        for s in json.loads(http_get(self.probe_port, "/runs")[1])["journeys"]:
            out[(s["journey"], s["vantage"])] = s["runs"]
        return out

    def wait_metric(self, line: str, timeout: float = 40):
        try:
            return wait_until(lambda: line in self.metrics().splitlines(), timeout, 0.3, line)
        except TimeoutError as e:
            # Say why: the last run of every journey and vantage (no PHI in there).
            last = {f"{k[0]}/{k[1]}": (r[0].get("failed_step"), r[0].get("error"))
                    for k, r in self.runs().items() if r}
            raise AssertionError(f"{e}; last runs: {last}") from None

    # -- synthetic accounts --------------------------------------------------------------

    def test_1a_a_short_synthetic_password_is_refused(self):
        short = self.cluster.dir / "short.password"
        short.write_text("a-generated-secret-31-chars-lon\n")   # 31 characters
        cp = self.cluster.cli("synthetic-accounts", "--database-url", self.cluster.url, "--vantage", "edge",
                              "--password-file", short)
        self.assertNotEqual(cp.returncode, 0)
        self.assertIn("at least 32 characters", cp.stderr)
        # nothing changed: the edge accounts still log in with the real password
        tok = self.server.login("synthetic-patient-edge", PASSWORD)
        self.assertTrue(tok)
        self.server.logout(tok)  # test_4 checks that synthetic sessions do not pile up

    def test_1_synthetic_accounts_are_idempotent_and_tagged(self):
        self.assertIn("(created)", self.provision.stdout)
        self.assertNotIn("(created)", self.reprovision.stdout)
        self.assertIn("0 password(s) changed, 0 slot(s) added", self.reprovision.stdout)
        c = self.cluster
        rows = c.rows("SELECT username, synthetic FROM account WHERE username LIKE 'synthetic-%' "
                      "ORDER BY username")
        self.assertEqual([r["username"] for r in rows],
                         ["synthetic-patient-edge", "synthetic-patient-stopped",
                          "synthetic-provider-edge", "synthetic-provider-stopped"])
        self.assertTrue(all(r["synthetic"] is True for r in rows))
        # machine secrets get the light Argon2id cost (auth/password.hpp), people's the full one
        self.assertEqual(c.scalar("SELECT count(*) FROM account WHERE synthetic AND "
                                  "password_hash LIKE '$argon2id$v=19$m=2048,t=1,p=1$%'"), 4)
        self.assertEqual(c.scalar("SELECT count(*) FROM account WHERE NOT synthetic AND "
                                  "password_hash NOT LIKE '$argon2id$v=19$m=65536,t=2,p=1$%'"), 0)
        self.assertEqual(c.scalar("SELECT count(*) FROM patient WHERE synthetic"), 2)
        self.assertEqual(c.scalar("SELECT count(*) FROM care_relationship cr JOIN practitioner p "
                                  "ON p.id = cr.practitioner_id WHERE p.synthetic"), 2)
        tok = self.server.login("synthetic-patient-edge", PASSWORD)
        r = self.server.fhir(f"Patient/{self.synthetic_id}", token=tok)
        self.assertEqual(r.status, 200, r)
        p = r.json()
        self.assertEqual(p["meta"]["tag"][0]["system"], "urn:continuum:tag")
        self.assertEqual(p["meta"]["tag"][0]["code"], "synthetic")
        self.assertIn({"system": "urn:continuum:synthetic", "value": "edge"}, p["identifier"])
        r = self.server.fhir(f"Patient/{self.synthetic_id}/$summary", token=tok)
        self.assertEqual(r.json()["meta"]["tag"][0]["code"], "synthetic")
        self.server.logout(tok)  # test_4 checks that synthetic sessions do not pile up

    def test_2_real_users_do_not_see_synthetic_data(self):
        prov = self.token("demo-provider")
        for params, headers in (({"name": "edge"}, None),
                                ({"identifier": "urn:continuum:synthetic|edge"}, None),
                                ({"name": "edge"}, {"X-Break-Glass-Reason": "e2e check"}),
                                ({"identifier": "urn:continuum:synthetic|edge"},
                                 {"X-Break-Glass-Reason": "e2e check"})):
            r = self.server.fhir("Patient", token=prov, params=params, headers=headers)
            self.assertEqual(r.status, 200, r)
            ids = [e["resource"]["id"] for e in r.json().get("entry", [])]
            self.assertNotIn(self.synthetic_id, ids, (params, headers))
        pt = self.token("demo-patient")
        r = self.server.fhir("Slot", token=pt, params={"status": "free", "_count": "100"})
        self.assertEqual(r.status, 200, r)
        synthetic = {str(row["id"]) for row in self.cluster.rows(
            "SELECT id FROM practitioner WHERE synthetic")}
        for e in r.json().get("entry", []):
            actor = json.dumps(e["resource"])
            for sid in synthetic:
                self.assertNotIn(f"Practitioner/{sid}", actor)

    def test_2b_synthetic_accounts_never_break_the_glass(self):
        # The prober's provider account may read its own synthetic patient, never a real
        # patient's chart, not even with a break-the-glass reason; the refusal is audited.
        prov = self.server.login("synthetic-provider-edge", PASSWORD)
        r = self.server.fhir(f"Patient/{self.synthetic_id}", token=prov)
        self.assertEqual(r.status, 200, r)
        real = str(self.cluster.scalar("SELECT min(id) FROM patient WHERE NOT synthetic"))
        for path, params in ((f"Patient/{real}", None), ("Patient", {"name": "a"})):
            r = self.server.fhir(path, token=prov, params=params,
                                 headers={"X-Break-Glass-Reason": "e2e: must be refused"})
            self.assertEqual(r.status, 403, (path, r))
            self.assertIn("Synthetic monitoring accounts cannot break the glass", r.text)
        self.server.logout(prov)  # test_4 checks that synthetic sessions do not pile up
        wait_until(lambda: self.cluster.scalar(
            "SELECT count(*) FROM audit_event WHERE actor = 'synthetic-provider-edge' "
            "AND outcome = 'denied'") >= 2, 30, 0.5, "both refusals in the audit table")

    def test_3_note_retention_keeps_fifty_synthetic_notes_and_real_notes_stay(self):
        c = self.cluster
        pid = c.scalar("SELECT id FROM patient WHERE mrn = 'SYNTHETIC-stopped'")
        c.sql(f"INSERT INTO clinical_note (patient_id, author_id, status, title, content) "
              f"SELECT {pid}, {pid}, 'preliminary', 'n' || g, 'x' FROM generate_series(1, 60) g")
        c.sql(f"UPDATE clinical_note SET status = 'final' WHERE patient_id = {pid} AND title LIKE 'n%'")
        c.sql(f"INSERT INTO clinical_note (patient_id, author_id, status, title, content) "
              f"VALUES ({pid}, {pid}, 'preliminary', 'newest', 'x')")
        self.assertEqual(c.scalar(f"SELECT count(*) FROM clinical_note WHERE patient_id = {pid}"),
                         50)
        self.assertEqual(c.scalar(f"SELECT count(*) FROM clinical_note WHERE patient_id = {pid} "
                                  "AND title = 'newest'"), 1)
        # A plain delete is still refused, for synthetic notes too.
        cp = harness.run([harness.PSQL, c.url, "-v", "ON_ERROR_STOP=1", "-c",
                          f"DELETE FROM clinical_note WHERE patient_id = {pid}"], timeout=30)
        self.assertNotEqual(cp.returncode, 0)
        self.assertRegex(cp.stderr + cp.stdout, "never deleted|signed and cannot be changed")
        # The flag does not open real patients' notes.
        real = c.scalar("SELECT p.id FROM patient p JOIN care_relationship cr ON cr.patient_id = p.id "
                        "WHERE NOT p.synthetic LIMIT 1")
        author = c.scalar(f"SELECT practitioner_id FROM care_relationship WHERE patient_id = {real} "
                          "LIMIT 1")
        c.sql(f"INSERT INTO clinical_note (patient_id, author_id, status, title, content) "
              f"VALUES ({real}, {author}, 'preliminary', 'real', 'x')")
        cp = harness.run([harness.PSQL, c.url, "-v", "ON_ERROR_STOP=1", "-c",
                          "BEGIN; SELECT set_config('continuum.synthetic_retention', 'on', true); "
                          f"DELETE FROM clinical_note WHERE patient_id = {real}; COMMIT;"], timeout=30)
        self.assertNotEqual(cp.returncode, 0)
        self.assertEqual(c.scalar(f"SELECT continuum_prune_synthetic_notes({real}, 0)"), 0)
        self.assertEqual(c.scalar(f"SELECT count(*) FROM clinical_note WHERE patient_id = {real}"),
                         1)

    def test_3b_retention_is_exact_when_two_notes_arrive_at_once(self):
        """Two transactions each add a note to the same synthetic patient (already at 50)
        and commit one after the other: 50 stay, the two new ones among them. Before the
        prune's advisory lock (0022), each pruned without seeing the other's note: 51."""
        c = self.cluster
        # a synthetic patient of this test's own (the prober's patients keep their notes for
        # the journeys' checks)
        c.sql("INSERT INTO patient (id, mrn, family, given, gender, birth_date, facility_id, synthetic) "
              "SELECT max(id) + 1, 'SYNTHETIC-retention-race', 'Race', 'Retention', 'unknown', "
              "'1970-01-01', min(facility_id), true FROM patient")
        pid = c.scalar("SELECT id FROM patient WHERE mrn = 'SYNTHETIC-retention-race'")
        doc = c.scalar("SELECT min(id) FROM practitioner")
        c.sql(f"INSERT INTO clinical_note (patient_id, author_id, status, title, content) "
              f"SELECT {pid}, {doc}, 'preliminary', 'fill' || g, 'x' FROM generate_series(1, 60) g")

        def session():
            p = subprocess.Popen([harness.PSQL, c.url, "-X", "-q", "-v", "ON_ERROR_STOP=1"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
            self.addCleanup(lambda: p.poll() is None and p.kill())
            return p

        def say(p, sql):
            p.stdin.write(sql + "\n")
            p.stdin.flush()

        def blocked_on_the_lock():
            return c.scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") >= 1

        a, b = session(), session()
        say(a, f"BEGIN; INSERT INTO clinical_note (patient_id, author_id, status, title, content) "
               f"VALUES ({pid}, {doc}, 'preliminary', 'race-a', 'x');")
        wait_until(lambda: c.scalar(f"SELECT count(*) FROM pg_stat_activity WHERE state = "
                                    "'idle in transaction'") >= 1, 10, 0.05, "session a inside its transaction")
        say(b, f"BEGIN; INSERT INTO clinical_note (patient_id, author_id, status, title, content) "
               f"VALUES ({pid}, {doc}, 'preliminary', 'race-b', 'x');")
        # b now waits for a's prune (with the lock), or has inserted and pruned already
        # (without it): give it the time either takes, then let both commit
        end = time.monotonic() + 3
        while time.monotonic() < end and not blocked_on_the_lock():
            time.sleep(0.05)
        say(a, "COMMIT;")
        say(b, "COMMIT;")
        for p in (a, b):
            out, _ = p.communicate("\\q\n", timeout=30)
            self.assertEqual(p.returncode, 0, out)
        rows = c.rows(f"SELECT title FROM clinical_note WHERE patient_id = {pid} ORDER BY created_at DESC, id DESC")
        titles = [r["title"] for r in rows]
        self.assertLessEqual(len(titles), 50, f"{len(titles)} notes kept")
        self.assertIn("race-a", titles)
        self.assertIn("race-b", titles)

    # -- the prober ----------------------------------------------------------------------

    def test_4_both_journeys_pass_with_metrics_runs_and_reports(self):
        for j in ("patient", "provider"):
            self.wait_metric(f'continuum_probe_journey_success{{journey="{j}",vantage="edge"}} 1')
        m = self.metrics()
        self.assertIn("continuum_probe_up 1", m.splitlines())
        for j, steps in JOURNEY_STEPS.items():
            for s in steps:
                self.assertIn(f'continuum_probe_step_success{{journey="{j}",vantage="edge",'
                              f'step="{s}"}} 1', m)
                self.assertRegex(m, re.escape(f'continuum_probe_step_duration_seconds{{journey="{j}",'
                                              f'vantage="edge",step="{s}"}} ') + r"[0-9.e-]+\n")
            self.assertRegex(m, re.escape(f'continuum_probe_journey_runs_total{{journey="{j}",'
                                          f'vantage="edge",result="success"}} ') + r"[1-9]")
        runs = self.runs()
        for j, steps in JOURNEY_STEPS.items():
            last = next(r for r in runs[(j, "edge")] if r["success"])
            self.assertEqual([s["name"] for s in last["steps"]], steps)
            for s in last["steps"]:
                self.assertTrue(s["ok"])
                self.assertGreater(s["duration_ms"], 0)
                self.assertEqual(s["budget_ms"], 20000)
            self.assertLessEqual(len(runs[(j, "edge")]), 20)
        # Reported to the stand-in of POST /api/v1/ops/journey-runs, with the token.
        wait_until(lambda: any(r.get("journey") == "provider" and r.get("success")
                               for r in self.sink.runs), 15, 0.2, "a reported provider run")
        self.assertTrue(all(a == f"Bearer {REPORT_TOKEN}" for a in self.sink.auth))
        rep = next(r for r in self.sink.runs if r.get("journey") == "patient" and r.get("success"))
        for k in ("journey", "vantage", "target", "started_at", "finished_at", "success", "steps"):
            self.assertIn(k, rep)
        self.assertEqual(set(rep["steps"][0]),
                         {"name", "method", "path", "status", "duration_ms", "budget_ms", "ok"})
        # The journeys' side effects: cancelled bookings, signed notes, no notifications.
        c = self.cluster
        sid = self.synthetic_id
        self.assertGreaterEqual(int(c.scalar(
            f"SELECT count(*) FROM appointment WHERE patient_id = {sid} AND status = 'cancelled'")), 1)
        self.assertEqual(c.scalar(
            f"SELECT count(*) FROM appointment WHERE patient_id = {sid} AND status = 'booked' "
            "AND created_at < now() - interval '10 seconds'"), 0)
        self.assertGreaterEqual(int(c.scalar(
            f"SELECT count(*) FROM clinical_note WHERE patient_id = {sid} AND status = 'final'")), 1)
        self.assertEqual(c.scalar("SELECT count(*) FROM notification n JOIN patient p ON "
                                  "p.id = n.patient_id WHERE p.synthetic"), 0)
        self.assertEqual(c.scalar("SELECT count(*) FROM invoice i JOIN patient p ON "
                                  "p.id = i.patient_id WHERE p.synthetic"), 0)
        # Sessions do not pile up: every run logged out.
        self.assertEqual(c.scalar(
            "SELECT count(*) FROM session s JOIN account a ON a.id = s.account_id WHERE "
            "a.synthetic AND s.revoked_at IS NULL AND s.created_at < now() - interval '10 seconds'"),
            0)
        # No password, token or patient name in the prober's log.
        log = self.probe.stderr_path.read_text()
        self.assertNotIn(PASSWORD, log)
        self.assertNotIn(REPORT_TOKEN, log)

    def test_5_alertmanager_webhook_appends_to_the_log(self):
        payload = {"version": "4", "status": "firing", "receiver": "log", "alerts": [
            {"status": "firing", "labels": {"alertname": "JourneyFailing", "severity": "page"},
             "annotations": {"summary": "x"}, "startsAt": "2026-12-02T09:00:00Z",
             "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "abc123"},
            {"status": "resolved", "labels": {"alertname": "Other"},
             "startsAt": "2026-12-02T08:00:00Z", "endsAt": "2026-12-02T08:30:00Z",
             "fingerprint": "def456"}]}
        req = urllib.request.Request(f"http://127.0.0.1:{self.probe_port}/alerts",
                                     data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            self.assertEqual(r.status, 200)
            self.assertEqual(json.loads(r.read())["received"], 2)
        lines = [json.loads(x) for x in self.alerts_log.read_text().splitlines()]
        self.assertEqual(len(lines), 2)
        self.assertEqual(lines[0]["status"], "firing")
        self.assertEqual(lines[0]["labels"]["alertname"], "JourneyFailing")
        self.assertEqual(lines[0]["startsAt"], "2026-12-02T09:00:00Z")
        self.assertIn("received_at", lines[0])
        self.assertEqual(lines[1]["status"], "resolved")
        bad = urllib.request.Request(f"http://127.0.0.1:{self.probe_port}/alerts", data=b"{}",
                                     method="POST")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(bad, timeout=5)
        self.assertEqual(e.exception.code, 400)

    def test_6_a_stopped_target_fails_the_journey_at_the_step_that_broke(self):
        for j in ("patient", "provider"):
            self.wait_metric(f'continuum_probe_journey_success{{journey="{j}",vantage="stopped"}} 1')
        self.node2.stop()
        for j in ("patient", "provider"):
            self.wait_metric(f'continuum_probe_journey_success{{journey="{j}",vantage="stopped"}} 0')
            self.wait_metric(f'continuum_probe_journey_failure_info{{journey="{j}",vantage="stopped",'
                             'step="login",status="0",reason="transport"} 1')
        m = self.metrics()
        self.assertNotIn('continuum_probe_step_success{journey="patient",vantage="stopped",'
                         'step="summary"}', m)  # steps that did not run are absent
        self.assertIn('continuum_probe_journey_success{journey="patient",vantage="edge"} 1', m)
        last = self.runs()[("patient", "stopped")][0]
        self.assertFalse(last["success"])
        self.assertEqual(last["failed_step"], "login")
        self.assertEqual(last["steps"][0]["reason"], "transport")
        self.assertIn("login", last["error"])
        # Failed runs are reported too.
        wait_until(lambda: any(r.get("vantage") == "stopped" and r.get("failed_step") == "login"
                               for r in self.sink.runs), 15, 0.2, "a reported failed run")
        self.assertIn("FAILED at step login", self.probe.stderr_path.read_text())

    def test_7_a_report_url_that_is_down_is_counted_and_does_not_block(self):
        self.sink.close()
        self.wait_metric('continuum_probe_journey_success{journey="patient",vantage="edge"} 1')
        wait_until(lambda: re.search(r"^continuum_probe_report_failures_total [1-9]",
                                     self.metrics(), re.M), 20, 0.3, "report failures counted")
        before = self.runs()[("provider", "edge")][0]["finished_at"]
        wait_until(lambda: self.runs()[("provider", "edge")][0]["finished_at"] != before, 15, 0.3,
                   "another provider run")

    def test_8_a_changed_password_is_the_only_change(self):
        c = self.cluster
        other = c.dir / "other.password"
        other.write_text("another-synthetic-7d1e4b9c2a5f8e3d6b0c\n")
        cp = c.cli("synthetic-accounts", "--database-url", c.url, "--vantage", "edge",
                   "--password-file", other, check=True)
        self.assertIn("2 password(s) changed, 0 slot(s) added", cp.stdout)
        self.assertNotIn("(created)", cp.stdout)
        # A booking a failed run left behind (older than 10 minutes) is cancelled.
        pid = c.scalar("SELECT id FROM patient WHERE mrn = 'SYNTHETIC-stopped'")
        c.sql(f"INSERT INTO appointment (slot_id, patient_id, created_at) SELECT id, {pid}, "
              "now() - interval '1 hour' FROM slot WHERE practitioner_id = "
              f"{pid} AND status = 'free' ORDER BY start_at LIMIT 1")
        cp = c.cli("synthetic-accounts", "--database-url", c.url, "--vantage", "edge",
                   "--vantage", "stopped", "--password-file", self.pw_file, check=True)
        self.assertIn("2 password(s) changed", cp.stdout)
        self.assertIn("1 stale booking(s) cancelled", cp.stdout)
        self.assertEqual(c.scalar(f"SELECT count(*) FROM appointment WHERE patient_id = {pid} "
                                  "AND status = 'booked'"), 0)


if __name__ == "__main__":
    import unittest
    unittest.main()
