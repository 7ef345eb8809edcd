#include "portal/high/notifications.hpp"

#include <gtest/gtest.h>

namespace continuum::portal::high {
namespace {

TEST(Notifications, PhoneNumbersBecomeE164) {
  EXPECT_EQ(E164("555-555-0123"), "+15555550123");
  EXPECT_EQ(E164("(555) 555-0123"), "+15555550123");
  EXPECT_EQ(E164("+15555550123"), "+15555550123");
  EXPECT_EQ(E164("+44 20 7946 0958"), "+442079460958");
  EXPECT_EQ(E164(""), "");
  EXPECT_EQ(E164("555-0123"), "");
  EXPECT_EQ(E164("call me"), "");
  EXPECT_EQ(E164("555+555"), "");
}

}  // namespace
}  // namespace continuum::portal::high
