"""Critical first ([server] critical_first_*, src/resilience/critical_first.hpp): while a
node works on at least the threshold's number of critical-tier requests and its CPU is
saturated, each other tier works on at most its small share at once and its further
requests wait their turn, at most half of their time to the deadline; the other tiers
keep their own shares (a stuck tier holds only its own), and below the threshold nothing
waits. Critical requests that wait on their own (stuck) database leave the CPU idle and
hold nothing back.

Critical and high requests are kept in flight for seconds by holding their tiers' pools
(the chaos hook "exhaust a tier's pool"): each then waits for a connection until its
deadline. The nodes run one thread, a threshold of two critical requests and a share of
one request per tier, so what waits is exact and read from the node's own metrics. The
first node engages on the threshold alone (critical_first_lag_us = 0: the order itself is
tested); the second measures its CPU as deployed (the default lag limit: it engages only
while its event loop runs late and the critical tier is served), and its critical requests
stuck on their pool must not hold the high tier back. The CPU-saturated case
itself is unit-tested (critical_first_test.cpp) and measured by bench/mixed."""

from __future__ import annotations

import re
import threading
import time

from harness import ContinuumTestCase, wait_until

HOLD = "/api/v1/ops/chaos/pool-hold"


class CriticalFirstTest(ContinuumTestCase):
    START_SERVER = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        settings = {"threads": 1, "critical_first_in_flight": 1, "critical_first_threshold": 2}
        rest = {"ops": {"chaos_hooks": True},
                "database": {"critical": {"deadline_ms": 8000}, "high": {"deadline_ms": 3000}}}
        cls.server = cls.cluster.add_server(
            "critical-first", {"server": {**settings, "critical_first_lag_us": 0}, **rest})
        cls.measuring = cls.cluster.add_server("critical-first-cpu", {"server": settings, **rest})

    def metric(self, name: str, tier: str | None = None, server=None) -> float:
        text = (server or self.server).get("/metrics").text
        labels = f'{{tier="{tier}"}}' if tier else ""
        m = re.search(rf'^{re.escape(name + labels)} ([0-9.e+-]+)$', text, re.M)
        self.assertIsNotNone(m, f"{name}{labels} not in /metrics")
        return float(m.group(1))

    def critical_waiting_for_pool(self, server) -> float:
        text = server.get("/metrics").text
        m = re.search(r'^continuum_db_pool_connections\{tier="critical",state="waiting"\} (\d+)$',
                      text, re.M)
        self.assertIsNotNone(m, "continuum_db_pool_connections{critical,waiting} not in /metrics")
        return float(m.group(1))

    def hold(self, tier: str, seconds: int, server=None):
        server = server or self.server
        r = server.post_json(HOLD, {"tier": tier, "seconds": seconds}, token=server.ops_token)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json()["complete"], r.json())

    def release(self, server=None):
        server = server or self.server
        r = server.delete(HOLD, token=server.ops_token)
        self.assertEqual(r.status, 200, r)

    def in_background(self, fn) -> tuple[threading.Thread, dict]:
        out: dict = {}

        def run():
            t0 = time.monotonic()
            try:
                out["response"] = fn()
            except Exception as e:  # noqa: BLE001 - reported by the test
                out["error"] = repr(e)
            out["took"] = time.monotonic() - t0

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t, out

    def appointments(self, token, server=None):
        return (server or self.server).fhir("Appointment", token=token, params={"patient": "1"},
                                            timeout=20)

    def allergies(self, token, server=None):
        return (server or self.server).fhir("AllergyIntolerance", token=token,
                                            params={"patient": "1"}, timeout=30)

    def test_lower_tiers_take_turns_while_critical_work_runs(self):
        patient = self.token("demo-patient")
        self.assertEqual(self.appointments(patient).status, 200)
        self.assertEqual(self.server.get("/api/v1/articles", token=patient).status, 200)
        self.addCleanup(self.release)
        waits0 = self.metric("continuum_critical_first_waits_total", "high")
        overdue0 = self.metric("continuum_critical_first_overdue_total", "high")

        # Two critical requests in flight (each waits for a connection of its held pool).
        self.hold("critical", 60)
        self.hold("high", 60)
        crits = [self.in_background(lambda: self.allergies(patient)) for _ in range(2)]
        wait_until(lambda: self.critical_waiting_for_pool(self.server) == 2, 5, 0.05,
                   "two critical reads waiting for their held pool")
        self.assertEqual(self.metric("continuum_critical_first_engaged"), 1)
        # Two high-tier reads: the first takes the tier's share, the second waits its turn.
        first, first_out = self.in_background(lambda: self.appointments(patient))
        time.sleep(0.3)
        second, second_out = self.in_background(lambda: self.appointments(patient))
        wait_until(lambda: self.metric("continuum_critical_first_waiting", "high") == 1, 5, 0.05,
                   "the second high-tier read waiting its turn")
        # The low tier has its own share: it is served now, the high tier's wait aside.
        t0 = time.monotonic()
        r = self.server.get("/api/v1/articles", token=patient)
        self.assertEqual(r.status, 200, r)
        self.assertLess(time.monotonic() - t0, 1.5, "the low tier waited behind the high tier")
        self.assertEqual(self.metric("continuum_critical_first_waiting", "low"), 0)

        for t in (first, second):
            t.join(20)
            self.assertFalse(t.is_alive(), "a high-tier read did not end")
        for out in (first_out, second_out):
            self.assertNotIn("error", out, out)
            # its pool held: refused within its deadline (the tier's fallback), not hung
            self.assertIn(out["response"].status, (503, 504), out["response"])
        self.assertEqual(self.metric("continuum_critical_first_waits_total", "high"), waits0 + 1)
        # The second read waited half of its 3 s (the first still held the share), then went
        # ahead with the other half for its own work: the gate delays, it never refuses.
        self.assertEqual(self.metric("continuum_critical_first_overdue_total", "high"), overdue0 + 1)
        self.assertGreater(self.metric("continuum_critical_first_wait_seconds_total", "high"), 1.2)
        self.assertGreater(second_out["took"], 2.0, second_out)

        for t, out in crits:
            t.join(30)
            self.assertFalse(t.is_alive(), "a critical read did not end")
            self.assertNotIn("error", out, out)

        # One critical request in flight, below the threshold: two high-tier reads at once
        # both start, nothing waits.
        crit, crit_out = self.in_background(lambda: self.allergies(patient))
        wait_until(lambda: self.critical_waiting_for_pool(self.server) == 1, 5, 0.05,
                   "one critical read waiting for its held pool")
        self.assertEqual(self.metric("continuum_critical_first_engaged"), 0)
        waits1 = self.metric("continuum_critical_first_waits_total", "high")
        pair = [self.in_background(lambda: self.appointments(patient)) for _ in range(2)]
        for t, _ in pair:
            t.join(20)
        for _, out in pair:
            self.assertNotIn("error", out, out)
            self.assertLess(out["took"], 5.0, out)
        self.assertEqual(self.metric("continuum_critical_first_waits_total", "high"), waits1,
                         "a high-tier read waited below the threshold")
        self.release()
        crit.join(30)
        self.assertNotIn("error", crit_out, crit_out)
        self.assertEqual(self.appointments(patient).status, 200)
        self.assertEqual(self.server.fhir("AllergyIntolerance", token=patient,
                                          params={"patient": "1"}).status, 200)

    def test_critical_work_stuck_on_its_database_holds_no_other_tier_back(self):
        """The review's case: the critical tier at its threshold, but waiting on its own
        (held) pool with the CPU idle. Measuring the CPU, the node lets the high tier go as
        it comes: no high-tier read waits for its turn."""
        server = self.measuring
        patient = self.token("demo-patient", server)
        self.assertEqual(self.appointments(patient, server).status, 200)
        self.addCleanup(self.release, server)
        probes0 = self.metric("continuum_critical_first_lag_probes_total", server=server)
        seconds0 = self.metric("continuum_critical_first_wait_seconds_total", "high", server)

        self.hold("critical", 60, server)
        self.hold("high", 60, server)
        crits = [self.in_background(lambda: self.allergies(patient, server)) for _ in range(3)]
        wait_until(lambda: self.critical_waiting_for_pool(server) == 3, 5, 0.05,
                   "three critical reads waiting for their held pool")
        # The gate measures (it is at its threshold) and finds the CPU idle.
        wait_until(lambda: self.metric("continuum_critical_first_lag_probes_total",
                                       server=server) >= probes0 + 20, 5, 0.05,
                   "the node measuring its event loop's lag")
        # (Its critical requests serve nothing, so even a late probe on a busy test machine
        # does not engage it.)
        wait_until(lambda: self.metric("continuum_critical_first_engaged", server=server) == 0,
                   5, 0.02, "the gate disengaged with the CPU idle")
        highs = [self.in_background(lambda: self.appointments(patient, server)) for _ in range(3)]
        for t, _ in highs:
            t.join(20)
            self.assertFalse(t.is_alive(), "a high-tier read did not end")
        for _, out in highs:
            self.assertNotIn("error", out, out)
            self.assertIn(out["response"].status, (503, 504), out["response"])
        # With the threshold alone they would each have waited up to half their 3 s for the
        # share of one (1.5 s and more in all).
        waited = self.metric("continuum_critical_first_wait_seconds_total", "high", server) - seconds0
        self.assertLess(waited, 0.5, "high-tier reads waited for critical work stuck on its pool")
        self.release(server)
        for t, out in crits:
            t.join(30)
            self.assertFalse(t.is_alive(), "a critical read did not end")
            self.assertNotIn("error", out, out)
        self.assertEqual(self.allergies(patient, server).status, 200)
