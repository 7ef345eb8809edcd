// Bearer tokens: "v1.<base64url payload>.<base64url mac>", the MAC a libsodium
// crypto_auth (HMAC-SHA-512-256) under the cluster key. Any node holding the key
// validates a token without a database round trip. Revocation and idle expiry are
// tracked separately (auth/session_cache).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace continuum::auth {

struct Claims {
  std::string sid;              // session id (random, 128 bits, hex)
  int64_t account_id = 0;
  std::string username;
  std::string role;             // patient | provider | auditor
  std::string patient_id;       // for role patient
  std::string practitioner_id;  // for role provider
  int64_t iat = 0;              // issued at, unix seconds
  int64_t exp = 0;              // absolute expiry, unix seconds
};

using Key = std::array<unsigned char, 32>;

// Reads the key file, creating it (mode 0600, random) if missing.
Key LoadOrCreateKey(const std::string& path);

class TokenSigner {
 public:
  explicit TokenSigner(const Key& key) : key_(key) {}
  std::string Sign(const Claims& claims) const;
  // nullopt if malformed or the MAC does not match. Does not check expiry.
  std::optional<Claims> Verify(std::string_view token) const;

 private:
  Key key_;
};

std::string RandomHex(std::size_t bytes);

}  // namespace continuum::auth
