// RFC 6238 TOTP (HMAC-SHA1, 30 s steps, 6 digits) for providers' second factor.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace continuum::auth {

std::string NewTotpSecret();  // base32, 160 bits
std::string TotpCode(std::string_view base32_secret, int64_t unix_time);
// Accepts the code of the current step and one step either side.
// Secret: RFC 4648 base32, no padding, either case, at least 128 bits (else TotpCode
// throws std::invalid_argument and the checks below fail). Code: exactly 6 ASCII digits.
bool VerifyTotp(std::string_view base32_secret, std::string_view code, int64_t unix_time);
// As VerifyTotp, but returns the matched time step (unix_time / 30, +-1). RFC 6238 §5.2
// asks the verifier to refuse a second use of the same code: the login flow stores the
// last accepted step per account and rejects a step <= it.
std::optional<int64_t> MatchTotpStep(std::string_view base32_secret, std::string_view code,
                                     int64_t unix_time);

}  // namespace continuum::auth
