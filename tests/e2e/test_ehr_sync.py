"""EHR integration: clinical data is synchronised in from the EHR's FHIR endpoint
(incremental, _lastUpdated-based). While the EHR is down the portal serves the last
synchronised data and says as of when (X-Continuum-Data-As-Of, X-Continuum-Degraded:
stale); when it returns, the sync catches up."""

from __future__ import annotations

import time

from harness import ContinuumTestCase, wait_until
from stubdeps import StubDeps

TYPES = ("Patient", "Condition", "MedicationStatement", "AllergyIntolerance", "Encounter")
INTERVAL_MS = 500


def patient_of(res: dict) -> str:
    if res["resourceType"] == "Patient":
        return res["id"]
    ref = (res.get("subject") or res.get("patient"))["reference"]
    return ref.split("/", 1)[1]


def key_field(res: dict):
    """What a tick changes: a status, a phone number, or (new encounters) existence."""
    t = res["resourceType"]
    if t == "MedicationStatement":
        return res["status"]
    if t in ("Condition", "AllergyIntolerance"):
        return res["clinicalStatus"]["coding"][0]["code"]
    if t == "Patient":
        return [x["value"] for x in res.get("telecom", []) if x["system"] == "phone"]
    return res["status"]


class EhrSyncTest(ContinuumTestCase):
    START_SERVER = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The EHR holds the cluster's own seeded population (same patients, facilities, seed).
        cls.deps = StubDeps(patients=cls.PATIENTS, facilities=cls.FACILITIES).start()
        cls.addClassCleanup(cls.deps.close)
        cls.server = cls.cluster.add_server("node-1", {
            "dependencies": {"ehr": cls.deps.dependency("ehr", timeout_ms=2000, check_interval_ms=300,
                                                        failure_threshold=3, open_ms=1000)},
            "ehr": {"sync_interval_ms": INTERVAL_MS}})

    # -- helpers ---------------------------------------------------------------------------

    def ehr_resource(self, rtype: str, rid: str) -> dict:
        r = self.deps.request("ehr", "GET", f"/fhir/R4/{rtype}/{rid}")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def portal_resource(self, rtype: str, rid: str, pid: str):
        """The portal's current version of the resource (FHIR read) and the response."""
        tok = self.token(f"patient-{pid}")
        if rtype == "Patient":
            r = self.server.fhir(f"Patient/{pid}/$summary", token=tok)
            self.assertEqual(r.status, 200, r)
            return r.json()["entry"][0]["resource"], r
        r = self.server.fhir(rtype, token=tok, params={"patient": pid, "_count": 100})
        self.assertEqual(r.status, 200, r)
        for e in r.json().get("entry", []):
            if e["resource"]["id"] == rid:
                return e["resource"], r
        return None, r

    def in_sync(self, rtype: str, rid: str) -> bool:
        ehr = self.ehr_resource(rtype, rid)
        mine, _ = self.portal_resource(rtype, rid, patient_of(ehr))
        return mine is not None and key_field(mine) == key_field(ehr)

    def tick(self, n: int) -> list[tuple[str, str]]:
        r = self.deps.admin("POST", f"/admin/ehr/tick?n={n}")
        self.assertEqual(r.status, 200, r)
        return [(c["resourceType"], c["id"]) for c in r.json()["changes"]]

    def read(self, pid: str = "2"):
        r = self.server.fhir("Condition", token=self.token(f"patient-{pid}"),
                             params={"patient": pid})
        self.assertEqual(r.status, 200, r)
        return r

    def ehr_sync(self) -> dict:
        return self.server.get("/readyz").json().get("ehr_sync", {})

    # -- the scenario ------------------------------------------------------------------------

    def test_sync_fallback_and_recovery(self):
        # 1. The initial sync completes: every type has synchronised once.
        wait_until(lambda: int(self.cluster.scalar(
            "SELECT count(*) FROM ehr_sync_state WHERE last_success_at IS NOT NULL "
            "AND high_water IS NOT NULL")) == len(TYPES), 120, 0.5, "initial EHR sync")
        self.assertEqual(int(self.cluster.scalar(
            "SELECT count(*) FROM ehr_sync_state WHERE last_error IS NOT NULL")), 0)
        self.assertGreater(int(self.cluster.scalar(
            "SELECT sum(resources_applied) FROM ehr_sync_state")), 0)
        r = wait_until(lambda: (lambda r: r if r.header("X-Continuum-Data-As-Of", "never")
                                != "never" else None)(self.read()), 10, 0.2, "as-of header")
        self.assertIsNone(r.header("X-Continuum-Degraded"), r.headers)
        as_of_1 = r.header("X-Continuum-Data-As-Of")
        self.assertRegex(as_of_1, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        rs = self.ehr_sync()
        self.assertIsNotNone(rs.get("last_success"), rs)
        self.assertIsNone(rs.get("last_error"), rs)
        self.assertLess(rs["lag_s"], 10, rs)
        # The summary is annotated too.
        s = self.server.fhir("Patient/2/$summary", token=self.token("patient-2"))
        self.assertEqual(s.status, 200, s)
        self.assertIsNotNone(s.header("X-Continuum-Data-As-Of"), s.headers)

        # 2. Changes in the EHR appear in the portal's FHIR reads within a few intervals.
        changes = self.tick(5)
        for rtype, rid in changes:
            wait_until(lambda: self.in_sync(rtype, rid), 15, 0.3, f"{rtype}/{rid} synchronised")
        self.assertGreater(self.read().header("X-Continuum-Data-As-Of"), as_of_1)

        # 3. The EHR goes down: reads keep working with the data last synchronised, the
        # as-of instant stops advancing, and the responses say they are stale.
        self.deps.set_fault("ehr", "refuse")
        r = wait_until(lambda: (lambda r: r if r.header("X-Continuum-Degraded") == "stale"
                                else None)(self.read()), 20, 0.2, "stale marker")
        frozen = r.header("X-Continuum-Data-As-Of")
        missed = self.tick(5)  # the admin API is never faulted
        time.sleep(4 * INTERVAL_MS / 1000)
        r = self.read()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Continuum-Data-As-Of"), frozen)
        self.assertEqual(r.header("X-Continuum-Degraded"), "stale")
        for rtype, rid in missed:
            if rtype == "Encounter":
                # A brand-new encounter: not in the portal yet.
                self.assertEqual(int(self.cluster.scalar(
                    "SELECT count(*) FROM encounter WHERE id = :'id'", id=rid)), 0)
        rs = self.ehr_sync()
        self.assertIsNotNone(rs.get("last_error"), rs)
        self.assertGreater(rs["lag_s"], 2 * INTERVAL_MS / 1000, rs)
        self.assertGreater(int(self.cluster.scalar(
            "SELECT count(*) FROM ehr_sync_state WHERE last_error IS NOT NULL")), 0)

        # 4. Recovery: the sync catches up with what it missed; the marker goes away.
        self.deps.reset()
        r = wait_until(lambda: (lambda r: r if r.header("X-Continuum-Degraded") is None and
                                r.header("X-Continuum-Data-As-Of") > frozen else None)(
            self.read()), 30, 0.3, "recovery")
        for rtype, rid in missed:
            wait_until(lambda: self.in_sync(rtype, rid), 15, 0.3, f"{rtype}/{rid} caught up")
        wait_until(lambda: self.ehr_sync().get("last_error") is None, 10, 0.2,
                   "last_error cleared")

    def test_sync_upserts_are_audited(self):
        # Every patient whose data a sync page changed has an audit record of it (actor
        # system:ehr-sync), with the attempt durable before the page was written.
        changes = self.tick(3)
        for rtype, rid in changes:
            wait_until(lambda: self.in_sync(rtype, rid), 30, 0.3, f"{rtype}/{rid} synchronised")
        for rtype, rid in changes:
            pid = patient_of(self.ehr_resource(rtype, rid))
            rows = wait_until(lambda: self.cluster.rows(
                "SELECT outcome FROM audit_event WHERE actor = 'system:ehr-sync' AND action = 'update' "
                "AND resource_type = :'t' AND patient_id = :'p'", t=rtype, p=str(pid)), 15, 0.3,
                f"audit of the {rtype} upsert for patient {pid}")
            outcomes = {r["outcome"] for r in rows}
            self.assertIn("attempt", outcomes, rows)
            self.assertIn("success", outcomes, rows)

    def test_replaying_a_sync_changes_nothing(self):
        """Re-applying everything (high-water marks reset) leaves the rows as they were."""
        wait_until(lambda: int(self.cluster.scalar(
            "SELECT count(*) FROM ehr_sync_state WHERE last_success_at IS NOT NULL")) ==
            len(TYPES), 120, 0.5, "initial EHR sync")
        before = self.cluster.scalar(
            "SELECT md5(string_agg(id || ':' || status || ':' || updated_at, ',' ORDER BY id)) "
            "FROM medication")
        self.cluster.sql("UPDATE ehr_sync_state SET high_water = NULL, last_success_at = NULL")
        wait_until(lambda: int(self.cluster.scalar(
            "SELECT count(*) FROM ehr_sync_state WHERE last_success_at IS NOT NULL AND "
            "high_water IS NOT NULL")) == len(TYPES), 120, 0.5, "full re-sync")
        after = self.cluster.scalar(
            "SELECT md5(string_agg(id || ':' || status || ':' || updated_at, ',' ORDER BY id)) "
            "FROM medication")
        self.assertEqual(before, after)

    def test_two_nodes_share_one_sync(self):
        """A second node syncing too: finding a page of the other node's in flight (the
        advisory lock) is no error, changes still arrive, and both nodes report fresh data."""
        node2 = self.cluster.add_server("node-2", self.server.overrides)
        wait_until(lambda: (node2.get("/readyz").json().get("ehr_sync") or {}).get(
            "last_success"), 60, 0.3, "node-2 sync status")
        changes = self.tick(20)
        for rtype, rid in changes[:3]:
            wait_until(lambda: self.in_sync(rtype, rid), 15, 0.3, f"{rtype}/{rid} synchronised")
        time.sleep(6 * INTERVAL_MS / 1000)
        self.assertEqual(int(self.cluster.scalar(
            "SELECT count(*) FROM ehr_sync_state WHERE last_error IS NOT NULL")), 0)
        for node in (self.server, node2):
            rs = node.get("/readyz").json()["ehr_sync"]
            self.assertIsNone(rs["last_error"], (node.name, rs))
            self.assertLess(rs["lag_s"], 5, (node.name, rs))
        r = node2.fhir("Condition", token=self.token("patient-2", node2), params={"patient": "2"})
        self.assertEqual(r.status, 200, r)
        self.assertIsNotNone(r.header("X-Continuum-Data-As-Of"), r.headers)
        self.assertIsNone(r.header("X-Continuum-Degraded"), r.headers)
