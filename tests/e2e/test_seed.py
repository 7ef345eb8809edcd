"""`continuum migrate` and `continuum seed` (no server needed): the schema lands, the
population the other suites rely on is there, and seeding is deterministic."""

import unittest

from harness import ContinuumTestCase


class MigrateSeedTest(ContinuumTestCase):
    START_SERVER = False

    def test_migrate_is_idempotent(self):
        self.cluster.migrate()  # second run on a migrated, seeded database
        self.assertEqual(self.cluster.scalar("SELECT count(*) AS n FROM patient"), self.PATIENTS)

    def test_population_size(self):
        c = self.cluster
        self.assertEqual(c.scalar("SELECT count(*) AS n FROM patient"), self.PATIENTS)
        self.assertEqual(c.scalar("SELECT count(*) AS n FROM facility"), self.FACILITIES)
        self.assertGreater(c.scalar("SELECT count(*) AS n FROM practitioner"), 0)
        for table in ("allergy", "medication", "condition", "encounter", "care_relationship"):
            self.assertGreater(c.scalar(f"SELECT count(*) AS n FROM {table}"), 0, table)

    def test_demo_accounts(self):
        rows = {r["username"]: r for r in self.cluster.rows(
            "SELECT username, role, patient_id, practitioner_id, password_hash FROM account "
            "WHERE username IN ('demo-patient', 'demo-provider', 'demo-auditor')")}
        self.assertEqual(set(rows), {"demo-patient", "demo-provider", "demo-auditor"})
        self.assertEqual((rows["demo-patient"]["role"], rows["demo-patient"]["patient_id"]), ("patient", 1))
        self.assertEqual((rows["demo-provider"]["role"], rows["demo-provider"]["practitioner_id"]),
                         ("provider", 1))
        self.assertEqual(rows["demo-auditor"]["role"], "auditor")
        for r in rows.values():
            self.assertTrue(r["password_hash"].startswith("$argon2id$"), r["username"])

    def test_every_patient_and_practitioner_has_an_account(self):
        c = self.cluster
        self.assertEqual(c.scalar("""
            SELECT count(*) AS n FROM patient p LEFT JOIN account a
              ON a.username = 'patient-' || p.id AND a.role = 'patient' AND a.patient_id = p.id
            WHERE a.id IS NULL"""), 0)
        self.assertEqual(c.scalar("""
            SELECT count(*) AS n FROM practitioner p LEFT JOIN account a
              ON a.username = 'provider-' || p.id AND a.role = 'provider' AND a.practitioner_id = p.id
            WHERE a.id IS NULL"""), 0)

    def test_care_relationships_the_suites_rely_on(self):
        c = self.cluster
        self.assertEqual(c.scalar("SELECT count(*) AS n FROM care_relationship "
                                  "WHERE practitioner_id = 1 AND patient_id = 1"), 1)
        self.assertEqual(c.scalar("SELECT count(*) AS n FROM care_relationship "
                                  "WHERE practitioner_id = 1 AND patient_id = 2"), 0)

    def test_demo_patient_has_a_record(self):
        for table in ("allergy", "medication", "condition", "encounter"):
            n = self.cluster.scalar(f"SELECT count(*) AS n FROM {table} WHERE patient_id = 1")
            self.assertGreater(n, 0, f"patient 1 has no {table}: the journeys would show nothing")

    def test_seed_is_deterministic_and_refuses_a_non_empty_database(self):
        c = self.cluster
        c.sql("DROP DATABASE IF EXISTS continuum_again; CREATE DATABASE continuum_again;")
        other = c.url.rsplit("/", 1)[0] + "/continuum_again"
        c.migrate(other)
        c.seed(other)
        # Everything but timestamps and salted password hashes must be identical.
        checks = {
            "patient": "SELECT md5(string_agg(concat_ws('|', id, mrn, family, given, gender, birth_date, "
                       "phone, email, address_line, city, state, postal_code, facility_id), ',' ORDER BY id)) FROM patient",
            "practitioner": "SELECT md5(string_agg(concat_ws('|', id, npi, family, given, specialty, facility_id), "
                            "',' ORDER BY id)) FROM practitioner",
            "care_relationship": "SELECT md5(string_agg(concat_ws('|', practitioner_id, patient_id, facility_id, since), "
                                 "',' ORDER BY practitioner_id, patient_id)) FROM care_relationship",
            "allergy": "SELECT md5(string_agg(concat_ws('|', id, patient_id, code, criticality, clinical_status), "
                       "',' ORDER BY id)) FROM allergy",
            "medication": "SELECT md5(string_agg(concat_ws('|', id, patient_id, rxnorm_code, dosage, status), "
                          "',' ORDER BY id)) FROM medication",
            "account": "SELECT md5(string_agg(concat_ws('|', username, role, patient_id, practitioner_id), "
                       "',' ORDER BY username)) FROM account",
        }
        for name, sql in checks.items():
            a = c.pg.psql(sql + ";").strip()
            b = c.pg.psql(sql + ";", database_url=other).strip()
            self.assertEqual(a, b, f"seed is not deterministic: {name} differs")
        again = c.seed(other, check=False)
        self.assertNotEqual(again.returncode, 0, "seeding a non-empty database must be refused")


if __name__ == "__main__":
    unittest.main()
