#include "seed/population.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <stdexcept>
#include <string_view>

#include "db/copy_text.hpp"
#include "seed/catalog.hpp"
#include "seed/dates.hpp"

namespace continuum::seed {
namespace {

static_assert(DaysFromCivil(2026, 10, 1) == kReferenceDay);

// Stream tags: one independent random stream per (table, patient).
enum Stream : uint64_t {
  kFacilityStream = 1,
  kPractitionerStream,
  kProfileStream,
  kPatientStream,
  kCareStream,
  kAllergyStream,
  kMedicationStream,
  kConditionStream,
  kEncounterStream,
};

constexpr std::array<std::string_view, 4> kGenders = {"female", "male", "other", "unknown"};
constexpr std::array<double, 4> kGenderWeights = {50.5, 48.6, 0.6, 0.3};
constexpr std::array<double, 7> kAllergyCountWeights = {46, 26, 13, 7.5, 4, 2.2, 1.3};
constexpr std::array<double, 3> kCareTeamWeights = {55, 30, 15};

constexpr int64_t kFirstBirthDay = DaysFromCivil(1930, 1, 1);
constexpr int64_t kLastBirthDay = DaysFromCivil(2024, 12, 31);

// ---- COPY text format --------------------------------------------------------------

void Int(std::string& out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void Text(std::string& out, std::string_view s) { db::AppendCopyText(out, s); }

void Null(std::string& out) { out += db::kCopyNull; }
void Tab(std::string& out) { out += '\t'; }
void End(std::string& out) { out += '\n'; }

void ZeroPadded(std::string& out, int64_t v, int width) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  for (int pad = width - static_cast<int>(end - buf); pad > 0; --pad) out += '0';
  out.append(buf, end);
}

void SeededAt(std::string& out) { AppendTimestamp(out, kSeededAtEpochSeconds); }

// Lowercase letters only ("O'Brien" -> "obrien"), for e-mail addresses.
void EmailPart(std::string& out, std::string_view s) {
  for (char c : s) {
    if (c >= 'A' && c <= 'Z')
      out += static_cast<char>(c - 'A' + 'a');
    else if (c >= 'a' && c <= 'z')
      out += c;
  }
}

// A valid-looking, unique NPI: 9 digits (a bijection of the id) + Luhn check digit
// computed with the "80840" prefix, as CMS specifies.
std::string Npi(int64_t id) {
  const int64_t base = 100000000 + (id * 7919) % 800000000;
  std::string digits = "80840" + std::to_string(base);
  int sum = 0;
  bool dbl = true;  // the check digit will be appended: double from the rightmost payload digit
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    int d = *it - '0';
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return std::to_string(base) + static_cast<char>('0' + (10 - sum % 10) % 10);
}

template <class T, class W>
size_t WeightedIndex(Rng& rng, std::span<const T> items, W weight_of) {
  double total = 0;
  for (const auto& item : items) total += weight_of(item);
  double x = rng.Unit() * total;
  for (size_t i = 0; i < items.size(); ++i) {
    const double w = weight_of(items[i]);
    if (x < w) return i;
    x -= w;
  }
  return items.size() - 1;
}

// A date uniformly in [from, to] (to < from collapses to from).
int64_t DayBetween(Rng& rng, int64_t from, int64_t to) {
  return to <= from ? from : rng.Between(from, to);
}

int AgeAt(int64_t birth_day, int64_t day) {
  const CivilDate b = CivilFromDays(birth_day), d = CivilFromDays(day);
  int age = static_cast<int>(d.year - b.year);
  if (d.month < b.month || (d.month == b.month && d.day < b.day)) --age;
  return std::max(age, 0);
}

int64_t YearsAfter(int64_t day, int years) { return day + years * 36525 / 100; }

bool FemaleOnly(std::string_view snomed) {
  return snomed == "72892002" || snomed == "254837009";  // pregnancy, breast cancer
}

}  // namespace

Population::Population(int64_t patients, int64_t facilities, uint64_t seed)
    : patients_(patients), facilities_(facilities), seed_(seed) {
  if (patients < 2) throw std::invalid_argument("seed: at least 2 patients are needed");
  if (facilities < 1) throw std::invalid_argument("seed: at least 1 facility is needed");
  if (patients > 100'000'000) throw std::invalid_argument("seed: at most 100000000 patients");
  if (facilities > patients) throw std::invalid_argument("seed: more facilities than patients");

  facility_.resize(static_cast<size_t>(facilities));
  const auto cities = catalog::Cities();
  const auto prefixes = catalog::FacilityPrefixes();
  double total = 0;
  for (int64_t id = 1; id <= facilities; ++id) {
    Rng rng(MixKey({seed_, kFacilityStream, static_cast<uint64_t>(id)}));
    Facility& f = facility_[id - 1];
    f.city = static_cast<int>(rng.Below(cities.size()));
    f.prefix = static_cast<int>(rng.Below(prefixes.size()));
    // A few large hospitals, many small clinics.
    const double u = rng.Unit();
    f.weight = 0.5 + 9.5 * u * u * u;
    // Kinds 0,1,4,7 are hospitals; the others clinics.
    static constexpr int kHospitals[] = {0, 1, 4, 7};
    static constexpr int kClinics[] = {2, 3, 5, 6};
    f.kind = f.weight > 3.0 ? kHospitals[rng.Below(4)] : kClinics[rng.Below(4)];
    total += f.weight;
    facility_cumulative_.push_back(total);
  }

  // Practitioners: ~1 per 500 patients, at least 2 per facility. The first 2F are two
  // primary-care physicians per facility (practitioner 1 works at facility 1: the demo
  // provider); the rest go where the patients are.
  const auto specialties = catalog::Specialties();
  const int64_t count = std::max<int64_t>(patients / 500, 2 * facilities);
  practitioners_.resize(static_cast<size_t>(count));
  int family_medicine = 0, internal_medicine = 1, pediatrics = 2;
  for (int64_t id = 1; id <= count; ++id) {
    Rng rng(MixKey({seed_, kPractitionerStream, static_cast<uint64_t>(id)}));
    Practitioner& pr = practitioners_[id - 1];
    if (id <= facilities) {
      pr = {id, family_medicine};
    } else if (id <= 2 * facilities) {
      pr = {id - facilities, internal_medicine};
    } else {
      pr.facility_id = PickFacility(rng);
      pr.specialty = static_cast<int>(
          WeightedIndex(rng, specialties, [](const catalog::Specialty& s) { return s.weight; }));
    }
    Facility& f = facility_[pr.facility_id - 1];
    f.all.push_back(id);
    if (pr.specialty == pediatrics)
      f.pediatrics.push_back(id);
    else if (specialties[pr.specialty].primary_care)
      f.primary_care.push_back(id);
  }
}

int64_t Population::PickFacility(Rng& rng) const {
  const double x = rng.Unit() * facility_cumulative_.back();
  auto it = std::upper_bound(facility_cumulative_.begin(), facility_cumulative_.end(), x);
  if (it == facility_cumulative_.end()) --it;
  return (it - facility_cumulative_.begin()) + 1;
}

int64_t Population::PickPractitioner(Rng& rng, int64_t facility_id, bool primary_care,
                                     bool child) const {
  const Facility& f = facility_[facility_id - 1];
  if (primary_care) {
    if (child && !f.pediatrics.empty() && rng.Chance(0.8)) {
      return f.pediatrics[rng.Below(f.pediatrics.size())];
    }
    return f.primary_care[rng.Below(f.primary_care.size())];  // never empty: 2 per facility
  }
  return f.all[rng.Below(f.all.size())];
}

PatientProfile Population::Profile(int64_t id) const {
  Rng rng(MixKey({seed_, kProfileStream, static_cast<uint64_t>(id)}));
  PatientProfile p;
  p.id = id;
  p.facility_id = PickFacility(rng);
  p.gender = static_cast<int>(rng.Weighted(kGenderWeights));
  p.birth_day = rng.Between(kFirstBirthDay, kLastBirthDay);
  p.given_list = p.gender == 0 ? 0 : p.gender == 1 ? 1 : static_cast<int>(rng.Below(2));
  const size_t given_count =
      p.given_list == 0 ? catalog::FemaleGivenNames().size() : catalog::MaleGivenNames().size();
  p.given = static_cast<int>(rng.Below(given_count));
  p.family = static_cast<int>(rng.Below(catalog::FamilyNames().size()));
  if (id == 1) {
    // The demo patient: an adult at facility 1, in the demo provider's panel.
    p.facility_id = 1;
    p.birth_day = DaysFromCivil(1971, 3, 14);
  }
  p.age = AgeAt(p.birth_day, kReferenceDay);

  // Care team: a primary-care physician at the home facility, sometimes specialists,
  // mostly at the home facility too.
  const int team = 1 + static_cast<int>(rng.Weighted(kCareTeamWeights));
  auto acceptable = [&](int64_t pr) {
    if (id == 2 && pr == 1) return false;  // tests use patient 2 as "another patient"
    return std::find(p.care_team.begin(), p.care_team.end(), pr) == p.care_team.end();
  };
  for (int k = 0; k < team; ++k) {
    for (int attempt = 0; attempt < 8; ++attempt) {
      int64_t pr;
      if (k == 0) {
        pr = id == 1 ? 1 : PickPractitioner(rng, p.facility_id, true, p.age < 18);
      } else {
        const int64_t facility = rng.Chance(0.8) ? p.facility_id : PickFacility(rng);
        pr = PickPractitioner(rng, facility, false, false);
      }
      if (acceptable(pr)) {
        p.care_team.push_back(pr);
        break;
      }
    }
  }
  if (p.care_team.empty()) {
    // Only reachable for patient 2 at a facility whose only primary care is #1 (cannot
    // happen: every facility has two); still, never leave a patient without a team.
    for (int64_t pr = 2; pr <= practitioners(); ++pr) {
      if (acceptable(pr)) {
        p.care_team.push_back(pr);
        break;
      }
    }
  }

  p.allergies = static_cast<int>(rng.Weighted(kAllergyCountWeights));
  p.medications = rng.Poisson(0.3 + p.age / 16.0, 12);
  p.conditions = rng.Poisson(0.2 + p.age / 22.0, 8);
  p.encounters = 1 + rng.Poisson(1.5 + p.age / 14.0 + 0.8 * p.conditions, 29);
  if (id == 1) {
    p.allergies = std::max(p.allergies, 1);
    p.medications = std::max(p.medications, 2);
    p.conditions = std::max(p.conditions, 1);
    p.encounters = std::max(p.encounters, 3);
  }
  return p;
}

void Population::AppendFacilities(std::string& out) const {
  const auto cities = catalog::Cities();
  for (int64_t id = 1; id <= facilities_; ++id) {
    const Facility& f = facility_[id - 1];
    const catalog::City& city = cities[f.city];
    Int(out, id);
    Tab(out);
    Text(out, catalog::FacilityPrefixes()[f.prefix]);
    out += ' ';
    Text(out, catalog::FacilityKinds()[f.kind]);
    out += ' ';
    Text(out, city.name);
    if (id > static_cast<int64_t>(catalog::FacilityPrefixes().size())) {
      out += " #";  // keep names distinguishable in large populations
      Int(out, id);
    }
    Tab(out);
    Text(out, city.name);
    Tab(out);
    Text(out, city.state);
    Tab(out);
    SeededAt(out);
    End(out);
  }
}

void Population::AppendPractitioner(int64_t id, std::string& out) const {
  Rng rng(MixKey({seed_, kPractitionerStream, static_cast<uint64_t>(id), 1}));
  const Practitioner& pr = practitioners_[id - 1];
  const auto given = rng.Chance(0.5) ? catalog::FemaleGivenNames() : catalog::MaleGivenNames();
  const auto family = catalog::FamilyNames();
  Int(out, id);
  Tab(out);
  out += Npi(id);
  Tab(out);
  Text(out, family[rng.Below(family.size())]);
  Tab(out);
  Text(out, given[rng.Below(given.size())]);
  Tab(out);
  Text(out, catalog::Specialties()[pr.specialty].name);
  Tab(out);
  Int(out, pr.facility_id);
  Tab(out);
  SeededAt(out);
  End(out);
}

void Population::AppendPatient(const PatientProfile& p, std::string& out) const {
  Rng rng(MixKey({seed_, kPatientStream, static_cast<uint64_t>(p.id)}));
  const std::string_view given =
      p.given_list == 0 ? catalog::FemaleGivenNames()[p.given] : catalog::MaleGivenNames()[p.given];
  const std::string_view family = catalog::FamilyNames()[p.family];
  const auto cities = catalog::Cities();
  const catalog::City& city = rng.Chance(0.85) ? cities[facility_[p.facility_id - 1].city]
                                               : cities[rng.Below(cities.size())];
  Int(out, p.id);
  Tab(out);
  out += "MRN";
  ZeroPadded(out, p.id, 10);
  Tab(out);
  Text(out, family);
  Tab(out);
  Text(out, given);
  Tab(out);
  out += kGenders[p.gender];
  Tab(out);
  AppendDate(out, p.birth_day);
  Tab(out);
  if (rng.Chance(0.95)) {  // 555-0100..0199 is the fictional range: no real numbers
    Int(out, rng.Between(201, 989));
    out += "-555-01";
    ZeroPadded(out, rng.Between(0, 99), 2);
  } else {
    Null(out);
  }
  Tab(out);
  if (rng.Chance(0.88)) {
    EmailPart(out, given);
    out += '.';
    EmailPart(out, family);
    Int(out, p.id);
    out += "@example.com";
  } else {
    Null(out);
  }
  Tab(out);
  Int(out, rng.Between(1, 9999));
  out += ' ';
  Text(out, catalog::StreetNames()[rng.Below(catalog::StreetNames().size())]);
  out += ' ';
  Text(out, catalog::StreetSuffixes()[rng.Below(catalog::StreetSuffixes().size())]);
  Tab(out);
  Text(out, city.name);
  Tab(out);
  Text(out, city.state);
  Tab(out);
  Text(out, city.zip_prefix);
  ZeroPadded(out, rng.Between(1, 99), 2);
  Tab(out);
  Int(out, p.facility_id);
  Tab(out);
  SeededAt(out);
  End(out);
}

void Population::AppendCareRelationships(const PatientProfile& p, std::string& out) const {
  Rng rng(MixKey({seed_, kCareStream, static_cast<uint64_t>(p.id)}));
  for (int64_t pr : p.care_team) {
    Int(out, pr);
    Tab(out);
    Int(out, p.id);
    Tab(out);
    Int(out, practitioners_[pr - 1].facility_id);
    Tab(out);
    AppendDate(out, DayBetween(rng, std::max(p.birth_day, kReferenceDay - int64_t{15} * 365),
                               kReferenceDay - 30));
    End(out);
  }
}

int Population::AppendAllergies(const PatientProfile& p, int64_t* next_id, std::string& out) const {
  Rng rng(MixKey({seed_, kAllergyStream, static_cast<uint64_t>(p.id)}));
  const auto codes = catalog::Allergies();
  std::array<bool, 64> used{};
  int rows = 0;
  for (int k = 0; k < p.allergies; ++k) {
    size_t i = 0;
    bool found = false;
    for (int attempt = 0; attempt < 16 && !found; ++attempt) {
      i = WeightedIndex(rng, codes, [](const catalog::AllergyCode& c) { return c.weight; });
      found = !used[i];
    }
    if (!found) continue;
    used[i] = true;
    const catalog::AllergyCode& c = codes[i];
    Int(out, (*next_id)++);
    Tab(out);
    Int(out, p.id);
    Tab(out);
    out += c.code;
    Tab(out);
    Text(out, c.display);
    Tab(out);
    out += c.category;
    Tab(out);
    const double r = rng.Unit();
    out += r < c.high_criticality          ? "high"
           : r < c.high_criticality + 0.03 ? "unable-to-assess"
                                           : "low";
    Tab(out);
    const double s = rng.Unit();
    out += s < 0.88 ? "active" : s < 0.95 ? "inactive" : "resolved";
    Tab(out);
    if (rng.Chance(0.9))
      Text(out, c.reaction);
    else
      Null(out);
    Tab(out);
    AppendDate(out, DayBetween(rng, p.birth_day + 180, kReferenceDay - 1));
    Tab(out);
    SeededAt(out);
    End(out);
    ++rows;
  }
  return rows;
}

int Population::AppendMedications(const PatientProfile& p, int64_t* next_id,
                                  std::string& out) const {
  Rng rng(MixKey({seed_, kMedicationStream, static_cast<uint64_t>(p.id)}));
  const auto codes = catalog::Medications();
  std::array<bool, 64> used{};
  int rows = 0;
  for (int k = 0; k < p.medications; ++k) {
    size_t i = 0;
    bool found = false;
    for (int attempt = 0; attempt < 24 && !found; ++attempt) {
      i = WeightedIndex(rng, codes, [](const catalog::MedicationCode& c) { return c.weight; });
      found = !used[i] && codes[i].min_age <= p.age;
    }
    if (!found) continue;
    used[i] = true;
    const catalog::MedicationCode& c = codes[i];
    Int(out, (*next_id)++);
    Tab(out);
    Int(out, p.id);
    Tab(out);
    out += c.rxnorm;
    Tab(out);
    Text(out, c.display);
    Tab(out);
    Text(out, c.dosage);
    Tab(out);
    const double s = rng.Unit();
    if (c.acute) {
      out += s < 0.85 ? "completed" : s < 0.95 ? "stopped" : "active";
    } else {
      out += s < 0.75 ? "active" : s < 0.87 ? "stopped" : s < 0.92 ? "on-hold" : "completed";
    }
    Tab(out);
    const int64_t earliest = std::max(YearsAfter(p.birth_day, c.min_age), kReferenceDay - 3650);
    AppendDate(out, DayBetween(rng, earliest, kReferenceDay - 1));
    Tab(out);
    SeededAt(out);
    End(out);
    ++rows;
  }
  return rows;
}

int Population::AppendConditions(const PatientProfile& p, int64_t* next_id,
                                 std::string& out) const {
  Rng rng(MixKey({seed_, kConditionStream, static_cast<uint64_t>(p.id)}));
  const auto codes = catalog::Conditions();
  std::array<bool, 64> used{};
  int rows = 0;
  for (int k = 0; k < p.conditions; ++k) {
    size_t i = 0;
    bool found = false;
    for (int attempt = 0; attempt < 24 && !found; ++attempt) {
      i = WeightedIndex(rng, codes, [](const catalog::ConditionCode& c) { return c.weight; });
      const auto& c = codes[i];
      found = !used[i] && c.min_age <= p.age && (!FemaleOnly(c.code) || p.gender == 0);
    }
    if (!found) continue;
    used[i] = true;
    const catalog::ConditionCode& c = codes[i];
    Int(out, (*next_id)++);
    Tab(out);
    Int(out, p.id);
    Tab(out);
    out += c.code;
    Tab(out);
    Text(out, c.display);
    Tab(out);
    const double s = rng.Unit();
    if (c.chronic) {
      out += s < 0.85 ? "active" : s < 0.95 ? "remission" : "inactive";
    } else {
      out += s < 0.9 ? "resolved" : s < 0.95 ? "active" : "recurrence";
    }
    Tab(out);
    const int64_t earliest = YearsAfter(p.birth_day, c.min_age);
    const int64_t latest = std::min(YearsAfter(p.birth_day, c.max_age), kReferenceDay - 1);
    AppendDate(out, DayBetween(rng, earliest, latest));
    Tab(out);
    SeededAt(out);
    End(out);
    ++rows;
  }
  return rows;
}

int Population::AppendEncounters(const PatientProfile& p, int64_t* next_id,
                                 std::string& out) const {
  Rng rng(MixKey({seed_, kEncounterStream, static_cast<uint64_t>(p.id)}));
  const auto types = catalog::EncounterTypes();
  struct Visit {
    int64_t start;  // epoch seconds
    int type;
    int64_t practitioner;
  };
  Visit visits[32];
  const int n = p.encounters;
  // The last ten years (or since birth), plus a quarter ahead for planned visits.
  const int64_t first_day = std::max(p.birth_day, kReferenceDay - 3650);
  const int64_t last_day = kReferenceDay + 90;
  for (int k = 0; k < n; ++k) {
    Visit& v = visits[k];
    v.type = static_cast<int>(
        WeightedIndex(rng, types, [](const catalog::EncounterType& t) { return t.weight; }));
    const std::string_view cls = types[v.type].class_code;
    // At most one visit a day (a few redraws; tiny windows may still repeat a day).
    int64_t day = DayBetween(rng, first_day, last_day);
    for (int attempt = 0; attempt < 4; ++attempt) {
      bool taken = false;
      for (int j = 0; j < k && !taken; ++j) taken = visits[j].start / 86400 == day;
      if (!taken) break;
      day = DayBetween(rng, first_day, last_day);
    }
    int64_t second_of_day;
    if (cls == "EMER" || cls == "IMP") {
      second_of_day = rng.Between(0, 1439) * 60;
    } else {  // office hours, on quarter hours (UTC, for simplicity)
      second_of_day = int64_t{8} * 3600 + rng.Between(0, 35) * 900;
    }
    v.start = day * 86400 + second_of_day;
    // Who: mostly the care team; emergencies and admissions whoever is on duty at the
    // home facility; now and then a visit elsewhere.
    const double w = rng.Unit();
    if (cls != "EMER" && cls != "IMP" && w < 0.75) {
      v.practitioner = p.care_team[rng.Below(p.care_team.size())];
    } else if (w < 0.95) {
      v.practitioner = PickPractitioner(rng, p.facility_id, false, false);
    } else {
      v.practitioner = PickPractitioner(rng, PickFacility(rng), false, false);
    }
    if (p.id == 2 && v.practitioner == 1) v.practitioner = p.care_team[0];  // see Profile
    // A consultation is with a specialist; with a primary-care physician it is a visit.
    if (types[v.type].display == "Specialist consultation" &&
        catalog::Specialties()[practitioners_[v.practitioner - 1].specialty].primary_care) {
      v.type = 0;  // Office visit
    }
  }
  std::sort(visits, visits + n, [](const Visit& a, const Visit& b) {
    return a.start != b.start ? a.start < b.start : a.type < b.type;
  });
  for (int k = 0; k < n; ++k) {
    const Visit& v = visits[k];
    const catalog::EncounterType& t = types[v.type];
    Int(out, (*next_id)++);
    Tab(out);
    Int(out, p.id);
    Tab(out);
    Int(out, practitioners_[v.practitioner - 1].facility_id);
    Tab(out);
    Int(out, v.practitioner);
    Tab(out);
    out += t.class_code;
    Tab(out);
    Text(out, t.display);
    Tab(out);
    const bool planned = v.start >= kSeededAtEpochSeconds;
    const bool cancelled = !planned && rng.Chance(0.03);
    out += planned ? "planned" : cancelled ? "cancelled" : "finished";
    Tab(out);
    AppendTimestamp(out, v.start);
    Tab(out);
    if (planned || cancelled) {
      Null(out);
    } else {
      AppendTimestamp(out, v.start + 60 * rng.Between(t.min_minutes, t.max_minutes));
    }
    Tab(out);
    SeededAt(out);
    End(out);
  }
  return n;
}

namespace {
void AccountRow(std::string& out, int64_t id, std::string_view username, const std::string& hash,
                std::string_view role, int64_t patient_id, int64_t practitioner_id) {
  // id, username, password_hash, role, patient_id, practitioner_id, totp_secret,
  // failed_attempts, locked_until, created_at
  Int(out, id);
  Tab(out);
  Text(out, username);
  Tab(out);
  Text(out, hash);
  Tab(out);
  out += role;
  Tab(out);
  if (patient_id > 0)
    Int(out, patient_id);
  else
    Null(out);
  Tab(out);
  if (practitioner_id > 0)
    Int(out, practitioner_id);
  else
    Null(out);
  Tab(out);
  Null(out);
  Tab(out);
  out += '0';
  Tab(out);
  Null(out);
  Tab(out);
  SeededAt(out);
  End(out);
}
}  // namespace

void Population::AppendPatientAccount(int64_t patient_id, const std::string& hash,
                                      std::string& out) const {
  AccountRow(out, patient_id, "patient-" + std::to_string(patient_id), hash, "patient", patient_id,
             0);
}

void Population::AppendPractitionerAccount(int64_t practitioner_id, const std::string& hash,
                                           std::string& out) const {
  AccountRow(out, patients_ + practitioner_id, "provider-" + std::to_string(practitioner_id), hash,
             "provider", 0, practitioner_id);
}

void Population::AppendDemoAccounts(const std::string& hash, std::string& out) const {
  const int64_t base = patients_ + practitioners();
  AccountRow(out, base + 1, "demo-patient", hash, "patient", 1, 0);
  AccountRow(out, base + 2, "demo-provider", hash, "provider", 0, 1);
  AccountRow(out, base + 3, "demo-auditor", hash, "auditor", 0, 0);
}

}  // namespace continuum::seed
