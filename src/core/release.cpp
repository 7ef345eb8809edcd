#include "core/release.hpp"

#ifndef CONTINUUM_VERSION
#define CONTINUUM_VERSION "unknown"
#endif
#ifndef CONTINUUM_SCHEMA_VERSION
#error "CMake defines CONTINUUM_SCHEMA_VERSION (the highest db/migrations version)"
#endif

namespace continuum {

#ifdef CONTINUUM_TEST_RELEASE_NEXT
std::string_view BuildVersion() { return CONTINUUM_VERSION "-next"; }
int KnownSchemaVersion() { return CONTINUUM_SCHEMA_VERSION_NEXT; }
bool IsTestReleaseNext() { return true; }
#else
std::string_view BuildVersion() { return CONTINUUM_VERSION; }
int KnownSchemaVersion() { return CONTINUUM_SCHEMA_VERSION; }
bool IsTestReleaseNext() { return false; }
#endif

}  // namespace continuum
