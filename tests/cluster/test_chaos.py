"""Chaos experiments (issue 12, first part): `scripts/cluster chaos run` on a real cluster,
with short holds.

  test_1: a short `chaos day` under one steady mixed load: a dependency fault (payments
          answering 503), then the path from the portal nodes to the primary's PostgreSQL made
          150 ms slow by that region's net-proxy (`continuum net-proxy`). The hypothesis (every
          critical request succeeds, p99 bounded, no stall) holds before, during and after each;
          the latency was real (the windows' p99) and is taken off by the revert; the day's
          targets are met; no acknowledged write of the day is lost or duplicated.
  test_2: the controller SIGKILLed while a region's portal nodes are paused (SIGSTOP): the
          fault stays on the revert journal, the nodes stay stopped; `chaos revert` resumes
          them (SIGCONT) from the journal and the cluster is healthy again.
  test_3: one of the two HAProxy edge instances SIGKILLed under load: the other serves on
          the same ports (SO_REUSEPORT); with one client resend of an unanswered request
          nothing fails and no write is lost or doubled; the revert starts it again.

  test_4: hold-pool: the high tier's pools held inside every node; the critical tier holds.
  test_5: partitions (the cluster's regions run in network namespaces; nftables inside one
          drops its traffic with the others): a short `chaos day` under one load of the
          primary's region cut off both ways, then the sync standby's region deaf to the
          others (one way). Each hypothesis holds, no acknowledged write is lost or doubled,
          the old primary gives way to a new one, the cut-off region's nodes report
          themselves cut off (/readyz 503: past the lag bound with no primary in sight, so
          they serve no stale read) while the others stay ready, and the rules are gone
          after the revert.

What it does not prove: the outcome of the other experiments in deploy/chaos (run them by
hand: `scripts/cluster chaos run deploy/chaos/<name>.json`), detection times (this cluster
runs without the monitoring stack), or partitions between real hosts (one kernel, one
clock; no packet loss or delay short of a cut). test_3 does not prove that a client without
retries loses nothing: the report counts what it would have lost.

    CONTINUUM_BIN=$PWD/build/continuum python3 -m unittest -v tests/cluster/test_chaos.py
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import clusterctl  # noqa: E402
from clusterctl import SCRIPT, ClusterHandle, log, wait_until  # noqa: E402

KEEP = os.environ.get("CONTINUUM_CLUSTER_KEEP") == "1"
clusterctl.install_signal_handlers()
clusterctl.start_watchdog(float(os.environ.get("CONTINUUM_CLUSTER_DEADLINE_S", "900")), "chaos test")
CLUSTER: ClusterHandle | None = None


def setUpModule():
    global CLUSTER
    binary = os.environ.get("CONTINUUM_BIN", str(clusterctl.REPO / "build" / "continuum"))
    wait_until(lambda: os.access(binary, os.X_OK), 90, 1, f"{binary} to exist (build it first)")
    # The regions in network namespaces of their own (CLUSTER_NETNS): the other modules run
    # theirs on loopback ports, this one on three addresses, so both shapes are exercised,
    # and a partition (test_5) is real.
    CLUSTER = ClusterHandle.create(keep=KEEP, patients=300, monitoring=False, netns=True)
    unittest.addModuleCleanup(CLUSTER.close)
    CLUSTER.up(timeout=300)


def proc_state(pid: int) -> str:
    """The process' state letter in /proc (T: stopped)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


class ChaosTest(unittest.TestCase):
    def setUp(self):
        self.c = CLUSTER
        self.tmp = Path(tempfile.mkdtemp(prefix="cct-chaos-"))
        self.c.wait_healthy(timeout=150, repair_after=60)

    def tearDown(self):
        self.c.cmd("chaos", "revert", timeout=120, check=False)
        import shutil
        shutil.rmtree(self.tmp, ignore_errors=True)

    def experiment(self, doc: dict, name: str = "experiment.json") -> str:
        p = self.tmp / name
        p.write_text(json.dumps(doc))
        return str(p)

    def journal(self) -> list:
        p = self.c.state / "chaos" / "journal.json"
        return json.loads(p.read_text()) if p.exists() else []

    def test_1_a_short_chaos_day(self):
        """`chaos day` of two experiments under one steady load: payments answering 503, then
        the path from the portal to the primary's PostgreSQL made 150 ms slow by its region's
        net-proxy. Each hypothesis holds, each fault is reverted, the day's targets are met
        and every acknowledged write of the day is stored once."""
        pay = self.experiment({
            "title": "payments 503 (short)",
            "hypothesis": {"window_s": 4, "critical_success_min": 1.0, "critical_p99_ms": 3000, "min_requests": 3},
            "method": [{"fault": "dependency", "target": "payments", "params": {"mode": "error"}, "hold_s": 12}],
            "abort_after_s": 12, "recovery_timeout_s": 30, "before_s": 4, "after_s": 4}, "pay.json")
        slow = self.experiment({
            "title": "primary's database 150 ms away (short)",
            "hypothesis": {"window_s": 4, "critical_success_min": 1.0, "critical_p99_ms": 4000, "min_requests": 3},
            "method": [{"fault": "database-network", "target": "primary", "params": {"latency_ms": 150},
                        "hold_s": 12}],
            "abort_after_s": 12, "recovery_timeout_s": 30, "before_s": 4, "after_s": 4}, "slow.json")
        primary = self.c.status()["primary"]
        cp = self.c.cmd("chaos", "day", pay, slow, timeout=400, check=False)
        print(cp.stdout, file=sys.stderr)
        self.assertEqual(cp.returncode, 0, f"{cp.stdout}\n{cp.stderr[-3000:]}")
        day = json.loads(sorted((self.c.state / "chaos").glob("day*Z.json"))[-1].read_text())
        self.assertTrue(day["summary"]["met"], day["summary"]["targets"])
        self.assertEqual(len(day["summary"]["experiments"]), 2)
        self.assertEqual((day["writes"]["lost"], day["writes"]["duplicates"]), (0, 0))
        self.assertGreater(day["writes"]["acked_writes"], 0)
        self.assertTrue((self.c.state / "chaos" / f"{day['id']}.txt").exists())
        page = (self.c.state / "chaos" / f"{day['id']}.html").read_text()
        self.assertIn("ALL MET", page)
        self.assertEqual(page.count("<svg"), 2, "a timeline per experiment")
        # the same reports on the operations dashboard (sent to the portal through the edge)
        token = (self.c.state / "ops.token").read_text().strip()
        req = urllib.request.Request(f"{self.c.edge}/api/v1/ops/reports?limit=50",
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            shown = {(x["kind"], x["id"]): x for x in json.loads(resp.read())}
        self.assertEqual(shown[("chaos-day", day["id"])]["outcome"], "targets met", shown.keys())
        for i in (1, 2):
            self.assertTrue(shown[("chaos-run", f"{day['id']}-0{i}")]["outcome"].startswith("hypothesis held"))
        r1, r2 = (json.loads((self.c.state / "chaos" / f"{day['id']}-0{i}.json").read_text()) for i in (1, 2))
        # payments: every window held during the fault
        self.assertEqual(r1["steps"][0]["target"], "payments")
        self.assertGreaterEqual(len(r1["steps"][0]["during"]["windows"]), 3)
        self.assertTrue(all(w["ok"] for w in r1["steps"][0]["during"]["windows"]))
        # the slow path: real (a write needs at least one round trip to the primary), held,
        # and taken off again (the proxy's own account says so)
        step = r2["steps"][0]
        self.assertEqual(step["target"], primary)
        worst = max(w["p99_ms"] or 0 for w in step["during"]["windows"])
        self.assertGreaterEqual(worst, 150, step["during"]["windows"])
        self.assertTrue(r2["held"])
        reg = next(x for x in self.c.status()["regions"] if x["name"] == primary)
        with urllib.request.urlopen(f"{reg['net_proxy']['admin']}/proxies/{primary}", timeout=5) as resp:
            proxy = json.loads(resp.read())
        self.assertEqual(proxy["toxics"]["latency_ms"], 0, proxy)
        self.assertGreater(proxy["connections_total"], 0, "the portal does not go through the proxy")
        self.assertEqual(self.journal(), [])

    def test_2_a_killed_controller_leaves_the_fault_to_chaos_revert(self):
        exp = self.experiment({
            "title": "pause a replica region's nodes (controller killed)",
            "hypothesis": {"window_s": 5, "critical_success_min": 0.0, "critical_p99_ms": 600000, "min_requests": 0},
            "method": [{"fault": "pause-nodes", "target": "replica", "hold_s": 120}],
            "abort_after_s": 120, "recovery_timeout_s": 60, "before_s": 3, "after_s": 3})
        argv = [str(SCRIPT), "chaos", "run", exp, "--state", str(self.c.state), "--port-offset", str(self.c.offset)]
        with open(self.tmp / "controller.log", "wb") as out:
            ctl = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=self.c._env(), start_new_session=True)
        try:
            wait_until(lambda: self.journal() or ctl.poll() is not None, 90, 0.2, "the fault on the journal")
            self.assertIsNone(ctl.poll(), (self.tmp / "controller.log").read_text()[-3000:])
            entry = self.journal()[0]
            region = entry["target"]
            time.sleep(1.0)   # the SIGSTOPs follow the journal entry
            os.killpg(ctl.pid, signal.SIGKILL)
            ctl.wait(10)
        finally:
            if ctl.poll() is None:
                os.killpg(ctl.pid, signal.SIGKILL)
                ctl.wait(10)
        log(f"controller SIGKILLed with pause-nodes on {region}")
        pids = {}
        for n in ("a", "b"):
            pidfile = self.c.state / "pids" / f"portal-{region}-{n}.pid"
            pids[n] = int(pidfile.read_text().split()[0])
        self.assertEqual({proc_state(p) for p in pids.values()}, {"T"}, "the nodes were not paused")
        self.assertEqual(len(self.journal()), 1)
        cp = self.c.cmd("chaos", "revert", timeout=120)
        print(cp.stderr, file=sys.stderr)
        self.assertEqual(self.journal(), [])
        self.assertNotIn("T", {proc_state(p) for p in pids.values()}, "chaos revert left the nodes stopped")
        self.c.wait_healthy(timeout=120)

    def test_4_a_tier_pool_held_inside_every_node(self):
        """hold-pool: every connection of the high tier's pools held inside every portal node
        (the nodes' chaos hook, on in this cluster's config) while the load reads and writes
        critical data: the critical hypothesis holds, the nodes report the held connections
        during the hold and none after the revert."""
        exp = self.experiment({
            "title": "high tier's pools held (short)",
            "hypothesis": {"window_s": 4, "critical_success_min": 1.0, "critical_p99_ms": 3000, "min_requests": 3},
            "method": [{"fault": "hold-pool", "target": "high", "hold_s": 10}],
            "abort_after_s": 10, "recovery_timeout_s": 30, "before_s": 3, "after_s": 3}, "hold.json")
        token = (self.c.state / "ops.token").read_text().strip()
        nodes = [n["address"] for r in self.c.status()["regions"] for n in r["portal_nodes"]]

        def held() -> int:
            total = 0
            for addr in nodes:
                req = urllib.request.Request(f"http://{addr}/metrics", headers={"Authorization": f"Bearer {token}"})
                with urllib.request.urlopen(req, timeout=5) as resp:
                    text = resp.read().decode()
                m = re.search(r'continuum_chaos_pool_held_connections\{tier="high"\} (\d+)', text)
                self.assertIsNotNone(m, f"{addr} exports no held connections: chaos hooks off?")
                total += int(m.group(1))
            return total
        self.assertEqual(held(), 0)
        seen: list[int] = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    seen.append(held())
                except Exception:  # noqa: BLE001 (a sample lost to a busy node is not a finding)
                    pass
                stop.wait(1.0)
        t = threading.Thread(target=sample, daemon=True)
        t.start()
        try:
            cp = self.c.cmd("chaos", "run", exp, timeout=240, check=False)
        finally:
            stop.set()
            t.join(10)
        print(cp.stdout, file=sys.stderr)
        self.assertEqual(cp.returncode, 0, f"{cp.stdout}\n{cp.stderr[-3000:]}")
        run = json.loads(sorted((self.c.state / "chaos").glob("c*Z.json"))[-1].read_text())
        self.assertTrue(run["held"], run.get("verdict"))
        self.assertGreaterEqual(max(seen, default=0), len(nodes), f"held connections seen: {seen}")
        self.assertEqual(held(), 0, "connections still held after the revert")
        self.assertEqual(self.journal(), [])
        log(f"[chaos] high tier's pools held: up to {max(seen)} connections over {len(nodes)} nodes; "
            f"critical hypothesis held")

    def test_3_an_edge_instance_killed_under_load(self):
        """One of the two HAProxy instances SIGKILLed: the other serves on the same ports;
        with one client resend of an unanswered request nothing fails, no write is lost or
        doubled (a resent POST carries its Idempotency-Key); the revert brings it back."""
        st0 = self.c.status()
        pids0 = {i["name"]: i["pid"] for i in st0["haproxy"]["instances"]}
        self.assertTrue(all(pids0.values()), f"both edge instances must run: {pids0}")
        exp = self.experiment({
            "title": "kill edge instance haproxy-2 (short)",
            "hypothesis": {"window_s": 4, "critical_success_min": 1.0, "critical_p99_ms": 3000, "min_requests": 3},
            "method": [{"fault": "kill-edge", "target": "haproxy-2", "hold_s": 10}],
            "client_retries": 1,
            "abort_after_s": 12, "recovery_timeout_s": 30, "before_s": 4, "after_s": 4})
        cp = self.c.cmd("chaos", "run", exp, timeout=240, check=False)
        print(cp.stdout, file=sys.stderr)
        r = json.loads(sorted((self.c.state / "chaos").glob("c*.json"))[-1].read_text())
        ld = r["load"]
        log(f"kill-edge: {ld['sent']} requests, {ld['failed']} failed with one client resend, "
            f"{ld['failed_without_client_retries']} without ({ld['retried']} resent)")
        self.assertEqual(cp.returncode, 0, f"{cp.stdout}\n{cp.stderr[-3000:]}")
        self.assertTrue(r["held"])
        self.assertEqual(ld["failed"], 0)
        self.assertEqual((r["writes"]["lost"], r["writes"]["duplicates"]), (0, 0))
        pids = {i["name"]: i["pid"] for i in self.c.status()["haproxy"]["instances"]}
        self.assertEqual(pids["haproxy"], pids0["haproxy"], "the survivor was restarted")
        self.assertIsNotNone(pids["haproxy-2"], "the killed instance is not back")
        self.assertNotEqual(pids["haproxy-2"], pids0["haproxy-2"])
        self.assertEqual(self.journal(), [])

    def test_5_partitions_the_primary_both_ways_then_the_sync_standby_one_way(self):
        st0 = self.c.status()
        self.assertIsNotNone(st0["network"], "the cluster's regions are not in network namespaces")
        primary0 = st0["primary"]
        both = self.experiment({
            "title": "primary's region cut off both ways (short)",
            "hypothesis": {"window_s": 10, "critical_success_min": 1.0, "critical_p99_ms": 15000, "min_requests": 1},
            "method": [{"fault": "partition-region", "target": "primary", "params": {"direction": "both"},
                        "hold_s": 25}],
            "abort_after_s": 30, "recovery_timeout_s": 90, "before_s": 5, "after_s": 5}, "both.json")
        inbound = self.experiment({
            "title": "sync standby's region deaf to the others (short)",
            "hypothesis": {"window_s": 10, "critical_success_min": 1.0, "critical_p99_ms": 15000, "min_requests": 1},
            "method": [{"fault": "partition-region", "target": "sync-standby", "params": {"direction": "inbound"},
                        "hold_s": 20}],
            "abort_after_s": 30, "recovery_timeout_s": 90, "before_s": 5, "after_s": 5}, "inbound.json")
        nodes = {n["name"]: (r["name"], n["address"]) for r in st0["regions"] for n in r["portal_nodes"]}
        auth = {"Authorization": "Bearer " + (self.c.state / "ops.token").read_text().strip()}
        samples: list[tuple[float, str, int, bool]] = []   # (time, node, /readyz status, cut_off)
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                for name, (_, addr) in nodes.items():
                    try:
                        req = urllib.request.Request(f"http://{addr}/readyz", headers=auth)
                        with urllib.request.urlopen(req, timeout=2) as resp:
                            code, body = resp.status, resp.read()
                    except urllib.error.HTTPError as e:
                        code, body = e.code, e.read()
                    except OSError:
                        continue
                    try:
                        cut = bool(json.loads(body).get("database", {}).get("cut_off"))
                    except ValueError:
                        cut = False
                    samples.append((time.monotonic(), name, code, cut))
                stop.wait(0.5)
        t = threading.Thread(target=sample, daemon=True)
        t.start()
        try:
            cp = self.c.cmd("chaos", "day", both, inbound, timeout=600, check=False)
        finally:
            stop.set()
            t.join(10)
        print(cp.stdout, file=sys.stderr)
        self.assertEqual(cp.returncode, 0, f"{cp.stdout}\n{cp.stderr[-3000:]}")
        day = json.loads(sorted((self.c.state / "chaos").glob("day*Z.json"))[-1].read_text())
        self.assertTrue(day["summary"]["met"], day["summary"]["targets"])
        self.assertEqual((day["writes"]["lost"], day["writes"]["duplicates"]), (0, 0))
        runs = [json.loads((self.c.state / "chaos" / f"{day['id']}-0{i}.json").read_text()) for i in (1, 2)]
        self.assertEqual(runs[0]["steps"][0]["target"], primary0)
        cut_regions = {nodes[n][0] for _, n, code, cut in samples if cut and code == 503}
        never_cut = {nodes[n][0] for n in nodes} - {runs[0]["steps"][0]["target"], runs[1]["steps"][0]["target"]}
        self.assertIn(primary0, cut_regions, "the cut-off primary region's nodes never reported it")
        self.assertFalse(cut_regions & never_cut, f"a region that was never cut off reported it: {cut_regions}")
        not_ready = sorted({(n, code) for _, n, code, _ in samples if nodes[n][0] in never_cut and code != 200})
        self.assertEqual(not_ready, [], f"a node of a region never cut off ({never_cut}) was not ready")
        st = self.c.status()
        self.assertNotEqual(st["primary"], primary0, "the cut-off primary kept its role")
        self.assertEqual(st["network"]["partitioned"], [], "nftables rules left after the revert")
        self.assertTrue(st["healthy"])
        self.assertEqual(self.journal(), [])
        for r in runs:
            ld, w = r["load"], r["steps"][0]
            log(f"[chaos] partition {w['describe']}: {ld['sent']} requests, {ld['failed']} failed, "
                f"longest stall reads {ld['read_stall_s']:.1f}s writes {ld['write_stall_s']:.1f}s")


if __name__ == "__main__":
    unittest.main()
