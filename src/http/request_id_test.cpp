#include "http/request_id.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

namespace continuum::http {
namespace {

// Ids come from a per-thread buffer of random bytes: 24 hex characters each, never the
// same twice, across refills of the buffer and across threads.
TEST(RequestId, NewIdsAreHexAndDistinctAcrossRefillsAndThreads) {
  constexpr int kPerThread = 2000;  // several refills of the 340-id buffer
  std::vector<std::vector<std::string>> got(4);
  std::vector<std::thread> threads;
  for (auto& ids : got)
    threads.emplace_back([&ids] {
      for (int i = 0; i < kPerThread; ++i) ids.push_back(NewRequestId());
    });
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& ids : got)
    for (const auto& id : ids) {
      ASSERT_EQ(id.size(), 24u) << id;
      ASSERT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
      EXPECT_TRUE(SaneRequestId(id));
      all.insert(id);
    }
  EXPECT_EQ(all.size(), got.size() * kPerThread);
}

}  // namespace
}  // namespace continuum::http
