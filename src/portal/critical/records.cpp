#include "portal/critical/records.hpp"

#include "core/error.hpp"
#include "fhir/fhir.hpp"
#include "portal/access.hpp"
#include "portal/ehr_sync.hpp"
#include "portal/search.hpp"

namespace continuum::portal::critical {
namespace asio = boost::asio;
namespace json = boost::json;

#define CONTINUUM_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

namespace {

constexpr const char* kSnomed = "http://snomed.info/sct";
constexpr const char* kRxNorm = "http://www.nlm.nih.gov/research/umls/rxnorm";
// Synthetic (monitoring) patients: meta.tag, and a second identifier
// urn:continuum:synthetic|<vantage> kept in the mrn as "SYNTHETIC-<vantage>"
// (continuum synthetic-accounts).
constexpr const char* kSyntheticTagSystem = "urn:continuum:tag";
constexpr const char* kSyntheticIdentifierSystem = "urn:continuum:synthetic";
constexpr std::string_view kSyntheticMrnPrefix = "SYNTHETIC-";

// ---- Patient
#define PATIENT_COLS                                                                      \
  "p.id, p.mrn, p.family, p.given, p.gender, p.birth_date, p.phone, p.email, "            \
  "p.address_line, p.city, p.state, p.postal_code, p.facility_id, f.name, " CONTINUUM_TS( \
      "p.updated_at") ", p.synthetic"

const db::Query kPatientById{"patient_by_id",
                             "SELECT " PATIENT_COLS
                             " FROM patient p JOIN facility f ON f.id = "
                             "p.facility_id WHERE p.id = $1",
                             db::Access::kRead};
// $summary's: the bundle's timestamp comes with it (column 16).
const db::Query kSummaryPatient{"summary_patient",
                                "SELECT " PATIENT_COLS ", " CONTINUUM_TS(
                                    "now()") " FROM patient p JOIN facility f ON f.id = "
                                             "p.facility_id WHERE p.id = $1",
                                db::Access::kRead};

void WritePatient(fhir::JsonWriter& w, const db::Result& r, int i) {
  const bool synthetic = r.get(i, 15) == "t";
  w.BeginObject().Member("resourceType", "Patient").Member("id", r.get(i, 0));
  w.Key("meta").BeginObject().Member("lastUpdated", r.get(i, 14));
  // The prober's patients (continuum synthetic-accounts) say so, for every consumer.
  if (synthetic)
    w.Key("tag")
        .BeginArray()
        .BeginObject()
        .Member("system", kSyntheticTagSystem)
        .Member("code", "synthetic")
        .Member("display", "Synthetic monitoring record")
        .EndObject()
        .EndArray();
  w.EndObject();
  w.Key("identifier").BeginArray().BeginObject().Member("use", "usual").Key("type");
  fhir::WriteConcept(w, "http://terminology.hl7.org/CodeSystem/v2-0203", "MR",
                     "Medical record number");
  w.Member("system", "urn:continuum:mrn").Member("value", r.get(i, 1)).EndObject();
  std::string_view mrn = r.get(i, 1);
  if (synthetic && mrn.starts_with(kSyntheticMrnPrefix))
    w.BeginObject()
        .Member("system", kSyntheticIdentifierSystem)
        .Member("value", mrn.substr(kSyntheticMrnPrefix.size()))
        .EndObject();
  w.EndArray();
  w.Key("active").Bool(true);
  w.Key("name").BeginArray().BeginObject().Member("use", "official").Member("family", r.get(i, 2));
  w.Key("given").BeginArray().String(r.get(i, 3)).EndArray().EndObject().EndArray();
  if (!r.null(i, 6) || !r.null(i, 7)) {
    w.Key("telecom").BeginArray();
    if (!r.null(i, 6))
      w.BeginObject()
          .Member("system", "phone")
          .Member("value", r.get(i, 6))
          .Member("use", "home")
          .EndObject();
    if (!r.null(i, 7))
      w.BeginObject().Member("system", "email").Member("value", r.get(i, 7)).EndObject();
    w.EndArray();
  }
  w.Member("gender", r.get(i, 4)).Member("birthDate", r.get(i, 5));
  if (!r.null(i, 8)) {
    w.Key("address").BeginArray().BeginObject().Member("use", "home");
    w.Key("line").BeginArray().String(r.get(i, 8)).EndArray();
    if (!r.null(i, 9)) w.Member("city", r.get(i, 9));
    if (!r.null(i, 10)) w.Member("state", r.get(i, 10));
    if (!r.null(i, 11)) w.Member("postalCode", r.get(i, 11));
    w.Member("country", "US").EndObject().EndArray();
  }
  w.Key("managingOrganization");
  fhir::WriteReference(w, "Organization", r.get(i, 12), r.get(i, 13));
  w.EndObject();
}

// ---- AllergyIntolerance
// A search reads a page (and one row more, to know whether more follow); its count query
// runs only when the page does not tell the total (portal/search.hpp). $summary lists them
// all and needs no count.
#define ALLERGY_COLS                                                                  \
  "id, patient_id, code, display, category, criticality, clinical_status, reaction, " \
  "recorded_date, " CONTINUUM_TS("updated_at")
const db::Query kAllergies{"allergies_by_patient",
                           "SELECT " ALLERGY_COLS
                           " FROM allergy WHERE patient_id = $1 ORDER BY id LIMIT $2 OFFSET $3",
                           db::Access::kRead};
const db::Query kCountAllergies{
    "allergies_count", "SELECT count(*) FROM allergy WHERE patient_id = $1", db::Access::kRead};
const db::Query kSummaryAllergies{"summary_allergies",
                                  "SELECT " ALLERGY_COLS
                                  " FROM allergy WHERE patient_id = $1 ORDER BY id LIMIT $2",
                                  db::Access::kRead};

void WriteAllergy(fhir::JsonWriter& w, const db::Result& r, int i) {
  w.BeginObject().Member("resourceType", "AllergyIntolerance").Member("id", r.get(i, 0));
  w.Key("meta");
  fhir::WriteMeta(w, r.get(i, 9));
  const std::string_view status = r.get(i, 6);
  w.Key("clinicalStatus");
  fhir::WriteConcept(w, "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", status,
                     status == "active"     ? "Active"
                     : status == "inactive" ? "Inactive"
                                            : "Resolved");
  w.Key("verificationStatus");
  fhir::WriteConcept(w, "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                     "confirmed", "Confirmed");
  w.Member("type", "allergy");
  w.Key("category").BeginArray().String(r.get(i, 4)).EndArray();
  w.Member("criticality", r.get(i, 5));
  w.Key("code");
  fhir::WriteConcept(w, kSnomed, r.get(i, 2), r.get(i, 3));
  w.Key("patient");
  fhir::WriteReference(w, "Patient", r.get(i, 1));
  w.Member("recordedDate", r.get(i, 8));
  if (!r.null(i, 7))
    w.Key("reaction")
        .BeginArray()
        .BeginObject()
        .Key("manifestation")
        .BeginArray()
        .BeginObject()
        .Member("text", r.get(i, 7))
        .EndObject()
        .EndArray()
        .EndObject()
        .EndArray();
  w.EndObject();
}

// ---- MedicationStatement
#define MEDICATION_COLS                                                                   \
  "id, patient_id, rxnorm_code, display, dosage, status, effective_start, " CONTINUUM_TS( \
      "updated_at")
const db::Query kMedications{
    "medications_by_patient",
    "SELECT " MEDICATION_COLS
    " FROM medication WHERE patient_id = $1 ORDER BY id LIMIT $2 OFFSET $3",
    db::Access::kRead};
const db::Query kCountMedications{"medications_count",
                                  "SELECT count(*) FROM medication WHERE patient_id = $1",
                                  db::Access::kRead};
const db::Query kSummaryMedications{"summary_medications",
                                    "SELECT " MEDICATION_COLS
                                    " FROM medication WHERE patient_id = $1 ORDER BY id LIMIT $2",
                                    db::Access::kRead};

void WriteMedication(fhir::JsonWriter& w, const db::Result& r, int i) {
  w.BeginObject().Member("resourceType", "MedicationStatement").Member("id", r.get(i, 0));
  w.Key("meta");
  fhir::WriteMeta(w, r.get(i, 7));
  w.Member("status", r.get(i, 5)).Key("medicationCodeableConcept");
  fhir::WriteConcept(w, kRxNorm, r.get(i, 2), r.get(i, 3));
  w.Key("subject");
  fhir::WriteReference(w, "Patient", r.get(i, 1));
  w.Key("effectivePeriod").BeginObject().Member("start", r.get(i, 6)).EndObject();
  w.Key("dosage").BeginArray().BeginObject().Member("text", r.get(i, 4)).EndObject().EndArray();
  w.EndObject();
}

// ---- Condition
#define CONDITION_COLS \
  "id, patient_id, snomed_code, display, clinical_status, onset_date, " CONTINUUM_TS("updated_at")
const db::Query kConditions{"conditions_by_patient",
                            "SELECT " CONDITION_COLS
                            " FROM condition WHERE patient_id = $1 ORDER BY id LIMIT $2 OFFSET $3",
                            db::Access::kRead};
const db::Query kCountConditions{
    "conditions_count", "SELECT count(*) FROM condition WHERE patient_id = $1", db::Access::kRead};
const db::Query kSummaryConditions{"summary_conditions",
                                   "SELECT " CONDITION_COLS
                                   " FROM condition WHERE patient_id = $1 ORDER BY id LIMIT $2",
                                   db::Access::kRead};

void WriteCondition(fhir::JsonWriter& w, const db::Result& r, int i) {
  w.BeginObject().Member("resourceType", "Condition").Member("id", r.get(i, 0));
  w.Key("meta");
  fhir::WriteMeta(w, r.get(i, 6));
  std::string_view st = r.get(i, 4);
  std::string disp(st);
  if (!disp.empty()) disp[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(disp[0])));
  w.Key("clinicalStatus");
  fhir::WriteConcept(w, "http://terminology.hl7.org/CodeSystem/condition-clinical", st, disp);
  w.Key("verificationStatus");
  fhir::WriteConcept(w, "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed",
                     "Confirmed");
  w.Key("category").BeginArray();
  fhir::WriteConcept(w, "http://terminology.hl7.org/CodeSystem/condition-category",
                     "problem-list-item", "Problem List Item");
  w.EndArray().Key("code");
  fhir::WriteConcept(w, kSnomed, r.get(i, 2), r.get(i, 3));
  w.Key("subject");
  fhir::WriteReference(w, "Patient", r.get(i, 1));
  w.Member("onsetDateTime", r.get(i, 5));
  w.EndObject();
}

// ---- Encounter
const db::Query kEncounters{
    "encounters_by_patient",
    "SELECT e.id, e.patient_id, e.facility_id, e.practitioner_id, e.class_code, e.type_display, "
    "e.status, " CONTINUUM_TS("e.period_start") ", " CONTINUUM_TS("e.period_end") ", " CONTINUUM_TS(
        "e.updated_at") ", f.name FROM encounter e JOIN facility f ON f.id = e.facility_id "
                        "WHERE e.patient_id = $1 ORDER BY e.period_start DESC, e.id "
                        "LIMIT $2 OFFSET $3", db::Access::kRead};
const db::Query kCountEncounters{
    "encounters_count",
    "SELECT count(*) FROM encounter e JOIN facility f ON f.id = e.facility_id "
    "WHERE e.patient_id = $1",
    db::Access::kRead};

std::string_view ClassDisplay(std::string_view code) {
  if (code == "AMB") return "ambulatory";
  if (code == "EMER") return "emergency";
  if (code == "IMP") return "inpatient encounter";
  if (code == "VR") return "virtual";
  return "home health";
}

void WriteEncounter(fhir::JsonWriter& w, const db::Result& r, int i) {
  w.BeginObject().Member("resourceType", "Encounter").Member("id", r.get(i, 0));
  w.Key("meta");
  fhir::WriteMeta(w, r.get(i, 9));
  w.Member("status", r.get(i, 6)).Key("class");
  fhir::WriteCoding(w, "http://terminology.hl7.org/CodeSystem/v3-ActCode", r.get(i, 4),
                    ClassDisplay(r.get(i, 4)));
  w.Key("type").BeginArray().BeginObject().Member("text", r.get(i, 5)).EndObject().EndArray();
  w.Key("subject");
  fhir::WriteReference(w, "Patient", r.get(i, 1));
  w.Key("participant").BeginArray().BeginObject().Key("individual");
  fhir::WriteReference(w, "Practitioner", r.get(i, 3));
  w.EndObject().EndArray();
  w.Key("period").BeginObject().Member("start", r.get(i, 7));
  if (!r.null(i, 8)) w.Member("end", r.get(i, 8));
  w.EndObject().Key("serviceProvider");
  fhir::WriteReference(w, "Organization", r.get(i, 2), r.get(i, 10));
  w.EndObject();
}

// ---- Patient lookup
// A provider searches their own panel; with a break-the-glass reason, everyone.
// Name matching is a case-insensitive prefix of the family or given name, written as
// a range so that the text_pattern_ops indexes serve it under a generic plan too.
#define PATIENT_FILTERS                                                                \
  " AND ($1::text IS NULL OR (lower(p.family) ~>=~ $1 AND lower(p.family) ~<~ $2) OR " \
  "(lower(p.given) ~>=~ $1 AND lower(p.given) ~<~ $2))"                                \
  " AND ($3::date IS NULL OR p.birth_date = $3)"                                       \
  " AND ($4::text IS NULL OR p.mrn = $4)"
#define PATIENT_ORDER " ORDER BY p.family, p.given, p.id LIMIT $5 OFFSET $6"

const db::Query kPatientSearchPanel{
    "patient_search_panel",
    "SELECT " PATIENT_COLS
    " FROM care_relationship cr JOIN patient p ON p.id = cr.patient_id "
    "JOIN facility f ON f.id = p.facility_id WHERE cr.practitioner_id = $7 AND (NOT p.synthetic OR "
    "EXISTS (SELECT 1 FROM practitioner pr WHERE pr.id = $7 AND pr.synthetic))" PATIENT_FILTERS
        PATIENT_ORDER,
    db::Access::kRead};
const db::Query kPatientSearchSelf{
    "patient_search_self",
    "SELECT " PATIENT_COLS
    " FROM patient p JOIN facility f ON f.id = p.facility_id WHERE p.id = "
    "$7" PATIENT_FILTERS PATIENT_ORDER,
    db::Access::kRead};
const db::Query kPatientSearchByMrn{"patient_search_all_by_mrn",
                                    "SELECT " PATIENT_COLS
                                    " FROM patient p JOIN facility f ON f.id = p.facility_id WHERE "
                                    "p.mrn = $4" PATIENT_FILTERS
                                    " AND $7::bigint IS NOT NULL AND NOT p.synthetic" PATIENT_ORDER,
                                    db::Access::kRead};
const db::Query kPatientSearchByName{
    "patient_search_all_by_name",
    "SELECT " PATIENT_COLS
    " FROM patient p JOIN facility f ON f.id = p.facility_id WHERE "
    "((lower(p.family) ~>=~ $1 AND lower(p.family) ~<~ $2) OR (lower(p.given) ~>=~ $1 AND "
    "lower(p.given) ~<~ $2))" PATIENT_FILTERS
    " AND $7::bigint IS NOT NULL AND NOT p.synthetic" PATIENT_ORDER,
    db::Access::kRead};
const db::Query kPatientSearchByBirth{
    "patient_search_all_by_birthdate",
    "SELECT " PATIENT_COLS
    " FROM patient p JOIN facility f ON f.id = p.facility_id "
    "WHERE p.birth_date = $3" PATIENT_FILTERS
    " AND $7::bigint IS NOT NULL AND NOT p.synthetic" PATIENT_ORDER,
    db::Access::kRead};

bool ValidDate(std::string_view d) {
  if (d.size() != 10 || d[4] != '-' || d[7] != '-') return false;
  for (int i : {0, 1, 2, 3, 5, 6, 8, 9})
    if (!std::isdigit(static_cast<unsigned char>(d[i]))) return false;
  int m = std::stoi(std::string(d.substr(5, 2))), day = std::stoi(std::string(d.substr(8, 2)));
  return m >= 1 && m <= 12 && day >= 1 && day <= 31;
}

}  // namespace

asio::awaitable<http::Response> ReadPatient(RequestContext& ctx) {
  const std::string& raw = ctx.req.path_params[0];
  auto& rec = ctx.Audit("read", "Patient", raw.substr(0, 64), raw.substr(0, 64));
  Authenticate(ctx);
  std::string pid = std::to_string(ParseId(raw, "Patient"));
  rec.resource_id = rec.patient_id = pid;
  // A patient learns nothing about other ids (403 before any lookup); staff get a 404
  // for an id that does not exist rather than a misleading "no relationship".
  // A provider's care relationship is checked in the same round trip as the read.
  if (ctx.claims->role == "patient") co_await AuthorizePatient(ctx, pid);
  const bool check =
      ctx.claims->role == "provider" && !(ctx.authorized_patient && *ctx.authorized_patient == pid);
  std::vector<db::Statement> batch;
  batch.push_back({&kPatientById, db::P(pid)});
  if (check) batch.push_back(CareCheckStatement(ctx, pid));
  auto rs = co_await ctx.ReadBatch(std::move(batch));
  if (rs[0].rows() == 0) {
    rec.outcome = "failure";
    rec.detail = "not found";
    throw NotFound("Patient/" + pid + " does not exist.");
  }
  if (check) AcceptCareCheck(ctx, pid, rs[1]);
  if (!ctx.authorized_patient || *ctx.authorized_patient != pid) {
    // No care relationship (or another role): break the glass or 403; the patient is read
    // again only after the reason is stored.
    co_await AuthorizePatient(ctx, pid);
    rs[0] = co_await ctx.Read(kPatientById, db::P(pid));
    if (rs[0].rows() == 0) throw NotFound("Patient/" + pid + " does not exist.");
  }
  rec.outcome = "success";
  std::string body;
  fhir::JsonWriter w(body);
  WritePatient(w, rs[0], 0);
  co_return fhir::Json(200, std::move(body));
}

asio::awaitable<http::Response> SearchPatients(RequestContext& ctx) {
  ctx.Audit("search", "Patient");
  Authenticate(ctx);
  fhir::CheckParams(ctx.req, {"name", "birthdate", "identifier"});
  auto paging = fhir::ParsePaging(ctx.req);
  auto name = ctx.req.param("name");
  auto birth = ctx.req.param("birthdate");
  auto ident = ctx.req.param("identifier");
  if (!name && !birth && !ident) {
    ctx.AuditOutcome("failure", "no search criteria");
    throw BadRequest("Patient search needs at least one of name, birthdate or identifier.");
  }
  db::Param p1 = std::nullopt, p2 = std::nullopt, p3 = std::nullopt, p4 = std::nullopt;
  std::vector<std::pair<std::string, std::string>> echo;
  if (name) {
    std::string n;
    for (char c : *name) n += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (n.empty() || n.size() > 64) throw BadRequest("name must be 1 to 64 characters long.");
    // Any name with this prefix sorts below prefix + U+10FFFF (valid UTF-8, unlike
    // bumping the last byte).
    std::string upper = n + "\xF4\x8F\xBF\xBF";
    p1 = n;
    p2 = std::move(upper);
    echo.emplace_back("name", *name);
  }
  if (birth) {
    if (!ValidDate(*birth)) throw BadRequest("birthdate must be a date like 1980-04-23.");
    p3 = *birth;
    echo.emplace_back("birthdate", *birth);
  }
  if (ident) {
    std::string_view v = *ident;
    bool synthetic_system = false;
    if (auto bar = v.find('|'); bar != std::string_view::npos) {
      synthetic_system = v.substr(0, bar) == kSyntheticIdentifierSystem;
      if (v.substr(0, bar) != "urn:continuum:mrn" && bar != 0 && !synthetic_system)
        throw BadRequest(
            "identifier system must be urn:continuum:mrn or urn:continuum:synthetic (or "
            "omitted).");
      v.remove_prefix(bar + 1);
    }
    if (v.empty() || v.size() > 64) throw BadRequest("identifier must be 1 to 64 characters long.");
    p4 = synthetic_system ? std::string(kSyntheticMrnPrefix) + std::string(v) : std::string(v);
    echo.emplace_back("identifier", *ident);
  }
  const auto& c = *ctx.claims;
  const db::Query* q = nullptr;
  std::string scope;
  if (c.role == "patient") {
    q = &kPatientSearchSelf;
    scope = c.patient_id;
  } else if (c.role == "provider") {
    std::string reason = BreakGlassReason(ctx);
    if (reason.empty()) {
      q = &kPatientSearchPanel;
      scope = c.practitioner_id;
    } else {
      co_await RefuseSyntheticBreakGlass(ctx);
      if (reason.size() > 500)
        throw BadRequest("The break-the-glass reason must be at most 500 characters.");
      q = ident ? &kPatientSearchByMrn : name ? &kPatientSearchByName : &kPatientSearchByBirth;
      scope = "0";
      for (auto& rec : ctx.audit) {
        rec.purpose_of_use = "ETREAT";
        rec.detail = "break-the-glass: " + reason;
      }
    }
  } else {
    ctx.AuditOutcome("denied", "role has no access to clinical data");
    throw Forbidden("Your role does not give access to clinical records.");
  }
  auto r = co_await ctx.Read(*q, db::P(p1, p2, p3, p4, paging.count + 1, paging.offset, scope));
  int n = std::min(r.rows(), paging.count);
  // One record per patient whose demographics are disclosed.
  auto tmpl = ctx.audit.front();
  ctx.audit.front().outcome = "success";
  ctx.audit.front().detail =
      (tmpl.detail.empty() ? "" : tmpl.detail + "; ") + std::to_string(n) + " results";
  for (int i = 0; i < n; ++i) {
    auto rec = tmpl;
    rec.resource_id = rec.patient_id = std::string(r.get(i, 0));
    rec.outcome = "success";
    ctx.audit.push_back(std::move(rec));
  }
  std::string base = ctx.BaseUrl();
  std::optional<std::string> next;
  if (r.rows() > paging.count)
    next = fhir::SearchUrl(base, "Patient", echo, {paging.count, paging.offset + paging.count});
  std::string body;
  fhir::JsonWriter w(body);
  fhir::BeginSearchBundle(w, fhir::SearchUrl(base, "Patient", echo, paging), next);
  for (int i = 0; i < n; ++i) {
    fhir::BeginSearchEntry(w, base, "Patient", r.get(i, 0));
    WritePatient(w, r, i);
    fhir::EndSearchEntry(w);
  }
  fhir::EndSearchBundle(w);
  co_return fhir::Json(200, std::move(body));
}

asio::awaitable<http::Response> PatientSummary(RequestContext& ctx) {
  const std::string& raw = ctx.req.path_params[0];
  auto& rec = ctx.Audit("read", "Patient", raw.substr(0, 64), raw.substr(0, 64));
  rec.detail = "$summary";
  Authenticate(ctx);
  std::string pid = std::to_string(ParseId(raw, "Patient"));
  rec.resource_id = rec.patient_id = pid;
  co_await DeferAuthorizePatient(ctx, pid);  // checked in the summary's round trip
  constexpr int kMax = 1000;
  std::vector<db::Statement> batch;
  batch.push_back({&kSummaryPatient, {pid}});
  batch.push_back({&kSummaryAllergies, {pid, kMax}});
  batch.push_back({&kSummaryMedications, {pid, kMax}});
  batch.push_back({&kSummaryConditions, {pid, kMax}});
  auto rs = co_await ctx.ReadBatch(std::move(batch));
  if (rs[0].rows() == 0) {
    rec.outcome = "failure";
    rec.detail = "not found";
    throw NotFound("Patient/" + pid + " does not exist.");
  }
  const std::string base = ctx.BaseUrl();
  std::string body;
  body.reserve(2048 + 1024 * (rs[1].rows() + rs[2].rows() + rs[3].rows()));
  fhir::JsonWriter w(body);
  w.BeginObject().Member("resourceType", "Bundle").Member("type", "collection");
  // A synthetic patient's summary is tagged as a whole too (the Patient entry is).
  if (rs[0].get(0, 15) == "t")
    w.Key("meta")
        .BeginObject()
        .Key("tag")
        .BeginArray()
        .BeginObject()
        .Member("system", kSyntheticTagSystem)
        .Member("code", "synthetic")
        .EndObject()
        .EndArray()
        .EndObject();
  w.Member("timestamp", rs[0].get(0, 16)).Key("entry").BeginArray();
  auto add = [&](std::string_view type, const db::Result& res, int i, RowWriter write) {
    std::string full;
    full.reserve(base.size() + type.size() + 24);
    full.append(base).append(1, '/').append(type).append(1, '/').append(res.get(i, 0));
    w.BeginObject().Member("fullUrl", full).Key("resource");
    write(w, res, i);
    w.EndObject();
  };
  add("Patient", rs[0], 0, WritePatient);
  for (int i = 0; i < rs[1].rows(); ++i) add("AllergyIntolerance", rs[1], i, WriteAllergy);
  for (int i = 0; i < rs[2].rows(); ++i) add("MedicationStatement", rs[2], i, WriteMedication);
  for (int i = 0; i < rs[3].rows(); ++i) add("Condition", rs[3], i, WriteCondition);
  w.EndArray().EndObject();
  rec.outcome = "success";
  auto resp = fhir::Json(200, std::move(body));
  ehr::Annotate(ctx.svc, resp);
  co_return resp;
}

asio::awaitable<http::Response> SearchAllergies(RequestContext& ctx) {
  auto resp =
      co_await PatientSearch(ctx, "AllergyIntolerance", kAllergies, kCountAllergies, WriteAllergy);
  ehr::Annotate(ctx.svc, resp);  // as of the last EHR synchronisation
  co_return resp;
}
asio::awaitable<http::Response> SearchMedications(RequestContext& ctx) {
  auto resp = co_await PatientSearch(ctx, "MedicationStatement", kMedications, kCountMedications,
                                     WriteMedication);
  ehr::Annotate(ctx.svc, resp);  // as of the last EHR synchronisation
  co_return resp;
}
asio::awaitable<http::Response> SearchConditions(RequestContext& ctx) {
  auto resp =
      co_await PatientSearch(ctx, "Condition", kConditions, kCountConditions, WriteCondition);
  ehr::Annotate(ctx.svc, resp);  // as of the last EHR synchronisation
  co_return resp;
}
asio::awaitable<http::Response> SearchEncounters(RequestContext& ctx) {
  auto resp =
      co_await PatientSearch(ctx, "Encounter", kEncounters, kCountEncounters, WriteEncounter);
  ehr::Annotate(ctx.svc, resp);  // as of the last EHR synchronisation
  co_return resp;
}

}  // namespace continuum::portal::critical
