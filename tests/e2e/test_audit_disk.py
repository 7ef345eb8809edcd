"""The audit journal on a disk that fails or stalls (issue 10, items 2 and 3).

The node's journal lives on a small ext4 file system of its own (a loop-mounted image
the test creates, mounted under the cluster's folder, unmounted at the end), so the test
can fill it up (ENOSPC) or freeze it (`fsfreeze`: writes and fdatasync block) without
touching the machine's disks. Needs root (mount, losetup, fsfreeze); skipped otherwise.

- A write while the journal cannot write is refused (503) and absent from the database:
  no committed write without its audit record.
- /readyz follows the journal's current health (not-ready while it fails, ready again
  once space is freed, without traffic).
- A stalled disk: requests answer 503 within the request deadline, /readyz says
  not-ready, and once the journal's queue is full new requests are refused at once.
- /readyz stays not-ready until the session revocation list is loaded.
"""

import errno
import os
import shutil
import subprocess
import threading
import time
import unittest
import uuid

from harness import ContinuumTestCase, note_body, wait_until

ROOT = os.geteuid() == 0 and all(shutil.which(t) for t in ("mkfs.ext4", "fsfreeze", "mount"))


def run(*args, timeout=30):
    return subprocess.run(list(args), check=True, capture_output=True, timeout=timeout)


class _OwnDiskCase(ContinuumTestCase):
    """A node whose audit journal is on a 16 MiB ext4 image of its own."""

    START_SERVER = False
    DEADLINE_MS = 3000
    MAX_PENDING = None

    @classmethod
    def setUpClass(cls):
        if not ROOT:
            raise unittest.SkipTest("needs root, mkfs.ext4, mount and fsfreeze")
        super().setUpClass()
        cls.image = cls.cluster.dir / "auditfs.img"
        cls.mnt = cls.cluster.dir / "auditfs"
        cls.mnt.mkdir()
        with open(cls.image, "wb") as f:
            f.truncate(16 << 20)
        run("mkfs.ext4", "-q", "-F", str(cls.image))
        run("mount", "-o", "loop", str(cls.image), str(cls.mnt))
        cls.frozen = False
        # Runs before the cluster's own cleanup (LIFO): thaw, stop the node, unmount.
        cls.addClassCleanup(cls._release_disk)
        # The journal zero-fills 64 KiB ahead (1 MiB by default): on a full disk it still
        # writes what fits there, so a small reserve keeps the test short.
        audit = {"dir": str(cls.mnt / "journal"), "preallocate_kb": 64}
        if cls.MAX_PENDING is not None:
            audit["max_pending_records"] = cls.MAX_PENDING
        cls.server = cls.cluster.add_server("node-1", {
            "audit": audit,
            "database": {"critical": {"deadline_ms": cls.DEADLINE_MS},
                         "high": {"deadline_ms": cls.DEADLINE_MS}},
        })

    @classmethod
    def _release_disk(cls):
        cls.thaw()
        try:
            cls.server.stop(timeout=20)
        except Exception:  # noqa: BLE001
            pass
        subprocess.run(["umount", str(cls.mnt)], capture_output=True, timeout=30)

    @classmethod
    def freeze(cls):
        run("fsfreeze", "-f", str(cls.mnt))
        cls.frozen = True
        # A frozen file system blocks its writers uninterruptibly: never leave it frozen.
        t = threading.Timer(30, cls.thaw)
        t.daemon = True
        t.start()

    @classmethod
    def thaw(cls):
        if cls.frozen:
            subprocess.run(["fsfreeze", "-u", str(cls.mnt)], capture_output=True, timeout=30)
            cls.frozen = False

    def fill(self) -> None:
        """Fills the journal's file system to the last block, and keeps it so.

        Blocks freed a moment ago (the previous test's filler, unlinked) only become free
        when ext4 commits its journal, and an ENOSPC does not always wait for that; nor do
        the blocks a delayed allocation reserved and did not need. So: commit (syncfs),
        fill a new file, and again, until a round finds no space left (CI, 2026-12-05: a
        note was journaled and committed after the reads had found the disk full)."""
        for n in range(10):
            run("sync", "-f", str(self.mnt))
            if self._fill_file(f"filler-{n}") == 0:
                return
        self.fail("the journal's file system kept finding free space after 10 rounds of filling")

    def _fill_file(self, name: str) -> int:
        """Writes a new file until ENOSPC, syncs it; returns the bytes written."""
        fd = os.open(self.mnt / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        written = 0
        try:
            for size in (64 << 10, 1024):
                try:
                    while True:
                        written += os.write(fd, b"\0" * size)
                except OSError as e:
                    self.assertEqual(e.errno, errno.ENOSPC, e)
            try:
                os.fsync(fd)
            except OSError:
                pass
        finally:
            os.close(fd)
        return written

    def unfill(self) -> None:
        for f in self.mnt.glob("filler*"):
            f.unlink()


class JournalFullTest(_OwnDiskCase):
    def test_under_the_reserve_the_node_turns_not_ready_and_still_serves(self):
        # audit.min_free_mb (8 by default): with 4 MiB left the journal still writes, but
        # the node asks the edge to drain it before the disk is full.
        s = self.server
        patient = self.token("demo-patient")
        self.assertEqual(s.get("/readyz").status, 200)
        st = os.statvfs(self.mnt)
        ballast = st.f_bavail * st.f_frsize - (4 << 20)
        self.assertGreater(ballast, 0, "the 16 MiB file system has less than 4 MiB free")
        fd = os.open(self.mnt / "filler", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.posix_fallocate(fd, 0, ballast)
        finally:
            os.close(fd)
        try:
            r = s.get("/readyz")
            self.assertEqual(r.status, 503, r)
            audit = r.json()["audit"]
            self.assertTrue(audit["low_space"], audit)
            self.assertTrue(audit["healthy"], audit)
            self.assertLess(audit["free_bytes"], 8 << 20, audit)
            # Not ready, yet whatever still reaches it is served and audited.
            r = s.get("/fhir/R4/Patient/1", token=patient)
            self.assertEqual(r.status, 200, r)
        finally:
            self.unfill()
        r = s.get("/readyz")
        self.assertEqual(r.status, 200, r)
        self.assertFalse(r.json()["audit"]["low_space"])

    def test_write_refused_and_absent_while_journal_fails_then_ready_again(self):
        s, c = self.server, self.cluster
        provider = self.token("demo-provider")
        patient = self.token("demo-patient")
        self.assertEqual(s.get("/fhir/R4/Patient/1", token=patient).status, 200)
        self.assertEqual(s.get("/readyz").status, 200)
        try:
            self.fill()
            # The zero-filled space ahead of the journal's writes (64 KiB here, a few hundred
            # records) and the segment's last block still take records; then it fails.
            failing = None
            for _ in range(600):
                r = s.get("/fhir/R4/Patient/1", token=patient)
                if r.status == 503:
                    failing = r
                    break
            self.assertIsNotNone(failing, "reads kept succeeding on a full journal disk")

            # /readyz: the journal fails now, one earlier success does not make it ready.
            r = s.get("/readyz")
            self.assertEqual(r.status, 503, f"/readyz while the journal fails: {r!r}")

            # A write: refused, and not in the database.
            title = "e2e-full-disk-" + uuid.uuid4().hex[:12]
            r = s.post_json("/fhir/R4/DocumentReference", note_body("1", "BP 120/80 " + title, title=title),
                            token=provider, headers={"Idempotency-Key": title})
            self.assertOperationOutcome(r, 503)
            n = c.scalar("SELECT count(*) AS n FROM clinical_note WHERE title = :'t'", t=title)
            self.assertEqual(n, 0, "a note committed while its audit record could not be written")
        finally:
            self.unfill()

        # Space is back: the journal's health probe makes the node ready without traffic.
        wait_until(lambda: s.get("/readyz").status == 200, 10, 0.2, "/readyz ready after space freed")
        title = "e2e-after-disk-" + uuid.uuid4().hex[:12]
        r = s.post_json("/fhir/R4/DocumentReference", note_body("1", "BP 118/79 " + title, title=title),
                        token=provider, headers={"Idempotency-Key": title})
        self.assertEqual(r.status, 201, r)
        rows = c.wait_audit(r.request_id, predicate=lambda a: a["outcome"] == "success")
        self.assertEqual(rows[0]["patient_id"], "1")
        # The attempt was recorded before the write committed.
        outcomes = [a["outcome"] for a in c.audit_rows(r.request_id)]
        self.assertIn("attempt", outcomes)


class JournalStalledTest(_OwnDiskCase):
    MAX_PENDING = 4

    def test_stalled_disk_bounded_waits_queue_cap_and_readiness(self):
        s = self.server
        patient = self.token("demo-patient")
        self.assertEqual(s.get("/fhir/R4/Patient/1", token=patient).status, 200)
        results = []

        def read():
            t0 = time.monotonic()
            try:
                r = s.get("/fhir/R4/Patient/1", token=patient, timeout=15)
                results.append((r.status, time.monotonic() - t0))
            except OSError as e:
                results.append((repr(e), time.monotonic() - t0))

        try:
            self.freeze()
            # Waits are bounded by the request deadline (3 s), not by the disk.
            threads = [threading.Thread(target=read) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(20)
            self.assertEqual(len(results), 4, results)
            for status, secs in results:
                self.assertEqual(status, 503, results)
                self.assertLess(secs, 6.0, results)
            # The queue (4 records) is full of records waiting for the disk: a new request
            # is refused at once instead of queueing more.
            t0 = time.monotonic()
            r = s.get("/fhir/R4/Patient/1", token=patient, timeout=8)
            self.assertEqual(r.status, 503, r)
            self.assertLess(time.monotonic() - t0, 0.8, "queue full: the refusal must be immediate")
            # /readyz: a journal stalled for more than 2 s is not ready.
            r = s.get("/readyz", timeout=5)
            self.assertEqual(r.status, 503, f"/readyz with a stalled journal: {r!r}")
        finally:
            self.thaw()
        wait_until(lambda: s.get("/readyz").status == 200, 10, 0.2, "/readyz ready after thaw")
        self.assertEqual(s.get("/fhir/R4/Patient/1", token=patient).status, 200)


class RevocationsReadinessTest(ContinuumTestCase):
    def test_not_ready_until_revocations_loaded(self):
        c = self.cluster
        # The revocation query fails (its column is renamed away); pings still work.
        c.sql("ALTER TABLE session RENAME COLUMN revoked_at TO revoked_at_e2e")
        try:
            s2 = c.add_server("node-2", start=False)
            s2.start(wait=False)
            wait_until(lambda: s2.get("/healthz", timeout=2).status == 200, 15, 0.2, "node-2 up")
            time.sleep(1.5)
            r = s2.get("/readyz")
            self.assertEqual(r.status, 503, f"ready before the revocation list was loaded: {r!r}")
        finally:
            c.sql("ALTER TABLE session RENAME COLUMN revoked_at_e2e TO revoked_at")
        s2.wait_ready(15)
        s2.stop()


if __name__ == "__main__":
    unittest.main()
