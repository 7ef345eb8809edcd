"""HAProxy: the generated parts of deploy/haproxy/haproxy.cfg.tmpl and the runtime API."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from .topology import Topology


# The edge is redundant: two HAProxy instances with the same configuration bind the same
# public ports (SO_REUSEPORT, HAProxy's default on Linux): the kernel spreads new connections
# over both, and when one dies every new connection goes to the survivor. Each has its own
# stats port, admin socket and server-state file; runtime changes go to both.
EDGE_INSTANCES = ("haproxy", "haproxy-2")


@dataclass
class Instance:
    name: str           # its process name under the supervisor
    cfg: Path
    admin_sock: Path
    server_state: Path
    stats_port: int


def instances(topo: Topology, haproxy_dir: Path) -> list[Instance]:
    out = []
    for i, name in enumerate(EDGE_INSTANCES):
        sfx = "" if i == 0 else f"-{i + 1}"
        out.append(Instance(name, haproxy_dir / f"{name}.cfg", haproxy_dir / f"admin{sfx}.sock",
                            haproxy_dir / f"server-state{sfx}", topo.haproxy["stats" if i == 0 else f"stats{i + 1}"]))
    return out


def template_values(topo: Topology, haproxy_dir: Path, tls_pem: Path,
                    canary: list[str] | None = None, instance: Instance | None = None) -> dict[str, object]:
    """`canary`: the other slot's nodes of a rollout in progress, listed at weight 0 (a
    reload during the rollout keeps them; their weights come back from the server-state
    file HAProxy saves before it reloads). `instance`: which edge instance (the first)."""
    inst = instance or instances(topo, haproxy_dir)[0]
    prim = repl = routes = backends = ""
    canary = canary or []
    for r in topo.regions:
        prim += f"    server {r.name} {r.host}:{r.pg} check port {r.rest}\n"
        repl += f"    server {r.name} {r.host}:{r.pg} check port {r.rest}\n"
        routes += f"    use_backend portal-{r.name} if {{ var(txn.region) -m str {r.name} }}\n"
        backends += f"backend portal-{r.name}\n"
        for x in topo.preference(r.name):
            for n in x.nodes:
                backends += f"    server {n.name} {n.host}:{n.port} check{'' if x is r else ' backup'}\n"
            for n in x.other_nodes:
                if n.name in canary:
                    backends += (f"    server {n.name} {n.host}:{n.port} check weight 0"
                                 f"{'' if x is r else ' backup'}\n")
        backends += "\n"
    return {
        "HAPROXY_DIR": haproxy_dir,
        "HAPROXY_ADMIN_SOCK": inst.admin_sock,
        "HAPROXY_SERVER_STATE": inst.server_state,
        "HAPROXY_STATS_PORT": inst.stats_port,
        "HAPROXY_PG_PRIMARY_PORT": topo.haproxy["pg_primary"],
        "HAPROXY_PG_REPLICA_PORT": topo.haproxy["pg_replicas"],
        "HAPROXY_HTTP_PORT": topo.haproxy["http"],
        "HAPROXY_HTTPS_PORT": topo.haproxy["https"],
        "EDGE_TLS_PEM": tls_pem,
        "DEFAULT_REGION": topo.regions[0].name,
        "REGION_NAMES": " ".join(topo.names),
        "EDGE_ROUTES": routes.rstrip("\n"),
        "EDGE_BACKENDS": backends,
        "PG_PRIMARY_SERVERS": prim,
        "PG_REPLICA_SERVERS": repl,
    }


def runtime(sock: Path, command: str, timeout: float = 5.0) -> str:
    """One command on the runtime API (admin socket); its answer."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(str(sock))
        s.sendall(command.encode() + b"\n")
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    return out.decode()


def parse_servers_state(text: str) -> list[dict]:
    """`show servers state` -> [{backend, server, addr, op, admin, weight, iweight, port}].
    Format 1: a version line, a `#` header naming the columns, one line per server."""
    cols: list[str] = []
    out = []
    for line in text.splitlines():
        if line.startswith("#"):
            cols = line[1:].split()
            continue
        f = line.split()
        if not cols or len(f) < len(cols) or len(f) < 9:
            continue
        d = dict(zip(cols, f))
        try:
            out.append({"backend": d["be_name"], "server": d["srv_name"], "addr": d["srv_addr"],
                        "op": int(d["srv_op_state"]), "admin": int(d["srv_admin_state"]),
                        "weight": int(d["srv_uweight"]), "iweight": int(d["srv_iweight"]),
                        "port": int(d.get("srv_port", "0") or 0)})
        except (KeyError, ValueError):
            continue
    return out


def parse_stat(text: str) -> dict[str, dict[str, int]]:
    """`show stat` (CSV) -> {server: {backend: current sessions}} (servers only)."""
    cols: list[str] = []
    out: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        if line.startswith("# "):
            cols = line[2:].split(",")
            continue
        f = line.split(",")
        if not cols or len(f) < 5:
            continue
        d = dict(zip(cols, f))
        if d.get("svname") in ("FRONTEND", "BACKEND"):
            continue
        try:
            out.setdefault(d["svname"], {})[d["pxname"]] = int(d.get("scur") or 0)
        except (KeyError, ValueError):
            continue
    return out


# srv_admin_state bits that take a server out of service: FMAINT IMAINT CMAINT RMAINT HMAINT
MAINT_BITS = 0x01 | 0x02 | 0x04 | 0x20 | 0x40
SRV_RUNNING = 2      # srv_op_state: UP


def portal_servers(state_text: str) -> dict[str, dict[str, dict]]:
    """`show servers state` -> {backend: {server: {weight, admin, op, port, ...}}} of the
    portal-* backends."""
    out: dict[str, dict[str, dict]] = {}
    for s in parse_servers_state(state_text):
        if s["backend"].startswith("portal-"):
            out.setdefault(s["backend"], {})[s["server"]] = s
    return out


class Runtime:
    """The edge's runtime API for the portal backends (a node is a server in every one of
    them: its region's, and a backup in the others)."""

    OK_ANSWERS = ("", "New server registered.", "Server deleted.")

    def __init__(self, raw, raw_each=None):
        self.raw = raw          # command -> answer text (a change goes to every edge instance)
        self.raw_each = raw_each or (lambda command: [raw(command)])   # command -> every instance's answer

    def cmd(self, command: str) -> str:
        """A command whose success is a known answer (most answer nothing); anything else
        is HAProxy's refusal, raised with its words."""
        out = self.raw(command)
        if out.strip() not in self.OK_ANSWERS:
            raise RuntimeError(f"haproxy runtime API refused `{command}`: {out.strip()}")
        return out

    def servers(self) -> dict[str, dict[str, dict]]:
        return portal_servers(self.raw("show servers state"))

    @staticmethod
    def backends_of(servers: dict, name: str) -> list[str]:
        return [be for be, ss in servers.items() if name in ss]

    def sessions(self, name: str) -> int:
        """Current sessions on server `name` over every backend of every edge instance
        (`show stat` scur)."""
        return sum(sum(parse_stat(t).get(name, {}).values()) for t in self.raw_each("show stat"))

    def set_state(self, name: str, state: str) -> list[str]:
        """`set server <backend>/<name> state <state>` in every portal backend that has it
        (ready | drain | maint); the backends."""
        servers = self.servers()
        bes = self.backends_of(servers, name)
        for be in bes:
            self.cmd(f"set server {be}/{name} state {state}")
        return bes

    def up_in_own_backend(self, name: str, region: str) -> bool:
        s = self.servers().get(f"portal-{region}", {}).get(name)
        return bool(s) and s["op"] == SRV_RUNNING and not s["admin"] & MAINT_BITS
