"""The monitoring stack beside the cluster: Prometheus, Alertmanager, node and blackbox
exporters (Debian's packages, our own instances with their data in the state folder), and
`continuum probe` (synthetic journeys from every vantage point).

Pure parts (targets, vantages, webhook receivers) are functions of the topology, tested in
ops/tests; the Cluster class starts and stops the processes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .topology import Topology

PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
POSTGRES_EXPORTER = "/usr/bin/prometheus-postgres-exporter"
BINARIES = (PROMETHEUS, ALERTMANAGER, NODE_EXPORTER, BLACKBOX, POSTGRES_EXPORTER)


def file_sd(targets: list[tuple[str, dict]]) -> str:
    """Prometheus file_sd JSON: one group per target, with its labels."""
    return json.dumps([{"targets": [t], "labels": labels} for t, labels in targets], indent=1) + "\n"


def scrape_targets(topo: Topology, with_deps: bool) -> dict[str, list[tuple[str, dict]]]:
    """file name -> targets, for deploy/prometheus/prometheus.yml.tmpl's file_sd jobs."""
    m = topo.monitoring
    out: dict[str, list[tuple[str, dict]]] = {
        "portal.json": [(f"{n.host}:{n.port}", {"region": n.region, "node": n.name}) for n in topo.nodes],
        "prober.json": [(f"127.0.0.1:{m['prober']}", {})],
        "patroni.json": [(f"{r.host}:{r.rest}", {"region": r.name}) for r in topo.regions],
        "etcd.json": [(f"{r.host}:{r.etcd_client}", {"region": r.name}) for r in topo.regions],
        "haproxy.json": [(f"127.0.0.1:{topo.haproxy[k]}", {"edge": n}) for k, n in
                         (("stats", "haproxy"), ("stats2", "haproxy-2"))],
        "node.json": [(f"127.0.0.1:{m['node_exporter']}", {})],
        "postgres_exporter.json": [(f"127.0.0.1:{p}", {"region": r.name})
                                   for r, p in zip(topo.regions, topo.postgres_exporter_ports())],
        # TLS endpoints whose certificates the blackbox exporter reads (expiry)
        "tls.json": [(f"127.0.0.1:{topo.haproxy['https']}", {"component": "edge"})],
    }
    return out


def prometheus_values(topo: Topology, mon_dir: Path, deploy: Path, ops_token_file: Path) -> dict[str, object]:
    """The placeholders of deploy/prometheus/prometheus.yml.tmpl. OPS_TOKEN_FILE is the file the
    portal nodes read as [ops] token_file: Prometheus sends it as a bearer token when it
    scrapes their /metrics (it runs as the launcher's user, who owns the 0600 file)."""
    m = topo.monitoring
    return {"TARGETS_DIR": mon_dir / "prometheus" / "targets", "RULES_DIR": deploy / "prometheus" / "rules",
            "ALERTMANAGER": f"127.0.0.1:{m['alertmanager']}", "BLACKBOX": f"127.0.0.1:{m['blackbox']}",
            "TLS_TARGETS_FILE": mon_dir / "prometheus" / "targets" / "tls.json",
            "OPS_TOKEN_FILE": ops_token_file}


def vantages(topo: Topology, edge_url: str) -> list[dict]:
    """The prober's vantage points: the edge, and each region's nodes directly."""
    out = [{"name": "edge", "urls": [edge_url]}]
    for r in topo.regions:
        out.append({"name": r.name, "urls": [f"http://{n.host}:{n.port}" for n in r.nodes]})
    return out


def webhook_configs(topo: Topology) -> str:
    """Alertmanager webhook receivers (`webhook_configs` items, indented by 4): the portal
    through the edge and one node of each region directly (the edge may be what is broken;
    the portal stores each alert once, idempotent per fingerprint, start and status), and the
    prober's alert log (a record that needs neither the portal nor its database)."""
    urls = [f"http://127.0.0.1:{topo.haproxy['http']}/api/v1/ops/alerts"]
    urls += [f"http://{r.nodes[0].host}:{r.nodes[0].port}/api/v1/ops/alerts" for r in topo.regions]
    urls.append(f"http://127.0.0.1:{topo.monitoring['prober']}/alerts")
    lines = []
    for u in urls:
        lines += [f"    - url: '{u}'", "      send_resolved: true"]
    return "\n".join(lines)


def folder_info(folders: list[tuple[str, str, str]]) -> str:
    """node exporter textfile: which filesystem each data folder lives on, so that disk
    rules can name the folder (kind: postgres|etcd|audit|prometheus; region or node)."""
    out = ["# HELP continuum_data_folder_info A Continuum data folder and the mount point it lives on.",
           "# TYPE continuum_data_folder_info gauge"]
    for kind, owner, path in folders:
        out.append(f'continuum_data_folder_info{{kind="{kind}",owner="{owner}",path="{path}",'
                   f'mountpoint="{mountpoint(path)}"}} 1')
    return "\n".join(out) + "\n"


def mountpoint(path: str) -> str:
    p = os.path.realpath(path)
    while not os.path.ismount(p):
        p = os.path.dirname(p)
    return p


CANARY_VANTAGE = "canary"


def probe_toml(topo: Topology, interval_s: float, journeys_dir: str, password_file: str, token_file: str,
               alerts_log: str, canary_urls: list[str] | None = None) -> str:
    """`continuum probe` configuration: every vantage, reports to the portal through the edge,
    the alert log receiver. `canary_urls`: a rollout's new nodes, as one more vantage
    (CANARY_VANTAGE) whose journeys the rollout's judge counts."""
    m = topo.monitoring
    out = [
        "# rendered by scripts/cluster (ops/continuum_ops/monitoring.py); see deploy/probe/README.md",
        "[probe]", 'listen_address = "127.0.0.1"', f"listen_port = {m['prober']}",
        f"interval_s = {interval_s:g}", f'journeys_dir = "{journeys_dir}"', "request_timeout_ms = 5000", "",
        "[report]", f'url = "http://127.0.0.1:{topo.haproxy["http"]}/api/v1/ops/journey-runs"',
        f'token_file = "{token_file}"', "timeout_ms = 2000", "",
        "[alerts]", f'log_file = "{alerts_log}"', f'token_file = "{token_file}"', ""]
    vs = vantages(topo, f"http://127.0.0.1:{topo.haproxy['http']}")
    if canary_urls:
        vs.append({"name": CANARY_VANTAGE, "urls": list(canary_urls)})
    for v in vs:
        urls = ", ".join(f'"{u}"' for u in v["urls"])
        out += ["[[vantage]]", f'name = "{v["name"]}"', f"base_urls = [{urls}]",
                f'password_file = "{password_file}"', ""]
    return "\n".join(out)
