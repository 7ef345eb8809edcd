"""Unit tests of the decisions in continuum_ops: port plan, topology, Patroni state, process
trees, folder reachability, rendering. Run: python3 -m unittest discover -s ops/tests"""

import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from continuum_ops import haproxy, patroni, pgroot, portal  # noqa: E402
from continuum_ops.procs import closure  # noqa: E402
from continuum_ops.topology import (Topology, listening_ports, max_offset, parse_regions,  # noqa: E402
                                    port_problems, preference, reserved_ports)
from continuum_ops.util import ClusterError, render_text  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CONF = (REPO / "deploy" / "regions.conf").read_text()
SMALL = """# name etcd_client etcd_peer rest pg nodes
a 100 200 300 400 500 501
b 101 201 301 401 510
c 102 202 302 402 520 521
"""


class TopologyTest(unittest.TestCase):
    def test_parse_and_names(self):
        rs = parse_regions(SMALL, offset=1000)
        self.assertEqual([r.name for r in rs], ["a", "b", "c"])
        self.assertEqual(rs[0].pg, 1400)
        self.assertEqual([n.name for n in rs[0].nodes], ["a-a", "a-b"])
        self.assertEqual([n.port for n in rs[2].nodes], [1520, 1521])

    def test_parse_errors_name_the_line(self):
        with self.assertRaisesRegex(ValueError, "line 1"):
            parse_regions("a 1 2 3 4\n")
        with self.assertRaisesRegex(ValueError, "numbers"):
            parse_regions("a 1 2 x 4 5\n")
        with self.assertRaisesRegex(ValueError, "at least 3"):
            parse_regions("a 1 2 3 4 5\nb 6 7 8 9 10\n")
        with self.assertRaisesRegex(ValueError, "twice"):
            parse_regions("a 1 2 3 4 5\na 6 7 8 9 10\nc 11 12 13 14 15\n")

    def test_preference_by_distance(self):
        self.assertEqual(preference(["a", "b", "c"], "a"), ["a", "b", "c"])
        self.assertEqual(preference(["a", "b", "c"], "b"), ["b", "a", "c"])
        self.assertEqual(preference(["a", "b", "c"], "c"), ["c", "b", "a"])
        self.assertEqual(preference(["a", "b", "c", "d", "e"], "c"), ["c", "b", "d", "a", "e"])

    def test_shipped_plan_is_outside_the_default_ephemeral_range(self):
        for off in (0, 2000, 3000, 5000):
            t = Topology(CONF, off)
            self.assertEqual(port_problems(t.ports(), (32768, 60999), set()), [], off)

    def test_ephemeral_ports_are_refused_unless_reserved(self):
        ports = [(15432, "haproxy"), (54331, "postgres us-east")]
        probs = port_problems(ports, (32768, 60999), set())
        self.assertEqual(len(probs), 1)
        self.assertIn("54331 (postgres us-east)", probs[0])
        self.assertIn("ephemeral", probs[0])
        self.assertEqual(port_problems(ports, (32768, 60999), {54331}), [])
        # a machine with a narrower range: the same port is fine
        self.assertEqual(port_problems(ports, (60000, 61000), set()), [])

    def test_duplicates_and_max_offset(self):
        self.assertIn("twice", port_problems([(1, "x"), (1, "y")], (32768, 60999), set())[0])
        t = Topology(CONF, 0)
        m = max_offset(t.ports(), (32768, 60999))
        self.assertEqual(port_problems(Topology(CONF, m).ports(), (32768, 60999), set()), [])
        self.assertTrue(port_problems(Topology(CONF, m + 1).ports(), (32768, 60999), set()))

    def test_offset_bounds(self):
        with self.assertRaises(ValueError):
            Topology(CONF, -1)
        with self.assertRaises(ValueError):
            Topology(CONF, 10001)

    def test_reserved_ports_parsing(self):
        with tempfile.NamedTemporaryFile("w") as f:
            f.write("8080,54330-54332\n")
            f.flush()
            self.assertEqual(reserved_ports(f.name), {8080, 54330, 54331, 54332})

    def test_listening_ports_tells_a_listener_from_a_client_socket(self):
        with tempfile.TemporaryDirectory() as d:
            hdr = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
            # 0x3C21 = 15393 listening (0A); 0xD431 = 54321 established (01) client socket
            Path(d, "tcp").write_text(hdr + "   0: 0100007F:3C21 00000000:0000 0A 0:0 00:0 0 0\n"
                                            "   1: 0100007F:D431 0100007F:1F90 01 0:0 00:0 0 0\n")
            Path(d, "tcp6").write_text(hdr + "   0: 00000000000000000000000001000000:1F90 "
                                             "00000000000000000000000000000000:0000 0A 0:0 00:0 0 0\n")
            self.assertEqual(listening_ports(d), {15393, 8080})


class PatroniTest(unittest.TestCase):
    def members(self, *ms):
        return {"members": [dict(zip(("name", "role", "state"), m)) | {"port": 5000 + i}
                            for i, m in enumerate(ms)]}

    def test_healthy_needs_leader_sync_and_all_running(self):
        ok = self.members(("a", "leader", "running"), ("b", "sync_standby", "streaming"),
                          ("c", "replica", "streaming"))
        self.assertTrue(patroni.healthy(ok, 3))
        self.assertFalse(patroni.healthy(ok, 4))
        no_sync = self.members(("a", "leader", "running"), ("b", "replica", "streaming"),
                               ("c", "replica", "streaming"))
        self.assertFalse(patroni.healthy(no_sync, 3))
        starting = self.members(("a", "leader", "running"), ("b", "sync_standby", "streaming"),
                                ("c", "replica", "starting"))
        self.assertFalse(patroni.healthy(starting, 3))
        self.assertFalse(patroni.healthy(None, 3))

    def test_roles_and_serving(self):
        c = self.members(("a", "leader", "running"), ("b", "sync_standby", "streaming"),
                         ("c", "replica", "stopped"))
        self.assertEqual(patroni.role(patroni.member(c, "a")), "primary")
        self.assertEqual(patroni.role(patroni.member(c, "b")), "sync_standby")
        self.assertEqual(patroni.role(patroni.member(c, "c")), "down")
        self.assertEqual(patroni.role(None), "down")
        self.assertEqual(patroni.leader(c)["port"], 5000)
        self.assertTrue(patroni.serving(c, "a", set()))
        self.assertFalse(patroni.serving(c, "b", set()))        # not seen streaming by the primary
        self.assertTrue(patroni.serving(c, "b", {"b"}))
        self.assertFalse(patroni.serving(c, "c", {"c"}))


class ProcsTest(unittest.TestCase):
    def test_closure_takes_sessions_and_descendants_but_not_ours(self):
        snap = {
            1: (0, 1),
            100: (1, 100),     # etcd, own session
            200: (1, 200),     # patroni, own session
            201: (200, 200),   # patroni's helper in its session
            300: (1, 300),     # postmaster (re-parented to init, session apart)
            301: (300, 301),   # postgres child that called setsid()
            302: (301, 302),   # its child
            400: (1, 400),     # a stranger
            500: (1, 500),     # us
            501: (500, 500),
        }
        self.assertEqual(closure(snap, [100, 200, 300], self_sid=500), {100, 200, 201, 300, 301, 302})
        self.assertEqual(closure(snap, [501], self_sid=500), {501})   # never our own session
        self.assertEqual(closure(snap, [999], self_sid=500), set())   # gone already


class PgRootTest(unittest.TestCase):
    def test_traversable(self):
        pg_uid, pg_gid = 105, 107
        root_755 = (0o40755, 0, 0)
        root_700 = (0o40700, 0, 0)
        group_710 = (0o40710, 0, pg_gid)
        own_700 = (0o40700, pg_uid, pg_gid)
        self.assertTrue(pgroot.traversable([root_755, root_755], pg_uid, {pg_gid}))
        self.assertFalse(pgroot.traversable([root_755, root_700, root_755], pg_uid, {pg_gid}))
        self.assertTrue(pgroot.traversable([root_755, group_710], pg_uid, {pg_gid}))
        self.assertTrue(pgroot.traversable([root_755, own_700], pg_uid, {pg_gid}))
        # owner class decides even when "other" would allow it
        self.assertFalse(pgroot.traversable([(0o40007, pg_uid, 0)], pg_uid, set()))

    def test_choose(self):
        s = Path("/root/checkout/.state/cluster")
        root, why = pgroot.choose(s, None, lambda p: False)
        self.assertEqual(root.parent, pgroot.SYSTEM_PG_BASE)
        self.assertIn("out of reach", why)
        self.assertEqual(pgroot.choose(s, None, lambda p: False)[0], root)          # stable per state folder
        self.assertNotEqual(pgroot.choose(Path("/root/other"), None, lambda p: False)[0], root)
        self.assertEqual(pgroot.choose(s, None, lambda p: True)[0], s / "patroni")
        self.assertEqual(pgroot.choose(s, "/x/y", lambda p: True)[0], Path("/x/y"))  # a cluster keeps it


class RenderTest(unittest.TestCase):
    def test_missing_value_is_named(self):
        self.assertEqual(render_text("a ${X} $$", {"X": 1}), "a 1 $")
        with self.assertRaisesRegex(ClusterError, r"\$\{Y\}"):
            render_text("${Y}", {})

    def test_haproxy_backends_follow_preference(self):
        t = Topology(SMALL, 0)
        v = haproxy.template_values(t, Path("/s/haproxy"), Path("/s/edge.pem"))
        b = v["EDGE_BACKENDS"].split("backend portal-b\n")[1].split("\n\n")[0].splitlines()
        self.assertEqual(b, ["    server b-a 127.0.0.1:510 check",
                             "    server a-a 127.0.0.1:500 check backup",
                             "    server a-b 127.0.0.1:501 check backup",
                             "    server c-a 127.0.0.1:520 check backup",
                             "    server c-b 127.0.0.1:521 check backup"])
        self.assertIn("server c 127.0.0.1:402 check port 302", v["PG_PRIMARY_SERVERS"])
        self.assertEqual(v["DEFAULT_REGION"], "a")

    def test_haproxy_lists_a_rollouts_canary_at_weight_zero(self):
        # slot b of SMALL: a-c, a-d (ports + 50), b-b, c-c, c-d; a rollout's canary nodes
        # are in the template at weight 0, so a reload keeps them
        t = Topology(SMALL, 0)
        v = haproxy.template_values(t, Path("/s/haproxy"), Path("/s/edge.pem"), ["b-b", "a-c", "a-d", "c-c", "c-d"])
        b = v["EDGE_BACKENDS"].split("backend portal-b\n")[1].split("\n\n")[0].splitlines()
        self.assertEqual(b[:2], ["    server b-a 127.0.0.1:510 check", "    server b-b 127.0.0.1:560 check weight 0"])
        self.assertIn("    server a-c 127.0.0.1:550 check weight 0 backup", b)
        live_b = Topology(SMALL, 0, slot="b")
        v = haproxy.template_values(live_b, Path("/s/haproxy"), Path("/s/edge.pem"))
        self.assertNotIn("b-a", v["EDGE_BACKENDS"])
        self.assertIn("server b-b 127.0.0.1:560 check\n", v["EDGE_BACKENDS"])

    def test_portal_urls_and_blocks(self):
        t = Topology(SMALL, 0)
        url = portal.primary_url(t, "c", "pw")
        self.assertIn("port=402,401,400", url)
        self.assertIn("target_session_attrs=read-write", url)
        # the portal nodes reach every database through its region's net-proxy
        self.assertIn("port=422,421,420", portal.primary_url(t, "c", "pw", via_proxy=True))
        blk = portal.topology_block(t, "b", "pw")
        self.assertIn("port=421 ", blk)
        self.assertNotIn("port=401 ", blk)
        ports = dict((p, w) for p, w in t.ports())
        self.assertEqual(ports[420], "net-proxy a (postgres)")
        self.assertEqual(ports[430], "net-proxy a admin")
        self.assertLess(blk.index('name = "b"'), blk.index('name = "a"'))
        self.assertLess(blk.index('name = "a"'), blk.index('name = "c"'))
        deps = portal.dependencies_block(t, 300, True, "/s/tls/ca.pem")
        self.assertIn('[dependencies.ehr]\nurl = "https://127.0.0.1:9101"\nca_file = "/s/tls/ca.pem"', deps)
        self.assertIn('smtp://127.0.0.1:9125', deps)
        self.assertNotIn("http://", deps)
        self.assertNotIn("ehr", portal.dependencies_block(t, 50000, True, "/ca.pem"))
        self.assertEqual(portal.dependencies_block(t, 300, False, "/ca.pem"), "")

    def test_haproxy_exporter_is_on_a_loopback_listener_not_the_edge(self):
        # /metrics of HAProxy (backends, servers, their checks) is for Prometheus only: the
        # exporter lives on the stats listener, bound to loopback, never on the public edge.
        t = Topology(SMALL, 0)
        cfg = render_text((REPO / "deploy/haproxy/haproxy.cfg.tmpl").read_text(),
                          haproxy.template_values(t, Path("/s/haproxy"), Path("/s/edge.pem")))
        sections, name = {}, None
        for line in cfg.splitlines():
            if line and not line[0].isspace() and not line.startswith("#"):
                name = line.strip()
                sections[name] = []
            elif name and line.strip() and not line.strip().startswith("#"):
                sections[name].append(line.strip())
        with_exporter = [n for n, body in sections.items() if any("prometheus-exporter" in l for l in body)]
        self.assertEqual(with_exporter, ["listen stats"])
        binds = [l for l in sections["listen stats"] if l.startswith("bind ")]
        self.assertEqual(binds, [f"bind 127.0.0.1:{t.haproxy['stats']}"])
        edge = sections["frontend edge"]
        self.assertFalse([l for l in edge if "stats" in l or "prometheus" in l], edge)
        self.assertNotIn(str(t.haproxy["stats"]), " ".join(edge))
        # the edge checks the nodes' readiness by status code alone (no credentials needed)
        self.assertIn("option httpchk GET /readyz", sections["defaults edge"])
        self.assertIn("http-check expect status 200", sections["defaults edge"])

    def test_two_edge_instances_share_the_public_ports_not_their_own_files(self):
        t = Topology(SMALL, 0)
        insts = haproxy.instances(t, Path("/s/haproxy"))
        self.assertEqual([i.name for i in insts], ["haproxy", "haproxy-2"])
        cfgs = [render_text((REPO / "deploy/haproxy/haproxy.cfg.tmpl").read_text(),
                            haproxy.template_values(t, Path("/s/haproxy"), Path("/s/edge.pem"), instance=i))
                for i in insts]
        for i, cfg in zip(insts, cfgs):
            self.assertIn(f"stats socket {i.admin_sock} mode 600", cfg)
            self.assertIn(f"server-state-file {i.server_state}", cfg)
            self.assertIn(f"bind 127.0.0.1:{i.stats_port}\n", cfg)
            self.assertIn(f"bind 127.0.0.1:{t.haproxy['http']}\n", cfg)
            # SO_REUSEPORT is what lets both bind the public ports: never switched off
            self.assertNotIn("noreuseport", cfg)
        self.assertEqual(len({i.stats_port for i in insts}), 2)
        self.assertEqual(len({i.admin_sock for i in insts}), 2)

    def test_sessions_of_a_node_are_counted_on_every_edge_instance(self):
        stat = ("# pxname,svname,qcur,qmax,scur\nportal-a,a-a,0,0,{}\nportal-b,a-a,0,0,{}\n")
        rt = haproxy.Runtime(lambda cmd: stat.format(1, 0), lambda cmd: [stat.format(1, 0), stat.format(2, 3)])
        self.assertEqual(rt.sessions("a-a"), 6)
        self.assertEqual(haproxy.Runtime(lambda cmd: stat.format(1, 1)).sessions("a-a"), 2)

    def test_portal_public_base_url_is_the_edge(self):
        self.assertEqual(portal.public_base_url(Topology(SMALL, 0)), "http://127.0.0.1:8080")
        self.assertEqual(portal.public_base_url(Topology(SMALL, 7)), "http://127.0.0.1:8087")
        tmpl = (Path(__file__).resolve().parents[2] / "deploy/portal/continuum.toml.tmpl").read_text()
        self.assertIn('public_base_url = "${PUBLIC_BASE_URL}"', tmpl)


if __name__ == "__main__":
    unittest.main()


class MonitoringTest(unittest.TestCase):
    def test_targets_and_vantages(self):
        from continuum_ops import monitoring
        import json
        t = Topology(CONF, 2000)
        tg = monitoring.scrape_targets(t, True)
        portal_t = json.loads(monitoring.file_sd(tg["portal.json"]))
        self.assertEqual(len(portal_t), 6)
        self.assertEqual(portal_t[0], {"targets": ["127.0.0.1:20101"], "labels": {"region": "us-east", "node": "us-east-a"}})
        self.assertEqual([x[1]["region"] for x in tg["postgres_exporter.json"]], ["us-east", "us-central", "us-west"])
        self.assertEqual(tg["postgres_exporter.json"][0][0], "127.0.0.1:11187")
        vs = monitoring.vantages(t, "http://127.0.0.1:10080")
        self.assertEqual([v["name"] for v in vs], ["edge", "us-east", "us-central", "us-west"])
        self.assertEqual(vs[2]["urls"], ["http://127.0.0.1:20111", "http://127.0.0.1:20112"])

    def test_webhooks_reach_the_portal_by_several_ways_and_the_log(self):
        from continuum_ops import monitoring
        t = Topology(CONF, 0)
        w = monitoring.webhook_configs(t)
        urls = [l.split("'")[1] for l in w.splitlines() if "url:" in l]
        self.assertEqual(urls[0], "http://127.0.0.1:8080/api/v1/ops/alerts")      # the edge
        self.assertIn("http://127.0.0.1:18111/api/v1/ops/alerts", urls)           # a node per region
        self.assertEqual(urls[-1], "http://127.0.0.1:9140/alerts")                # the prober's log
        self.assertTrue(all(l.startswith("    ") for l in w.splitlines()))
        self.assertEqual(w.count("send_resolved: true"), len(urls))

    def test_prometheus_scrapes_the_portal_with_the_nodes_ops_token(self):
        import yaml
        from continuum_ops import monitoring
        t = Topology(CONF, 0)
        values = monitoring.prometheus_values(t, Path("/s/monitoring"), REPO / "deploy", Path("/s/ops.token"))
        cfg = yaml.safe_load(render_text((REPO / "deploy/prometheus/prometheus.yml.tmpl").read_text(), values))
        jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
        self.assertEqual(jobs["portal"]["authorization"], {"type": "Bearer", "credentials_file": "/s/ops.token"})
        # the token goes to the portal nodes only, never to a third-party exporter
        self.assertEqual([n for n, j in jobs.items() if "authorization" in j or "bearer_token_file" in j], ["portal"])
        self.assertEqual(jobs["portal"].get("metrics_path", "/metrics"), "/metrics")
        # the nodes read the same file as their [ops] token_file
        tmpl = (REPO / "deploy/portal/continuum.toml.tmpl").read_text()
        self.assertIn('token_file = "${OPS_TOKEN_FILE}"', tmpl)

    def test_probe_config(self):
        from continuum_ops import monitoring
        t = Topology(CONF, 0)
        cfg = monitoring.probe_toml(t, 5, "/j", "/s/pw", "/s/tok", "/s/alerts.log")
        self.assertIn("interval_s = 5\n", cfg)
        self.assertIn('url = "http://127.0.0.1:8080/api/v1/ops/journey-runs"', cfg)
        self.assertEqual(cfg.count("[[vantage]]"), 4)
        self.assertIn('base_urls = ["http://127.0.0.1:18121", "http://127.0.0.1:18122"]', cfg)

    def test_folder_info_names_the_mount_point(self):
        from continuum_ops import monitoring
        txt = monitoring.folder_info([("postgres", "us-east", "/tmp"), ("audit", "us-east-a", "/")])
        self.assertIn('continuum_data_folder_info{kind="postgres",owner="us-east",path="/tmp",mountpoint="', txt)
        self.assertIn('path="/",mountpoint="/"} 1', txt)


class MttdTest(unittest.TestCase):
    def test_parse_time_and_started_after(self):
        from continuum_ops import mttd
        self.assertAlmostEqual(mttd.parse_time("2026-12-02T10:00:00Z"), 1796205600.0)
        self.assertAlmostEqual(mttd.parse_time("2026-12-02T10:00:00.123456789Z"), 1796205600.123456, places=5)
        self.assertAlmostEqual(mttd.parse_time("2026-12-02T11:00:00+01:00"), 1796205600.0)
        self.assertTrue(mttd.started_after({"startsAt": "2026-12-02T10:00:01Z"}, 1796205600.0))
        self.assertFalse(mttd.started_after({"starts_at": "2026-12-02T09:59:00Z"}, 1796205600.0))
        self.assertFalse(mttd.started_after({}, 1796205600.0))

    def test_first_match_ignores_alerts_that_began_before_the_fault(self):
        from continuum_ops import faults, mttd
        f = faults.EdgeBackendDown("us-west")
        t0 = mttd.parse_time("2026-12-02T10:00:00Z")
        recs = [
            # already firing before the fault: re-sent after it, must not count
            {"alertname": "EdgeBackendDown", "labels": {"region": "us-west"}, "status": "firing",
             "starts_at": "2026-12-02T09:50:00Z", "received_at": "2026-12-02T10:00:01Z"},
            # another region: no match
            {"alertname": "EdgeBackendDown", "labels": {"region": "us-east"}, "status": "firing",
             "starts_at": "2026-12-02T10:00:01Z", "received_at": "2026-12-02T10:00:02Z"},
            {"alertname": "EdgeBackendDown", "labels": {"region": "us-west"}, "status": "firing",
             "starts_at": "2026-12-02T10:00:03Z", "received_at": "2026-12-02T10:00:04.5Z"},
        ]
        hit = mttd.first_match(recs, f, "firing", t0, started=t0)
        self.assertEqual(hit[1], "EdgeBackendDown")
        self.assertAlmostEqual(hit[0] - t0, 4.5)
        self.assertIsNone(mttd.first_match(recs[:2], f, "firing", t0, started=t0))
        res = [dict(recs[2], status="resolved", fingerprint="b", received_at="2026-12-02T10:00:40Z"),
               dict(recs[2], status="resolved", fingerprint="a", received_at="2026-12-02T10:00:20Z")]
        self.assertEqual(mttd.first_match(res, f, "resolved", t0, started=t0, fingerprint="b")[0] - t0, 40)

    def test_check_names_every_miss(self):
        from continuum_ops import mttd
        s = mttd.Summary(samples=[mttd.Sample("a", "x", 4.0, "A", 10.0), mttd.Sample("b", "y", None, note="none"),
                                  mttd.Sample("c", "z", 25.0, "C", None, "not resolved")],
                         false_alerts=[{"alertname": "Noise"}])
        problems = mttd.check(s)
        self.assertEqual(len(problems), 5, problems)   # missed, unresolved, median, max, a false alert
        self.assertIn("median", " ".join(mttd.check(mttd.Summary(samples=[mttd.Sample("a", "x", 12.0, "A", 1.0)]))))
        self.assertEqual(mttd.check(mttd.Summary(samples=[mttd.Sample("a", "x", 4.0, "A", 1.0)])), [])
        self.assertIn("all", mttd.table(s.samples))

    def test_a_region_fault_is_detected_only_by_an_alert_about_that_region(self):
        from continuum_ops import faults
        f = faults.NodesStopped("us-west")
        self.assertTrue(f.matches({"alertname": "PortalRegionDown", "labels": {"region": "us-west"}}))
        self.assertFalse(f.matches({"alertname": "PortalRegionDown", "labels": {"region": "us-east"}}))
        self.assertFalse(f.matches({"alertname": "PortalRegionDown", "labels": {}}))
        self.assertFalse(f.matches({"alertname": "JourneyFailingFromMultipleVantages", "labels": {}}))
        p = faults.PrimaryRegionKilled("us-east")
        self.assertTrue(p.matches({"alertname": "PatroniNoLeader", "labels": {}}))
        d = faults.DependencyFault("payments", "refuse")
        self.assertTrue(d.matches({"alertname": "DependencyDown", "labels": {"dependency": "payments"}}))
        self.assertFalse(d.matches({"alertname": "DependencyDown", "labels": {"dependency": "sms"}}))
