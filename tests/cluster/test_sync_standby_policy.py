"""Which clinical writes are acknowledged when the databases go one by one (issue 10, item 9).

One cluster (like test_failover.py, without monitoring). Two writers add clinical notes
through the edge the whole time, while:
  1. the synchronous standby's region is killed, with the etcd leader moved there first (the
     worst case: etcd elects while the primary's Patroni must refresh its key): Patroni names
     the other standby, and writes go on with no gap of 5 s or more without an acknowledgement;
  2. then the primary's region is killed. Each region also holds one of the three etcd
     members, so two dead regions leave etcd without a quorum: nobody is promoted and the
     last database stays a read-only standby (seen in the first run of this test). Were it
     promoted, it would have no standby of its own, and the policy (src/db/README.md)
     refuses clinical writes then too (held until the request deadline, then 503). Either
     way: no write is acknowledged on one copy. (The last region's nodes see no other
     region's database and, with no primary, cannot read within the lag bound: they report
     /readyz `cut_off` and the edge, with no server left, answers 503 at once instead of
     after the deadline);
  3. both regions are started again: a standby streams, Patroni names it, writes resume.
It prints, per phase, how many writes were acknowledged and refused, and checks that no
write was acknowledged in phase 2 and that every acknowledged write is stored once.

    CONTINUUM_BIN=$PWD/build/continuum python3 -m unittest -v tests/cluster/test_sync_standby_policy.py
"""

from __future__ import annotations

import os
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import clusterctl  # noqa: E402
from clusterctl import ClusterHandle, log, wait_until  # noqa: E402
from load import MixedLoad, pick_writers  # noqa: E402

KEEP = os.environ.get("CONTINUUM_CLUSTER_KEEP") == "1"
clusterctl.install_signal_handlers()
clusterctl.start_watchdog(float(os.environ.get("CONTINUUM_CLUSTER_DEADLINE_S", "900")),
                          "sync standby policy test")
CLUSTER: ClusterHandle | None = None
# The longest time without an acknowledged write once the sync standby's region died.
MAX_SYNC_LOSS_GAP_S = 5.0


def setUpModule():
    global CLUSTER
    binary = os.environ.get("CONTINUUM_BIN", str(clusterctl.REPO / "build" / "continuum"))
    wait_until(lambda: os.access(binary, os.X_OK), 90, 1, f"{binary} to exist (build it first)")
    CLUSTER = ClusterHandle.create(keep=KEEP, patients=300, monitoring=False)
    unittest.addModuleCleanup(CLUSTER.close)
    CLUSTER.up(timeout=300)


class SyncStandbyPolicyTest(unittest.TestCase):
    def tearDown(self):
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is not None and any(t is self for t, _ in list(result.failures) + list(result.errors)):
            CLUSTER.print_failure_logs()

    def test_writes_as_the_databases_go_one_by_one(self):
        c = CLUSTER
        st = c.wait_healthy(timeout=150, repair_after=60)
        primary = ClusterHandle.role_of(st, "primary")[0]
        sync = ClusterHandle.role_of(st, "sync_standby")[0]
        last = next(r for r in c.regions if r not in (primary, sync))
        load = MixedLoad(c.edge, [], pick_writers(c.psql, c.regions, 2), pause=0.05, timeout=40)
        load.login()
        load.start()
        phases = []
        try:
            phases.append(("all three up", load.mark("p0"), primary))
            time.sleep(4)
            # The worst case for the survivors: the etcd leader dies with the region, so etcd
            # elects a new one while the primary's Patroni must refresh its leader key within
            # retry_timeout. (By chance this was the case in a CI run: the primary's Patroni
            # found no etcd member answering, demoted, and wrote nothing for 6 s.)
            c.etcd_move_leader(sync)
            log(f"etcd leader moved to {sync}")
            c.kill_region(sync)
            phases.append((f"{sync} (sync standby) dead", load.mark("p1"), primary))
            log(f"killed the sync standby's region {sync} (with etcd's leader)")
            time.sleep(12)
            c.kill_region(primary)
            log(f"killed the primary's region {primary}; {last} is the only database left")
            phases.append((f"only {last} left", load.mark("p2"), last))
            promoted = False
            for _ in range(50):  # 25 s
                try:
                    promoted = promoted or ClusterHandle.role_of(c.status(), "primary") == [last]
                except Exception:  # noqa: BLE001 - status may fail with two regions down
                    pass
                time.sleep(0.5)
            log(f"{last} {'was' if promoted else 'was not'} promoted (etcd: 1 of 3 members left)")
            phases.append(("regions starting again", load.mark("p3"), last))
            try:
                c.start_region(sync)
            except RuntimeError as e:
                # Seen once in CI (2026-12-02): the first region back restored etcd's
                # quorum but no member led for 120 s (one at TL2 shown as a replica, the
                # restarted one at TL1 not streaming). Two regions lost at once is beyond
                # what the cluster is built to absorb; what this test checks is that no
                # write is acknowledged meanwhile and that writes resume once the regions
                # are back. So the third region is started too and `up` repairs; the logs
                # are printed for the record.
                log(f"start-region {sync} failed; starting {primary} as well and repairing: {e}")
                c.print_failure_logs(60)
                try:
                    c.start_region(primary)
                except RuntimeError as e2:
                    log(f"start-region {primary} failed too ({e2}); `up` repairs")
            else:
                c.start_region(primary)
            c.wait_healthy(timeout=240, repair_after=90)
            phases.append(("healthy again", load.mark("p4"), last))
            time.sleep(8)
        finally:
            load.stop()
        end = time.monotonic()
        writes = load.records("write")
        rows = []
        for i, (name, t0, _) in enumerate(phases):
            t1 = phases[i + 1][1] if i + 1 < len(phases) else end
            # a write belongs to the phase in which it was answered
            inside = [r for r in writes if t0 <= r.answered < t1]
            acked = [r for r in inside if r.ok]
            refused = [r for r in inside if not r.ok]
            kinds = sorted({r.failure_kind for r in refused})
            # the longest time without an acknowledged write inside the phase
            times = [t0] + sorted(r.answered for r in acked) + [t1]
            gap = max(b - a for a, b in zip(times, times[1:]))
            rows.append((name, len(acked), len(refused), kinds, gap))
            print(f"[cluster] sync policy: {name:34s} acknowledged={len(acked):4d} "
                  f"refused={len(refused):3d} longest without an ack={gap:5.1f}s {kinds}",
                  file=sys.stderr, flush=True)
        v = load.verify_writes(c.psql)
        print(f"[cluster] sync policy: lost={v['lost']} duplicates={v['duplicates']} "
              f"(acknowledged writes checked on the primary)", file=sys.stderr, flush=True)
        self.assertGreater(rows[0][1], 0, rows)
        self.assertGreater(rows[1][1], 0, "writes stopped after the sync standby's region died")
        # Absorbed: the primary goes on; the commits wait only until Patroni names the other
        # standby (one loop_wait). A demoted primary (DCS unreachable during etcd's election)
        # wrote nothing for 6 s and more.
        self.assertLess(rows[1][4], MAX_SYNC_LOSS_GAP_S,
                        f"no write was acknowledged for {rows[1][4]:.1f}s after the sync standby's region died")
        # Writes answered in the lone-database phase that were sent before the promotion
        # may have been acknowledged by the old pair; those sent after it must not be.
        lone0 = phases[2][1]
        lone_acked = [r for r in writes
                      if r.ok and r.sent >= lone0 + 1.0 and r.answered < phases[3][1]]
        self.assertEqual(lone_acked, [], "a clinical write was acknowledged by a lone database")
        self.assertGreater(rows[4][1], 0, "writes did not resume once a standby streamed again")
        self.assertEqual(v["lost"], 0, v["lost_detail"])
        self.assertEqual(v["duplicates"], 0, v["duplicate_detail"])


if __name__ == "__main__":
    unittest.main()
