// Argon2id password hashing at libsodium's "interactive" limits (64 MiB, t=2, p=1), in
// the PHC string format crypto_pwhash_str_alg writes ("$argon2id$v=19$m=65536,t=2,p=1$
// <salt>$<hash>"), so hashes made by either side verify on the other.
//
// The hash itself runs on the reference implementation (libargon2) with a work area of
// our own: each thread that hashes keeps one area (64 MiB, faulted in once) for its
// lifetime and reuses it, wiped after every hash. libsodium maps and unmaps a fresh
// 64 MiB per hash: two thirds of a login's CPU went to faulting in zeroed pages, and
// every unmap interrupts the process's other threads (see README.md, login bulkhead).
#pragma once

#include <string>
#include <string_view>

namespace continuum::auth {

std::string HashPassword(std::string_view password);
// False for a wrong password and for a string that is not an Argon2id v1.3 PHC string
// within sane limits (m <= 1 GiB, t <= 16, p <= 8).
bool VerifyPassword(std::string_view hash, std::string_view password);

}  // namespace continuum::auth
