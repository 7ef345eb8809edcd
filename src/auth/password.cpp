#include "auth/password.hpp"

#include <sodium.h>

#include <stdexcept>
#include <string>

#include "auth/sodium.hpp"

namespace continuum::auth {
namespace {

// Longer passwords are refused: Argon2 cost does not depend on the length, but there is
// no reason to accept megabytes from a login form, and a fixed cap keeps the behaviour
// of Hash and Verify identical.
constexpr std::size_t kMaxPasswordBytes = 1024;

}  // namespace

std::string HashPassword(std::string_view password) {
  if (password.size() > kMaxPasswordBytes) {
    throw std::invalid_argument("password is longer than 1024 bytes");
  }
  detail::EnsureSodium();
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(),
                            crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    // The only documented failure is the memory allocation (64 MiB).
    throw std::runtime_error("password hashing failed (out of memory)");
  }
  return std::string(out);
}

bool VerifyPassword(std::string_view hash, std::string_view password) {
  if (password.size() > kMaxPasswordBytes) return false;
  // libsodium reads `hash` as a NUL-terminated string of at most STRBYTES - 1 chars.
  if (hash.empty() || hash.size() >= crypto_pwhash_STRBYTES) return false;
  if (hash.find('\0') != std::string_view::npos) return false;
  try {
    detail::EnsureSodium();
  } catch (...) {
    return false;
  }
  char buf[crypto_pwhash_STRBYTES] = {};
  hash.copy(buf, hash.size());
  // -1 for a wrong password, a malformed string or an allocation failure alike.
  return crypto_pwhash_str_verify(buf, password.data(), password.size()) == 0;
}

}  // namespace continuum::auth
