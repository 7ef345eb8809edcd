"""Regions in network namespaces (continuum_ops/netns.py): names, addresses, the partition
ruleset, and the topology that follows. Pure parts only; tests/cluster/test_chaos.py runs a
cluster in namespaces and partitions it for real. Run: python3 -m unittest discover -s ops/tests"""

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from continuum_ops import monitoring, netns, portal  # noqa: E402
from continuum_ops.topology import Topology  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CONF = (REPO / "deploy" / "regions.conf").read_text()
REGIONS = ("us-east", "us-central", "us-west")


class PlanTest(unittest.TestCase):
    def test_names_and_addresses(self):
        p = netns.Plan(7, REGIONS)
        self.assertEqual(p.subnet, "10.231.7.0/24")
        self.assertEqual(p.gateway, "10.231.7.1")
        self.assertEqual([p.address(r) for r in REGIONS], ["10.231.7.11", "10.231.7.12", "10.231.7.13"])
        self.assertEqual(p.namespace("us-west"), "ctm7-us-west")
        self.assertEqual(p.enter("us-west"), [netns.NSENTER, "--net=/run/netns/ctm7-us-west", "--"])
        for r in REGIONS:   # interface names fit IFNAMSIZ (15 characters) at the largest index
            self.assertTrue(all(len(n) <= 15 for n in netns.Plan(250, REGIONS).veth(r)))
        self.assertLessEqual(len(netns.Plan(250, REGIONS).bridge), 15)

    def test_index_out_of_range_is_refused(self):
        for k in (0, 251):
            with self.assertRaises(ValueError):
                netns.Plan(k, REGIONS)


class RulesetTest(unittest.TestCase):
    PEERS = ["10.231.7.12", "10.231.7.13"]

    def test_both_ways_drops_in_and_out(self):
        text = netns.partition_ruleset(self.PEERS, "both")
        self.assertIn(f"table inet {netns.NFT_TABLE}", text)
        self.assertIn("elements = { 10.231.7.12, 10.231.7.13 }", text)
        self.assertIn("hook input", text)
        self.assertIn("ip saddr @peers drop", text)
        self.assertIn("hook output", text)
        self.assertIn("ip daddr @peers drop", text)

    def test_one_way(self):
        out = netns.partition_ruleset(self.PEERS, "outbound")
        self.assertIn("ip daddr @peers drop", out)
        self.assertNotIn("hook input", out)
        inb = netns.partition_ruleset(self.PEERS, "inbound")
        self.assertIn("ip saddr @peers drop", inb)
        self.assertNotIn("hook output", inb)

    def test_refusals(self):
        with self.assertRaises(ValueError):
            netns.partition_ruleset(self.PEERS, "sideways")
        with self.assertRaises(ValueError):
            netns.partition_ruleset([], "both")
        with self.assertRaises(ValueError):   # nothing but addresses reaches nft
            netns.partition_ruleset(["10.0.0.1; flush ruleset"], "both")


class TopologyInNamespacesTest(unittest.TestCase):
    def test_every_region_on_its_own_address_and_the_services_on_the_bridge(self):
        t = Topology(CONF, 300, netns=7)
        self.assertEqual([r.host for r in t.regions], ["10.231.7.11", "10.231.7.12", "10.231.7.13"])
        self.assertTrue(all(n.host == t.region(n.region).host for n in t.nodes + t.other_nodes))
        self.assertEqual(t.service_host, "10.231.7.1")
        self.assertEqual(t.client_net, "10.231.7.0/24")
        self.assertEqual(t.enter("us-east")[-1], "--")
        # the portal's database URLs, dependencies and the prober's vantages name addresses
        url = portal.primary_url(t, "us-central", "pw", via_proxy=True)
        self.assertIn("host=10.231.7.12,10.231.7.11,10.231.7.13", url)
        self.assertIn("https://10.231.7.1:", portal.dependencies_block(t, 300, True, "/ca.pem"))
        vs = {v["name"]: v["urls"] for v in monitoring.vantages(t, "http://127.0.0.1:8380")}
        self.assertTrue(all(u.startswith("http://10.231.7.13:") for u in vs["us-west"]))

    def test_loopback_without_namespaces(self):
        t = Topology(CONF, 300)
        self.assertEqual({r.host for r in t.regions}, {"127.0.0.1"})
        self.assertEqual((t.service_host, t.client_net, t.enter("us-east")), ("127.0.0.1", "127.0.0.1/32", []))
        self.assertIn("https://127.0.0.1:", portal.dependencies_block(t, 300, True, "/ca.pem"))


if __name__ == "__main__":
    unittest.main()
