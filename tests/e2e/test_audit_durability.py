"""Durable before the response, proven from the system calls (issue 10 item 5).

test_audit.py SIGKILLs the server: the page cache survives that, so it proves "written",
not "synced". Here the running server is traced with strace (-f, every thread) under a
small concurrent load of PHI reads of every tier — records, allergies and medications
(critical), appointments and messages (high), invoices, coverage and pharmacy fill
status (medium), recommendations (low) — and for every 2xx PHI response the trace must
show, in this order:
  1. a write() to the node's journal segment carrying that request's record,
  2. an fdatasync() of that same journal file descriptor by the same thread, begun after
     that write returned, that returned 0,
  3. only then the first send of the response's bytes (the syscall carrying
     "HTTP/1.1 ..." with its X-Request-Id).
strace serialises what it prints, so the order of the lines is the order of the events
(a call interrupted by another thread shows as "<unfinished ...>" at its entry and
"<... resumed>" at its exit; a sync counts at its exit, a send at its entry).
Each audited record is then compared, field by field, with the request that caused it:
actor, role, action, resource type and id, patient, outcome.

What this does not prove: that the disk honours fdatasync (a drive that lies about its
cache, or a file system mounted without barriers, defeats any software); that the
directory entry of a *new* segment is durable (the journal fsyncs the folder when it
creates one; that call is not checked here); crash behaviour of the kernel itself; and
it samples one load pattern, not every interleaving. The audited record's content is
checked against what the test asked for, not against every byte of the response.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import unittest

import harness
from harness import ContinuumTestCase
from stubdeps import StubDeps

THREADS = 6
LOAD_SECONDS = 3.0
STRACE = shutil.which("strace")

LINE = re.compile(r"^(\d+)\s+\d\d:\d\d:\d\d\.\d+\s+(.*)$")
CALL = re.compile(r"^(\w+)\((.*)$", re.S)
RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$", re.S)
RET = re.compile(r"=\s+(-?\d+)(?:\s+\w+.*)?$")
FD = re.compile(r"^(\d+)<([^>]*)>")


class Call:
    __slots__ = ("tid", "name", "text", "entry", "exit", "ret")

    def __init__(self, tid, name, text, entry):
        self.tid, self.name, self.text, self.entry = tid, name, text, entry
        self.exit = None
        self.ret = None


def parse_trace(path) -> list[Call]:
    calls: list[Call] = []
    pending: dict[str, Call] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for i, raw in enumerate(f):
            m = LINE.match(raw.rstrip("\n"))
            if not m:
                continue
            tid, rest = m.group(1), m.group(2)
            r = RESUMED.match(rest)
            if r:
                c = pending.pop(tid, None)
                if c is not None:
                    c.exit = i
                    rm = RET.search(r.group(2))
                    c.ret = int(rm.group(1)) if rm else None
                continue
            cm = CALL.match(rest)
            if not cm:
                continue
            c = Call(tid, cm.group(1), cm.group(2), i)
            calls.append(c)
            if rest.endswith("<unfinished ...>"):
                pending[tid] = c
            else:
                c.exit = i
                rm = RET.search(rest)
                c.ret = int(rm.group(1)) if rm else None
    return calls


@unittest.skipUnless(STRACE, "strace is not installed (scripts/setup installs it)")
class AuditDurabilityTraceTest(ContinuumTestCase):
    START_SERVER = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.deps = StubDeps().start()
        cls.addClassCleanup(cls.deps.close)
        cls.server = cls.cluster.add_server("node-1", {
            "dependencies": {"pharmacy": cls.deps.dependency("pharmacy", timeout_ms=2000)},
            "server": {"access_log": False}})

    def requests_for(self, username: str, role: str, pid: str) -> list[tuple]:
        """(method, path, expected record fields) of PHI reads of every tier."""
        c = self.cluster
        med = str(c.scalar("SELECT min(id) FROM medication WHERE patient_id = :'p'", p=pid))

        def exp(action, rtype, rid=""):
            return {"actor": username, "role": role, "action": action, "resource_type": rtype,
                    "resource_id": rid, "patient_id": pid, "outcome": "success"}
        out = [
            ("GET", f"/fhir/R4/Patient/{pid}", exp("read", "Patient", pid)),                       # critical
            ("GET", f"/fhir/R4/AllergyIntolerance?patient={pid}", exp("search", "AllergyIntolerance")),
            ("GET", f"/fhir/R4/MedicationStatement?patient={pid}", exp("search", "MedicationStatement")),
            ("GET", f"/fhir/R4/Appointment?patient={pid}", exp("search", "Appointment")),          # high
            ("GET", f"/fhir/R4/Communication?patient={pid}", exp("search", "Communication")),
        ]
        if role == "patient":
            out += [
                ("GET", f"/fhir/R4/Invoice?patient={pid}", exp("search", "Invoice")),             # medium
                ("GET", f"/fhir/R4/Coverage?patient={pid}", exp("search", "Coverage")),
                ("GET", f"/api/v1/medications/{med}/fill-status", exp("read", "MedicationDispense", med)),
                ("GET", f"/api/v1/recommendations?patient={pid}", exp("read", "Recommendations")),  # low
            ]
        return out

    def test_every_phi_response_leaves_after_the_fdatasync_of_its_record(self):
        s, c = self.server, self.cluster
        panel = [str(r["patient_id"]) for r in c.rows(
            "SELECT patient_id FROM care_relationship WHERE practitioner_id = 1 ORDER BY patient_id LIMIT 2")]
        users = [("patient-1", "patient", "1"), ("patient-2", "patient", "2"),
                 ("patient-3", "patient", "3")] + [("demo-provider", "provider", p) for p in panel]
        work = [(self.token(u), req) for u, role, pid in users for req in self.requests_for(u, role, pid)]

        trace = s.dir / "strace.out"
        tracer = subprocess.Popen(
            [STRACE, "-f", "-tt", "-yy", "-s", "262144", "-qq",
             "-e", "trace=write,pwrite64,writev,sendto,sendmsg,fdatasync,fsync",
             "-o", str(trace), "-p", str(s.pid)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True)
        try:
            time.sleep(1.0)  # attach to every thread
            if tracer.poll() is not None:
                self.fail(f"strace exited: {tracer.stderr.read()!r}")
            sent: list[tuple[str, dict, int]] = []   # (request id, expected record, status)
            errors: list[str] = []
            lock = threading.Lock()
            stop = threading.Event()

            def worker(n):
                client = s.client(timeout=15)
                i = n
                while not stop.is_set():
                    token, (method, path, expected) = work[i % len(work)]
                    i += THREADS
                    try:
                        r = client.request(method, path, token=token)
                    except OSError as e:
                        with lock:
                            errors.append(f"{path}: {e}")
                        return
                    with lock:
                        sent.append((r.request_id, expected, r.status))
                client.close()

            threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(THREADS)]
            for t in threads:
                t.start()
            time.sleep(LOAD_SECONDS)
            stop.set()
            for t in threads:
                t.join(20)
            self.assertFalse(any(t.is_alive() for t in threads), "client threads hung")
            self.assertEqual(errors, [])
        finally:
            os.kill(tracer.pid, signal.SIGINT)  # detaches from the server, which runs on
            try:
                tracer.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(tracer.pid, signal.SIGKILL)
                tracer.wait(5)
            tracer.stderr.close()
        self.assertTrue(s.alive(), "the server died under strace")

        ok = [(rid, exp) for rid, exp, status in sent if 200 <= status < 300]
        by_type = {}
        for _, exp in ok:
            by_type[exp["resource_type"]] = by_type.get(exp["resource_type"], 0) + 1
        wanted_types = {"Patient", "AllergyIntolerance", "MedicationStatement", "Appointment",
                        "Communication", "Invoice", "Coverage", "MedicationDispense", "Recommendations"}
        self.assertEqual(wanted_types - set(by_type), set(),
                         f"no 2xx response for some PHI routes; statuses: "
                         f"{sorted({(e['resource_type'], st) for _, e, st in sent})}")

        calls = parse_trace(trace)
        journal_writes, syncs, sends = [], {}, []
        for c_ in calls:
            fd = FD.match(c_.text)
            if not fd:
                continue
            path = fd.group(2)
            is_journal = re.search(r"/journal-[^/]+-\d{6,}\.jsonl$", path) is not None
            if c_.name in ("write", "pwrite64", "writev") and is_journal:
                journal_writes.append(c_)
            elif c_.name in ("fdatasync", "fsync") and is_journal:
                syncs.setdefault((c_.tid, fd.group(1)), []).append(c_)
            elif c_.name in ("write", "writev", "sendmsg", "sendto") and "HTTP/1.1 " in c_.text:
                sends.append(c_)
        self.assertGreater(len(journal_writes), 0, "no journal write in the trace")

        violations, unmatched = [], []
        for rid, exp in ok:
            jw = next((w for w in journal_writes if rid in w.text), None)
            header = f"X-Request-Id: {rid}"
            send = next((x for x in sends if header in x.text), None)
            if jw is None or send is None:
                unmatched.append(f"{rid} {exp['resource_type']}: journal write {jw is not None}, "
                                 f"send {send is not None}")
                continue
            fd = FD.match(jw.text).group(1)
            sync = next((y for y in syncs.get((jw.tid, fd), [])
                         if jw.exit is not None and y.entry > jw.exit), None)
            if sync is None or sync.exit is None or sync.ret != 0:
                violations.append(f"{rid} {exp['resource_type']}: no successful fdatasync after its "
                                  f"journal write (trace line {jw.entry + 1})")
            elif not sync.exit < send.entry:
                violations.append(f"{rid} {exp['resource_type']}: response sent at trace line "
                                  f"{send.entry + 1}, its record synced only at line {sync.exit + 1}")
        print(f"\n  {len(ok)} PHI responses traced ({', '.join(f'{k} {v}' for k, v in sorted(by_type.items()))}); "
              f"{len(journal_writes)} journal writes, {sum(len(v) for v in syncs.values())} syncs",
              flush=True)
        self.assertEqual(unmatched, [], "responses whose record or send is not in the trace")
        self.assertEqual(violations, [], "PHI sent before its audit record was durable")

        # Each record says what the request did.
        records = {}
        for _, _, _, rec in s.journal_records():
            records.setdefault(rec.get("request_id"), []).append(rec)
        wrong = []
        for rid, exp in ok:
            # A read that also writes (fill status caches the pharmacy's answer) first makes an
            # "attempt" record durable (no write commits without its record); it must describe
            # the same access.
            recs = records.get(rid, [])
            for a in (r for r in recs if r.get("outcome") == "attempt"):
                got = {k: a.get(k) for k in exp if k != "outcome"}
                if got != {k: v for k, v in exp.items() if k != "outcome"}:
                    wrong.append(f"{rid} {exp['resource_type']}: attempt record {got}")
            recs = [r for r in recs if r.get("outcome") != "attempt"]
            if len(recs) != 1:
                wrong.append(f"{rid} {exp['resource_type']}: {len(recs)} records "
                             f"{[(r.get('action'), r.get('resource_type'), r.get('outcome')) for r in recs]}")
                continue
            got = {k: recs[0].get(k) for k in exp}
            if got != exp:
                diff = {k: (got[k], v) for k, v in exp.items() if got[k] != v}
                wrong.append(f"{rid} {exp['resource_type']}: (recorded, expected) {diff}")
        self.assertEqual(wrong[:10], [], f"{len(wrong)} audit records differ from their requests")


if __name__ == "__main__":
    unittest.main()
