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

    def inbox(self, token, query=""):
        r = self.server.get(f"/api/v1/messages/inbox{query}", token=token)
        self.assertEqual(r.status, 200, r)
        return r

    def test_provider_inbox_across_patients(self):
        doc = self.token("demo-provider")
        other = self.cluster.rows(
            "SELECT a.username, a.patient_id FROM account a JOIN care_relationship cr ON "
            "cr.patient_id = a.patient_id AND cr.practitioner_id = 1 JOIN patient p ON p.id = a.patient_id "
            "WHERE a.username LIKE 'patient-%' AND a.patient_id <> 1 AND NOT p.synthetic "
            "ORDER BY a.patient_id LIMIT 1")[0]
        tag = uuid.uuid4().hex[:8]
        r1 = self.send(self.token("demo-patient"), message("Practitioner/1", "Refill please.", f"Refill {tag}"))
        self.assertEqual(r1.status, 201, r1)
        r2 = self.send(self.token(other["username"]), message("Practitioner/1", "Test results?", f"Results {tag}"))
        self.assertEqual(r2.status, 201, r2)
        first, second = r1.json(), r2.json()
        # the reply in the first thread makes it the newest, with nothing unread from the patient
        resp = self.inbox(doc)
        body = resp.json()
        threads = body["threads"]
        mine = [t for t in threads if t["subject"].endswith(tag)]
        self.assertEqual([t["subject"] for t in mine], [f"Results {tag}", f"Refill {tag}"])  # newest first
        self.assertEqual(mine[0]["patient"]["reference"], f"Patient/{other['patient_id']}")
        self.assertTrue(mine[0]["patient"]["display"])
        self.assertEqual((mine[0]["unread"], mine[0]["messages"], mine[0]["last_from_patient"]), (1, 1, True))
        self.assertEqual(mine[1]["thread"], first["id"])
        self.assertEqual(body["unread_total"], self.unread(doc))
        times = [t["last_sent"] for t in threads]
        self.assertEqual(times, sorted(times, reverse=True))
        # one audit record per patient listed, beside the request's own
        rows = self.cluster.wait_audit(resp.request_id, predicate=lambda r: r["patient_id"] == str(other["patient_id"]))
        listed = {t["patient"]["reference"].split("/")[1] for t in threads}
        every = self.cluster.audit_rows(resp.request_id)
        self.assertEqual({r["patient_id"] for r in every if r["patient_id"]}, listed)
        self.assertTrue(all(r["outcome"] == "success" and r["actor"] == "demo-provider" for r in every), every)
        self.assertTrue(rows)
        # the provider reads the first message and answers it: read, and the newest
        self.assertEqual(self.server.post_json(f"/fhir/R4/Communication/{first['id']}/$read", {}, token=doc).status, 200)
        self.assertEqual(self.send(doc, message("Patient/1", "Sent to the pharmacy.", reply_to=first["id"])).status, 201)
        threads = self.inbox(doc).json()["threads"]
        top = threads[0]
        self.assertEqual((top["thread"], top["unread"], top["messages"], top["last_from_patient"]),
                         (first["id"], 0, 2, False))
        self.assertEqual(top["subject"], f"Refill {tag}")   # the thread's first subject, not "Re: ..."
        unread = self.inbox(doc, "?unread=true").json()["threads"]
        self.assertTrue(all(t["unread"] > 0 for t in unread))
        self.assertIn(second["id"], {t["thread"] for t in unread})
        self.assertNotIn(first["id"], {t["thread"] for t in unread})
        self.assertEqual(len(self.inbox(doc, "?_count=1").json()["threads"]), 1)

    def test_inbox_refusals(self):
        pat = self.token("demo-patient")
        self.assertOperationOutcome(self.server.get("/api/v1/messages/inbox", token=pat), 403)
        self.assertOperationOutcome(self.server.get("/api/v1/messages/inbox"), 401)
        doc = self.token("demo-provider")
        for q, words in [("?_count=0", "_count"), ("?_count=101", "_count"), ("?unread=yes", "unread"),
                         ("?patient=1", "patient")]:
            with self.subTest(q):
                oo = self.assertOperationOutcome(self.server.get(f"/api/v1/messages/inbox{q}", token=doc), 400)
                self.assertIn(words, oo["issue"][0]["diagnostics"])

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
