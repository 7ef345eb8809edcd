"""Portal nodes: the generated parts of deploy/portal/continuum.toml.tmpl."""

from __future__ import annotations

from .topology import Region, Topology

DEPENDENCY_PORTS = {"payments": 4, "insurance": 3, "pharmacy": 2, "sms": 5}   # + stub base


# Two database roles (src/audit/README.md): OWNER_ROLE owns the database and runs
# migrate, seed, content load and synthetic-accounts; PORTAL_ROLE is what the portal
# nodes connect as (INSERT/SELECT only on the audit tables, no ownership).
OWNER_ROLE = "continuum"
PORTAL_ROLE = "continuum_portal"


def primary_url(topo: Topology, me: str, password: str, user: str = OWNER_ROLE,
                via_proxy: bool = False) -> str:
    """libpq multi-host string (`user`: the owner role unless told), hosts in preference
    order from `me`; libpq finds the primary (target_session_attrs=read-write).
    `via_proxy`: through each region's net-proxy (the portal nodes' path)."""
    pref = topo.preference(me)
    hosts = ",".join(r.host for r in pref)
    ports = ",".join(str(r.pg_proxy if via_proxy else r.pg) for r in pref)
    return (f"host={hosts} port={ports} dbname=continuum user={user} password={password} "
            f"target_session_attrs=read-write connect_timeout=2")


def region_url(r: Region, password: str, user: str = PORTAL_ROLE, via_proxy: bool = True) -> str:
    port = r.pg_proxy if via_proxy else r.pg
    return f"host={r.host} port={port} dbname=continuum user={user} password={password} connect_timeout=2"


def public_base_url(topo: Topology) -> str:
    """The edge's public URL (HAProxy's http port, + the port offset): every node's
    [server] public_base_url, so Location headers and FHIR links point at the edge, not at
    the node or at whatever Host a client sent."""
    return f"http://127.0.0.1:{topo.haproxy['http']}"


def topology_block(topo: Topology, me: str, password: str, user: str = PORTAL_ROLE) -> str:
    """The portal node's [topology] (read URLs as `user`: the portal role)."""
    out = "[topology]\nmax_replica_lag_ms = 5000\nprobe_interval_ms = 500\n"
    for r in topo.preference(me):
        out += f'\n[[topology.region]]\nname = "{r.name}"\ndatabase_url = "{region_url(r, password, user)}"\n'
    return out


def ehr_patients(patients: int) -> int:
    """The EHR stand-in holds the seeded population up to 20,000 patients (memory), else none."""
    return patients if patients <= 20000 else 0


def dependencies_block(topo: Topology, patients: int, with_deps: bool, ca_file: str) -> str:
    """TLS to every stand-in: https:// (SMTP: STARTTLS, required by the portal), verified
    against the cluster's own test CA (`ca_file`, made by scripts/test-ca in the state
    folder when the stand-ins start)."""
    if not with_deps:
        return ""
    b = topo.stub_base
    ca = f'ca_file = "{ca_file}"\n'
    out = ""
    for name, delta in DEPENDENCY_PORTS.items():
        out += f'[dependencies.{name}]\nurl = "https://{topo.service_host}:{b + delta}"\n{ca}\n'
    out += f'[dependencies.smtp]\nurl = "smtp://{topo.service_host}:{b + 25}"\n{ca}\n'
    if ehr_patients(patients):
        out += f'[dependencies.ehr]\nurl = "https://{topo.service_host}:{b + 1}"\n{ca}\n'
    return out
