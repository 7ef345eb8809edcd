"""Low tier: health articles and recommendations, served from cache; stale when the
database is down."""

from __future__ import annotations

import time

from harness import ContinuumTestCase


class ContentTest(ContinuumTestCase):
    SERVER_OVERRIDES = {"cache": {"fresh_ms": 1000, "stale_while_revalidate_ms": 5000,
                                  "stale_if_error_ms": 600000}}

    def test_library_list_filter_and_read(self):
        r = self.server.get("/api/v1/articles")  # public: no login
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertGreaterEqual(body["count"], 20)
        a = body["articles"][0]
        for k in ("slug", "title", "summary", "tags", "url"):
            self.assertIn(k, a)
        tag = a["tags"][0]
        r = self.server.get(f"/api/v1/articles?tag={tag}")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(all(tag in x["tags"] for x in r.json()["articles"]))
        r = self.server.get(a["url"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["slug"], a["slug"])
        self.assertGreater(len(r.json()["body"]), 200)
        self.assertEqual(self.server.get("/api/v1/articles/no-such-article").status, 404)
        for bad in ("/api/v1/articles?colour=red", "/api/v1/articles?tag=Bad%20Tag",
                    "/api/v1/articles?q="):
            self.assertEqual(self.server.get(bad).status, 400, bad)

    def test_recommendations_follow_conditions_and_are_private(self):
        tok = self.token("demo-patient")
        r = self.server.get("/api/v1/recommendations", token=tok)
        self.assertEqual(r.status, 200, r)
        recs = r.json()["recommendations"]
        self.assertTrue(recs, r)
        mine = {row["display"] for row in self.cluster.rows(
            "SELECT display FROM condition WHERE patient_id = 1 AND clinical_status IN "
            "('active','recurrence','relapse') UNION SELECT display FROM medication "
            "WHERE patient_id = 1 AND status = 'active'")}
        for rec in recs:
            self.assertTrue(set(rec["because"]) <= mine, rec)
        self.assertEqual(r.header("Cache-Control"), "private, max-age=60")
        self.assertEqual(self.server.get("/api/v1/recommendations").status, 401)
        r = self.server.get("/api/v1/recommendations?patient=2", token=tok)
        self.assertEqual(r.status, 403, r)

    def test_cache_then_stale_when_database_down(self):
        tok = self.token("patient-5")
        first = self.server.get("/api/v1/recommendations", token=tok)
        self.assertEqual(first.status, 200, first)
        self.assertEqual(first.header("X-Cache"), "miss")
        again = self.server.get("/api/v1/recommendations", token=tok)
        self.assertEqual(again.header("X-Cache"), "hit")
        self.assertIsNone(again.header("X-Continuum-Degraded"))
        arts = self.server.get("/api/v1/articles")
        self.assertEqual(arts.status, 200)
        c = self.cluster
        c.pg.stop()
        try:
            # The node notices within a few seconds (its session sync loop gives up after
            # its 2 s deadline); then: revalidating, past both windows, and later still.
            for wait in (3.5, 4, 2):
                time.sleep(wait)
                r = self.server.get("/api/v1/recommendations", token=tok)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json(), first.json())
                self.assertEqual(r.header("X-Continuum-Degraded"), "stale", r)
                a = self.server.get("/api/v1/articles")
                self.assertEqual(a.status, 200, a)
                self.assertEqual(a.header("X-Continuum-Degraded"), "stale", a)
        finally:
            c.pg.start()
        deadline = time.monotonic() + 20
        while True:
            r = self.server.get("/api/v1/recommendations", token=tok)
            if r.header("X-Continuum-Degraded") is None or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertIsNone(r.header("X-Continuum-Degraded"), r)
