#include "stubdeps/ehr_data.hpp"

#include <gtest/gtest.h>

#include <set>

#include "seed/population.hpp"
#include "stubdeps/ehr_api.hpp"
#include "stubdeps/instant.hpp"

namespace continuum::stubdeps {
namespace {
namespace json = boost::json;

EhrOptions Small() {
  EhrOptions o;
  o.patients = 40;
  o.facilities = 3;
  return o;
}

TEST(Instant, FormatsAndParsesFhirDateTimes) {
  EXPECT_EQ(FormatInstant(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatInstant(seed::kSeededAtEpochSeconds * 1000 + 1234), "2026-10-01T00:00:01.234Z");
  EXPECT_EQ(FormatInstant(-1), "1969-12-31T23:59:59.999Z");

  const int64_t day = seed::kSeededAtEpochSeconds * 1000;
  auto p = ParseFhirDateTime("2026-10-01");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->start_ms, day);
  EXPECT_EQ(p->end_ms, day + 86400000);
  p = ParseFhirDateTime("2026-10");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->end_ms - p->start_ms, int64_t{31} * 86400000);
  p = ParseFhirDateTime("2026");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->end_ms - p->start_ms, int64_t{365} * 86400000);
  p = ParseFhirDateTime("2026-10-01T10:30:00Z");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->start_ms, day + 37800000);
  EXPECT_EQ(p->end_ms, p->start_ms + 1000);
  p = ParseFhirDateTime("2026-10-01T12:30:00.25+02:00");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->start_ms, day + 37800250);
  EXPECT_EQ(p->end_ms, p->start_ms + 1);
  // A query string decodes '+' as a space.
  p = ParseFhirDateTime("2026-10-01T12:30:00 02:00");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->start_ms, day + 37800000);
  p = ParseFhirDateTime("2026-10-01T10:30Z");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->end_ms - p->start_ms, 60000);
  // Round trip.
  p = ParseFhirDateTime(FormatInstant(1795600000123));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->start_ms, 1795600000123);
  for (const char* bad :
       {"", "26-10-01", "2026-13-01", "2026-02-30", "2026-10-01T10:30:00", "2026-10-01T25:00:00Z",
        "2026-10-01T10:30:00.Z", "2026-10-01 10:30Z", "2026-10-01T10:30:00Zjunk", "yesterday"}) {
    EXPECT_FALSE(ParseFhirDateTime(bad).has_value()) << bad;
  }
}

TEST(EhrStore, IsTheSeededPopulation) {
  EhrStore a(Small()), b(Small());
  EXPECT_EQ(a.Count(EhrType::kPatient), 40u);
  for (int t = 0; t < kEhrTypeCount; ++t) {
    const auto type = static_cast<EhrType>(t);
    ASSERT_EQ(a.Count(type), b.Count(type));
    EXPECT_GT(a.Count(type), 0u) << TypeName(type);
    EhrQuery q;
    q.count = 100000;
    auto pa = a.Search(type, q), pb = b.Search(type, q);
    ASSERT_EQ(pa.resources.size(), pb.resources.size());
    for (std::size_t i = 0; i < pa.resources.size(); ++i)
      EXPECT_EQ(json::serialize(pa.resources[i]->ToFhir()),
                json::serialize(pb.resources[i]->ToFhir()));
  }
  // Patient n carries the portal's MRN for n.
  json::object p = a.Read(EhrType::kPatient, 7)->ToFhir();
  EXPECT_EQ(p["resourceType"].as_string(), "Patient");
  EXPECT_EQ(p["id"].as_string(), "7");
  const auto& ident = p["identifier"].as_array()[0].as_object();
  EXPECT_EQ(ident.at("system").as_string(), "urn:continuum:mrn");
  EXPECT_EQ(ident.at("value").as_string(), "MRN0000000007");
  EXPECT_EQ(p["meta"].as_object().at("versionId").as_string(), "1");
  // Initial data is stamped in the 90 days before the reference day.
  const int64_t ref = seed::kSeededAtEpochSeconds * 1000;
  EXPECT_LE(a.max_last_updated_ms(), ref);
  auto lu = ParseFhirDateTime(p["meta"].as_object().at("lastUpdated").as_string());
  ASSERT_TRUE(lu.has_value());
  EXPECT_GT(lu->start_ms, ref - int64_t{91} * 86400000);
  // Clinical resources point at their patient.
  EhrQuery q;
  q.patient = 1;
  q.count = 1000;
  auto meds = a.Search(EhrType::kMedicationStatement, q);
  EXPECT_GE(meds.resources.size(), 2u);  // the demo patient has at least two
  for (const auto* r : meds.resources)
    EXPECT_EQ(r->ToFhir()["subject"].as_object().at("reference").as_string(), "Patient/1");
}

// Follows the cursor to the end; returns the ids seen, in order.
std::vector<int64_t> PageThrough(const EhrStore& s, EhrType type, EhrQuery q, int* pages) {
  std::vector<int64_t> ids;
  *pages = 0;
  for (;;) {
    auto page = s.Search(type, q);
    ++*pages;
    EXPECT_LE(static_cast<int>(page.resources.size()), q.count);
    for (const auto* r : page.resources) ids.push_back(r->id);
    if (!page.next) break;
    q.after = page.next;
  }
  return ids;
}

TEST(EhrStore, PagesCoverEveryMatchOnceInLastUpdatedOrder) {
  EhrStore s(Small());
  EhrQuery q;
  q.count = 7;
  int pages = 0;
  auto ids = PageThrough(s, EhrType::kEncounter, q, &pages);
  EXPECT_EQ(ids.size(), s.Count(EhrType::kEncounter));
  EXPECT_EQ(std::set<int64_t>(ids.begin(), ids.end()).size(), ids.size());
  EXPECT_EQ(pages, static_cast<int>((ids.size() + 6) / 7));
  int64_t prev = INT64_MIN;
  for (int64_t id : ids) {
    const int64_t t = s.Read(EhrType::kEncounter, id)->last_updated_ms;
    EXPECT_GE(t, prev);
    prev = t;
  }
  auto first = s.Search(EhrType::kEncounter, q);
  EXPECT_EQ(first.total, static_cast<int64_t>(ids.size()));
}

TEST(EhrStore, LastUpdatedRangeFilters) {
  EhrStore s(Small());
  EhrQuery all;
  all.count = 100000;
  auto every = s.Search(EhrType::kCondition, all);
  ASSERT_GT(every.resources.size(), 4u);
  const int64_t mid = every.resources[every.resources.size() / 2]->last_updated_ms;
  EhrQuery after = all;
  after.from_ms = mid + 1;  // gt mid
  EhrQuery before = all;
  before.to_ms = mid + 1;  // le mid
  auto a = s.Search(EhrType::kCondition, after), b = s.Search(EhrType::kCondition, before);
  EXPECT_EQ(a.resources.size() + b.resources.size(), every.resources.size());
  for (const auto* r : a.resources) EXPECT_GT(r->last_updated_ms, mid);
  for (const auto* r : b.resources) EXPECT_LE(r->last_updated_ms, mid);
  EhrQuery empty = all;
  empty.from_ms = empty.to_ms = mid;
  EXPECT_EQ(s.Search(EhrType::kCondition, empty).total, 0);
}

TEST(EhrStore, TicksBringNewerResourcesForAnIncrementalSync) {
  EhrStore s(Small());
  const int64_t since = s.max_last_updated_ms();
  const std::size_t encounters = s.Count(EhrType::kEncounter);
  const int64_t now = 1795600000000;  // after the initial data
  std::set<std::pair<int, int64_t>> changed;
  int created = 0;
  for (int i = 0; i < 50; ++i) {
    EhrChange c = s.Tick(now);  // the same clock reading: stamps still strictly increase
    changed.emplace(static_cast<int>(c.type), c.id);
    created += c.created;
    EXPECT_EQ(s.max_last_updated_ms(), now + i);
  }
  EXPECT_EQ(s.Count(EhrType::kEncounter), encounters + created);
  EXPECT_GT(created, 0);
  std::set<std::pair<int, int64_t>> synced;
  for (int t = 0; t < kEhrTypeCount; ++t) {
    EhrQuery q;
    q.from_ms = since + 1;
    q.count = 3;
    int pages = 0;
    for (int64_t id : PageThrough(s, static_cast<EhrType>(t), q, &pages)) {
      synced.emplace(t, id);
      const EhrResource* r = s.Read(static_cast<EhrType>(t), id);
      EXPECT_GE(r->last_updated_ms, now);
      EXPECT_TRUE(r->version >= 2 || r->type == EhrType::kEncounter);  // updated or new
    }
  }
  EXPECT_EQ(synced, changed);
}

TEST(EhrStore, AChangeDuringPagingIsNeverSkipped) {
  EhrStore s(Small());
  EhrQuery q;
  q.count = 5;
  auto page = s.Search(EhrType::kAllergyIntolerance, q);
  ASSERT_TRUE(page.next.has_value());
  std::set<int64_t> seen;
  for (const auto* r : page.resources) seen.insert(r->id);
  // Meanwhile many resources change (and move behind the cursor): the rest of the pages
  // still deliver every resource at least once.
  for (int i = 0; i < 200; ++i) s.Tick(1795600000000);
  q.after = page.next;
  int pages = 0;
  for (int64_t id : PageThrough(s, EhrType::kAllergyIntolerance, q, &pages)) seen.insert(id);
  EXPECT_EQ(seen.size(), s.Count(EhrType::kAllergyIntolerance));
}

TEST(EhrApi, SearchBundleWithNextLinksAndErrors) {
  EhrStore store(Small());
  ReceivedLog log;
  EhrApi api(store, log, "http://ehr.test/fhir/R4");
  http::Request req;
  req.method = "GET";
  req.path = "/fhir/R4/Patient";
  req.target = "/fhir/R4/Patient?_lastUpdated=gt2020-01-01T00:00:00Z&_count=15";
  req.query = {{"_lastUpdated", "gt2020-01-01T00:00:00Z"}, {"_count", "15"}};
  req.headers = {{"host", "127.0.0.1:9101"}};
  auto r = api.Handle(req);
  ASSERT_EQ(r.status, 200) << r.body;
  json::object b = json::parse(r.body).as_object();
  EXPECT_EQ(b["resourceType"].as_string(), "Bundle");
  EXPECT_EQ(b["type"].as_string(), "searchset");
  EXPECT_EQ(b["total"].as_int64(), 40);
  EXPECT_EQ(b["entry"].as_array().size(), 15u);
  std::string next;
  for (const auto& l : b["link"].as_array())
    if (l.as_object().at("relation").as_string() == "next")
      next = std::string(l.as_object().at("url").as_string());
  EXPECT_TRUE(
      next.starts_with("http://127.0.0.1:9101/fhir/R4/Patient?_lastUpdated=gt2020-01-01T00"))
      << next;
  EXPECT_NE(next.find("&_count=15&_cursor="), std::string::npos) << next;
  EXPECT_EQ(log.size(), 1u);

  auto status_of = [&](std::vector<std::pair<std::string, std::string>> query,
                       std::string path = "/fhir/R4/Patient") {
    http::Request q;
    q.method = "GET";
    q.path = q.target = std::move(path);
    q.query = std::move(query);
    return api.Handle(q).status;
  };
  EXPECT_EQ(status_of({{"_count", "0"}}), 400);
  EXPECT_EQ(status_of({{"_count", "1001"}}), 400);
  EXPECT_EQ(status_of({{"_lastUpdated", "gt-yesterday"}}), 400);
  EXPECT_EQ(status_of({{"_lastUpdated", "ne2026-01-01"}}), 400);
  EXPECT_EQ(status_of({{"_cursor", "x"}}), 400);
  EXPECT_EQ(status_of({{"name", "smith"}}), 400);
  EXPECT_EQ(status_of({{"patient", "Patient/3"}}, "/fhir/R4/Encounter"), 200);
  EXPECT_EQ(status_of({}, "/fhir/R4/Observation"), 404);
  EXPECT_EQ(status_of({}, "/fhir/R4/Patient/3"), 200);
  EXPECT_EQ(status_of({}, "/fhir/R4/Patient/99999"), 404);
  EXPECT_EQ(status_of({}, "/fhir/R4/metadata"), 200);
  EXPECT_EQ(status_of({}, "/other"), 404);
}

}  // namespace
}  // namespace continuum::stubdeps
