"""Audit completeness under a crash, and tamper evidence.

16 client threads read PHI for a few seconds; the server is SIGKILLed in the middle of
the load. Every PHI response a client received (2xx) must have its audit record — the
server may not send PHI before the record is durable in the journal — and after a
restart the journal is shipped to audit_event. `continuum audit verify` passes; then a
modified audit_event row and a flipped byte in the journal are both reported."""

import os
import re
import signal
import threading
import time
import unittest

from harness import ContinuumTestCase

THREADS = 16
LOAD_SECONDS = 5.0
KILL_AFTER = 2.5


class AuditCompletenessTest(ContinuumTestCase):
    def test_every_phi_response_is_audited_across_a_crash_and_tampering_is_detected(self):
        s, c = self.server, self.cluster

        # Readers: the demo provider on patients of her panel, and a few patients on their own record.
        panel = [str(r["patient_id"]) for r in c.rows(
            "SELECT patient_id FROM care_relationship WHERE practitioner_id = 1 ORDER BY patient_id LIMIT 5")]
        self.assertIn("1", panel)
        readers = [(self.token("demo-provider"), panel)]
        for pid in ("1", "2", "3"):
            readers.append((self.token(f"patient-{pid}"), [pid]))
        paths = ["/fhir/R4/Patient/{p}", "/fhir/R4/AllergyIntolerance?patient={p}",
                 "/fhir/R4/MedicationStatement?patient={p}", "/fhir/R4/Condition?patient={p}",
                 "/fhir/R4/Encounter?patient={p}", "/fhir/R4/Patient/{p}/$summary"]

        phi_ok: list[str] = []      # request ids of 2xx PHI responses the clients received
        unexpected: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()

        def worker(n):
            token, patients = readers[n % len(readers)]
            client = s.client(timeout=5)
            i = n
            while not stop.is_set():
                path = paths[i % len(paths)].format(p=patients[i % len(patients)])
                i += 1
                try:
                    r = client.request("GET", path, token=token)
                except OSError:
                    time.sleep(0.05)  # server gone (killed): keep trying until told to stop
                    continue
                with lock:
                    if 200 <= r.status < 300:
                        phi_ok.append(r.request_id)
                    elif r.status not in (503,):
                        unexpected.append(f"{r.status} {path}")
            client.close()

        threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(THREADS)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(KILL_AFTER)
        self.assertEqual(s.kill9(), -signal.SIGKILL)
        time.sleep(max(0.0, LOAD_SECONDS - (time.monotonic() - t0)))
        stop.set()
        for t in threads:
            t.join(10)
        self.assertFalse(any(t.is_alive() for t in threads), "client threads did not stop")
        self.assertEqual(unexpected, [], "unexpected statuses under load")
        self.assertGreater(len(phi_ok), 100, "too little load to mean anything")
        print(f"\n  {len(phi_ok)} PHI responses received before the SIGKILL", flush=True)

        # Restart; the new process ships what the dead one journaled.
        s.start()
        wanted = set(phi_ok)

        def missing():
            rows = c.rows("SELECT DISTINCT request_id FROM audit_event WHERE request_id LIKE 'e2e-%'")
            return wanted - {r["request_id"] for r in rows}

        deadline = time.monotonic() + 20
        left = missing()
        while left and time.monotonic() < deadline:
            time.sleep(0.5)
            left = missing()
        journal = s.journal_bytes()
        not_journaled = [rid for rid in list(left)[:20] if rid.encode() not in journal]
        self.assertEqual(left, set(), f"{len(left)} of {len(wanted)} PHI responses have no audit_event row "
                                      f"(of the first 20, not even in the journal: {not_journaled})")
        outcomes = {r["outcome"] for r in c.rows(
            "SELECT DISTINCT outcome FROM audit_event WHERE request_id = ANY(string_to_array(:'ids', ','))",
            ids=",".join(sorted(wanted)[:500]))}
        self.assertEqual(outcomes, {"success"})

        # Clean trail: verify passes.
        self.assertEqual(s.stop(), 0, "graceful stop failed:\n" + s.log_tail())
        cp = c.audit_verify()
        self.assertEqual(cp.returncode, 0, f"audit verify on a clean trail:\n{cp.stdout}\n{cp.stderr}")
        self.assertIn("OK", cp.stdout)

        # Tamper with one row in PostgreSQL (bypassing the append-only trigger). Its record is
        # NULL (the columns give the line back): verify rebuilds the line from the changed
        # column; a row that kept its record gets the same change in it.
        row = c.rows("SELECT node_id, seq, actor FROM audit_event WHERE actor = 'demo-provider' "
                     "ORDER BY seq LIMIT 1 OFFSET 5")[0]
        db_seq = row["seq"]
        c.sql("""SET session_replication_role = replica;
                 UPDATE audit_event SET actor = 'mallory', record = replace(record, actor, 'mallory')
                 WHERE node_id = :'node' AND seq = :seq;""", node=row["node_id"], seq=db_seq)
        cp = c.audit_verify()
        self.assertEqual(cp.returncode, 1, f"modified audit_event row not detected:\n{cp.stdout}\n{cp.stderr}")
        self.assertRegex(cp.stdout, rf"\b{db_seq}\b", "the report must name the modified row")

        # Flip one byte inside a field of another record in the (stopped) node's journal.
        records = s.journal_records()
        target = next(rec for rec in records[len(records) // 2:]
                      if rec[3].get("seq") not in (db_seq, None)
                      and str(rec[3].get("request_id", "")).startswith("e2e-"))
        path, offset, line, parsed = target
        j_seq = parsed["seq"]
        m = re.search(rb'"request_id"\s*:\s*"e2e-', line)
        self.assertIsNotNone(m, line[:200])
        pos = offset + m.end() + 3  # a hex digit of our request id
        with open(path, "r+b") as f:
            f.seek(pos)
            old = f.read(1)
            f.seek(pos)
            f.write(b"0" if old != b"0" else b"1")
            f.flush()
            os.fsync(f.fileno())
        cp = c.audit_verify()
        self.assertEqual(cp.returncode, 1, f"flipped journal byte not detected:\n{cp.stdout}\n{cp.stderr}")
        problems = [l for l in cp.stdout.splitlines() if l.strip()]
        print("  audit verify after tampering (row seq %s, journal seq %s):\n    %s"
              % (db_seq, j_seq, "\n    ".join(problems[:8])), flush=True)
        self.assertGreaterEqual(len(problems), 2, cp.stdout)
        self.assertRegex(cp.stdout, rf"\b{db_seq}\b", "the report must still name the modified row")
        self.assertRegex(cp.stdout, rf"\b{j_seq}\b", "the report must name the modified journal record")
        self.assertNotIn("\nOK", "\n" + cp.stdout)


if __name__ == "__main__":
    unittest.main()
