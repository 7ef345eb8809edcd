"""Unit tests of the rollout's decisions (ops/continuum_ops/rollout_plan.py): steps and
config, HAProxy weights, the state machine driven against a simulated cluster (with the real
judge on simulated traffic), resuming after the controller is killed at every point, the
atomic state file, the report. Run: python3 -m unittest discover -s ops/tests"""

import copy
import json
import math
import os
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from continuum_ops import judge as J  # noqa: E402
from continuum_ops import rollout_plan as R  # noqa: E402
from continuum_ops import util  # noqa: E402
from continuum_ops.rollout_plan import (NodeObs, Observation, PlanConfig, RegionLayout, decide,  # noqa: E402
                                        desired_weights, granularity, new_rollout, operator, parse_steps,
                                        record_verdict, split)

T0 = 1_700_000_000.0
BOUNDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, math.inf]


def layout(regions=("us-east", "us-central", "us-west"), n_base=2, n_canary=1, weight=1):
    out = {}
    for r in regions:
        base = [f"{r}-{chr(97 + i)}" for i in range(n_base)]
        can = [f"{r}-new{chr(97 + i)}" for i in range(n_canary)]
        out[r] = RegionLayout(f"portal-{r}", base, can, {b: weight for b in base})
    return out


class World:
    """A simulated cluster: which nodes run and are ready, HAProxy's weights, traffic.
    Traffic accumulates deterministically (expected counts) from the weights in force."""

    def __init__(self, lay, rps=10000.0, canary_error=0.0, baseline_error=0.0, crash_on_start=(),
                 never_ready=(), canary_latency_s=0.002, journeys=None):
        self.layout = lay
        self.journeys = journeys      # ((canary passed, failed), (baseline passed, failed)) per judgement
        self.backend_of = {n: r.backend for r in lay.values() for n in r.baseline + r.canary}
        self.canary = {n for r in lay.values() for n in r.canary}
        self.running = {n for r in lay.values() for n in r.baseline}
        self.ready = set(self.running)
        self.weights = {r.backend: dict(r.original) for r in lay.values()}
        self.rps, self.ce, self.be = rps, canary_error, baseline_error
        self.crash_on_start, self.never_ready = set(crash_on_start), set(never_ready)
        self.canary_latency_s = canary_latency_s
        self.starts = {}
        self.max_canary_weight = 0
        self.counts = []          # (t, canary requests, canary errors, baseline requests, baseline errors)
        self.c = [0.0, 0.0, 0.0, 0.0]
        self.t = None

    def observe(self, now):
        self.advance(now)
        nodes = {n: NodeObs(n in self.running, n in self.ready) for n in self.backend_of}
        return Observation(now, nodes, copy.deepcopy(self.weights))

    def canary_share(self):
        per_region = self.rps / len(self.layout)
        can = base = 0.0
        for r in self.layout.values():
            ws = self.weights[r.backend]
            wc = sum(ws.get(n, 0) for n in r.canary if n in self.running)
            wb = sum(ws.get(n, 0) for n in r.baseline if n in self.running)
            if wc + wb:
                can += per_region * wc / (wc + wb)
                base += per_region * wb / (wc + wb)
        return can, base

    def advance(self, now):
        if self.t is not None and now > self.t:
            can, base = self.canary_share()
            dt = now - self.t
            self.c[0] += can * dt
            self.c[1] += can * dt * self.ce
            self.c[2] += base * dt
            self.c[3] += base * dt * self.be
        self.t = now if self.t is None else max(self.t, now)
        self.counts.append((self.t, *self.c))

    def at(self, t):
        """Counters (expected) at time t: the last sample at or before t."""
        best = (0, 0.0, 0.0, 0.0, 0.0)
        for row in self.counts:
            if row[0] <= t:
                best = row
        return best[1:]

    def judge(self, since, step_since, now):
        c0, c1 = self.at(since), self.at(now)
        nc, xc, nb, xb = (round(b - a) for a, b in zip(c0, c1))
        l0, l1 = self.at(step_since), self.at(now)
        lc, lb = round(l1[0] - l0[0]), round(l1[2] - l0[2])
        # every request of a side in one bucket of the portal's bounds (src/core/metrics.hpp)
        def lat(seconds, n):
            return J.Latency(buckets=[(le, n if le >= seconds else 0) for le in BOUNDS])
        can_lat, base_lat = lat(self.canary_latency_s, lc), lat(0.002, lb)
        can, base = J.Side(nc, min(xc, nc), latency=can_lat, restarts=0), J.Side(nb, min(xb, nb), latency=base_lat)
        if self.journeys:
            (can.journeys_passed, can.journeys_failed), (base.journeys_passed, base.journeys_failed) = self.journeys
        return J.judge(can, base, J.JudgeConfig(), (since, now))

    def perform(self, a, now):
        if a.kind == "start_nodes":
            for n in a.nodes:
                self.starts[n] = self.starts.get(n, 0) + 1
                self.weights[self.backend_of[n]].setdefault(n, 0)
                if n not in self.crash_on_start:
                    self.running.add(n)
                    if n not in self.never_ready:
                        self.ready.add(n)
        elif a.kind == "set_weights":
            for be, ws in a.weights.items():
                for srv, w in ws.items():
                    if srv not in self.weights[be]:
                        if w == 0:
                            continue
                        raise AssertionError(f"weight for {be}/{srv}, which HAProxy does not have")
                    self.weights[be][srv] = w
                    if srv in self.canary:
                        self.max_canary_weight = max(self.max_canary_weight, w)
        elif a.kind == "stop_nodes":
            for n in a.nodes:
                self.running.discard(n)
                self.ready.discard(n)
                self.weights[self.backend_of[n]].pop(n, None)
        else:
            raise AssertionError(f"unexpected action {a.kind}")

    # what a finished rollout must have left behind
    def check_consistent(self, test, phase):
        base = {n for r in self.layout.values() for n in r.baseline}
        registered = {n for ws in self.weights.values() for n in ws}
        if phase == "done":
            test.assertEqual(self.running & base, set())
            test.assertEqual(registered & base, set())
            test.assertEqual(self.running & self.canary, self.canary)
            for r in self.layout.values():
                for n in r.canary:
                    test.assertEqual(self.weights[r.backend][n], r.final_weight)
        else:
            test.assertEqual(self.running & self.canary, set(), phase)
            test.assertEqual(registered & self.canary, set(), phase)
            test.assertEqual(self.running & base, base)
            for r in self.layout.values():
                test.assertEqual(self.weights[r.backend], r.original, phase)


class Killed(Exception):
    pass


def run(path, world, clock, kill=None, on_pause=None, max_iter=400):
    """The controller loop of rollout_plan's docstring against the World. kill=(k, 'before'|'after'):
    the controller dies at its k-th action, before performing it or after (a judge: before its
    verdict is recorded). Returns the final state, or raises Killed."""
    state = R.load_state(path)
    for i in range(max_iter):
        obs = world.observe(clock[0])
        state, a = decide(state, obs)
        R.save_state(path, state)
        if kill and kill[0] == i and kill[1] == "before":
            raise Killed()
        if a.kind == "finished":
            return state
        if a.kind == "wait":
            if a.operator and on_pause:
                state = operator(state, on_pause, clock[0])
                R.save_state(path, state)
                continue
            assert a.until > clock[0] - 1e-9, a
            clock[0] = max(a.until, clock[0] + 1e-3)
            continue
        if a.kind == "judge":
            v = world.judge(a.since, a.step_since, clock[0])
            if kill and kill[0] == i:
                raise Killed()
            state = record_verdict(state, v, a.step, clock[0])
            R.save_state(path, state)
            clock[0] += 0.01
            continue
        world.perform(a, clock[0])
        if kill and kill[0] == i:
            raise Killed()
        clock[0] += 0.01
    raise AssertionError("the rollout did not finish")


FAST = "1:20s,5:10s,25:10s,50:10s,100"


def start(tmp, lay=None, steps=FAST, interval=5.0, **cfg):
    lay = lay or layout()
    conf = PlanConfig(steps=parse_steps(steps), judge_interval_s=interval, ready_timeout_s=30, poll_s=1, **cfg)
    s = new_rollout("r1", T0, lay, {"version": "v2"}, {"version": "v1"}, conf)
    path = Path(tmp) / "rollout.json"
    R.save_state(path, s)
    return path, lay


class ConfigTest(unittest.TestCase):
    def test_durations_and_steps(self):
        self.assertEqual(R.parse_duration("30m"), 1800)
        self.assertEqual(R.parse_duration("1.5h"), 5400)
        self.assertEqual(R.parse_duration("45"), 45)
        with self.assertRaisesRegex(ValueError, "not a duration"):
            R.parse_duration("5 minutes")
        st = parse_steps(R.DEFAULT_STEPS)
        self.assertEqual([s.percent for s in st], [1, 5, 25, 50, 100])
        self.assertEqual(st[0].hold_s, 1800)
        self.assertEqual(st[0].max_hold_s, 3600)
        self.assertEqual(parse_steps("2:10s:1m,100")[0].max_hold_s, 60)

    def test_bad_plans_are_refused(self):
        with self.assertRaisesRegex(ValueError, "must rise"):
            PlanConfig(steps=parse_steps("5,1,100"))
        with self.assertRaisesRegex(ValueError, "last step must be 100"):
            PlanConfig(steps=parse_steps("1,50"))
        with self.assertRaisesRegex(ValueError, r"in \(0, 100\]"):
            parse_steps("0,100")
        with self.assertRaisesRegex(ValueError, "max hold"):
            parse_steps("1:10m:5m,100")
        with self.assertRaisesRegex(ValueError, "not a percentage"):
            parse_steps("x,100")
        with self.assertRaisesRegex(ValueError, "on_inconclusive"):
            PlanConfig(on_inconclusive="maybe")
        with self.assertRaisesRegex(ValueError, "unknown keys"):
            PlanConfig.from_dict({"stepz": []})


class WeightsTest(unittest.TestCase):
    def test_default_steps_on_the_local_cluster(self):
        # 2 baseline + 1 canary server per region
        got = {p: split(2, 1, p / 100) for p in (1, 5, 25, 50)}
        self.assertEqual((got[1].canary_weight, got[1].baseline_weight), (5, 248))
        self.assertEqual((got[50].canary_weight, got[50].baseline_weight), (256, 128))
        for p, sp in got.items():
            self.assertTrue(1 <= sp.canary_weight <= 256 and 1 <= sp.baseline_weight <= 256)
            self.assertAlmostEqual(sp.share, R.share_of(2, 1, sp.baseline_weight, sp.canary_weight))
            self.assertLess(abs(sp.share - p / 100), 0.005 * p / 100, p)

    def test_split_is_the_best_by_its_own_measure(self):
        # exhaustive search over every weight pair agrees with the fast search
        for nb, nc, share in ((2, 1, 0.01), (3, 2, 0.05), (1, 1, 0.25), (4, 1, 0.003)):
            def cost(wb, wc):
                got = R.share_of(nb, nc, wb, wc)
                return ((got - share) / share) ** 2 + 1 / (16 * wc * nc)
            best = min(cost(wb, wc) for wb in range(1, 257) for wc in range(1, 257))
            sp = split(nb, nc, share)
            self.assertAlmostEqual(cost(sp.baseline_weight, sp.canary_weight), best, places=12)

    def test_granularity(self):
        g = granularity(2, 1)
        self.assertAlmostEqual(g["min_share"], 1 / 513)        # 1 vs 2 x 256
        self.assertAlmostEqual(g["max_share"], 256 / 258)
        self.assertAlmostEqual(granularity(4, 1)["min_share"], 1 / 1025)
        with self.assertRaisesRegex(ValueError, "not reachable"):
            new_rollout("x", T0, layout(), {}, {}, PlanConfig(steps=parse_steps("0.1,100")))
        with self.assertRaisesRegex(ValueError, "strictly between"):
            split(2, 1, 1.0)

    def test_desired_weights(self):
        lay = layout(("a", "b", "c"), weight=3)
        w, shares = desired_weights(lay, 0)
        self.assertEqual(w["portal-a"], {"a-a": 3, "a-b": 3, "a-newa": 0})
        w, shares = desired_weights(lay, 100)
        self.assertEqual(w["portal-b"], {"b-a": 0, "b-b": 0, "b-newa": 3})
        self.assertEqual(shares["b"], 1.0)
        w, shares = desired_weights(lay, 1)
        self.assertEqual(w["portal-c"], {"c-a": 248, "c-b": 248, "c-newa": 5})
        # one baseline server of region a down: the split is over the one that runs
        running = {n for r in lay.values() for n in r.baseline + r.canary} - {"a-b"}
        w, shares = desired_weights(lay, 1, running)
        sp = split(1, 1, 0.01)
        self.assertEqual(w["portal-a"]["a-newa"], sp.canary_weight)
        self.assertEqual(w["portal-a"]["a-a"], sp.baseline_weight)
        self.assertAlmostEqual(shares["a"], sp.share)
        # no baseline server of region b runs: its canary gets nothing (backups take over)
        w, shares = desired_weights(lay, 25, running - {"b-a", "b-b"})
        self.assertEqual(w["portal-b"]["b-newa"], 0)
        self.assertEqual(shares["b"], 0.0)


class StateMachineTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def test_good_release_goes_to_100(self):
        path, lay = start(self.tmp.name)
        w = World(lay, rps=100000, canary_error=0.0, baseline_error=0.0)
        clock = [T0]
        s = run(path, w, clock)
        self.assertEqual(s.phase, "done", s.reason)
        w.check_consistent(self, "done")
        self.assertEqual([x["percent"] for x in s.steps_log], [1, 5, 25, 50, 100])
        self.assertEqual([x["outcome"] for x in s.steps_log], ["advanced"] * 4 + ["done"])
        # every step held at least its hold, and advanced on a PASS
        for log, st in zip(s.steps_log, s.config.steps):
            self.assertGreaterEqual(log["ended_at"] - log["started_at"], st.hold_s)
        for log in s.steps_log[:4]:
            self.assertTrue(log["last_verdict"].startswith("PASS"), log)
        self.assertAlmostEqual(s.steps_log[0]["shares"]["us-east"], 5 / 501)

    def test_one_percent_errors_roll_back_at_the_canary_step(self):
        path, lay = start(self.tmp.name)
        w = World(lay, rps=5000, canary_error=0.01)
        s = run(path, w, [T0])
        self.assertEqual(s.phase, "rolled_back")
        self.assertEqual(len(s.steps_log), 1)
        self.assertEqual(s.steps_log[0]["outcome"], "rolled back")
        self.assertIn("error_rate", s.reason)
        w.check_consistent(self, "rolled_back")
        fails = [j for j in s.judgements if j["verdict"] == "fail"]
        self.assertEqual(len(fails), 1)
        self.assertGreater(fails[0]["evidence"]["canary_errors"], 0)

    def test_point_two_percent_errors_roll_back_later(self):
        path, lay = start(self.tmp.name, steps="1:20s,5:60s,25:60s,50:60s,100", on_inconclusive="advance")
        w = World(lay, rps=2000, canary_error=0.002)
        s = run(path, w, [T0])
        self.assertEqual(s.phase, "rolled_back", s.reason)
        self.assertGreater(len(s.steps_log), 1)          # not decidable at 1% of 2000 req/s in 20 s
        w.check_consistent(self, "rolled_back")

    def test_latency_regression_rolls_back(self):
        path, lay = start(self.tmp.name)
        w = World(lay, rps=5000, canary_latency_s=0.2)
        s = run(path, w, [T0])
        self.assertEqual(s.phase, "rolled_back")
        self.assertIn("latency", s.reason)

    def test_crash_on_start_never_gets_traffic(self):
        lay = layout()
        path, _ = start(self.tmp.name, lay)
        w = World(lay, crash_on_start={"us-west-newa"})
        s = run(path, w, [T0])
        self.assertEqual(s.phase, "aborted")
        self.assertIn("crashes on start", s.reason)
        self.assertEqual(w.starts["us-west-newa"], 3)
        self.assertEqual(w.max_canary_weight, 0)
        w.check_consistent(self, "aborted")

    def test_never_ready_never_gets_traffic(self):
        lay = layout()
        path, _ = start(self.tmp.name, lay)
        w = World(lay, never_ready={"us-east-newa"})
        clock = [T0]
        s = run(path, w, clock)
        self.assertEqual(s.phase, "aborted")
        self.assertIn("not ready after 30s", s.reason)
        self.assertEqual(w.max_canary_weight, 0)
        self.assertGreaterEqual(clock[0] - T0, 30)
        w.check_consistent(self, "aborted")

    def test_canary_dying_mid_step_rolls_back_with_weights_first(self):
        path, lay = start(self.tmp.name)
        w = World(lay)
        s = R.load_state(path)
        now = T0
        for _ in range(20):           # up to the first step
            s, a = decide(s, w.observe(now))
            if s.phase == "step" and a.kind == "judge":
                break
            if a.kind == "wait":
                now = a.until
            else:
                w.perform(a, now)
        w.running.discard("us-central-newa")
        s, a = decide(s, w.observe(now))
        self.assertEqual(s.phase, "rolling_back")
        self.assertEqual(a.kind, "set_weights")
        self.assertEqual(a.weights["portal-us-east"]["us-east-newa"], 0)
        self.assertEqual(a.weights["portal-us-east"]["us-east-a"], 1)
        w.perform(a, now)
        s, a = decide(s, w.observe(now))
        self.assertEqual(a.kind, "stop_nodes")
        self.assertEqual(sorted(a.nodes), ["us-central-newa", "us-east-newa", "us-west-newa"])

    def test_pass_before_the_hold_holds(self):
        path, lay = start(self.tmp.name, steps="1:60s,100")
        s = R.load_state(path)
        w = World(lay)
        s, a = decide(s, w.observe(T0))
        w.perform(a, T0)
        s, a = decide(s, w.observe(T0 + 1))
        self.assertEqual(s.phase, "step")
        w.perform(a, T0 + 1)
        good = J.judge(J.Side(5000, 0), J.Side(500000, 0))
        self.assertEqual(good.verdict, "pass")
        s2 = record_verdict(s, good, 0, T0 + 30)
        self.assertEqual((s2.phase, s2.step), ("step", 0))
        self.assertEqual(s2.next_judge_at, T0 + 35)
        s3 = record_verdict(s2, good, 0, T0 + 61)
        self.assertEqual(s3.phase, "promoting")
        # a verdict for a step the rollout has left changes nothing
        self.assertEqual(record_verdict(s3, J.judge(J.Side(10, 10), J.Side(10, 0)), 0, T0 + 62).phase, "promoting")

    def _at_step(self, steps="1:10s,100", **cfg):
        path, lay = start(self.tmp.name, steps=steps, **cfg)
        s = R.load_state(path)
        w = World(lay)
        for t in (T0, T0 + 1):
            s, a = decide(s, w.observe(t))
            w.perform(a, t)
        self.assertEqual(s.phase, "step")
        return s, w

    def test_inconclusive_until_max_hold_then_policy(self):
        undecided = J.judge(J.Side(30, 0), J.Side(3000, 0))
        self.assertEqual(undecided.verdict, "inconclusive")
        s, w = self._at_step()
        s = record_verdict(s, undecided, 0, T0 + 15)
        self.assertEqual(s.phase, "step")                       # past hold, before max hold (20 s)
        s = record_verdict(s, undecided, 0, T0 + 22)
        self.assertEqual(s.phase, "paused")
        self.assertIn("max hold", s.reason)
        s2, a = decide(s, w.observe(T0 + 23))
        self.assertEqual(a.kind, "wait")
        self.assertTrue(a.operator)
        s2, a = decide(s, w.observe(T0 + 28))
        self.assertEqual(a.kind, "judge")                       # paused is still judged...
        s3 = record_verdict(s2, J.judge(J.Side(30, 5), J.Side(3000, 0)), 0, T0 + 28)
        self.assertEqual(s3.phase, "rolling_back")              # ...and a FAIL still rolls back
        self.assertEqual(operator(s, "advance", T0 + 30).phase, "promoting")
        r = operator(s, "resume", T0 + 30)
        self.assertEqual((r.phase, r.max_hold_from), ("step", T0 + 30))
        self.assertEqual(record_verdict(r, undecided, 0, T0 + 40).phase, "step")
        self.assertEqual(record_verdict(r, undecided, 0, T0 + 50).phase, "paused")
        self.assertEqual(operator(s, "abort", T0 + 30).phase, "aborting")
        self.assertEqual(operator(s, "rollback", T0 + 30).phase, "rolling_back")
        s, _ = self._at_step(on_inconclusive="advance")
        self.assertEqual(record_verdict(s, undecided, 0, T0 + 22).phase, "promoting")
        s, _ = self._at_step(on_inconclusive="rollback")
        self.assertEqual(record_verdict(s, undecided, 0, T0 + 22).phase, "rolling_back")

    def test_operator_refusals(self):
        path, lay = start(self.tmp.name)
        s = R.load_state(path)
        with self.assertRaisesRegex(ValueError, "unknown command"):
            operator(s, "skip", T0)
        with self.assertRaisesRegex(ValueError, "advance"):
            operator(s, "advance", T0)
        with self.assertRaisesRegex(ValueError, "not paused"):
            operator(s, "resume", T0)
        self.assertEqual(operator(s, "rollback", T0).phase, "aborting")   # nothing exposed yet
        s.phase, s.baseline_stopping = "promoting", True
        with self.assertRaisesRegex(ValueError, "can only finish"):
            operator(s, "abort", T0)
        s.phase = "done"
        with self.assertRaisesRegex(ValueError, "ended"):
            operator(s, "abort", T0)

    def test_decide_is_pure_and_idempotent(self):
        path, lay = start(self.tmp.name)
        s = R.load_state(path)
        w = World(lay)
        before = json.dumps(s.to_dict(), sort_keys=True)
        s1, a1 = decide(s, w.observe(T0))
        s2, a2 = decide(s, w.observe(T0))
        self.assertEqual(json.dumps(s.to_dict(), sort_keys=True), before)
        self.assertEqual(a1, a2)
        self.assertEqual(s1.to_dict(), s2.to_dict())

    def test_soak_at_100_keeps_the_old_release_until_it_ends(self):
        path, lay = start(self.tmp.name, steps="1:5s,100:30s")
        w = World(lay, rps=200000)
        clock = [T0]
        s = run(path, w, clock)
        self.assertEqual(s.phase, "done")
        stop = [e for e in s.events if e["event"] == "stop_baseline"][0]
        promoted = [e for e in s.events if e["event"] == "promoting"][0]
        self.assertGreaterEqual(stop["at"] - promoted["at"], 30)


class ResumeTest(unittest.TestCase):
    """The controller killed at its k-th action -- before performing it, or after (a judge:
    before recording its verdict) -- for every k, then started again: it must reach the same
    outcome, and leave the cluster consistent."""

    SCENARIOS = {
        "good": dict(world=dict(rps=100000), outcome="done"),
        "bad": dict(world=dict(rps=5000, canary_error=0.01), outcome="rolled_back"),
        "crash": dict(world=dict(crash_on_start={"us-east-newa"}), outcome="aborted"),
        "paused-abort": dict(world=dict(rps=1000), outcome="aborted", on_pause="abort"),
        "soak": dict(world=dict(rps=200000), outcome="done", steps="1:5s,50:5s,100:10s"),
    }

    def _run(self, name, kill=None, restart_delay=3.0):
        sc = self.SCENARIOS[name]
        with tempfile.TemporaryDirectory() as tmp:
            path, lay = start(tmp, steps=sc.get("steps", FAST))
            w = World(lay, **sc["world"])
            clock = [T0]
            try:
                s = run(path, w, clock, kill=kill, on_pause=sc.get("on_pause"))
                killed = False
            except Killed:
                killed = True
                clock[0] += restart_delay
                s = run(path, w, clock, on_pause=sc.get("on_pause"))
            self.assertEqual(s.phase, sc["outcome"], (name, kill, s.reason))
            w.check_consistent(self, s.phase)
            if name == "crash":
                self.assertEqual(w.max_canary_weight, 0)
            self.assertEqual(R.load_state(path).phase, s.phase)
            return killed, s

    def test_resume_after_kill_at_every_point(self):
        # durability is StateFileTest's; here only the order of things matters
        with mock.patch.object(util.os, "fsync"):
            self._every_point()

    def _every_point(self):
        for name in self.SCENARIOS:
            _, s = self._run(name)
            # how many actions the uninterrupted run took, by replaying it with a counter
            k = 0
            while True:
                killed_any = False
                for when in ("before", "after"):
                    killed, _ = self._run(name, kill=(k, when))
                    killed_any |= killed
                if not killed_any:
                    break
                k += 1
            self.assertGreater(k, 3, name)

    def test_phases_covered(self):
        seen = set()
        for name in self.SCENARIOS:
            _, s = self._run(name)
            seen |= {e["phase"] for e in s.events}
        self.assertTrue({"starting", "step", "paused", "promoting", "rolling_back", "aborting",
                         "done", "rolled_back", "aborted"} <= seen, seen)


class StateFileTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.path, self.lay = start(self.tmp.name)

    def test_round_trip(self):
        s = R.load_state(self.path)
        self.assertEqual(s.phase, "starting")
        self.assertEqual(s.layout["us-east"].canary, ["us-east-newa"])
        self.assertEqual(s.config.steps[0].hold_s, 20)
        self.assertEqual(R.RolloutState.from_dict(json.loads(json.dumps(s.to_dict()))).to_dict(), s.to_dict())
        self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o600)
        self.assertIsNone(R.load_state(Path(self.tmp.name) / "none.json"))

    def test_write_is_atomic_and_durable(self):
        s = R.load_state(self.path)
        old = self.path.read_text()
        s2 = operator(s, "abort", T0 + 1)
        synced = []
        real_fsync = os.fsync

        def fsync(fd):
            synced.append(os.path.realpath(f"/proc/self/fd/{fd}"))
            real_fsync(fd)
        # the rename fails: the old state stands, no temporary file is left behind
        with mock.patch.object(util.os, "replace", side_effect=OSError("disk gone")):
            with self.assertRaises(OSError):
                R.save_state(self.path, s2)
        self.assertEqual(self.path.read_text(), old)
        self.assertEqual(sorted(os.listdir(self.tmp.name)), ["rollout.json"])
        # a temporary file left by a killed writer is ignored
        (Path(self.tmp.name) / "rollout.json.tmp").write_text('{"format": 1, "phase": "do')
        self.assertEqual(R.load_state(self.path).phase, "starting")
        with mock.patch.object(util.os, "fsync", side_effect=fsync):
            R.save_state(self.path, s2)
        self.assertEqual(R.load_state(self.path).phase, "aborting")
        # the file's data before the rename, then the folder (the rename itself)
        self.assertEqual(synced, [str(self.path) + ".tmp", os.path.realpath(self.tmp.name)])

    def test_bad_files_are_refused(self):
        self.path.write_text("{torn")
        with self.assertRaisesRegex(R.StateError, "not JSON"):
            R.load_state(self.path)
        self.path.write_text(json.dumps({"format": 99}))
        with self.assertRaisesRegex(R.StateError, "format 1"):
            R.load_state(self.path)
        s = new_rollout("r1", T0, self.lay, {}, {}, PlanConfig())
        bad = s.to_dict()
        bad["phase"] = "sideways"
        self.path.write_text(json.dumps(bad))
        with self.assertRaisesRegex(R.StateError, "unknown phase"):
            R.load_state(self.path)
        bad = s.to_dict()
        bad["step"] = 9
        self.path.write_text(json.dumps(bad))
        with self.assertRaisesRegex(R.StateError, "step 9"):
            R.load_state(self.path)


class ReportTest(unittest.TestCase):
    def test_report_of_a_rolled_back_rollout(self):
        with tempfile.TemporaryDirectory() as tmp:
            path, lay = start(tmp)
            w = World(lay, rps=5000, canary_error=0.01)
            s = run(path, w, [T0])
        r = R.report(s)
        json.dumps(r, allow_nan=False)
        self.assertEqual(r["outcome"], "rolled_back")
        self.assertEqual(r["release"], {"version": "v2"})
        f = r["failed_requests"]
        self.assertGreater(f["canary_errors"], 0)
        self.assertAlmostEqual(f["excess_canary_errors"], f["canary_errors"])     # baseline clean
        self.assertLess(f["canary_errors_share_of_all"], 0.0005)                  # issue 11's bound
        self.assertEqual(r["steps"][0]["outcome"], "rolled back")
        self.assertGreater(r["steps"][0]["duration_s"], 0)
        self.assertEqual(r["judgement_counts"].get("fail"), 1)
        text = R.report_text(s)
        self.assertIn("rollout r1: v1 -> v2: rolled_back", text)
        self.assertIn("step 1 1%:", text)
        self.assertIn("FAIL", text)
        self.assertIn("failed requests attributable to the canary", text)
        self.assertNotIn("journeys", f)
        self.assertNotIn("journeys pinned", text)

    def test_report_of_a_rollback_decided_by_the_pinned_journeys(self):
        """Few user sessions hashed onto the canary (the edge balances on Authorization): its
        request counts show no error, the journeys pinned to it fail. The report says which."""
        with tempfile.TemporaryDirectory() as tmp:
            path, lay = start(tmp)
            w = World(lay, rps=20, journeys=((0, 3), (40, 0)))
            s = run(path, w, [T0])
        r = R.report(s)
        json.dumps(r, allow_nan=False)
        self.assertEqual(r["outcome"], "rolled_back")
        self.assertEqual(r["judgements"][-1]["reasons"], [r["judgements"][-1]["reasons"][0]])
        self.assertTrue(r["judgements"][-1]["reasons"][0].startswith("journeys:"), r["judgements"][-1]["reasons"])
        f = r["failed_requests"]
        self.assertEqual(f["canary_errors"], 0)
        self.assertEqual(f["excess_canary_errors"], 0)
        self.assertEqual(f["journeys"], {"canary": {"passed": 0, "failed": 3},
                                         "baseline": {"passed": 40, "failed": 0}})
        self.assertIn("journeys pinned to the canary: 3 failed of 3; baseline 0 of 40", R.report_text(s))


if __name__ == "__main__":
    unittest.main()
