// The small, realistic tables the synthetic population is drawn from: common US given
// and family names, cities, street names, specialties, and clinical codes (SNOMED CT
// allergies and conditions, RxNorm medications) with their display text. Codes are
// real; the frequencies are plausible, not epidemiology.
#pragma once

#include <span>
#include <string_view>

namespace continuum::seed::catalog {

std::span<const std::string_view> FemaleGivenNames();
std::span<const std::string_view> MaleGivenNames();
std::span<const std::string_view> FamilyNames();
std::span<const std::string_view> StreetNames();
std::span<const std::string_view> StreetSuffixes();

struct City {
  std::string_view name;
  std::string_view state;
  std::string_view zip_prefix;  // 3 digits
};
std::span<const City> Cities();

std::span<const std::string_view> FacilityPrefixes();  // "Mercy", "St. Luke's", ...
std::span<const std::string_view> FacilityKinds();     // "Medical Center", "Family Clinic", ...

struct Specialty {
  std::string_view name;
  double weight;
  bool primary_care;
};
std::span<const Specialty> Specialties();

struct AllergyCode {
  std::string_view code;  // SNOMED CT
  std::string_view display;
  std::string_view category;  // food | medication | environment | biologic
  std::string_view reaction;
  double weight;
  double high_criticality;  // probability of criticality "high"
};
std::span<const AllergyCode> Allergies();

struct MedicationCode {
  std::string_view rxnorm;
  std::string_view display;
  std::string_view dosage;
  double weight;
  int min_age;
  bool acute;  // a short course: usually completed
};
std::span<const MedicationCode> Medications();

struct ConditionCode {
  std::string_view code;  // SNOMED CT
  std::string_view display;
  double weight;
  int min_age;
  int max_age;
  bool chronic;  // chronic: active/remission; acute: resolved
};
std::span<const ConditionCode> Conditions();

struct EncounterType {
  std::string_view class_code;  // AMB | EMER | IMP | VR | HH
  std::string_view display;
  double weight;
  int min_minutes;
  int max_minutes;
};
std::span<const EncounterType> EncounterTypes();

}  // namespace continuum::seed::catalog
