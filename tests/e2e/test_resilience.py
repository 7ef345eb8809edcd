"""Failure behaviour of one node.

PostgreSQL down: logins and reads answer 503 + OperationOutcome quickly; their audit
records are kept in the node's journal and reach audit_event once PostgreSQL is back;
reads work again without restarting the node.

Graceful shutdown: SIGTERM while requests are in flight lets them finish, then the
process exits 0 and leaves a verifiable audit trail."""

import json
import threading
import time
import unittest
import uuid

from harness import FHIR_JSON, ContinuumTestCase, wait_until

DEADLINE_S = 3.0


class PostgresDownTest(ContinuumTestCase):
    def test_outage_answers_503_keeps_auditing_and_recovers(self):
        s, c = self.server, self.cluster
        provider = self.token("demo-provider")
        patient = self.token("demo-patient")
        self.assertEqual(s.get("/fhir/R4/Patient/1", token=patient).status, 200)
        journal_before = len(s.journal_bytes())

        c.pg.stop()
        try:
            attempts = []
            # readiness flips to 503 (liveness stays up: the process is fine)
            wait_until(lambda: s.get("/readyz", timeout=DEADLINE_S + 2).status == 503, 10, 0.2, "/readyz 503")
            self.assertEqual(s.get("/healthz").status, 200)

            for _ in range(2):
                r = s.login_response("demo-patient", timeout=DEADLINE_S + 5, retry_throttled=False)
                attempts.append(("login", r))
            for path, token in (("/fhir/R4/Patient/1", patient), ("/fhir/R4/Patient/1/$summary", patient),
                                ("/fhir/R4/AllergyIntolerance?patient=1", provider),
                                ("/fhir/R4/Encounter?patient=1", provider)):
                attempts.append((path, s.get(path, token=token, timeout=DEADLINE_S + 5)))
            r = s.post_json("/fhir/R4/DocumentReference", {
                "resourceType": "DocumentReference", "status": "current", "docStatus": "preliminary",
                "subject": {"reference": "Patient/1"},
                "content": [{"attachment": {"contentType": "text/plain", "data": "b3V0YWdl", "title": "t"}}]},
                token=provider, content_type=FHIR_JSON, headers={"Idempotency-Key": "e2e-" + uuid.uuid4().hex},
                timeout=DEADLINE_S + 5)
            attempts.append(("create note", r))

            for what, r in attempts:
                with self.subTest(attempt=what):
                    self.assertOperationOutcome(r, 503)
                    # Reads keep retrying on fresh connections until the request deadline
                    # (a failover usually ends within it); the 503 comes by then at the latest.
                    self.assertLess(r.elapsed, DEADLINE_S + 0.75, f"{what} took {r.elapsed:.2f}s")
                    self.assertEchoesRequestId(r)

            # the attempts are in the journal, waiting to be shipped
            self.assertGreater(len(s.journal_bytes()), journal_before, "journal did not grow during the outage")
            journal = s.journal_bytes()
            not_journaled = [w for w, r in attempts if r.request_id.encode() not in journal]
            self.assertEqual(not_journaled, [], "attempts without a journal record")
        finally:
            c.pg.start()

        # back: the records reach audit_event and reads work again (no restart)
        for what, r in attempts:
            rows = c.wait_audit(r.request_id, timeout=15)
            self.assertTrue(all(a["outcome"] != "success" for a in rows), f"{what}: {rows}")
        wait_until(lambda: s.get("/fhir/R4/Patient/1", token=patient).status == 200, 15, 0.3,
                   "reads to work again after PostgreSQL came back")
        self.assertEqual(s.get("/readyz").status, 200)
        self.assertEqual(s.login_response("demo-patient").status, 200)
        self.assertTrue(s.alive())


class GracefulShutdownTest(ContinuumTestCase):
    SERVER_OVERRIDES = {"server": {"shutdown_grace_ms": 10000}}

    def test_sigterm_lets_in_flight_requests_finish(self):
        s, c = self.server, self.cluster
        if not s.alive():
            s.start()
        token = self.token("demo-provider")

        # 1. A request in flight for sure: headers and half the body sent before SIGTERM.
        body = json.dumps({"username": "demo-patient", "password": "continuum-demo"}).encode()
        head = (f"POST /api/v1/session HTTP/1.1\r\nHost: e2e\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        slow_result = {}

        def slow_client():
            slow_result["r"] = s.raw([head + body[:10], body[10:]], pause=1.0, timeout=15)

        slow = threading.Thread(target=slow_client)
        slow.start()

        # 2. Load on keep-alive connections.
        stop = threading.Event()
        ok, broken, lock = [], [], threading.Lock()

        def worker(n):
            client = s.client(timeout=15)
            while not stop.is_set():
                try:
                    r = client.request("GET", "/fhir/R4/Patient/1/$summary", token=token)
                except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
                    break  # no response started: the server had closed the idle connection
                except Exception as e:  # noqa: BLE001 - IncompleteRead (a cut response), timeout (a hang)
                    with lock:
                        broken.append(repr(e))
                    break
                with lock:
                    (ok if r.status in (200, 503) else broken).append(r.status)
            client.close()

        workers = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for w in workers:
            w.start()
        time.sleep(0.5)  # slow client's headers are in; load is running

        s.terminate()
        t_term = time.monotonic()
        time.sleep(0.5)
        stop.set()
        for w in workers:
            w.join(20)
        slow.join(20)
        rc = s.wait(15)
        print(f"\n  exit {rc} {time.monotonic() - t_term:.2f}s after SIGTERM; {len(ok)} responses", flush=True)

        self.assertEqual(rc, 0, "exit code after SIGTERM\n" + s.log_tail())
        self.assertEqual(broken, [], "responses cut or failed during shutdown")
        self.assertGreater(len(ok), 0)
        r = slow_result.get("r")
        self.assertIsNotNone(r, "the in-flight request got no response")
        self.assertEqual(r.status, 200, r)
        self.assertIn("access_token", r.json())

        # nothing lost: the trail verifies
        cp = c.audit_verify()
        self.assertEqual(cp.returncode, 0, f"{cp.stdout}\n{cp.stderr}")

    def test_sigterm_when_idle_exits_quickly(self):
        s = self.server
        if not s.alive():
            s.start()
        conn_token = self.token("demo-patient")
        c = s.client()
        self.assertEqual(c.request("GET", "/fhir/R4/Patient/1", token=conn_token).status, 200)  # idle keep-alive
        t0 = time.monotonic()
        s.terminate()
        self.assertEqual(s.wait(15), 0)
        self.assertLess(time.monotonic() - t0, 5.0, "an idle keep-alive connection held up shutdown")
        c.close()
        s.start()


class DrainOnSigtermTest(ContinuumTestCase):
    """[server] drain_ms: SIGTERM first drains (readiness 503 "draining" so the edge takes
    the node out, requests still served, each answer closes its connection), then stops."""
    SERVER_OVERRIDES = {"server": {"drain_ms": 3000, "shutdown_grace_ms": 5000}}

    def test_sigterm_drains_before_it_stops(self):
        s = self.server
        token = self.token("demo-patient")
        client = s.client()
        r = client.request("GET", "/fhir/R4/Patient/1", token=token)
        self.assertEqual(r.status, 200)
        self.assertNotEqual((r.header("Connection") or "").lower(), "close")
        t0 = time.monotonic()
        s.terminate()
        # readiness goes false at once, with the reason for an operator
        wait_until(lambda: s.get("/readyz").status == 503, 1.0, 0.05, "/readyz 503 after SIGTERM")
        self.assertEqual(s.get("/readyz").json()["status"], "draining")
        self.assertEqual(s.get("/readyz", anonymous=True).status, 503)
        # still serving: on the open keep-alive connection (which it then closes) and on a new one
        r = client.request("GET", "/fhir/R4/Patient/1", token=token)
        self.assertEqual(r.status, 200)
        self.assertEqual((r.header("Connection") or "").lower(), "close")
        client.close()
        r = s.get("/fhir/R4/Patient/1", token=token)
        self.assertEqual(r.status, 200)
        self.assertLess(time.monotonic() - t0, 2.8, "the checks above ran after the drain ended")
        self.assertEqual(s.wait(15), 0)
        took = time.monotonic() - t0
        print(f"\n  exit {took:.2f}s after SIGTERM (drain_ms 3000)", flush=True)
        self.assertGreaterEqual(took, 2.9, "stopped before drain_ms was over")
        self.assertLess(took, 5.0)
        s.start()

    def test_a_second_sigterm_ends_the_drain(self):
        s = self.server
        if not s.alive():
            s.start()
        t0 = time.monotonic()
        s.terminate()
        wait_until(lambda: s.get("/readyz").status == 503, 1.0, 0.05, "/readyz 503 after SIGTERM")
        s.terminate()
        self.assertEqual(s.wait(15), 0)
        self.assertLess(time.monotonic() - t0, 1.5, "a second SIGTERM did not end the drain")
        s.start()


if __name__ == "__main__":
    unittest.main()
