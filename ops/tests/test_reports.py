"""Unit tests of ops/continuum_ops/reports.py: the payload, trimming to the node's body
limit, and the publisher's choice of node (a local HTTP server stands in for the portal's
POST /api/v1/ops/reports; the real endpoint is covered by tests/e2e/test_ops_api.py and
the cluster's chaos and rollout tests). Run: python3 -m unittest discover -s ops/tests"""

import json
import sys
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from types import SimpleNamespace  # noqa: E402

from continuum_ops import chaos, reports, rollout  # noqa: E402


class PayloadTest(unittest.TestCase):
    def test_fields_and_times(self):
        p = reports.payload("rollout", "r1", "v1 -> v2", "running (canary)", 1796205600.25, None, "text", {"a": 1})
        self.assertEqual(p["started_at"], "2026-12-02T10:00:00.250Z")
        self.assertIsNone(p["ended_at"])
        self.assertEqual(p["report"], {"a": 1})
        self.assertEqual(reports.payload("chaos-day", "d", "", "", 0, 60, "", {})["title"], "d")
        long = reports.payload("chaos-day", "d", "t", "o", 0, 60, "é" * 40_000, {})["text"]
        self.assertLessEqual(len(long.encode()), reports.TEXT_MAX)
        self.assertTrue(long.endswith("(cut: the whole report is in the file)"))
        with self.assertRaises(ValueError):
            reports.payload("deploy", "x", "t", "o", 0, None, "", {})

    def test_shrink_keeps_the_newest_entries_and_says_so(self):
        big = {"id": "r", "judgements": [{"n": i, "pad": "x" * 100} for i in range(5000)], "steps": [1, 2]}
        out = reports.shrink(big, limit=50_000)
        self.assertLessEqual(len(json.dumps(out)), 50_000)
        self.assertEqual(out["judgements"][-1]["n"], 4999)   # the newest kept
        self.assertEqual(out["_trimmed"], {"judgements": 5000})
        self.assertEqual(out["steps"], [1, 2])
        self.assertEqual(len(big["judgements"]), 5000)        # the caller's report untouched
        small = {"a": [1, 2, 3]}
        self.assertIs(reports.shrink(small), small)


class Portal:
    """A stand-in portal node: records each POST, answers with `status`."""

    def __init__(self, status: int):
        self.status, self.seen = status, []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.seen.append((self.path, self.headers["Authorization"], json.loads(body)))
                self.send_response(outer.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *a):
                pass
        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.base = f"http://127.0.0.1:{self.srv.server_address[1]}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class PublisherTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.token = Path(self.tmp.name) / "ops.token"
        self.token.write_text("ab" * 32 + "\n")

    def tearDown(self):
        self.tmp.cleanup()

    def test_next_node_when_one_fails_and_rate_limit(self):
        down, up = Portal(503), Portal(201)
        try:
            pub = reports.Publisher(["http://127.0.0.1:1", down.base, up.base], self.token, min_interval_s=60)
            body = reports.payload("chaos-run", "c1", "t", "held", 0, 1, "x", {})
            self.assertFalse(pub.send(body))                  # a growing report: in the background
            pub._thread.join(10)
            self.assertEqual(len(down.seen), 1)
            path, auth, got = up.seen[0]
            self.assertEqual(path, "/api/v1/ops/reports")
            self.assertEqual(auth, "Bearer " + "ab" * 32)
            self.assertEqual(got["id"], "c1")
            self.assertFalse(pub.send(body))                  # within min_interval_s: skipped
            time.sleep(0.2)
            self.assertEqual(len(up.seen), 1)
            self.assertTrue(pub.send(body, final=True))       # the last version always goes, now
            self.assertEqual(len(up.seen), 2)
        finally:
            down.close()
            up.close()

    def test_a_refusal_is_not_tried_elsewhere_and_never_raises(self):
        bad, other = Portal(400), Portal(201)
        try:
            pub = reports.Publisher([bad.base, other.base], self.token)
            self.assertFalse(pub.send(reports.payload("rollout", "r", "t", "o", 0, None, "", {}), final=True))
            self.assertEqual(other.seen, [])
            self.assertFalse(reports.Publisher([other.base], Path(self.tmp.name) / "missing").send(
                reports.payload("rollout", "r2", "t", "o", 0, None, "", {}), final=True))
        finally:
            bad.close()
            other.close()


class WiringTest(unittest.TestCase):
    """The controllers reach the portal: the edge first, then two nodes."""

    def cluster(self, d):
        nodes = [SimpleNamespace(host="127.0.0.1", port=p) for p in (18101, 18102, 18111)]
        return SimpleNamespace(state=Path(d), ops_token_file=Path(d) / "ops.token",
                               prometheus_url="http://127.0.0.1:9090",
                               topo=SimpleNamespace(monitoring={"prometheus": 9090}, haproxy={"http": 8080}, nodes=nodes),
                               haproxy_cmd=lambda cmd: "", haproxy_each=lambda cmd: [""])

    def test_rollout_controller_and_chaos_save(self):
        with tempfile.TemporaryDirectory() as d:
            ctl = rollout.Controller(self.cluster(d))
            self.assertEqual(ctl.publisher.bases, ["http://127.0.0.1:8080", "http://127.0.0.1:18101",
                                                   "http://127.0.0.1:18102"])
            # a chaos run's report is saved and offered to the portal (none answers here)
            seen = []
            real = reports.Publisher.send
            reports.Publisher.send = lambda self, body, final=False: seen.append((body, final)) or False
            try:
                chaos._save(self.cluster(d), {"id": "c1", "title": "t", "held": True, "aborted": None,
                                              "started": 0, "finished": 5, "steps": []}, render=lambda r: "text")
            finally:
                reports.Publisher.send = real
            self.assertTrue((Path(d) / "chaos" / "c1.json").exists())
            body, final = seen[0]
            self.assertTrue(final)
            self.assertEqual((body["kind"], body["id"], body["outcome"], body["text"]),
                             ("chaos-run", "c1", "hypothesis held", "text"))


if __name__ == "__main__":
    unittest.main()
