"""Unit tests of the chaos runner's deciding parts (ops/continuum_ops/chaos.py): the
experiment format, the hypothesis over a window of requests, and the revert journal.
Run: python3 -m unittest discover -s ops/tests"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from continuum_ops import chaos  # noqa: E402
from continuum_ops.load import Rec  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

GOOD = {"title": "t", "method": [{"fault": "pause-nodes", "target": "us-west", "hold_s": 5}]}


def rec(sent, answered, status=200, kind="read"):
    return Rec(kind, "r0", "us-east", "/x", sent, answered, status, None if status else "timed out", "rid")


class ExperimentFormatTest(unittest.TestCase):
    def test_defaults(self):
        e = chaos.parse_experiment(GOOD)
        self.assertEqual(e.method[0].fault, "pause-nodes")
        self.assertEqual(e.hypothesis.critical_success_min, 1.0)
        self.assertEqual(e.abort_after_s, 20.0)

    def test_refusals_name_the_problem(self):
        cases = [
            ({**GOOD, "titel": "x"}, "unknown key(s) titel"),
            ({**GOOD, "title": " "}, "title must be a non-empty string"),
            ({**GOOD, "method": []}, "method must be a non-empty list"),
            ({**GOOD, "method": [{"fault": "nuke", "target": "us-west"}]}, "fault must be one of"),
            ({**GOOD, "method": [{"fault": "pause-nodes"}]}, "target must be a region"),
            ({**GOOD, "method": [{"fault": "pause-nodes", "target": "us-west", "hold_s": 0}]},
             "hold_s must be a number from 1"),
            ({**GOOD, "method": [{"fault": "pause-nodes", "target": "us-west", "hold_s": True}]}, "hold_s"),
            ({**GOOD, "method": [{"fault": "dependency", "target": "payments"}]}, "params.mode must be"),
            ({**GOOD, "method": [{"fault": "dependency", "target": "payments", "params": {"mode": "error", "x": 1}}]},
             "unknown key(s) x"),
            ({**GOOD, "method": [{"fault": "slow-query", "target": "allergy; drop table x"}]}, "a table name"),
            ({**GOOD, "hypothesis": {"critical_success_min": 1.5}}, "critical_success_min must be a number from 0 to 1"),
            ({**GOOD, "hypothesis": {"window": 5}}, "unknown key(s) window"),
            ({**GOOD, "method": [{"fault": "database-network", "target": "primary"}]}, "at least one toxic"),
            ({**GOOD, "method": [{"fault": "kill-edge", "target": "primary"}]}, "an edge instance"),
            ({**GOOD, "client_retries": 5}, "client_retries must be a number from 0 to 3"),
            ({**GOOD, "method": [{"fault": "database-network", "target": "primary", "params": {"latency": 5}}]},
             "unknown key(s) latency"),
            ({**GOOD, "method": [{"fault": "database-network", "target": "primary",
                                  "params": {"latency_ms": 10, "jitter_ms": 20}}]}, "jitter_ms must not exceed"),
            ({**GOOD, "method": [{"fault": "database-network", "target": "primary",
                                  "params": {"close_after_ms": 10}}]}, "goes with hold"),
            ({**GOOD, "method": [{"fault": "database-network", "target": "primary", "params": {"hold": 1}}]},
             "hold must be true or false"),
            ({**GOOD, "method": [{"fault": "database-network", "target": "primary",
                                  "params": {"latency_ms": -1}}]}, "latency_ms must be a number from 0"),
            ({**GOOD, "method": [{"fault": "fill-disk", "target": "us-west", "params": {"percent": 30}}]},
             "percent must be a number from 50 to 100"),
            ({**GOOD, "method": [{"fault": "fill-disk", "target": "us-west", "params": {"size": 1}}]},
             "unknown key(s) size"),
            ({**GOOD, "method": [{"fault": "fill-disk", "params": {"percent": 95}}]}, "target must be a region"),
            ({**GOOD, "method": [{"fault": "partition-region", "target": "primary",
                                  "params": {"direction": "sideways"}}]}, "direction must be one of both"),
            ({**GOOD, "method": [{"fault": "partition-region", "params": {"direction": "both"}}]},
             "target must be a region"),
            ({**GOOD, "method": [{"fault": "partition-region", "target": "primary", "params": {"drop": 1}}]},
             "unknown key(s) drop"),
            ([], "must be a JSON object"),
        ]
        for doc, msg in cases:
            with self.subTest(msg=msg):
                with self.assertRaises(ValueError) as ctx:
                    chaos.parse_experiment(doc)
                self.assertIn(msg, str(ctx.exception))

    def test_every_shipped_experiment_parses(self):
        files = sorted((REPO / "deploy" / "chaos").glob("*.json"))
        self.assertGreaterEqual(len(files), 5)
        for p in files:
            with self.subTest(p.name):
                e = chaos.load_experiment(p)
                for s in e.method:
                    chaos.make_fault(s.fault, s.target if s.target not in chaos.ROLES else "us-east", s.params)

    def test_an_unreadable_file_is_a_clear_error(self):
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "x.json"
            p.write_text("{not json")
            with self.assertRaisesRegex(ValueError, "x.json: not JSON"):
                chaos.load_experiment(p)
            with self.assertRaisesRegex(ValueError, "missing.json"):
                chaos.load_experiment(Path(d) / "missing.json")


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("mkfs.ext4") and shutil.which("mount"),
                     "needs root, mkfs.ext4 and mount (a loop-mounted filesystem of its own)")
class JournalDiskFillTest(unittest.TestCase):
    """The fill-disk fault's ballast on a 16 MiB ext4 image of the test's own (never the
    machine's disk): 95 % used, then full, then shrunk back."""

    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="continuum-fill-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        img, self.mnt = self.tmp / "v.img", self.tmp / "mnt"
        self.mnt.mkdir()
        with open(img, "wb") as f:
            f.truncate(16 << 20)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(img)], check=True, capture_output=True)
        subprocess.run(["mount", "-o", "loop", str(img), str(self.mnt)], check=True, capture_output=True)
        self.addCleanup(subprocess.run, ["umount", str(self.mnt)], capture_output=True)

    def used(self):
        st = os.statvfs(self.mnt)
        return 1 - st.f_bavail / st.f_blocks

    def test_fill_to_a_percentage_then_full_then_back(self):
        from continuum_ops.faults import JournalDiskFilled
        JournalDiskFilled.fill(self.mnt, 95)
        self.assertAlmostEqual(self.used(), 0.95, delta=0.01)
        left = JournalDiskFilled.fill(self.mnt, 100)
        self.assertEqual(left, 0)
        with self.assertRaises(OSError):   # the disk is full for a writer too
            with open(self.mnt / "x", "wb") as f:
                f.write(b"x" * 65536)
                f.flush()
                os.fsync(f.fileno())
        JournalDiskFilled.fill(self.mnt, 60)
        self.assertAlmostEqual(self.used(), 0.60, delta=0.01)


class WindowTest(unittest.TestCase):
    H = chaos.Hypothesis(window_s=5, critical_success_min=1.0, critical_p99_ms=1000, min_requests=3)

    def test_all_good(self):
        w = chaos.judge_window([rec(0, 0.1), rec(1, 1.2), rec(2, 2.05)], 0, 5, self.H)
        self.assertTrue(w.ok, w.why)
        self.assertEqual((w.requests, w.failed), (3, 0))

    def test_one_failure_breaks_a_strict_hypothesis(self):
        w = chaos.judge_window([rec(0, 0.1), rec(1, 1.2, 503), rec(2, 2.05)], 0, 5, self.H)
        self.assertFalse(w.ok)
        self.assertIn("1 of 3 failed (HTTP 503)", w.why)
        lenient = chaos.Hypothesis(critical_success_min=0.6, critical_p99_ms=1000, min_requests=3)
        self.assertTrue(chaos.judge_window([rec(0, 0.1), rec(1, 1.2, 503), rec(2, 2.05)], 0, 5, lenient).ok)

    def test_a_stall_is_a_violation_even_without_errors(self):
        w = chaos.judge_window([rec(0, 0.1)], 0, 5, self.H)
        self.assertFalse(w.ok)
        self.assertIn("a stall", w.why)

    def test_slow_answers_break_the_latency_bound(self):
        w = chaos.judge_window([rec(0, 0.1), rec(0, 1.0), rec(0, 2.5)], 0, 5, self.H)
        self.assertFalse(w.ok)
        self.assertIn("p99 2500 ms > 1000 ms", w.why)

    def test_only_answers_inside_the_window_count(self):
        recs = [rec(0, 4.9), rec(0, 5.0, 503), rec(0, 9.0)]
        w = chaos.judge_window(recs, 0, 5, chaos.Hypothesis(min_requests=1))
        self.assertEqual((w.requests, w.failed), (1, 0))

    def test_p99_nearest_rank(self):
        self.assertIsNone(chaos.p99([]))
        self.assertEqual(chaos.p99([5.0]), 5.0)
        self.assertEqual(chaos.p99(list(range(1, 101))), 99)
        self.assertEqual(chaos.p99(list(range(1, 201))), 198)


class JournalTest(unittest.TestCase):
    def test_add_remove_and_replay_in_reverse(self):
        with tempfile.TemporaryDirectory() as d:
            j = chaos.Journal(Path(d))
            self.assertEqual(j.entries(), [])
            j.add({"id": "a", "run": "r1", "fault": "pause-nodes", "target": "us-west", "params": {}})
            j.add({"id": "b", "run": "r1", "fault": "dependency", "target": "payments", "params": {"mode": "error"}})
            self.assertEqual([e["id"] for e in json.loads(j.path.read_text())], ["a", "b"])
            reverted = []

            class Fake:
                def __init__(self, kind, target, params):
                    self.kind, self.target = kind, target

                def revert(self, c):
                    reverted.append((self.kind, self.target))

                def describe(self):
                    return f"{self.kind} ({self.target})"
            real = chaos.make_fault
            chaos.make_fault = Fake
            try:
                done = chaos.replay(object(), j)
            finally:
                chaos.make_fault = real
            self.assertEqual(reverted, [("dependency", "payments"), ("pause-nodes", "us-west")])
            self.assertEqual(done, ["dependency (payments)", "pause-nodes (us-west)"])
            self.assertEqual(j.entries(), [])

    def test_a_failed_revert_stays_on_the_journal(self):
        with tempfile.TemporaryDirectory() as d:
            j = chaos.Journal(Path(d))
            j.add({"id": "a", "run": "r1", "fault": "pause-nodes", "target": "us-west", "params": {}})

            class Failing:
                def __init__(self, *a):
                    pass

                def describe(self):
                    return "x"

                def revert(self, c):
                    raise RuntimeError("haproxy: no such server")
            real = chaos.make_fault
            chaos.make_fault = Failing
            try:
                with self.assertRaises(RuntimeError):
                    chaos.replay(object(), j)
            finally:
                chaos.make_fault = real
            self.assertEqual([e["id"] for e in j.entries()], ["a"])

    def test_a_step_whose_revert_fails_is_broken_and_stays_on_the_journal(self):
        # A revert that raises (a region that never came back) must not leave the step
        # "held": it is broken, says why, and its entry stays for `chaos revert`.
        exp = chaos.parse_experiment({"title": "t", "hypothesis": {"window_s": 1},
                                      "method": [{"fault": "dependency", "target": "payments",
                                                  "params": {"mode": "error"}, "hold_s": 1}]})

        class Failing:
            def __init__(self, *a):
                pass

            def describe(self):
                return "dependency error (payments)"

            def inject(self, c):
                pass

            def revert(self, c):
                raise chaos.ClusterError("timed out after 120s waiting for us-central streaming")

        class Load:
            def records(self):
                return []
        with tempfile.TemporaryDirectory() as d:
            j = chaos.Journal(Path(d))
            real = chaos.make_fault
            chaos.make_fault = Failing
            try:
                res = chaos._step(object(), exp, exp.method[0], Load(), j, "r1", None)
            finally:
                chaos.make_fault = real
            self.assertFalse(res["held"])
            self.assertIn("the revert failed", res["aborted"])
            self.assertIn("us-central streaming", res["revert_error"])
            self.assertEqual(len(j.entries()), 1)
            text = chaos.report({"id": "r1", "title": "t", "held": False, "steps": [res]})
            self.assertIn("revert FAILED", text)

    def test_a_damaged_journal_is_not_guessed_at(self):
        with tempfile.TemporaryDirectory() as d:
            j = chaos.Journal(Path(d))
            j.path.parent.mkdir(parents=True)
            j.path.write_text("[{")
            with self.assertRaisesRegex(chaos.ClusterError, "damaged"):
                j.entries()


class ReportTest(unittest.TestCase):
    def test_the_report_says_what_broke(self):
        w_ok = {"t0": 0, "t1": 5, "requests": 10, "failed": 0, "p99_ms": 40.0, "ok": True, "why": ""}
        w_bad = {"t0": 5, "t1": 10, "requests": 0, "failed": 0, "p99_ms": None, "ok": False,
                 "why": "0 answers < 3 (a stall)"}
        r = {"id": "c1", "title": "pause", "held": False, "aborted": None, "replayed": [],
             "before": {"windows": [w_ok]},
             "steps": [{"describe": "region's portal nodes paused (us-west)", "held": False,
                        "during": {"windows": [w_ok, w_bad]}, "revert_s": 0.1, "recovered_after_revert_s": 5.0,
                        "detected": {"alert": "PortalRegionDown", "after_s": 7.5}}],
             "after": {"windows": [w_ok]},
             "load": {"sent": 100, "failed": 0, "read_stall_s": 5.2, "write_stall_s": 1.0},
             "writes": {"acked_writes": 20, "lost": 0, "duplicates": 0, "wrong_ids": 0}}
        text = chaos.report(r)
        self.assertIn("hypothesis BROKEN", text)
        self.assertIn("broken in 1: 0 answers < 3 (a stall)", text)
        self.assertIn("detected: PortalRegionDown after 7.5s", text)
        self.assertIn("lost 0, duplicated 0", text)

    RUN = {"id": "c1", "title": "pause <us-west> & co", "held": False, "aborted": None, "replayed": [],
           "started": 1_800_000_000, "finished": 1_800_000_060,
           "before": {"windows": [{"t0": 0, "t1": 5, "requests": 10, "failed": 0, "p99_ms": 40.0, "ok": True}]},
           "steps": [{"fault": "pause-nodes", "describe": "region's portal nodes paused (us-west)", "held": False,
                      "during": {"windows": [{"t0": 5, "t1": 10, "requests": 9, "failed": 0, "p99_ms": 80.0, "ok": True},
                                             {"t0": 10, "t1": 15, "requests": 0, "failed": 2, "p99_ms": None,
                                              "ok": False, "why": "0 answers < 3 (a stall)"}]},
                      "recovery": [{"t0": 15, "t1": 20, "requests": 10, "failed": 0, "p99_ms": 30.0, "ok": True}],
                      "revert_s": 0.1, "recovered_after_revert_s": 0.0,
                      "detected": {"alert": "PortalRegionDown", "after_s": 7.5}}],
           "after": {"windows": [{"t0": 20, "t1": 25, "requests": 10, "failed": 0, "p99_ms": 35.0, "ok": True}]},
           "load": {"sent": 100, "failed": 2, "read_stall_s": 5.2, "write_stall_s": 1.0},
           "writes": {"acked_writes": 20, "lost": 0, "duplicates": 0, "wrong_ids": 0}}

    def test_the_html_report_shows_the_timeline_and_escapes_what_it_quotes(self):
        from continuum_ops import chaos_html
        page = chaos_html.run_html(self.RUN)
        self.assertTrue(page.startswith("<!doctype html>"))
        self.assertNotIn("<script", page)
        self.assertNotIn("http", page.replace("http-equiv", ""))   # nothing fetched from anywhere
        self.assertIn("pause &lt;us-west&gt; &amp; co", page)
        self.assertNotIn("pause <us-west>", page)
        # five windows, one bar each; the broken one red with its reason; the failed requests dotted
        self.assertEqual(page.count('fill="#2e7d32"><title>'), 4)
        self.assertEqual(page.count('fill="#c62828"><title>'), 1)
        self.assertIn("0 answers &lt; 3 (a stall)", page)
        self.assertEqual(page.count("<circle"), 1)
        self.assertIn("PortalRegionDown 7.5s", page)      # the detecting alert, marked on the timeline
        self.assertIn("fault 1: pause-nodes", page)
        self.assertIn("BROKEN", page)
        self.assertIn("lost 0, duplicated 0", page)

    def test_the_html_report_has_a_row_per_other_tier(self):
        from continuum_ops import chaos_html
        tiers = {"high": {"sent": 40, "failed": 0, "failed_by_kind": {}, "stall_s": 0.4},
                 "medium": {"sent": 30, "failed": 2, "failed_by_kind": {"HTTP 503": 2}, "stall_s": 6.25},
                 "low": {"sent": 20, "failed": 0, "failed_by_kind": {}, "stall_s": 0.1}}
        run = dict(self.RUN, load=dict(self.RUN["load"], tiers=tiers),
                   tiers_after_failed={"high": 0, "medium": 1, "low": 0})
        page = chaos_html.run_html(run)
        self.assertIn("<th>failed after the revert</th>", page)
        self.assertIn('<td>medium</td><td class="n">30</td><td class="n">2</td><td>HTTP 503 ×2</td>'
                      '<td class="n">6.25</td>', page)
        self.assertEqual(page.count('<span class="ok">none</span>'), 2, page)   # high and low back
        self.assertIn('<span class="bad">1</span>', page)                        # medium was not
        # a run without tier clients (the older format) has no such table
        self.assertNotIn("failed after the revert", chaos_html.run_html(self.RUN))

    def test_the_day_page_names_the_missed_targets_and_links_each_experiment(self):
        from continuum_ops import chaos_html
        good = dict(self.RUN, id="d-01", title="kill the edge", held=True, load={"sent": 50, "failed": 0})
        bad = dict(self.RUN, id="d-02")
        s = chaos.day_summary([good, bad], monitoring=True)
        page = chaos_html.day_html({"id": "d", "summary": s, "started": 1, "finished": 2,
                                    "writes": {"acked_writes": 40, "lost": 0, "duplicates": 0, "wrong_ids": 0},
                                    "skipped": {"fill-journal-disk.json": "needs journal volumes"}}, [good, bad])
        self.assertIn("MISSED", page)
        self.assertIn("critical_0_failed", page)
        self.assertIn('href="#d-01"', page)
        self.assertIn('id="d-02"', page)
        self.assertIn("Skipped fill-journal-disk.json: needs journal volumes", page)
        self.assertIn("40 acknowledged writes", page)
        self.assertEqual(page.count("<svg"), 2)



class DayTest(unittest.TestCase):
    @staticmethod
    def result(title, failed=0, lost=0, dup=0, held=True, ttd=(), recovered=0.0, audit_missing=0):
        steps = [{"describe": f"{title} fault", "detected": {"alert": "X", "after_s": t} if t is not None else None,
                  "recovered_after_revert_s": recovered} for t in (ttd or [None])]
        return {"id": title, "title": title, "held": held, "aborted": None if held else "broken",
                "load": {"sent": 100, "failed": failed, "failed_without_client_retries": failed + 1},
                "writes": {"acked_writes": 10, "lost": lost, "duplicates": dup}, "steps": steps,
                "audit": {"acked_phi": 90, "missing": audit_missing, "missing_detail": []}}

    def test_all_targets_met(self):
        s = chaos.day_summary([self.result("a", ttd=[4.0]), self.result("b", ttd=[6.0]),
                               self.result("c", ttd=[20.0])], monitoring=True)
        self.assertTrue(s["met"], s["targets"])
        self.assertEqual(s["median_time_to_detect_s"], 6.0)
        self.assertEqual(s["requests"], 300)
        self.assertEqual(s["failed_without_client_retries"], 3)

    def test_each_miss_is_named(self):
        s = chaos.day_summary([self.result("a", failed=2, ttd=[4.0]), self.result("b", lost=1, ttd=[30.0]),
                               self.result("c", held=False, ttd=[40.0])], monitoring=True)
        self.assertFalse(s["met"])
        t = s["targets"]
        self.assertEqual(t["critical_0_failed"]["detail"], {"a": 2})
        self.assertEqual(t["no_lost_or_duplicated_writes"]["detail"], {"b": {"lost": 1, "duplicates": 0, "error": None}})
        self.assertEqual(t["every_hypothesis_held"]["detail"], {"c": "broken"})
        self.assertFalse(t["median_time_to_detect_le_10s"]["met"])   # median 30 s
        text = chaos.day_report({"id": "d1", "summary": s})
        self.assertIn("targets: MISSED", text)
        self.assertIn("critical_0_failed: MISSED", text)

    def test_a_phi_answer_without_its_audit_record_misses_the_audit_target(self):
        s = chaos.day_summary([self.result("a", ttd=[4.0]), self.result("b", ttd=[5.0], audit_missing=2)],
                              monitoring=True)
        self.assertFalse(s["met"])
        self.assertEqual(s["targets"]["no_lost_audit_records"]["detail"], {"b": {"missing": 2, "error": None}})
        # an experiment whose audit was never checked does not pass by default
        r = self.result("c", ttd=[4.0])
        del r["audit"]
        self.assertFalse(chaos.day_summary([r], monitoring=True)["targets"]["no_lost_audit_records"]["met"])

    def test_audit_verify_output_is_parsed(self):
        ok = chaos.parse_audit_verify("note: journal us-east-a seq 10..12: not yet shipped\n"
                                      "OK: 1200 journal records, 1190 table rows, 0 problem(s)\n", 0)
        self.assertTrue(ok["ok"])
        self.assertEqual((ok["journal_records"], ok["table_rows"]), (1200, 1190))
        self.assertEqual(ok["notes"], ["journal us-east-a seq 10..12: not yet shipped"])
        bad = chaos.parse_audit_verify("PROBLEM journal us-east-a seq 42: hash mismatch (modified)\n"
                                       "FAILED: 1200 journal records, 1200 table rows, 1 problem(s)\n", 1)
        self.assertFalse(bad["ok"])
        self.assertEqual(bad["problems"], ["journal us-east-a seq 42: hash mismatch (modified)"])
        self.assertFalse(chaos.parse_audit_verify("Segmentation fault\n", 139)["ok"])
        self.assertIn("FAILED", chaos.verify_line(bad))

    def test_a_tier_still_failing_after_the_revert_misses_its_target(self):
        a, b = self.result("a"), self.result("b")
        a["tiers_after_failed"] = {"high": 0, "medium": 0, "low": 0}
        b["tiers_after_failed"] = {"high": 0, "medium": 3, "low": 0}
        t = chaos.day_summary([a, b], monitoring=False)["targets"]["other_tiers_back_after_revert"]
        self.assertFalse(t["met"])
        self.assertEqual(t["detail"], {"b": {"medium": 3}})
        b["tiers_after_failed"] = {"high": 0, "medium": 0, "low": 0}
        self.assertTrue(chaos.day_summary([a, b], monitoring=False)["met"])

    def test_tier_requests_are_counted_apart_from_the_critical_load(self):
        from continuum_ops.load import MixedLoad, Rec
        ld = MixedLoad("http://127.0.0.1:1", [{"username": "patient-1", "patient_id": 1, "region": "r"}], [],
                       tier_clients=[{"username": "patient-2", "patient_id": 2, "region": "r"}])
        ld.t_start, ld.t_stop = 0.0, 10.0
        crit, tiers = ld.clients
        crit.recs = [Rec("read", "r0", "r", "/x", t, t + 0.1, 200, None, f"c{t}") for t in (1.0, 2.0, 3.0)]
        tiers.recs = [Rec("high", "t0", "r", "/a", 1.0, 1.1, 200, None, "t1"),
                      Rec("medium", "t0", "r", "/b", 2.0, 2.1, 503, None, "t2"),
                      Rec("low", "t0", "r", "/c", 3.0, 3.1, None, "TimeoutError: timed out", "t3"),
                      Rec("medium", "t0", "r", "/b", 8.0, 8.1, 200, None, "t4")]
        fig = ld.figures()
        self.assertEqual((fig["sent"], fig["failed"]), (3, 0), "tier requests leaked into the critical figures")
        self.assertEqual(fig["tiers"]["medium"]["sent"], 2)
        self.assertEqual(fig["tiers"]["medium"]["failed_by_kind"], {"HTTP 503": 1})
        self.assertEqual(fig["tiers"]["low"]["failed"], 1)
        self.assertEqual(ld.tier_failures_between(5.0, 10.0), {"high": 0, "medium": 0, "low": 0})
        self.assertEqual(ld.tier_failures_between(0.0, 5.0), {"high": 0, "medium": 1, "low": 1})
        import time as _time
        tiers.inflight = ("low", _time.monotonic() - 10.0)   # a request hanging for 10 s
        self.assertEqual(ld.tier_failures_between(_time.monotonic() - 60, _time.monotonic())["low"], 1)
        self.assertEqual(chaos.judge_window(ld.records(), 0.0, 10.0, chaos.Hypothesis()).ok, True)

    def test_nothing_detected_misses_the_ttd_target_and_no_monitoring_skips_it(self):
        rows = [self.result("a"), self.result("b")]
        self.assertFalse(chaos.day_summary(rows, monitoring=True)["targets"]["median_time_to_detect_le_10s"]["met"])
        s = chaos.day_summary(rows, monitoring=False)
        self.assertNotIn("median_time_to_detect_le_10s", s["targets"])
        self.assertTrue(s["met"])

class SignalsTest(unittest.TestCase):
    def test_raises_until_finishing_then_records_and_restores(self):
        import os
        import signal
        before = signal.getsignal(signal.SIGTERM)
        sigs = chaos.Signals()
        try:
            with self.assertRaises(chaos.Interrupted):
                os.kill(os.getpid(), signal.SIGTERM)   # the handler runs before the next line
            sigs.finishing()
            os.kill(os.getpid(), signal.SIGTERM)   # recorded, not raised
            self.assertEqual(sigs.pending, ["SIGTERM"])
        finally:
            sigs.restore()
        self.assertIs(signal.getsignal(signal.SIGTERM), before)


class AuditCheckTest(unittest.TestCase):
    """load.MixedLoad.verify_audit: every acknowledged PHI answer has a success record."""

    def setUp(self):
        from continuum_ops.load import MixedLoad, Rec
        self.load = MixedLoad("http://127.0.0.1:1", [{"username": "patient-1", "patient_id": 1, "region": "r"}],
                              [{"username": "provider-1", "patient_id": 1, "region": "r"}], run_id="run1",
                              tier_clients=[{"username": "patient-2", "patient_id": 2, "region": "r"}])
        r, w, t = self.load.clients

        def rec(kind, path, n, status, sent):
            return Rec(kind, "x", "r", path, sent, sent + 0.1, status, None, f"ct-run1-x-{n}")
        r.recs += [rec("read", "/fhir/R4/Patient/1/$summary", 1, 200, 1.0),
                   rec("read", "/fhir/R4/AllergyIntolerance?patient=1", 2, 503, 2.0)]   # refused: no record owed
        w.recs += [rec("write", "/fhir/R4/DocumentReference", 3, 201, 3.0)]
        t.recs += [rec("high", "/fhir/R4/Appointment?patient=2", 4, 200, 4.0),
                   rec("low", "/api/v1/articles", 5, 200, 5.0)]                        # names no patient

    def test_phi_answers_are_the_acknowledged_ones_about_a_patient(self):
        self.assertEqual([r.request_id for r in self.load.phi_records()],
                         ["ct-run1-x-1", "ct-run1-x-3", "ct-run1-x-4"])
        self.assertEqual([r.request_id for r in self.load.phi_records(2.5, 10)], ["ct-run1-x-3", "ct-run1-x-4"])

    def test_waits_for_the_shipping_then_names_what_is_missing(self):
        answers = iter(["ct-run1-x-1\n", "ct-run1-x-1\nct-run1-x-3\n"] + ["ct-run1-x-1\nct-run1-x-3\n"] * 50)
        queries, now = [], [0.0]

        def sql(q):
            queries.append(q)
            return next(answers)

        def sleep(s):
            now[0] += s
        v = self.load.verify_audit(sql, wait_s=10, sleep=sleep, clock=lambda: now[0])
        self.assertEqual((v["acked_phi"], v["missing"]), (3, 1))
        self.assertIn("high /fhir/R4/Appointment?patient=2 rid=ct-run1-x-4", v["missing_detail"][0])
        self.assertIn("outcome = 'success'", queries[0])
        self.assertIn("LIKE 'ct-run1-%'", queries[0])
        self.assertGreaterEqual(now[0], 10)   # it waited out its bound before calling it lost

    def test_all_present_at_once_needs_no_wait(self):
        now = [0.0]
        v = self.load.verify_audit(lambda q: "ct-run1-x-1\nct-run1-x-3\nct-run1-x-4\nct-run1-x-9\n",
                                   sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
        self.assertEqual((v["missing"], now[0]), (0, 0.0))


if __name__ == "__main__":
    unittest.main()
