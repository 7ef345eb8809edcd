#include "core/release.hpp"

#include "continuum_version.h"  // build/generated: CONTINUUM_VERSION (cmake/version.cmake)
#ifndef CONTINUUM_SCHEMA_VERSION
#error "CMake defines CONTINUUM_SCHEMA_VERSION (the highest db/migrations version)"
#endif
#ifndef CONTINUUM_SOURCE_DIR
#error "CMake defines CONTINUUM_SOURCE_DIR (the source root)"
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

const char* SourceDir() { return CONTINUUM_SOURCE_DIR; }

}  // namespace continuum
