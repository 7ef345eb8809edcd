// One audit record: who did what to which resource of which patient, when, where,
// why and with what outcome (ARCHITECTURE §5, HIPAA 45 CFR 164.312(b)).
#pragma once

#include <string>

namespace continuum::audit {

struct Record {
  // Filled by the caller.
  std::string request_id;
  std::string actor = "anonymous";  // username
  std::string role = "anonymous";   // patient | provider | auditor | anonymous
  std::string action;               // login | logout | read | search | create | update | sign
  std::string resource_type;        // FHIR type, e.g. "Patient"; empty for login/logout
  std::string resource_id;
  std::string patient_id;  // the patient whose data was touched, if any
  std::string client_address;
  std::string purpose_of_use = "TREAT";  // HL7 PurposeOfUse: TREAT, ETREAT, HOPERAT, PATRQT
  std::string outcome;                   // success | denied | failure | error
  std::string detail;                    // short reason, never PHI (e.g. "no care relationship")
  // Filled by the journal when appended.
  std::string recorded_at;  // RFC 3339 UTC with milliseconds
  std::string region;
  std::string node_id;
  long long seq = 0;
};

}  // namespace continuum::audit
