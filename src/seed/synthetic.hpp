// `continuum synthetic-accounts`: the synthetic patients and accounts `continuum probe`
// logs in with, one set per vantage, tagged `synthetic` in the data (0011_synthetic.sql)
// so that nothing patient-facing, billing or reporting counts them:
//   - patient "Synthetic <vantage>", identifier urn:continuum:synthetic|<vantage> (mrn
//     SYNTHETIC-<vantage>), no email or phone (so no notification can ever be sent);
//   - a synthetic practitioner with the same id as that patient (journeys find its
//     schedule as Schedule/<patient id>) and a care relationship to that patient only;
//   - accounts synthetic-patient-<vantage> and synthetic-provider-<vantage>;
//   - free slots of that practitioner (four a day for the next 30 days from tomorrow,
//     topped up on every run) so that booking always finds one;
//   - note retention: the patient's notes beyond the newest 50 are pruned;
//   - bookings older than 10 minutes that failed runs left booked are cancelled.
// Idempotent: a re-run changes nothing but a password that changed (and adds the slots
// of days that came into the 30-day window). Refuses to touch rows that exist but are
// not synthetic.
#pragma once

#include <string>
#include <vector>

#include "core/secret.hpp"

namespace continuum::seed {

struct SyntheticOptions {
  Secret database_url;
  std::vector<std::string> vantages;  // [A-Za-z0-9_-]{1,64}
  Secret password;
};

struct SyntheticResult {
  std::string vantage;
  std::string patient_id;  // also the practitioner's id
  bool created = false;
  int passwords_changed = 0;
  int slots_added = 0;
  int notes_pruned = 0;
  int bookings_cancelled = 0;  // left booked by failed runs, older than 10 minutes
};

std::vector<SyntheticResult> ProvisionSynthetic(const SyntheticOptions& options);

// Notes kept per synthetic patient (the trigger in 0011_synthetic.sql keeps the same).
inline constexpr int kSyntheticNotesKept = 50;

}  // namespace continuum::seed
