"""Every FHIR resource type the API returns validates against the R4 JSON schema.

The schema is tests/e2e/fhir_r4_subset.schema.json: a subset of HL7's fhir.schema.json
for the resource types the portal returns (no Debian package ships the official one;
the subset is generated from R4 element tables by fhir_schema_gen.py). Like the official
schema it closes every resource and data type (additionalProperties: false), so an
element R4 does not define (Account.balance, Account.openInvoices) is an error.

Each response of the walk below is validated whole (a Bundle with its entries); the test
then checks that every resource type in COVERED was seen at least once.
"""

from __future__ import annotations

import json
import unittest
import uuid
from pathlib import Path

import jsonschema

from harness import FHIR_JSON, ContinuumTestCase, note_body, wait_until

SCHEMA = json.loads((Path(__file__).parent / "fhir_r4_subset.schema.json").read_text())
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)

COVERED = {"Account", "AllergyIntolerance", "Appointment", "AuditEvent", "Bundle",
           "CapabilityStatement", "Communication", "Condition", "Coverage", "DocumentReference",
           "Encounter", "Invoice", "MedicationStatement", "OperationOutcome", "Patient", "Slot"}


def types_in(resource: dict, out: set) -> set:
    out.add(resource.get("resourceType"))
    for e in resource.get("entry", []) or []:
        if isinstance(e.get("resource"), dict):
            types_in(e["resource"], out)
    return out


class FhirSchemaTest(ContinuumTestCase):

    def check(self, r, seen: set, what: str):
        self.assertIn(r.content_type, (FHIR_JSON, "application/json"), f"{what}: {r!r}")
        body = r.json()
        errors = sorted(VALIDATOR.iter_errors(body), key=lambda e: list(e.absolute_path))
        msgs = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:200]}"
                for e in errors[:10]]
        self.assertEqual(msgs, [], f"{what} is not valid FHIR R4 ({len(errors)} errors)")
        types_in(body, seen)

    def test_every_returned_resource_type_is_valid_r4(self):
        s = self.server
        seen: set = set()
        pat = self.token("demo-patient")
        prov = self.token("demo-provider")
        key = lambda: {"Idempotency-Key": str(uuid.uuid4())}

        self.check(s.fhir("metadata"), seen, "metadata")
        for path in ("Patient/1", "Patient/1/$summary"):
            r = s.fhir(path, token=pat)
            self.assertEqual(r.status, 200, r)
            self.check(r, seen, path)
        for rtype in ("AllergyIntolerance", "MedicationStatement", "Condition", "Encounter",
                      "Account", "Invoice", "Coverage", "Appointment", "Communication",
                      "DocumentReference"):
            r = s.fhir(rtype, token=pat, params={"patient": "1"})
            self.assertEqual(r.status, 200, r)
            self.check(r, seen, f"{rtype}?patient=1")
        r = s.fhir("Patient", token=prov, params={"name": "a", "_count": "5"})
        self.assertEqual(r.status, 200, r)
        self.check(r, seen, "Patient search (provider)")

        r = s.fhir("Slot", token=pat, params={"status": "free", "_count": "5"})
        self.assertEqual(r.status, 200, r)
        self.check(r, seen, "Slot search")
        slot = r.json()["entry"][0]["resource"]["id"]
        r = s.post_json("/fhir/R4/Appointment",
                        {"resourceType": "Appointment", "slot": [{"reference": f"Slot/{slot}"}],
                         "description": "Schema check"}, token=pat, headers=key())
        self.assertEqual(r.status, 201, r)
        self.check(r, seen, "Appointment (booked)")
        self.check(s.fhir(f"Appointment/{r.json()['id']}", token=pat), seen, "Appointment read")

        r = s.post_json("/fhir/R4/Communication",
                        {"resourceType": "Communication",
                         "recipient": [{"reference": "Practitioner/1"}],
                         "topic": {"text": "Schema"}, "payload": [{"contentString": "Hello"}]},
                        token=pat, headers=key())
        self.assertEqual(r.status, 201, r)
        self.check(r, seen, "Communication (sent)")

        r = s.post_json("/fhir/R4/DocumentReference", note_body("1", "Schema check note"),
                        token=prov, content_type=FHIR_JSON, headers=key())
        self.assertEqual(r.status, 201, r)
        self.check(r, seen, "DocumentReference (created)")
        self.check(s.fhir(f"DocumentReference/{r.json()['id']}", token=prov), seen,
                   "DocumentReference read")

        def audit():
            ar = s.fhir("AuditEvent", token=self.token("demo-auditor"), params={"patient": "1"})
            return ar if ar.status == 200 and ar.json().get("entry") else None
        self.check(wait_until(audit, 10, 0.3, "AuditEvent for patient 1"), seen, "AuditEvent")

        r = s.fhir("Patient/999999999", token=prov)
        self.assertGreaterEqual(r.status, 400, r)
        self.check(r, seen, "an error (OperationOutcome)")

        self.assertEqual(sorted(COVERED - seen), [], "resource types never returned by the walk")


if __name__ == "__main__":
    unittest.main()
