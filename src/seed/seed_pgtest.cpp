#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "auth/password.hpp"
#include "seed/seed.hpp"
#include "support/pg_instance.hpp"

namespace continuum::seed {
namespace {

using continuum::testing::PgInstance;

constexpr int64_t kPatients = 300;
constexpr int64_t kFacilities = 4;

SeedOptions Options(const std::string& url, uint64_t random_seed = 20261125) {
  SeedOptions o;
  o.database_url = Secret(url);
  o.patients = kPatients;
  o.facilities = kFacilities;
  o.random_seed = random_seed;
  o.progress = false;
  return o;
}

// One seeded database shared by the read-only tests of this file.
class SeedTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    url_ = new std::string(PgInstance::Shared().FreshDatabase());
    seed::Run(Options(*url_));
  }
  static void TearDownTestSuite() {
    delete url_;
    url_ = nullptr;
  }
  static std::string Q(const std::string& sql) {
    return PgInstance::Shared().QueryValue(*url_, sql);
  }
  static int64_t N(const std::string& sql) { return std::stoll(Q(sql)); }

  static std::string* url_;
};
std::string* SeedTest::url_ = nullptr;

// A digest of every row of every seeded table, in id order.
std::string Digest(const std::string& url) {
  auto& pg = PgInstance::Shared();
  std::string all;
  for (const char* t : {"facility ORDER BY id", "practitioner ORDER BY id", "patient ORDER BY id",
                        "care_relationship ORDER BY patient_id, practitioner_id",
                        "allergy ORDER BY id", "medication ORDER BY id", "condition ORDER BY id",
                        "encounter ORDER BY id", "account ORDER BY id"}) {
    const std::string table = std::string(t).substr(0, std::string(t).find(' '));
    const std::string order = std::string(t).substr(std::string(t).find(' ') + 1);
    all += pg.QueryValue(url, "SELECT md5(coalesce(string_agg(x::text, E'\\n' " + order +
                                  "), '')) FROM " + table + " x") +
           "\n";
  }
  return all;
}

TEST_F(SeedTest, IsDeterministic) {
  const std::string other = PgInstance::Shared().FreshDatabase();
  seed::Run(Options(other));
  EXPECT_EQ(Digest(*url_), Digest(other));
  EXPECT_EQ(Digest(*url_).size(), 9u * 33u);
}

TEST_F(SeedTest, ADifferentSeedGivesDifferentData) {
  const std::string other = PgInstance::Shared().FreshDatabase();
  seed::Run(Options(other, 42));
  EXPECT_NE(Digest(*url_), Digest(other));
  EXPECT_EQ(PgInstance::Shared().QueryValue(other, "SELECT count(*) FROM patient"),
            std::to_string(kPatients));
}

TEST_F(SeedTest, LoadsTheRequestedPopulation) {
  EXPECT_EQ(N("SELECT count(*) FROM facility"), kFacilities);
  EXPECT_EQ(N("SELECT count(*) FROM patient"), kPatients);
  EXPECT_EQ(N("SELECT min(id) FROM patient"), 1);
  EXPECT_EQ(N("SELECT max(id) FROM patient"), kPatients);
  // ~ patients/500, at least 2 per facility.
  EXPECT_EQ(N("SELECT count(*) FROM practitioner"),
            std::max<int64_t>(kPatients / 500, 2 * kFacilities));
  EXPECT_EQ(N("SELECT count(*) FROM facility f WHERE (SELECT count(*) FROM practitioner p "
              "WHERE p.facility_id = f.id) < 2"),
            0);
  // Child ids are sequential.
  for (const char* t : {"allergy", "medication", "condition", "encounter"}) {
    EXPECT_EQ(Q(std::string("SELECT count(*) = max(id) AND min(id) = 1 FROM ") + t), "t") << t;
  }
}

TEST_F(SeedTest, RespectsDistributionBounds) {
  auto max_per_patient = [](const char* table) {
    return N(std::string("SELECT coalesce(max(c), 0) FROM (SELECT count(*) c FROM ") + table +
             " GROUP BY patient_id) s");
  };
  EXPECT_LE(max_per_patient("allergy"), 6);
  EXPECT_LE(max_per_patient("medication"), 12);
  EXPECT_LE(max_per_patient("condition"), 8);
  EXPECT_LE(max_per_patient("encounter"), 30);
  EXPECT_LE(max_per_patient("care_relationship"), 3);
  // Every patient has 1..30 encounters and 1..3 practitioners.
  EXPECT_EQ(N("SELECT count(*) FROM patient p WHERE NOT EXISTS "
              "(SELECT 1 FROM encounter e WHERE e.patient_id = p.id)"),
            0);
  EXPECT_EQ(N("SELECT count(*) FROM patient p WHERE NOT EXISTS "
              "(SELECT 1 FROM care_relationship c WHERE c.patient_id = p.id)"),
            0);
  // Allergies skewed low: most patients have none or one.
  EXPECT_GT(N("SELECT count(*) FROM patient p WHERE (SELECT count(*) FROM allergy a "
              "WHERE a.patient_id = p.id) <= 1"),
            kPatients / 2);
  // Something of everything, not all at the maximum.
  EXPECT_GT(N("SELECT count(*) FROM medication"), kPatients / 2);
  EXPECT_GT(N("SELECT count(*) FROM condition"), kPatients / 3);
  EXPECT_GT(N("SELECT count(*) FROM encounter"), kPatients * 2);
  EXPECT_LT(N("SELECT count(*) FROM encounter"), kPatients * 20);
  // No duplicate code per patient.
  EXPECT_EQ(N("SELECT count(*) FROM (SELECT patient_id, code FROM allergy GROUP BY 1, 2 "
              "HAVING count(*) > 1) s"),
            0);
  EXPECT_EQ(N("SELECT count(*) FROM (SELECT patient_id, rxnorm_code FROM medication "
              "GROUP BY 1, 2 HAVING count(*) > 1) s"),
            0);
}

TEST_F(SeedTest, MostCareAndEncountersAtTheHomeFacility) {
  const double care_home =
      std::stod(Q("SELECT avg((c.facility_id = p.facility_id)::int) FROM care_relationship c "
                  "JOIN patient p ON p.id = c.patient_id"));
  EXPECT_GT(care_home, 0.7);
  const double encounter_home =
      std::stod(Q("SELECT avg((e.facility_id = p.facility_id)::int) FROM encounter e "
                  "JOIN patient p ON p.id = e.patient_id"));
  EXPECT_GT(encounter_home, 0.7);
  // Every patient's first relationship is with a primary-care physician at home.
  EXPECT_EQ(N("SELECT count(*) FROM patient p WHERE NOT EXISTS (SELECT 1 FROM "
              "care_relationship c JOIN practitioner pr ON pr.id = c.practitioner_id "
              "WHERE c.patient_id = p.id AND pr.facility_id = p.facility_id AND pr.specialty "
              "IN ('Family Medicine', 'Internal Medicine', 'Pediatrics'))"),
            0);
}

// Foreign keys are not checked during the load (superuser): check them here.
TEST_F(SeedTest, ReferencesAreConsistent) {
  EXPECT_EQ(N("SELECT count(*) FROM patient p LEFT JOIN facility f ON f.id = p.facility_id "
              "WHERE f.id IS NULL"),
            0);
  EXPECT_EQ(N("SELECT count(*) FROM practitioner p LEFT JOIN facility f ON f.id = p.facility_id "
              "WHERE f.id IS NULL"),
            0);
  EXPECT_EQ(N("SELECT count(*) FROM care_relationship c JOIN practitioner p ON "
              "p.id = c.practitioner_id WHERE c.facility_id <> p.facility_id"),
            0);
  EXPECT_EQ(N("SELECT count(*) FROM care_relationship c WHERE NOT EXISTS "
              "(SELECT 1 FROM patient p WHERE p.id = c.patient_id)"),
            0);
  EXPECT_EQ(N("SELECT count(*) FROM encounter e JOIN practitioner p ON "
              "p.id = e.practitioner_id WHERE e.facility_id <> p.facility_id"),
            0);
  EXPECT_EQ(N("SELECT count(*) FROM encounter e WHERE NOT EXISTS "
              "(SELECT 1 FROM practitioner p WHERE p.id = e.practitioner_id)"),
            0);
  for (const char* t : {"allergy", "medication", "condition", "encounter"}) {
    EXPECT_EQ(N(std::string("SELECT count(*) FROM ") + t +
                " x WHERE NOT EXISTS (SELECT 1 FROM patient p WHERE p.id = x.patient_id)"),
              0)
        << t;
  }
  EXPECT_EQ(N("SELECT count(*) FROM account a WHERE (a.patient_id IS NOT NULL AND NOT EXISTS "
              "(SELECT 1 FROM patient p WHERE p.id = a.patient_id)) OR (a.practitioner_id IS NOT "
              "NULL AND NOT EXISTS (SELECT 1 FROM practitioner p WHERE p.id = a.practitioner_id))"),
            0);
}

TEST_F(SeedTest, DataLooksPlausible) {
  EXPECT_EQ(Q("SELECT bool_and(birth_date BETWEEN '1930-01-01' AND '2024-12-31') FROM patient"),
            "t");
  EXPECT_EQ(Q("SELECT mrn FROM patient WHERE id = 42"), "MRN0000000042");
  EXPECT_EQ(Q("SELECT bool_and(npi ~ '^[0-9]{10}$') FROM practitioner"), "t");
  EXPECT_EQ(Q("SELECT bool_and(phone ~ '^[0-9]{3}-555-01[0-9]{2}$') FROM patient"), "t");
  EXPECT_EQ(Q("SELECT bool_and(email LIKE '%@example.com') FROM patient"), "t");
  EXPECT_GE(N("SELECT count(DISTINCT family) FROM patient"), 50);
  EXPECT_GE(N("SELECT count(DISTINCT gender) FROM patient"), 2);
  EXPECT_GE(N("SELECT count(DISTINCT class_code) FROM encounter"), 4);
  EXPECT_GE(N("SELECT count(DISTINCT specialty) FROM practitioner"), 2);
  EXPECT_EQ(Q("SELECT display FROM allergy WHERE code = '91936005' LIMIT 1"),
            "Allergy to penicillin");
  EXPECT_EQ(Q("SELECT display FROM condition WHERE snomed_code = '38341003' LIMIT 1"),
            "Hypertensive disorder");
  // Encounters end after they start; planned ones lie after the reference day.
  EXPECT_EQ(N("SELECT count(*) FROM encounter WHERE period_end < period_start"), 0);
  EXPECT_EQ(N("SELECT count(*) FROM encounter WHERE status = 'planned' AND period_end IS NOT NULL"),
            0);
  EXPECT_EQ(N("SELECT count(*) FROM encounter e JOIN patient p ON p.id = e.patient_id "
              "WHERE e.period_start::date < p.birth_date"),
            0);
  // Pregnancy only for female patients.
  EXPECT_EQ(N("SELECT count(*) FROM condition c JOIN patient p ON p.id = c.patient_id "
              "WHERE c.snomed_code = '72892002' AND p.gender <> 'female'"),
            0);
}

TEST_F(SeedTest, DemoAccountsAndRelationships) {
  EXPECT_EQ(Q("SELECT role || ':' || patient_id FROM account WHERE username = 'demo-patient'"),
            "patient:1");
  EXPECT_EQ(
      Q("SELECT role || ':' || practitioner_id FROM account WHERE username = 'demo-provider'"),
      "provider:1");
  EXPECT_EQ(Q("SELECT role || ':' || (patient_id IS NULL AND practitioner_id IS NULL)::text "
              "FROM account WHERE username = 'demo-auditor'"),
            "auditor:true");
  EXPECT_EQ(
      N("SELECT count(*) FROM care_relationship WHERE practitioner_id = 1 AND patient_id = 1"), 1);
  EXPECT_EQ(
      N("SELECT count(*) FROM care_relationship WHERE practitioner_id = 1 AND patient_id = 2"), 0);
  EXPECT_EQ(N("SELECT count(*) FROM encounter WHERE practitioner_id = 1 AND patient_id = 2"), 0);
  EXPECT_GE(N("SELECT count(*) FROM allergy WHERE patient_id = 1"), 1);
  EXPECT_GE(N("SELECT count(*) FROM medication WHERE patient_id = 1"), 2);
  EXPECT_GE(N("SELECT count(*) FROM condition WHERE patient_id = 1"), 1);
  EXPECT_GE(N("SELECT count(*) FROM encounter WHERE patient_id = 1"), 3);
  // Everyone else has an account too, all sharing one hash of the demo password.
  EXPECT_EQ(N("SELECT count(*) FROM account"),
            kPatients + N("SELECT count(*) FROM practitioner") + 3);
  EXPECT_EQ(Q("SELECT role || ':' || patient_id FROM account WHERE username = 'patient-17'"),
            "patient:17");
  EXPECT_EQ(Q("SELECT role || ':' || practitioner_id FROM account WHERE username = 'provider-3'"),
            "provider:3");
  EXPECT_EQ(N("SELECT count(DISTINCT password_hash) FROM account"), 1);
  const std::string hash = Q("SELECT password_hash FROM account WHERE username = 'demo-provider'");
  EXPECT_TRUE(hash.rfind("$argon2id$", 0) == 0) << hash;
  EXPECT_TRUE(auth::VerifyPassword(hash, "continuum-demo"));
  EXPECT_FALSE(auth::VerifyPassword(hash, "continuum-dem0"));
  // Seeded ids stay below the run-time sequences.
  EXPECT_EQ(Q("SELECT max(id) < 1000000000000 FROM account"), "t");
  EXPECT_EQ(Q("SELECT nextval('account_id_seq') >= 1000000000000"), "t");
}

TEST_F(SeedTest, RefusesANonEmptyDatabase) {
  try {
    seed::Run(Options(*url_));
    FAIL() << "seeding twice must be refused";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("non-empty"), std::string::npos) << e.what();
  }
  EXPECT_EQ(N("SELECT count(*) FROM patient"), kPatients);
}

TEST(SeedStandaloneTest, RefusesWhenOnlySomeTableHasRows) {
  auto& pg = PgInstance::Shared();
  const std::string url = pg.FreshDatabase();
  pg.Exec(url, "INSERT INTO facility (id, name, city, state) VALUES (99, 'X', 'Y', 'CA')");
  EXPECT_THROW(seed::Run(Options(url)), std::runtime_error);
  EXPECT_EQ(pg.QueryValue(url, "SELECT count(*) FROM facility"), "1");
  EXPECT_EQ(pg.QueryValue(url, "SELECT count(*) FROM patient"), "0");
}

TEST(SeedStandaloneTest, RefusesAnUnmigratedDatabase) {
  auto& pg = PgInstance::Shared();
  pg.Exec(pg.UrlFor("postgres"), "CREATE DATABASE seed_unmigrated TEMPLATE template0");
  try {
    seed::Run(Options(pg.UrlFor("seed_unmigrated")));
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("migrate"), std::string::npos) << e.what();
  }
}

TEST(SeedStandaloneTest, RejectsBadOptions) {
  auto o = Options(PgInstance::Shared().url());
  o.patients = 0;
  EXPECT_THROW(seed::Run(o), std::invalid_argument);
  o = Options(PgInstance::Shared().url());
  o.facilities = 0;
  EXPECT_THROW(seed::Run(o), std::invalid_argument);
}

// As an ordinary role the foreign keys are checked row by row during the load: the
// generated data must satisfy them, and the result must be the same.
TEST(SeedStandaloneTest, LoadsAsANonSuperuserWithForeignKeysChecked) {
  auto& pg = PgInstance::Shared();
  const std::string url = pg.FreshDatabase();
  const std::string db = url.substr(url.rfind('/') + 1);
  pg.Exec(pg.UrlFor("postgres"),
          "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'seeder') THEN "
          "CREATE ROLE seeder LOGIN; END IF; END $$");
  pg.Exec(url,
          "GRANT ALL ON ALL TABLES IN SCHEMA public TO seeder; "
          "GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO seeder");
  const std::string seeder_url =
      "postgresql://seeder@127.0.0.1:" + std::to_string(pg.port()) + "/" + db;
  seed::Run(Options(seeder_url));
  const std::string reference = pg.FreshDatabase();
  seed::Run(Options(reference));
  EXPECT_EQ(Digest(url), Digest(reference));
}

}  // namespace
}  // namespace continuum::seed
