"""Chaos hooks inside a node ([ops] chaos_hooks, src/portal/chaos_hooks.hpp): "exhaust a
tier's pool" holds every connection of one tier's pools; that tier's requests fail or fall
back within their deadline, the other tiers are untouched, and giving the connections
back (or the hold's time running out) brings the tier back at once."""

from __future__ import annotations

import re
import time

from harness import ContinuumTestCase, wait_until

HOLD = "/api/v1/ops/chaos/pool-hold"


class PoolHoldTest(ContinuumTestCase):
    START_SERVER = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = cls.cluster.add_server("hooks", {
            "server": {"threads": 2},
            "ops": {"chaos_hooks": True},
            "database": {"medium": {"pool_size": 4, "deadline_ms": 1500}}})
        cls.plain = cls.cluster.add_server("plain", {})

    def held(self, tier):
        text = self.server.get("/metrics").text
        m = re.search(rf'continuum_chaos_pool_held_connections{{tier="{tier}"}} (\d+)', text)
        return int(m.group(1)) if m else None

    def invoices(self):
        return self.server.fhir("Invoice", token=self.token("demo-patient"), params={"patient": "1"})

    def allergies(self):
        return self.server.fhir("AllergyIntolerance", token=self.token("demo-patient"),
                                params={"patient": "1"})

    def release(self):
        r = self.server.delete(HOLD, token=self.server.ops_token)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_1_a_held_medium_pool_fails_medium_requests_in_time_and_nothing_else(self):
        self.assertEqual(self.invoices().status, 200)
        self.assertEqual(self.held("medium"), 0)
        r = self.server.post_json(HOLD, {"tier": "medium", "seconds": 60}, token=self.server.ops_token)
        self.assertEqual(r.status, 200, r)
        self.addCleanup(self.release)
        body = r.json()
        # 4 connections of the primary's pool, split over the node's 2 shards
        self.assertEqual((body["tier"], body["held"], body["wanted"], body["complete"]),
                         ("medium", 4, 4, True), body)
        self.assertEqual(self.held("medium"), 4)
        # the medium tier: refused within its deadline (no connection to be had), not hung
        t0 = time.monotonic()
        r = self.invoices()
        took = time.monotonic() - t0
        self.assertIn(r.status, (503, 504), r)
        self.assertLess(took, 5.0, f"a medium request under a held pool took {took:.1f}s")
        # the critical tier has pools of its own
        for _ in range(5):
            self.assertEqual(self.allergies().status, 200)
        self.assertEqual(self.held("critical"), 0)
        # given back: the medium tier answers again at once
        out = self.release()
        self.assertEqual(out["held_before"]["medium"], 4, out)
        wait_until(lambda: self.held("medium") == 0, 5, 0.05, "the held connections back")
        self.assertEqual(self.invoices().status, 200)

    def test_2_a_hold_ends_by_itself(self):
        r = self.server.post_json(HOLD, {"tier": "medium", "seconds": 1}, token=self.server.ops_token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["held"], 4, r)
        wait_until(lambda: self.held("medium") == 0, 5, 0.1, "the hold's end")
        self.assertEqual(self.invoices().status, 200)

    def test_3_refusals(self):
        tok = self.server.ops_token
        for body, word in [({"tier": "ops", "seconds": 5}, "tier"), ({"tier": "medium"}, "seconds"),
                           ({"tier": "medium", "seconds": 0}, "seconds"),
                           ({"tier": "medium", "seconds": 601}, "seconds"),
                           ({"tier": "medium", "seconds": 1.5}, "seconds"),
                           ({"tier": "medium", "seconds": 5, "extra": 1}, "extra")]:
            with self.subTest(body=body):
                r = self.server.post_json(HOLD, body, token=tok)
                self.assertEqual(r.status, 400, r)
                self.assertIn(word, r.text)
        self.assertEqual(self.server.request("DELETE", HOLD + "?tier=nope", token=tok).status, 400)
        self.assertEqual(self.held("medium"), 0)   # nothing held by a refused request
        # no token, a patient's token
        self.assertEqual(self.server.post_json(HOLD, {"tier": "medium", "seconds": 5}).status, 401)
        r = self.server.post_json(HOLD, {"tier": "medium", "seconds": 5}, token=self.token("demo-patient"))
        self.assertEqual(r.status, 403, r)
        # a node without [ops] chaos_hooks
        r = self.plain.post_json(HOLD, {"tier": "medium", "seconds": 5}, token=self.plain.ops_token)
        self.assertEqual(r.status, 403, r)
        self.assertIn("chaos_hooks", r.text)
        self.assertEqual(self.plain.delete(HOLD, token=self.plain.ops_token).status, 403)
        self.assertEqual(self.plain.fhir("Invoice", token=self.token("demo-patient", self.plain),
                                         params={"patient": "1"}).status, 200)
