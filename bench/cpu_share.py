#!/usr/bin/env python3
"""Where the machine's CPU went during a benchmark run, by process group.

  bench/cpu_share.py snapshot FILE     # before the run
  bench/cpu_share.py report FILE       # after it: the share of each group since the snapshot
  bench/cpu_share.py wait-quiet 60 5 600   # until the machine is 60% idle over 5 s (at most 600 s)

Reads /proc (utime + stime of every process, the machine's idle time from /proc/stat).
Groups: the executable's name; Patroni (a Python program) named as such, and `continuum`
by its command (serve: the portal nodes; stub-deps, net-proxy, probe). A process that started or ended between the two calls counts only from
when it was seen in both (its CPU before the snapshot is left out)."""

from __future__ import annotations

import json
import os
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def group_of(pid: str, comm: str) -> str:
    if comm.startswith("python") or comm.startswith("continuum"):
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            return comm
        cmd = b" ".join(argv).decode(errors="replace")
        if comm.startswith("continuum"):
            # continuum serve (the portal nodes), stub-deps, net-proxy, probe, ...
            sub = argv[1].decode(errors="replace") if len(argv) > 1 else ""
            return f"continuum {sub}".strip()
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


def wait_quiet(min_idle: float, window: float, timeout: float) -> None:
    """Until the machine was at least min_idle percent idle over three windows in a row (a cluster
    just started syncs from the stand-in EHR for minutes: 20,000 patients took ~2.5 min
    here); exits 1 after timeout seconds."""
    t0 = time.monotonic()
    quiet = 0
    while True:
        a = snapshot()
        time.sleep(window)
        b = snapshot()
        idle = 100 * (b["idle"] - a["idle"]) / ((b["total"] - a["total"]) or 1)
        waited = time.monotonic() - t0
        # Three quiet windows in a row, and not before 30 s: the sync starts a few seconds
        # after `up`, so a first quiet window says nothing.
        quiet = quiet + 1 if idle >= min_idle else 0
        if quiet >= 3 and waited >= 30:
            print(f"bench: the machine is {idle:.0f}% idle after {waited:.0f}s", file=sys.stderr)
            return
        if waited > timeout:
            raise SystemExit(f"bench: the machine was still busy after {waited:.0f}s ({idle:.0f}% idle)")


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "wait-quiet":
        wait_quiet(float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
        return
    if len(sys.argv) != 3 or sys.argv[1] not in ("snapshot", "report"):
        raise SystemExit("usage: bench/cpu_share.py snapshot|report FILE | wait-quiet MIN_IDLE_PCT WINDOW_S TIMEOUT_S")
    if sys.argv[1] == "snapshot":
        with open(sys.argv[2], "w") as f:
            json.dump(snapshot(), f)
    else:
        with open(sys.argv[2]) as f:
            before = json.load(f)
        print(report(before, snapshot()))


if __name__ == "__main__":
    main()
