"""The operations programs' reports on the operations dashboard.

A rollout, a chaos run and a chaos day write their reports under <state>/ (rollout/,
chaos/) as before; they also send them to the portal (POST /api/v1/ops/reports, the ops
token) so the dashboard can show a rollout in progress with its decisions and the chaos
practice, without a shell on the controller's machine. A report is sent again as it grows
(a rollout after each judgement, at most every `min_interval_s`); the portal keeps the
newest version of each (kind, id).

Sending never holds up the program it reports on: a report that is still growing is posted
from a background thread (skipped while the previous one is still on its way; the next
version follows within seconds), the last version in the caller's thread within about 10 s.
The edge first, then two nodes directly; when none takes it, one line on stderr says so
and the file on disk stays the record.
"""
from __future__ import annotations

import json
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

# The node refuses bodies over 1 MiB ([server] body_limit_bytes); a long rollout's
# judgements or a day's windows are trimmed to fit under this.
MAX_BYTES = 700_000
TEXT_MAX = 32 * 1024   # the node's limit on the readable text (UTF-8 bytes)


def cut_text(text: str) -> str:
    b = text.encode()
    if len(b) <= TEXT_MAX:
        return text
    return b[:TEXT_MAX - 64].decode(errors="ignore") + "\n... (cut: the whole report is in the file)"


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1000):03d}Z"


def shrink(report: dict, limit: int = MAX_BYTES) -> dict:
    """The report, with its longest lists cut to their newest entries until its JSON fits
    in `limit` bytes; "_trimmed" names each cut list and its full length."""
    def size(r: dict) -> int:
        return len(json.dumps(r, default=str).encode())
    if size(report) <= limit:
        return report
    out = json.loads(json.dumps(report, default=str))
    trimmed: dict[str, int] = {}

    def lists(node, path=""):
        if isinstance(node, dict):
            for k, v in node.items():
                yield from lists(v, f"{path}.{k}" if path else k)
        elif isinstance(node, list):
            yield path, node
            for i, v in enumerate(node):
                yield from lists(v, f"{path}[{i}]")

    while size(out) > limit:
        candidates = [(len(json.dumps(lst, default=str)), p, lst) for p, lst in lists(out) if len(lst) > 1]
        if not candidates:
            raise ValueError(f"a report of {size(out)} bytes cannot be cut under {limit}")
        _, path, lst = max(candidates, key=lambda x: x[0])
        trimmed.setdefault(path, len(lst))
        del lst[: len(lst) - len(lst) // 2]
    out["_trimmed"] = trimmed
    return out


def payload(kind: str, rid: str, title: str, outcome: str, started: float, ended: float | None,
            text: str, report: dict) -> dict:
    if kind not in ("rollout", "chaos-run", "chaos-day"):
        raise ValueError(f"unknown report kind {kind!r}")
    return {"kind": kind, "id": rid, "title": title[:512] or rid, "outcome": (outcome or "?")[:256],
            "started_at": iso(started), "ended_at": iso(ended) if ended is not None else None,
            "text": cut_text(text),
            "report": shrink(report)}


@dataclass
class Publisher:
    """Sends reports to the first portal endpoint that takes them."""
    bases: list[str]
    token_file: object  # Path
    min_interval_s: float = 5.0
    timeout_s: float = 3.0
    _last: dict[tuple[str, str], float] = field(default_factory=dict)
    _warned: bool = False
    _thread: threading.Thread | None = None

    @classmethod
    def for_cluster(cls, c) -> "Publisher":
        bases = [f"http://127.0.0.1:{c.topo.haproxy['http']}"]
        bases += [f"http://{n.host}:{n.port}" for n in c.topo.nodes[:2]]
        return cls(bases, c.ops_token_file)

    def send(self, body: dict, final: bool = False) -> bool:
        """Final: posts now (after any post still on its way), True when a node stored it.
        Not final: posts from a background thread and returns False at once; skipped when the
        same report went less than min_interval_s ago or a post is still on its way."""
        key = (body["kind"], body["id"])
        now = time.monotonic()
        busy = self._thread is not None and self._thread.is_alive()
        if not final:
            if busy or now - self._last.get(key, -1e9) < self.min_interval_s:
                return False
            self._last[key] = now
            self._thread = threading.Thread(target=self.post, args=(body,), daemon=True)
            self._thread.start()
            return False
        if busy:
            self._thread.join(self.timeout_s * len(self.bases))
        self._last[key] = now
        return self.post(body)

    def post(self, body: dict) -> bool:
        try:
            token = open(self.token_file).read().strip()
        except OSError as e:
            return self._warn(f"no ops token ({e})")
        data = json.dumps(body, default=str).encode()
        errors = []
        for b in self.bases:
            req = urllib.request.Request(f"{b}/api/v1/ops/reports", data=data, method="POST",
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                    if r.status in (200, 201):
                        return True
                    errors.append(f"{b}: HTTP {r.status}")
            except urllib.error.HTTPError as e:
                detail = e.read()[:300].decode(errors="replace")
                errors.append(f"{b}: HTTP {e.code} {detail}")
                if e.code in (400, 401, 403, 413):
                    break  # the same answer from every node
            except Exception as e:  # noqa: BLE001 - refused, reset, timeout: the next node
                errors.append(f"{b}: {e}")
        return self._warn("; ".join(errors[:3]))

    def _warn(self, why: str) -> bool:
        if not self._warned:
            print(f"reports: not sent to the portal's dashboard (the file under the state folder is kept): {why}",
                  file=sys.stderr, flush=True)
            self._warned = True
        return False
