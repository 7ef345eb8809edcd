"""High tier: secure messaging between patients and their care team (FHIR Communication)."""

from __future__ import annotations

import uuid

from harness import ContinuumTestCase


def message(recipient, text, subject=None, reply_to=None):
    m = {"resourceType": "Communication", "recipient": [{"reference": recipient}],
         "payload": [{"contentString": text}]}
    if subject:
        m["topic"] = {"text": subject}
    if reply_to:
        m["inResponseTo"] = [{"reference": f"Communication/{reply_to}"}]
    return m


class MessagingTest(ContinuumTestCase):
    def send(self, token, body, key=None):
        return self.server.post_json("/fhir/R4/Communication", body, token=token,
                                     content_type="application/fhir+json",
                                     headers={"Idempotency-Key": key or str(uuid.uuid4())})

    def unread(self, token):
        r = self.server.get("/api/v1/messages/unread", token=token)
        self.assertEqual(r.status, 200, r)
        return r.json()["unread"]

    def test_conversation_thread_unread_and_read(self):
        pat, doc = self.token("demo-patient"), self.token("demo-provider")
        before = self.unread(doc)
        key = str(uuid.uuid4())
        r = self.send(pat, message("Practitioner/1", "My rash is back.", "Rash"), key)
        self.assertEqual(r.status, 201, r)
        first = r.json()
        self.assertEqual(first["resourceType"], "Communication")
        self.assertEqual(first["sender"], {"reference": "Patient/1"})
        self.assertEqual(first["recipient"], [{"reference": "Practitioner/1"}])
        self.assertNotIn("received", first)
        # A retry with the same key is the same message, sent once.
        again = self.send(pat, message("Practitioner/1", "My rash is back.", "Rash"), key)
        self.assertEqual(again.status, 200, again)
        self.assertEqual(again.json()["id"], first["id"])
        self.assertEqual(self.cluster.scalar(
            "SELECT count(*) FROM message WHERE idempotency_key = :'k'", k=key), 1)
        self.assertEqual(self.unread(doc), before + 1)
        # The provider reads it (only the recipient can mark it) and replies in the thread.
        self.assertEqual(self.server.post_json(
            f"/fhir/R4/Communication/{first['id']}/$read", {}, token=pat).status, 404)
        r = self.server.post_json(f"/fhir/R4/Communication/{first['id']}/$read", {}, token=doc)
        self.assertEqual(r.status, 200, r)
        self.assertIn("received", r.json())
        self.assertEqual(self.unread(doc), before)
        r = self.send(doc, message("Patient/1", "Please come in tomorrow.", reply_to=first["id"]))
        self.assertEqual(r.status, 201, r)
        reply = r.json()
        self.assertEqual(reply["topic"]["text"], "Re: Rash")
        self.assertEqual(reply["inResponseTo"], [{"reference": f"Communication/{first['id']}"}])
        self.assertEqual(reply["identifier"], first["identifier"])  # same thread
        self.assertGreaterEqual(self.unread(pat), 1)
        # Both see the conversation.
        for tok in (pat, doc):
            r = self.server.fhir("Communication", token=tok, params={"patient": "1"})
            self.assertEqual(r.status, 200, r)
            ids = [e["resource"]["id"] for e in r.json().get("entry", [])]
            self.assertIn(first["id"], ids)
            self.assertIn(reply["id"], ids)

    def test_only_the_care_team(self):
        pat = self.token("demo-patient")
        doc = self.token("demo-provider")
        # Patient 2 is not treated by practitioner 1.
        self.assertOperationOutcome(self.send(doc, message("Patient/2", "Hello", "Hi")), 403)
        other = self.cluster.scalar(
            "SELECT min(id) FROM practitioner WHERE id NOT IN "
            "(SELECT practitioner_id FROM care_relationship WHERE patient_id = 1)")
        self.assertOperationOutcome(
            self.send(pat, message(f"Practitioner/{other}", "Hello", "Hi")), 403)
        r = self.server.fhir("Communication", token=pat, params={"patient": "2"})
        self.assertOperationOutcome(r, 403)
        self.assertOperationOutcome(
            self.server.fhir("Communication", token=doc, params={"patient": "2"}), 403)

    def test_bad_input(self):
        pat = self.token("demo-patient")
        for body in (message("Practitioner/1", "no subject"),
                     message("Practitioner/1", "", "Empty"),
                     message("Practitioner/1", "x" * 20001, "Long"),
                     message("Patient/1", "to myself", "Me"),
                     message("Practitioner/1", "hi", "x" * 201),
                     {"resourceType": "Communication", "payload": [{"contentString": "x"}]},
                     {"resourceType": "Patient"}):
            self.assertOperationOutcome(self.send(pat, body), 400)
        r = self.send(pat, message("Practitioner/1", "reply to nothing", reply_to="999999"))
        self.assertOperationOutcome(r, 400)
        self.assertEqual(self.server.get("/api/v1/messages/unread").status, 401)
