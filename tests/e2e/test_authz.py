"""Authorization matrix. Every denial must answer with the right status and an
OperationOutcome, and must be in the audit trail (audit_event, found by the request id
the client sent). Break-the-glass is allowed, flagged ETREAT and listed for auditors."""

import base64
import json
import re
import time
import unittest

from harness import FHIR_JSON, ContinuumTestCase, note_body, wait_until

DENIED = {"denied"}
REFUSED = {"denied", "failure"}  # 401: the request never had an identity


class AuthorizationTest(ContinuumTestCase):
    def assertDeniedAndAudited(self, r, status, outcomes=DENIED, patient=None):
        self.assertOperationOutcome(r, status)
        self.assertEchoesRequestId(r)
        rows = self.cluster.wait_audit(r.request_id, timeout=10)
        self.assertTrue(any(a["outcome"] in outcomes for a in rows),
                        f"audit rows for {r.request_id} have outcomes {[a['outcome'] for a in rows]}, "
                        f"expected one of {outcomes}")
        if patient is not None:
            self.assertIn(patient, [a["patient_id"] for a in rows], rows)
        return rows

    # -- patients ----------------------------------------------------------------------

    def test_patient_reads_own_record(self):
        r = self.server.get("/fhir/R4/Patient/1", token=self.token("demo-patient"))
        self.assertEqual(r.status, 200, r)
        rows = self.cluster.wait_audit(r.request_id)
        a = rows[0]
        self.assertEqual((a["actor"], a["role"], a["outcome"], a["patient_id"]),
                         ("demo-patient", "patient", "success", "1"))
        self.assertEqual(a["node_id"], "node-1")
        self.assertTrue(a["client_address"])

    def test_patient_cannot_read_another_patient(self):
        t = self.token("demo-patient")
        for path in ("/fhir/R4/Patient/2", "/fhir/R4/Patient/2/$summary",
                     "/fhir/R4/AllergyIntolerance?patient=2", "/fhir/R4/MedicationStatement?patient=2",
                     "/fhir/R4/Condition?patient=2", "/fhir/R4/Encounter?patient=2",
                     "/fhir/R4/DocumentReference?patient=2"):
            with self.subTest(path=path):
                self.assertDeniedAndAudited(self.server.get(path, token=t), 403)

    def test_patient_cannot_search_patients_or_write_notes(self):
        t = self.token("demo-patient")
        # Patient search is for providers: a patient gets 403, or (compartment-scoped search)
        # a bundle holding at most her own record — never somebody else's.
        other = self.cluster.rows("SELECT family, birth_date FROM patient WHERE id = 2")[0]
        r = self.server.fhir("Patient", t, {"name": other["family"], "birthdate": other["birth_date"]})
        if r.status == 403:
            self.assertDeniedAndAudited(r, 403)
        else:
            found = {e["resource"].get("id") for e in self.assertBundle(r).get("entry", []) or []}
            self.assertLessEqual(found, {"1"}, f"a patient's search found other patients: {found}")
        before = self.cluster.scalar("SELECT count(*) AS n FROM clinical_note")
        r = self.server.post_json("/fhir/R4/DocumentReference", note_body("1", "I am the doctor now"),
                                  token=t, content_type=FHIR_JSON)
        self.assertDeniedAndAudited(r, 403)
        self.assertEqual(self.cluster.scalar("SELECT count(*) AS n FROM clinical_note"), before)

    # -- providers ---------------------------------------------------------------------

    def test_provider_without_relationship_is_denied(self):
        t = self.token("demo-provider")
        for path in ("/fhir/R4/Patient/2", "/fhir/R4/Patient/2/$summary",
                     "/fhir/R4/Condition?patient=2", "/fhir/R4/Encounter?patient=2"):
            with self.subTest(path=path):
                self.assertDeniedAndAudited(self.server.get(path, token=t), 403, patient="2")
        before = self.cluster.scalar("SELECT count(*) AS n FROM clinical_note WHERE patient_id = 2")
        r = self.server.post_json("/fhir/R4/DocumentReference", note_body("2", "no relationship"),
                                  token=t, content_type=FHIR_JSON)
        self.assertDeniedAndAudited(r, 403)
        self.assertEqual(self.cluster.scalar("SELECT count(*) AS n FROM clinical_note WHERE patient_id = 2"),
                         before)

    # A provider's reads of a chart (the patient's id in the path or ?patient=) and their
    # tiers; a page of 100 holds every seeded patient's list, so no search counts apart.
    CHART_READS = (("/fhir/R4/Patient/{}", "critical"), ("/fhir/R4/Patient/{}/$summary", "critical"),
                   ("/fhir/R4/AllergyIntolerance?patient={}&_count=100", "critical"),
                   ("/fhir/R4/MedicationStatement?patient={}&_count=100", "critical"),
                   ("/fhir/R4/Condition?patient={}&_count=100", "critical"),
                   ("/fhir/R4/Encounter?patient={}&_count=100", "critical"),
                   ("/fhir/R4/DocumentReference?patient={}&_count=100", "critical"),
                   ("/fhir/R4/Appointment?patient={}&_count=100", "high"),
                   ("/fhir/R4/Invoice?patient={}&_count=100", "medium"),
                   ("/fhir/R4/Account?patient={}", "medium"),
                   ("/fhir/R4/Coverage?patient={}", "medium"))

    def round_trips(self, tier) -> int:
        """A tier's database round trips so far (batches sent, or grouped with another's)."""
        r = self.server.get("/metrics")
        self.assertEqual(r.status, 200, r)
        found = re.findall(r'^continuum_db_pool_events_total\{tier="%s",event="(?:acquired|grouped)"\} '
                           r'(\d+)$' % tier, r.body.decode(), re.M)
        self.assertEqual(len(found), 2, f"the {tier} pool's acquired and grouped counters")
        return sum(int(n) for n in found)

    def test_provider_chart_read_is_one_round_trip(self):
        # The care relationship is checked in the data's own round trip (access.hpp,
        # DeferAuthorizePatient), not in one before it; the data is withheld until it passes.
        t = self.token("demo-provider")
        prac = self.cluster.scalar("SELECT practitioner_id AS n FROM account WHERE username = 'demo-provider'")
        pid = str(self.cluster.scalar(
            "SELECT min(patient_id) AS n FROM care_relationship WHERE practitioner_id = :'p'", p=prac))
        # and their conversations with the patient (no break-the-glass there)
        messages = ("/fhir/R4/Communication?patient={}&_count=100", "high")
        for path, tier in self.CHART_READS + (messages,):
            with self.subTest(path=path):
                url = path.format(pid)
                self.assertEqual(self.server.get(url, token=t).status, 200)  # warm
                before = self.round_trips(tier)
                r = self.server.get(url, token=t)
                trips = self.round_trips(tier) - before
                self.assertEqual(r.status, 200, r)
                self.assertIn(pid, json.dumps(r.json()))
                self.assertEqual(trips, 1, f"{url}: {trips} round trips to the database")
        # A note: read in one round trip (the note with the check), signed in two (and the write).
        r = self.server.post_json("/fhir/R4/DocumentReference", note_body(pid, "one round trip"),
                                  token=t, content_type=FHIR_JSON)
        self.assertEqual(r.status, 201, r)
        note = r.json()["id"]
        for method, url, want in (("GET", f"/fhir/R4/DocumentReference/{note}", 1),
                                  ("POST", f"/fhir/R4/DocumentReference/{note}/$sign", 2)):
            with self.subTest(url=url):
                before = self.round_trips("critical")
                r = self.server.request(method, url, token=t)
                trips = self.round_trips("critical") - before
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["id"], note)
                self.assertEqual(trips, want, f"{method} {url}: {trips} round trips to the database")

    def test_provider_chart_read_outside_the_care_only_with_the_glass_broken(self):
        # The data read beside a failed care check is dropped: without a reason nothing of
        # the chart comes back; with one, the chart is read again after the reason is stored.
        t = self.token("demo-provider")
        prac = self.cluster.scalar("SELECT practitioner_id AS n FROM account WHERE username = 'demo-provider'")
        other = str(self.cluster.scalar(
            "SELECT min(id) AS n FROM patient p WHERE NOT p.synthetic AND NOT EXISTS (SELECT 1 FROM "
            "care_relationship c WHERE c.patient_id = p.id AND c.practitioner_id = :'p') AND "
            "EXISTS (SELECT 1 FROM allergy a WHERE a.patient_id = p.id)", p=prac))
        allergies = self.cluster.scalar("SELECT count(*) AS n FROM allergy WHERE patient_id = :'p'", p=other)
        for path, _ in self.CHART_READS:
            with self.subTest(path=path):
                url = path.format(other)
                r = self.server.get(url, token=t)
                self.assertDeniedAndAudited(r, 403, patient=other)
                self.assertNotIn("entry", r.json())
                reason = "e2e: chart read outside the care " + str(time.time())
                r = self.server.get(url, token=t, headers={"X-Break-Glass-Reason": reason})
                self.assertEqual(r.status, 200, r)
                rows = self.cluster.wait_audit(r.request_id, predicate=lambda a: a["outcome"] == "success")
                self.assertTrue(all(a["purpose_of_use"] == "ETREAT" for a in rows), rows)
                self.assertEqual(self.cluster.scalar(
                    "SELECT count(*) AS n FROM break_glass_reason WHERE request_id = :'r'", r=r.request_id), 1)
                if "AllergyIntolerance" in url:
                    self.assertEqual(r.json()["total"], allergies)
                    self.assertEqual(len(r.json().get("entry", [])), allergies)
        # A bad parameter does not answer before the check: 403, audited with the check's own
        # reason, as when the route's policy checked before the handler ran (and 400 for a
        # provider who treats the patient).
        mine = str(self.cluster.scalar(
            "SELECT min(patient_id) AS n FROM care_relationship WHERE practitioner_id = :'p'", p=prac))
        for path in ("/fhir/R4/AllergyIntolerance?patient={}&_count=abc",
                     "/fhir/R4/Encounter?patient={}&colour=blue", "/fhir/R4/Coverage?patient={}&colour=blue"):
            with self.subTest(path=path):
                rows = self.assertDeniedAndAudited(self.server.get(path.format(other), token=t), 403,
                                                   patient=other)
                self.assertIn("no care relationship", [a["detail"] for a in rows], rows)
                self.assertOperationOutcome(self.server.get(path.format(mine), token=t), 400)
        rows = self.assertDeniedAndAudited(self.server.get(f"/fhir/R4/Patient/{other}/$summary", token=t),
                                           403, patient=other)
        self.assertIn("no care relationship", [a["detail"] for a in rows], rows)
        # A note about that patient (written with the glass broken): the same for reading it.
        glass = {"X-Break-Glass-Reason": "e2e: note outside the care"}
        r = self.server.post_json("/fhir/R4/DocumentReference", note_body(other, "outside the care"),
                                  token=t, content_type=FHIR_JSON, headers=glass)
        self.assertEqual(r.status, 201, r)
        url = "/fhir/R4/DocumentReference/" + r.json()["id"]
        self.assertDeniedAndAudited(self.server.get(url, token=t), 403, patient=other)
        r = self.server.get(url, token=t, headers=glass)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["subject"]["reference"], f"Patient/{other}")

    def test_break_the_glass_reason_kept_out_of_the_audit_detail(self):
        # The reason is free text (PHI): it is stored with the clinical data, not in the
        # audit record's detail (documented as never PHI); auditors still see it.
        t = self.token("demo-provider")
        reason = "e2e: suspected overdose, reason " + str(time.time())
        r = self.server.get("/fhir/R4/Patient/2", token=t, headers={"X-Break-Glass-Reason": reason})
        self.assertEqual(r.status, 200, r)
        rows = self.cluster.wait_audit(r.request_id, predicate=lambda a: a["outcome"] == "success")
        self.assertTrue(any(a["purpose_of_use"] == "ETREAT" for a in rows), rows)
        for a in self.cluster.audit_rows(r.request_id):
            self.assertNotIn("overdose", a["detail"], a)
        self.assertNotIn(reason.encode(), self.server.journal_bytes())
        self.assertEqual(self.cluster.scalar(
            "SELECT reason FROM break_glass_reason WHERE request_id = :'r'", r=r.request_id), reason)
        lr = self.server.get("/api/v1/break-glass", token=self.token("demo-auditor"))
        self.assertEqual(lr.status, 200, lr)
        self.assertIn(reason, [x["reason"] for x in lr.json()["accesses"]])

    def test_break_the_glass(self):
        t = self.token("demo-provider")
        reason = "e2e: unconscious patient in the emergency department"
        r = self.server.get("/fhir/R4/Patient/2", token=t, headers={"X-Break-Glass-Reason": reason})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json().get("id"), "2")
        rows = self.cluster.wait_audit(r.request_id, predicate=lambda a: a["outcome"] == "success")
        self.assertTrue(any(a["purpose_of_use"] == "ETREAT" for a in rows),
                        f"break-the-glass access not flagged ETREAT: {rows}")
        self.assertEqual(rows[0]["actor"], "demo-provider")
        self.assertEqual(rows[0]["patient_id"], "2")

        # listed for auditors
        def listed():
            lr = self.server.get("/api/v1/break-glass", token=self.token("demo-auditor"))
            self.assertEqual(lr.status, 200, lr)
            text = json.dumps(lr.json())
            return "demo-provider" in text and ('"2"' in text or "Patient/2" in text) and lr
        wait_until(listed, 10, 0.3, "break-glass access in /api/v1/break-glass")

        # an empty reason does not open the glass
        r = self.server.get("/fhir/R4/Patient/2", token=t, headers={"X-Break-Glass-Reason": " "})
        self.assertOperationOutcome(r, (400, 403))

    def test_break_the_glass_patient_search(self):
        t = self.token("demo-provider")
        mrn = self.cluster.scalar("SELECT mrn AS n FROM patient WHERE id = 2")
        family = self.cluster.scalar("SELECT family AS n FROM patient WHERE id = 2")
        # Outside the provider's panel: not found without a reason ...
        r = self.server.get(f"/fhir/R4/Patient?identifier={mrn}", token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([e["resource"]["id"] for e in r.json().get("entry", [])], [])
        # ... found by MRN and by name with one, and audited as emergency access.
        for query in (f"identifier={mrn}", f"name={family[:3]}&_count=100"):
            with self.subTest(query=query):
                r = self.server.get(f"/fhir/R4/Patient?{query}", token=t,
                                    headers={"X-Break-Glass-Reason": "e2e: ED lookup"})
                self.assertEqual(r.status, 200, r)
                ids = [e["resource"]["id"] for e in r.json().get("entry", [])]
                self.assertIn("2", ids)
                rows = self.cluster.wait_audit(r.request_id, predicate=lambda a: a["patient_id"] == "2")
                self.assertTrue(all(a["purpose_of_use"] == "ETREAT" for a in rows), rows)

    def test_break_glass_list_is_for_auditors_only(self):
        for user in ("demo-provider", "demo-patient"):
            with self.subTest(user=user):
                r = self.server.get("/api/v1/break-glass", token=self.token(user))
                self.assertDeniedAndAudited(r, 403)

    # -- auditors ----------------------------------------------------------------------

    def test_audit_event_api(self):
        # a fresh patient reads her own record; the auditor sees it as AuditEvent
        t = self.token("patient-3")
        r = self.server.get("/fhir/R4/Patient/3", token=t)
        self.assertEqual(r.status, 200, r)

        def events():
            ar = self.server.get("/fhir/R4/AuditEvent?patient=3", token=self.token("demo-auditor"))
            b = self.assertBundle(ar)
            return b.get("entry") and b
        bundle = wait_until(events, 10, 0.3, "AuditEvent for patient 3")
        for e in bundle["entry"]:
            self.assertEqual(e["resource"].get("resourceType"), "AuditEvent")
        self.assertIn("patient-3", json.dumps(bundle))

        # by agent: the user's whole trail, including the login (which names no patient)
        def trail():
            ar = self.server.get("/fhir/R4/AuditEvent?agent=patient-3&_count=100",
                                 token=self.token("demo-auditor"))
            b = self.assertBundle(ar)
            codes = [c.get("code") for e in b.get("entry", []) for c in e["resource"].get("subtype", [])]
            return "110122" in codes and "read" in codes and b
        wait_until(trail, 10, 0.3, "login and read of patient-3 in AuditEvent?agent=")
        r = self.server.get("/fhir/R4/AuditEvent?agent=patient-3&patient=3", token=self.token("demo-auditor"))
        self.assertOperationOutcome(r, 400)

    def test_audit_event_api_is_for_auditors_only(self):
        for user in ("demo-provider", "demo-patient"):
            with self.subTest(user=user):
                r = self.server.get("/fhir/R4/AuditEvent?patient=1", token=self.token(user))
                self.assertDeniedAndAudited(r, 403)

    # -- tokens --------------------------------------------------------------------------

    def test_missing_and_malformed_tokens(self):
        s = self.server
        cases = {
            "no header": {},
            "empty bearer": {"Authorization": "Bearer "},
            "garbage": {"Authorization": "Bearer not-a-token"},
            "basic scheme": {"Authorization": "Basic " + base64.b64encode(b"demo-patient:continuum-demo").decode()},
        }
        for name, headers in cases.items():
            with self.subTest(case=name):
                self.assertDeniedAndAudited(s.get("/fhir/R4/Patient/1", headers=headers), 401, REFUSED)

    def test_tampered_token(self):
        good = self.server.login("demo-patient")
        self.assertEqual(self.server.get("/fhir/R4/Patient/1", token=good).status, 200)
        parts = good.split(".")
        self.assertGreaterEqual(len(parts), 3, f"token format changed: {good[:20]}...")

        def flip(s, i):
            c = s[i]
            return s[:i] + ("A" if c != "A" else "B") + s[i + 1:]

        variants = {
            "payload byte flipped": ".".join([parts[0], flip(parts[1], len(parts[1]) // 2)] + parts[2:]),
            "mac byte flipped": ".".join(parts[:-1] + [flip(parts[-1], 3)]),
            "mac removed": ".".join(parts[:-1]) + ".",
            "truncated": good[:-5],
        }
        # A patient who rewrites her own claims to become patient 2 or a provider.
        try:
            pad = "=" * (-len(parts[1]) % 4)
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + pad))
            forged = dict(claims, patient_id="2", role="provider", practitioner_id="1")
            enc = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
            variants["claims rewritten"] = ".".join([parts[0], enc] + parts[2:])
        except ValueError:
            pass
        for name, token in variants.items():
            with self.subTest(variant=name):
                self.assertDeniedAndAudited(self.server.get("/fhir/R4/Patient/1", token=token), 401, REFUSED)
                self.assertDeniedAndAudited(self.server.get("/fhir/R4/Patient/2", token=token), 401, REFUSED)

    def test_revoked_token(self):
        t = self.server.login("demo-provider")
        self.assertEqual(self.server.get("/fhir/R4/Patient/1", token=t).status, 200)
        self.assertEqual(self.server.logout(t).status, 204)
        self.assertDeniedAndAudited(self.server.get("/fhir/R4/Patient/1", token=t), 401, REFUSED)
        sid_rows = self.cluster.scalar("SELECT count(*) AS n FROM session WHERE revoked_at IS NOT NULL")
        self.assertGreaterEqual(sid_rows, 1, "revocation is not recorded in the session table")

    def test_idle_expired_token(self):
        # A second node of the same cluster (same key, same database) with a 2 s idle limit.
        node = self.cluster.add_server("node-idle", {"auth": {"session_idle_s": 2}})
        try:
            t = node.login("demo-patient")
            for _ in range(3):  # use within the idle window keeps the session alive
                r = node.get("/fhir/R4/Patient/1", token=t)
                self.assertEqual(r.status, 200, r)
                time.sleep(1.0)
            time.sleep(2.2)  # now idle for > 2 s
            r = node.get("/fhir/R4/Patient/1", token=t)
            self.assertDeniedAndAudited(r, 401, REFUSED)
            # tokens are valid on every node: a fresh token of node-1 works on node-idle
            r = node.get("/fhir/R4/Patient/1", token=self.server.login("demo-patient"))
            self.assertEqual(r.status, 200, r)
        finally:
            node.stop()


if __name__ == "__main__":
    unittest.main()
