"""Schema changes two releases can share (issue 11, part 3): release N and release N+1 on
one database at the same time, under load, through expand -> migrate -> contract.

Release N is build/continuum. Release N+1 is build/continuum_next: the same source built
with CONTINUUM_TEST_RELEASE_NEXT, which ships one more expanding migration
(db/migrations-next/9001: clinical_note.content_bytes, nullable), note code that writes it
and serves it as content.attachment.size, and a contract migration (9002: every new note
must carry it, which release N's INSERTs do not). See src/db/README.md.

One test, in order, with notes written and read through both releases the whole time:
  1. release N alone; N+1's `migrate` applies the expand (9001) under N's load and stops
     at the contract (9002), which it reports and does not apply;
  2. a release N+1 node joins the same database: both write and read notes; N's rows have
     no size (NULL), N+1's have theirs, N+1 serves N's notes with the size computed, N
     serves N+1's notes as before;
  3. `migrate --contract` is refused while the release N node is live (the node registry,
     continuum_node), naming it, and changes nothing;
  4. the release N node stops (its registry row goes with it); `migrate --contract` now
     applies 9002, and an INSERT the way release N writes is refused by the database --
     what the gate protected N from; a release N node started after that never becomes
     ready (it reads the applied contract from schema_migrations);
  5. release N+1 keeps serving after the contract.
Every request of the load must succeed, and every acknowledged note is stored once.

What it does not prove: HAProxy in front (tests/cluster/test_rollout.py takes two
releases through the edge), or a release N node that dies without deregistering (its row
counts as live until `--node-stale-s`, 30 s, after its last heartbeat).

    cd tests/e2e && python3 -m unittest -v test_schema_compat
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

from harness import REPO, ContinuumTestCase, note_body, wait_until

NEXT_BINARY = Path(os.environ.get("CONTINUUM_NEXT_BIN", str(REPO / "build" / "continuum_next")))


class Load:
    """Notes written and read through one node by two threads until stopped."""

    def __init__(self, server, token: str, tag: str):
        self.server, self.token, self.tag = server, token, tag
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.acked: list[tuple[str, str]] = []   # (title, note id)
        self.failures: list[str] = []
        self.counts = {"write": 0, "read": 0}
        self.threads = [threading.Thread(target=self._writer, daemon=True),
                        threading.Thread(target=self._reader, daemon=True)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(30)

    def _fail(self, what: str):
        with self.lock:
            self.failures.append(f"{self.tag}: {what}")

    def _writer(self):
        while not self.stop_event.is_set():
            title = f"compat-{self.tag}-{uuid.uuid4().hex[:12]}"
            try:
                r = self.server.post_json("/fhir/R4/DocumentReference",
                                          note_body("1", f"BP 120/80 {title}", title=title),
                                          token=self.token, headers={"Idempotency-Key": title}, timeout=15)
            except Exception as e:  # noqa: BLE001 - a load error is a failure, not a lost sample
                self._fail(f"write {title}: {e!r}")
                continue
            with self.lock:
                self.counts["write"] += 1
                if r.status == 201:
                    self.acked.append((title, r.json()["id"]))
                else:
                    self.failures.append(f"{self.tag}: write {title}: HTTP {r.status} {r.text()[:200]}")
            time.sleep(0.02)

    def _reader(self):
        while not self.stop_event.is_set():
            try:
                r = self.server.get("/fhir/R4/DocumentReference?patient=1&_count=20", token=self.token,
                                    timeout=15)
            except Exception as e:  # noqa: BLE001
                self._fail(f"read: {e!r}")
                continue
            with self.lock:
                self.counts["read"] += 1
                if r.status != 200:
                    self.failures.append(f"{self.tag}: read: HTTP {r.status} {r.text()[:200]}")
            time.sleep(0.02)


class SchemaCompatTest(ContinuumTestCase):
    PATIENTS = 50

    def migrate_next(self, *extra, check=False):
        return self.cluster.cli("migrate", "--database-url", self.cluster.pg.owner_url, *extra,
                                binary=NEXT_BINARY, check=check)

    def applied(self) -> set[int]:
        return {r["version"] for r in self.cluster.rows("SELECT version FROM schema_migrations")}

    def constraint_present(self) -> bool:
        return bool(self.cluster.scalar(
            "SELECT count(*) AS n FROM pg_constraint WHERE conname = 'clinical_note_content_bytes_set'"))

    def note_via(self, server, token, note_id):
        r = server.get(f"/fhir/R4/DocumentReference/{note_id}", token=token)
        self.assertEqual(r.status, 200, r)
        return r.json()["content"][0]["attachment"]

    def test_release_n_and_n_plus_1_share_the_schema_through_expand_and_contract(self):
        self.assertTrue(NEXT_BINARY.is_file(), f"{NEXT_BINARY} missing: the build makes it (target continuum_next)")
        c, n_node = self.cluster, self.server
        token = self.token("demo-provider")
        version_n = c.cli("version", check=True).stdout.strip()
        version_next = c.cli("version", binary=NEXT_BINARY, check=True).stdout.strip()
        self.assertNotEqual(version_n, version_next)
        loads: list[Load] = []
        try:
            # 1. Release N under load; N+1's expand applied online, the contract held back.
            loads.append(Load(n_node, token, "N").start())
            time.sleep(1.5)
            self.assertEqual(self.applied() & {9001, 9002}, set())
            cp = self.migrate_next(check=True)
            print(f"\n  N+1's migrate: {cp.stderr.strip()}")
            self.assertEqual(self.applied() & {9001, 9002}, {9001})
            self.assertIn("9002_note_content_bytes_required is a contract migration", cp.stderr)
            self.assertFalse(self.constraint_present())

            # 2. A release N+1 node on the same database, both under load.
            next_node = c.add_server("node-next", binary=NEXT_BINARY)
            loads.append(Load(next_node, token, "N+1").start())
            time.sleep(4)
            status_n = n_node.get("/api/v1/ops/status", token=n_node.ops_token).json()
            status_next = next_node.get("/api/v1/ops/status", token=next_node.ops_token).json()
            self.assertEqual(status_n["version"], version_n)
            self.assertEqual(status_next["version"], version_next)
            self.assertLess(status_n["schema_version"], 9002)
            self.assertEqual(status_next["schema_version"], 9002)
            registry = {r["node_id"]: r for r in c.rows(
                "SELECT node_id, version, schema_version FROM continuum_node")}
            self.assertEqual(registry["node-1"]["schema_version"], status_n["schema_version"], registry)
            self.assertEqual(registry["node-next"]["schema_version"], 9002, registry)

            with loads[0].lock, loads[1].lock:
                n_notes, next_notes = list(loads[0].acked), list(loads[1].acked)
            self.assertTrue(n_notes and next_notes, "no note written by one of the releases")
            sizes = {r["title"]: r for r in c.rows(
                "SELECT title, content_bytes, octet_length(content) AS bytes FROM clinical_note "
                "WHERE title LIKE 'compat-%'")}
            self.assertIsNone(sizes[n_notes[-1][0]]["content_bytes"], "release N wrote the new column")
            self.assertEqual(sizes[next_notes[-1][0]]["content_bytes"], sizes[next_notes[-1][0]]["bytes"])
            # each release reads the other's note
            a = self.note_via(next_node, token, n_notes[-1][1])
            self.assertEqual(a["size"], sizes[n_notes[-1][0]]["bytes"], "N+1 reading N's note")
            a = self.note_via(n_node, token, next_notes[-1][1])
            self.assertNotIn("size", a, "release N serves what it knows")

            # 3. The contract is refused while a release N node is live.
            cp = self.migrate_next("--contract")
            print(f"  --contract with node-1 (release N) live: exit {cp.returncode}: {cp.stderr.strip()[:400]}")
            self.assertNotEqual(cp.returncode, 0)
            self.assertIn("node-1", cp.stderr)
            self.assertIn("contract migration", cp.stderr)
            self.assertEqual(self.applied() & {9002}, set())
            self.assertFalse(self.constraint_present())

            # 4. Release N leaves (its load first: behind an edge, a draining node gets no
            #    new requests); its registry row goes with it; the contract now runs.
            loads[0].stop()
            n_node.stop()
            self.assertEqual(c.rows("SELECT node_id FROM continuum_node WHERE node_id = 'node-1'"), [],
                             "a cleanly stopped node is still registered")
            cp = self.migrate_next("--contract", check=True)
            print(f"  --contract after node-1 stopped: {cp.stderr.strip()}")
            self.assertIn(9002, self.applied())
            self.assertTrue(self.constraint_present())
            # What the gate protected release N from: its INSERT, without the new column.
            with self.assertRaises(RuntimeError) as ctx:
                c.sql("INSERT INTO clinical_note (patient_id, author_id, status, title, content) "
                       "SELECT 1, author_id, 'preliminary', 'compat-release-n-style', 'x' "
                       "FROM clinical_note WHERE title LIKE 'compat-N-%' LIMIT 1")
            self.assertIn("clinical_note_content_bytes_set", str(ctx.exception))

            self.assertEqual(c.scalar("SELECT kind FROM schema_migrations WHERE version = 9002"), "contract")

            # A release N node started after the contract stays out of rotation.
            n_node.start(wait=False)
            wait_until(lambda: n_node.get("/readyz").status == 503 and
                       n_node.get("/readyz").json().get("schema", {}).get("newer_contract_applied") == 9002,
                       30, 0.2, "release N not ready, naming the contract")
            self.assertEqual(n_node.get("/readyz").json()["schema"]["built_for"], status_n["schema_version"])
            print("  release N started after the contract: /readyz 503, schema "
                  f"{n_node.get('/readyz').json()['schema']}")
            n_node.stop()

            # 5. Release N+1 keeps serving after the contract.
            before = loads[1].counts["write"]
            time.sleep(3)
            wait_until(lambda: loads[1].counts["write"] > before + 5, 20, 0.2,
                       "release N+1 writing notes after the contract")
        finally:
            for ld in loads:
                ld.stop()

        failures = [f for ld in loads for f in ld.failures]
        for ld in loads:
            print(f"  release {ld.tag}: {ld.counts['write']} writes ({len(ld.acked)} acknowledged), "
                  f"{ld.counts['read']} reads, {len(ld.failures)} failed")
        self.assertEqual(failures, [], failures[:10])
        # every acknowledged note is stored, once
        acked = {title: nid for ld in loads for title, nid in ld.acked}
        stored = {r["title"]: str(r["id"]) for r in c.rows(
            "SELECT title, id FROM clinical_note WHERE title LIKE 'compat-N%'")}
        missing = [t for t in acked if t not in stored]
        self.assertEqual(missing, [], "acknowledged notes missing")
        dup = c.rows("SELECT title, count(*) AS n FROM clinical_note WHERE title LIKE 'compat-N%' "
                     "GROUP BY title HAVING count(*) > 1")
        self.assertEqual(dup, [])
        self.assertEqual({t: acked[t] for t in acked}, {t: stored[t] for t in acked})
