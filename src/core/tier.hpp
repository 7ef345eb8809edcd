// The four feature tiers of the case study. A route declares its tier once, in the
// route table; its pool, concurrency limit, deadline and fallback follow from it.
#pragma once

#include <array>
#include <string_view>

namespace continuum {

enum class Tier { kCritical = 0, kHigh = 1, kMedium = 2, kLow = 3, kOps = 4 };
inline constexpr std::array<Tier, 5> kAllTiers = {Tier::kCritical, Tier::kHigh, Tier::kMedium,
                                                  Tier::kLow, Tier::kOps};

constexpr std::string_view TierName(Tier t) {
  switch (t) {
    case Tier::kCritical:
      return "critical";
    case Tier::kHigh:
      return "high";
    case Tier::kMedium:
      return "medium";
    case Tier::kLow:
      return "low";
    case Tier::kOps:
      return "ops";
  }
  return "unknown";
}

}  // namespace continuum
