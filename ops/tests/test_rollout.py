"""Unit tests of the rollout controller's pure parts (ops/continuum_ops/rollout.py) and of the
HAProxy runtime parsing it relies on. Run: python3 -m unittest discover -s ops/tests"""

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from continuum_ops import haproxy, rollout  # noqa: E402
from continuum_ops.topology import SLOT_B_DELTA, Topology, other_slot  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

# `show servers state` of HAProxy 2.6.12 (a cluster during a rollout: c added at runtime,
# d in maintenance), trimmed to two backends.
SERVERS_STATE = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
4 portal-us-east 1 us-east-a 127.0.0.1 2 0 252 1 60 6 3 4 6 0 0 0 - 18101 - 0 0 - - 0
4 portal-us-east 2 us-east-b 127.0.0.1 2 0 252 1 60 6 3 4 6 0 0 0 - 18102 - 0 0 - - 0
4 portal-us-east 7 us-east-c 127.0.0.1 2 0 28 0 5 6 3 4 6 0 0 0 - 18151 - 0 0 - - 0
4 portal-us-east 8 us-east-d 127.0.0.1 0 1 0 0 5 6 3 0 6 0 0 0 - 18152 - 0 0 - - 0
2 pg-primary 1 us-east 127.0.0.1 2 0 1 1 60 6 3 4 6 0 0 0 - 15441 - 0 0 - - 0
"""

SHOW_STAT = """# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout
edge,FRONTEND,,,3,10,4096,100,0,0
portal-us-east,us-east-a,0,0,2,5,,50,0,0
portal-us-east,us-east-c,0,0,1,1,,3,0,0
portal-us-west,us-east-c,0,0,4,4,,9,0,0
portal-us-east,BACKEND,0,0,3,6,410,53,0,0
"""


class HAProxyParsingTest(unittest.TestCase):
    def test_servers_state(self):
        s = haproxy.parse_servers_state(SERVERS_STATE)
        self.assertEqual(len(s), 5)
        self.assertEqual(s[2], {"backend": "portal-us-east", "server": "us-east-c", "addr": "127.0.0.1", "op": 2,
                                "admin": 0, "weight": 28, "iweight": 0, "port": 18151})
        self.assertEqual(haproxy.parse_servers_state("1\n# be_id\n"), [])
        self.assertEqual(haproxy.parse_servers_state(""), [])

    def test_stat_sessions_per_server_and_backend(self):
        st = haproxy.parse_stat(SHOW_STAT)
        self.assertEqual(st["us-east-c"], {"portal-us-east": 1, "portal-us-west": 4})
        self.assertNotIn("BACKEND", st)
        self.assertNotIn("FRONTEND", st)

    def test_portal_servers_and_weights_skip_maintenance(self):
        ps = rollout.portal_servers(SERVERS_STATE)
        self.assertEqual(list(ps), ["portal-us-east"])
        w = rollout.observed_weights(ps)
        self.assertEqual(w, {"portal-us-east": {"us-east-a": 252, "us-east-b": 252, "us-east-c": 28}})


class CountsTest(unittest.TestCase):
    def test_counter_delta_handles_resets_and_new_series(self):
        d = rollout.counter_delta({"a": 10, "b": 50, "gone": 3}, {"a": 15, "b": 7, "new": 4})
        self.assertEqual(d, {"a": 5, "b": 7, "new": 4})

    def test_side_counts(self):
        resp = {("c1", "2xx"): 90, ("c1", "5xx"): 3, ("c2", "2xx"): 10, ("b1", "5xx"): 1, ("c1", "4xx"): 2}
        fail = {"c2": 2, "b1": 5}
        self.assertEqual(rollout.side_counts(resp, fail, ["c1", "c2"]), (107, 5))
        self.assertEqual(rollout.side_counts(resp, fail, ["b1"]), (6, 6))
        self.assertEqual(rollout.side_counts({}, {}, ["x"]), (0, 0))

    def test_buckets(self):
        self.assertIsNone(rollout.buckets_of({}))
        self.assertIsNone(rollout.buckets_of({"0.1": 3}), "no +Inf bucket")
        b = rollout.buckets_of({"+Inf": 10, "0.005": 4, "0.1": 9.6, "0.05": 9.9})
        self.assertEqual(b, [(0.005, 4), (0.05, 10), (0.1, 10), (float("inf"), 10)])

    def test_latency_by_route_sums_the_sides_nodes(self):
        delta = {("c", "read", "0.01"): 5, ("c", "read", "+Inf"): 6, ("d", "read", "0.01"): 1,
                 ("d", "read", "+Inf"): 1, ("a", "read", "+Inf"): 100, ("c", "write", "0.01"): 0,
                 ("c", "write", "+Inf"): 0}
        lat = rollout.latency_by_route(delta, ["c", "d"])
        self.assertEqual(list(lat), ["read"], "a route with no requests is left out")
        self.assertEqual(lat["read"].buckets, [(0.01, 6), (float("inf"), 7)])

    def test_restarts(self):
        self.assertEqual(rollout.restarts_of({"c": 100.0, "d": 100.0}, {"c": 100.0, "d": 130.0, "e": 5.0},
                                             ["c", "d", "e"]), 1)


class JudgeWindowTest(unittest.TestCase):
    """Controller.judge on a fake Prometheus: the pinned journeys are counted over the latency
    window (the step's start + LATENCY_WARMUP_S), not over the warm-up after a weight change."""

    class Prom:
        def __init__(self, step_at: float):
            self.step_at = step_at

        def vector(self, q: str, at: float, by: tuple) -> dict:
            if "journey_runs_total" in q:
                canary = 'vantage="canary"' in q
                # every 5 s one run per side; the canary's fail during the first 10 s of the
                # step (warm-up), then pass like the baseline's
                warm_end = self.step_at + rollout.LATENCY_WARMUP_S
                runs = int((at - self.step_at) // 5)
                early = int((min(at, warm_end) - self.step_at) // 5)
                if canary:
                    return {"failure": float(early), "success": float(runs - early)}
                return {"success": float(runs)}
            if "http_responses_total" in q:
                return {("c1", "2xx"): at * 10, ("b1", "2xx"): at * 10}
            return {}

    def judge(self, now: float):
        from types import SimpleNamespace as NS
        c = rollout.Controller.__new__(rollout.Controller)
        c.c = NS(with_monitoring=True, topo=NS(names=["us-east"]))
        step_at = now - 60.0
        c.prom = self.Prom(step_at)
        s = NS(canary_nodes=["c1"], baseline_nodes=["b1"], judge_config={})
        a = NS(since=step_at, step_since=step_at)
        orig = rollout.time.time
        rollout.time.time = lambda: now + 1.5
        try:
            return c.judge(s, a)
        finally:
            rollout.time.time = orig

    def test_journeys_in_the_warm_up_do_not_count(self):
        v = self.judge(1_000_000.0)
        journeys = next(ch for ch in v.checks if ch.name == "journeys")
        self.assertEqual(journeys.numbers["failed"], 0, journeys.summary)
        self.assertGreaterEqual(journeys.numbers["passed"], 9, journeys.summary)
        self.assertEqual(journeys.verdict, "pass", journeys.summary)


class StagingTest(unittest.TestCase):
    def test_the_overlay_is_kept_in_the_state_whatever_becomes_of_the_given_file(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            state, given = Path(d) / "state", Path(d) / "overlay.toml"
            given.write_text("[fault_injection]\nerror_permille = 10\n")
            staged = rollout.stage_overlay(state, given)
            given.unlink()
            self.assertTrue(str(staged).startswith(str(state)))
            self.assertEqual(staged.read_text(), "[fault_injection]\nerror_permille = 10\n")
            given.write_text("[fault_injection]\nerror_permille = 10\n")
            self.assertEqual(rollout.stage_overlay(state, given), staged)   # same content, same copy
            with self.assertRaises(rollout.ClusterError):
                rollout.stage_overlay(state, Path(d) / "missing.toml")


class SlotsTest(unittest.TestCase):
    def test_the_other_slot_has_its_own_names_and_ports(self):
        conf = (REPO / "deploy" / "regions.conf").read_text()
        a = Topology(conf, 1000)
        b = Topology(conf, 1000, slot="b")
        self.assertEqual([n.name for n in a.region("us-east").nodes], ["us-east-a", "us-east-b"])
        self.assertEqual([n.name for n in a.region("us-east").other_nodes], ["us-east-c", "us-east-d"])
        self.assertEqual([n.name for n in b.region("us-east").nodes], ["us-east-c", "us-east-d"])
        self.assertEqual(b.node("us-east-c").port, a.node("us-east-a").port + SLOT_B_DELTA)
        self.assertEqual(a.node("us-east-c").port, b.node("us-east-c").port, "a node's port is its own")
        ports = [p for p, _ in a.ports()]
        self.assertEqual(len(ports), len(set(ports)), "both slots' ports are planned, none twice")
        self.assertEqual(other_slot("a"), "b")
        self.assertEqual(other_slot("b"), "a")
        with self.assertRaises(ValueError):
            Topology(conf, 0, slot="c")

    def test_layout_takes_the_live_weights(self):
        class C:
            topo = Topology((REPO / "deploy" / "regions.conf").read_text(), 0)
        servers = rollout.portal_servers(SERVERS_STATE)
        lay = rollout.layout_of(C, servers)
        self.assertEqual(lay["us-east"].baseline, ["us-east-a", "us-east-b"])
        self.assertEqual(lay["us-east"].canary, ["us-east-c", "us-east-d"])
        self.assertEqual(lay["us-east"].original, {"us-east-a": 252, "us-east-b": 252})
        self.assertEqual(lay["us-west"].original, {"us-west-a": 1, "us-west-b": 1}, "unknown: weight 1")


if __name__ == "__main__":
    unittest.main()


class MaintenanceTest(unittest.TestCase):
    def test_parse_settings(self):
        from continuum_ops import maintenance
        from continuum_ops.util import ClusterError
        self.assertEqual(maintenance.parse_settings(["shared_buffers=160MB", " work_mem = 8MB"]),
                         {"shared_buffers": "160MB", "work_mem": "8MB"})
        for bad in ("shared_buffers", "=1", "x=", "a b=1", "x;drop=1"):
            with self.assertRaises(ClusterError, msg=bad):
                maintenance.parse_settings([bad])

    def test_setting_state(self):
        from continuum_ops.maintenance import setting_state
        want = {"shared_buffers": "160MB"}
        self.assertEqual(setting_state({"shared_buffers": ("160MB", False)}, want), "applied")
        self.assertEqual(setting_state({"shared_buffers": ("128MB", True)}, want), "pending")
        self.assertEqual(setting_state({"shared_buffers": ("128MB", False)}, want), "unseen",
                         "the member has not taken the new configuration yet")
        self.assertEqual(setting_state(None, want), "unseen")
        self.assertEqual(setting_state({}, want), "unseen")

    def test_caught_up_needs_every_member_streaming_and_close(self):
        from continuum_ops import maintenance

        def cj(lag, state="streaming"):
            return {"members": [{"name": "a", "role": "leader", "state": "running"},
                                {"name": "b", "role": "sync_standby", "state": state, "lag": lag},
                                {"name": "c", "role": "replica", "state": "streaming", "lag": 0}]}
        names = ["a", "b", "c"]
        self.assertTrue(maintenance.caught_up(cj(0), names))
        self.assertFalse(maintenance.caught_up(cj(50 << 20), names), "50 MB behind")
        self.assertFalse(maintenance.caught_up(cj("unknown"), names))
        self.assertFalse(maintenance.caught_up(cj(0, "starting"), names))
        self.assertFalse(maintenance.caught_up(None, names))
