"""Notifications: email over SMTP and SMS over HTTP through an outbox. Booking an
appointment sends one email; with SMTP down the SMS channel is used at once; with both
down the notification stays queued and is delivered once after recovery; a reminder is
enqueued once for an appointment starting within 24 h."""

from __future__ import annotations

import time
import uuid

import harness
from harness import ContinuumTestCase
from stubdeps import StubDeps


class NotificationTest(ContinuumTestCase):
    START_SERVER = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.deps = StubDeps().start()
        cls.addClassCleanup(cls.deps.close)
        common = {"timeout_ms": 800, "check_interval_ms": 300, "failure_threshold": 3,
                  "open_ms": 1000}
        cls.server = cls.cluster.add_server("node-1", {
            "dependencies": {
                "sms": cls.deps.dependency("sms", **common),
                "smtp": cls.deps.dependency("smtp", **common)},
            "notifications": {"from": "noreply@continuum.example", "poll_ms": 200}})

    def setUp(self):
        self.deps.reset()
        for name in ("smtp", "sms"):
            self.wait_dependency(name, "closed")

    def wait_dependency(self, name, breaker, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            d = self.server.get("/readyz").json().get("dependencies", {}).get(name, {})
            if d.get("breaker") == breaker or time.monotonic() > deadline:
                return d
            time.sleep(0.1)

    def book(self, pid, server=None):
        server = server or self.server
        tok = self.token(f"patient-{pid}", server=server)
        r = server.fhir("Slot", token=tok, params={"status": "free", "_count": "1"})
        self.assertEqual(r.status, 200, r)
        slot = r.json()["entry"][0]["resource"]["id"]
        r = server.post_json(
            "/fhir/R4/Appointment",
            {"resourceType": "Appointment", "slot": [{"reference": f"Slot/{slot}"}]},
            token=tok, headers={"Idempotency-Key": str(uuid.uuid4())})
        self.assertEqual(r.status, 201, r)
        return tok, r.json()["id"], slot

    def notification(self, key):
        rows = self.cluster.rows(
            "SELECT id, status, channel_used, attempts, to_email, to_phone, last_error "
            "FROM notification WHERE dedupe_key = :'k'", k=key)
        return rows[0] if rows else None

    def wait_notification(self, key, predicate, timeout=30):
        seen = {}

        def check():
            n = self.notification(key)
            seen["n"] = n
            return n is not None and predicate(n)

        harness.wait_until(check, timeout, interval=0.2, message=f"notification {key}")
        return seen["n"]

    def patients(self, email=True):
        """Seeded patients with a phone, and with (or without) an email address."""
        rows = self.cluster.rows(
            "SELECT id FROM patient WHERE phone IS NOT NULL AND (email IS NOT NULL) = :'e' "
            "AND id > 10 ORDER BY id LIMIT 12", e="true" if email else "false")
        return [r["id"] for r in rows]

    def mails_for(self, nid):
        return [m for m in self.deps.log("smtp")
                if f"<notification-{nid}@" in str(m.get("message_id"))]

    def sms_calls_for(self, nid):
        """Every call the SMS stand-in received for this notification, replays included."""
        return [m for m in self.deps.log("sms")
                if m.get("idempotency_key") == f"continuum-notification-{nid}"]

    def sms_for(self, nid):
        """The messages the SMS stand-in actually sent (not replays answered from memory)."""
        return [m for m in self.sms_calls_for(nid) if not m.get("replay")]
    def test_a_node_with_no_channel_claims_nothing(self):
        # Nodes share the outbox: one without SMTP and SMS must leave notifications to the
        # others. A claim spends an attempt and holds the row for a minute, so a node that
        # cannot send used to delay (and finally fail) mail that others could send.
        bare = self.cluster.add_server("bare", {
            "notifications": {"from": "noreply@continuum.example", "poll_ms": 100}})
        self.addCleanup(bare.stop)
        self.server.stop()
        try:
            _, appt, _ = self.book(self.patients()[5], server=bare)
            time.sleep(1.5)   # fifteen polls of the bare node
            n = self.notification(f"booked-{appt}")
            self.assertEqual((n["status"], int(n["attempts"])), ("queued", 0), n)
        finally:
            self.server.start()
        n = self.wait_notification(f"booked-{appt}", lambda n: n["status"] == "sent")
        self.assertEqual((n["channel_used"], int(n["attempts"])), ("email", 1), n)

    def test_sent_notification_is_audited_as_a_disclosure(self):
        pid = self.patients()[1]
        _, appt, _ = self.book(pid)
        n = self.wait_notification(f"booked-{appt}", lambda n: n["status"] == "sent")
        rows = self.cluster.wait_audit(f"notification-{n['id']}", timeout=15, attempts=True,
                                       predicate=lambda a: a["outcome"] == "success")
        a = rows[0]
        self.assertEqual((a["actor"], a["role"], a["action"], a["resource_type"], a["patient_id"]),
                         ("system:notifications", "system", "disclose", "Communication", str(pid)))
        self.assertTrue(a["detail"].startswith("email"), a)
        # The attempt was durable before the message left.
        outcomes = [x["outcome"] for x in self.cluster.audit_rows(f"notification-{n['id']}")]
        self.assertEqual(outcomes[0], "attempt", outcomes)

    def test_booking_sends_one_email(self):
        tok, appt, _ = self.book(self.patients()[0])
        n = self.wait_notification(f"booked-{appt}", lambda n: n["status"] == "sent")
        self.assertEqual(n["channel_used"], "email")
        time.sleep(1.0)
        mails = self.mails_for(n["id"])
        self.assertEqual(len(mails), 1, mails)
        self.assertEqual(mails[0]["from"], "noreply@continuum.example")
        self.assertEqual(mails[0]["to"], [n["to_email"]])
        self.assertEqual(mails[0]["subject"], "Your appointment is booked")
        self.assertEqual(self.sms_for(n["id"]), [])
        r = self.server.get("/api/v1/notifications", token=tok)
        self.assertEqual(r.status, 200, r)
        mine = [x for x in r.json()["notifications"] if x["id"] == str(n["id"])]
        self.assertEqual(len(mine), 1, r.json())
        self.assertEqual(mine[0]["status"], "sent")
        self.assertEqual(mine[0]["channel_used"], "email")
        self.assertTrue(mine[0]["sent_at"])
        self.assertEqual(self.server.get("/api/v1/notifications").status, 401)
        ready = self.server.get("/readyz").json()["dependencies"]
        self.assertIn("smtp", ready)
        self.assertIn("sms", ready)

    def test_smtp_down_falls_back_to_sms(self):
        for i, mode in enumerate(("error", "refuse")):
            with self.subTest(mode=mode):
                self.deps.reset()
                self.deps.set_fault("smtp", mode)
                _, appt, _ = self.book(self.patients()[1 + i])
                n = self.wait_notification(f"booked-{appt}", lambda n: n["status"] == "sent")
                self.assertEqual(n["channel_used"], "sms")
                time.sleep(0.5)
                sms = self.sms_for(n["id"])
                self.assertEqual(len(sms), 1, sms)
                self.assertTrue(sms[0]["to"].startswith("+1"), sms)
                self.assertEqual(self.mails_for(n["id"]), [])

    def test_both_down_stays_queued_then_delivered_once(self):
        self.deps.set_fault("smtp", "refuse")
        self.deps.set_fault("sms", "error")
        _, appt, _ = self.book(self.patients()[3])
        n = self.wait_notification(f"booked-{appt}",
                                   lambda n: n["attempts"] >= 2 and n["status"] == "queued")
        self.assertTrue(n["last_error"])
        self.assertEqual(self.sms_for(n["id"]), [])
        self.assertEqual(self.mails_for(n["id"]), [])
        r = self.deps.admin("DELETE", "/admin/faults")
        self.assertEqual(r.status, 200, r)
        n = self.wait_notification(f"booked-{appt}", lambda n: n["status"] == "sent", timeout=90)
        time.sleep(2.0)
        delivered = len(self.sms_for(n["id"])) + len(self.mails_for(n["id"]))
        self.assertEqual(delivered, 1, (n, self.deps.log("sms"), self.deps.log("smtp")))
        # The portal's own record agrees: sent once, on the channel that delivered it.
        rows = self.cluster.rows("SELECT status, channel_used, sent_at IS NOT NULL AS sent "
                                 "FROM notification WHERE id = :'n'", n=n["id"])
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual((rows[0]["status"], rows[0]["sent"]), ("sent", True), rows)
        self.assertEqual(rows[0]["channel_used"],
                         "sms" if self.sms_for(n["id"]) else "email", rows)

    def test_reminder_enqueued_once(self):
        _, appt, slot = self.book(self.patients()[4])
        self.cluster.sql(
            "UPDATE slot SET start_at = now() + interval '2 hours', "
            "end_at = now() + interval '150 minutes' WHERE id = :'s'", s=slot)
        n = self.wait_notification(f"reminder-{appt}", lambda n: n["status"] == "sent", timeout=40)
        self.assertEqual(n["channel_used"], "email")
        time.sleep(6.0)  # a later sweep enqueues nothing new
        self.assertEqual(self.cluster.scalar(
            "SELECT count(*) FROM notification WHERE dedupe_key LIKE :'k'",
            k=f"reminder-{appt}"), 1)
        mails = self.mails_for(n["id"])
        self.assertEqual(len(mails), 1, mails)
        self.assertEqual(mails[0]["subject"], "Reminder: your appointment")

    def test_patient_without_email_gets_sms(self):
        _, appt, _ = self.book(self.patients(email=False)[0])
        n = self.wait_notification(f"booked-{appt}", lambda n: n["status"] == "sent")
        self.assertIsNone(n["to_email"])
        self.assertEqual(n["channel_used"], "sms")
        time.sleep(0.5)
        self.assertEqual(len(self.sms_for(n["id"])), 1)

    def test_reminder_of_a_cancelled_appointment_is_not_sent(self):
        self.deps.set_fault("smtp", "refuse")
        self.deps.set_fault("sms", "error")
        tok, appt, slot = self.book(self.patients()[5])
        self.cluster.sql(
            "UPDATE slot SET start_at = now() + interval '3 hours', "
            "end_at = now() + interval '190 minutes' WHERE id = :'s'", s=slot)
        reminder = self.wait_notification(f"reminder-{appt}", lambda n: n["status"] == "queued",
                                          timeout=40)
        r = self.server.post_json(f"/fhir/R4/Appointment/{appt}/$cancel", {}, token=tok)
        self.assertEqual(r.status, 200, r)
        self.wait_notification(f"reminder-{appt}", lambda n: n["status"] == "cancelled")
        self.assertEqual(self.deps.admin("DELETE", "/admin/faults").status, 200)
        self.wait_notification(f"booked-{appt}", lambda n: n["status"] == "sent", timeout=90)
        time.sleep(1.0)
        self.assertEqual(self.sms_for(reminder["id"]) + self.mails_for(reminder["id"]), [])
        self.assertEqual(self.notification(f"reminder-{appt}")["status"], "cancelled")
