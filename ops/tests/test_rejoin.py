"""A rewound member the primary can no longer feed (cluster.Cluster.wal_gone_since and
repair_starved): found from the member's own PostgreSQL log, never from the primary's,
only in what was written after the mark, and re-created once, never the leader."""

import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from continuum_ops.cluster import Cluster  # noqa: E402

STANDBY = ("2026-12-04 20:13:31.075 UTC [977] FATAL:  could not receive data from WAL stream: "
           "ERROR:  requested WAL segment 000000020000000000000014 has already been removed\n")
PRIMARY = ("2026-12-04 20:13:31.074 UTC [978] replicator@[unknown] ERROR:  requested WAL segment "
           "000000020000000000000014 has already been removed\n")
OTHER = "2026-12-04 20:13:30.848 UTC [942] LOG:  entering standby mode\n"


class FakeCluster:
    """Just what the methods under test use."""
    WAL_GONE = Cluster.WAL_GONE

    def __init__(self, root: Path, leader: str):
        self.root, self.leader, self.reinit = root, leader, []

    def patroni_dir(self, name: str) -> Path:
        return self.root / name

    def cluster_json(self) -> dict:
        return {"members": [{"name": self.leader, "role": "leader", "state": "running"}]}

    refuse = 0   # how many reinit calls Patroni refuses first

    def reinit_member(self, name: str) -> bool:
        self.reinit.append(name)
        if self.refuse:
            self.refuse -= 1
            return False
        return True

    pg_log_mark = Cluster.pg_log_mark
    wal_gone_since = Cluster.wal_gone_since
    repair_starved = Cluster.repair_starved


class RejoinTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.c = FakeCluster(Path(self.tmp.name), leader="us-east")
        for name in ("us-east", "us-central"):
            (self.c.patroni_dir(name) / "pglog").mkdir(parents=True)

    def log(self, name: str, text: str, day: str = "Fri") -> None:
        with open(self.c.patroni_dir(name) / "pglog" / f"postgresql-{day}.log", "a") as f:
            f.write(text)

    def test_only_the_standby_side_after_the_mark_counts(self):
        self.log("us-central", STANDBY)          # an old episode, before the mark
        mark = self.c.pg_log_mark("us-central")
        self.assertFalse(self.c.wal_gone_since("us-central", mark))
        self.log("us-central", OTHER + PRIMARY)  # the walsender's line is not the member's
        self.assertFalse(self.c.wal_gone_since("us-central", mark))
        self.log("us-central", STANDBY)
        self.assertTrue(self.c.wal_gone_since("us-central", mark))

    def test_a_new_log_file_and_a_truncated_one_are_read_from_their_start(self):
        self.log("us-central", OTHER * 50)
        mark = self.c.pg_log_mark("us-central")
        self.log("us-central", STANDBY, day="Sat")   # a new day's file: not in the mark
        self.assertTrue(self.c.wal_gone_since("us-central", mark))
        (self.c.patroni_dir("us-central") / "pglog" / "postgresql-Sat.log").unlink()
        (self.c.patroni_dir("us-central") / "pglog" / "postgresql-Fri.log").write_text(STANDBY)  # rotated
        self.assertTrue(self.c.wal_gone_since("us-central", mark))

    def test_repaired_once_per_wait_and_never_the_leader(self):
        marks = {n: self.c.pg_log_mark(n) for n in ("us-east", "us-central")}
        self.log("us-central", STANDBY)
        self.log("us-east", STANDBY)   # even if the leader's log had it (an old standby life)
        done: set[str] = set()
        self.c.repair_starved(["us-east", "us-central"], marks, done)
        self.c.repair_starved(["us-east", "us-central"], marks, done)
        self.assertEqual(self.c.reinit, ["us-central"])

    def test_a_refused_reinit_is_tried_again(self):
        marks = {"us-central": self.c.pg_log_mark("us-central")}
        self.log("us-central", STANDBY)
        self.c.refuse = 1
        done: set[str] = set()
        for _ in range(3):
            self.c.repair_starved(["us-central"], marks, done)
        self.assertEqual(self.c.reinit, ["us-central", "us-central"])


if __name__ == "__main__":
    unittest.main()
