"""High tier: secure messaging between patients and their care team (FHIR Communication)."""

from __future__ import annotations

import uuid

from harness import ContinuumTestCase, wait_until


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
        names = {str(r["id"]): f"{r['given']} {r['family']}" for r in self.cluster.rows(
            "SELECT id, given, family FROM patient WHERE id IN (1, :'o')", o=str(other["patient_id"]))}
        tag = uuid.uuid4().hex[:8]
        r1 = self.send(self.token("demo-patient"), message("Practitioner/1", "Refill please.", f"Refill {tag}"))
        self.assertEqual(r1.status, 201, r1)
        r2 = self.send(self.token(other["username"]), message("Practitioner/1", "Test results?", f"Results {tag}"))
        self.assertEqual(r2.status, 201, r2)
        first, second = r1.json(), r2.json()
        # both patients' conversations, newest first, each with its one unread message
        resp = self.inbox(doc)
        body = resp.json()
        threads = body["threads"]
        mine = [t for t in threads if t["subject"].endswith(tag)]
        self.assertEqual([t["subject"] for t in mine], [f"Results {tag}", f"Refill {tag}"])  # newest first
        self.assertEqual([t["thread"] for t in mine], [second["id"], first["id"]])
        self.assertEqual([t["patient"] for t in mine], [
            {"reference": f"Patient/{other['patient_id']}", "display": names[str(other["patient_id"])]},
            {"reference": "Patient/1", "display": names["1"]}])
        for t in mine:
            self.assertEqual((t["unread"], t["messages"], t["last_from_patient"]), (1, 1, True), t)
        total = body["unread_total"]
        self.assertEqual(total, self.unread(doc))
        self.assertLess(len(threads), 50)  # all of them listed: the unread counts add up
        self.assertEqual(sum(t["unread"] for t in threads), total)
        times = [t["last_sent"] for t in threads]
        self.assertEqual(times, sorted(times, reverse=True))
        # one audit record per patient listed (the request's own record says how many)
        listed = {t["patient"]["reference"].split("/")[1] for t in threads}
        def shipped():
            rows = self.cluster.audit_rows(resp.request_id)
            return rows if len(rows) > len(listed) else None
        every = wait_until(shipped, 10, 0.2, "the inbox's audit records")
        per_patient = sorted(r["patient_id"] for r in every if r["patient_id"])
        self.assertEqual(per_patient, sorted(listed))  # each patient once
        self.assertIn(str(other["patient_id"]), per_patient)
        own = [r for r in every if not r["patient_id"]]
        self.assertEqual(len(own), 1, every)
        self.assertEqual(own[0]["detail"], f"inbox: {len(threads)} conversations, {len(listed)} patients")
        for r in every:
            self.assertEqual((r["outcome"], r["actor"], r["role"], r["action"], r["resource_type"]),
                             ("success", "demo-provider", "provider", "search", "Communication"), r)
        # the provider opens the first message: its conversation has nothing unread any more
        self.assertEqual(self.server.post_json(f"/fhir/R4/Communication/{first['id']}/$read", {}, token=doc).status, 200)
        body = self.inbox(doc).json()
        self.assertEqual(body["unread_total"], total - 1)
        after = {t["thread"]: t for t in body["threads"]}
        self.assertEqual((after[first["id"]]["unread"], after[first["id"]]["messages"]), (0, 1))
        self.assertEqual(after[second["id"]]["unread"], 1)
        unread = self.inbox(doc, "?unread=true").json()["threads"]
        self.assertTrue(unread)
        self.assertTrue(all(t["unread"] > 0 for t in unread), unread)
        self.assertIn(second["id"], {t["thread"] for t in unread})
        self.assertNotIn(first["id"], {t["thread"] for t in unread})
        self.assertEqual(len(unread), sum(1 for t in body["threads"] if t["unread"] > 0))
        # ... and answers it: that conversation is the newest, last from the provider
        self.assertEqual(self.send(doc, message("Patient/1", "Sent to the pharmacy.", reply_to=first["id"])).status, 201)
        threads = self.inbox(doc).json()["threads"]
        top = threads[0]
        self.assertEqual((top["thread"], top["unread"], top["messages"], top["last_from_patient"]),
                         (first["id"], 0, 2, False))
        self.assertEqual(top["subject"], f"Refill {tag}")   # the thread's first subject, not "Re: ..."
        self.assertEqual(self.inbox(doc, "?_count=1").json()["threads"], threads[:1])
        self.assertEqual(self.inbox(doc, "?_count=2&unread=false").json()["threads"], threads[:2])

    def test_inbox_scope(self):
        """Only the provider's own conversations, with patients they treat (a synthetic
        patient only for a synthetic practitioner)."""
        doc = self.token("demo-provider")
        a = self.cluster.rows(
            "SELECT a.username, a.patient_id, cr.facility_id, cr.since, o.practitioner_id AS other "
            "FROM account a JOIN patient p ON p.id = a.patient_id JOIN care_relationship cr ON "
            "cr.patient_id = a.patient_id AND cr.practitioner_id = 1 JOIN care_relationship o ON "
            "o.patient_id = a.patient_id AND o.practitioner_id <> 1 JOIN practitioner pr ON "
            "pr.id = o.practitioner_id WHERE a.username LIKE 'patient-%' AND a.patient_id <> 1 "
            "AND NOT p.synthetic AND NOT pr.synthetic ORDER BY a.patient_id DESC LIMIT 1")
        self.assertTrue(a, "a patient of practitioner 1 who also sees another practitioner")
        a = a[0]
        pid = str(a["patient_id"])
        tok = self.token(a["username"])
        tag = uuid.uuid4().hex[:8]
        mine = self.send(tok, message("Practitioner/1", "Dizzy since Monday.", f"Dizzy {tag}"))
        self.assertEqual(mine.status, 201, mine)
        theirs = self.send(tok, message(f"Practitioner/{a['other']}", "Knee again.", f"Knee {tag}"))
        self.assertEqual(theirs.status, 201, theirs)
        mine, theirs = mine.json()["id"], theirs.json()["id"]

        def listed(query=""):
            return {t["thread"] for t in self.inbox(doc, query).json()["threads"]}

        for q in ("", "?unread=true"):
            with self.subTest(q):
                self.assertIn(mine, listed(q))
                self.assertNotIn(theirs, listed(q))  # the patient's conversation with someone else
        before = self.inbox(doc).json()
        self.assertEqual(self.unread(doc), before["unread_total"])
        # the care relationship ends: the conversation leaves the inbox (and is not audited)
        self.cluster.sql("DELETE FROM care_relationship WHERE practitioner_id = 1 AND patient_id = :'p'", p=pid)
        self.addCleanup(self.cluster.sql,
                        "INSERT INTO care_relationship (practitioner_id, patient_id, facility_id, since) "
                        "VALUES (1, :'p', :'f', :'s') ON CONFLICT DO NOTHING",
                        p=pid, f=str(a["facility_id"]), s=str(a["since"]))
        r = self.inbox(doc)
        self.assertNotIn(mine, {t["thread"] for t in r.json()["threads"]})
        # ... and from the counts: the badge and the inbox's total agree with what is listed
        self.assertEqual(r.json()["unread_total"], before["unread_total"] - 1)
        self.assertEqual(self.unread(doc), r.json()["unread_total"])
        self.assertNotIn(pid, {t["patient"]["reference"].split("/")[1] for t in r.json()["threads"]})
        self.assertNotIn(pid, [x["patient_id"] for x in self.cluster.wait_audit(r.request_id)])
        self.cluster.sql("INSERT INTO care_relationship (practitioner_id, patient_id, facility_id, since) "
                         "VALUES (1, :'p', :'f', :'s')", p=pid, f=str(a["facility_id"]), s=str(a["since"]))
        self.assertIn(mine, listed())
        # a synthetic patient is not listed for a real practitioner
        self.cluster.sql("UPDATE patient SET synthetic = true WHERE id = :'p'", p=pid)
        self.addCleanup(self.cluster.sql, "UPDATE patient SET synthetic = false WHERE id = :'p'", p=pid)
        self.assertNotIn(mine, listed())
        self.assertEqual(self.unread(doc), before["unread_total"] - 1)
        self.cluster.sql("UPDATE patient SET synthetic = false WHERE id = :'p'", p=pid)
        self.assertEqual(self.unread(doc), before["unread_total"])
        self.assertIn(mine, listed())

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
        # Breaking the glass opens a chart, not another provider's conversations.
        self.assertOperationOutcome(
            self.server.fhir("Communication", token=doc, params={"patient": "2"},
                             headers={"X-Break-Glass-Reason": "e2e: not for messages"}), 403)

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
