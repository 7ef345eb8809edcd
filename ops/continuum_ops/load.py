"""Mixed read/write load through the Continuum edge, for failover tests and the drill.

Python standard library only. Used by tests/cluster (through tests/cluster/load.py), bench/drill
and the chaos runner (chaos.py).

    load = MixedLoad(edge_url, readers=pick_readers(...), writers=pick_writers(...))
    load.login()           # every client logs in BEFORE the fault
    load.start()
    ...                    # warm-up
    t_fault = load.mark("fault")   # inject the fault right after
    ...
    load.stop()
    fig = load.figures(window_start=t_fault)                     # counts, failures, stalls
    fig.update(load.verify_writes(lambda sql: psql(...)))        # lost / duplicates, in SQL

Readers are patients (`patient-<id>`) reading their own `Patient/{id}/$summary` and
`AllergyIntolerance?patient={id}` alternately; writers are providers (`provider-<id>`)
POSTing DocumentReferences for a patient they have a care relationship with. Both are the
critical tier. Optional tier clients (`tier_clients`, patients too; the chaos runner uses
them) go round the other three tiers: their appointments and messages (high), their account
and invoices (medium), the article list and their recommendations (low); their requests are
counted per tier (`figures()["tiers"]`), never in the critical figures. Each client is
pinned to a region with `X-Continuum-Region`. Each write has a fresh `Idempotency-Key` and a
unique marker in its text. There are NO client-side retries: every non-2xx answer and every
connection error or timeout is a failed request. One fresh connection per request
(`Connection: close`), so a failure is never a stale keep-alive connection of the client's.

Every request is recorded (kind, client, region, time sent, time answered, status or error,
X-Request-Id, and for writes the key, the marker and the returned note id). Times are
`time.monotonic()`; `wall(t)` converts one to wall-clock time for matching with logs.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEMO_PASSWORD = "continuum-demo"
FHIR_JSON = "application/fhir+json"


# ---------------------------------------------------------------------------------------
# HTTP


def http_request(base: str, method: str, path: str, body: bytes | None = None,
                 headers: dict | None = None, timeout: float = 30.0):
    """One request on a fresh connection. Returns (status, headers, body bytes). Raises
    OSError / http.client.HTTPException on a connection problem or timeout."""
    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    h = {"Connection": "close", "Accept": "application/fhir+json, application/json"}
    h.update(headers or {})
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        return r.status, r.headers, data
    finally:
        conn.close()


def login(base: str, username: str, region: str | None = None, password: str = DEMO_PASSWORD,
          max_wait: float = 60.0) -> str:
    """POST /api/v1/session; waits out 429 (login throttle) and 503 (not ready) up to max_wait."""
    deadline = time.monotonic() + max_wait
    body = json.dumps({"username": username, "password": password}).encode()
    headers = {"Content-Type": "application/json"}
    if region:
        headers["X-Continuum-Region"] = region
    last = None
    while True:
        try:
            status, hdrs, data = http_request(base, "POST", "/api/v1/session", body, headers, timeout=30)
            if status == 200:
                token = json.loads(data).get("access_token")
                if token:
                    return token
            last = f"HTTP {status}: {data[:300]!r}"
            if status not in (429, 503):
                raise AssertionError(f"login {username} failed: {last}")
            try:
                wait = float(hdrs.get("Retry-After") or 1)
            except ValueError:
                wait = 1.0
        except (OSError, http.client.HTTPException) as e:
            last, wait = repr(e), 0.5
        if time.monotonic() + wait > deadline:
            raise AssertionError(f"login {username}: no token after {max_wait:.0f}s (last: {last})")
        time.sleep(max(0.2, wait))


def note_body(patient_id, text: str, title: str = "Failover drill note") -> bytes:
    return json.dumps({
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "preliminary",
        "subject": {"reference": f"Patient/{patient_id}"},
        "content": [{"attachment": {"contentType": "text/plain",
                                    "data": base64.b64encode(text.encode()).decode(),
                                    "title": title}}],
    }).encode()


# ---------------------------------------------------------------------------------------
# Picking clients from the seeded database


def pick_readers(sql, regions: list[str], n: int = 6) -> list[dict]:
    """n patients (preferably with allergies), spread round robin over regions.
    `sql(query) -> str` runs a query and returns psql's unaligned, tuples-only output."""
    out = sql("SELECT p.id FROM patient p JOIN account a ON a.username = 'patient-' || p.id "
              "ORDER BY (SELECT count(*) FROM allergy x WHERE x.patient_id = p.id) > 0 DESC, p.id "
              f"LIMIT {int(n)}")
    ids = [int(x) for x in out.split()]
    if len(ids) < n:
        raise RuntimeError(f"only {len(ids)} patients with accounts (need {n})")
    return [{"username": f"patient-{pid}", "patient_id": pid, "region": regions[i % len(regions)]}
            for i, pid in enumerate(ids)]


def pick_writers(sql, regions: list[str], n: int = 2) -> list[dict]:
    """n providers, each with one patient it has a care relationship with, spread over regions."""
    out = sql("SELECT c.practitioner_id || ' ' || min(c.patient_id) FROM care_relationship c "
              "JOIN account a ON a.username = 'provider-' || c.practitioner_id AND a.role = 'provider' "
              f"GROUP BY c.practitioner_id ORDER BY c.practitioner_id LIMIT {int(n)}")
    pairs = [tuple(int(v) for v in line.split()) for line in out.splitlines() if line.strip()]
    if len(pairs) < n:
        raise RuntimeError(f"only {len(pairs)} providers with a care relationship (need {n})")
    return [{"username": f"provider-{prac}", "practitioner_id": prac, "patient_id": pat,
             "region": regions[i % len(regions)]} for i, (prac, pat) in enumerate(pairs)]


# ---------------------------------------------------------------------------------------
# The load


# The tier clients' rounds: (tier, path template; {pid} is the client's patient).
TIER_REQUESTS = (("high", "/fhir/R4/Appointment?patient={pid}"),
                 ("medium", "/fhir/R4/Account?patient={pid}"),
                 ("low", "/api/v1/articles"),
                 ("high", "/fhir/R4/Communication?patient={pid}"),
                 ("medium", "/fhir/R4/Invoice?patient={pid}"),
                 ("low", "/api/v1/recommendations?patient={pid}"))
TIERS = ("high", "medium", "low")


@dataclass
class Rec:
    kind: str            # "read" | "write" (the critical tier) | "high" | "medium" | "low"
    client: str          # e.g. "r0", "w1"
    region: str
    path: str
    sent: float          # monotonic
    answered: float      # monotonic (when the answer or the error arrived)
    status: int | None   # HTTP status, None on a connection error / timeout
    error: str | None    # exception text when status is None
    request_id: str
    key: str | None = None
    marker: str | None = None
    note_id: str | None = None
    attempts: int = 1
    first_error: str | None = None   # what the first attempt met when a client retry followed

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def failure_kind(self) -> str:
        if self.ok:
            return ""
        return f"HTTP {self.status}" if self.status is not None else f"error {self.error}"


@dataclass
class Client:
    name: str
    kind: str
    username: str
    patient_id: int
    region: str
    token: str = ""
    tokens: list = field(default_factory=list)   # sessions_per_client > 1: rotated per request
    recs: list = field(default_factory=list)
    inflight: tuple | None = None   # (kind, sent) of the request not answered yet


class MixedLoad:
    def __init__(self, base: str, readers: list[dict], writers: list[dict], pause: float = 0.02,
                 timeout: float = 30.0, run_id: str | None = None, sessions_per_client: int = 1,
                 client_retries: int = 0, tier_clients: list[dict] | None = None):
        """`sessions_per_client`: each client logs in that many times and rotates over its
        sessions request by request. The edge hashes sessions (Authorization) onto nodes,
        so a canary's share of a few sessions is lumpy; many sessions make it the weights'.
        `client_retries`: a request that got no HTTP answer at all (refused, reset, closed:
        the edge instance it reached died) is sent again that many times, after a pause of
        0.1 s times the attempt, with the same Idempotency-Key -- what a browser or app does
        with a GET and with a keyed POST. (Sent at once, a resend could reach the killed
        instance's listener in the moment before the kernel closed it, and be reset too.)
        Default 0: every failure counts; `figures()` reports both ways."""
        self.base = base
        self.client_retries = max(0, int(client_retries))
        self.sessions_per_client = max(1, int(sessions_per_client))
        self.pause = pause
        self.timeout = timeout
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.clients = [Client(f"r{i}", "read", r["username"], r["patient_id"], r["region"])
                        for i, r in enumerate(readers)]
        self.clients += [Client(f"w{i}", "write", w["username"], w["patient_id"], w["region"])
                         for i, w in enumerate(writers)]
        self.clients += [Client(f"t{i}", "tiers", t["username"], t["patient_id"], t["region"])
                         for i, t in enumerate(tier_clients or [])]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.marks: dict[str, float] = {}
        self.t_start = self.t_stop = None
        # monotonic -> wall clock
        self._wall_off = time.time() - time.monotonic()

    def wall(self, t: float) -> float:
        return t + self._wall_off

    def mark_prefix(self) -> str:
        return f"ctm-{self.run_id}-"

    # -- lifecycle -----------------------------------------------------------------------

    def login(self) -> None:
        for c in self.clients:
            c.tokens = [login(self.base, c.username, c.region) for _ in range(self.sessions_per_client)]
            c.token = c.tokens[0]

    def start(self) -> None:
        if any(not c.token for c in self.clients):
            self.login()
        self._stop.clear()
        self.t_start = time.monotonic()
        for c in self.clients:
            t = threading.Thread(target=self._run, args=(c,), name=f"load-{c.name}", daemon=True)
            t.start()
            self._threads.append(t)

    def mark(self, name: str) -> float:
        t = time.monotonic()
        self.marks[name] = t
        return t

    def stop(self, join_timeout: float | None = None) -> None:
        """Stops sending; waits for the requests in flight (each bounded by self.timeout)."""
        self._stop.set()
        if self.t_stop is None:
            self.t_stop = time.monotonic()
        for t in self._threads:
            t.join(join_timeout if join_timeout is not None else self.timeout + 5)
        self._threads = [t for t in self._threads if t.is_alive()]

    @property
    def running(self) -> bool:
        return bool(self._threads) and not self._stop.is_set()

    # -- one client ----------------------------------------------------------------------

    def _run(self, c: Client) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            rid = f"ct-{self.run_id}-{c.name}-{n}"
            token = c.tokens[n % len(c.tokens)] if c.tokens else c.token
            headers = {"Authorization": f"Bearer {token}", "X-Continuum-Region": c.region,
                       "X-Request-Id": rid}
            key = marker = None
            kind = c.kind
            if c.kind == "tiers":
                kind, tmpl = TIER_REQUESTS[(n - 1) % len(TIER_REQUESTS)]
                path, method, body = tmpl.format(pid=c.patient_id), "GET", None
            elif c.kind == "read":
                if n % 2:
                    path = f"/fhir/R4/Patient/{c.patient_id}/$summary"
                else:
                    path = f"/fhir/R4/AllergyIntolerance?patient={c.patient_id}"
                method, body = "GET", None
            else:
                path, method = "/fhir/R4/DocumentReference", "POST"
                key = f"ck-{self.run_id}-{c.name}-{n}-{uuid.uuid4().hex[:8]}"
                marker = f"{self.mark_prefix()}{c.name}-{n}"
                body = note_body(c.patient_id, f"Follow-up, vitals stable. [{marker}]")
                headers["Idempotency-Key"] = key
                headers["Content-Type"] = FHIR_JSON
            sent = time.monotonic()
            c.inflight = (kind, sent)
            status = error = note_id = first_error = None
            attempts = 0
            while True:
                attempts += 1
                status = error = None
                try:
                    status, _, data = http_request(self.base, method, path, body, headers, self.timeout)
                    if c.kind == "write" and 200 <= status < 300:
                        try:
                            note_id = str(json.loads(data).get("id") or "") or None
                        except ValueError:
                            note_id = None
                except (OSError, http.client.HTTPException) as e:
                    error = f"{type(e).__name__}: {e}"[:200]
                # only a request that got no answer at all is retried, and only until the
                # deadline of a single request has passed
                if (status is not None or attempts > self.client_retries or self._stop.is_set()
                        or time.monotonic() - sent > self.timeout):
                    break
                first_error = first_error or error
                self._stop.wait(0.1 * attempts)
            answered = time.monotonic()
            c.recs.append(Rec(kind, c.name, c.region, path, sent, answered, status, error, rid,
                              key, marker, note_id, attempts, first_error))
            c.inflight = None
            self._stop.wait(self.pause)

    # -- figures -------------------------------------------------------------------------

    def records(self, kind: str | None = None) -> list[Rec]:
        """The critical tier's requests (reads and writes), or those of one kind (a tier's)."""
        out = [r for c in self.clients for r in c.recs
               if (r.kind in ("read", "write") if kind is None else r.kind == kind)]
        return sorted(out, key=lambda r: r.sent)

    def figures(self, window_start: float | None = None, window_end: float | None = None,
                counts_in_window: bool = False) -> dict:
        """Counts over the whole run; stalls over [window_start, window_end] (default: the
        whole run). A stall is the longest interval, inside the window, without a
        successful completion of that kind (window edges included); `client_*_stall` is
        the same per client (the longest any one client went without a success)."""
        w0 = self.t_start if window_start is None else window_start
        w1 = (self.t_stop or time.monotonic()) if window_end is None else window_end
        recs = self.records()
        if counts_in_window:   # only the requests sent inside the window (one experiment of a day)
            recs = [r for r in recs if w0 <= r.sent < w1]
        failed = [r for r in recs if not r.ok]
        by_kind: dict[str, int] = {}
        for r in failed:
            k = f"{r.kind} {r.failure_kind}"
            by_kind[k] = by_kind.get(k, 0) + 1

        def stall(times):
            pts = [w0] + sorted(t for t in times if w0 <= t <= w1) + [w1]
            gaps = [(b - a, a) for a, b in zip(pts, pts[1:])]
            return max(gaps) if gaps else (0.0, w0)

        out = {
            "sent": len(recs),
            "reads": len([r for r in recs if r.kind == "read"]),
            "writes": len([r for r in recs if r.kind == "write"]),
            "failed": len(failed),
            "failed_reads": len([r for r in failed if r.kind == "read"]),
            "failed_writes": len([r for r in failed if r.kind == "write"]),
            "failed_by_kind": by_kind,
            # what a client without retries would have seen (equal to failed without them)
            "client_retries": self.client_retries,
            "retried": len([r for r in recs if r.attempts > 1]),
            "failed_without_client_retries": len([r for r in recs if not r.ok or r.first_error]),
            "acked_writes": len([r for r in recs if r.kind == "write" and r.ok]),
            "window_s": w1 - w0,
        }
        for kind in ("read", "write"):
            ok_times = [r.answered for r in recs if r.kind == kind and r.ok]
            s, at = stall(ok_times)
            out[f"{kind}_stall_s"] = s
            out[f"{kind}_stall_at_s"] = at - w0   # where it started, relative to the window start
            worst = 0.0
            for c in self.clients:
                if c.kind == kind:
                    worst = max(worst, stall([r.answered for r in c.recs if r.ok])[0])
            out[f"client_{kind}_stall_s"] = worst
            lat = [r.answered - r.sent for r in recs if r.kind == kind and r.ok and w0 <= r.answered <= w1]
            out[f"max_{kind}_latency_s"] = max(lat) if lat else 0.0
        if any(c.kind == "tiers" for c in self.clients):
            out["tiers"] = {}
            for tier in TIERS:
                trecs = self.records(tier)
                if counts_in_window:
                    trecs = [r for r in trecs if w0 <= r.sent < w1]
                tfailed = [r for r in trecs if not r.ok]
                kinds: dict[str, int] = {}
                for r in tfailed:
                    kinds[r.failure_kind] = kinds.get(r.failure_kind, 0) + 1
                s, at = stall([r.answered for r in trecs if r.ok])
                out["tiers"][tier] = {"sent": len(trecs), "failed": len(tfailed), "failed_by_kind": kinds,
                                      "stall_s": s, "stall_at_s": at - w0}
        return out

    def tier_failures_between(self, t0: float, t1: float, hung_after: float = 3.0) -> dict[str, int]:
        """Failed requests per non-critical tier among those sent in [t0, t1); a request of
        theirs still unanswered after `hung_after` seconds counts as failed too (a hung
        request is recorded only when its timeout ends, long after)."""
        now = time.monotonic()
        out = {tier: len([r for r in self.records(tier) if t0 <= r.sent < t1 and not r.ok]) for tier in TIERS}
        for c in self.clients:
            fl = c.inflight
            if fl is not None and fl[0] in out and t0 <= fl[1] < t1 and now - fl[1] > hung_after:
                out[fl[0]] += 1
        return out

    def failures(self, limit: int = 20) -> list[str]:
        """The first failed requests, readable (for assertion messages)."""
        out = []
        base = self.t_start or 0.0
        for r in self.records():
            if not r.ok:
                out.append(f"{r.kind} {r.client}@{r.region} {r.path} rid={r.request_id} "
                           f"sent=+{r.sent - base:.2f}s took={r.answered - r.sent:.2f}s "
                           f"wall={time.strftime('%H:%M:%S', time.localtime(self.wall(r.sent)))}"
                           f" -> {r.failure_kind}")
                if len(out) >= limit:
                    break
        return out

    # -- durability check ------------------------------------------------------------------

    def verify_writes(self, sql, window_start: float | None = None, window_end: float | None = None) -> dict:
        """Checks in SQL (on the primary) that every acknowledged write's marker exists
        exactly once, and that the id the client got back is that row's; with a window, the
        writes sent inside it (one experiment of a day).
        `sql(query) -> str`: psql unaligned, tuples-only output, '|' separated."""
        prefix = self.mark_prefix()
        out = sql("SELECT m || '|' || count(*) || '|' || string_agg(id::text, ',' ORDER BY id) FROM "
                  f"(SELECT id, substring(content FROM '{prefix}[a-z0-9-]+') AS m FROM clinical_note "
                  f"WHERE content LIKE '%{prefix}%') t GROUP BY m")
        found: dict[str, tuple[int, list[str]]] = {}
        for line in out.splitlines():
            if not line.strip():
                continue
            marker, count, ids = line.split("|")
            found[marker] = (int(count), ids.split(","))
        writes = self.records("write")
        if window_start is not None or window_end is not None:
            lo = window_start if window_start is not None else float("-inf")
            hi = window_end if window_end is not None else float("inf")
            writes = [r for r in writes if lo <= r.sent < hi]
            mine = {r.marker for r in writes}
            found = {m: v for m, v in found.items() if m in mine}
        acked = [r for r in writes if r.ok]
        lost = [r for r in acked if r.marker not in found]
        dup_markers = [m for m, (n, _) in found.items() if n > 1]
        wrong_id = [r for r in acked if r.marker in found and r.note_id and r.note_id not in found[r.marker][1]]
        unacked_present = [r for r in writes if not r.ok and r.marker in found]
        return {
            "acked_writes": len(acked),
            "lost": len(lost),
            "duplicates": len(dup_markers),
            "wrong_ids": len(wrong_id),
            "unacked_but_stored": len(unacked_present),
            "lost_detail": [f"{r.marker} key={r.key} rid={r.request_id} id={r.note_id}" for r in lost[:10]],
            "duplicate_detail": [f"{m} ids={found[m][1]}" for m in dup_markers[:10]],
            "wrong_id_detail": [f"{r.marker} got id {r.note_id}, stored {found[r.marker][1]}" for r in wrong_id[:10]],
        }

    def phi_records(self, window_start: float | None = None, window_end: float | None = None) -> list[Rec]:
        """The acknowledged answers that disclosed or changed a patient's data: the critical
        reads and writes, and the tier clients' requests about their patient (the article
        list names nobody). Each must have a success record in the audit trail."""
        lo = window_start if window_start is not None else float("-inf")
        hi = window_end if window_end is not None else float("inf")
        return sorted((r for c in self.clients for r in c.recs
                       if r.ok and lo <= r.sent < hi
                       and (r.kind in ("read", "write") or "patient=" in r.path)), key=lambda r: r.sent)

    def verify_audit(self, sql, window_start: float | None = None, window_end: float | None = None,
                     wait_s: float = 60.0, sleep=time.sleep, clock=time.monotonic) -> dict:
        """Checks in SQL that every acknowledged PHI answer (phi_records) has a success
        record with its X-Request-Id in audit_event. The table is the nodes' journals
        shipped asynchronously (a killed node's once it runs again), so the check waits up
        to `wait_s` for the shipping to catch up; what is still missing then is lost.
        `sql(query) -> str` as for verify_writes."""
        want = {r.request_id: r for r in self.phi_records(window_start, window_end)}
        prefix = f"ct-{self.run_id}-"
        deadline = clock() + wait_s
        missing: list[str] = sorted(want)
        # only this window's rows (a minute's slack for clocks): the answer stays small on
        # a long day (the table has no index for this; each check is one scan)
        since = min((r.sent for r in want.values()), default=clock())
        since_wall = self.wall(since) - 60
        while True:
            # request ids are [A-Za-z0-9._:-] (the load makes them): safe to quote
            out = sql("SELECT DISTINCT request_id FROM audit_event WHERE outcome = 'success' "
                      f"AND recorded_at >= to_timestamp({since_wall:.3f}) AND request_id LIKE '{prefix}%'")
            found = {line.strip() for line in out.splitlines() if line.strip()}
            missing = sorted(set(want) - found)
            if not missing or clock() >= deadline:
                break
            sleep(2.0)
        return {"acked_phi": len(want), "missing": len(missing),
                "missing_detail": [f"{want[m].kind} {want[m].path} rid={m} status={want[m].status} "
                                   f"region={want[m].region}" for m in missing[:10]]}


def summary_line(name: str, fig: dict) -> str:
    """One line with a test's figures, for CI logs."""
    parts = [f"sent={fig.get('sent', 0)}", f"reads={fig.get('reads', 0)}", f"writes={fig.get('writes', 0)}",
             f"failed={fig.get('failed', 0)}"]
    if fig.get("failed_by_kind"):
        parts.append("failures=" + ",".join(f"{k}:{v}" for k, v in sorted(fig["failed_by_kind"].items())))
    for k in ("acked_writes", "lost", "duplicates", "wrong_ids"):
        if k in fig:
            parts.append(f"{k}={fig[k]}")
    parts += [f"read_stall={fig.get('read_stall_s', 0):.2f}s(at+{fig.get('read_stall_at_s', 0):.1f}s)",
              f"write_stall={fig.get('write_stall_s', 0):.2f}s(at+{fig.get('write_stall_at_s', 0):.1f}s)",
              f"client_read_stall={fig.get('client_read_stall_s', 0):.2f}s",
              f"client_write_stall={fig.get('client_write_stall_s', 0):.2f}s",
              f"max_read_latency={fig.get('max_read_latency_s', 0):.2f}s",
              f"max_write_latency={fig.get('max_write_latency_s', 0):.2f}s"]
    for k, v in fig.items():
        if k.startswith("t_") and isinstance(v, (int, float)):
            parts.append(f"{k[2:]}={v:.1f}s")
    # failed= is what a client saw through the edge, after HAProxy's retries on other nodes.
    return f"[cluster] {name}: " + " ".join(parts) + " (failed: through the edge, after its retries)"
