#include "portal/ehr_sync.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace continuum::portal::ehr {
namespace {
namespace json = boost::json;

json::object Rows(const Page& p, std::size_t i) {
  return json::parse(p.rows).as_array().at(i).as_object();
}

std::string Bundle(const std::string& entries, const std::string& next = "") {
  std::string links = R"([{"relation":"self","url":"http://127.0.0.1:9301/fhir/R4/X"}])";
  if (!next.empty()) links.pop_back(), links += R"(,{"relation":"next","url":")" + next + "\"}]";
  return R"({"resourceType":"Bundle","type":"searchset","link":)" + links + R"(,"entry":[)" +
         entries + "]}";
}

TEST(EhrSync, PathOfStripsSchemeAndHost) {
  EXPECT_EQ(PathOf("http://127.0.0.1:9301/fhir/R4/Condition?_count=2&_cursor=a"),
            "/fhir/R4/Condition?_count=2&_cursor=a");
  EXPECT_EQ(PathOf("https://ehr.example.org/fhir/R4/Patient"), "/fhir/R4/Patient");
  EXPECT_EQ(PathOf("/fhir/R4/Patient?x=1"), "/fhir/R4/Patient?x=1");
  EXPECT_EQ(PathOf("http://host"), "/");
}

TEST(EhrSync, SearchPathAndInstants) {
  EXPECT_EQ(SearchPath("Encounter", "2026-11-25T18:00:00.123Z", 100),
            "/fhir/R4/Encounter?_lastUpdated=gt2026-11-25T18:00:00.123Z&_count=100");
  EXPECT_EQ(FormatInstant(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatInstant(1764093600123), "2025-11-25T18:00:00.123Z");
}

TEST(EhrSync, ConditionPageToRows) {
  std::string c1 = R"({"resource":{"resourceType":"Condition","id":"17","meta":{"versionId":"2",
    "lastUpdated":"2026-11-25T10:00:00.500Z"},"clinicalStatus":{"coding":[{"system":
    "http://terminology.hl7.org/CodeSystem/condition-clinical","code":"remission"}]},
    "code":{"coding":[{"system":"http://snomed.info/sct","code":"44054006","display":
    "Diabetes mellitus type 2"}],"text":"Diabetes"},"subject":{"reference":"Patient/3"},
    "onsetDateTime":"2019-04-02"}})";
  std::string bad = R"({"resource":{"resourceType":"Condition","id":"18","meta":{"lastUpdated":
    "2026-11-25T11:00:00.000Z"},"clinicalStatus":{"coding":[{"code":"entered-in-error"}]},
    "code":{"coding":[{"code":"1"}]},"subject":{"reference":"Patient/3"},"onsetDateTime":
    "2019-04-02"}})";
  Page p = ParsePage("Condition", Bundle(c1 + "," + bad));
  EXPECT_EQ(p.received, 2);
  EXPECT_EQ(p.skipped, 1);
  EXPECT_EQ(p.max_last_updated, "2026-11-25T11:00:00.000Z");
  EXPECT_EQ(p.high_water, "2026-11-25T11:00:00.000Z");  // last page: all of it
  EXPECT_FALSE(p.next.has_value());
  auto r = Rows(p, 0);
  EXPECT_EQ(r.at("id").as_int64(), 17);
  EXPECT_EQ(r.at("patient_id").as_int64(), 3);
  EXPECT_EQ(r.at("snomed_code").as_string(), "44054006");
  EXPECT_EQ(r.at("display").as_string(), "Diabetes mellitus type 2");
  EXPECT_EQ(r.at("clinical_status").as_string(), "remission");
  EXPECT_EQ(r.at("onset_date").as_string(), "2019-04-02");
  EXPECT_EQ(r.at("lu").as_string(), "2026-11-25T10:00:00.500Z");
}

TEST(EhrSync, NextLinkKeepsHighWaterBelowTheLastInstant) {
  auto med = [](int id, const char* lu) {
    return std::string(R"({"resource":{"resourceType":"MedicationStatement","id":")") +
           std::to_string(id) + R"(","meta":{"lastUpdated":")" + lu +
           R"("},"status":"on-hold","medicationCodeableConcept":{"coding":[{"system":
      "http://www.nlm.nih.gov/research/umls/rxnorm","code":"860975","display":"Metformin"}]},
      "subject":{"reference":"Patient/9"},"effectivePeriod":{"start":"2024-01-05"},
      "dosage":[{"text":"500 mg twice daily"}]}})";
  };
  Page p = ParsePage(
      "MedicationStatement",
      Bundle(med(1, "2026-01-01T00:00:01.000Z") + "," + med(2, "2026-01-01T00:00:02.000Z") + "," +
                 med(3, "2026-01-01T00:00:02.000Z"),
             "http://127.0.0.1:9301/fhir/R4/MedicationStatement?_lastUpdated="
             "gt2020-01-01T00:00:00Z&_count=3&_cursor=abc"));
  ASSERT_TRUE(p.next.has_value());
  EXPECT_EQ(
      *p.next,
      "/fhir/R4/MedicationStatement?_lastUpdated=gt2020-01-01T00:00:00Z&_count=3&_cursor=abc");
  EXPECT_EQ(p.max_last_updated, "2026-01-01T00:00:02.000Z");
  EXPECT_EQ(p.high_water, "2026-01-01T00:00:01.000Z");
  auto r = Rows(p, 0);
  EXPECT_EQ(r.at("rxnorm_code").as_string(), "860975");
  EXPECT_EQ(r.at("status").as_string(), "on-hold");
  EXPECT_EQ(r.at("dosage").as_string(), "500 mg twice daily");
  EXPECT_EQ(r.at("effective_start").as_string(), "2024-01-05");
}

TEST(EhrSync, PatientAllergyEncounterRows) {
  std::string patient = R"({"resource":{"resourceType":"Patient","id":"5","meta":{"lastUpdated":
    "2026-01-01T00:00:00.000Z"},"identifier":[{"system":"urn:continuum:mrn","value":"MRN5"}],
    "name":[{"family":"Doe","given":["Jane"]}],"telecom":[{"system":"phone","value":
    "555-0101"}],"gender":"female","birthDate":"1980-02-03","address":[{"line":["1 Main"],
    "city":"Springfield","state":"IL","postalCode":"62701"}],"managingOrganization":
    {"reference":"Organization/2"}}})";
  Page p = ParsePage("Patient", Bundle(patient));
  auto r = Rows(p, 0);
  EXPECT_EQ(r.at("mrn").as_string(), "MRN5");
  EXPECT_EQ(r.at("family").as_string(), "Doe");
  EXPECT_EQ(r.at("given").as_string(), "Jane");
  EXPECT_EQ(r.at("phone").as_string(), "555-0101");
  EXPECT_TRUE(r.at("email").is_null());
  EXPECT_EQ(r.at("facility_id").as_int64(), 2);
  EXPECT_EQ(r.at("postal_code").as_string(), "62701");

  std::string allergy = R"({"resource":{"resourceType":"AllergyIntolerance","id":"8","meta":
    {"lastUpdated":"2026-01-01T00:00:00.000Z"},"clinicalStatus":{"coding":[{"code":"inactive"}]},
    "category":["food"],"criticality":"high","code":{"coding":[{"system":"http://snomed.info/sct",
    "code":"91935009","display":"Peanut"}]},"patient":{"reference":"Patient/5"},
    "recordedDate":"2020-01-01","reaction":[{"manifestation":[{"text":"Hives"}]}]}})";
  r = Rows(ParsePage("AllergyIntolerance", Bundle(allergy)), 0);
  EXPECT_EQ(r.at("clinical_status").as_string(), "inactive");
  EXPECT_EQ(r.at("category").as_string(), "food");
  EXPECT_EQ(r.at("reaction").as_string(), "Hives");

  std::string encounter = R"({"resource":{"resourceType":"Encounter","id":"40","meta":
    {"lastUpdated":"2026-01-01T00:00:00.000Z"},"status":"finished","class":{"system":"x",
    "code":"AMB"},"type":[{"text":"Office visit"}],"subject":{"reference":"Patient/5"},
    "participant":[{"individual":{"reference":"Practitioner/7"}}],"period":{"start":
    "2026-01-01T09:00:00Z"},"serviceProvider":{"reference":"Organization/2"}}})";
  r = Rows(ParsePage("Encounter", Bundle(encounter)), 0);
  EXPECT_EQ(r.at("practitioner_id").as_int64(), 7);
  EXPECT_EQ(r.at("class_code").as_string(), "AMB");
  EXPECT_TRUE(r.at("period_end").is_null());
}

TEST(EhrSync, MalformedBundleThrows) {
  EXPECT_THROW(ParsePage("Patient", "not json"), std::runtime_error);
  EXPECT_THROW(ParsePage("Patient", R"({"resourceType":"OperationOutcome"})"), std::runtime_error);
  Page empty = ParsePage("Patient", R"({"resourceType":"Bundle","type":"searchset"})");
  EXPECT_EQ(empty.received, 0);
  EXPECT_EQ(empty.rows, "[]");
}

}  // namespace
}  // namespace continuum::portal::ehr
