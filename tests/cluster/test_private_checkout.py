"""The README's main command from a checkout under a private folder (issue 8).

A newcomer may clone into root's home folder (mode 0700). PostgreSQL and Patroni run as the
`postgres` user, which cannot enter such a folder. This test copies the checkout (tracked
and untracked files, as a clone plus local changes would have them) into a fresh 0700
folder and runs `./scripts/demo` there, as a newcomer would, with the built binary
(CONTINUUM_BIN: no second build) and a free port offset (so it never collides with a
running demo). It checks that the cluster comes up HEALTHY, that PostgreSQL's folders went
to a place the postgres user can reach, that no folder's permissions were loosened, and
that `scripts/demo stop` plus `scripts/cluster destroy` leave no process and no folder.

What it does not prove: a real fresh machine (packages are already installed here), or a
checkout on a filesystem mounted noexec/nosuid.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import clusterctl  # noqa: E402
from clusterctl import REPO, log, processes_of, wait_until  # noqa: E402

BINARY = os.environ.get("CONTINUUM_BIN", str(REPO / "build" / "continuum"))


def copy_checkout(dst: Path) -> None:
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           capture_output=True, check=True, timeout=60).stdout.split(b"\0")
    for f in filter(None, files):
        src = REPO / f.decode()
        if not src.is_file():
            continue   # deleted in the work tree
        out = dst / f.decode()
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, out)


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except Exception:  # noqa: BLE001 - not yet
        return False


class PrivateCheckoutTest(unittest.TestCase):
    def test_demo_from_a_0700_folder(self):
        private = Path(tempfile.mkdtemp(prefix="cct-private-"))   # mode 0700, like /root
        self.assertEqual(stat.S_IMODE(private.stat().st_mode), 0o700)
        checkout = private / "continuum"
        state = checkout / ".state" / "cluster"
        offset = clusterctl.free_offset()
        env = {**os.environ, "CONTINUUM_BIN": BINARY, "CLUSTER_PORT_OFFSET": str(offset),
               "DEMO_PATIENTS": "300"}
        cluster = [str(checkout / "scripts" / "cluster")]
        pg_root = None
        try:
            copy_checkout(checkout)
            t0 = time.monotonic()
            cp = subprocess.run(["./scripts/demo"], cwd=checkout, env=env, capture_output=True, text=True,
                                timeout=400, stdin=subprocess.DEVNULL)
            took = time.monotonic() - t0
            self.assertEqual(cp.returncode, 0, f"scripts/demo failed after {took:.0f}s:\n{cp.stderr[-4000:]}")
            st = json.loads(subprocess.run(cluster + ["status", "--json", "--state", str(state)],
                                                      capture_output=True, text=True, timeout=60, env=env).stdout)
            pg_root = Path(st["pg_root"])
            log(f"[private checkout] scripts/demo from {checkout} (0700 parent): up in {took:.0f}s, "
                f"healthy={st['healthy']}, PostgreSQL folders in {pg_root}")
            self.assertTrue(st["healthy"], st)
            self.assertEqual(pg_root.parent, Path("/var/lib/continuum/pg"), "PostgreSQL's folders must move out")
            for r in st["regions"]:
                self.assertTrue(r["data_dir"].startswith(str(pg_root) + "/"), r)
            # nothing was loosened on the way to the checkout
            self.assertEqual(stat.S_IMODE(private.stat().st_mode), 0o700)
            # the edge serves
            edge = st["edge"]["http"]
            wait_until(lambda: ready(edge + "/readyz"), 30, 0.5, "edge /readyz")
        finally:
            subprocess.run(["./scripts/demo", "stop"], cwd=checkout, env=env, capture_output=True, timeout=240)
            subprocess.run(cluster + ["destroy", "--state", str(state)], env=env, capture_output=True, timeout=240)
            left = processes_of(state, (pg_root,) if pg_root else ())
            if pg_root is not None:
                self.assertFalse(pg_root.exists(), f"{pg_root} left behind")
            shutil.rmtree(private, ignore_errors=True)
        self.assertEqual(left, [], "processes left after demo stop + destroy")


if __name__ == "__main__":
    unittest.main()
