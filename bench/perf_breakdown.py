#!/usr/bin/env python3
"""Where the machine's CPU went during a profiled benchmark run (bench/run --profile).

Reads `perf script -F comm,tid,ip,sym,dso` of a system-wide `perf record -g` (samples of
every process, kernel included, with call chains) and prints:
  1. the share of all samples per process (the server, PostgreSQL, wrk, the rest, idle);
  2. the server's share per thread (its threads are named: continuum = I/O shard 0,
     continuum-io = the other shards, continuum-audit = the journal's writer,
     continuum-ship = the shipper to PostgreSQL, continuum-bg = background work,
     continuum-cpu = password hashing);
  3. inside the server, per stage. A sample in the kernel is put under the system call its
     chain passes through (send, receive, epoll, fdatasync, futex, ...) or under page
     faults, interrupts and scheduling: a virtual machine's kernel reports much of its time
     at the point where interrupts come back on (pvm_irq_enable), so the leaf alone says
     little. A sample in user space is put under the code it is in: HTTP (Beast), the event
     loop (Asio), the database client (libpq), the response's JSON (Boost.JSON), the audit
     journal, the token check (libsodium), allocation (jemalloc), copies, the server's
     other code, the rest;
  4. the server's 25 hottest user-space symbols;
  5. with --pg-roles FILE (lines "pid|backend_type|application_name", from
     pg_stat_activity sampled during the run): PostgreSQL's share per role (the portal's
     connections, the audit shipper's, autovacuum, the WAL writer, the checkpointer, ...).
User stacks are not unwound (the build has no frame pointers), so a user-space stage is the
time spent in its own code, not in what it calls.

    perf script -i perf.data -F comm,tid,ip,sym,dso | python3 bench/perf_breakdown.py
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter

# The system call of a kernel sample: a kernel frame __x64_sys_NAME / __sys_NAME (where the
# kernel did not inline it), else the C library's wrapper that entered the kernel (the first
# user-space frame: __libc_sendmsg, __send, epoll_wait, fdatasync, ...).
SYSCALL = re.compile(r"^(?:__x64_sys_|__ia32_sys_|__do_sys_|__se_sys_|ksys_|__sys_)(\w+)")
WRAPPER = re.compile(r"^(?:__libc_|__GI___|__GI_|__)?(\w+?)(?:64)?(?:@.*)?$")
SYSCALL_GROUPS = [
    ("kernel: send (sendto, sendmsg, writev)", r"^(send|sendto|sendmsg|sendmmsg|writev)$"),
    ("kernel: receive (recvfrom, recvmsg, read)", r"^(recv|recvfrom|recvmsg|recvmmsg|read|readv|pread)$"),
    ("kernel: write (files and sockets)", r"^(write|pwrite|pwritev)$"),
    ("kernel: fdatasync / fsync", r"^(fdatasync|fsync|sync_file_range)$"),
    ("kernel: epoll", r"^(epoll_wait|epoll_pwait|epoll_ctl)$"),
    ("kernel: futex (thread hand-offs)", r"futex|pthread_cond|pthread_mutex|lll_lock"),
    ("kernel: timers and clocks", r"^(timerfd_settime|clock_gettime|clock_nanosleep|nanosleep)$"),
    ("kernel: getrandom", r"^getrandom$"),
]
KERNEL_OTHER = [
    ("kernel: page faults", r"exc_page_fault|handle_mm_fault|do_anonymous_page"),
    ("kernel: network softirq", r"net_rx_action|__napi_poll|process_backlog|do_softirq"),
    ("kernel: interrupts", r"common_interrupt|sysvec_|irq_exit|asm_|pvm_event|exit_to_user_mode"),
    ("kernel: scheduling", r"schedule|finish_task_switch|pick_next_task"),
]
USER_STAGES = [
    ("audit journal", r"continuum::audit|blake2b|crypto_generichash"),
    ("token check (libsodium)", r"libsodium|crypto_sign|ed25519|continuum::auth"),
    ("database client (libpq)", r"libpq|continuum::db"),
    ("response JSON (fhir::JsonWriter, Boost.JSON)", r"boost::json|libboost_json|continuum::fhir"),
    ("HTTP (Beast)", r"boost::beast|continuum::http"),
    ("event loop (Asio)", r"boost::asio"),
    ("allocation (jemalloc)", r"jemalloc|malloc|\bfree\b|operator new|operator delete|tcache"),
    ("copies (memcpy, memmove, ...)", r"memcpy|memmove|memset|strlen|memchr|memcmp"),
    ("server code (other)", r"continuum"),
]


def _compile(groups):
    return [(name, re.compile(pat, re.I)) for name, pat in groups]


SYSCALL_RX, KERNEL_RX, USER_RX = _compile(SYSCALL_GROUPS), _compile(KERNEL_OTHER), _compile(USER_STAGES)
FRAME = re.compile(r"^\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$")


def is_kernel(dso: str) -> bool:
    return "kernel" in dso or dso.startswith("[")


def classify(frames: list[tuple[str, str]]) -> str:
    """The stage of one sample from its chain (leaf first): (symbol, dso) pairs."""
    if not frames:
        return "unknown"
    sym, dso = frames[0]
    if is_kernel(dso):
        kernel_part = [s for s, d in frames if is_kernel(d)]
        in_syscall = any(s.startswith(("entry_SYSCALL", "do_syscall_64")) for s in kernel_part)
        name = None
        for s, d in frames if in_syscall else []:
            base = s.split("+0x")[0]
            if not is_kernel(d):
                m = WRAPPER.match(base)
                name = m.group(1) if m else base
                break
            m = SYSCALL.match(base)
            if m:
                name = m.group(1)
                break
        if name:
            for group, rx in SYSCALL_RX:
                if rx.search(name):
                    return group
            return f"kernel: {name}"
        chain = " ".join(kernel_part)
        for group, rx in KERNEL_RX:
            if rx.search(chain):
                return group
        return "kernel: other"
    text = f"{dso} {sym}"
    for group, rx in USER_RX:
        if rx.search(text):
            return group
    return "other (libc, libstdc++, ...)"


def samples(lines):
    """(comm, tid, frames) per sample of `perf script -F comm,tid,ip,sym,dso` output."""
    comm, tid, frames = None, 0, []
    for line in lines:
        if not line.strip():
            if comm is not None:
                yield comm, tid, frames
            comm, frames = None, []
            continue
        if not line[0].isspace():
            if comm is not None:
                yield comm, tid, frames
            head, _, last = line.rstrip().rpartition(" ")
            comm, tid, frames = head.strip(), int(last) if last.isdigit() else 0, []
            continue
        m = FRAME.match(line)
        if m and comm is not None:
            frames.append((m.group(1), m.group(2)))
    if comm is not None:
        yield comm, tid, frames


def pg_roles(path: str) -> dict[int, str]:
    """pid -> role of PostgreSQL's processes, from "pid|backend_type|application_name" lines."""
    roles: dict[int, str] = {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("|")
            if len(parts) < 2 or not parts[0].strip().isdigit():
                continue
            kind, app = parts[1].strip(), (parts[2].strip() if len(parts) > 2 else "")
            roles[int(parts[0])] = f"{kind} ({app})" if kind == "client backend" and app else kind
    return roles


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--comm", default="continuum",
                   help="the server's process name (its threads named NAME-... count too)")
    p.add_argument("--chains", metavar="STAGE",
                   help="also print the 15 commonest call chains (5 frames) of the server's samples in STAGE")
    p.add_argument("--pg-roles", metavar="FILE",
                   help="pid|backend_type|application_name lines: PostgreSQL's samples per role")
    args = p.parse_args()
    roles = pg_roles(args.pg_roles) if args.pg_roles else {}
    by_role: Counter = Counter()
    chains: Counter = Counter()
    by_comm: Counter = Counter()
    by_thread: Counter = Counter()
    by_stage: Counter = Counter()
    by_sym: Counter = Counter()
    total = 0
    for comm, tid, frames in samples(sys.stdin):
        total += 1
        server = comm == args.comm or comm.startswith(args.comm + "-")
        by_comm[args.comm if server else comm if comm in ("postgres", "wrk", "swapper") else "other"] += 1
        if comm == "postgres":
            by_role[roles.get(tid, "other (not seen in pg_stat_activity)")] += 1
        if not server:
            continue
        by_thread[comm] += 1
        stage = classify(frames)
        by_stage[stage] += 1
        if args.chains and stage == args.chains:
            chains[" <- ".join(f.split("+0x")[0] for f, _ in frames[:5])] += 1
        if frames and not is_kernel(frames[0][1]):
            sym = frames[0][0].split("+0x")[0]
            by_sym[f"{sym[:90]}  ({frames[0][1].rsplit('/', 1)[-1]})"] += 1
    if total == 0:
        print("perf_breakdown: no samples in the input", file=sys.stderr)
        return 1
    server = by_comm[args.comm]
    print(f"share of all {total} samples (both cores) per process:")
    for comm, n in by_comm.most_common():
        label = "idle (swapper)" if comm == "swapper" else comm
        print(f"  {label:44s} {100 * n / total:6.1f}%")
    if roles and by_comm["postgres"]:
        print(f"\nPostgreSQL ({by_comm['postgres']} samples) per role, as a share of all samples:")
        for role, n in by_role.most_common():
            print(f"  {role:44s} {100 * n / total:6.1f}%")
    if not server:
        return 0
    print(f"\nthe server ({server} samples) per thread, as a share of its own samples:")
    for comm, n in by_thread.most_common():
        print(f"  {comm:44s} {100 * n / server:6.1f}%")
    print("\nthe server per stage, as a share of its own samples:")
    for name, n in by_stage.most_common():
        print(f"  {name:44s} {100 * n / server:6.1f}%")
    print("\nthe server's hottest user-space symbols (share of its own samples):")
    for sym, n in by_sym.most_common(25):
        print(f"  {100 * n / server:6.2f}%  {sym}")
    if args.chains:
        print(f"\nthe commonest chains in {args.chains!r} (leaf first):")
        for chain, n in chains.most_common(15):
            print(f"  {100 * n / server:6.2f}%  {chain}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
