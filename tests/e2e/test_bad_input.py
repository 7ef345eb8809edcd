"""Hostile and broken input. Every rejection is a 4xx with an OperationOutcome body,
nothing in the database changes, and the server stays up and healthy."""

import json
import unittest
import uuid

from harness import FHIR_JSON, ContinuumTestCase, note_body


class BadInputTest(ContinuumTestCase):
    def setUp(self):
        self.counts_before = self.db_counts()

    def tearDown(self):
        super().tearDown()
        self.assertTrue(self.server.alive(), "the server died:\n" + self.server.log_tail())
        self.assertEqual(self.server.get("/healthz").status, 200)
        self.assertEqual(self.db_counts(), self.counts_before, "bad input changed the database")

    def db_counts(self):
        return self.cluster.rows("""SELECT (SELECT count(*) FROM clinical_note) AS notes,
                                           (SELECT count(*) FROM patient) AS patients,
                                           (SELECT count(*) FROM account) AS accounts,
                                           (SELECT count(*) FROM account WHERE locked_until IS NOT NULL) AS locked""")[0]

    # -- /api/v1/session -----------------------------------------------------------------

    def login_raw_body(self, body: bytes, content_type="application/json"):
        return self.server.request("POST", "/api/v1/session", body=body,
                                   headers={"Content-Type": content_type})

    def test_malformed_json(self):
        for body in (b'{"username": "demo-patient", "password": ', b"not json", b"[]", b'"string"',
                     b"{}", b'{"username": 1, "password": 2}', b'{"username": "demo-patient"}',
                     b'{"username": "demo-patient", "password": "continuum-demo"} trailing',
                     b'\xff\xfe{"username": "demo-patient"}', b""):
            with self.subTest(body=body[:40]):
                self.assertOperationOutcome(self.login_raw_body(body), 400)

    def test_wrong_content_type(self):
        good = json.dumps({"username": "demo-patient", "password": "continuum-demo"}).encode()
        for ct in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
            with self.subTest(content_type=ct):
                self.assertOperationOutcome(self.login_raw_body(good, ct), 415)

    def test_unknown_fields_in_login(self):
        body = {"username": "demo-patient", "password": "continuum-demo", "role": "auditor"}
        r = self.server.post_json("/api/v1/session", body)
        self.assertOperationOutcome(r, 400)
        self.assertNotIn("access_token", r.text)

    def test_oversized_body(self):
        limit = self.server.body_limit
        big = json.dumps({"username": "demo-patient", "password": "x" * (limit * 2)}).encode()
        head = (f"POST /api/v1/session HTTP/1.1\r\nHost: e2e\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(big)}\r\nX-Request-Id: e2e-{uuid.uuid4().hex}\r\n\r\n").encode()
        r = self.server.raw(head + big)
        self.assertIsNotNone(r, "no response to an oversized body")
        self.assertOperationOutcome(r, 413)
        # declared too large, body never sent: refused on the header alone
        head = (f"POST /fhir/R4/DocumentReference HTTP/1.1\r\nHost: e2e\r\nContent-Type: {FHIR_JSON}\r\n"
                f"Authorization: Bearer {self.token('demo-provider')}\r\n"
                f"Content-Length: {limit * 100}\r\n\r\n").encode()
        r = self.server.raw(head, timeout=5)
        self.assertIsNotNone(r, "no answer to a Content-Length over the limit")
        self.assertOperationOutcome(r, 413)

    def test_oversized_headers_and_url(self):
        r = self.server.raw(b"GET /fhir/R4/metadata HTTP/1.1\r\nHost: e2e\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
        self.assertTrue(r is None or 400 <= r.status < 500, r)
        r = self.server.raw(b"GET /fhir/R4/Patient?name=" + b"a" * 200_000 + b" HTTP/1.1\r\nHost: e2e\r\n\r\n")
        self.assertTrue(r is None or 400 <= r.status < 500, r)

    def test_garbage_request_line(self):
        for data in (b"HELLO\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                     b"GET /fhir/R4/metadata HTTP/1.1\r\nContent-Length: -1\r\n\r\n"):
            with self.subTest(data=data[:20]):
                r = self.server.raw(data, timeout=5)
                self.assertTrue(r is None or 400 <= r.status < 500, r)

    # -- DocumentReference ---------------------------------------------------------------

    def post_note(self, body, **kw):
        return self.server.post_json("/fhir/R4/DocumentReference", body, token=self.token("demo-provider"),
                                     content_type=FHIR_JSON,
                                     headers={"Idempotency-Key": "e2e-" + uuid.uuid4().hex}, **kw)

    def test_unknown_fields_in_document_reference(self):
        self.assertOperationOutcome(self.post_note(note_body("1", "x", extraField=1)), 400)
        body = note_body("1", "x")
        body["content"][0]["attachment"]["sneaky"] = "y"
        self.assertOperationOutcome(self.post_note(body), 400)

    def test_invalid_document_references(self):
        cases = {
            "wrong resourceType": dict(note_body("1", "x"), resourceType="Patient"),
            "docStatus final on create": dict(note_body("1", "x"), docStatus="final"),
            "no subject": {k: v for k, v in note_body("1", "x").items() if k != "subject"},
            "subject not a patient": dict(note_body("1", "x"), subject={"reference": "Practitioner/1"}),
            "subject bad id": dict(note_body("1", "x"), subject={"reference": "Patient/1 OR 1=1"}),
            "no content": dict(note_body("1", "x"), content=[]),
            "not base64": dict(note_body("1", "x"),
                               content=[{"attachment": {"contentType": "text/plain", "data": "%%%not base64%%%",
                                                        "title": "t"}}]),
            "html content": dict(note_body("1", "x"),
                                 content=[{"attachment": {"contentType": "text/html", "data": "PGI+PC9iPg==",
                                                          "title": "t"}}]),
            "array body": [note_body("1", "x")],
        }
        for name, body in cases.items():
            with self.subTest(case=name):
                r = self.post_note(body)
                self.assertOperationOutcome(r, (400, 415, 422))

    def test_document_reference_malformed_json(self):
        r = self.server.request("POST", "/fhir/R4/DocumentReference", body=b'{"resourceType": "Docum',
                                token=self.token("demo-provider"),
                                headers={"Content-Type": FHIR_JSON, "Idempotency-Key": "e2e-" + uuid.uuid4().hex})
        self.assertOperationOutcome(r, 400)

    def test_sign_unknown_or_invalid_note(self):
        t = self.token("demo-provider")
        self.assertOperationOutcome(self.server.request("POST", "/fhir/R4/DocumentReference/999999999999999/$sign",
                                                        token=t), 404)
        self.assertOperationOutcome(self.server.request("POST", "/fhir/R4/DocumentReference/!!!/$sign",
                                                        token=t), 400)
        self.assertOperationOutcome(self.server.request("POST", "/fhir/R4/DocumentReference/abc/$sign",
                                                        token=t), (400, 404))

    # -- ids and searches ----------------------------------------------------------------

    def test_invalid_ids(self):
        t = self.token("demo-provider")
        # not FHIR ids at all ([A-Za-z0-9.-]{1,64}): 400
        for pid in ("!!!", "1;DROP%20TABLE%20patient", "%00", "1%27%20OR%20%271%27%3D%271", "1" * 70, "%E2%82%AC"):
            with self.subTest(id=pid):
                self.assertOperationOutcome(self.server.get(f"/fhir/R4/Patient/{pid}", token=t), 400)
        # FHIR-valid syntax that can never name a Continuum patient: 400 or 404
        for pid in ("1abc", "-1", "1.5", "9" * 40):
            with self.subTest(id=pid):
                self.assertOperationOutcome(self.server.get(f"/fhir/R4/Patient/{pid}", token=t), (400, 404))
        # the contract: a well-formed id of no patient is 404 (with the glass broken too)
        self.assertOperationOutcome(self.server.get("/fhir/R4/Patient/999999999", token=t,
                                                    headers={"X-Break-Glass-Reason": "e2e: unknown id"}), 404)
        self.assertOperationOutcome(self.server.get("/fhir/R4/Patient/999999999", token=t), 404)

    def test_invalid_patient_parameter(self):
        t = self.token("demo-provider")
        for rtype in ("AllergyIntolerance", "MedicationStatement", "Condition", "Encounter", "DocumentReference"):
            with self.subTest(resource=rtype):
                self.assertOperationOutcome(self.server.fhir(rtype, t, {"patient": "1 OR 1=1"}), 400)
                # no patient at all: never everybody's records
                self.assertOperationOutcome(self.server.get(f"/fhir/R4/{rtype}", token=t), (400, 403))

    def test_sql_looking_name_search(self):
        t = self.token("demo-provider")
        total = self.cluster.scalar("SELECT count(*) AS n FROM patient")
        for name in ("x' OR '1'='1", "'; DROP TABLE patient; --", "%", "_", "\\", "a%' --", "' UNION SELECT 1 --"):
            with self.subTest(name=name):
                r = self.server.fhir("Patient", t, {"name": name})
                if r.status == 400:
                    self.assertOperationOutcome(r, 400)
                    continue
                b = self.assertBundle(r)
                entries = b.get("entry", []) or []
                self.assertEqual(entries, [], f"name={name!r} matched {len(entries)} patients")
                self.assertIn(b.get("total", 0), (0, None))
        self.assertEqual(self.cluster.scalar("SELECT count(*) AS n FROM patient"), total)

    def test_huge_count_is_capped(self):
        # Either refused (400) or capped: never more than the cap (100 or 400) in a page.
        t = self.token("demo-provider")
        for params in ({"_count": "100000"}, {"name": "a", "_count": "100000"},
                       {"name": self.common_initial(), "_count": "100000"}):
            with self.subTest(params=params):
                r = self.server.fhir("Patient", t, params)
                if r.status == 400:
                    self.assertOperationOutcome(r, 400)
                    continue
                b = self.assertBundle(r)
                entries = b.get("entry", []) or []
                self.assertLessEqual(len(entries), 400, "_count is not capped")
                if b.get("total") is not None and b["total"] > len(entries):
                    self.assertIn("next", [l.get("relation") for l in b.get("link", [])],
                                  "capped page without link next")
        for rtype in ("Encounter", "AllergyIntolerance"):
            with self.subTest(resource=rtype):
                r = self.server.fhir(rtype, t, {"patient": "1", "_count": "100000"})
                if r.status == 400:
                    self.assertOperationOutcome(r, 400)
                else:
                    self.assertLessEqual(len(self.assertBundle(r).get("entry", []) or []), 400)

    def common_initial(self):
        return self.cluster.scalar("SELECT substr(family, 1, 1) AS l FROM patient GROUP BY 1 "
                                   "ORDER BY count(*) DESC LIMIT 1")

    def test_invalid_count(self):
        t = self.token("demo-provider")
        for count in ("-1", "abc", "1e9", "99999999999999999999"):
            with self.subTest(count=count):
                r = self.server.fhir("Patient", t, {"name": "a", "_count": count})
                if r.status == 200:  # lenient servers may clamp; then it must still be capped
                    self.assertLessEqual(len(self.assertBundle(r).get("entry", []) or []), 400)
                else:
                    self.assertOperationOutcome(r, 400)

    def test_unknown_search_parameter(self):
        r = self.server.fhir("Patient", self.token("demo-provider"), {"name": "a", "nonsense": "1"})
        # FHIR lets servers ignore unknown parameters (lenient) or refuse them (strict)
        self.assertIn(r.status, (200, 400), r)
        if r.status == 400:
            self.assertOperationOutcome(r, 400)

    def test_error_bodies_are_utf8_json_whatever_the_parameter_bytes(self):
        """A refused parameter name is quoted (cut at 64 bytes) in the diagnostics: bytes that
        are not UTF-8, or a cut inside a character, must not make the body invalid JSON
        (fuzz/corpus/fhir_search/regress-utf8-*)."""
        t = self.token("demo-provider")
        for query in ("%FF%FE=1", "a" * 63 + "%C3%A9=1", "name=a&%ED%A0%80=2"):
            with self.subTest(query=query[:20]):
                r = self.server.get("/fhir/R4/Patient?" + query, token=t)
                self.assertEqual(r.status, 400, r)
                oo = json.loads(r.body.decode("utf-8"))  # strict: raises on invalid UTF-8
                self.assertEqual(oo["resourceType"], "OperationOutcome", r)

    def test_wrong_method(self):
        t = self.token("demo-provider")
        r = self.server.request("DELETE", "/fhir/R4/Patient/1", token=t)
        self.assertOperationOutcome(r, (404, 405))
        r = self.server.request("PUT", "/fhir/R4/metadata", body=b"{}", headers={"Content-Type": FHIR_JSON})
        self.assertOperationOutcome(r, (404, 405))

    def test_path_traversal(self):
        for path in ("/fhir/R4/../../etc/passwd", "/fhir/R4/Patient/..%2F..%2Fetc%2Fpasswd", "/%2e%2e/%2e%2e/etc/passwd"):
            with self.subTest(path=path):
                r = self.server.get(path, token=self.token("demo-provider"))
                self.assertTrue(400 <= r.status < 500, r)
                self.assertNotIn("root:", r.text)


if __name__ == "__main__":
    unittest.main()
