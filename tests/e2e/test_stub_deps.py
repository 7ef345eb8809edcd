"""`continuum stub-deps`: the stand-in external dependencies, driven over the wire.

Fault modes (ok, error, timeout, slow, refuse) for payments, EHR and SMTP, the admin API,
idempotent charges and refills (exactly once in /admin/log), declines, input
validation, a real SMTP conversation with smtplib, EHR paging and incremental sync,
graceful SIGTERM and --data-dir persistence across a restart. Needs the binary only
(no PostgreSQL)."""

import http.client
import json
import smtplib
import socket
import threading
import time
import unittest
import uuid
from email.message import EmailMessage
from urllib.parse import urlsplit

import harness
from stubdeps import DEPENDENCIES, OFFSETS, StubDeps, http_request

CHARGE = {"amount_cents": 2500, "currency": "USD", "reference": "invoice-1001"}


def key() -> str:
    return "e2e-" + uuid.uuid4().hex



def executed(log: list[dict]) -> list[dict]:
    """The calls a stand-in acted on (its log also lists replays, answered from memory)."""
    return [e for e in log if not e.get("replay")]

class StubDepsTestCase(unittest.TestCase):
    UPDATE_INTERVAL_MS = 0  # no background EHR changes: counts stay exact

    @classmethod
    def setUpClass(cls):
        cls.deps = StubDeps(update_interval_ms=cls.UPDATE_INTERVAL_MS, tls=False)
        cls.addClassCleanup(cls.deps.close)
        cls.deps.start()

    def setUp(self):
        self.deps.reset()

    def tearDown(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is not None and not getattr(outcome, "success", True):
            print(f"\n--- stub-deps stderr:\n{harness.tail(self.deps.stderr_path, 30)}")

    def charge(self, body=None, idem=None, timeout=10.0, headers=None):
        h = {"Idempotency-Key": idem or key()}
        h.update(headers or {})
        return self.deps.request("payments", "POST", "/v1/charges", body or CHARGE, h, timeout)

    def assertError(self, r, status):
        self.assertEqual(r.status, status, r)
        body = r.json()
        self.assertIsInstance(body.get("error"), str, r)
        self.assertTrue(body["error"], r)
        return body


class AdminTest(StubDepsTestCase):
    def test_lists_every_dependency_with_mode_and_port(self):
        r = self.deps.admin("GET", "/admin/faults")
        self.assertEqual(r.status, 200, r)
        faults = r.json()["faults"]
        self.assertEqual(sorted(faults), sorted(DEPENDENCIES))
        for name, f in faults.items():
            self.assertEqual(f["mode"], "ok", name)
            self.assertEqual(f["port"], self.deps.base + OFFSETS[name], name)
            self.assertTrue(f["listening"], name)

    def test_put_returns_the_new_state(self):
        s = self.deps.set_fault("sms", "slow", 1234)
        self.assertEqual((s["dependency"], s["mode"], s["delay_ms"]), ("sms", "slow", 1234))
        self.assertEqual(self.deps.set_fault("sms", "slow")["delay_ms"], 2000)  # the default
        faults = self.deps.admin("GET", "/admin/faults").json()["faults"]
        self.assertEqual(faults["sms"]["mode"], "slow")
        self.assertEqual(faults["payments"]["mode"], "ok")
        s = self.deps.set_fault("insurance", "refuse")
        self.assertFalse(s["listening"])

    def test_unknown_dependency_or_mode_is_a_400_naming_the_allowed_values(self):
        r = self.deps.admin("PUT", "/admin/faults/billing", {"mode": "error"})
        self.assertIn("ehr, pharmacy, insurance, payments, sms, smtp", self.assertError(r, 400)["error"])
        r = self.deps.admin("PUT", "/admin/faults/payments", {"mode": "flaky"})
        self.assertIn("ok, error, timeout, slow, refuse", self.assertError(r, 400)["error"])
        for bad in ({}, {"mode": "slow", "delay_ms": -5}, {"mode": "slow", "delay_ms": "2s"},
                    {"mode": "ok", "extra": 1}, "not json", [1]):
            r = self.deps.admin("PUT", "/admin/faults/payments", bad)
            self.assertError(r, 400)
        self.assertError(self.deps.admin("GET", "/admin/log/billing"), 400)
        self.assertEqual(self.deps.admin("GET", "/admin/nothing").status, 404)
        self.assertEqual(self.deps.admin("POST", "/admin/faults").status, 405)
        # Nothing changed.
        self.assertEqual(self.deps.admin("GET", "/admin/faults").json()["faults"]["payments"]["mode"], "ok")

    def test_every_request_is_one_json_access_line(self):
        rid = "e2e-" + uuid.uuid4().hex
        r = self.deps.request("insurance", "POST", "/v1/eligibility",
                              {"member_id": "M1", "payer": "Acme", "service": "visit"},
                              {"X-Request-Id": rid})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("X-Request-Id"), rid)

        def logged():
            return [l for l in self.deps.access_lines() if l.get("request_id") == rid]
        lines = harness.wait_until(logged, 5, message="the access line")
        self.assertEqual(len(lines), 1)
        self.assertEqual(lines[0]["dependency"], "insurance")
        self.assertEqual(lines[0]["status"], 200)
        self.assertEqual(lines[0]["path"], "/v1/eligibility")
        self.assertNotIn("M1", json.dumps(lines[0]))  # no member ids in the log


class FaultModesTest(StubDepsTestCase):
    """error -> 503, slow -> delay, timeout -> the client times out, refuse -> connection
    refused, ok -> recovers; for payments and the EHR."""

    def ehr_search(self, timeout=10.0):
        return self.deps.request("ehr", "GET", "/fhir/R4/Patient?_count=1", timeout=timeout)

    def test_payments(self):
        self.deps.set_fault("payments", "error")
        self.assertEqual(self.assertError(self.charge(), 503)["code"], "unavailable")

        self.deps.set_fault("payments", "slow", 1500)
        r = self.charge()
        self.assertEqual(r.status, 201, r)
        self.assertGreaterEqual(r.elapsed, 1.45)

        self.deps.set_fault("payments", "timeout")
        t0 = time.monotonic()
        with self.assertRaises((TimeoutError, socket.timeout)):
            self.charge(timeout=1.0)
        self.assertLess(time.monotonic() - t0, 5)

        self.deps.set_fault("payments", "refuse")
        with self.assertRaises(ConnectionRefusedError):
            self.charge()

        self.deps.set_fault("payments", "ok")
        r = self.charge()
        self.assertEqual(r.status, 201, r)
        self.assertLess(r.elapsed, 1.0)  # the delay is gone
        # Only the slow and the ok charge went through; the held one never ran.
        self.assertEqual(len(executed(self.deps.log("payments"))), 2)

    def test_ehr(self):
        self.deps.set_fault("ehr", "error")
        r = self.ehr_search()
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json()["resourceType"], "OperationOutcome")

        self.deps.set_fault("ehr", "slow", 600)
        r = self.ehr_search()
        self.assertEqual(r.status, 200, r)
        self.assertGreaterEqual(r.elapsed, 0.55)

        self.deps.set_fault("ehr", "timeout")
        with self.assertRaises((TimeoutError, socket.timeout)):
            self.ehr_search(timeout=1.0)

        self.deps.set_fault("ehr", "refuse")
        with self.assertRaises(ConnectionRefusedError):
            self.ehr_search()

        self.deps.set_fault("ehr", "ok")
        r = self.ehr_search()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["resourceType"], "Bundle")

    def test_faults_are_per_dependency(self):
        self.deps.set_fault("payments", "refuse")
        r = self.deps.request("sms", "POST", "/v1/messages", {"to": "+15555550123", "body": "hi"})
        self.assertEqual(r.status, 202, r)
        self.assertEqual(self.ehr_search().status, 200)

    def test_refuse_drops_open_connections(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.deps.port("pharmacy"), timeout=5)
        try:
            conn.request("GET", "/v1/prescriptions/rx-1/fill-status")
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            self.assertFalse(r.will_close)  # keep-alive
            self.deps.set_fault("pharmacy", "refuse")
            with self.assertRaises((ConnectionError, http.client.HTTPException, OSError)):
                conn.request("GET", "/v1/prescriptions/rx-1/fill-status")
                conn.getresponse().read()
        finally:
            conn.close()

    def test_a_held_request_is_released_when_the_mode_turns_to_refuse(self):
        self.deps.set_fault("payments", "timeout")
        errors = []

        def call():
            try:
                self.charge(timeout=20)
            except Exception as e:  # noqa: BLE001 - the outcome is what we check
                errors.append(e)
        t = threading.Thread(target=call, daemon=True)
        t.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        self.deps.set_fault("payments", "refuse")
        t.join(10)
        self.assertFalse(t.is_alive())
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(len(errors), 1)
        self.assertIsInstance(errors[0], (ConnectionError, http.client.HTTPException, OSError))


class PaymentsTest(StubDepsTestCase):
    def test_same_key_twice_charges_once(self):
        k = key()
        first = self.charge(idem=k)
        self.assertEqual(first.status, 201, first)
        c = first.json()
        self.assertEqual(c["status"], "succeeded")
        self.assertEqual(c["amount_cents"], 2500)
        again = self.charge(idem=k)
        self.assertEqual(again.status, 200, again)
        self.assertEqual(again.json(), c)
        self.assertEqual(again.headers.get("Idempotent-Replayed"), "true")
        # Both calls are logged; only the first charged.
        log = self.deps.log("payments")
        self.assertEqual([(e["idempotency_key"], e["replay"]) for e in log],
                         [(k, False), (k, True)], log)
        self.assertEqual(log[0]["charge_id"], c["charge_id"])
        self.assertEqual(log[1]["http_status"], 200)

    def test_concurrent_retries_charge_once(self):
        k = key()
        results = []
        lock = threading.Lock()

        def call():
            r = self.charge(idem=k)
            with lock:
                results.append(r)
        threads = [threading.Thread(target=call) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        self.assertEqual(len(results), 8)
        self.assertEqual(sorted(r.status for r in results), [200] * 7 + [201])
        self.assertEqual(len({r.json()["charge_id"] for r in results}), 1)
        self.assertEqual(len(self.deps.log("payments")), 8)
        self.assertEqual(len(executed(self.deps.log("payments"))), 1)

    def test_same_key_with_another_body_is_409(self):
        k = key()
        self.assertEqual(self.charge(idem=k).status, 201)
        r = self.charge(dict(CHARGE, amount_cents=2600), idem=k)
        self.assertEqual(self.assertError(r, 409)["code"], "idempotency_key_reused")
        log = self.deps.log("payments")
        self.assertEqual(len(executed(log)), 1)
        self.assertEqual([e.get("http_status") for e in log if e["replay"]], [409])

    def test_decline(self):
        r = self.charge(dict(CHARGE, amount_cents=402))
        body = self.assertError(r, 402)
        self.assertEqual(body["code"], "card_declined")
        self.assertEqual(self.deps.log("payments")[0]["status"], "failed")

    def test_bad_input(self):
        for body in ({"amount_cents": 0, "currency": "USD", "reference": "r"},
                     {"amount_cents": 10.5, "currency": "USD", "reference": "r"},
                     {"amount_cents": 10, "currency": "EUR", "reference": "r"},
                     {"amount_cents": 10, "currency": "USD"},
                     {"amount_cents": 10, "currency": "USD", "reference": "r", "pan": "4242"},
                     "{not json", [1, 2]):
            self.assertError(self.charge(body), 400)
        r = self.deps.request("payments", "POST", "/v1/charges", CHARGE)  # no Idempotency-Key
        self.assertIn("Idempotency-Key", self.assertError(r, 400)["error"])
        r = self.charge(headers={"Content-Type": "text/plain"})
        self.assertError(r, 415)
        self.assertEqual(self.deps.request("payments", "GET", "/v1/charges").status, 405)
        self.assertEqual(self.deps.request("payments", "GET", "/v1/nothing").status, 404)
        self.assertEqual(self.deps.log("payments"), [])


class OtherStandInsTest(StubDepsTestCase):
    def test_pharmacy(self):
        r = self.deps.request("pharmacy", "GET", "/v1/prescriptions/rx-77/fill-status")
        self.assertEqual(r.status, 200, r)
        s = r.json()
        self.assertEqual(s["prescription"], "rx-77")
        self.assertIn(s["status"], ("filled", "ready", "in-progress"))
        self.assertEqual(self.deps.request("pharmacy", "GET", "/v1/prescriptions/rx-77/fill-status").json(), s)
        self.assertEqual(self.deps.request("pharmacy", "GET", "/v1/prescriptions/missing-1/fill-status").status, 404)

        k = key()
        body = {"prescription": "rx-77", "patient": "1"}
        a = self.deps.request("pharmacy", "POST", "/v1/refills", body, {"Idempotency-Key": k})
        self.assertEqual(a.status, 201, a)
        self.assertEqual(a.json()["status"], "requested")
        b = self.deps.request("pharmacy", "POST", "/v1/refills", body, {"Idempotency-Key": k})
        self.assertEqual((b.status, b.json()), (200, a.json()))
        self.assertEqual(len(self.deps.log("pharmacy")), 1)
        self.assertError(self.deps.request("pharmacy", "POST", "/v1/refills", body), 400)
        self.assertError(self.deps.request("pharmacy", "POST", "/v1/refills", {"patient": "1"},
                                           {"Idempotency-Key": key()}), 400)

    def test_insurance(self):
        body = {"member_id": "MBR-100200", "payer": "Acme Health", "service": "office-visit"}
        a = self.deps.request("insurance", "POST", "/v1/eligibility", body)
        self.assertEqual(a.status, 200, a)
        self.assertIsInstance(a.json()["eligible"], bool)
        self.assertIn("coverage", a.json())
        self.assertIn("checked_at", a.json())
        b = self.deps.request("insurance", "POST", "/v1/eligibility", body)
        self.assertEqual((b.json()["eligible"], b.json()["coverage"]),
                         (a.json()["eligible"], a.json()["coverage"]))
        r = self.deps.request("insurance", "POST", "/v1/eligibility", dict(body, member_id="INELIGIBLE-9"))
        self.assertFalse(r.json()["eligible"])
        for missing in ("member_id", "payer", "service"):
            b = {k: v for k, v in body.items() if k != missing}
            self.assertIn(missing, self.assertError(
                self.deps.request("insurance", "POST", "/v1/eligibility", b), 400)["error"])
        self.assertEqual(len(self.deps.log("insurance")), 3)

    def test_sms(self):
        k = key()
        body = {"to": "+15555550123", "body": "Your appointment is tomorrow at 9:00."}
        a = self.deps.request("sms", "POST", "/v1/messages", body, {"Idempotency-Key": k})
        self.assertEqual(a.status, 202, a)
        self.assertTrue(a.json()["message_id"])
        b = self.deps.request("sms", "POST", "/v1/messages", body, {"Idempotency-Key": k})
        self.assertEqual((b.status, b.json()["message_id"]), (200, a.json()["message_id"]))
        log = self.deps.log("sms")
        self.assertEqual([e["replay"] for e in log], [False, True])
        self.assertEqual(log[0]["to"], "+15555550123")
        self.assertError(self.deps.request("sms", "POST", "/v1/messages", dict(body, to="555-0123")), 400)
        self.assertError(self.deps.request("sms", "POST", "/v1/messages", {"to": "+15555550123"}), 400)


class EhrTest(StubDepsTestCase):
    def fetch_all(self, url: str, limit: int = 200) -> tuple[list[dict], int]:
        """Follows next links; returns (resources, pages)."""
        out, pages = [], 0
        while url and pages < limit:
            parts = urlsplit(url)
            self.assertEqual(parts.port, self.deps.port("ehr"), url)
            r = self.deps.request("ehr", "GET", parts.path + ("?" + parts.query if parts.query else ""))
            self.assertEqual(r.status, 200, r)
            b = r.json()
            self.assertEqual((b["resourceType"], b["type"]), ("Bundle", "searchset"))
            out += [e["resource"] for e in b.get("entry", [])]
            pages += 1
            url = next((l["url"] for l in b["link"] if l["relation"] == "next"), None)
        return out, pages

    def base(self):
        return f"http://127.0.0.1:{self.deps.port('ehr')}/fhir/R4"

    def test_metadata(self):
        r = self.deps.request("ehr", "GET", "/fhir/R4/metadata")
        self.assertEqual(r.status, 200, r)
        cs = r.json()
        self.assertEqual(cs["resourceType"], "CapabilityStatement")
        self.assertEqual(cs["fhirVersion"], "4.0.1")
        types = {res["type"] for res in cs["rest"][0]["resource"]}
        self.assertEqual(types, {"Patient", "Condition", "MedicationStatement", "AllergyIntolerance",
                                 "Encounter"})

    def test_patients_page_with_next_links_and_carry_the_portal_mrn(self):
        patients, pages = self.fetch_all(self.base() + "/Patient?_lastUpdated=gt2000-01-01&_count=40")
        self.assertEqual(len(patients), 300)
        self.assertEqual(pages, 8)
        self.assertEqual(len({p["id"] for p in patients}), 300)
        for p in patients:
            self.assertIn("lastUpdated", p["meta"])
            ident = p["identifier"][0]
            self.assertEqual(ident["system"], "urn:continuum:mrn")
            self.assertEqual(ident["value"], "MRN%010d" % int(p["id"]))
        stamps = [p["meta"]["lastUpdated"] for p in patients]
        self.assertEqual(stamps, sorted(stamps))

    def test_incremental_sync_sees_exactly_the_changes(self):
        types = ["Patient", "Condition", "MedicationStatement", "AllergyIntolerance", "Encounter"]
        latest = ""
        for t in types:
            res, _ = self.fetch_all(f"{self.base()}/{t}?_count=1000")
            self.assertTrue(res, t)
            latest = max([latest] + [r["meta"]["lastUpdated"] for r in res])
        r = self.deps.admin("POST", "/admin/ehr/tick?n=12")
        self.assertEqual(r.status, 200, r)
        changes = {(c["resourceType"], c["id"]) for c in r.json()["changes"]}
        synced = set()
        for t in types:
            res, _ = self.fetch_all(f"{self.base()}/{t}?_lastUpdated=gt{latest}&_count=2")
            for x in res:
                self.assertGreater(x["meta"]["lastUpdated"], latest)
                synced.add((t, x["id"]))
        self.assertEqual(synced, changes)

    def test_patient_filter_and_read(self):
        res, _ = self.fetch_all(self.base() + "/MedicationStatement?patient=1&_count=5")
        self.assertGreaterEqual(len(res), 2)
        self.assertTrue(all(m["subject"]["reference"] == "Patient/1" for m in res))
        r = self.deps.request("ehr", "GET", "/fhir/R4/Patient/1")
        self.assertEqual((r.status, r.json()["id"]), (200, "1"))
        r = self.deps.request("ehr", "GET", "/fhir/R4/Patient/100000")
        self.assertEqual((r.status, r.json()["resourceType"]), (404, "OperationOutcome"))

    def test_bad_searches_are_400_operation_outcomes(self):
        for q in ("Patient?_lastUpdated=gtyesterday", "Patient?_count=0", "Patient?_count=abc",
                  "Patient?name=smith", "Patient?_cursor=zzz", "Encounter?patient=x"):
            r = self.deps.request("ehr", "GET", "/fhir/R4/" + q)
            self.assertEqual(r.status, 400, (q, r))
            self.assertEqual(r.json()["resourceType"], "OperationOutcome", q)
        self.assertEqual(self.deps.request("ehr", "GET", "/fhir/R4/Observation").status, 404)
        self.assertEqual(self.deps.request("ehr", "POST", "/fhir/R4/Patient", {}).status, 405)


class SmtpTest(StubDepsTestCase):
    def message(self, subject="Your lab results are ready"):
        m = EmailMessage()
        m["From"] = "Continuum <no-reply@continuum.test>"
        m["To"] = "patient@example.org"
        m["Subject"] = subject
        m["Message-ID"] = f"<{uuid.uuid4().hex}@continuum.test>"
        m.set_content("Hello,\n.a line that starts with a dot\n\nLog in to read them.\n")
        return m

    def smtp(self, timeout=5.0):
        return smtplib.SMTP("127.0.0.1", self.deps.port("smtp"), timeout=timeout)

    def test_send_a_mail(self):
        m = self.message()
        with self.smtp() as s:
            code, _ = s.ehlo("portal.continuum.test")
            self.assertEqual(code, 250)
            self.assertTrue(s.has_extn("size"))
            self.assertEqual(s.send_message(m), {})
            self.assertEqual(s.noop()[0], 250)
        log = self.deps.log("smtp")
        self.assertEqual(len(log), 1, log)
        mail = log[0]
        self.assertEqual(mail["from"], "no-reply@continuum.test")
        self.assertEqual(mail["to"], ["patient@example.org"])
        self.assertEqual(mail["subject"], "Your lab results are ready")
        self.assertEqual(mail["message_id"], m["Message-ID"])
        self.assertEqual(mail["helo"], "portal.continuum.test")
        # What smtplib sent, CRLF line ends, after the server undid the dot-stuffing.
        sent = m.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if not sent.endswith(b"\r\n"):
            sent += b"\r\n"
        self.assertEqual(mail["size"], len(sent))

    def test_two_recipients_and_two_mails_on_one_connection(self):
        with self.smtp() as s:
            s.sendmail("a@continuum.test", ["x@example.org", "y@example.org"], b"Subject: one\r\n\r\nbody\r\n")
            s.sendmail("a@continuum.test", ["z@example.org"], b"Subject: two\r\n\r\nbody\r\n")
        log = self.deps.log("smtp")
        self.assertEqual([m["subject"] for m in log], ["one", "two"])
        self.assertEqual(log[0]["to"], ["x@example.org", "y@example.org"])

    def test_bad_sequences_and_syntax(self):
        with self.smtp() as s:
            self.assertEqual(s.docmd("MAIL", "FROM:<a@b.test>")[0], 503)  # before EHLO
            s.ehlo()
            self.assertEqual(s.docmd("RCPT", "TO:<a@b.test>")[0], 503)
            self.assertEqual(s.docmd("DATA")[0], 503)
            self.assertEqual(s.docmd("MAIL", "FROM:a@b.test")[0], 501)
            self.assertEqual(s.docmd("FROBNICATE")[0], 500)
            self.assertEqual(s.docmd("MAIL", "FROM:<a@b.test>")[0], 250)
            self.assertEqual(s.docmd("MAIL", "FROM:<a@b.test>")[0], 503)
            self.assertEqual(s.docmd("RSET")[0], 250)
            self.assertEqual(s.docmd("X" * 600)[0], 500)  # past the 512-octet line limit
        self.assertEqual(self.deps.log("smtp"), [])

    def test_error_mode_is_451(self):
        self.deps.set_fault("smtp", "error")
        with self.assertRaises(smtplib.SMTPResponseException) as cm:
            with self.smtp() as s:
                s.send_message(self.message())
        self.assertEqual(cm.exception.smtp_code, 451)
        self.assertEqual(self.deps.log("smtp"), [])
        self.deps.set_fault("smtp", "ok")
        with self.smtp() as s:
            s.send_message(self.message())
        self.assertEqual(len(self.deps.log("smtp")), 1)

    def test_refuse_timeout_slow_and_recovery(self):
        self.deps.set_fault("smtp", "refuse")
        with self.assertRaises(ConnectionRefusedError):
            self.smtp()
        self.deps.set_fault("smtp", "timeout")
        t0 = time.monotonic()
        with self.assertRaises((smtplib.SMTPServerDisconnected, TimeoutError, socket.timeout)):
            self.smtp(timeout=1.0)
        self.assertLess(time.monotonic() - t0, 5)
        self.deps.set_fault("smtp", "slow", 500)
        t0 = time.monotonic()
        with self.smtp() as s:
            s.send_message(self.message())
        self.assertGreaterEqual(time.monotonic() - t0, 0.95)  # greeting and end of DATA
        self.deps.set_fault("smtp", "ok")
        with self.smtp() as s:
            s.send_message(self.message())
        self.assertEqual(len(self.deps.log("smtp")), 2)


class LifecycleTest(unittest.TestCase):
    """Own instances: background EHR changes, SIGTERM, --data-dir across a restart."""

    def test_background_ehr_changes_arrive(self):
        deps = StubDeps(update_interval_ms=100, patients=50, label="stubdeps-trickle", tls=False)
        self.addCleanup(deps.close)
        deps.start()
        t0 = time.time()
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 - 1))

        def changed():
            n = 0
            for t in ("Patient", "Condition", "MedicationStatement", "AllergyIntolerance", "Encounter"):
                r = deps.request("ehr", "GET", f"/fhir/R4/{t}?_lastUpdated=gt{since}&_count=1")
                n += r.json()["total"]
            return n >= 3
        harness.wait_until(changed, 10, 0.2, "three EHR changes")

    def test_sigterm_stops_promptly_even_with_a_held_request(self):
        deps = StubDeps(patients=10, label="stubdeps-stop", tls=False)
        self.addCleanup(deps.close)
        deps.start()
        deps.set_fault("payments", "timeout")
        s = socket.create_connection(("127.0.0.1", deps.port("payments")), timeout=5)
        self.addCleanup(s.close)
        s.sendall(b"POST /v1/charges HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        time.sleep(0.2)
        t0 = time.monotonic()
        self.assertEqual(deps.stop(timeout=10), 0)
        self.assertLess(time.monotonic() - t0, 4)
        self.assertIn("stub-deps stopped", harness.tail(deps.stderr_path, 5))

    def test_data_dir_keeps_charges_and_keys_across_a_restart(self):
        deps = StubDeps(data_dir=True, patients=10, label="stubdeps-data", tls=False)
        self.addCleanup(deps.close)
        deps.start()
        k = key()
        h = {"Idempotency-Key": k}
        first = deps.request("payments", "POST", "/v1/charges", CHARGE, h)
        self.assertEqual(first.status, 201, first)
        self.assertEqual(deps.stop(), 0)
        deps.start(keep_port=True)
        again = deps.request("payments", "POST", "/v1/charges", CHARGE, h)
        self.assertEqual((again.status, again.json()), (200, first.json()))
        log = deps.log("payments")
        self.assertEqual([(e["idempotency_key"], e["replay"]) for e in log],
                         [(k, False), (k, True)])
        self.assertTrue((deps.data_dir / "payments.received.jsonl").is_file())


if __name__ == "__main__":
    unittest.main()
