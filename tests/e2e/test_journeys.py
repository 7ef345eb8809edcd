"""The two journeys of the issue, end to end over HTTP against a real PostgreSQL:

provider: log in -> Patient search by name -> Encounter history -> add a note
          (Idempotency-Key; a retry gives the same note) -> sign -> log out -> token refused
patient:  log in -> Patient/1 -> $summary -> allergies, medications, conditions -> log out

plus the operational endpoints every journey depends on (healthz, readyz, metrics,
CapabilityStatement, X-Request-Id, strict configuration)."""

import base64
import threading
import unittest
import uuid

from harness import (FHIR_JSON, ContinuumTestCase, note_body, reference_of, resources_of, run,
                     BINARY)


class OperationsTest(ContinuumTestCase):
    def test_healthz_readyz(self):
        r = self.server.get("/healthz")
        self.assertEqual(r.status, 200, r)
        r = self.server.get("/readyz")
        self.assertEqual(r.status, 200, r)
        self.assertIsInstance(r.json(), dict)

    def test_metrics_prometheus_text(self):
        self.server.get("/fhir/R4/metadata")
        r = self.server.get("/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.content_type.startswith("text/plain"), r.content_type)
        self.assertIn("# TYPE ", r.text)

    def test_capability_statement_without_auth(self):
        r = self.server.get("/fhir/R4/metadata")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.content_type, FHIR_JSON)
        cs = r.json()
        self.assertEqual(cs.get("resourceType"), "CapabilityStatement")
        self.assertTrue(str(cs.get("fhirVersion", "")).startswith("4.0"), cs.get("fhirVersion"))
        types = {res.get("type") for rest in cs.get("rest", []) for res in rest.get("resource", [])}
        for t in ("Patient", "AllergyIntolerance", "MedicationStatement", "Condition", "Encounter",
                  "DocumentReference", "AuditEvent"):
            self.assertIn(t, types)

    def test_request_id_echoed_or_generated(self):
        r = self.server.get("/fhir/R4/metadata", request_id="e2e-client-chosen-id-123")
        self.assertEqual(r.header("X-Request-Id"), "e2e-client-chosen-id-123")
        r = self.server.get("/fhir/R4/metadata", request_id="")
        self.assertTrue(r.header("X-Request-Id"), "a request id is generated when the client sends none")
        r = self.server.get("/fhir/R4/Patient/1")  # errors carry it too
        self.assertEqual(r.status, 401, r)
        self.assertEchoesRequestId(r)

    def test_unknown_route_is_404_operation_outcome(self):
        r = self.server.get("/fhir/R4/NoSuchResource/1", token=self.token("demo-provider"))
        self.assertOperationOutcome(r, (400, 404))
        # under the API's prefixes; any other path without a file name is the web app's
        # (index.html when a bundle is served: tests/e2e/test_web_static.py)
        r = self.server.get("/api/no/such/path")
        self.assertOperationOutcome(r, 404)
        r = self.server.get("/no/such/file.txt")
        self.assertOperationOutcome(r, 404)

    def test_config_unknown_key_rejected(self):
        bad = self.cluster.dir / "bad.toml"
        bad.write_text('[server]\nlisten_port = 1\nno_such_key = 3\n')
        cp = run([BINARY, "serve", "--config", bad], timeout=20)
        self.assertNotEqual(cp.returncode, 0)
        self.assertIn("no_such_key", cp.stdout + cp.stderr)


class ProviderJourneyTest(ContinuumTestCase):
    def test_provider_journey(self):
        s, c = self.server, self.cluster
        rid_prefix = "e2e-provider-journey-" + uuid.uuid4().hex[:8]

        # 1. log in
        r = s.login_response("demo-provider")
        self.assertEqual(r.status, 200, r)
        session = r.json()
        self.assertEqual(session.get("token_type"), "Bearer")
        self.assertIsInstance(session.get("expires_in"), int)
        self.assertGreater(session["expires_in"], 0)
        self.assertEqual(session.get("practitioner"), "1")
        token = session["access_token"]

        # 2. look the patient up by name (and birth date)
        p1 = c.rows("SELECT family, given, birth_date FROM patient WHERE id = 1")[0]
        patients, first = self.fetch_all("Patient", token,
                                         {"name": p1["family"], "birthdate": p1["birth_date"]})
        self.assertEqual(first.get("type"), "searchset")
        self.assertIn("1", [p.get("id") for p in patients], "patient 1 not found by name + birthdate")
        for p in patients:
            self.assertEqual(p.get("resourceType"), "Patient")
            self.assertEqual(p.get("birthDate"), p1["birth_date"])
            words = [n.get("family", "") for n in p.get("name", [])] + \
                    [g for n in p.get("name", []) for g in n.get("given", [])]
            self.assertTrue(any(w.lower().startswith(p1["family"].lower()) for w in words),
                            f"search for {p1['family']!r} returned {p.get('name')}")

        # 3. history: encounters
        encounters, _ = self.fetch_all("Encounter", token, {"patient": "1"})
        self.assertEqual(len(encounters), c.scalar("SELECT count(*) AS n FROM encounter WHERE patient_id = 1"))
        for e in encounters:
            self.assertEqual(e.get("resourceType"), "Encounter")
            self.assertEqual(reference_of(e.get("subject")), "Patient/1")

        # 4. add a note, with an Idempotency-Key, and retry it
        notes_before = c.scalar("SELECT count(*) AS n FROM clinical_note WHERE patient_id = 1")
        key = "e2e-" + uuid.uuid4().hex
        text = "Seen today. BP 128/82. Continue current medication. " + key
        body = note_body("1", text, title="Follow-up visit")
        r = s.post_json("/fhir/R4/DocumentReference", body, token=token,
                        content_type=FHIR_JSON, headers={"Idempotency-Key": key},
                        request_id=rid_prefix + "-create")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.content_type, FHIR_JSON)
        note = r.json()
        note_id = note.get("id")
        self.assertTrue(note_id, r)
        self.assertIn(f"DocumentReference/{note_id}", r.header("Location") or "", "Location header")
        self.assertEqual(note.get("docStatus"), "preliminary")
        self.assertEqual(reference_of(note.get("subject")), "Patient/1")
        self.assertEqual(base64.b64decode(note["content"][0]["attachment"]["data"]).decode(), text)

        retry = s.post_json("/fhir/R4/DocumentReference", body, token=token,
                            content_type=FHIR_JSON, headers={"Idempotency-Key": key})
        self.assertIn(retry.status, (200, 201), retry)
        self.assertEqual(retry.json().get("id"), note_id, "a retry must return the same note")
        self.assertEqual(c.scalar("SELECT count(*) AS n FROM clinical_note WHERE idempotency_key = :'k'", k=key), 1)
        self.assertEqual(c.scalar("SELECT count(*) AS n FROM clinical_note WHERE patient_id = 1"),
                         notes_before + 1)
        self.assertEqual(c.scalar("SELECT status FROM clinical_note WHERE id = :'id'::bigint", id=note_id),
                         "preliminary")

        notes, _ = self.fetch_all("DocumentReference", token, {"patient": "1"})
        self.assertIn(note_id, [n.get("id") for n in notes])

        # 5. sign
        r = s.request("POST", f"/fhir/R4/DocumentReference/{note_id}/$sign", token=token)
        self.assertEqual(r.status, 200, r)
        signed = r.json()
        self.assertEqual(signed.get("id"), note_id)
        self.assertEqual(signed.get("docStatus"), "final")
        self.assertEqual(reference_of(signed.get("authenticator")), "Practitioner/1")
        row = c.rows("SELECT status, signed_by, signed_at IS NOT NULL AS has_time FROM clinical_note "
                     "WHERE id = :'id'::bigint", id=note_id)[0]
        self.assertEqual(row, {"status": "final", "signed_by": 1, "has_time": True})

        # a signed note is immutable
        r = s.request("POST", f"/fhir/R4/DocumentReference/{note_id}/$sign", token=token)
        self.assertOperationOutcome(r, 409)
        # the create retry after signing still returns the note, never a second one
        r = s.post_json("/fhir/R4/DocumentReference", body, token=token, content_type=FHIR_JSON,
                        headers={"Idempotency-Key": key})
        self.assertIn(r.status, (200, 201, 409), r)
        if r.status != 409:
            self.assertEqual(r.json().get("id"), note_id)
        self.assertEqual(c.scalar("SELECT count(*) AS n FROM clinical_note WHERE idempotency_key = :'k'", k=key), 1)

        # the note's creation and signature are audited
        self.cluster.wait_audit(rid_prefix + "-create", predicate=lambda a: a["outcome"] == "success")

        # 6. log out; the token is refused afterwards
        r = s.logout(token)
        self.assertEqual(r.status, 204, r)
        r = s.get("/fhir/R4/Patient/1", token=token)
        self.assertOperationOutcome(r, 401)

    def test_search_paging(self):
        # Paging with _count=1 walks the same result set as one big page, via link next.
        token = self.token("demo-provider")
        initial = self.cluster.scalar("SELECT substr(family, 1, 1) AS l FROM patient GROUP BY 1 "
                                      "ORDER BY count(*) DESC LIMIT 1")
        one_page, first = self.fetch_all("Patient", token, {"name": initial, "_count": "100"})
        paged, first_small = self.fetch_all("Patient", token, {"name": initial, "_count": "1"})
        self.assertEqual(len(first_small.get("entry", []) or []), min(1, len(one_page)))
        if len(one_page) > 1:
            self.assertIn("next", [l.get("relation") for l in first_small.get("link", [])],
                          "more results than _count but no link next")
        self.assertEqual([p["id"] for p in paged], [p["id"] for p in one_page])
        if first.get("total") is not None:
            self.assertEqual(first["total"], len(one_page))

    def test_concurrent_retries_create_one_note(self):
        s, c = self.server, self.cluster
        token = self.token("demo-provider")
        key = "e2e-concurrent-" + uuid.uuid4().hex
        body = note_body("1", "Concurrent retry test " + key)
        results = []

        def post():
            try:
                results.append(s.post_json("/fhir/R4/DocumentReference", body, token=token,
                                           content_type=FHIR_JSON, headers={"Idempotency-Key": key}))
            except OSError as e:
                results.append(e)

        threads = [threading.Thread(target=post) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        ok = [r for r in results if not isinstance(r, Exception) and r.status in (200, 201)]
        self.assertTrue(ok, results)
        for r in results:
            self.assertFalse(isinstance(r, Exception), r)
            self.assertIn(r.status, (200, 201, 409), r)  # 409: the same key is still in progress
        self.assertEqual({r.json().get("id") for r in ok}.__len__(), 1, "retries returned different notes")
        self.assertEqual(c.scalar("SELECT count(*) AS n FROM clinical_note WHERE idempotency_key = :'k'", k=key), 1)

    def test_same_key_other_body_is_not_a_new_note(self):
        s, c = self.server, self.cluster
        token = self.token("demo-provider")
        key = "e2e-reuse-" + uuid.uuid4().hex
        r = s.post_json("/fhir/R4/DocumentReference", note_body("1", "first " + key), token=token,
                        content_type=FHIR_JSON, headers={"Idempotency-Key": key})
        self.assertEqual(r.status, 201, r)
        r2 = s.post_json("/fhir/R4/DocumentReference", note_body("1", "different " + key), token=token,
                         content_type=FHIR_JSON, headers={"Idempotency-Key": key})
        # Either the original is replayed or the reuse is refused (422/409); never a second note.
        self.assertIn(r2.status, (200, 201, 409, 422), r2)
        if r2.status in (200, 201):
            self.assertEqual(r2.json().get("id"), r.json().get("id"))
        self.assertEqual(c.scalar("SELECT count(*) AS n FROM clinical_note WHERE idempotency_key = :'k'", k=key), 1)


class PatientJourneyTest(ContinuumTestCase):
    def test_patient_journey(self):
        s, c = self.server, self.cluster

        # 1. log in
        r = s.login_response("demo-patient")
        self.assertEqual(r.status, 200, r)
        session = r.json()
        self.assertEqual(session.get("token_type"), "Bearer")
        self.assertEqual(session.get("patient"), "1")
        token = session["access_token"]

        # 2. own record
        r = s.get("/fhir/R4/Patient/1", token=token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.content_type, FHIR_JSON)
        self.assertEchoesRequestId(r)
        p = r.json()
        db = c.rows("SELECT family, given, gender, birth_date FROM patient WHERE id = 1")[0]
        self.assertEqual((p.get("resourceType"), p.get("id")), ("Patient", "1"))
        self.assertEqual(p.get("birthDate"), db["birth_date"])
        self.assertEqual(p.get("gender"), db["gender"])
        self.assertIn(db["family"], [n.get("family") for n in p.get("name", [])])

        # 4. (first, to compare with the summary) allergies, medications, conditions
        lists = {}
        for rtype, table in (("AllergyIntolerance", "allergy"), ("MedicationStatement", "medication"),
                             ("Condition", "condition")):
            items, bundle = self.fetch_all(rtype, token, {"patient": "1"})
            self.assertEqual(bundle.get("type"), "searchset")
            n = c.scalar(f"SELECT count(*) AS n FROM {table} WHERE patient_id = 1")
            self.assertEqual(len(items), n, f"{rtype}: {len(items)} resources, {n} rows")
            for it in items:
                self.assertEqual(it.get("resourceType"), rtype)
                self.assertEqual(reference_of(it.get("patient") or it.get("subject")), "Patient/1")
            lists[rtype] = {it.get("id") for it in items}

        # 3. $summary: the patient with allergies, medications and conditions
        r = s.get("/fhir/R4/Patient/1/$summary", token=token)
        summary = self.assertBundle(r)
        pats = resources_of(summary, "Patient")
        self.assertEqual([x.get("id") for x in pats], ["1"])
        for rtype, ids in lists.items():
            got = {x.get("id") for x in resources_of(summary, rtype)}
            self.assertTrue(got, f"$summary has no {rtype}")
            self.assertLessEqual(got, ids, f"$summary {rtype} not among the patient's own")

        # 5. log out; the token is refused afterwards
        r = s.logout(token)
        self.assertEqual(r.status, 204, r)
        r = s.get("/fhir/R4/Patient/1", token=token)
        self.assertOperationOutcome(r, 401)
        r = s.logout(token)  # a second logout with the revoked token
        self.assertOperationOutcome(r, 401)

    def test_search_total_on_every_page(self):
        # A patient-scoped search's total is the number of matches whichever page is asked for:
        # counted when the page is full or past the end, told by the page otherwise.
        c = self.cluster
        token = self.token("demo-patient")
        counts = {}
        for rtype, table in (("AllergyIntolerance", "allergy"), ("MedicationStatement", "medication"),
                             ("Condition", "condition"), ("Encounter", "encounter"),
                             ("DocumentReference", "clinical_note"), ("Appointment", "appointment"),
                             ("Invoice", "invoice")):
            n = c.scalar(f"SELECT count(*) AS n FROM {table} WHERE patient_id = 1")
            counts[rtype] = n
            pages = [({"_count": "100"}, min(n, 100)), ({"_count": "1"}, min(n, 1)),
                     ({"_count": "1", "_offset": str(max(n - 1, 0))}, min(n, 1)),
                     ({"_count": "2", "_offset": str(n + 3)}, 0)]
            for params, entries in pages:
                with self.subTest(resource=rtype, params=params):
                    r = self.server.fhir(rtype, token, {"patient": "1", **params})
                    b = self.assertBundle(r)
                    self.assertEqual(len(b.get("entry", []) or []), entries)
                    self.assertEqual(b.get("total"), n, f"{rtype} {params}: total, {n} rows")
                    relations = [l.get("relation") for l in b.get("link", []) or []]
                    more = int(params.get("_offset", "0")) + entries < n
                    self.assertEqual("next" in relations, more, relations)
        # the full page (count) and the last page (no count) were both tried somewhere
        self.assertGreaterEqual(max(counts.values()), 2, counts)


if __name__ == "__main__":
    unittest.main()
