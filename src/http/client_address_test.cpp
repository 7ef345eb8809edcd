#include "http/client_address.hpp"

#include <gtest/gtest.h>

namespace continuum::http {

TEST(ClientAddress, IgnoresTheHeaderFromAnUntrustedPeer) {
  EXPECT_EQ(ClientAddress("203.0.113.9", "10.0.0.1", {"127.0.0.1"}), "203.0.113.9");
  EXPECT_EQ(ClientAddress("127.0.0.1", "", {"127.0.0.1"}), "127.0.0.1");
  EXPECT_EQ(ClientAddress("127.0.0.1", "198.51.100.7", {}), "127.0.0.1");
}

TEST(ClientAddress, TakesTheNearestUntrustedHop) {
  EXPECT_EQ(ClientAddress("127.0.0.1", "198.51.100.7", {"127.0.0.1"}), "198.51.100.7");
  // A client that forges an earlier hop cannot hide behind it.
  EXPECT_EQ(ClientAddress("127.0.0.1", "1.2.3.4, 198.51.100.7", {"127.0.0.1"}), "198.51.100.7");
  // Chained trusted proxies are skipped.
  EXPECT_EQ(ClientAddress("127.0.0.1", "198.51.100.7, 10.0.0.2", {"127.0.0.1", "10.0.0.2"}),
            "198.51.100.7");
  EXPECT_EQ(ClientAddress("127.0.0.1", "2001:db8::1", {"127.0.0.1"}), "2001:db8::1");
}

TEST(ClientAddress, GarbageKeepsTheLastTrustworthyAddress) {
  EXPECT_EQ(ClientAddress("127.0.0.1", "<script>", {"127.0.0.1"}), "127.0.0.1");
  EXPECT_EQ(ClientAddress("127.0.0.1", "x, 198.51.100.7", {"127.0.0.1"}), "198.51.100.7");
}

}  // namespace continuum::http
