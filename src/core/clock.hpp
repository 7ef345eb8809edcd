// Wall-clock helpers (token and session times are unix seconds).
#pragma once

#include <chrono>
#include <cstdint>

namespace continuum {

inline int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace continuum
