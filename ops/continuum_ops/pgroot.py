"""Where the folders of processes that run as `postgres` live (Patroni, PostgreSQL).

PostgreSQL and Patroni refuse to run as root, so they run as the `postgres` user, and that
user must be able to reach its data folder, its configuration and its working directory:
every folder on the path needs the x bit for it. A checkout under root's home (mode 0700),
or a state folder under any private folder, is out of its reach. We never loosen a folder
the user did not give us; instead:

- if `postgres` can enter the state folder, PostgreSQL's folders live inside it
  (<state>/patroni/<region>), as before;
- otherwise they live in a folder of their own under /var/lib/continuum/pg/, named by a
  hash of the state folder's path (one per cluster), and the state folder records where
  (cluster.env: PG_ROOT=...). `destroy` removes it with the state.

Every process started as `postgres` gets its own folder as working directory.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import subprocess
from pathlib import Path

PG_USER = "postgres"
SYSTEM_PG_BASE = Path("/var/lib/continuum/pg")


def pg_ids(user: str = PG_USER) -> tuple[int, int]:
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise RuntimeError(f"there is no '{user}' user: install PostgreSQL 15 (scripts/setup)") from None
    return pw.pw_uid, pw.pw_gid


def traversable(chain: list[tuple[int, int, int]], uid: int, gids: set[int]) -> bool:
    """Whether a user may pass through every folder of `chain` ((mode, owner, group) of each
    folder from / down to the target): it needs x as owner, else as a group member, else as
    other (the first class that applies decides, as in the kernel; ACLs aside)."""
    for mode, owner, group in chain:
        if uid == 0:
            continue
        if owner == uid:
            bit = mode & 0o100
        elif group in gids:
            bit = mode & 0o010
        else:
            bit = mode & 0o001
        if not bit:
            return False
    return True


def reachable_by_postgres(path: Path, user: str = PG_USER) -> bool:
    """Asks the kernel (ACLs included): can `user` cd into `path`?"""
    cp = subprocess.run(["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--",
                         "/bin/sh", "-c", 'cd "$1"', "sh", str(path)],
                        stdin=subprocess.DEVNULL, capture_output=True, timeout=10, cwd="/")
    return cp.returncode == 0


def first_blocking_folder(path: Path, user: str = PG_USER) -> Path | None:
    """The first folder on the way to `path` that `user` cannot pass (for the message)."""
    uid, gid = pg_ids(user)
    gids = set(os.getgrouplist(user, gid))
    p = Path("/")
    for part in path.parts[1:]:
        p = p / part
        try:
            st = os.stat(p)
        except OSError:
            return None
        if not traversable([(st.st_mode, st.st_uid, st.st_gid)], uid, gids):
            return p
    return None


def external_root(state: Path, base: Path = SYSTEM_PG_BASE) -> Path:
    h = hashlib.sha256(str(state).encode()).hexdigest()[:12]
    return base / h


def choose(state: Path, recorded: str | None, reachable) -> tuple[Path, str]:
    """(PostgreSQL root, why). `recorded` is what cluster.env says (a cluster keeps its
    location for life); `reachable(path)` tells whether postgres can enter a folder."""
    if recorded:
        return Path(recorded), "recorded in cluster.env"
    if reachable(state):
        return state / "patroni", "inside the state folder"
    return external_root(state), "the state folder is out of reach of the postgres user"


def prepare_external(root: Path, state: Path) -> None:
    """Creates /var/lib/continuum/pg/<hash> (0755 path, the leaf for postgres only) and
    leaves a note saying whose it is."""
    root.parent.mkdir(parents=True, exist_ok=True)
    for p in (root.parent.parent, root.parent):
        os.chmod(p, 0o755)
    root.mkdir(mode=0o755, exist_ok=True)
    os.chmod(root, 0o755)   # mkdir's mode is cut by the umask (077 on hardened hosts)
    (root / "OWNER").write_text(f"PostgreSQL folders of the Continuum cluster whose state is {state}\n")
