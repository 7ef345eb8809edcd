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
  std::string sid;  // session id (random, 128 bits, hex)
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
// Format: 64 hex digits (the 32-byte key; either case), optionally followed by one "\n"
// or "\r\n" — so `openssl rand -hex 32 > cluster.key` makes a valid file. A created file
// is written that way (lowercase, with "\n"). Missing parent directories are created
// with mode 0700. Creation is race-free across processes: the file is written and
// fsynced under a temporary name, then published with link() (renameat2 NOREPLACE where
// hard links are unsupported), which never replaces an existing file; a node that loses
// the race reads the winner's key, so nodes starting at once agree. Throws
// std::runtime_error naming the file on a wrong length, a non-hex character or an I/O
// error (never quoting the content).
Key LoadOrCreateKey(const std::string& path);

class TokenSigner {
 public:
  explicit TokenSigner(const Key& key) : key_(key) {}
  // Payload: compact JSON {"sid","aid","sub","role","pat","prac","iat","exp"}.
  // Throws std::invalid_argument if a string claim is not valid UTF-8 or the token would
  // exceed 4096 bytes (Verify's cap).
  std::string Sign(const Claims& claims) const;
  // nullopt if malformed or the MAC does not match. Does not check expiry.
  // Strict: "v1." prefix, exactly two dots, unpadded base64url with canonical trailing
  // bits, MAC checked (constant time) before the JSON is parsed, every claim present
  // with its type; unknown claims are ignored (rolling upgrades); at most 4096 bytes.
  std::optional<Claims> Verify(std::string_view token) const;

 private:
  Key key_;
};

std::string RandomHex(std::size_t bytes);

}  // namespace continuum::auth
