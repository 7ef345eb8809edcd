"""Every route's access policy, walked from the binary's own route table (issue 10, item 14).

`continuum routes --json` prints the table the server dispatches with (method, pattern,
tier and access policy), so a route added later is walked too. For every route that
needs a session: an unauthenticated call, a call by a role the route does not allow,
and (where the route finds the patient from ?patient=, the path or the resource it
loads) a call about a patient the caller may not see are each refused and audited
(outcome denied, the route's action, the request id). Ops-token routes refuse a caller
without the token, audited as denied too.
"""

import json
import subprocess
import unittest

from harness import BINARY, ContinuumTestCase, note_body, require_binary

USERS = {"patient": "demo-patient", "provider": "demo-provider", "auditor": "demo-auditor"}
REFUSED_401 = {"denied", "failure"}


def route_table() -> list[dict]:
    require_binary()
    out = subprocess.run([str(BINARY), "routes", "--json"], check=True, capture_output=True,
                         timeout=30, text=True).stdout
    return json.loads(out)


class RoutePolicyWalkTest(ContinuumTestCase):
    PATIENTS = 60

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.routes = route_table()
        c = cls.cluster
        # demo-patient is patient 1; the other patient is one demo-provider does not treat.
        cls.me = str(c.scalar("SELECT patient_id AS p FROM account WHERE username = 'demo-patient'"))
        prac = c.scalar("SELECT practitioner_id AS p FROM account WHERE username = 'demo-provider'")
        cls.other = str(c.scalar(
            "SELECT min(id) AS p FROM patient p WHERE id <> :'me' AND NOT EXISTS (SELECT 1 FROM "
            "care_relationship r WHERE r.patient_id = p.id AND r.practitioner_id = :'pr')",
            me=cls.me, pr=str(prac)))
        # A resource of the other patient, per path pattern, for "resource" routes.
        cls.other_resource = {}
        for pattern, sql in (
                ("/fhir/R4/Patient/{}", "SELECT :'o' AS id"),
                ("/fhir/R4/DocumentReference/{}",
                 "SELECT min(id) AS id FROM clinical_note WHERE patient_id = :'o'"),
                ("/fhir/R4/DocumentReference/{}/$sign",
                 "SELECT min(id) AS id FROM clinical_note WHERE patient_id = :'o'"),
                ("/fhir/R4/Appointment/{}",
                 "SELECT min(id) AS id FROM appointment WHERE patient_id = :'o'"),
                ("/api/v1/medications/{}/fill-status",
                 "SELECT min(id) AS id FROM medication WHERE patient_id = :'o'")):
            v = c.scalar(sql, o=cls.other)
            if v is not None and str(v) not in ("", "None"):
                cls.other_resource[pattern] = str(v)

    def path(self, route: dict, param: str = "1") -> str:
        return route["pattern"].replace("{}", param)

    def call(self, route: dict, path: str, token=None, body=None):
        if route["method"] == "GET":  # no token: anonymous (not the harness's ops token)
            return self.server.get(path, token=token, anonymous=token is None)
        if route["method"] == "DELETE":
            return self.server.request("DELETE", path, token=token)
        return self.server.post_json(path, body if body is not None else {}, token=token)

    def assertRefusedAndAudited(self, route, r, status, outcomes, patient=None):
        self.assertEqual(r.status, status, f"{route['method']} {route['pattern']}: {r!r}")
        rows = self.cluster.wait_audit(r.request_id, timeout=10)
        self.assertTrue(any(a["outcome"] in outcomes for a in rows),
                        f"{route['name']}: audit outcomes {[a['outcome'] for a in rows]}")
        if route["action"]:
            self.assertIn(route["action"], [a["action"] for a in rows], rows)
        if patient is not None:
            self.assertIn(patient, [a["patient_id"] for a in rows], rows)

    def test_table_is_complete(self):
        names = [r["name"] for r in self.routes]
        self.assertEqual(len(names), len(set(names)), "route names must be unique")
        for r in self.routes:
            self.assertIn(r["caller"], ("anyone", "session", "ops-token"), r)
            if r["caller"] == "session":
                self.assertTrue(r["roles"], f"{r['name']}: a session route must name its roles")
                self.assertTrue(r["action"], f"{r['name']}: a session route must audit")
        for must in ("slot.search", "message.unread"):
            self.assertEqual(next(r for r in self.routes if r["name"] == must)["caller"], "session")

    def test_unauthenticated_calls_refused_and_audited(self):
        for route in self.routes:
            if route["caller"] == "anyone":
                continue
            with self.subTest(route=route["name"]):
                r = self.call(route, self.path(route))
                if route["caller"] == "session":
                    self.assertRefusedAndAudited(route, r, 401, REFUSED_401)
                else:  # ops token (every harness node has one): 401, audited as denied
                    self.assertRefusedAndAudited(route, r, 401, {"denied"})

    def test_wrong_role_calls_refused_and_audited(self):
        for route in self.routes:
            if route["caller"] != "session":
                continue
            wrong = [role for role in USERS if role not in route["roles"]]
            if not wrong:
                continue  # every role may call it
            for role in wrong:
                with self.subTest(route=route["name"], role=role):
                    r = self.call(route, self.path(route), token=self.token(USERS[role]))
                    self.assertRefusedAndAudited(route, r, 403, {"denied"})

    def test_wrong_patient_calls_refused_and_audited(self):
        walked = []
        for route in self.routes:
            if route["caller"] != "session" or route["patient"] not in ("query", "path", "resource"):
                continue
            role = "patient" if "patient" in route["roles"] else "provider"
            token = self.token(USERS[role])
            body = None
            if route["patient"] == "query":
                path = self.path(route) + "?patient=" + self.other
            elif route["patient"] == "path":
                path = self.path(route, self.other)
            elif route["pattern"] in self.other_resource:
                path = self.path(route, self.other_resource[route["pattern"]])
            elif route["name"] == "note.create":
                path, body = self.path(route), note_body(self.other, "not my patient")
            else:
                continue
            walked.append(route["name"])
            with self.subTest(route=route["name"], role=role):
                r = self.call(route, path, token=token, body=body)
                self.assertIn(r.status, (403, 404), f"{route['name']}: {r!r}")
                rows = self.cluster.wait_audit(r.request_id, timeout=10)
                self.assertTrue(any(a["outcome"] in ("denied", "failure") for a in rows), rows)
        self.assertGreaterEqual(len(walked), 12, walked)


if __name__ == "__main__":
    unittest.main()
