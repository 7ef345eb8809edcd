"""`scripts/cluster` / `continuum cluster`: the local multi-region cluster.

  up                   start (idempotent: restarts only what is dead), migrate, seed when
                       empty, wait until every node is ready
  down                 stop: portal nodes, HAProxy, stand-ins, Patroni, etcd (by PID)
  destroy [--kill]     down, then remove the state folder (and PostgreSQL's folders); --kill
                       skips the orderly stop and SIGKILLs every process of the cluster at
                       once (a throwaway test cluster: nothing in it is kept)
  status [--json]      regions, roles, lag, portal nodes, edge
  kill-region NAME     SIGKILL every process of region NAME at once
  start-region NAME    start region NAME again, wait until it streams and serves
  drill [ARGS]         failover drill (bench/drill) on this cluster
  restart-node NAME    drain portal node NAME at the edge, wait out its sessions, SIGTERM,
                       start it again, readmit it once ready (ops/continuum_ops/maintenance.py)
  rolling-restart      restart-node for every live portal node, one at a time
  pg-maintenance [--set PARAM=VALUE ...]
                       PostgreSQL by Patroni: optionally set parameters (PATCH /config), restart
                       the replicas one by one, switch over to the sync standby, restart the
                       old primary
  rollout --binary PATH [--overlay FILE] [--steps S] [--judge-interval S] [--ready-timeout S]
          [--on-inconclusive pause|advance|rollback] [--max-seconds S]
                       canary rollout of a new release (ops/continuum_ops/rollout.py): its
                       nodes start beside the live ones, traffic moves by HAProxy weights
                       (default steps 1:30m,5:5m,25:5m,50:5m,100), judged against the
                       baseline from Prometheus; a failing judgement rolls back
  rollout --resume | --abort | --command advance|resume|rollback|abort | --status [--json]
  chaos run FILE [--readers N] [--writers N]
                       a chaos experiment (ops/continuum_ops/chaos.py, deploy/chaos/*.json):
                       steady-state hypothesis checked before, during and after each fault
                       under the mixed load; faults reverted always (also on abort / Ctrl-C);
                       result in <state>/chaos/<id>.json, .txt and .html; exit 0 held, 3 broken
  chaos revert         revert what a dead controller left injected (the revert journal)
  chaos day [FILE ...] every experiment (default: all of deploy/chaos) in turn under one
                       steady load and one ledger of acknowledged writes; a day report
                       (<state>/chaos/day-<id>.json, .txt and .html) with the targets; exit 0 met, 3 not
  chaos list           the experiments in deploy/chaos

Options (every command): --state DIR (default <repo>/.state/cluster, where scripts/demo
  keeps it), --port-offset N (or CLUSTER_PORT_OFFSET; added to EVERY port; remembered in
  the state; every port must stay below the kernel's ephemeral range).
Environment: CONTINUUM_BIN (default <repo>/build/continuum), CLUSTER_PATIENTS (seed size,
  10000), CLUSTER_NO_TOPOLOGY=1|0, CLUSTER_TLS_PEM (edge certificate + key), UP_TIMEOUT,
  NODE_TIMEOUT, CLUSTER_NO_DEPS=1 (no stand-ins), STUB_BASE_PORT (9100).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .cluster import REPO, Cluster
from .util import ClusterError, log

COMMANDS = ("up", "down", "destroy", "status", "kill-region", "start-region", "drill", "rollout",
            "restart-node", "rolling-restart", "pg-maintenance", "chaos")


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(prog="scripts/cluster", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=COMMANDS)
    p.add_argument("region", nargs="?")
    p.add_argument("--state", default=str(REPO / ".state" / "cluster"))
    p.add_argument("--port-offset", type=int, default=None)
    p.add_argument("--json", action="store_true")
    p.add_argument("--kill", action="store_true", help="destroy: SIGKILL instead of an orderly down")
    p.add_argument("--set", action="append", default=[], dest="settings", metavar="PARAM=VALUE")
    r = p.add_argument_group("rollout")
    r.add_argument("--binary")
    r.add_argument("--overlay")
    r.add_argument("--steps")
    r.add_argument("--judge-interval", type=float)
    r.add_argument("--ready-timeout", type=float)
    r.add_argument("--on-inconclusive", choices=("pause", "advance", "rollback"))
    r.add_argument("--max-seconds", type=float)
    r.add_argument("--resume", action="store_true")
    r.add_argument("--abort", action="store_true")
    r.add_argument("--command", dest="rollout_command")
    r.add_argument("--status", action="store_true")
    if argv and argv[0] == "drill":
        args, rest = p.parse_known_args(argv)
        if args.region:
            rest.insert(0, args.region)
            args.region = None
        return args, rest
    return p.parse_args(argv), []


def rollout_cmd(c: Cluster, args: argparse.Namespace) -> int:
    from . import judge, rollout, rollout_plan
    modes = [bool(args.binary), args.resume, args.abort, bool(args.rollout_command), args.status]
    if sum(modes) != 1:
        log("error: rollout needs exactly one of --binary PATH, --resume, --abort, --command CMD, --status")
        return 2
    if args.status:
        st = rollout.status(c)
        print(json.dumps(st, indent=1) if args.json else (
            "no rollout in progress" if st is None else
            f"rollout {st.get('id')}: {st.get('phase')} at step {st.get('step')} ({st.get('percent')}%)"
            f" {st.get('reason') or ''}\n  last judgement: "
            f"{(st.get('last_judgement') or {}).get('line') or '-'}"))
        return 0
    if args.rollout_command:
        rollout.command(c, args.rollout_command)
        return 0
    if args.resume or args.abort:
        s = rollout.resume(c, abort=args.abort, max_seconds=args.max_seconds)
    else:
        kw = {}
        if args.steps:
            kw["steps"] = rollout_plan.parse_steps(args.steps)
        if args.judge_interval:
            kw["judge_interval_s"] = args.judge_interval
        if args.ready_timeout:
            kw["ready_timeout_s"] = args.ready_timeout
        if args.on_inconclusive:
            kw["on_inconclusive"] = args.on_inconclusive
        cfg = rollout_plan.PlanConfig(**kw)
        s = rollout.start(c, args.binary, args.overlay, cfg, judge.JudgeConfig(), args.max_seconds)
    if s.phase in rollout_plan.TERMINAL:
        return 0 if s.phase == "done" else 3
    return 4


def chaos_main(argv: list[str]) -> int:
    from . import chaos
    p = argparse.ArgumentParser(prog="scripts/cluster chaos", description=chaos.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("run", "revert", "list", "day"))
    p.add_argument("file", nargs="*")
    p.add_argument("--state", default=str(REPO / ".state" / "cluster"))
    p.add_argument("--port-offset", type=int, default=None)
    p.add_argument("--readers", type=int, default=4)
    p.add_argument("--writers", type=int, default=2)
    args = p.parse_args(argv)
    if args.action == "list":
        for name, title in chaos.list_experiments(REPO / "deploy" / "chaos"):
            print(f"{name:36s} {title}")
        return 0
    if args.action == "run" and len(args.file) != 1:
        log("error: chaos run needs one experiment file (deploy/chaos/*.json)")
        return 2
    offset = args.port_offset
    if offset is None and os.environ.get("CLUSTER_PORT_OFFSET", "").strip():
        offset = int(os.environ["CLUSTER_PORT_OFFSET"])
    try:
        exp = chaos.load_experiment(args.file[0]) if args.action == "run" else None
        c = Cluster(args.state, offset)
        if args.action == "revert":
            done = chaos.replay(c, chaos.Journal(c.state))
            log(f"chaos revert: {len(done)} fault(s) reverted" + (f": {', '.join(done)}" if done else ""))
            return 0
        if args.action == "day":
            files = [Path(f) for f in args.file] or sorted((REPO / "deploy" / "chaos").glob("*.json"))
            d = chaos.day(c, files, args.readers, args.writers)
            return 0 if d["summary"]["met"] else 3
        r = chaos.run(c, exp, args.readers, args.writers)
        return 0 if r["held"] else 3
    except (ClusterError, ValueError) as e:
        log(f"error: {e}")
        return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "chaos":
        return chaos_main(argv[1:])
    args, rest = parse(argv)
    offset = args.port_offset
    if offset is None and os.environ.get("CLUSTER_PORT_OFFSET", "").strip():
        offset = int(os.environ["CLUSTER_PORT_OFFSET"])
    if args.command == "restart-node" and not args.region:
        print("scripts/cluster: restart-node needs a portal node name", file=sys.stderr)
        return 2
    if args.command in ("kill-region", "start-region") and not args.region:
        print(f"scripts/cluster: {args.command} needs a region name", file=sys.stderr)
        return 2
    if args.region and args.command not in ("kill-region", "start-region", "restart-node"):
        print(f"scripts/cluster: unknown argument: {args.region}", file=sys.stderr)
        return 2
    try:
        c = Cluster(args.state, offset)
        if args.command == "up":
            c.up()
        elif args.command == "down":
            c.down()
        elif args.command == "destroy":
            c.destroy(kill=args.kill)
        elif args.command == "status":
            c.print_status(args.json)
        elif args.command == "kill-region":
            c.kill_region(args.region)
        elif args.command == "start-region":
            c.start_region(args.region)
        elif args.command == "restart-node":
            from . import maintenance
            maintenance.restart_node(c, args.region)
        elif args.command == "rolling-restart":
            from . import maintenance
            maintenance.rolling_restart(c)
        elif args.command == "pg-maintenance":
            from . import maintenance
            rep = maintenance.pg_maintenance(c, maintenance.parse_settings(args.settings))
            print(json.dumps(rep, indent=1))
        elif args.command == "rollout":
            return rollout_cmd(c, args)
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
