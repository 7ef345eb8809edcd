"""Topology and port plan of the local cluster: regions, nodes, every listening port.

Decisions live here, as pure functions over deploy/regions.conf and the port offset, so
that they can be unit-tested: which ports a cluster listens on, whether one of them lies in
the kernel's ephemeral port range (where any outgoing connection may hold it for a moment),
a region's fallback order, and the names of its portal nodes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .netns import Plan as NetnsPlan

# Ports besides deploy/regions.conf (each + the port offset). Every base port lies below
# 32768, the start of Linux's default ephemeral range; with the offset, `check_ports` keeps
# every port below the range the kernel actually uses (ip_local_port_range).
HAPROXY_PORTS = {"pg_primary": 15432, "pg_replicas": 15433, "stats": 7000, "stats2": 7001, "http": 8080,
                 "https": 8443}   # stats2: the second edge instance's (haproxy.EDGE_INSTANCES)
STUB_BASE_PORT = 9100          # continuum stub-deps: admin; ehr +1 ... sms +5, smtp +25
STUB_PORT_DELTAS = (0, 1, 2, 3, 4, 5, 25)
MAX_OFFSET = 10000
# The monitoring stack (deploy/prometheus, deploy/alertmanager; `continuum probe`).
# Prometheus and Alertmanager on their usual ports; node exporter off its usual 9100
# (stub-deps' admin port); the prober's own /metrics and alert log receiver.
MONITORING_PORTS = {"prometheus": 9090, "alertmanager": 9093, "node_exporter": 9180, "blackbox": 9115,
                    "prober": 9140}
POSTGRES_EXPORTER_BASE = 9187   # one per region: 9187, 9188, ...
# Release slots (`continuum rollout`): slot "a" is the node ports of regions.conf, slot "b"
# the same ports + SLOT_B_DELTA. One slot serves (the live release); a rollout starts the
# new release in the other slot beside it, and when it reaches 100% the other slot becomes
# the live one. Nodes are named by position across both slots: with two nodes per region,
# slot a is <region>-a, -b and slot b <region>-c, -d.
SLOTS = ("a", "b")
SLOT_B_DELTA = 50
# `continuum net-proxy` in front of each region's PostgreSQL, on the portal nodes' path to it
# (Region.pg_proxy = postgres + NET_PROXY_DELTA; its admin API on postgres + NET_PROXY_ADMIN_DELTA):
# the chaos experiments' slow or broken network between the portal and a database. Patroni's
# replication, HAProxy's routing and the tools connect to PostgreSQL directly.
NET_PROXY_DELTA = 20
NET_PROXY_ADMIN_DELTA = 30


@dataclass
class Node:
    name: str          # <region>-a, <region>-b, ...
    region: str
    host: str
    port: int


@dataclass
class Region:
    name: str
    host: str
    etcd_client: int
    etcd_peer: int
    rest: int
    pg: int
    nodes: list[Node] = field(default_factory=list)         # the live slot's nodes
    other_nodes: list[Node] = field(default_factory=list)   # the other slot's (a rollout's new release)

    @property
    def pg_proxy(self) -> int:
        """Where the portal nodes reach this region's PostgreSQL: its net-proxy."""
        return self.pg + NET_PROXY_DELTA

    @property
    def pg_proxy_admin(self) -> int:
        return self.pg + NET_PROXY_ADMIN_DELTA


def node_name(region: str, index: int) -> str:
    return f"{region}-{chr(ord('a') + index)}"


def slot_nodes(region: str, host: str, ports: list[int], slot: str) -> list[Node]:
    """The portal nodes of `region` in release slot `slot` (see SLOTS)."""
    if slot not in SLOTS:
        raise ValueError(f"unknown release slot {slot!r} (one of {', '.join(SLOTS)})")
    k = SLOTS.index(slot)
    return [Node(node_name(region, k * len(ports) + i), region, host, p + k * SLOT_B_DELTA)
            for i, p in enumerate(ports)]


def other_slot(slot: str) -> str:
    return SLOTS[1 - SLOTS.index(slot)]


def parse_regions(text: str, offset: int = 0, host: str = "127.0.0.1", slot: str = "a",
                  hosts: dict[str, str] | None = None) -> list[Region]:
    """deploy/regions.conf: name etcd_client etcd_peer patroni_rest postgres node_port...
    `slot`: the live release slot (its nodes are Region.nodes, the other's other_nodes).
    `hosts`: a region's own address (network namespaces), else every region on `host`."""
    regions: list[Region] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        if len(f) < 6:
            raise ValueError(f"regions.conf line {lineno}: need name, 4 ports and at least one portal "
                             f"node port, got {line.strip()!r}")
        try:
            ports = [int(x) for x in f[1:]]
        except ValueError:
            raise ValueError(f"regions.conf line {lineno}: ports must be numbers: {line.strip()!r}") from None
        rhost = (hosts or {}).get(f[0], host)
        r = Region(f[0], rhost, *(p + offset for p in ports[:4]))
        if len(ports) - 4 > 13:
            raise ValueError(f"regions.conf line {lineno}: at most 13 portal nodes per region")
        base = [p + offset for p in ports[4:]]
        r.nodes = slot_nodes(r.name, rhost, base, slot)
        r.other_nodes = slot_nodes(r.name, rhost, base, other_slot(slot))
        regions.append(r)
    names = [r.name for r in regions]
    if len(set(names)) != len(names):
        raise ValueError("regions.conf: a region is listed twice")
    if len(regions) < 3:
        raise ValueError("regions.conf must list at least 3 regions")
    return regions


def region_names(text: str) -> list[str]:
    """The region names of deploy/regions.conf, in order."""
    return [line.split()[0] for line in text.splitlines() if line.split() and not line.split()[0].startswith("#")]


def preference(names: list[str], me: str) -> list[str]:
    """`me` first, then the other regions by distance in the list (ties: the earlier)."""
    idx = names.index(me)
    out = [me]
    for d in range(1, len(names)):
        for j in (idx - d, idx + d):
            if 0 <= j < len(names):
                out.append(names[j])
    return out


def ephemeral_range(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in Path(path).read_text().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def reserved_ports(path: str = "/proc/sys/net/ipv4/ip_local_reserved_ports") -> set[int]:
    """Ports the kernel never hands out as ephemeral ones (sysctl ip_local_reserved_ports)."""
    out: set[int] = set()
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return out
    for part in filter(None, text.split(",")):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


class Topology:
    """Every component's address for one cluster (one state folder, one port offset)."""

    def __init__(self, regions_text: str, offset: int = 0, stub_base: int | None = None, slot: str = "a",
                 netns: int | None = None):
        if not 0 <= offset <= MAX_OFFSET:
            raise ValueError(f"--port-offset must be 0..{MAX_OFFSET}")
        self.offset = offset
        self.slot = slot
        # netns: the regions in network namespaces of their own (netns.py), each on its own
        # address; None: every region on the loopback address
        self.netns = NetnsPlan(netns, tuple(region_names(regions_text))) if netns else None
        hosts = {r: self.netns.address(r) for r in self.netns.regions} if self.netns else None
        self.regions = parse_regions(regions_text, offset, slot=slot, hosts=hosts)
        self.haproxy = {k: v + offset for k, v in HAPROXY_PORTS.items()}
        self.stub_base = (stub_base if stub_base is not None else STUB_BASE_PORT) + offset
        self.monitoring = {k: v + offset for k, v in MONITORING_PORTS.items()}

    @property
    def service_host(self) -> str:
        """Where the processes outside the regions that the regions call (the stand-ins,
        Prometheus) listen: the bridge's address with namespaces, else loopback."""
        return self.netns.gateway if self.netns else "127.0.0.1"

    @property
    def client_net(self) -> str:
        """The addresses PostgreSQL accepts password logins from (pg_hba)."""
        return self.netns.subnet if self.netns else "127.0.0.1/32"

    def enter(self, region: str) -> list[str]:
        """argv prefix that starts a program of `region` inside its namespace ([] without)."""
        return self.netns.enter(region) if self.netns else []

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.regions]

    def region(self, name: str) -> Region:
        for r in self.regions:
            if r.name == name:
                return r
        raise KeyError(f"unknown region {name} ({', '.join(self.names)})")

    @property
    def nodes(self) -> list[Node]:
        return [n for r in self.regions for n in r.nodes]

    @property
    def other_nodes(self) -> list[Node]:
        """The nodes of the slot that does not serve (where a rollout starts the new release)."""
        return [n for r in self.regions for n in r.other_nodes]

    def node(self, name: str) -> Node:
        """A node of either slot by name."""
        for n in self.nodes + self.other_nodes:
            if n.name == name:
                return n
        raise KeyError(f"unknown portal node {name} ({', '.join(n.name for n in self.nodes)})")

    def preference(self, me: str) -> list[Region]:
        return [self.region(n) for n in preference(self.names, me)]

    def postgres_exporter_ports(self) -> list[int]:
        return [POSTGRES_EXPORTER_BASE + self.offset + i for i in range(len(self.regions))]

    def stub_ports(self) -> list[int]:
        return [self.stub_base + d for d in STUB_PORT_DELTAS]

    def ports(self) -> list[tuple[int, str]]:
        """Every port this cluster listens on, with what listens there."""
        out = [(p, f"haproxy {k}") for k, p in self.haproxy.items()]
        out += [(p, "stub-deps") for p in self.stub_ports()]
        out += [(p, k.replace("_", " ")) for k, p in self.monitoring.items()]
        out += [(p, f"postgres exporter {r.name}") for r, p in zip(self.regions, self.postgres_exporter_ports())]
        for r in self.regions:
            out += [(r.etcd_client, f"etcd {r.name} client"), (r.etcd_peer, f"etcd {r.name} peer"),
                    (r.rest, f"patroni {r.name} REST"), (r.pg, f"postgres {r.name}"),
                    (r.pg_proxy, f"net-proxy {r.name} (postgres)"), (r.pg_proxy_admin, f"net-proxy {r.name} admin")]
            out += [(n.port, f"portal node {n.name}") for n in r.nodes + r.other_nodes]
        return out


def port_problems(ports: list[tuple[int, str]], eph: tuple[int, int], reserved: set[int]) -> list[str]:
    """Sentences for every port that must not be used: duplicates, out of range, or inside the
    kernel's ephemeral range (a passing client socket may hold it: bind fails at random)."""
    problems = []
    seen: dict[int, str] = {}
    lo, hi = eph
    for p, what in ports:
        if p in seen:
            problems.append(f"port {p} is planned twice ({seen[p]} and {what})")
        seen[p] = what
        if not 1 <= p <= 65535:
            problems.append(f"port {p} ({what}) is not a valid port")
        elif lo <= p <= hi and p not in reserved:
            problems.append(f"port {p} ({what}) lies in the kernel's ephemeral port range {lo}-{hi} "
                            f"(net.ipv4.ip_local_port_range), where outgoing connections take their local "
                            f"ports: it would be taken at random")
    return problems


def max_offset(ports_at_zero: list[tuple[int, str]], eph: tuple[int, int]) -> int:
    """The largest port offset that keeps every port below the ephemeral range."""
    return max(0, eph[0] - 1 - max(p for p, _ in ports_at_zero))


def listening_ports(proc: str = "/proc/net") -> set[int]:
    """TCP ports something LISTENs on (any address, IPv4 and IPv6): a listener, not a client
    socket that happens to hold the port as its local end."""
    out: set[int] = set()
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(os.path.join(proc, name)).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) > 3 and f[3] == "0A":     # TCP_LISTEN
                out.add(int(f[1].rsplit(":", 1)[1], 16))
    return out
