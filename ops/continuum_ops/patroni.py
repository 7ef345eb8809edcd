"""Patroni: reading its view of the cluster (GET /cluster) and deciding from it."""

from __future__ import annotations

RUNNING = ("running", "streaming")
ROLE_NAMES = {"leader": "primary", "standby_leader": "primary", "sync_standby": "sync_standby",
              "replica": "replica"}
DOWN_STATES = ("stopped", "crashed", "start failed", "down")


def members(cluster: dict | None) -> list[dict]:
    return (cluster or {}).get("members", []) or []


def healthy(cluster: dict | None, want: int) -> bool:
    """A running leader, a streaming sync standby, and all `want` members running."""
    m = members(cluster)
    ok = [x for x in m if x.get("state") in RUNNING]
    lead = [x for x in ok if x.get("role") == "leader"]
    sync = [x for x in ok if x.get("role") == "sync_standby"]
    return bool(lead) and bool(sync) and len(ok) == want


def leader(cluster: dict | None) -> dict | None:
    for x in members(cluster):
        if x.get("role") == "leader" and x.get("state") == "running":
            return x
    return None


def member(cluster: dict | None, name: str) -> dict | None:
    for x in members(cluster):
        if x.get("name") == name:
            return x
    return None


def role(m: dict | None) -> str:
    """primary | sync_standby | replica | down, as the status shows it."""
    if not m:
        return "down"
    if m.get("state", "down") in DOWN_STATES:
        return "down"
    return ROLE_NAMES.get(m.get("role"), "replica")


def serving(cluster: dict | None, name: str, streaming_names: set[str]) -> bool:
    """The region's member is the running leader, or a running standby the primary streams to."""
    m = member(cluster, name)
    if not m:
        return False
    if m.get("role") == "leader" and m.get("state") == "running":
        return True
    return m.get("state") in RUNNING and name in streaming_names
