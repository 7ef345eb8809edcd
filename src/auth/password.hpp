// Argon2id password hashing (libsodium crypto_pwhash_str_alg, interactive limits).
#pragma once

#include <string>
#include <string_view>

namespace continuum::auth {

std::string HashPassword(std::string_view password);
bool VerifyPassword(std::string_view hash, std::string_view password);

}  // namespace continuum::auth
