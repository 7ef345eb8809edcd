"""Zero-downtime maintenance: `scripts/cluster restart-node NAME`, `rolling-restart` (portal
nodes) and `pg-maintenance [--set PARAM=VALUE ...]` (PostgreSQL through Patroni, below).

One node at a time, so a region always keeps a node in rotation:
  1. drain it at the edge: `set server state drain` in every portal backend (its region's,
     and the others' where it is a backup): HAProxy sends it no new request;
  2. wait until HAProxy has no session on it (at most DRAIN_WAIT_S);
  3. SIGTERM, and a second one to end the node's own drain (the edge already sent it
     away: Supervisor.stop_drained): it finishes what it has in flight and exits
     (`continuum serve`'s graceful shutdown); SIGKILL only after the Supervisor's timeout;
  4. start it again (same binary and config: the live release's), wait until its /readyz
     answers 200;
  5. `set server state ready` everywhere, and wait until HAProxy's own checks have it UP in
     its region's backend, before the next node is touched.
Prints, per node, how long it was out of rotation.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from . import haproxy as hap
from . import patroni
from .util import ClusterError, http_get, http_json, log, wait_for

DRAIN_WAIT_S = 10.0


def restart_node(c, name: str, rt: hap.Runtime | None = None) -> float:
    """Drains, stops, starts and readmits live portal node `name`; the seconds it was out
    of rotation."""
    live = {n.name: n for n in c.topo.nodes}
    if name not in live:
        raise ClusterError(f"{name} is not a live portal node ({', '.join(live)})")
    n = live[name]
    if not c.secrets:
        c.load_secrets()
    rt = rt or hap.Runtime(c.haproxy_cmd, c.haproxy_each)
    t0 = time.monotonic()
    try:
        bes = rt.set_state(name, "drain")
    except RuntimeError as e:
        raise ClusterError(str(e)) from None
    if not bes:
        raise ClusterError(f"{name} is in no portal backend of HAProxy")
    deadline = time.monotonic() + DRAIN_WAIT_S
    while rt.sessions(name) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = rt.sessions(name)
    c.sup.stop_drained([f"portal-{name}"], 30)
    c.start_node(n, c.bin, c.release.get("overlay"))
    url = f"http://{n.host}:{n.port}/readyz"

    def ready() -> bool:
        if not c.sup.alive(f"portal-{name}"):
            raise ClusterError(f"{name} exited after its restart; last lines of its log:\n"
                               + c.sup.log_tail(f"portal-{name}.log"))
        r = http_get(url, timeout=1.5)
        return r is not None and r[0] == 200
    wait_for(c.node_timeout, f"{name} /readyz", ready, 0.2)
    rt.set_state(name, "ready")
    wait_for(30, f"{name} UP at the edge", lambda: rt.up_in_own_backend(name, n.region), 0.2)
    out = time.monotonic() - t0
    log(f"restart-node {name}: out of rotation {out:.1f}s (drained in {len(bes)} backend(s)"
        + (f"; {left} session(s) still open after {DRAIN_WAIT_S:g}s" if left else "") + ")")
    return out


def rolling_restart(c) -> dict[str, float]:
    """Every live portal node, one at a time; {node: seconds out of rotation}."""
    out = {}
    for r in c.topo.regions:
        for n in r.nodes:
            out[n.name] = restart_node(c, n.name)
    worst = max(out, key=out.get)
    log(f"rolling-restart: {len(out)} node(s); longest out of rotation {worst} {out[worst]:.1f}s")
    return out


# --------------------------------------------------------------------------------------
# PostgreSQL maintenance through Patroni
# --------------------------------------------------------------------------------------

PG_LAG_OK = 1 << 20        # bytes: a restarted standby is caught up below this


def patroni_request(url: str, method: str, body: dict | None = None, timeout: float = 120) -> tuple[int, str]:
    req = urllib.request.Request(url, method=method, data=json.dumps(body or {}).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except OSError as e:
        return 0, str(e)


def parse_settings(items: list[str]) -> dict[str, str]:
    """["shared_buffers=160MB", ...] -> {"shared_buffers": "160MB"}; a clear error otherwise."""
    out = {}
    for it in items:
        k, sep, v = it.partition("=")
        k, v = k.strip(), v.strip()
        if not sep or not k or not v or not k.replace("_", "").replace(".", "").isalnum():
            raise ClusterError(f"--set {it!r}: use PARAMETER=VALUE, e.g. shared_buffers=160MB")
        out[k] = v
    return out


def caught_up(cj: dict | None, names: list[str]) -> bool:
    """Leader and sync standby present, every member running or streaming, standbys' lag
    below PG_LAG_OK."""
    if not patroni.healthy(cj, len(names)):
        return False
    for m in patroni.members(cj):
        if m.get("role") != "leader":
            lag = m.get("lag")
            if not isinstance(lag, int) or lag > PG_LAG_OK:
                return False
    return True


def member_settings(c, region, names: list[str]) -> dict[str, tuple[str, bool]] | None:
    """{parameter: (current_setting, pending_restart)} on one member (psql as postgres), or
    None when it does not answer."""
    lit = ",".join("'" + n.replace("'", "''") + "'" for n in names)
    cp = c.psql(f"host={region.host} port={region.pg} user=postgres dbname=postgres",
                f"SELECT name, current_setting(name), pending_restart FROM pg_settings WHERE name IN ({lit})",
                c.secrets.get("SUPERUSER_PASSWORD"), timeout=5)
    if cp.returncode != 0:
        return None
    out = {}
    for line in cp.stdout.splitlines():
        f = line.split(":")
        if len(f) == 3:
            out[f[0]] = (f[1], f[2] == "t")
    return out


def setting_state(have: dict[str, tuple[str, bool]] | None, settings: dict[str, str]) -> str:
    """'applied' (every value in force), 'pending' (each either in force or waiting for a
    restart) or 'unseen' (a member has not taken the new configuration yet, or did not answer)."""
    if have is None:
        return "unseen"
    state = "applied"
    for k, v in settings.items():
        cur, pending = have.get(k, ("", False))
        if cur.lower() == v.lower() and not pending:
            continue
        if pending:
            state = "pending"
            continue
        return "unseen"
    return state


def pg_maintenance(c, settings: dict[str, str] | None = None) -> dict:
    """Replicas restarted one by one, then a switchover to the sync standby, then the old
    primary restarted: every member restarted (a configuration change that needs a restart,
    a minor upgrade's new binaries), with one planned primary change. With `settings`, the
    parameters are set first in Patroni's dynamic configuration (PATCH /config). Returns
    what it did, with the time of each stage."""
    if not c.secrets:
        c.load_secrets()
    names = c.topo.names
    rest = {r.name: f"http://{r.host}:{r.rest}" for r in c.topo.regions}
    cj = c.cluster_json()
    if not caught_up(cj, names):
        raise ClusterError("the database cluster is not healthy (a leader, a sync standby, every member "
                           "streaming and caught up): `scripts/cluster status`, then `up`")
    report: dict = {"settings": settings or {}, "stages": []}

    def stage(what: str, t0: float) -> None:
        dt = time.monotonic() - t0
        report["stages"].append({"stage": what, "seconds": round(dt, 1)})
        log(f"pg-maintenance: {what} ({dt:.1f}s)")

    def wait_caught_up(what: str) -> None:
        wait_for(180, what, lambda: caught_up(c.cluster_json(), names), 0.5)

    def restart(member: str) -> None:
        t0 = time.monotonic()
        code, text = patroni_request(f"{rest[member]}/restart", "POST", {})
        if code != 200:
            raise ClusterError(f"Patroni refused to restart {member}: HTTP {code} {text.strip()[:300]}")
        wait_caught_up(f"{member} streaming again after its restart")
        stage(f"restarted {member}", t0)

    if settings:
        t0 = time.monotonic()
        leader = patroni.leader(cj)["name"]
        code, text = patroni_request(f"{rest[leader]}/config", "PATCH",
                                     {"postgresql": {"parameters": settings}})
        if code != 200:
            raise ClusterError(f"Patroni refused the configuration change: HTTP {code} {text.strip()[:300]}")
        # Every member must have taken the new configuration (Patroni reloads it within a
        # loop or two) before it is restarted: a member restarted earlier keeps the old
        # value (measured once in CI: a standby restarted 8 s after the change kept it).
        regions = {r.name: r for r in c.topo.regions}

        def unseen() -> list[str]:
            return [n for n, r in regions.items()
                    if setting_state(member_settings(c, r, list(settings)), settings) == "unseen"]
        try:
            wait_for(30, "every member to take the new configuration", lambda: not unseen(), 0.5)
        except ClusterError:
            raise ClusterError(
                f"{', '.join(unseen())} did not take {', '.join(settings)} within 30 s. A parameter "
                f"set in a member's own patroni.yml (postgresql.parameters: deploy/patroni sets "
                f"shared_buffers there) overrides the cluster-wide one; nothing was restarted") from None
        stage(f"set {', '.join(f'{k}={v}' for k, v in settings.items())} in Patroni's configuration", t0)
    cj = c.cluster_json()
    leader = patroni.leader(cj)["name"]
    sync = next(m["name"] for m in patroni.members(cj) if m.get("role") == "sync_standby")
    others = [m["name"] for m in patroni.members(cj) if m["name"] not in (leader, sync)]
    report.update({"leader_before": leader, "sync_standby_before": sync})
    for m in others + [sync]:
        restart(m)
    t0 = time.monotonic()
    cj = c.cluster_json()
    # (Patroni may have moved the sync role while the sync standby restarted)
    sync_now = next(m["name"] for m in patroni.members(cj) if m.get("role") == "sync_standby")
    report["switchover_to"] = sync_now
    code, text = patroni_request(f"{rest[leader]}/switchover", "POST", {"leader": leader, "candidate": sync_now})
    if code != 200:
        raise ClusterError(f"Patroni refused the switchover {leader} -> {sync_now}: HTTP {code} {text.strip()[:300]}")
    wait_for(120, f"{sync_now} leading", lambda: (patroni.leader(c.cluster_json()) or {}).get("name") == sync_now, 0.5)
    wait_caught_up(f"{leader} streaming from {sync_now}")
    stage(f"switchover {leader} -> {sync_now}", t0)
    restart(leader)

    def still_pending() -> list[str]:
        out = []
        for name, url in rest.items():
            j = http_json(f"{url}/patroni")
            if j is None:
                out.append(f"{name} (Patroni did not answer)")
            elif j.get("pending_restart"):
                out.append(name)
        if settings:
            for r in c.topo.regions:
                st = setting_state(member_settings(c, r, list(settings)), settings)
                if st != "applied":
                    out.append(f"{r.name} ({st})")
        return out
    # Every member has answered as streaming and caught up (restart), so what is left is
    # read once more. A member that did not answer (a psql past its 5 s on a saturated
    # host: seen once, `us-east (unseen)` right after a catch-up; "unseen" also covers a
    # member that answered with the old value) is asked again every 2 s, for about a
    # minute (a round that starts before the minute ends finishes), before the maintenance
    # is called incomplete. A value pending a restart is not waited for: it will not change
    # by itself. A Patroni that does not answer counts as not done.
    pending = still_pending()
    end = time.monotonic() + 60
    while any("did not answer" in p or "unseen" in p for p in pending) and time.monotonic() < end:
        time.sleep(2)
        pending = still_pending()
    if pending:
        raise ClusterError(f"members not done after the maintenance (pending a restart, not answering, or "
                           f"without the new setting): {', '.join(pending)}")
    report["leader_after"] = patroni.leader(c.cluster_json())["name"]
    log(f"pg-maintenance: done; primary {leader} -> {report['leader_after']}, every member restarted")
    return report
