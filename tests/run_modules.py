#!/usr/bin/env python3
"""Runs test modules (unittest), several at a time, each in its own Python process.

    python3 tests/run_modules.py -C tests/e2e --jobs 2 --alone test_bulkhead [-- -k pattern]
    python3 tests/run_modules.py -C tests/e2e --jobs 2 test_login test_authz ...

* Modules are test_*.py in the folder (-C), or the ones named.
* `--alone M` runs M after all others have finished, with nothing else running: a module
  that measures latency (its bound compares windows of one run) is not measured beside
  another module's load.
* `--beside M` starts M at once in a slot of its own, beside the others: a module that
  mostly waits (a quiet period, an alert's `for:`) overlaps with ones that run their own
  timings, which still run `--jobs` at a time (e.g. 1: never two of them together).
* The others run `--jobs` at a time, longest first: the durations of the last run are
  kept in --times (default: build/test-times-<folder>.json).
* A module's output is printed whole when it ends, after a line with its name, result and
  duration, so parallel modules do not interleave. At the end: one line per module and
  the failed ones again. Exit 0 only when every module passed (a module where no test
  ran because of a -k filter counts as passed).
* The order of a first run (no --times file yet, as on a clean checkout) comes from the
  folder's module-times.json, checked in, when there is one.
* CONTINUUM_E2E_TEMPLATES is set to a folder of this run (removed at its end), where the
  harness keeps one migrated and seeded PostgreSQL data folder per binary, patient and
  facility count for its test classes to copy (tests/e2e/harness.py).
* CONTINUUM_E2E_DEADLINE_S (the harness's global deadline, seconds from its start) is
  counted from this runner's start: each module gets what is left of it.

The harness gives every test class its own PostgreSQL, folders and free ports, so modules
share only the machine and the read-only template data folders (built under a lock).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NO_TESTS_RAN = 5  # unittest's exit status when a filter left nothing to run


def parse(argv: list[str]) -> argparse.Namespace:
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-C", dest="folder", required=True, help="folder of the test modules")
    ap.add_argument("--jobs", type=int, default=2, help="modules at a time (default 2)")
    ap.add_argument("--alone", action="append", default=[], help="a module run by itself, at the end")
    ap.add_argument("--beside", action="append", default=[],
                    help="a module started at once in a slot of its own, beside the --jobs others")
    ap.add_argument("--times", help="durations of the last run (JSON)")
    ap.add_argument("modules", nargs="*", help="modules (default: every test_*.py)")
    a = ap.parse_args(argv)
    a.extra = extra
    if a.jobs < 1:
        ap.error("--jobs must be at least 1")
    return a


class Result:
    def __init__(self, module: str, rc: int, seconds: float, output: str):
        self.module, self.rc, self.seconds, self.output = module, rc, seconds, output

    @property
    def ok(self) -> bool:
        return self.rc == 0 or self.rc == NO_TESTS_RAN

    def summary(self) -> str:
        ran = [line for line in self.output.splitlines() if line.startswith("Ran ")]
        verdict = "ok" if self.ok else f"FAILED (exit {self.rc})"
        return f"{self.module:<28} {self.seconds:7.1f}s  {verdict}  {ran[-1] if ran else ''}"


class Runner:
    def __init__(self, a: argparse.Namespace):
        self.a = a
        self.folder = Path(a.folder).resolve()
        self.start = time.monotonic()
        self.deadline = float(os.environ.get("CONTINUUM_E2E_DEADLINE_S", "0")) or None
        self.lock = threading.Lock()
        self.procs: dict[str, subprocess.Popen] = {}
        self.stopping = False

    def remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return self.deadline - (time.monotonic() - self.start)

    def run_one(self, module: str) -> Result:
        env = dict(os.environ)
        left = self.remaining()
        if left is not None:
            if left < 30:
                return Result(module, 124, 0.0, f"not started: {left:.0f}s left of the deadline\n")
            env["CONTINUUM_E2E_DEADLINE_S"] = f"{left:.0f}"
        t0 = time.monotonic()
        p = subprocess.Popen([sys.executable, "-m", "unittest", "-v", module, *self.a.extra],
                             cwd=self.folder, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, errors="replace",
                             start_new_session=True)
        with self.lock:
            self.procs[module] = p
        out, _ = p.communicate()
        with self.lock:
            del self.procs[module]
        r = Result(module, p.returncode, time.monotonic() - t0, out)
        with self.lock:
            print(f"\n---- {r.summary()}", flush=True)
            sys.stdout.write(out)
            sys.stdout.flush()
        return r

    def run_pool(self, modules: list[str]) -> list[Result]:
        results: list[Result] = []
        queue = list(modules)

        def worker() -> None:
            while True:
                with self.lock:
                    if not queue or self.stopping:
                        return
                    m = queue.pop(0)
                r = self.run_one(m)
                with self.lock:
                    results.append(r)

        threads = [threading.Thread(target=worker) for _ in range(min(self.a.jobs, len(modules)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    def stop(self, *_: object) -> None:
        """SIGTERM/SIGINT: pass it on to every running module (its harness cleans up)."""
        with self.lock:
            self.stopping = True
            for p in self.procs.values():
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except OSError:
                    pass


def discover(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("test_*.py"))


def order(modules: list[str], times: dict[str, float]) -> list[str]:
    """Longest first by the last run's durations; modules without one first of all (a new
    module's length is unknown), in alphabetical order."""
    return sorted(modules, key=lambda m: (m in times, -times.get(m, 0.0), m))


def main(argv: list[str]) -> int:
    a = parse(argv)
    runner = Runner(a)
    folder = runner.folder
    modules = a.modules or discover(folder)
    unknown = [m for m in modules + a.alone + a.beside if not (folder / f"{m}.py").is_file()]
    if unknown:
        print(f"run_modules: no such module in {folder}: {' '.join(unknown)}", file=sys.stderr)
        return 2
    times_file = Path(a.times) if a.times else ROOT / "build" / f"test-times-{folder.name}.json"
    times = {}
    for f in (times_file, folder / "module-times.json"):
        try:
            times = {k: float(v) for k, v in json.loads(f.read_text()).items()}
            break
        except (OSError, ValueError, AttributeError):
            continue
    templates = Path(tempfile.mkdtemp(prefix="continuum-templates-"))
    os.chmod(templates, 0o755)  # the postgres user builds and reads the data folders
    os.environ["CONTINUUM_E2E_TEMPLATES"] = str(templates)
    try:
        return run(a, runner, modules, times, times_file)
    finally:
        for pid_file in templates.glob("*.build/pg/data/postmaster.pid"):  # a build cut short
            subprocess.run([str(ROOT / "scripts" / "pg-tmp"), "kill", str(pid_file.parents[1])],
                           timeout=30, check=False)
        shutil.rmtree(templates, ignore_errors=True)


def run(a: argparse.Namespace, runner: Runner, modules: list[str], times: dict[str, float],
        times_file: Path) -> int:
    folder = runner.folder
    alone = [m for m in a.alone if m in modules] if a.modules else list(a.alone)
    beside = [m for m in a.beside if m in modules and m not in alone]
    pooled = [m for m in modules if m not in alone and m not in beside]
    signal.signal(signal.SIGTERM, runner.stop)
    signal.signal(signal.SIGINT, runner.stop)
    print(f"run_modules: {len(pooled)} modules {a.jobs} at a time"
          + (f", beside them: {' '.join(beside)}" if beside else "")
          + (f", then alone: {' '.join(alone)}" if alone else ""), flush=True)
    beside_results: list[Result] = []
    beside_threads = [threading.Thread(target=lambda m=m: beside_results.append(runner.run_one(m)))
                      for m in beside]
    for t in beside_threads:
        t.start()
    results = runner.run_pool(order(pooled, times))
    for t in beside_threads:
        t.join()
    results += beside_results
    for m in alone:
        if runner.stopping:
            break
        results.append(runner.run_one(m))
    wall = time.monotonic() - runner.start
    print(f"\n==== {len(results)} modules in {wall:.0f}s (sum of their durations "
          f"{sum(r.seconds for r in results):.0f}s):")
    for r in sorted(results, key=lambda r: -r.seconds):
        print(f"  {r.summary()}")
    failed = [r for r in results if not r.ok]
    missing = [m for m in modules if m not in {r.module for r in results}]
    if not a.extra:   # a filtered run's durations say nothing about the whole modules
        times.update({r.module: round(r.seconds, 1) for r in results if r.ok})
        try:
            times_file.parent.mkdir(parents=True, exist_ok=True)
            times_file.write_text(json.dumps(times, indent=1, sort_keys=True) + "\n")
        except OSError:
            pass
    if failed or missing:
        if failed:
            print(f"\nFAILED modules: {' '.join(r.module for r in failed)}")
        if missing:
            print(f"not run (stopped): {' '.join(missing)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
