// `continuum seed`: a deterministic synthetic population loaded with COPY.
#pragma once

#include <cstdint>
#include <string>

#include "core/secret.hpp"

namespace continuum::seed {

struct SeedOptions {
  Secret database_url;
  int64_t patients = 1000;
  int64_t facilities = 10;
  uint64_t random_seed = 20261125;
  bool progress = true;       // progress lines on stderr
  std::string articles_file;  // the health-article library to load too ("" = none)
};

// Loads facilities, practitioners (with panels), patients, care relationships,
// allergies, medications, conditions, encounters and accounts, including the demo
// accounts demo-patient, demo-provider (care relationship to demo-patient) and
// demo-auditor, password "continuum-demo". Refuses to load into a non-empty database.
void Run(const SeedOptions& options);

}  // namespace continuum::seed
