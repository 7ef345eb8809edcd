#include "auth/totp.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include <array>
#include <stdexcept>
#include <vector>

#include "auth/sodium.hpp"

namespace continuum::auth {
namespace {

constexpr int64_t kStepSeconds = 30;
constexpr int kDigits = 6;
constexpr std::size_t kSecretBytes = 20;     // 160 bits, as RFC 4226 recommends
constexpr std::size_t kMinSecretBytes = 16;  // RFC 4226 R6: at least 128 bits
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

std::string Base32Encode(const unsigned char* data, std::size_t len) {
  std::string out;
  out.reserve((len * 8 + 4) / 5);
  uint32_t buf = 0;
  int bits = 0;
  for (std::size_t i = 0; i < len; ++i) {
    buf = (buf << 8) | data[i];
    bits += 8;
    while (bits >= 5) {
      out += kAlphabet[(buf >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += kAlphabet[(buf << (5 - bits)) & 31];
  return out;
}

// RFC 4648 base32 without padding, either case. False on any other character or on a
// length no encoder produces (1, 3 or 6 characters past a multiple of 8).
bool Base32Decode(std::string_view in, std::vector<unsigned char>& out) {
  switch (in.size() % 8) {
    case 1:
    case 3:
    case 6:
      return false;
    default:
      break;
  }
  out.clear();
  out.reserve(in.size() * 5 / 8);
  uint32_t buf = 0;
  int bits = 0;
  for (char ch : in) {
    unsigned v;
    if (ch >= 'A' && ch <= 'Z')
      v = static_cast<unsigned>(ch - 'A');
    else if (ch >= 'a' && ch <= 'z')
      v = static_cast<unsigned>(ch - 'a');
    else if (ch >= '2' && ch <= '7')
      v = static_cast<unsigned>(ch - '2' + 26);
    else
      return false;
    buf = (buf << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out.push_back(static_cast<unsigned char>(buf >> (bits - 8)));
      bits -= 8;
    }
  }
  return true;
}

bool DecodeSecret(std::string_view base32_secret, std::vector<unsigned char>& key) {
  return Base32Decode(base32_secret, key) && key.size() >= kMinSecretBytes;
}

// RFC 4226 HOTP value for `counter`, as the 6 ASCII digits.
std::array<char, kDigits> Hotp(const std::vector<unsigned char>& key, uint64_t counter) {
  unsigned char msg[8];
  for (int i = 7; i >= 0; --i) {
    msg[i] = static_cast<unsigned char>(counter & 0xff);
    counter >>= 8;
  }
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (!HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()), msg, sizeof msg, mac, &mac_len) ||
      mac_len != 20) {
    throw std::runtime_error("HMAC-SHA1 failed");
  }
  int off = mac[19] & 0x0f;
  uint32_t bin = (static_cast<uint32_t>(mac[off] & 0x7f) << 24) |
                 (static_cast<uint32_t>(mac[off + 1]) << 16) |
                 (static_cast<uint32_t>(mac[off + 2]) << 8) | static_cast<uint32_t>(mac[off + 3]);
  uint32_t value = bin % 1000000;
  std::array<char, kDigits> digits;
  for (int i = kDigits - 1; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  OPENSSL_cleanse(mac, sizeof mac);
  return digits;
}

}  // namespace

std::string NewTotpSecret() {
  detail::EnsureSodium();
  unsigned char key[kSecretBytes];
  randombytes_buf(key, sizeof key);
  std::string s = Base32Encode(key, sizeof key);
  sodium_memzero(key, sizeof key);
  return s;
}

std::string TotpCode(std::string_view base32_secret, int64_t unix_time) {
  if (unix_time < 0) throw std::invalid_argument("TOTP time is negative");
  std::vector<unsigned char> key;
  if (!DecodeSecret(base32_secret, key)) {
    throw std::invalid_argument("TOTP secret is not base32 of at least 128 bits");
  }
  auto d = Hotp(key, static_cast<uint64_t>(unix_time / kStepSeconds));
  OPENSSL_cleanse(key.data(), key.size());
  return std::string(d.data(), d.size());
}

std::optional<int64_t> MatchTotpStep(std::string_view base32_secret, std::string_view code,
                                     int64_t unix_time) {
  if (unix_time < 0 || code.size() != kDigits) return std::nullopt;
  for (char ch : code) {
    if (ch < '0' || ch > '9') return std::nullopt;
  }
  std::vector<unsigned char> key;
  if (!DecodeSecret(base32_secret, key)) return std::nullopt;
  const int64_t step = unix_time / kStepSeconds;
  // Every candidate is computed and compared, without an early exit.
  int64_t matched = -1;
  for (int64_t s = step - 1; s <= step + 1; ++s) {
    if (s < 0) continue;
    auto d = Hotp(key, static_cast<uint64_t>(s));
    bool eq = CRYPTO_memcmp(d.data(), code.data(), kDigits) == 0;
    if (eq) matched = s;  // the latest matching step, the conservative one for replay checks
  }
  OPENSSL_cleanse(key.data(), key.size());
  if (matched < 0) return std::nullopt;
  return matched;
}

bool VerifyTotp(std::string_view base32_secret, std::string_view code, int64_t unix_time) {
  return MatchTotpStep(base32_secret, code, unix_time).has_value();
}

}  // namespace continuum::auth
