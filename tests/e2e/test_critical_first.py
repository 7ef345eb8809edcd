"""Critical first ([server] critical_first_in_flight and critical_first_threshold,
src/resilience/critical_first.hpp): while a node works on at least the threshold's number
of critical-tier requests, each other tier works on at most its small share at once and
its further requests wait their turn; the other tiers keep their own shares (a stuck tier
holds only its own), and below the threshold nothing waits.

Critical and high requests are kept in flight for seconds by holding their tiers' pools
(the chaos hook "exhaust a tier's pool"): each then waits for a connection until its
deadline. The node runs one thread, a threshold of two critical requests and a share of
one request per tier, so what waits is exact and read from the node's own metrics."""

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
        cls.server = cls.cluster.add_server("critical-first", {
            "server": {"threads": 1, "critical_first_in_flight": 1, "critical_first_threshold": 2},
            "ops": {"chaos_hooks": True},
            "database": {"critical": {"deadline_ms": 8000}, "high": {"deadline_ms": 3000}}})

    def metric(self, name: str, tier: str) -> float:
        text = self.server.get("/metrics").text
        m = re.search(rf'^{name}{{tier="{tier}"}} ([0-9.e+-]+)$', text, re.M)
        self.assertIsNotNone(m, f"{name}{{tier={tier}}} not in /metrics")
        return float(m.group(1))

    def hold(self, tier: str, seconds: int):
        r = self.server.post_json(HOLD, {"tier": tier, "seconds": seconds}, token=self.server.ops_token)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json()["complete"], r.json())

    def release(self):
        r = self.server.delete(HOLD, token=self.server.ops_token)
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

    def appointments(self, token):
        return self.server.fhir("Appointment", token=token, params={"patient": "1"}, timeout=20)

    def allergies(self, token):
        return self.server.fhir("AllergyIntolerance", token=token, params={"patient": "1"}, timeout=30)

    def test_lower_tiers_take_turns_while_critical_work_runs(self):
        patient = self.token("demo-patient")
        self.assertEqual(self.appointments(patient).status, 200)
        self.assertEqual(self.server.get("/api/v1/articles", token=patient).status, 200)
        self.addCleanup(self.release)
        waits0 = self.metric("continuum_critical_first_waits_total", "high")

        # Two critical requests in flight (each waits for a connection of its held pool).
        self.hold("critical", 60)
        self.hold("high", 60)
        crits = [self.in_background(lambda: self.allergies(patient)) for _ in range(2)]
        time.sleep(0.5)
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
        self.assertGreater(self.metric("continuum_critical_first_wait_seconds_total", "high"), 1.0)
        # The second read's time: its turn came only when the first ended (~3 s).
        self.assertGreater(second_out["took"], 2.0, second_out)

        for t, out in crits:
            t.join(30)
            self.assertFalse(t.is_alive(), "a critical read did not end")
            self.assertNotIn("error", out, out)

        # One critical request in flight, below the threshold: two high-tier reads at once
        # both start, nothing waits.
        crit, crit_out = self.in_background(lambda: self.allergies(patient))
        time.sleep(0.5)
        self.assertTrue(crit.is_alive(), "the critical read ended early: its pool is not held")
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
