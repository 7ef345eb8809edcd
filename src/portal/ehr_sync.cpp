#include "portal/ehr_sync.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <ctime>
#include <mutex>
#include <set>
#include <stdexcept>

#include "audit/journal.hpp"
#include "core/log.hpp"
#include "db/errors.hpp"
#include "deps/dependency.hpp"
#include "portal/context.hpp"

namespace continuum::portal::ehr {
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

constexpr const char* kSnomed = "http://snomed.info/sct";
constexpr const char* kRxNorm = "http://www.nlm.nih.gov/research/umls/rxnorm";
constexpr int kPageSize = 100;
constexpr int kMaxPagesPerRound = 1000;
constexpr std::array<const char*, 5> kTypes = {"Patient", "Condition", "MedicationStatement",
                                               "AllergyIntolerance", "Encounter"};

// ---- JSON helpers: absent or mistyped fields are "absent"
const json::value* Field(const json::object& o, std::string_view k) { return o.if_contains(k); }
std::optional<std::string> Str(const json::object& o, std::string_view k) {
  auto* v = Field(o, k);
  if (v && v->is_string()) return std::string(v->as_string());
  return std::nullopt;
}
const json::object* Obj(const json::object& o, std::string_view k) {
  auto* v = Field(o, k);
  return v && v->is_object() ? &v->as_object() : nullptr;
}
const json::object* FirstObj(const json::object& o, std::string_view k) {
  auto* v = Field(o, k);
  if (!v || !v->is_array() || v->as_array().empty() || !v->as_array()[0].is_object())
    return nullptr;
  return &v->as_array()[0].as_object();
}
// A CodeableConcept's coding in `system` (or its first coding): code and display.
std::optional<std::pair<std::string, std::string>> CodingOf(const json::object* cc,
                                                            const char* system) {
  if (!cc) return std::nullopt;
  auto* codings = Field(*cc, "coding");
  if (!codings || !codings->is_array()) return std::nullopt;
  const json::object* pick = nullptr;
  for (const auto& c : codings->as_array()) {
    if (!c.is_object()) continue;
    if (!pick) pick = &c.as_object();
    if (system && Str(c.as_object(), "system") == std::optional<std::string>(system)) {
      pick = &c.as_object();
      break;
    }
  }
  if (!pick) return std::nullopt;
  auto code = Str(*pick, "code");
  if (!code) return std::nullopt;
  auto display = Str(*pick, "display");
  if (!display) display = Str(*cc, "text");
  return std::make_pair(*code, display.value_or(*code));
}
std::optional<std::string> StatusCode(const json::object& o, std::string_view k) {
  auto* v = Field(o, k);
  if (v && v->is_string()) return std::string(v->as_string());
  if (v && v->is_object())
    if (auto c = CodingOf(&v->as_object(), nullptr)) return c->first;
  return std::nullopt;
}
// {"reference": "Patient/12"} -> 12
std::optional<int64_t> RefId(const json::object* ref, std::string_view type) {
  if (!ref) return std::nullopt;
  auto r = Str(*ref, "reference");
  std::string prefix = std::string(type) + "/";
  if (!r || !r->starts_with(prefix)) return std::nullopt;
  std::string id = r->substr(prefix.size());
  if (id.empty() || id.size() > 18 || id.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::stoll(id);
}
std::optional<int64_t> Id(const json::object& o) {
  auto s = Str(o, "id");
  if (!s || s->empty() || s->size() > 18 || s->find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::stoll(*s);
}
std::optional<std::string> Date(std::optional<std::string> s) {
  if (!s || s->size() < 10) return std::nullopt;
  return s->substr(0, 10);
}
bool OneOf(const std::optional<std::string>& v, std::initializer_list<std::string_view> allowed) {
  if (!v) return false;
  for (auto a : allowed)
    if (*v == a) return true;
  return false;
}
json::value Opt(const std::optional<std::string>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

// One resource -> one row (nullopt: cannot be stored).
std::optional<json::object> MapResource(std::string_view type, const json::object& r) {
  auto id = Id(r);
  if (!id) return std::nullopt;
  json::object row{{"id", *id}};
  if (type == "Patient") {
    if (auto* n = FirstObj(r, "name")) {
      auto family = Str(*n, "family");
      auto* given = Field(*n, "given");
      if (!family || !given || !given->is_array() || given->as_array().empty() ||
          !given->as_array()[0].is_string())
        return std::nullopt;
      row["family"] = *family;
      row["given"] = given->as_array()[0].as_string();
    } else {
      return std::nullopt;
    }
    std::optional<std::string> phone, email, mrn;
    if (auto* t = Field(r, "telecom"); t && t->is_array())
      for (const auto& c : t->as_array()) {
        if (!c.is_object()) continue;
        auto sys = Str(c.as_object(), "system");
        if (sys == std::optional<std::string>("phone") && !phone)
          phone = Str(c.as_object(), "value");
        if (sys == std::optional<std::string>("email") && !email)
          email = Str(c.as_object(), "value");
      }
    if (auto* ids = Field(r, "identifier"); ids && ids->is_array())
      for (const auto& i : ids->as_array())
        if (i.is_object() &&
            Str(i.as_object(), "system") == std::optional<std::string>("urn:continuum:mrn"))
          mrn = Str(i.as_object(), "value");
    row["phone"] = Opt(phone);
    row["email"] = Opt(email);
    row["mrn"] = Opt(mrn);
    std::optional<std::string> line, city, state, postal;
    if (auto* a = FirstObj(r, "address")) {
      if (auto* l = Field(*a, "line");
          l && l->is_array() && !l->as_array().empty() && l->as_array()[0].is_string())
        line = std::string(l->as_array()[0].as_string());
      city = Str(*a, "city");
      state = Str(*a, "state");
      postal = Str(*a, "postalCode");
    }
    auto empty_null = [](std::optional<std::string> s) {
      return s && s->empty() ? std::nullopt : s;
    };
    row["address_line"] = Opt(empty_null(line));
    row["city"] = Opt(empty_null(city));
    row["state"] = Opt(empty_null(state));
    row["postal_code"] = Opt(empty_null(postal));
    auto gender = Str(r, "gender");
    row["gender"] =
        Opt(OneOf(gender, {"male", "female", "other", "unknown"}) ? gender : std::nullopt);
    row["birth_date"] = Opt(Date(Str(r, "birthDate")));
    auto facility = RefId(Obj(r, "managingOrganization"), "Organization");
    row["facility_id"] = facility ? json::value(*facility) : json::value(nullptr);
    return row;
  }
  if (type == "Condition") {
    auto patient = RefId(Obj(r, "subject"), "Patient");
    auto code = CodingOf(Obj(r, "code"), kSnomed);
    auto status = StatusCode(r, "clinicalStatus");
    auto onset = Date(Str(r, "onsetDateTime"));
    if (!patient || !code || !onset ||
        !OneOf(status, {"active", "recurrence", "relapse", "inactive", "remission", "resolved"}))
      return std::nullopt;
    row["patient_id"] = *patient;
    row["snomed_code"] = code->first;
    row["display"] = code->second;
    row["clinical_status"] = *status;
    row["onset_date"] = *onset;
    return row;
  }
  if (type == "MedicationStatement") {
    auto patient = RefId(Obj(r, "subject"), "Patient");
    auto code = CodingOf(Obj(r, "medicationCodeableConcept"), kRxNorm);
    auto status = Str(r, "status");
    std::optional<std::string> start, dosage;
    if (auto* p = Obj(r, "effectivePeriod")) start = Date(Str(*p, "start"));
    if (!start) start = Date(Str(r, "effectiveDateTime"));
    if (auto* d = FirstObj(r, "dosage")) dosage = Str(*d, "text");
    if (!patient || !code || !start ||
        !OneOf(status, {"active", "completed", "stopped", "on-hold"}))
      return std::nullopt;
    row["patient_id"] = *patient;
    row["rxnorm_code"] = code->first;
    row["display"] = code->second;
    row["dosage"] = dosage.value_or("");
    row["status"] = *status;
    row["effective_start"] = *start;
    return row;
  }
  if (type == "AllergyIntolerance") {
    auto patient = RefId(Obj(r, "patient"), "Patient");
    auto code = CodingOf(Obj(r, "code"), kSnomed);
    auto status = StatusCode(r, "clinicalStatus");
    std::optional<std::string> category, reaction;
    if (auto* c = Field(r, "category");
        c && c->is_array() && !c->as_array().empty() && c->as_array()[0].is_string())
      category = std::string(c->as_array()[0].as_string());
    auto criticality = Str(r, "criticality");
    if (auto* re = FirstObj(r, "reaction"))
      if (auto* m = FirstObj(*re, "manifestation")) reaction = Str(*m, "text");
    auto recorded = Date(Str(r, "recordedDate"));
    if (!patient || !code || !recorded || !OneOf(status, {"active", "inactive", "resolved"}) ||
        !OneOf(category, {"food", "medication", "environment", "biologic"}) ||
        !OneOf(criticality, {"low", "high", "unable-to-assess"}))
      return std::nullopt;
    row["patient_id"] = *patient;
    row["code"] = code->first;
    row["display"] = code->second;
    row["category"] = *category;
    row["criticality"] = *criticality;
    row["clinical_status"] = *status;
    row["reaction"] = Opt(reaction);
    row["recorded_date"] = *recorded;
    return row;
  }
  if (type == "Encounter") {
    auto patient = RefId(Obj(r, "subject"), "Patient");
    auto facility = RefId(Obj(r, "serviceProvider"), "Organization");
    std::optional<int64_t> practitioner;
    if (auto* p = FirstObj(r, "participant"))
      practitioner = RefId(Obj(*p, "individual"), "Practitioner");
    std::optional<std::string> cls, type_display, start, end;
    if (auto* c = Obj(r, "class")) cls = Str(*c, "code");
    if (auto* t = FirstObj(r, "type")) {
      type_display = Str(*t, "text");
      if (!type_display)
        if (auto c = CodingOf(t, nullptr)) type_display = c->second;
    }
    if (auto* p = Obj(r, "period")) {
      start = Str(*p, "start");
      end = Str(*p, "end");
    }
    auto status = Str(r, "status");
    if (!patient || !facility || !practitioner || !start || !type_display ||
        !OneOf(cls, {"AMB", "EMER", "IMP", "VR", "HH"}) ||
        !OneOf(status, {"planned", "in-progress", "finished", "cancelled"}))
      return std::nullopt;
    row["patient_id"] = *patient;
    row["facility_id"] = *facility;
    row["practitioner_id"] = *practitioner;
    row["class_code"] = *cls;
    row["type_display"] = *type_display;
    row["status"] = *status;
    row["period_start"] = *start;
    row["period_end"] = Opt(end);
    return row;
  }
  throw std::invalid_argument("unknown EHR resource type " + std::string(type));
}

// ---- SQL: rows of one page -> the table (only newer versions replace a row; rows
// whose patient, facility or practitioner the portal does not know are left out)
#define ROWS(cols)                                                                     \
  "WITH x AS (SELECT DISTINCT ON (id) * FROM jsonb_to_recordset($1::jsonb) AS x(" cols \
  ", lu timestamptz) ORDER BY id, lu DESC) "
#define NEWER \
  "WHERE t.source_updated_at IS NULL OR t.source_updated_at < EXCLUDED.source_updated_at"

// A patient's mrn and facility stay as they are when the EHR does not send them (the
// proposed row carries the current values: NOT NULL is checked before the conflict).
const db::Query kUpsertPatient{
    "ehr_upsert_patient",
    ROWS("id bigint, mrn text, family text, given text, gender text, birth_date date, phone "
         "text, email text, address_line text, city text, state text, postal_code text, "
         "facility_id bigint")
    "INSERT INTO patient AS t (id, mrn, family, given, gender, birth_date, phone, email, "
    "address_line, city, state, postal_code, facility_id, updated_at, source_updated_at) "
    "SELECT x.id, COALESCE(x.mrn, p.mrn), x.family, x.given, COALESCE(x.gender, p.gender, "
    "'unknown'), COALESCE(x.birth_date, p.birth_date), x.phone, x.email, x.address_line, x.city, "
    "x.state, x.postal_code, COALESCE(f.id, p.facility_id), now(), x.lu FROM x LEFT JOIN patient "
    "p ON p.id = x.id LEFT JOIN facility f ON f.id = x.facility_id WHERE p.id IS NOT NULL OR "
    "(x.mrn IS NOT NULL AND x.birth_date IS NOT NULL AND f.id IS NOT NULL AND NOT EXISTS (SELECT "
    "1 FROM patient q WHERE q.mrn = x.mrn)) "
    "ON CONFLICT (id) DO UPDATE SET mrn = EXCLUDED.mrn, family = EXCLUDED.family, given = "
    "EXCLUDED.given, gender = EXCLUDED.gender, birth_date = EXCLUDED.birth_date, phone = "
    "EXCLUDED.phone, email = EXCLUDED.email, address_line = EXCLUDED.address_line, city = "
    "EXCLUDED.city, state = EXCLUDED.state, postal_code = EXCLUDED.postal_code, facility_id = "
    "EXCLUDED.facility_id, updated_at = now(), source_updated_at = EXCLUDED.source_updated_at " NEWER, db::Access::kWrite};

#define KNOWN_PATIENT "WHERE EXISTS (SELECT 1 FROM patient p WHERE p.id = x.patient_id) "
const db::Query kUpsertCondition{
    "ehr_upsert_condition",
    ROWS("id bigint, patient_id bigint, snomed_code text, display text, clinical_status text, "
         "onset_date date")
    "INSERT INTO condition AS t (id, patient_id, snomed_code, display, clinical_status, "
    "onset_date, updated_at, source_updated_at) SELECT x.id, x.patient_id, x.snomed_code, "
    "x.display, x.clinical_status, x.onset_date, now(), x.lu FROM x " KNOWN_PATIENT
    "ON CONFLICT (id) DO UPDATE SET patient_id = EXCLUDED.patient_id, snomed_code = "
    "EXCLUDED.snomed_code, display = EXCLUDED.display, clinical_status = "
    "EXCLUDED.clinical_status, onset_date = EXCLUDED.onset_date, updated_at = now(), "
    "source_updated_at = EXCLUDED.source_updated_at " NEWER, db::Access::kWrite};
const db::Query kUpsertMedication{
    "ehr_upsert_medication",
    ROWS("id bigint, patient_id bigint, rxnorm_code text, display text, dosage text, status "
         "text, effective_start date")
    "INSERT INTO medication AS t (id, patient_id, rxnorm_code, display, dosage, status, "
    "effective_start, updated_at, source_updated_at) SELECT x.id, x.patient_id, x.rxnorm_code, "
    "x.display, x.dosage, x.status, x.effective_start, now(), x.lu FROM x " KNOWN_PATIENT
    "ON CONFLICT (id) DO UPDATE SET patient_id = EXCLUDED.patient_id, rxnorm_code = "
    "EXCLUDED.rxnorm_code, display = EXCLUDED.display, dosage = EXCLUDED.dosage, status = "
    "EXCLUDED.status, effective_start = EXCLUDED.effective_start, updated_at = now(), "
    "source_updated_at = EXCLUDED.source_updated_at " NEWER, db::Access::kWrite};
const db::Query kUpsertAllergy{
    "ehr_upsert_allergy",
    ROWS("id bigint, patient_id bigint, code text, display text, category text, criticality "
         "text, clinical_status text, reaction text, recorded_date date")
    "INSERT INTO allergy AS t (id, patient_id, code, display, category, criticality, "
    "clinical_status, reaction, recorded_date, updated_at, source_updated_at) SELECT x.id, "
    "x.patient_id, x.code, x.display, x.category, x.criticality, x.clinical_status, x.reaction, "
    "x.recorded_date, now(), x.lu FROM x " KNOWN_PATIENT
    "ON CONFLICT (id) DO UPDATE SET patient_id = EXCLUDED.patient_id, code = EXCLUDED.code, "
    "display = EXCLUDED.display, category = EXCLUDED.category, criticality = "
    "EXCLUDED.criticality, clinical_status = EXCLUDED.clinical_status, reaction = "
    "EXCLUDED.reaction, recorded_date = EXCLUDED.recorded_date, updated_at = now(), "
    "source_updated_at = EXCLUDED.source_updated_at " NEWER, db::Access::kWrite};
const db::Query kUpsertEncounter{
    "ehr_upsert_encounter",
    ROWS("id bigint, patient_id bigint, facility_id bigint, practitioner_id bigint, class_code "
         "text, type_display text, status text, period_start timestamptz, period_end "
         "timestamptz")
    "INSERT INTO encounter AS t (id, patient_id, facility_id, practitioner_id, class_code, "
    "type_display, status, period_start, period_end, updated_at, source_updated_at) SELECT "
    "x.id, x.patient_id, x.facility_id, x.practitioner_id, x.class_code, x.type_display, "
    "x.status, x.period_start, x.period_end, now(), x.lu FROM x " KNOWN_PATIENT
    "AND EXISTS (SELECT 1 FROM facility f WHERE f.id = x.facility_id) AND EXISTS (SELECT 1 FROM "
    "practitioner pr WHERE pr.id = x.practitioner_id) "
    "ON CONFLICT (id) DO UPDATE SET patient_id = EXCLUDED.patient_id, facility_id = "
    "EXCLUDED.facility_id, practitioner_id = EXCLUDED.practitioner_id, class_code = "
    "EXCLUDED.class_code, type_display = EXCLUDED.type_display, status = EXCLUDED.status, "
    "period_start = EXCLUDED.period_start, period_end = EXCLUDED.period_end, updated_at = now(), "
    "source_updated_at = EXCLUDED.source_updated_at " NEWER, db::Access::kWrite};

const db::Query& UpsertFor(std::string_view type) {
  if (type == "Patient") return kUpsertPatient;
  if (type == "Condition") return kUpsertCondition;
  if (type == "MedicationStatement") return kUpsertMedication;
  if (type == "AllergyIntolerance") return kUpsertAllergy;
  return kUpsertEncounter;
}

// Bookkeeping (operational). The lock fails the page's transaction at once when
// another node is applying a page.
const db::Query kLock{"ehr_sync_lock", "SELECT ehr_sync_lock()", db::Access::kWrite,
                      db::DataClass::kOperational};
const db::Query kAdvance{
    "ehr_sync_advance",
    "INSERT INTO ehr_sync_state AS s (resource_type, high_water, last_attempt_at, "
    "resources_applied) VALUES ($2, $1::timestamptz, now(), $3) ON CONFLICT (resource_type) DO "
    "UPDATE SET high_water = GREATEST(s.high_water, EXCLUDED.high_water), last_attempt_at = now(), "
    "resources_applied = s.resources_applied + EXCLUDED.resources_applied",
    db::Access::kWrite, db::DataClass::kOperational};
#define TS_MS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
const db::Query kHighWater{"ehr_sync_high_water",
                           "SELECT " TS_MS("high_water") " FROM ehr_sync_state WHERE "
                                                         "resource_type = $1 AND high_water IS "
                                                         "NOT NULL", db::Access::kRead,
                           db::DataClass::kOperational};
const db::Query kSucceeded{
    "ehr_sync_succeeded",
    "INSERT INTO ehr_sync_state AS s (resource_type, last_success_at, last_attempt_at) VALUES "
    "($1, to_timestamp($2::float8 / 1000), now()) ON CONFLICT (resource_type) DO UPDATE SET "
    "last_success_at = GREATEST(s.last_success_at, EXCLUDED.last_success_at), last_attempt_at = "
    "now(), last_error = NULL",
    db::Access::kWrite, db::DataClass::kOperational};
const db::Query kFailed{"ehr_sync_failed",
                        "INSERT INTO ehr_sync_state AS s (resource_type, last_attempt_at, "
                        "last_error) VALUES ($1, now(), $2) ON CONFLICT (resource_type) DO "
                        "UPDATE SET last_attempt_at = now(), last_error = EXCLUDED.last_error",
                        db::Access::kWrite, db::DataClass::kOperational};
// What every node reports: the cluster's sync state (whichever node ran it).
const db::Query kSummary{
    "ehr_sync_summary",
    "SELECT (extract(epoch FROM min(last_success_at)) * 1000)::bigint, count(*), "
    "(SELECT last_error FROM ehr_sync_state WHERE last_error IS NOT NULL ORDER BY "
    "last_attempt_at DESC LIMIT 1) FROM ehr_sync_state WHERE resource_type = ANY($1::text[]) AND "
    "last_success_at IS NOT NULL",
    db::Access::kRead, db::DataClass::kOperational};

// ---- the process-wide status
std::atomic<bool> g_configured{false};
std::atomic<int64_t> g_interval_ms{5000};
std::atomic<int64_t> g_last_success_ms{0};
std::atomic<int64_t> g_last_attempt_ms{0};
std::mutex g_mu;
std::string g_last_error;  // guarded by g_mu

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// ---- pure parts

Page ParsePage(std::string_view type, std::string_view bundle_json) {
  boost::system::error_code ec;
  json::value v = json::parse(bundle_json, ec);
  if (ec || !v.is_object()) throw std::runtime_error("the EHR answered with malformed JSON");
  const json::object& b = v.as_object();
  if (Str(b, "resourceType") != std::optional<std::string>("Bundle"))
    throw std::runtime_error("the EHR answered with something other than a Bundle");
  Page page;
  json::array rows;
  std::vector<std::string> lus;
  if (auto* entries = Field(b, "entry"); entries && entries->is_array())
    for (const auto& e : entries->as_array()) {
      const json::object* res = e.is_object() ? Obj(e.as_object(), "resource") : nullptr;
      if (!res || Str(*res, "resourceType") != std::optional<std::string>(std::string(type)))
        continue;
      ++page.received;
      std::optional<std::string> lu;
      if (auto* meta = Obj(*res, "meta")) lu = Str(*meta, "lastUpdated");
      if (!lu) {
        ++page.skipped;
        continue;
      }
      // The EHR writes its instants in one format, so they compare as text.
      if (*lu > page.max_last_updated) page.max_last_updated = *lu;
      lus.push_back(*lu);
      auto row = MapResource(type, *res);
      if (!row) {
        ++page.skipped;
        continue;
      }
      (*row)["lu"] = *lu;
      rows.push_back(std::move(*row));
    }
  if (auto* links = Field(b, "link"); links && links->is_array())
    for (const auto& l : links->as_array())
      if (l.is_object() && Str(l.as_object(), "relation") == std::optional<std::string>("next"))
        if (auto url = Str(l.as_object(), "url")) page.next = PathOf(*url);
  page.rows = json::serialize(rows);
  // The next page may hold more resources stamped with this page's newest instant
  // (the cursor orders ties by id): until the last page, the high-water mark stays
  // below that instant, so that a restart after this page asks for them again.
  page.high_water = page.max_last_updated;
  if (page.next) {
    page.high_water.clear();
    for (const auto& lu : lus)
      if (lu < page.max_last_updated && lu > page.high_water) page.high_water = lu;
  }
  return page;
}

std::string PathOf(std::string_view url) {
  auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  auto slash = url.find('/', scheme + 3);
  if (slash == std::string_view::npos) return "/";
  return std::string(url.substr(slash));
}

std::string SearchPath(std::string_view type, std::string_view high_water, int count) {
  return "/fhir/R4/" + std::string(type) + "?_lastUpdated=gt" + std::string(high_water) +
         "&_count=" + std::to_string(count);
}

std::string FormatInstant(int64_t epoch_ms) {
  std::time_t secs = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(epoch_ms % 1000));
  return buf;
}

// ---- status

Status CurrentStatus() {
  Status s;
  s.last_success_ms = g_last_success_ms.load();
  s.last_attempt_ms = g_last_attempt_ms.load();
  std::lock_guard lock(g_mu);
  s.last_error = g_last_error;
  return s;
}

bool Configured() { return g_configured.load(); }

void Annotate(Services& svc, http::Response& resp) {
  if (!g_configured.load()) return;
  int64_t last = g_last_success_ms.load();
  resp.set_header("X-Continuum-Data-As-Of", last > 0 ? FormatInstant(last) : "never");
  if (NowMs() - last <= 2 * g_interval_ms.load()) return;
  deps::Dependency* dep = svc.deps ? svc.deps->Find("ehr") : nullptr;
  if (dep && dep->breaker().state() != resilience::CircuitBreaker::State::kClosed)
    resp.set_header("X-Continuum-Degraded", "stale");
}

json::object ReadinessJson() {
  Status s = CurrentStatus();
  json::object o;
  o["last_success"] =
      s.last_success_ms > 0 ? json::value(FormatInstant(s.last_success_ms)) : json::value(nullptr);
  o["last_error"] = s.last_error.empty() ? json::value(nullptr) : json::value(s.last_error);
  o["lag_s"] = s.last_success_ms > 0 ? json::value((NowMs() - s.last_success_ms) / 1000.0)
                                     : json::value(nullptr);
  return o;
}

// ---- the loop
namespace {

struct TypeOutcome {
  int64_t applied = 0;
  int pages = 0;
};

// The audit records of one page's upsert: one per patient whose data it changes
// (actor "system:ehr-sync"). They sit in ctx.audit, so WriteBatch makes their "attempt"
// copy durable before the page is written (portal/context.hpp); the outcome follows.
void AuditPage(RequestContext& ctx, const std::string& type, const std::string& rows,
               const std::string& request_id) {
  ctx.audit.clear();
  ctx.attempt_journaled = false;
  std::set<std::string> patients;
  boost::system::error_code ec;
  auto v = json::parse(rows, ec);
  if (ec || !v.is_array()) return;
  for (const auto& row : v.as_array()) {
    const auto* o = row.if_object();
    const json::value* p = o ? o->if_contains(type == "Patient" ? "id" : "patient_id") : nullptr;
    if (p && p->is_int64()) patients.insert(std::to_string(p->as_int64()));
    if (p && p->is_string()) patients.insert(std::string(p->as_string()));
  }
  for (const auto& pid : patients) {
    auto& rec = ctx.Audit("update", type, type == "Patient" ? pid : "", pid);
    rec.request_id = request_id;
    rec.actor = "system:ehr-sync";
    rec.role = "system";
    rec.purpose_of_use = "HOPERAT";
  }
}

asio::awaitable<void> AuditPageOutcome(RequestContext& ctx) {
  if (ctx.audit.empty() || !ctx.svc.journal) co_return;
  ctx.AuditOutcome("success");
  std::vector<audit::Record> recs(ctx.audit.begin(), ctx.audit.end());
  ctx.audit.clear();
  ctx.attempt_journaled = false;
  co_await ctx.svc.journal->Append(ctx.shard.executor, std::move(recs), ctx.AuditDeadline());
}

// Synchronises one resource type up to now. Throws on failure (the EHR is down, the
// database is, another node holds the lock).
asio::awaitable<TypeOutcome> SyncType(RequestContext& ctx, deps::Dependency& ehr,
                                      const std::string& type, int64_t round_ms) {
  TypeOutcome out;
  auto hw = co_await ctx.Write(kHighWater, db::P(type));
  std::string high_water = hw.rows() > 0 ? hw.str(0, 0) : std::string("1900-01-01T00:00:00Z");
  std::optional<std::string> path = SearchPath(type, high_water, kPageSize);
  std::vector<std::pair<std::string, std::string>> headers;
  headers.emplace_back("Accept", "application/fhir+json");
  while (path && out.pages < kMaxPagesPerRound) {
    ctx.deadline = Deadline::After(std::chrono::seconds(30));
    std::string p = *path;
    auto r = co_await ehr.Call("GET", p, "", headers, /*idempotent=*/true);
    if (r.status != 200)
      throw std::runtime_error("EHR " + type + " search answered HTTP " + std::to_string(r.status));
    Page page = ParsePage(type, r.body);
    ++out.pages;
    if (page.received > 0) {
      std::vector<db::Statement> batch;
      batch.push_back(db::Statement{&kLock, db::Params{}});
      batch.push_back(db::Statement{&UpsertFor(type), db::P(page.rows)});
      db::Param hw_param = std::nullopt;
      if (!page.high_water.empty()) hw_param = page.high_water;
      batch.push_back(db::Statement{&kAdvance, db::P(hw_param, type, 0)});
      AuditPage(ctx, type, page.rows,
                "ehr-sync-" + ctx.svc.config.node_id + "-" + type + "-" + std::to_string(round_ms) +
                    "-" + std::to_string(out.pages));
      auto rs = co_await ctx.WriteBatch(std::move(batch), /*idempotent=*/true);
      co_await AuditPageOutcome(ctx);
      int64_t applied = rs[1].affected();
      out.applied += applied;
      if (page.skipped > 0)
        log::Warn("ehr sync: {} of {} {} resources could not be stored", page.skipped,
                  page.received, type);
      if (applied > 0) {
        // Counted separately so that the page's own batch stays replay-safe.
        db::Param none = std::nullopt;
        co_await ctx.Write(kAdvance, db::P(none, type, applied));
      }
    }
    path = page.next;
  }
  co_await ctx.Write(kSucceeded, db::P(type, round_ms));
  co_return out;
}

asio::awaitable<void> RefreshStatus(RequestContext& ctx) {
  std::string types = "{Patient,Condition,MedicationStatement,AllergyIntolerance,Encounter}";
  auto r = co_await ctx.Read(kSummary, db::P(types));
  if (r.rows() == 1 && !r.null(0, 0) && r.get_int(0, 1) == static_cast<int64_t>(kTypes.size()))
    g_last_success_ms.store(std::max(g_last_success_ms.load(), r.get_int(0, 0)));
}

}  // namespace

asio::awaitable<void> SyncLoop(Shard& shard, Services& svc, const std::atomic<bool>& stop) {
  deps::Dependency* ehr = svc.deps ? svc.deps->Find("ehr") : nullptr;
  if (!ehr) co_return;
  g_configured.store(true);
  g_interval_ms.store(svc.config.ehr_sync_interval_ms);
  asio::steady_timer timer(shard.executor);
  std::string last_logged;
  while (!stop.load()) {
    http::Request req;
    auto ctx = RequestContext::Background(req, svc, shard, Tier::kMedium, "ehr.sync",
                                          std::chrono::seconds(30));
    const int64_t round_ms = NowMs();
    g_last_attempt_ms.store(round_ms);
    std::string error;
    int64_t applied = 0;
    std::string failed_type, failure;
    for (const char* t : kTypes) {
      if (stop.load()) break;
      std::string type = t;
      try {
        auto o = co_await SyncType(ctx, *ehr, type, round_ms);
        applied += o.applied;
      } catch (const db::LockNotAvailable&) {
        break;  // another node is synchronising: not an error
      } catch (const std::exception& e) {
        failed_type = type;
        failure = std::string(e.what()).substr(0, 500);
        break;
      }
    }
    if (!failed_type.empty()) {
      // (No co_await inside a handler: recorded here.)
      error = failed_type + ": " + failure;
      try {
        ctx.deadline = Deadline::After(std::chrono::seconds(5));
        co_await ctx.Write(kFailed, db::P(failed_type, failure));
      } catch (const std::exception&) {
      }
    }
    try {
      ctx.deadline = Deadline::After(std::chrono::seconds(5));
      co_await RefreshStatus(ctx);
    } catch (const std::exception& e) {
      if (error.empty()) error = std::string("database: ") + e.what();
    }
    {
      std::lock_guard lock(g_mu);
      g_last_error = error;
    }
    if (error != last_logged) {
      if (error.empty())
        log::Info("ehr sync: working again");
      else
        log::Warn("ehr sync: {}", error);
      last_logged = error;
    }
    if (applied > 0) log::Info("ehr sync: {} records updated from the EHR", applied);
    timer.expires_after(std::chrono::milliseconds(svc.config.ehr_sync_interval_ms));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace continuum::portal::ehr
