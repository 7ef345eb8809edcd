// The synthetic population, as a pure function of (patients, facilities, random seed).
//
// Nothing per patient is kept in memory: every patient's profile (home facility, name,
// birth date, care team, how many allergies, medications ...) is recomputed on demand
// from a random stream keyed by (seed, "profile", patient id), and every table draws
// its details from its own stream keyed by (seed, table, patient id). So the tables can
// be streamed one after the other, in any order, with the same result; and the same
// options always give the same bytes. Only facilities and practitioners (a few
// thousand) live in memory.
//
// Rows are appended in PostgreSQL COPY text format, columns in table order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "seed/random.hpp"

namespace continuum::seed {

// The day the synthetic records are "as of" (fixed, for determinism): encounters after
// it are planned, and every updated_at/created_at is this instant.
constexpr int64_t kReferenceDay = 20727;  // 2026-10-01
constexpr int64_t kSeededAtEpochSeconds = kReferenceDay * 86400;

struct PatientProfile {
  int64_t id = 0;
  int64_t facility_id = 0;
  int gender = 0;  // index into {female, male, other, unknown}
  int64_t birth_day = 0;
  int age = 0;
  int given = 0;  // index into the given-name list of the gender
  int family = 0;
  int given_list = 0;              // 0 female names, 1 male names
  std::vector<int64_t> care_team;  // 1..3 practitioner ids, distinct; [0] is primary care
  int allergies = 0;               // 0..6
  int medications = 0;             // 0..12
  int conditions = 0;              // 0..8
  int encounters = 0;              // 1..30
};

class Population {
 public:
  Population(int64_t patients, int64_t facilities, uint64_t seed);

  [[nodiscard]] int64_t patients() const { return patients_; }
  [[nodiscard]] int64_t facilities() const { return facilities_; }
  [[nodiscard]] int64_t practitioners() const {
    return static_cast<int64_t>(practitioners_.size());
  }

  [[nodiscard]] PatientProfile Profile(int64_t patient_id) const;

  void AppendFacilities(std::string& out) const;
  void AppendPractitioner(int64_t practitioner_id, std::string& out) const;
  void AppendPatient(const PatientProfile& p, std::string& out) const;
  void AppendCareRelationships(const PatientProfile& p, std::string& out) const;
  // Child tables: ids continue from *next_id (sequential over all patients in order).
  // Each returns the number of rows appended.
  int AppendAllergies(const PatientProfile& p, int64_t* next_id, std::string& out) const;
  int AppendMedications(const PatientProfile& p, int64_t* next_id, std::string& out) const;
  int AppendConditions(const PatientProfile& p, int64_t* next_id, std::string& out) const;
  int AppendEncounters(const PatientProfile& p, int64_t* next_id, std::string& out) const;
  // Accounts: patient-<id> has account id <id>, provider-<id> has patients + <id>,
  // then demo-patient, demo-provider, demo-auditor. All share `password_hash`.
  void AppendPatientAccount(int64_t patient_id, const std::string& password_hash,
                            std::string& out) const;
  void AppendPractitionerAccount(int64_t practitioner_id, const std::string& password_hash,
                                 std::string& out) const;
  void AppendDemoAccounts(const std::string& password_hash, std::string& out) const;

 private:
  struct Facility {
    int city = 0;
    int prefix = 0;
    int kind = 0;
    double weight = 1;
    std::vector<int64_t> all;           // practitioner ids
    std::vector<int64_t> primary_care;  // Family/Internal Medicine
    std::vector<int64_t> pediatrics;
  };
  struct Practitioner {
    int64_t facility_id = 0;
    int specialty = 0;
  };

  int64_t PickFacility(Rng& rng) const;
  int64_t PickPractitioner(Rng& rng, int64_t facility_id, bool primary_care, bool child) const;

  int64_t patients_;
  int64_t facilities_;
  uint64_t seed_;
  std::vector<Facility> facility_;  // index id-1
  std::vector<double> facility_cumulative_;
  std::vector<Practitioner> practitioners_;  // index id-1
};

}  // namespace continuum::seed
