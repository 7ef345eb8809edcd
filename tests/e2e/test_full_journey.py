"""The full patient journey of issue 3, end to end over HTTP: log in -> records ->
medications -> schedule an appointment -> message the care team -> pay a bill -> log out."""

from __future__ import annotations

import uuid

from harness import ContinuumTestCase
from stubdeps import StubDeps


class FullPatientJourneyTest(ContinuumTestCase):
    START_SERVER = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.deps = StubDeps().start()
        cls.addClassCleanup(cls.deps.close)
        cls.server = cls.cluster.add_server("node-1", {"dependencies": {
            "payments": cls.deps.dependency("payments")}})

    def test_journey(self):
        s = self.server
        # Log in.
        tok = s.login("demo-patient")
        # Records and medications.
        r = s.fhir("Patient/1/$summary", token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["resourceType"], "Bundle")
        r = s.fhir("MedicationStatement", token=tok, params={"patient": "1"})
        self.assertEqual(r.status, 200, r)
        r = s.fhir("AllergyIntolerance", token=tok, params={"patient": "1"})
        self.assertEqual(r.status, 200, r)
        # Schedule an appointment.
        r = s.fhir("Slot", token=tok, params={"status": "free", "_count": "5"})
        self.assertEqual(r.status, 200, r)
        slot = r.json()["entry"][1]["resource"]["id"]
        r = s.post_json("/fhir/R4/Appointment",
                        {"resourceType": "Appointment", "slot": [{"reference": f"Slot/{slot}"}],
                         "description": "Follow-up"},
                        token=tok, headers={"Idempotency-Key": str(uuid.uuid4())})
        self.assertEqual(r.status, 201, r)
        appt = r.json()["id"]
        r = s.fhir("Appointment", token=tok, params={"patient": "1"})
        self.assertIn(appt, [e["resource"]["id"] for e in r.json()["entry"]])
        # Message the care team.
        r = s.post_json("/fhir/R4/Communication",
                        {"resourceType": "Communication",
                         "recipient": [{"reference": "Practitioner/1"}],
                         "topic": {"text": "Before my visit"},
                         "payload": [{"contentString": "Should I fast before the visit?"}]},
                        token=tok, headers={"Idempotency-Key": str(uuid.uuid4())})
        self.assertEqual(r.status, 201, r)
        # Pay a bill.
        r = s.fhir("Invoice", token=tok, params={"patient": "1"})
        self.assertEqual(r.status, 200, r)
        open_invoices = [e["resource"] for e in r.json().get("entry", [])
                         if e["resource"]["status"] == "issued"]
        self.assertTrue(open_invoices, "demo-patient has no open invoice")
        inv = open_invoices[0]
        cents = int(round(inv["totalNet"]["value"] * 100))
        r = s.post_json("/api/v1/payments", {"invoice": f"Invoice/{inv['id']}",
                                             "amount_cents": cents},
                        token=tok, headers={"Idempotency-Key": str(uuid.uuid4())})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["status"], "succeeded")
        r = s.fhir(f"Invoice", token=tok, params={"patient": "1"})
        paid = [e["resource"] for e in r.json()["entry"] if e["resource"]["id"] == inv["id"]][0]
        self.assertEqual(paid["status"], "balanced")
        # Log out: the token no longer works.
        self.assertEqual(s.logout(tok).status, 204)
        self.assertEqual(s.fhir("Patient/1", token=tok).status, 401)
