// Fuzz target: bearer tokens (auth::TokenSigner). The first byte picks the mode:
//   0  the bytes as a token, as a client sends it in Authorization: Bearer;
//   1  the bytes as a token's payload, correctly MACed, so the claims parser behind the
//      MAC check is reached (a key leak or a signer bug must not become a crash);
//   2  claims built from the bytes (fields split at NUL): what Sign issues, Verify
//      accepts unchanged, and no single changed character of the token is accepted.
#include <sodium.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "auth/token.hpp"

using continuum::auth::Claims;
using continuum::auth::Key;
using continuum::auth::TokenSigner;

namespace {

[[noreturn]] void Broken(const char* what) {
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

const TokenSigner& Signer() {
  static const Key key = [] {
    Key k{};
    for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<unsigned char>(i * 7 + 1);
    return k;
  }();
  static const TokenSigner signer(key);
  return signer;
}

std::string B64(const unsigned char* p, std::size_t n) {
  constexpr int v = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_encoded_len(n, v), '\0');
  sodium_bin2base64(out.data(), out.size(), p, n, v);
  out.resize(out.size() - 1);
  return out;
}

std::string SignedToken(std::string_view payload) {
  Key k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<unsigned char>(i * 7 + 1);
  unsigned char mac[crypto_auth_BYTES];
  auto* p = reinterpret_cast<const unsigned char*>(payload.data());
  crypto_auth(mac, p, payload.size(), k.data());
  return "v1." + B64(p, payload.size()) + "." + B64(mac, sizeof mac);
}

bool Same(const Claims& a, const Claims& b) {
  return a.sid == b.sid && a.account_id == b.account_id && a.username == b.username &&
         a.role == b.role && a.patient_id == b.patient_id &&
         a.practitioner_id == b.practitioner_id && a.iat == b.iat && a.exp == b.exp;
}

// Sign, then Verify must give the same claims back and refuse any one-character change.
void RoundTrip(const Claims& c, std::size_t flip_at, unsigned char flip_to) {
  std::string token;
  try {
    token = Signer().Sign(c);
  } catch (const std::invalid_argument&) {
    return;  // invalid UTF-8 or too long: refused at issue, as documented
  }
  auto back = Signer().Verify(token);
  if (!back) Broken("a token just signed is refused");
  if (!Same(*back, c)) Broken("claims changed in a sign/verify round trip");
  std::string bad = token;
  std::size_t at = flip_at % bad.size();
  if (bad[at] == static_cast<char>(flip_to)) return;
  bad[at] = static_cast<char>(flip_to);
  if (Signer().Verify(bad)) {
    std::fprintf(stderr, "token:   %s\nchanged: %s (at %zu)\n", token.c_str(), bad.c_str(), at);
    Broken("a token with a changed character is accepted");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) { return sodium_init() < 0 ? 1 : 0; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 3) {
    case 0:
      (void)Signer().Verify(rest);
      break;
    case 1: {
      auto c = Signer().Verify(SignedToken(rest));
      if (c) RoundTrip(*c, size, data[0]);
      break;
    }
    default: {
      std::vector<std::string> f;
      std::size_t start = 0;
      for (std::size_t i = 0; i <= rest.size() && f.size() < 6; ++i)
        if (i == rest.size() || rest[i] == '\0') {
          f.emplace_back(rest.substr(start, i - start));
          start = i + 1;
        }
      f.resize(6);
      Claims c;
      c.sid = f[0];
      c.username = f[1];
      c.role = f[2];
      c.patient_id = f[3];
      c.practitioner_id = f[4];
      uint64_t n = 0;  // unsigned: wraps, no overflow
      for (char ch : f[5]) n = n * 31 + static_cast<unsigned char>(ch);
      c.account_id = static_cast<int64_t>(n);
      c.iat = static_cast<int64_t>(~n);
      c.exp = static_cast<int64_t>(n ^ 0x5555);
      RoundTrip(c, static_cast<std::size_t>(n), static_cast<unsigned char>(data[0] ^ size));
    }
  }
  return 0;
}
