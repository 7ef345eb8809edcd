#!/usr/bin/env python3
"""Where the machine's CPU went during a benchmark run, by process group.

  bench/cpu_share.py snapshot FILE     # before the run
  bench/cpu_share.py report FILE       # after it: the share of each group since the snapshot

Reads /proc (utime + stime of every process, the machine's idle time from /proc/stat).
Groups: the executable's name, with Patroni (a Python program) and the wrk load generator
named as such. A process that started or ended between the two calls counts only from
when it was seen in both (its CPU before the snapshot is left out)."""

from __future__ import annotations

import json
import os
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def group_of(pid: str, comm: str) -> str:
    if comm.startswith("python"):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return comm
        if "patroni" in cmd:
            return "patroni"
        if "continuum_ops" in cmd:
            return "continuum_ops (probe, supervisor)"
        return "python (other)"
    if comm in ("postgres", "postmaster"):
        return "postgres"
    return comm


def snapshot() -> dict:
    procs = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            raw = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2:].split()
        # fields 14 and 15 of stat (utime, stime); rest starts at field 3
        ticks = int(rest[11]) + int(rest[12])
        procs[pid] = [comm, ticks]
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    return {"t": time.monotonic(), "procs": procs, "idle": cpu[3] + cpu[4], "total": sum(cpu[:8])}


def report(before: dict, after: dict) -> str:
    groups: dict[str, float] = {}
    for pid, (comm, ticks) in after["procs"].items():
        old = before["procs"].get(pid)
        if old is None or old[0] != comm:
            continue
        groups.setdefault(group_of(pid, comm), 0.0)
        groups[group_of(pid, comm)] += (ticks - old[1]) / TICK
    wall = after["t"] - before["t"]
    cores = os.cpu_count() or 1
    total = (after["total"] - before["total"]) or 1
    idle = (after["idle"] - before["idle"]) / total
    lines = [f"CPU by process group over {wall:.1f}s on {cores} cores "
             f"(share of the machine; idle {100 * idle:.1f}%)"]
    for name, sec in sorted(groups.items(), key=lambda kv: -kv[1]):
        share = 100 * sec / (wall * cores)
        if share >= 0.5:
            lines.append(f"  {name:36s} {share:6.1f}%")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in ("snapshot", "report"):
        raise SystemExit("usage: bench/cpu_share.py snapshot|report FILE")
    if sys.argv[1] == "snapshot":
        with open(sys.argv[2], "w") as f:
            json.dump(snapshot(), f)
    else:
        with open(sys.argv[2]) as f:
            before = json.load(f)
        print(report(before, snapshot()))


if __name__ == "__main__":
    main()
