// Internal to src/auth: libsodium initialisation shared by the auth sources.
#pragma once

namespace continuum::auth::detail {

// Calls sodium_init() exactly once per process (thread-safe; a function-local static).
// Throws std::runtime_error if libsodium cannot be initialised. Cheap after the first
// call, so every public entry point that uses libsodium calls it.
void EnsureSodium();

}  // namespace continuum::auth::detail
