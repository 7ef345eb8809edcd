// What this build is: its version and the schema it was built for. One small file
// (release.cpp) holds both, so a new `git describe` recompiles one object, and the test
// build of "release N+1" (the continuum_next target, CONTINUUM_TEST_RELEASE_NEXT; see
// src/db/README.md, "Schema changes two releases can share") differs from release N in
// this file, src/main.cpp and src/portal/critical/notes.cpp only.
#pragma once

#include <string_view>

namespace continuum {

// `git describe --always --dirty` when CMake configured the build ("unknown" outside a
// checkout); the test release N+1 appends "-next".
std::string_view BuildVersion();

// The highest migration version this build ships (db/migrations, and db/migrations-next
// for the test release N+1). A node registers it (continuum_node.schema_version): a
// contract migration runs only when no live node was built for a lower one.
int KnownSchemaVersion();

// True in the test release N+1 only.
bool IsTestReleaseNext();

}  // namespace continuum
