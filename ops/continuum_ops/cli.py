"""`scripts/cluster` / `continuum cluster`: the local multi-region cluster.

  up                   start (idempotent: restarts only what is dead), migrate, seed when
                       empty, wait until every node is ready
  down                 stop: portal nodes, HAProxy, stand-ins, Patroni, etcd (by PID)
  destroy              down, then remove the state folder (and PostgreSQL's folders)
  status [--json]      regions, roles, lag, portal nodes, edge
  kill-region NAME     SIGKILL every process of region NAME at once
  start-region NAME    start region NAME again, wait until it streams and serves
  drill [ARGS]         failover drill (bench/drill) on this cluster

Options (every command): --state DIR (default <repo>/.state/cluster, where scripts/demo
  keeps it), --port-offset N (or CLUSTER_PORT_OFFSET; added to EVERY port; remembered in
  the state; every port must stay below the kernel's ephemeral range).
Environment: CONTINUUM_BIN (default <repo>/build/continuum), CLUSTER_PATIENTS (seed size,
  10000), CLUSTER_NO_TOPOLOGY=1|0, CLUSTER_TLS_PEM (edge certificate + key), UP_TIMEOUT,
  NODE_TIMEOUT, CLUSTER_NO_DEPS=1 (no stand-ins), STUB_BASE_PORT (9100).
"""

from __future__ import annotations

import argparse
import os
import sys

from .cluster import REPO, Cluster
from .util import ClusterError, log

COMMANDS = ("up", "down", "destroy", "status", "kill-region", "start-region", "drill")


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(prog="scripts/cluster", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=COMMANDS)
    p.add_argument("region", nargs="?")
    p.add_argument("--state", default=str(REPO / ".state" / "cluster"))
    p.add_argument("--port-offset", type=int, default=None)
    p.add_argument("--json", action="store_true")
    if argv and argv[0] == "drill":
        args, rest = p.parse_known_args(argv)
        if args.region:
            rest.insert(0, args.region)
            args.region = None
        return args, rest
    return p.parse_args(argv), []


def main(argv: list[str] | None = None) -> int:
    args, rest = parse(sys.argv[1:] if argv is None else argv)
    offset = args.port_offset
    if offset is None and os.environ.get("CLUSTER_PORT_OFFSET", "").strip():
        offset = int(os.environ["CLUSTER_PORT_OFFSET"])
    if args.command in ("kill-region", "start-region") and not args.region:
        print(f"scripts/cluster: {args.command} needs a region name", file=sys.stderr)
        return 2
    if args.region and args.command not in ("kill-region", "start-region"):
        print(f"scripts/cluster: unknown argument: {args.region}", file=sys.stderr)
        return 2
    try:
        c = Cluster(args.state, offset)
        if args.command == "up":
            c.up()
        elif args.command == "down":
            c.down()
        elif args.command == "destroy":
            c.destroy()
        elif args.command == "status":
            c.print_status(args.json)
        elif args.command == "kill-region":
            c.kill_region(args.region)
        elif args.command == "start-region":
            c.start_region(args.region)
        elif args.command == "drill":
            a = [str(REPO / "bench" / "drill"), "--state", str(c.state)]
            if offset is not None or c.env_file.exists():
                a += ["--port-offset", str(c.offset)]
            os.execv(a[0], a + rest)
    except ClusterError as e:
        log(f"error: {e}")
        return 1
    except KeyError as e:
        log(f"error: {e.args[0]}")
        return 1
    except ValueError as e:
        log(f"error: {e}")
        return 1
    return 0
