"""Regions in Linux network namespaces (opt-in: CLUSTER_NETNS=1 at a cluster's first `up`).

On one machine the three regions normally share the loopback address and differ by port.
Then no network fault between regions is possible: every process reaches every other.
With namespaces each region is a host of its own: its etcd, Patroni + PostgreSQL, net-proxy
and portal nodes run inside the namespace `ctm<k>-<region>` and listen on its address
10.231.<k>.<11+i>; a veth pair joins every namespace to a bridge `ctmbr<k>` in the root
namespace, whose address 10.231.<k>.1 is where the regions reach what stays outside (the
stand-ins of the external services, Prometheus), and where the edge (HAProxy), the
monitoring stack, the tools and the tests reach the regions from. Configs name every host
by address, as they would on three machines; the cluster works the same either way.

A partition (chaos fault `partition-region`) is an nftables table inside one region's
namespace that drops what goes to (and/or comes from) the other regions' addresses; the
bridge address (the edge, the monitoring, the stand-ins) stays reachable, as a region cut
off from its peers by a broken inter-region link would still be reachable by its users.

`k` (1..250) is chosen at the first `up` (the lowest whose bridge does not exist and whose
subnet no interface uses) and recorded in the state folder's cluster.env; `destroy` removes
the namespaces and the bridge.

Pure parts (names, addresses, the nftables ruleset) are tested in ops/tests/test_netns.py.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .util import ClusterError, log

SUBNET = "10.231.{k}.0/24"
NFT_TABLE = "continuum_partition"
DIRECTIONS = ("both", "outbound", "inbound")
IP = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "/sbin/ip"
NFT = "/usr/sbin/nft"
NSENTER = "/usr/bin/nsenter"


@dataclass(frozen=True)
class Plan:
    k: int
    regions: tuple[str, ...]

    def __post_init__(self):
        if not 1 <= self.k <= 250:
            raise ValueError(f"network namespace index {self.k} must be 1..250")

    @property
    def subnet(self) -> str:
        return SUBNET.format(k=self.k)

    @property
    def gateway(self) -> str:
        """The bridge's address in the root namespace."""
        return f"10.231.{self.k}.1"

    @property
    def bridge(self) -> str:
        return f"ctmbr{self.k}"

    def address(self, region: str) -> str:
        return f"10.231.{self.k}.{11 + self.regions.index(region)}"

    def namespace(self, region: str) -> str:
        return f"ctm{self.k}-{region}"

    def veth(self, region: str) -> tuple[str, str]:
        """(root side, namespace side): at most 15 characters each (IFNAMSIZ)."""
        i = self.regions.index(region)
        return f"ctm{self.k}h{i}", f"ctm{self.k}n{i}"

    def enter(self, region: str) -> list[str]:
        """argv prefix that runs a program inside the region's namespace (nsenter execs: the
        PID stays the program's own; only the network namespace changes)."""
        return [NSENTER, f"--net=/run/netns/{self.namespace(region)}", "--"]


def partition_ruleset(peers: list[str], direction: str) -> str:
    """The nftables table (loaded inside the partitioned region's namespace) that drops its
    traffic with `peers` (the other regions' addresses): `both` ways, `outbound` only (what
    it sends is lost: its TCP connections to and from them fail both ways, yet their
    packets still arrive), or `inbound` only."""
    if direction not in DIRECTIONS:
        raise ValueError(f"partition direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    if not peers:
        raise ValueError("a partition needs at least one peer address")
    for p in peers:
        ipaddress.IPv4Address(p)   # raises on anything else: the text goes to nft as it is
    elems = ", ".join(peers)
    out = [f"table inet {NFT_TABLE} {{", f"  set peers {{ type ipv4_addr; elements = {{ {elems} }} }}"]
    if direction in ("both", "inbound"):
        out.append("  chain input { type filter hook input priority -10; policy accept; ip saddr @peers drop; }")
    if direction in ("both", "outbound"):
        out.append("  chain output { type filter hook output priority -10; policy accept; ip daddr @peers drop; }")
    out.append("}")
    return "\n".join(out) + "\n"


def _run(argv: list[str], check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=30, input=stdin)
    if check and cp.returncode != 0:
        raise ClusterError(f"{' '.join(argv)} failed: {cp.stderr.strip()[:400]}")
    return cp


def links() -> set[str]:
    cp = _run([IP, "-o", "link", "show"], check=False)
    return {line.split(":")[1].strip().split("@")[0] for line in cp.stdout.splitlines() if ":" in line}


def subnet_in_use(k: int) -> bool:
    cp = _run([IP, "-o", "-4", "addr", "show"], check=False)
    net = ipaddress.ip_network(SUBNET.format(k=k))
    for line in cp.stdout.splitlines():
        f = line.split()
        if "inet" in f:
            if ipaddress.ip_interface(f[f.index("inet") + 1]).ip in net:
                return True
    return False


def choose_index() -> int:
    have = links()
    for k in range(1, 251):
        if f"ctmbr{k}" not in have and not subnet_in_use(k) and not any(
                Path("/run/netns").glob(f"ctm{k}-*")):
            return k
    raise ClusterError("no free network namespace index (ctmbr1..ctmbr250 all exist)")


def setup(plan: Plan) -> None:
    """Bridge, namespaces, veth pairs, addresses; idempotent (a later `up` finds them)."""
    for b, pkg in ((NSENTER, "util-linux"), (IP, "iproute2"), (NFT, "nftables")):
        if not os.access(b, os.X_OK):
            raise ClusterError(f"{b} is needed for CLUSTER_NETNS (Debian package {pkg}: scripts/setup)")
    have = links()
    if plan.bridge not in have:
        _run([IP, "link", "add", plan.bridge, "type", "bridge"])
    # Traffic between the namespaces crosses the bridge: where br_netfilter is loaded (Docker
    # hosts), it would pass iptables' FORWARD chain (often DROP). This bridge opts out.
    _run([IP, "link", "set", plan.bridge, "type", "bridge", "nf_call_iptables", "0", "nf_call_ip6tables", "0",
          "nf_call_arptables", "0"], check=False)
    addrs = _run([IP, "-o", "-4", "addr", "show", "dev", plan.bridge]).stdout
    if f" {plan.gateway}/" not in addrs:
        _run([IP, "addr", "add", f"{plan.gateway}/24", "dev", plan.bridge])
    _run([IP, "link", "set", plan.bridge, "up"])
    for r in plan.regions:
        ns = plan.namespace(r)
        host, inner = plan.veth(r)
        if not Path(f"/run/netns/{ns}").exists():
            _run([IP, "netns", "add", ns])
        if host not in have:
            _run([IP, "link", "add", host, "type", "veth", "peer", "name", inner, "netns", ns])
        _run([IP, "link", "set", host, "master", plan.bridge, "up"])
        inside = _run([IP, "-n", ns, "-o", "-4", "addr", "show", "dev", inner]).stdout
        if f" {plan.address(r)}/" not in inside:
            _run([IP, "-n", ns, "addr", "add", f"{plan.address(r)}/24", "dev", inner])
        _run([IP, "-n", ns, "link", "set", inner, "up"])
        _run([IP, "-n", ns, "link", "set", "lo", "up"])
    log(f"network namespaces: {', '.join(f'{plan.namespace(r)} {plan.address(r)}' for r in plan.regions)}; "
        f"bridge {plan.bridge} {plan.gateway}/24")


def teardown(plan: Plan) -> None:
    """Namespaces (their veth ends and nftables tables go with them), then the bridge."""
    for r in plan.regions:
        if Path(f"/run/netns/{plan.namespace(r)}").exists():
            _run([IP, "netns", "del", plan.namespace(r)], check=False)
        host, _ = plan.veth(r)
        _run([IP, "link", "del", host], check=False)   # gone already with its peer, normally
    if plan.bridge in links():
        _run([IP, "link", "del", plan.bridge], check=False)


def partition(plan: Plan, region: str, direction: str) -> None:
    peers = [plan.address(r) for r in plan.regions if r != region]
    text = partition_ruleset(peers, direction)
    unpartition(plan, region)
    _run(plan.enter(region) + [NFT, "-f", "-"], stdin=text)


def unpartition(plan: Plan, region: str) -> None:
    """Idempotent: no table, nothing to do (also when the namespace is gone)."""
    if not Path(f"/run/netns/{plan.namespace(region)}").exists():
        return
    if partitioned(plan, region):
        _run(plan.enter(region) + [NFT, "delete", "table", "inet", NFT_TABLE])


def partitioned(plan: Plan, region: str) -> bool:
    if not Path(f"/run/netns/{plan.namespace(region)}").exists() or not os.access(NFT, os.X_OK):
        return False
    cp = _run(plan.enter(region) + [NFT, "list", "tables"], check=False)
    return f"inet {NFT_TABLE}" in cp.stdout
