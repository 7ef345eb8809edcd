"""Structured mutations of every route's body, end to end (issue 10: "fuzz the parsers that
take untrusted bytes ... JSON bodies of every POST").

The routes come from the binary's own table (`continuum routes --json`): every route that
is not a GET must have an entry in SEEDS below (a valid body, or `{}` for a route that
takes none), so a route added later fails this test until it is given one. From each seed
the test derives mutations (fixed random seed, a bounded number per route): wrong types,
missing and unknown keys, huge strings, deep nesting, invalid UTF-8, numbers out of range,
null, arrays for objects and objects for arrays, truncated JSON, the wrong Content-Type,
a body over the server's limit. Each is sent by a caller the route allows (a role's
session, or the ops token), with an Idempotency-Key, and must be refused:

  * never a 5xx, never a 2xx/3xx: a 4xx whose body is a FHIR OperationOutcome (or a JSON
    error) with a message;
  * nothing changed: a checksum of every table but the audit trail's is the same before
    and after (bookkeeping that moves by itself excepted: IGNORED_COLUMNS);
  * the audit trail has each attempt: a record per request, outcome failure or denied,
    with the route's action, and no write attempt ("attempt" record) among them. The ops
    routes audit nothing (machine traffic, no PHI: src/portal/access.hpp); their record
    is the refusal counter continuum_ops_refused_total{reason="invalid_body"}, which must
    grow by one per attempt. A body over the limit is refused by the HTTP layer before
    any route (413): it has no record of either kind.

Finally every seed is sent once as it is and must be accepted (or meet the business rule
named in SEEDS), which shows the refusals above were the mutations' doing.
"""

import copy
import json
import random
import re
import time
import unittest
import uuid

from harness import BINARY, ContinuumTestCase, b64, require_binary, run, wait_until

RANDOM_SEED = 20261202
PER_ROUTE = 250         # mutations per route at most (each class is represented first)
SEND_BUDGET_S = 40      # the whole mutation phase; stops early (and says so) past it
HUGE = 60_000           # a huge string: under the 64 KiB body limit, over every field's
DEEP = 5_000            # nesting depth (the JSON parser's limit is 32)
BAD_UTF8 = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80", b"\xe2\x82"]
WRONG_CONTENT_TYPES = [None, "text/plain", "application/x-www-form-urlencoded",
                       "multipart/form-data; boundary=x", "application/xml", "application/jsonx",
                       "application/json-patch+json", "text/json"]
# Columns that change without any request, left out of the checksums: a session's "last
# seen" (every authenticated request moves it) and the notification worker's delivery state
# (it retries the booking notice of setUpClass's appointment meanwhile; a notification a
# request made would still show as a new row), and the node registry's heartbeat (every 5 s;
# a row a request made would still show).
IGNORED_COLUMNS = {"session": ["last_seen_at"],
                   "continuum_node": ["heartbeat_at"],
                   "notification": ["status", "channel_used", "attempts", "sms_attempted",
                                    "next_attempt_at", "locked_by", "locked_until", "last_error",
                                    "sent_at"]}
AUDIT_TABLES = ("audit_event", "audit_head")


class Seed:
    """A valid body for one route and what the test may assume about its fields.

    Paths are dotted ("content.0.attachment.title"). Every path is required and refuses
    null unless listed in `optional` / `nullable`; every object refuses unknown keys unless
    listed in `open` ("" is the body itself)."""

    def __init__(self, role, body, path=None, fhir=False, optional=(), nullable=(), open=(),
                 numbers=None, accepted=(200, 201)):
        self.role = role          # "patient" | "provider" | "auditor" | "ops" | "anyone" | "logout"
        self.body = body          # dict; {} for a route that takes no body
        self.path = path          # the path parameter (a callable of the test class) or None
        self.fhir = fhir          # application/fhir+json is a JSON content type for it
        self.optional = set(optional)
        self.nullable = set(nullable)
        self.open = set(open)
        self.numbers = numbers or {}  # path -> more out-of-range numbers (raw JSON tokens)
        self.accepted = accepted  # statuses the seed itself gets


def _alerts():
    return {"version": "4", "status": "firing", "receiver": "continuum", "groupKey": "{}:{a}",
            "alerts": [{"status": "firing",
                        "labels": {"alertname": "BodyFuzz", "severity": "page"},
                        "annotations": {"summary": "s"},
                        "startsAt": "2026-12-02T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "http://prom/graph", "fingerprint": "abc123"}]}


def _journey():
    return {"journey": "patient", "vantage": "bodyfuzz", "target": "http://127.0.0.1:8080",
            "started_at": "2026-12-02T10:00:00Z", "finished_at": "2026-12-02T10:00:01Z",
            "success": False, "failed_step": "records", "error": "timeout",
            "steps": [{"name": "records", "method": "GET", "path": "/fhir/R4/Patient/1",
                       "status": 503, "duration_ms": 12.5, "budget_ms": 500, "ok": False,
                       "reason": "status", "excerpt": "..."}]}


# Every route but the GETs, by name. Bodies that name rows are filled in by setUpClass
# (the {...} placeholders). A route that takes no body has the seed {} (both JSON content
# types: RequireNoBody in src/portal/bodies.hpp).
SEEDS = {
    "ops.alerts.receive": Seed(
        "ops", _alerts(), optional={"alerts.0.generatorURL", "alerts.0.labels.severity",
                                    "alerts.0.annotations.summary"},
        nullable={"alerts.0.generatorURL"},
        # Alertmanager adds fields from version to version: the contract ignores them.
        open={"", "alerts.0", "alerts.0.labels", "alerts.0.annotations"}),
    "ops.journey_runs.receive": Seed(
        "ops", _journey(),
        optional={"failed_step", "error", "steps.0.reason", "steps.0.excerpt"},
        nullable={"failed_step", "error", "steps.0.reason", "steps.0.excerpt"},
        numbers={"steps.0.status": ["1000", "9223372036854775808", "18446744073709551616"]}),
    "ops.reports.receive": Seed(
        "ops", {"kind": "rollout", "id": "bodyfuzz", "title": "v1 -> v2", "outcome": "done",
                "started_at": "2026-12-02T10:00:00Z", "ended_at": "2026-12-02T10:30:00Z",
                "text": "rollout bodyfuzz: done", "report": {}},
        optional={"ended_at"}, nullable={"ended_at"}, open={"report"}),  # the report is free-form JSON
    # (the node runs with [ops] chaos_hooks: the low tier's pools held for a second)
    "ops.chaos.pool_hold": Seed("ops", {"tier": "low", "seconds": 1},
                                numbers={"seconds": ["1e3", "-1", "4294967297"]}),
    "ops.chaos.pool_release": Seed("ops", {}, fhir=True),
    "session.create": Seed("anyone", {"username": "demo-patient", "password": "continuum-demo"}),
    "session.delete": Seed("logout", {}, fhir=True, accepted=(204,)),
    # Refused at confirm (409: no enrolment in progress) is what a valid code gets first.
    "session.totp.confirm": Seed("auditor", {"code": "123456"}, accepted=(409,)),
    "session.totp.enrol": Seed("auditor", {"password": "continuum-demo"}, accepted=(201,)),
    "note.create": Seed(
        "provider",
        {"resourceType": "DocumentReference", "status": "current", "docStatus": "preliminary",
         "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3",
                              "display": "Progress note"}], "text": "Progress note"},
         "subject": {"reference": "Patient/{treated}", "display": "A patient"},
         "date": "2026-12-01T09:00:00Z", "description": "Follow-up",
         "author": [{"reference": "Practitioner/{practitioner}"}],
         "content": [{"attachment": {"contentType": "text/plain", "data": b64("Body fuzz seed."),
                                     "title": "Visit", "language": "en",
                                     "creation": "2026-12-01"}}]},
        fhir=True, accepted=(201,),
        optional={"status", "docStatus", "type", "type.coding", "type.text",
                  "type.coding.0.system", "type.coding.0.code", "type.coding.0.display",
                  "subject.display", "date", "description", "author",
                  "content.0.attachment.title", "content.0.attachment.language",
                  "content.0.attachment.creation"}),
    "note.sign": Seed("provider", {}, path=lambda t: t.note, fhir=True),
    "appointment.create": Seed(
        "patient",
        {"resourceType": "Appointment", "status": "booked",
         "slot": [{"reference": "Slot/{free_slot}"}], "description": "Check-up",
         "start": "2026-12-01T09:00:00Z", "end": "2026-12-01T09:30:00Z", "comment": "first visit",
         "participant": [{"actor": {"reference": "Patient/{me}"}, "status": "accepted"}]},
        fhir=True, accepted=(201,),
        optional={"status", "description", "start", "end", "comment", "participant",
                  "participant.0.actor", "participant.0.status"}),
    "appointment.cancel": Seed("patient", {}, path=lambda t: t.appointment, fhir=True),
    "appointment.reschedule": Seed("patient", {"slot": [{"reference": "Slot/{other_slot}"}]},
                                   path=lambda t: t.appointment, fhir=True, accepted=(200, 201)),
    "message.send": Seed(
        "patient",
        {"resourceType": "Communication", "status": "completed",
         "subject": {"reference": "Patient/{me}"}, "sender": {"reference": "Patient/{me}"},
         "recipient": [{"reference": "Practitioner/{practitioner}"}],
         "payload": [{"contentString": "A question from the body fuzz test."}],
         "topic": {"text": "Question"}, "sent": "2026-12-01T09:00:00Z"},
        fhir=True, accepted=(201,), optional={"status", "subject", "sender", "sent"}),
    "message.read": Seed("patient", {}, path=lambda t: t.message, fhir=True),
    "payment.create": Seed(
        "patient", {"invoice": "Invoice/{invoice}", "amount_cents": 100}, accepted=(201, 202),
        numbers={"amount_cents": ["0", "100000001", "9223372036854775808", "1.5", "1e2"]}),
    "insurance.verify": Seed("patient", {"coverage": "Coverage/{coverage}", "service": "office-visit"},
                             optional={"service"}, accepted=(201, 202, 422)),
    "pharmacy.refill": Seed("patient", {"medication": "MedicationStatement/{medication}"},
                            accepted=(201, 202, 422)),
}


# -- mutations -----------------------------------------------------------------------------

class Raw:
    """A JSON token placed verbatim (bytes) where a value goes."""
    counter = 0

    def __init__(self, data: bytes):
        Raw.counter += 1
        self.marker = f"@@raw{Raw.counter}@@"
        self.data = data


def encode(body) -> bytes:
    """JSON with Raw values (and Raw markers inside strings) substituted verbatim."""
    raws = {}

    def walk(v):
        if isinstance(v, Raw):
            raws[v.marker] = v.data
            return v.marker
        if isinstance(v, dict):
            return {walk(k) if isinstance(k, Raw) else k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    data = json.dumps(walk(body), ensure_ascii=False).encode()
    for marker, raw in raws.items():
        data = data.replace(f'"{marker}"'.encode(), raw)
    return data


def nodes(v, prefix=()):
    """(path tuple, value) of every value below the root."""
    items = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, list) else ()
    for k, x in items:
        yield prefix + (k,), x
        yield from nodes(x, prefix + (k,))


def dotted(path) -> str:
    return ".".join(str(p) for p in path)


def replaced(body, path, value=None, delete=False):
    out = copy.deepcopy(body)
    cur = out
    for k in path[:-1]:
        cur = cur[k]
    if delete:
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    return out


def other_types(v):
    """Values of other JSON types than v's (never an integer where an id could go)."""
    if isinstance(v, bool):
        return ["true", 1, {}, []]
    if isinstance(v, (int, float)):
        return [str(v), True, {}, [v]]
    if isinstance(v, str):
        return [1.5, False, {}, [v]]
    if isinstance(v, dict):
        return ["object", 2.5, True]
    if isinstance(v, list):
        return ["array", 3.5, False, {}]
    return [1.5]


def mutations(seed: Seed, rng: random.Random):
    """{class: [(label, body bytes, content type)]} for one seed."""
    ct = "application/fhir+json" if seed.fhir else "application/json"
    body = seed.body
    good = encode(body)
    out = {}

    def add(cls, label, data, content_type=ct):
        out.setdefault(cls, []).append((label, data, content_type))

    no_body = body == {}
    for wrong in WRONG_CONTENT_TYPES + ([] if seed.fhir else ["application/fhir+json"]):
        add("content-type", f"Content-Type {wrong}", good, wrong)
    for cut in sorted(rng.sample(range(1, len(good)), min(4, len(good) - 1))):
        add("truncated", f"cut at byte {cut}", good[:cut])
    for name, data in (("null", b"null"), ("array", b"[]"), ("string", b'"x"'), ("number", b"1"),
                       ("true", b"true"), ("array of the body", b"[" + good + b"]"),
                       ("two bodies", good + good)):
        add("body", f"body is {name}", data)
    if not no_body:
        add("body", "body is empty", b"")
        add("missing", "body is {}", b"{}")
    add("deep", "body nested", b'{"a":' * DEEP + b"1" + b"}" * DEEP)
    add("deep", "array nested", b"[" * DEEP + b"]" * DEEP)
    bad_key = dict(body)
    bad_key[Raw(b'"k' + BAD_UTF8[0] + b'"')] = 1
    add("utf8", "invalid UTF-8 in a key", encode(bad_key))
    if "" not in seed.open:
        add("extra", "unknown key", encode(dict(body, unexpectedField=1)))
        add("extra", "huge unknown key", encode(dict(body, **{"k" * HUGE: 1})))
    add("huge", "body over the limit", encode(dict(body, pad="x" * 70_000)))

    for path, v in nodes(body):
        d = dotted(path)
        for t in other_types(v):
            add("type", f"{d} = {json.dumps(t)[:20]}", encode(replaced(body, path, t)))
        if d not in seed.nullable:
            add("null", f"{d} = null", encode(replaced(body, path, None)))
        if isinstance(path[-1], str) and d not in seed.optional:
            add("missing", f"{d} missing", encode(replaced(body, path, delete=True)))
        if isinstance(v, dict):
            add("array-for-object", f"{d} = [{d}]", encode(replaced(body, path, [v])))
            if d not in seed.open:
                add("extra", f"unknown key in {d}", encode(replaced(body, path, dict(v, unexpectedField=1))))
        if isinstance(v, list) and v:
            add("object-for-array", f"{d} = {d}[0]", encode(replaced(body, path, v[0])))
        if isinstance(v, str):
            add("huge", f"{d} huge", encode(replaced(body, path, v + "x" * HUGE)))
            bad = rng.choice(BAD_UTF8)
            add("utf8", f"{d} + {bad!r}", encode(replaced(body, path, Raw(json.dumps(v).encode()[:-1] + bad + b'"'))))
        deep = Raw(b"[" * DEEP + b"]" * DEEP)
        add("deep", f"{d} nested", encode(replaced(body, path, deep)))
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            for tok in ["-1", "1e400", "-1e400"] + seed.numbers.get(d, []):
                add("number", f"{d} = {tok}", encode(replaced(body, path, Raw(tok.encode()))))
    for cases in out.values():
        rng.shuffle(cases)
    return out


def sample(classes: dict, n: int):
    """Round robin over the classes (so each is represented), up to n mutations."""
    picked, queues = [], [list(v) for _, v in sorted(classes.items())]
    while len(picked) < n and any(queues):
        for q in queues:
            if q and len(picked) < n:
                picked.append(q.pop(0))
    return picked


def fill(v, values):
    if isinstance(v, dict):
        return {k: fill(x, values) for k, x in v.items()}
    if isinstance(v, list):
        return [fill(x, values) for x in v]
    if isinstance(v, str):
        return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), m.group(0))), v)
    return v


def route_table():
    require_binary()
    return json.loads(run([BINARY, "routes", "--json"], timeout=30, check=True).stdout)


class BodyFuzzTest(ContinuumTestCase):
    PATIENTS = 60
    FACILITIES = 2
    START_SERVER = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = cls.cluster.add_server("node-1", {"ops": {"chaos_hooks": True}})  # + the harness's ops token
        cls.routes = route_table()
        c = cls.cluster
        me = c.scalar("SELECT patient_id AS p FROM account WHERE username = 'demo-patient'")
        prac = c.scalar("SELECT practitioner_id AS p FROM account WHERE username = 'demo-provider'")
        values = {
            "me": me, "practitioner": prac,
            "treated": c.scalar("SELECT min(patient_id) AS p FROM care_relationship "
                                "WHERE practitioner_id = :'pr'", pr=prac),
            "invoice": c.scalar("SELECT min(id) AS i FROM invoice WHERE patient_id = :'me' AND "
                                "status = 'issued' AND amount_cents - paid_cents >= 100", me=me),
            "coverage": c.scalar("SELECT min(id) AS i FROM coverage WHERE patient_id = :'me'", me=me),
            "medication": c.scalar("SELECT min(id) AS i FROM medication WHERE patient_id = :'me'",
                                   me=me),
        }
        slots = c.rows("SELECT id FROM slot WHERE status = 'free' AND start_at > now() + interval "
                       "'1 day' ORDER BY start_at, id LIMIT 3")
        values["free_slot"], values["other_slot"] = slots[0]["id"], slots[1]["id"]
        # demo-patient must be able to message demo-provider
        assert c.scalar("SELECT count(*) AS n FROM care_relationship WHERE patient_id = :'me' AND "
                        "practitioner_id = :'pr'", me=me, pr=prac), "demo-patient is not demo-provider's"
        for k, v in values.items():
            assert v not in (None, "", "None"), f"no {k} in the seeded database"
        cls.values = values
        s = cls.server
        cls.tokens = {role: s.login(f"demo-{role}") for role in ("patient", "provider", "auditor")}
        cls.tokens["logout"] = s.login("demo-patient")
        # The rows the path routes act on, made before the baseline: a preliminary note of
        # demo-provider, a booked appointment and a message to demo-patient.
        r = s.post_json("/fhir/R4/DocumentReference", fill(SEEDS["note.create"].body, values),
                        token=cls.tokens["provider"], content_type="application/fhir+json")
        assert r.status == 201, r
        cls.note = r.json()["id"]
        r = s.post_json("/fhir/R4/Appointment",
                        fill(SEEDS["appointment.create"].body, dict(values, free_slot=slots[2]["id"])),
                        token=cls.tokens["patient"])
        assert r.status == 201, r
        cls.appointment = r.json()["id"]
        r = s.post_json("/fhir/R4/Communication",
                        {"resourceType": "Communication", "recipient": [{"reference": f"Patient/{me}"}],
                         "payload": [{"contentString": "Hello from your provider."}],
                         "topic": {"text": "Results"}}, token=cls.tokens["provider"])
        assert r.status == 201, r
        cls.message = r.json()["id"]

    # -- state ---------------------------------------------------------------------------

    def checksums(self) -> dict:
        tables = [r["tbl"] for r in self.cluster.rows(
            "SELECT tablename AS tbl FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
        parts = []
        for t in tables:
            if t in AUDIT_TABLES:
                continue
            row = f"(to_jsonb(x) - '{{{','.join(IGNORED_COLUMNS.get(t, []))}}}'::text[])::text"
            parts.append(f"SELECT '{t}' AS tbl, count(*) AS n, md5(coalesce(string_agg({row}, ',' "
                         f"ORDER BY {row}), '')) AS sum FROM public.{t} x")
        rows = self.cluster.rows(" UNION ALL ".join(parts))
        return {r["tbl"]: (r["n"], r["sum"]) for r in rows}

    def ops_refused(self) -> int:
        m = re.search(r'^continuum_ops_refused_total\{reason="invalid_body"\} (\d+)',
                      self.server.get("/metrics").text, re.M)
        return int(m.group(1)) if m else 0

    # -- requests ------------------------------------------------------------------------

    def send(self, route, seed, data, content_type, request_id):
        token = self.server.ops_token if seed.role == "ops" else self.tokens.get(seed.role)
        path = route["pattern"].replace("{}", str(seed.path(self)) if seed.path else "1")
        headers = {"Content-Type": content_type, "Idempotency-Key": "fuzz-" + uuid.uuid4().hex}
        return self.server.request(route["method"], path, body=data, headers=headers, token=token,
                                   request_id=request_id, timeout=20)

    def error_message(self, r) -> str | None:
        """The message of a JSON error body (OperationOutcome or {"error"/"message"})."""
        if r.content_type not in ("application/fhir+json", "application/json"):
            return None
        try:
            body = json.loads(r.body.decode("utf-8"))
        except ValueError:
            return None
        if body.get("resourceType") == "OperationOutcome":
            issues = body.get("issue") or [{}]
            if issues[0].get("severity") in ("error", "fatal") and issues[0].get("code"):
                return issues[0].get("diagnostics")
            return None
        return body.get("message") or body.get("error")

    # -- the test ------------------------------------------------------------------------

    def test_mutated_bodies_are_refused_audited_and_change_nothing(self):
        body_routes = [r for r in self.routes if r["method"] != "GET"]
        missing = [f"{r['method']} {r['pattern']} ({r['name']})" for r in body_routes
                   if r["name"] not in SEEDS]
        self.assertEqual(missing, [], "routes that take a body without a seed in SEEDS "
                                      "(tests/e2e/test_body_fuzz.py): give each a valid body")
        self.assertEqual(sorted(set(SEEDS) - {r["name"] for r in body_routes}), [],
                         "seeds of routes that are not in the table (any more)")
        for r in body_routes:
            self.assertIn(r.get("body"), ("json", "none"), f"{r['name']}: body kind in the table")
            self.assertEqual(r["body"] == "none", SEEDS[r["name"]].body == {},
                             f"{r['name']}: a route without a body has the seed {{}}, and only it")

        rng = random.Random(RANDOM_SEED)
        plan = []
        for route in body_routes:
            seed = SEEDS[route["name"]]
            seed = copy.copy(seed)
            seed.body = fill(seed.body, self.values)
            for label, data, ct in sample(mutations(seed, rng), PER_ROUTE):
                plan.append((route, seed, label, data, ct))
        # Interleaved, so that a time budget cut spreads over every route.
        rng.shuffle(plan)

        before = self.checksums()
        ops_before = self.ops_refused()
        run_id = uuid.uuid4().hex[:8]
        sent, problems, audited, ops_sent = [], [], {}, 0
        per_route = {}
        t0 = time.monotonic()
        for i, (route, seed, label, data, ct) in enumerate(plan):
            if time.monotonic() - t0 > SEND_BUDGET_S:
                print(f"\nbody fuzz: time budget of {SEND_BUDGET_S}s spent after {i} of {len(plan)} "
                      "mutations", flush=True)
                break
            rid = f"e2e-bodyfuzz-{run_id}-{i:05d}"
            what = f"{route['name']}: {label} (Content-Type {ct}, {len(data)} bytes, {rid})"
            try:
                r = self.send(route, seed, data, ct, rid)
            except OSError as e:
                problems.append(f"{what}: no answer ({e!r})")
                continue
            sent.append(rid)
            per_route[route["name"]] = per_route.get(route["name"], 0) + 1
            if not 400 <= r.status < 500:
                problems.append(f"{what}: HTTP {r.status} {r.text[:300]!r}")
                continue
            if not self.error_message(r):
                problems.append(f"{what}: a {r.status} without a JSON error message: {r!r}")
            if r.status == 413:
                continue  # refused on the wire, before any route: nothing to audit
            if seed.role == "ops":
                ops_sent += 1
            else:
                audited[rid] = (route, what)
        elapsed = time.monotonic() - t0
        counts = sorted(per_route.values()) or [0]
        print(f"\nbody fuzz: {len(sent)} mutated requests in {elapsed:.1f}s over "
              f"{len(per_route)} routes ({counts[0]}-{counts[-1]} each)", flush=True)
        self.assertTrue(self.server.alive(), "the server died:\n" + self.server.log_tail())
        self.assertEqual(problems, [], f"{len(problems)} of {len(sent)} mutations were not "
                                       "refused properly:\n" + "\n".join(problems[:40]))
        self.assertEqual(sorted(per_route), sorted(r["name"] for r in body_routes),
                         "routes that got no mutation")

        after = self.checksums()
        changed = {t: (before.get(t), after.get(t)) for t in set(before) | set(after)
                   if before.get(t) != after.get(t)}
        self.assertEqual(changed, {}, "refused bodies changed the database (rows, checksum)")
        self.assertEqual(self.ops_refused() - ops_before, ops_sent,
                         "each refused ops body counts once in continuum_ops_refused_total")

        # The audit trail: one record (or more) per attempt, none of them a write attempt.
        def shipped():
            rows = self.cluster.rows(
                "SELECT request_id, action, outcome FROM audit_event WHERE request_id LIKE :'p'",
                p=f"e2e-bodyfuzz-{run_id}-%")
            return rows if {r["request_id"] for r in rows} >= set(audited) else None
        rows = wait_until(shipped, 30, 0.5, "the audit records of every mutated request")
        by_request = {}
        for row in rows:
            by_request.setdefault(row["request_id"], []).append(row)
        for rid, (route, what) in audited.items():
            recs = by_request[rid]
            outcomes = {x["outcome"] for x in recs}
            self.assertNotIn("attempt", outcomes, f"{what}: a write was attempted: {recs}")
            self.assertTrue(outcomes <= {"failure", "denied"}, f"{what}: audit outcomes {recs}")
            action = route["action"] or "login"
            self.assertIn(action, {x["action"] for x in recs}, f"{what}: audit actions {recs}")
        unexpected = set(by_request) - set(audited)
        self.assertEqual(unexpected, set(), "audit records of requests that should have none")

        # Each seed as it is: accepted, so the refusals were the mutations' doing. Logout
        # last (it ends its session), enrolment after its confirmation (which needs none in
        # progress), the cancellation after the rescheduling (of the same appointment).
        last = ("appointment.cancel", "session.totp.enrol", "session.delete")
        order = sorted(body_routes, key=lambda r: last.index(r["name"]) if r["name"] in last else -1)
        for route in order:
            seed = copy.copy(SEEDS[route["name"]])
            seed.body = fill(seed.body, self.values)
            ct = "application/fhir+json" if seed.fhir else "application/json"
            data = b"" if seed.body == {} and route["name"] == "session.delete" else encode(seed.body)
            r = self.send(route, seed, data, ct, None)
            with self.subTest(route=route["name"]):
                self.assertIn(r.status, seed.accepted, f"the seed of {route['name']}: {r!r}")


if __name__ == "__main__":
    unittest.main()
