// RFC 6238 TOTP (HMAC-SHA1, 30 s steps, 6 digits) for providers' second factor.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace continuum::auth {

std::string NewTotpSecret();  // base32, 160 bits
std::string TotpCode(std::string_view base32_secret, int64_t unix_time);
// Accepts the code of the current step and one step either side.
bool VerifyTotp(std::string_view base32_secret, std::string_view code, int64_t unix_time);

}  // namespace continuum::auth
