#include "stubdeps/ehr_data.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <stdexcept>

#include "seed/population.hpp"
#include "stubdeps/instant.hpp"

namespace continuum::stubdeps {
namespace json = boost::json;

namespace {

constexpr std::string_view kSnomed = "http://snomed.info/sct";
constexpr std::string_view kRxNorm = "http://www.nlm.nih.gov/research/umls/rxnorm";
constexpr std::array<std::string_view, kEhrTypeCount> kTypeNames = {
    "Patient", "Condition", "MedicationStatement", "AllergyIntolerance", "Encounter"};
constexpr int64_t kSpreadMs = int64_t{90} * 86400 * 1000;
constexpr uint64_t kLastUpdatedStream = 0x5354554244455053ULL;  // "STUBDEPS"
constexpr uint64_t kTrickleStream = 0x545249434b4c45ULL;        // "TRICKLE"

// One row of PostgreSQL COPY text (what seed::Population appends): fields split on
// tabs and unescaped; \N is a NULL (nullopt).
std::vector<std::optional<std::string>> CopyFields(std::string_view line) {
  std::vector<std::optional<std::string>> out;
  std::string cur;
  bool null = false;
  for (std::size_t i = 0; i <= line.size(); ++i) {
    if (i == line.size() || line[i] == '\t') {
      out.push_back(null ? std::nullopt : std::optional<std::string>(std::move(cur)));
      cur.clear();
      null = false;
      continue;
    }
    if (line[i] == '\\' && i + 1 < line.size()) {
      char n = line[++i];
      if (n == 'N' && cur.empty()) {
        null = true;
        continue;
      }
      cur += n == 't' ? '\t' : n == 'n' ? '\n' : n == 'r' ? '\r' : n;
      continue;
    }
    cur += line[i];
  }
  return out;
}

// Calls f(fields) for each line of a COPY text buffer, then clears it.
template <typename F>
void ForEachRow(std::string& buf, F f) {
  std::string_view rest = buf;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    f(CopyFields(rest.substr(0, nl)));
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
  }
  buf.clear();
}

int64_t ToInt(const std::optional<std::string>& s) {
  int64_t v = 0;
  if (s) std::from_chars(s->data(), s->data() + s->size(), v);
  return v;
}

// "2026-10-01 08:15:00+00" (COPY) -> "2026-10-01T08:15:00Z" (FHIR dateTime).
std::string FhirDateTime(const std::string& ts) {
  std::string out = ts;
  if (out.size() > 10 && out[10] == ' ') out[10] = 'T';
  if (out.ends_with("+00")) out.replace(out.size() - 3, 3, "Z");
  return out;
}

json::object Coding(std::string_view system, std::string_view code, std::string_view display) {
  return json::object{{"system", system}, {"code", code}, {"display", display}};
}
json::object Concept(std::string_view system, std::string_view code, std::string_view display) {
  return json::object{{"coding", json::array{Coding(system, code, display)}}, {"text", display}};
}
json::object Ref(std::string_view type, int64_t id) {
  return json::object{{"reference", std::string(type) + "/" + std::to_string(id)}};
}
std::string Capitalized(std::string_view s) {
  std::string out(s);
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}
json::object AllergyStatus(std::string_view status) {
  return Concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", status,
                 Capitalized(status));
}
json::object ConditionStatus(std::string_view status) {
  return Concept("http://terminology.hl7.org/CodeSystem/condition-clinical", status,
                 Capitalized(status));
}
std::string_view ClassDisplay(std::string_view code) {
  if (code == "AMB") return "ambulatory";
  if (code == "EMER") return "emergency";
  if (code == "IMP") return "inpatient encounter";
  if (code == "VR") return "virtual";
  return "home health";
}
std::string StatusOf(const json::object& body, std::string_view key) {
  const json::value* v = body.if_contains(key);
  if (!v) return "";
  if (v->is_string()) return std::string(v->as_string());
  // CodeableConcept: the first coding's code.
  const json::value* coding = v->as_object().if_contains("coding");
  if (!coding || coding->as_array().empty()) return "";
  return std::string(coding->as_array()[0].as_object().at("code").as_string());
}

}  // namespace

std::string_view TypeName(EhrType t) { return kTypeNames[static_cast<std::size_t>(t)]; }

std::optional<EhrType> ParseEhrType(std::string_view name) {
  for (std::size_t i = 0; i < kTypeNames.size(); ++i)
    if (kTypeNames[i] == name) return static_cast<EhrType>(i);
  return std::nullopt;
}

json::object EhrResource::ToFhir() const {
  json::object out;
  out.reserve(body.size() + 3);
  out["resourceType"] = TypeName(type);
  out["id"] = std::to_string(id);
  out["meta"] = json::object{{"versionId", std::to_string(version)},
                             {"lastUpdated", FormatInstant(last_updated_ms)}};
  for (const auto& kv : body) out[kv.key()] = kv.value();
  return out;
}

void EhrStore::Add(EhrResource r) {
  Table& t = tables_[Idx(r.type)];
  t.next_id = std::max(t.next_id, r.id + 1);
  t.by_updated.emplace(r.last_updated_ms, r.id);
  t.ids.push_back(r.id);
  max_last_updated_ms_ = std::max(max_last_updated_ms_, r.last_updated_ms);
  const int64_t id = r.id;
  t.rows.emplace(id, std::move(r));
}

EhrStore::EhrStore(const EhrOptions& o) : patients_(o.patients), trickle_(o.seed ^ kTrickleStream) {
  seed::Population pop(o.patients, std::min(o.facilities, o.patients), o.seed);
  std::string buf;
  std::map<int64_t, std::string> facility_names;
  pop.AppendFacilities(buf);
  ForEachRow(buf, [&](auto f) { facility_names[ToInt(f[0])] = f[1].value_or(""); });

  const int64_t seeded_ms = seed::kSeededAtEpochSeconds * 1000;
  auto stamp = [&](EhrType type, int64_t id) {
    const uint64_t h =
        seed::MixKey({o.seed, kLastUpdatedStream, Idx(type) + 1, static_cast<uint64_t>(id)});
    return seeded_ms - static_cast<int64_t>(h % static_cast<uint64_t>(kSpreadMs));
  };
  auto make = [&](EhrType type, int64_t id, int64_t patient, json::object body) {
    EhrResource r;
    r.type = type;
    r.id = id;
    r.patient_id = patient;
    r.last_updated_ms = stamp(type, id);
    r.body = std::move(body);
    Add(std::move(r));
  };

  int64_t allergy_id = 1, medication_id = 1, condition_id = 1, encounter_id = 1;
  for (int64_t pid = 1; pid <= o.patients; ++pid) {
    const seed::PatientProfile profile = pop.Profile(pid);
    pop.AppendPatient(profile, buf);
    ForEachRow(buf, [&](auto f) {
      // id, mrn, family, given, gender, birth_date, phone, email, address_line, city,
      // state, postal_code, facility_id, updated_at
      json::object p;
      p["identifier"] =
          json::array{json::object{{"use", "usual"},
                                   {"type", Concept("http://terminology.hl7.org/CodeSystem/v2-0203",
                                                    "MR", "Medical record number")},
                                   {"system", "urn:continuum:mrn"},
                                   {"value", *f[1]}}};
      p["active"] = true;
      p["name"] = json::array{
          json::object{{"use", "official"}, {"family", *f[2]}, {"given", json::array{*f[3]}}}};
      json::array telecom;
      if (f[6])
        telecom.push_back(json::object{{"system", "phone"}, {"value", *f[6]}, {"use", "home"}});
      if (f[7]) telecom.push_back(json::object{{"system", "email"}, {"value", *f[7]}});
      if (!telecom.empty()) p["telecom"] = std::move(telecom);
      p["gender"] = *f[4];
      p["birthDate"] = *f[5];
      p["address"] = json::array{json::object{{"use", "home"},
                                              {"line", json::array{f[8].value_or("")}},
                                              {"city", f[9].value_or("")},
                                              {"state", f[10].value_or("")},
                                              {"postalCode", f[11].value_or("")},
                                              {"country", "US"}}};
      json::object org = Ref("Organization", ToInt(f[12]));
      org["display"] = facility_names[ToInt(f[12])];
      p["managingOrganization"] = std::move(org);
      make(EhrType::kPatient, pid, pid, std::move(p));
    });

    pop.AppendAllergies(profile, &allergy_id, buf);
    ForEachRow(buf, [&](auto f) {
      // id, patient_id, code, display, category, criticality, clinical_status, reaction,
      // recorded_date, updated_at
      json::object a;
      a["clinicalStatus"] = AllergyStatus(*f[6]);
      a["verificationStatus"] =
          Concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                  "confirmed", "Confirmed");
      a["type"] = "allergy";
      a["category"] = json::array{*f[4]};
      a["criticality"] = *f[5];
      a["code"] = Concept(kSnomed, *f[2], *f[3]);
      a["patient"] = Ref("Patient", pid);
      a["recordedDate"] = *f[8];
      if (f[7])
        a["reaction"] = json::array{
            json::object{{"manifestation", json::array{json::object{{"text", *f[7]}}}}}};
      make(EhrType::kAllergyIntolerance, ToInt(f[0]), pid, std::move(a));
    });

    pop.AppendMedications(profile, &medication_id, buf);
    ForEachRow(buf, [&](auto f) {
      // id, patient_id, rxnorm_code, display, dosage, status, effective_start, updated_at
      json::object m;
      m["status"] = *f[5];
      m["medicationCodeableConcept"] = Concept(kRxNorm, *f[2], *f[3]);
      m["subject"] = Ref("Patient", pid);
      m["effectivePeriod"] = json::object{{"start", *f[6]}};
      m["dosage"] = json::array{json::object{{"text", *f[4]}}};
      make(EhrType::kMedicationStatement, ToInt(f[0]), pid, std::move(m));
    });

    pop.AppendConditions(profile, &condition_id, buf);
    ForEachRow(buf, [&](auto f) {
      // id, patient_id, snomed_code, display, clinical_status, onset_date, updated_at
      json::object c;
      c["clinicalStatus"] = ConditionStatus(*f[4]);
      c["verificationStatus"] = Concept(
          "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed");
      c["category"] =
          json::array{Concept("http://terminology.hl7.org/CodeSystem/condition-category",
                              "problem-list-item", "Problem List Item")};
      c["code"] = Concept(kSnomed, *f[2], *f[3]);
      c["subject"] = Ref("Patient", pid);
      c["onsetDateTime"] = *f[5];
      make(EhrType::kCondition, ToInt(f[0]), pid, std::move(c));
    });

    pop.AppendEncounters(profile, &encounter_id, buf);
    ForEachRow(buf, [&](auto f) {
      // id, patient_id, facility_id, practitioner_id, class_code, type_display, status,
      // period_start, period_end, updated_at
      json::object e;
      e["status"] = *f[6];
      e["class"] =
          Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", *f[4], ClassDisplay(*f[4]));
      e["type"] = json::array{json::object{{"text", *f[5]}}};
      e["subject"] = Ref("Patient", pid);
      e["participant"] =
          json::array{json::object{{"individual", Ref("Practitioner", ToInt(f[3]))}}};
      json::object period{{"start", FhirDateTime(*f[7])}};
      if (f[8]) period["end"] = FhirDateTime(*f[8]);
      e["period"] = std::move(period);
      json::object org = Ref("Organization", ToInt(f[2]));
      org["display"] = facility_names[ToInt(f[2])];
      e["serviceProvider"] = std::move(org);
      make(EhrType::kEncounter, ToInt(f[0]), pid, std::move(e));
    });
  }
}

const EhrResource* EhrStore::Read(EhrType type, int64_t id) const {
  const Table& t = tables_[Idx(type)];
  auto it = t.rows.find(id);
  return it == t.rows.end() ? nullptr : &it->second;
}

EhrPage EhrStore::Search(EhrType type, const EhrQuery& q) const {
  const Table& t = tables_[Idx(type)];
  EhrPage page;
  if (q.from_ms >= q.to_ms) return page;
  auto matches = [&](const EhrCursor& key) {
    return !q.patient || t.rows.at(key.second).patient_id == *q.patient;
  };
  const auto begin = t.by_updated.lower_bound({q.from_ms, std::numeric_limits<int64_t>::min()});
  const auto end = t.by_updated.lower_bound({q.to_ms, std::numeric_limits<int64_t>::min()});
  for (auto it = begin; it != end; ++it)
    if (matches(*it)) ++page.total;
  if (q.count <= 0) return page;
  auto it = begin;
  if (q.after) {
    if (*q.after >= EhrCursor{q.to_ms, std::numeric_limits<int64_t>::min()})
      it = end;
    else if (*q.after >= EhrCursor{q.from_ms, std::numeric_limits<int64_t>::min()})
      it = t.by_updated.upper_bound(*q.after);
  }
  for (; it != end; ++it) {
    if (!matches(*it)) continue;
    if (static_cast<int>(page.resources.size()) == q.count) {
      page.next = EhrCursor{page.resources.back()->last_updated_ms, page.resources.back()->id};
      break;
    }
    page.resources.push_back(&t.rows.at(it->second));
  }
  return page;
}

EhrResource& EhrStore::Touch(EhrType type, int64_t id, int64_t now_ms) {
  Table& t = tables_[Idx(type)];
  EhrResource& r = t.rows.at(id);
  t.by_updated.erase({r.last_updated_ms, r.id});
  r.last_updated_ms = std::max(now_ms, max_last_updated_ms_ + 1);
  max_last_updated_ms_ = r.last_updated_ms;
  ++r.version;
  t.by_updated.emplace(r.last_updated_ms, r.id);
  return r;
}

const EhrResource& EhrStore::Pick(EhrType type) {
  const Table& t = tables_[Idx(type)];
  return t.rows.at(t.ids[trickle_.Below(t.ids.size())]);
}

EhrChange EhrStore::Tick(int64_t now_ms) {
  const double u = trickle_.Unit();
  // Tables may be empty for tiny populations: fall back to the patient, always present.
  auto available = [&](EhrType t) { return !tables_[Idx(t)].ids.empty(); };
  if (u < 0.35 && available(EhrType::kMedicationStatement)) {
    // A medication is stopped, put on hold, resumed or completed.
    const int64_t id = Pick(EhrType::kMedicationStatement).id;
    EhrResource& r = Touch(EhrType::kMedicationStatement, id, now_ms);
    const std::string cur = StatusOf(r.body, "status");
    static constexpr std::array<std::string_view, 4> kNext = {"active", "stopped", "on-hold",
                                                              "completed"};
    std::string_view next = kNext[trickle_.Below(kNext.size())];
    if (next == cur) next = cur == "active" ? "stopped" : "active";
    r.body["status"] = next;
    return {r.type, r.id, false};
  }
  if (u < 0.55 && available(EhrType::kEncounter)) {
    // A visit just finished: a new Encounter like one the patient had before.
    const EhrResource& like = Pick(EhrType::kEncounter);
    EhrResource r;
    r.type = EhrType::kEncounter;
    r.id = tables_[Idx(EhrType::kEncounter)].next_id;
    r.patient_id = like.patient_id;
    r.last_updated_ms = std::max(now_ms, max_last_updated_ms_ + 1);
    r.body = like.body;
    r.body["status"] = "finished";
    r.body["class"] =
        Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", "ambulatory");
    r.body["type"] = json::array{json::object{{"text", "Office visit"}}};
    const int64_t start = r.last_updated_ms - 20 * 60 * 1000;
    r.body["period"] = json::object{{"start", FormatInstant(start - start % 1000)},
                                    {"end", FormatInstant(r.last_updated_ms)}};
    EhrChange change{r.type, r.id, true};
    Add(std::move(r));
    return change;
  }
  if (u < 0.70 && available(EhrType::kCondition)) {
    const int64_t id = Pick(EhrType::kCondition).id;
    EhrResource& r = Touch(EhrType::kCondition, id, now_ms);
    const std::string cur = StatusOf(r.body, "clinicalStatus");
    r.body["clinicalStatus"] = ConditionStatus(cur == "active"      ? "remission"
                                               : cur == "remission" ? "recurrence"
                                               : cur == "resolved"  ? "recurrence"
                                                                    : "active");
    return {r.type, r.id, false};
  }
  if (u < 0.85 && available(EhrType::kAllergyIntolerance)) {
    const int64_t id = Pick(EhrType::kAllergyIntolerance).id;
    EhrResource& r = Touch(EhrType::kAllergyIntolerance, id, now_ms);
    const std::string cur = StatusOf(r.body, "clinicalStatus");
    r.body["clinicalStatus"] = AllergyStatus(cur == "active" ? "inactive" : "active");
    return {r.type, r.id, false};
  }
  // A patient's phone number changed (555-01xx: the fictional range).
  const int64_t id = Pick(EhrType::kPatient).id;
  EhrResource& r = Touch(EhrType::kPatient, id, now_ms);
  char phone[32];
  std::snprintf(phone, sizeof phone, "%d-555-01%02d", static_cast<int>(trickle_.Between(201, 989)),
                static_cast<int>(trickle_.Between(0, 99)));
  json::array telecom;
  if (const json::value* old = r.body.if_contains("telecom"))
    for (const auto& t : old->as_array())
      if (t.as_object().at("system").as_string() != "phone") telecom.push_back(t);
  telecom.insert(telecom.begin(),
                 json::object{{"system", "phone"}, {"value", phone}, {"use", "home"}});
  r.body["telecom"] = std::move(telecom);
  return {r.type, r.id, false};
}

}  // namespace continuum::stubdeps
