// Token spellings: one token, one string (fuzz/token_fuzz.cpp found the gap).
#include "auth/token.hpp"

#include <gtest/gtest.h>

#include <string>

namespace continuum::auth {
namespace {

Claims Sample() {
  Claims c;
  c.sid = "00112233445566778899aabbccddeeff";
  c.account_id = 42;
  c.username = "demo-provider";
  c.role = "provider";
  c.practitioner_id = "7";
  c.iat = 1764667200;
  c.exp = 1764670800;
  return c;
}

// libsodium 1.0.18 decodes any byte 0x80-0xFF where base64url has '_': a token with a
// '_' had 128 other spellings that verified (regression input:
// fuzz/corpus/token/regress-high-byte-as-underscore).
TEST(TokenSpelling, HighBytesAreNotUnderscore) {
  Key key{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<unsigned char>(i + 3);
  TokenSigner signer(key);
  int tried = 0;
  for (int64_t aid = 1; aid < 400 && tried < 3; ++aid) {
    Claims c = Sample();
    c.account_id = aid;
    std::string t = signer.Sign(c);
    ASSERT_TRUE(signer.Verify(t));
    for (std::size_t at = 0; at < t.size(); ++at) {
      if (t[at] != '_') continue;
      ++tried;
      for (int b : {0x80, 0xC1, 0xDF, 0xFF}) {
        std::string bad = t;
        bad[at] = static_cast<char>(b);
        EXPECT_FALSE(signer.Verify(bad)) << "byte 0x" << std::hex << b << " at " << std::dec << at;
      }
    }
  }
  ASSERT_GT(tried, 0) << "no token with '_' among the samples";
}

TEST(TokenSpelling, NonAlphabetBytesAreRefused) {
  Key key{};
  TokenSigner signer(key);
  std::string t = signer.Sign(Sample());
  for (char ch : {'+', '/', '=', ' ', '\t', '\0'}) {
    std::string bad = t;
    bad.insert(bad.size() - 2, 1, ch);
    EXPECT_FALSE(signer.Verify(bad)) << static_cast<int>(ch);
  }
}

}  // namespace
}  // namespace continuum::auth
