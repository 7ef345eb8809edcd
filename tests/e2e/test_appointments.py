"""High tier: appointment scheduling (FHIR Slot and Appointment) and its read-only mode."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
import uuid

from harness import BINARY, PG_TMP, ContinuumTestCase, free_port, stop_process, wait_until


class AppointmentTest(ContinuumTestCase):
    def free_slots(self, token, count=5, **params):
        q = {"status": "free", "_count": str(count)}
        q.update(params)
        r = self.server.fhir("Slot", token=token, params=q)
        self.assertEqual(r.status, 200, r)
        bundle = r.json()
        self.assertEqual(bundle["resourceType"], "Bundle")
        return [e["resource"] for e in bundle.get("entry", [])]

    def book(self, token, slot_id, key=None, description=None):
        body = {"resourceType": "Appointment", "slot": [{"reference": f"Slot/{slot_id}"}]}
        if description is not None:
            body["description"] = description
        headers = {"Idempotency-Key": key} if key else None
        return self.server.post_json("/fhir/R4/Appointment", body, token=token,
                                     content_type="application/fhir+json", headers=headers)

    def test_search_book_list_cancel(self):
        tok = self.token("demo-patient")
        slots = self.free_slots(tok, count=3)
        self.assertEqual(len(slots), 3)
        for s in slots:
            self.assertEqual(s["resourceType"], "Slot")
            self.assertEqual(s["status"], "free")
            self.assertTrue(s["schedule"]["reference"].startswith("Schedule/"))
        starts = [s["start"] for s in slots]
        self.assertEqual(starts, sorted(starts))
        slot = slots[0]
        r = self.book(tok, slot["id"], key=str(uuid.uuid4()), description="Annual check-up")
        self.assertEqual(r.status, 201, r)
        appt = r.json()
        self.assertEqual(appt["resourceType"], "Appointment")
        self.assertEqual(appt["status"], "booked")
        self.assertEqual(appt["slot"][0]["reference"], f"Slot/{slot['id']}")
        self.assertEqual(appt["start"], slot["start"])
        self.assertIn({"reference": "Patient/1"}, [p["actor"] for p in appt["participant"]])
        self.assertTrue(r.header("Location").endswith(f"/Appointment/{appt['id']}"))
        # The slot is no longer offered.
        ids = [s["id"] for s in self.free_slots(tok, count=100, start=f"ge{slot['start']}")]
        self.assertNotIn(slot["id"], ids)
        # The patient's list and the read.
        r = self.server.fhir("Appointment", token=tok, params={"patient": "1"})
        self.assertEqual(r.status, 200, r)
        self.assertIn(appt["id"], [e["resource"]["id"] for e in r.json().get("entry", [])])
        r = self.server.fhir(f"Appointment/{appt['id']}", token=tok)
        self.assertEqual(r.status, 200, r)
        # Cancel (twice: the same answer), and the slot is free again.
        for _ in range(2):
            r = self.server.post_json(f"/fhir/R4/Appointment/{appt['id']}/$cancel", {}, token=tok)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["status"], "cancelled")
        ids = [s["id"] for s in self.free_slots(tok, count=100, start=f"ge{slot['start']}")]
        self.assertIn(slot["id"], ids)

    def test_idempotent_booking_and_no_double_booking(self):
        tok = self.token("demo-patient")
        slot = self.free_slots(tok, count=1, start="ge2030-01-01")  # beyond seeded slots
        self.assertEqual(slot, [])
        slot = self.free_slots(tok, count=10)[5]
        key = str(uuid.uuid4())
        first = self.book(tok, slot["id"], key=key)
        self.assertEqual(first.status, 201, first)
        again = self.book(tok, slot["id"], key=key)
        self.assertEqual(again.status, 200, again)
        self.assertEqual(again.header("Idempotent-Replayed"), "true")
        self.assertEqual(again.json()["id"], first.json()["id"])
        self.assertEqual(self.cluster.scalar(
            "SELECT count(*) FROM appointment WHERE idempotency_key = :'k'", k=key), 1)
        # Another patient cannot take the slot; a reused key for another slot is refused.
        other = self.token("patient-3")
        r = self.book(other, slot["id"], key=str(uuid.uuid4()))
        self.assertOperationOutcome(r, 409, "conflict")
        another = self.free_slots(tok, count=10)[6]
        r = self.book(tok, another["id"], key=key)
        self.assertOperationOutcome(r, 409, "conflict")

    def test_concurrent_bookings_of_one_slot(self):
        slot = self.free_slots(self.token("demo-patient"), count=20)[12]
        users = [f"patient-{i}" for i in range(10, 18)]
        tokens = [self.token(u) for u in users]
        responses = [None] * len(tokens)
        # Every thread is ready before any sends: released together at a barrier.
        barrier = threading.Barrier(len(tokens))

        def go(i):
            barrier.wait()
            responses[i] = self.book(tokens[i], slot["id"], key=str(uuid.uuid4()))

        threads = [threading.Thread(target=go, args=(i,)) for i in range(len(tokens))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        results = [r.status for r in responses]
        self.assertEqual(sorted(results), [201] + [409] * (len(tokens) - 1), results)
        booked = self.cluster.rows(
            "SELECT a.id, a.patient_id, ac.username FROM appointment a JOIN account ac ON "
            "ac.patient_id = a.patient_id WHERE a.slot_id = :'s' AND a.status = 'booked'",
            s=slot["id"])
        self.assertEqual(len(booked), 1, booked)
        # The winner is the patient on the booked row, and the appointment it was told of.
        winner = results.index(201)
        self.assertEqual(booked[0]["username"], users[winner], (booked, results))
        self.assertEqual(str(booked[0]["id"]), responses[winner].json()["id"])
        self.assertIn({"reference": f"Patient/{booked[0]['patient_id']}"},
                      [p["actor"] for p in responses[winner].json()["participant"]])

    def test_reschedule(self):
        tok = self.token("patient-4")
        slots = self.free_slots(tok, count=30)
        a = self.book(tok, slots[20]["id"], key=str(uuid.uuid4()))
        self.assertEqual(a.status, 201, a)
        key = str(uuid.uuid4())
        path = f"/fhir/R4/Appointment/{a.json()['id']}/$reschedule"
        body = {"slot": [{"reference": f"Slot/{slots[21]['id']}"}]}
        r = self.server.post_json(path, body, token=tok, headers={"Idempotency-Key": key})
        self.assertEqual(r.status, 201, r)
        new = r.json()
        self.assertEqual(new["slot"][0]["reference"], f"Slot/{slots[21]['id']}")
        replay = self.server.post_json(path, body, token=tok, headers={"Idempotency-Key": key})
        self.assertEqual(replay.status, 200, replay)
        self.assertEqual(replay.json()["id"], new["id"])
        old = self.server.fhir(f"Appointment/{a.json()['id']}", token=tok).json()
        self.assertEqual(old["status"], "cancelled")
        ids = [s["id"] for s in self.free_slots(tok, count=100, start=f"ge{slots[20]['start']}")]
        self.assertIn(slots[20]["id"], ids)
        self.assertNotIn(slots[21]["id"], ids)

    def test_rescheduling_a_cancelled_appointment_with_a_new_key_is_409(self):
        tok = self.token("patient-5")
        slots = self.free_slots(tok, count=40)
        a = self.book(tok, slots[30]["id"], key=str(uuid.uuid4()))
        self.assertEqual(a.status, 201, a)
        aid = a.json()["id"]
        r = self.server.post_json(f"/fhir/R4/Appointment/{aid}/$cancel", {}, token=tok)
        self.assertEqual(r.status, 200, r)
        body = {"slot": [{"reference": f"Slot/{slots[31]['id']}"}]}
        for key in (str(uuid.uuid4()), None):
            r = self.server.post_json(f"/fhir/R4/Appointment/{aid}/$reschedule", body, token=tok,
                                      headers={"Idempotency-Key": key} if key else None)
            self.assertOperationOutcome(r, 409, "conflict")
            self.assertIn("cancelled", r.json()["issue"][0]["diagnostics"])
        # Nothing was booked on the way.
        self.assertEqual(self.cluster.scalar(
            "SELECT count(*) FROM appointment WHERE slot_id = :'s'", s=slots[31]["id"]), 0)

    def test_bad_input_and_authorization(self):
        tok = self.token("demo-patient")
        for params in ({"start": "tomorrow"}, {"status": "maybe"}, {"start": "xx2026-01-01"},
                       {"_count": "0"}, {"colour": "red"}):
            r = self.server.fhir("Slot", token=tok, params=params)
            self.assertOperationOutcome(r, 400)
        for body in ({"resourceType": "Appointment"},
                     {"resourceType": "Appointment", "slot": [{"reference": "Patient/1"}]},
                     {"resourceType": "Patient", "slot": [{"reference": "Slot/1"}]},
                     {"resourceType": "Appointment", "slot": [{"reference": "Slot/1"}],
                      "description": "x" * 501}):
            r = self.server.post_json("/fhir/R4/Appointment", body, token=tok)
            self.assertOperationOutcome(r, 400)
        r = self.book(tok, "999999999")
        self.assertOperationOutcome(r, 400, "not-found")
        self.assertEqual(self.server.fhir("Slot").status, 401)
        # A provider does not book for themself here; a patient sees only their own list.
        slot = self.free_slots(tok, count=1)[0]
        self.assertOperationOutcome(self.book(self.token("demo-provider"), slot["id"]), 403)
        r = self.server.fhir("Appointment", token=tok, params={"patient": "2"})
        self.assertOperationOutcome(r, 403)
        self.assertEqual(self.cluster.scalar(
            "SELECT count(*) FROM appointment WHERE slot_id = :'s'", s=slot["id"]), 0)


def start_standby(cls) -> str:
    """A streaming standby of the class's cluster (pg-tmp, asynchronous), stopped when the
    class ends; returns its URL."""
    standby_dir = cls.cluster.dir / "standby"
    cp = subprocess.run([str(PG_TMP), "standby", str(cls.cluster.pg.dir), str(standby_dir)],
                        capture_output=True, text=True, timeout=120, check=True)
    cls.addClassCleanup(lambda: subprocess.run([str(PG_TMP), "stop", str(standby_dir)],
                                               capture_output=True, timeout=90))
    return cp.stdout.strip().splitlines()[-1]


class AppointmentReadOnlyTest(ContinuumTestCase):
    """With the primary gone and a standby left, the high tier answers read-only: slots,
    appointments and messages are still read (from the standby), writes get 503 +
    Retry-After, and /readyz says "read-only"; it recovers by itself."""

    START_SERVER = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.cluster
        cls.standby_url = standby_url = start_standby(cls)
        cls.server = c.add_server("node-1", {
            # The test's standby is asynchronous (pg-tmp): commits need no sync standby here.
            "database": {"high": {"deadline_ms": 1500}, "clinical_commit": "local"},
            # Reads stay on the standby while no primary is seen for up to a minute (the
            # lag bound; db/topology.hpp): long enough for this test.
            "topology": {"max_replica_lag_ms": 60000, "probe_interval_ms": 200,
                         "region": [{"name": "e2e", "database_url": standby_url},
                                    {"name": "primary", "database_url": c.pg.url}]}})

    def high_mode(self):
        return self.server.get("/readyz").json()["tiers"]["high"]["mode"]

    def wait_mode(self, mode, timeout=15):
        deadline = time.monotonic() + timeout
        while self.high_mode() != mode and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.high_mode()

    def wait_streaming(self, timeout=20):
        """Until the standby streams from the primary: after the primary's restart its WAL
        receiver comes back only at its next retry (wal_retrieve_retry_interval), and what
        the primary commits before that never reaches a standby that is not connected."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.cluster.pg.psql("SELECT status FROM pg_stat_wal_receiver",
                                          database_url=self.standby_url).strip()
            if status == "streaming" or time.monotonic() > deadline:
                return status
            time.sleep(0.2)

    def test_reads_work_and_writes_are_refused_while_the_primary_is_down(self):
        tok = self.token("demo-patient")
        self.assertEqual(self.wait_streaming(), "streaming")
        r = self.server.fhir("Slot", token=tok, params={"_count": "3"})
        self.assertEqual(r.status, 200, r)
        slot = r.json()["entry"][2]["resource"]
        booked = self.server.post_json(
            "/fhir/R4/Appointment",
            {"resourceType": "Appointment", "slot": [{"reference": f"Slot/{slot['id']}"}]},
            token=tok, headers={"Idempotency-Key": str(uuid.uuid4())})
        self.assertEqual(booked.status, 201, booked)
        sent = self.server.post_json(
            "/fhir/R4/Communication",
            {"resourceType": "Communication", "recipient": [{"reference": "Practitioner/1"}],
             "topic": {"text": "Outage drill"}, "payload": [{"contentString": "Before the outage."}]},
            token=tok, headers={"Idempotency-Key": str(uuid.uuid4())})
        self.assertIn(sent.status, (200, 201), sent)
        self.assertEqual(self.wait_mode("normal"), "normal")
        c = self.cluster
        c.pg.stop()
        try:
            self.assertEqual(self.wait_mode("read-only"), "read-only")
            # Reads: slots, the patient's appointments (with the one just booked) and messages.
            r = self.server.fhir("Slot", token=tok, params={"_count": "3"})
            self.assertEqual(r.status, 200, r)
            r = self.server.fhir("Appointment", token=tok, params={"patient": "1"})
            self.assertEqual(r.status, 200, r)
            self.assertIn(booked.json()["id"], [e["resource"]["id"] for e in r.json()["entry"]])
            r = self.server.fhir(f"Appointment/{booked.json()['id']}", token=tok)
            self.assertEqual(r.status, 200, r)
            r = self.server.fhir("Communication", token=tok, params={"patient": "1"})
            self.assertEqual(r.status, 200, r)
            self.assertIn(sent.json()["id"], [e["resource"]["id"] for e in r.json()["entry"]])
            self.assertEqual(self.server.get("/api/v1/messages/unread", token=tok).status, 200)
            # Writes: refused, clearly.
            for path, body, token in (
                    ("/fhir/R4/Appointment",
                     {"resourceType": "Appointment", "slot": [{"reference": f"Slot/{slot['id']}"}]},
                     tok),
                    (f"/fhir/R4/Appointment/{booked.json()['id']}/$cancel", {}, tok),
                    ("/fhir/R4/Communication",
                     {"resourceType": "Communication",
                      "recipient": [{"reference": "Practitioner/1"}],
                      "topic": {"text": "Outage drill"},
                      "payload": [{"contentString": "During the outage."}]}, tok)):
                r = self.server.post_json(path, body, token=token,
                                          headers={"Idempotency-Key": str(uuid.uuid4())})
                self.assertOperationOutcome(r, 503)
                self.assertEqual(r.header("X-Continuum-Degraded"), "read-only", (path, r))
                self.assertTrue(r.header("Retry-After"), r)
                self.assertIn("read-only", r.json()["issue"][0]["diagnostics"])
        finally:
            c.pg.start()
        self.assertEqual(self.wait_mode("normal", timeout=30), "normal")
        deadline = time.monotonic() + 20
        while True:
            r = self.server.post_json(f"/fhir/R4/Appointment/{booked.json()['id']}/$cancel", {},
                                      token=tok)
            if r.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual(r.status, 200, r)

    def test_a_read_of_ones_own_write_waits_for_the_standby_to_replay_it(self):
        """The patient's own message is not yet replayed on the standby when the primary
        goes: their read waits (within its deadline) for the standby to catch up and is then
        served there. The write pool, which only a primary can serve, is not where it waits."""
        tok = self.token("demo-patient")
        self.assertEqual(self.wait_mode("normal"), "normal")
        self.assertEqual(self.wait_streaming(), "streaming")
        c = self.cluster
        c.pg.psql("SELECT pg_wal_replay_pause()", database_url=self.standby_url)
        resume = threading.Timer(0.4, lambda: c.pg.psql("SELECT pg_wal_replay_resume()",
                                                          database_url=self.standby_url))
        try:
            sent = self.server.post_json(
                "/fhir/R4/Communication",
                {"resourceType": "Communication", "recipient": [{"reference": "Practitioner/1"}],
                 "topic": {"text": "Replay drill"},
                 "payload": [{"contentString": "Sent while the standby's replay is paused."}]},
                token=tok, headers={"Idempotency-Key": str(uuid.uuid4())})
            self.assertIn(sent.status, (200, 201), sent)
            c.pg.stop()
            self.assertEqual(self.wait_mode("read-only"), "read-only")
            # Still paused: the standby holds the message's WAL but has not replayed it.
            self.assertEqual(c.pg.psql("SELECT pg_is_wal_replay_paused()",
                                       database_url=self.standby_url).strip(), "t")
            resume.start()
            started = time.monotonic()
            r = self.server.fhir("Communication", token=tok, params={"patient": "1"})
            waited = time.monotonic() - started
            self.assertEqual(r.status, 200, r)
            self.assertIn(sent.json()["id"], [e["resource"]["id"] for e in r.json()["entry"]])
            # Served after the replay resumed, well within the high tier's 1.5 s deadline.
            self.assertGreater(waited, 0.3, waited)
        finally:
            resume.cancel()
            c.pg.psql("SELECT pg_wal_replay_resume()", database_url=self.standby_url)
            if not c.pg.postmaster_pid():
                c.pg.start()
        self.assertEqual(self.wait_mode("normal", timeout=30), "normal")


def standbys_out(db) -> bool:
    """No standby within the lag bound (its lag unknown): none serves reads."""
    return all(m["lag_ms"] == -1 for m in db["members"] if m["role"] == "standby")


class ReadDuringPromotionTest(ContinuumTestCase):
    """A read that arrives while no primary is in sight waits for the topology's probes,
    and is served by a standby promoted in the meantime: it does not sit in the write pool,
    which finds a primary only through the write URL (here the old primary's alone, as
    libpq's multi-host URL finds a promoted standby only at its next connect)."""

    START_SERVER = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.cluster
        cls.standby_url = start_standby(cls)
        cls.server = c.add_server("node-1", {
            "database": {"critical": {"deadline_ms": 6000}, "clinical_commit": "local"},
            # A short lag bound: a second after the primary goes, the standby serves no read.
            "topology": {"max_replica_lag_ms": 1000, "probe_interval_ms": 200,
                         "region": [{"name": "e2e", "database_url": cls.standby_url},
                                    {"name": "primary", "database_url": c.pg.url}]}})

    def database(self):
        return self.server.get("/readyz").json()["database"]


    def test_a_read_waiting_for_a_primary_is_served_by_the_promoted_standby(self):
        tok = self.token("demo-patient")
        self.assertEqual(self.server.fhir("Patient/1/$summary", token=tok).status, 200)
        c = self.cluster
        c.pg.stop()
        # Past the lag bound: the standby's lag is unknown and no member serves reads.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            db = self.database()
            if not db["primary_known"] and standbys_out(db):
                break
            time.sleep(0.2)
        self.assertFalse(db["primary_known"], db)
        self.assertTrue(standbys_out(db), db)
        result = {}

        def read():
            started = time.monotonic()
            try:
                result["r"] = self.server.fhir("Patient/1/$summary", token=tok, timeout=20)
            except Exception as e:  # noqa: BLE001 - reported by the test below
                result["error"] = e
            result["s"] = time.monotonic() - started
        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(0.5)
        self.assertTrue(reader.is_alive(), "the read waits while no server can serve it (no early 503)")
        promoted = time.monotonic()
        self.assertEqual(c.pg.psql("SELECT pg_promote()", database_url=self.standby_url).strip(), "t")
        reader.join(20)
        self.assertFalse(reader.is_alive())
        self.assertNotIn("error", result, result.get("error"))
        r = result["r"]
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["resourceType"], "Bundle")
        log = f"read answered {time.monotonic() - promoted:.2f}s after pg_promote, {result['s']:.2f}s in all"
        print(f"\n[promotion] {log}")
        db = self.database()
        self.assertTrue(db["primary_known"], db)


class DatabaseProxyCase(ContinuumTestCase):
    """A `continuum net-proxy` in front of the test's PostgreSQL, started before any node:
    `proxied(url)` sends a URL's connections through it, and PUT /proxies/db (proxy_call)
    sets what it does to them ({"hold": true}: nothing passes). The subclass starts its
    node with one path through the proxy and the others direct."""

    START_SERVER = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.cluster
        cls.db_host_port = c.pg.url.split("@", 1)[1].split("/", 1)[0]
        for attempt in range(3):
            cls.proxy_port, cls.admin = free_port(), free_port()
            log = open(c.dir / "net-proxy.log", "ab")
            cls.proxy = subprocess.Popen(
                [str(BINARY), "net-proxy", "--admin-port", str(cls.admin),
                 "--proxy", f"db,127.0.0.1:{cls.proxy_port},{cls.db_host_port}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
            log.close()
            try:
                wait_until(lambda: cls.proxy.poll() is not None or cls.proxy_call("GET", "/healthz"),
                           timeout=15, message="net-proxy up")
            except Exception:
                cls.stop_proxy()
                raise
            if cls.proxy.poll() is None:
                break
        else:
            raise RuntimeError("net-proxy did not start (see net-proxy.log)")
        cls.addClassCleanup(cls.stop_proxy)

    @classmethod
    def proxied(cls, url: str) -> str:
        return url.replace(cls.db_host_port, f"127.0.0.1:{cls.proxy_port}", 1)

    @classmethod
    def proxy_call(cls, method, path, body=None):
        req = urllib.request.Request(f"http://127.0.0.1:{cls.admin}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return json.loads(r.read() or b"null") if r.status == 200 else None
        except OSError:
            return None

    @classmethod
    def stop_proxy(cls):
        stop_process(cls.proxy, 10, "net-proxy")

    def book(self, tok, slot, key=None):
        return self.server.post_json(
            "/fhir/R4/Appointment",
            {"resourceType": "Appointment", "slot": [{"reference": f"Slot/{slot['id']}"}]},
            token=tok, headers={"Idempotency-Key": key or str(uuid.uuid4())})

    def free_slots(self, tok, n):
        r = self.server.fhir("Slot", token=tok, params={"status": "free", "_count": str(n)})
        self.assertEqual(r.status, 200, r)
        return [e["resource"] for e in r.json()["entry"]]


class MissedProbeTest(DatabaseProxyCase):
    """A probe of the primary that runs out of its budget (on a loaded host that happens
    while the primary is fine) is a miss: bookings still go to the primary through the
    write pool, and the node stays ready. Two misses in a row are a primary gone: bookings
    are refused as read-only, and taken again once a probe answers
    (db::Topology::PrimaryGone). Here the probes' path alone is held, by a `continuum
    net-proxy` between the node's topology and the primary; the write pool reaches the
    primary directly, so a refused booking can only be the node's decision."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Probes every second, each with a budget of 2 s: 3 s between one miss and the
        # next, wide enough for a booking on a loaded machine.
        cls.server = cls.cluster.add_server("node-1", {
            "database": {"high": {"deadline_ms": 1500}, "clinical_commit": "local"},
            "topology": {"probe_interval_ms": 1000,
                         "region": [{"name": "e2e", "database_url": cls.proxied(cls.cluster.pg.url)}]}})

    def ready(self):
        return self.server.get("/readyz").json()

    def misses(self):
        return self.ready()["database"]["members"][0]["failed_probes"]

    def test_one_missed_probe_keeps_writes_two_turn_the_tier_read_only(self):
        tok = self.token("demo-patient")
        slots = self.free_slots(tok, 3)
        self.assertEqual(self.misses(), 0)
        # Nothing passes on the probes' path: each probe runs out of its budget.
        self.assertIsNotNone(self.proxy_call("PUT", "/proxies/db", {"hold": True}))
        try:
            wait_until(lambda: self.misses() >= 1, timeout=10, interval=0.02, message="a missed probe")
            first_miss = time.monotonic()
            r = self.server.get("/readyz")
            self.assertEqual(r.status, 200, r)  # one miss keeps the node in the edge's rotation
            db = r.json()["database"]
            self.assertFalse(db["primary_known"], db)
            self.assertFalse(db["primary_gone"], db)
            booked = self.book(tok, slots[0])
            if booked.status == 503 and self.misses() >= 2:
                self.skipTest("the second miss came before the booking (a slow host): not this "
                              "test's case")
            self.assertEqual(booked.status, 201, booked)
            self.assertEqual(self.ready()["tiers"]["high"]["mode"], "normal")
            # The second miss in a row: the primary is gone.
            wait_until(lambda: self.misses() >= 2, timeout=10, interval=0.05, message="a second miss")
            print(f"\n[missed probe] second miss {time.monotonic() - first_miss:.2f}s after the first")
            r = self.server.get("/readyz")
            self.assertEqual(r.status, 503, r)  # its own database has stopped answering
            ready = r.json()
            self.assertTrue(ready["database"]["primary_gone"], ready)
            # No standby in this topology, so /readyz cannot promise the tier's reads either.
            self.assertEqual(ready["tiers"]["high"]["mode"], "unavailable")
            refused = self.book(tok, slots[1])
            self.assertOperationOutcome(refused, 503)
            self.assertEqual(refused.header("X-Continuum-Degraded"), "read-only", refused)
        finally:
            self.proxy_call("DELETE", "/proxies/db")
        wait_until(lambda: self.misses() == 0, timeout=15, message="a probe answering again")
        self.assertEqual(self.ready()["tiers"]["high"]["mode"], "normal")
        self.assertEqual(self.book(tok, slots[1]).status, 201)
        self.assertEqual(self.cluster.scalar(
            "SELECT count(*) FROM appointment WHERE slot_id IN (:'a', :'b')",
            a=slots[0]["id"], b=slots[1]["id"]), 2)


class SlowWritePathTest(DatabaseProxyCase):
    """A booking that runs out of its deadline while the primary answers its probes is
    refused with a 503 that says what happened, not as "read-only while the portal switches
    to a backup database": nothing is failing over (portal/node.cpp, DegradeForTier). On a
    saturated node that is a deadline spent queueing (seen at a cluster's start, with every
    database up); here the node's own database URL (its write pool, login and audit
    shipper) goes through the net-proxy, which holds it, while the topology's probes and
    read pools reach the primary directly. Retried with its Idempotency-Key once the path
    passes again, the booking is stored once."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.cluster
        cls.server = c.add_server("node-1", {
            "database": {"url": cls.proxied(c.pg.portal_url), "high": {"deadline_ms": 1500},
                         "clinical_commit": "local"},
            "topology": {"probe_interval_ms": 500, "region": [{"name": "e2e", "database_url": c.pg.url}]}})

    def test_a_write_out_of_time_with_the_primary_answering_is_not_read_only(self):
        tok = self.token("demo-patient")
        slot = self.free_slots(tok, 1)[0]
        key = str(uuid.uuid4())
        self.assertIsNotNone(self.proxy_call("PUT", "/proxies/db", {"hold": True}))
        try:
            refused = self.book(tok, slot, key)
            ready = self.server.get("/readyz").json()
        finally:
            self.proxy_call("DELETE", "/proxies/db")
        self.assertOperationOutcome(refused, 503)
        self.assertTrue(ready["database"]["primary_known"], ready)  # the probes go direct
        self.assertIsNone(refused.header("X-Continuum-Degraded"), refused)
        self.assertNotIn("read-only", refused.text)
        self.assertIsNotNone(refused.header("Retry-After"), refused)
        print(f"\n[slow write path] {refused.status} {refused.json()['issue'][0]['diagnostics']!r}")

        def retried():
            r = self.book(tok, slot, key)
            return r if r.status in (200, 201) else None
        wait_until(retried, timeout=20, interval=0.5, message="the booking retried with its key")
        self.assertEqual(self.cluster.scalar("SELECT count(*) FROM appointment WHERE slot_id = :'s'",
                                             s=slot["id"]), 1)
