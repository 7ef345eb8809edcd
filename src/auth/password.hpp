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

// How much work a hash costs. kInteractive is for secrets people choose (every account a
// person logs in with): memory-hard, so that guessing a weak password from a stolen hash
// costs 64 MiB and two passes a guess. kMachineSecret is for secrets a machine generated
// with at least 128 random bits (the prober's synthetic accounts, which log in every few
// seconds from every vantage): no amount of hashing makes such a secret easier or harder
// to guess, so it gets Argon2id at 2 MiB and one pass (about 1/60 of the work) instead of
// a fifth of a core. Callers must enforce the entropy (synthetic-accounts refuses
// passwords shorter than 32 characters). Both verify through VerifyPassword.
enum class HashCost { kInteractive, kMachineSecret };

std::string HashPassword(std::string_view password, HashCost cost = HashCost::kInteractive);
// True when `hash` is an Argon2id string made at `cost`'s parameters.
bool HashHasCost(std::string_view hash, HashCost cost);
// False for a wrong password and for a string that is not an Argon2id v1.3 PHC string
// within sane limits (m <= 1 GiB, t <= 16, p <= 8).
bool VerifyPassword(std::string_view hash, std::string_view password);

}  // namespace continuum::auth
