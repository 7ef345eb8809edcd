"""Process supervision by PID: start detached, recognise our own processes, stop, kill a tree.

A process is "ours" only when its command line names one of the cluster's own folders (the
state folder, or the PostgreSQL root when that lives elsewhere): a recycled PID never makes
us signal a stranger.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def state_of(pid: int) -> str:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.split()[1]
    except OSError:
        pass
    return ""


def live(pid: int) -> bool:
    """Exists and is not a zombie."""
    s = state_of(pid)
    return s not in ("", "Z", "X")


def snapshot() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, sid) for every process, from /proc."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses
        rest = stat[stat.rfind(")") + 2:].split()
        try:
            out[int(d)] = (int(rest[1]), int(rest[3]))
        except (IndexError, ValueError):
            continue
    return out


def closure(snap: dict[int, tuple[int, int]], roots: list[int], self_sid: int) -> set[int]:
    """The roots, every process in a root's session (never our own, never init's) and all their
    descendants. etcd, Patroni and portal nodes each run in a session of their own; PostgreSQL's
    postmaster is a session apart (re-parented to init) and its children call setsid()
    themselves, so they are found by parent PID, not by session."""
    want = {r for r in roots if r in snap}
    sessions = {snap[r][1] for r in want if snap[r][1] > 1 and snap[r][1] != self_sid}
    want |= {p for p, (_, sid) in snap.items() if sid in sessions}
    return descendants(snap, list(want))


# The programs the cluster starts (argv[0] or, for Python programs, argv[1]).
OUR_PROGRAMS = {"etcd", "patroni", "postgres", "postmaster", "haproxy", "continuum", "setpriv", "prometheus",
                "prometheus-alertmanager", "prometheus-node-exporter", "prometheus-blackbox-exporter",
                "prometheus-postgres-exporter", "pg_ctl", "psql"}


def our_program(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    names = [os.path.basename(a.decode("utf-8", "replace")) for a in argv[:2] if a]
    return any(n in OUR_PROGRAMS for n in names)


def ancestors(snap: dict[int, tuple[int, int]], pid: int) -> set[int]:
    """pid and every process above it."""
    out = set()
    while pid in snap and pid not in out:
        out.add(pid)
        pid = snap[pid][0]
    return out


def descendants(snap: dict[int, tuple[int, int]], roots: list[int]) -> set[int]:
    """The roots and their descendants by parent PID (no session expansion)."""
    kids: dict[int, list[int]] = {}
    for p, (pp, _) in snap.items():
        kids.setdefault(pp, []).append(p)
    want, todo = set(roots), list(roots)
    while todo:
        for c in kids.get(todo.pop(), []):
            if c not in want:
                want.add(c)
                todo.append(c)
    return want


class Supervisor:
    """PID files under <state>/pids; logs under <state>/logs."""

    def __init__(self, state: Path, owned_roots: list[Path], log):
        self.state = state
        self.pids = state / "pids"
        self.logs = state / "logs"
        self.owned_roots = [str(p) + "/" for p in owned_roots]
        self.log = log

    def pid(self, name: str) -> int | None:
        try:
            return int((self.pids / f"{name}.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def ours(self, pid: int) -> bool:
        c = cmdline(pid)
        # Right after exec, /proc/<pid>/cmdline can read empty for a moment (seen here in
        # most of 200 fresh starts): an empty one is read again, not taken for a stranger.
        end = time.monotonic() + 1.0
        while not c and live(pid) and time.monotonic() < end:
            time.sleep(0.01)
            c = cmdline(pid)
        return live(pid) and any(root in c for root in self.owned_roots)

    def alive(self, name: str) -> bool:
        p = self.pid(name)
        return p is not None and self.ours(p)

    def live_pid(self, name: str) -> int | None:
        p = self.pid(name)
        return p if p is not None and self.ours(p) else None

    def start(self, name: str, argv: list[str], cwd: Path, env: dict | None = None,
              log_name: str | None = None, nice: int = 0) -> int:
        """Detached (own session), stdin from /dev/null, output appended to logs/<name>.log,
        working directory `cwd` (a folder the process's user can reach); `nice` added to
        the process's scheduling priority (negative: more CPU when it is contended; root
        only, as systemd's Nice= would)."""
        self.pids.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / (log_name or f"{name}.log"), "ab") as logf:
            p = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=logf,
                                 stderr=subprocess.STDOUT, cwd=str(cwd), env=env, start_new_session=True,
                                 preexec_fn=(lambda: os.nice(nice)) if nice else None)
        (self.pids / f"{name}.pid").write_text(f"{p.pid}\n")
        return p.pid

    def signal(self, name: str, sig: int) -> None:
        p = self.live_pid(name)
        if p is None:
            (self.pids / f"{name}.pid").unlink(missing_ok=True)
            return
        self.log(f"stopping {name} (pid {p}, {signal.Signals(sig).name})")
        try:
            os.kill(p, sig)
        except OSError:
            pass

    def wait_gone(self, name: str, timeout: float) -> None:
        """Waits for the process to go; SIGKILL after `timeout`."""
        p = self.pid(name)
        if p is None:
            return
        end = time.monotonic() + timeout
        killed = False
        while self.ours(p):
            if time.monotonic() >= end and not killed:
                self.log(f"{name} (pid {p}) still alive after {timeout:.0f}s: SIGKILL")
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
                killed = True
            time.sleep(0.1)
        (self.pids / f"{name}.pid").unlink(missing_ok=True)

    def stop(self, names: list[str], sig: int, timeout: float) -> None:
        """Signal all at once, then wait for each."""
        for n in names:
            self.signal(n, sig)
        for n in names:
            self.wait_gone(n, timeout)

    def stop_drained(self, names: list[str], timeout: float) -> None:
        """Portal nodes the edge has already drained: SIGTERM, and a second one 0.3 s later,
        which ends the node's own drain ([server] drain_ms: /readyz 503 while it still
        serves) at once -- HAProxy sends it nothing any more. Then wait for each."""
        for n in names:
            self.signal(n, signal.SIGTERM)
        time.sleep(0.3)
        for n in names:
            p = self.live_pid(n)
            if p is not None:
                try:
                    os.kill(p, signal.SIGTERM)
                except OSError:
                    pass
        for n in names:
            self.wait_gone(n, timeout)

    def log_tail(self, name: str, lines: int = 15) -> str:
        try:
            data = (self.logs / name).read_bytes()[-32 * 1024:].decode("utf-8", "replace").splitlines()
        except OSError:
            return f"({self.logs / name} missing)"
        return "\n".join(data[-lines:])
