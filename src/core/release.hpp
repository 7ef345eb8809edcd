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

// The source root this build was configured from (CMake's CMAKE_SOURCE_DIR): where the
// defaults for migrations, content and scripts are found. Only release.cpp is compiled
// with the path, so every other object is the same in every checkout and ccache serves it
// to a second worktree or a CI checkout (a path in a -D defeats CCACHE_BASEDIR).
const char* SourceDir();

}  // namespace continuum
