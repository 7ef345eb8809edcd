// Fault modes of the stand-ins, switchable at run time through the admin API.
//
//   ok       normal answers
//   error    HTTP 503 (SMTP: 451 4.3.0 to MAIL FROM)
//   timeout  accept, read the request, never answer (the connection is held until the
//            client gives up, at most kHoldLimit)
//   slow     answer correctly after delay_ms
//   refuse   the listening socket is closed (connection refused) and open connections
//            are dropped, until the mode changes again
//
// FaultBoard is plain state (one I/O thread owns it); Set() reports what the
// dependency's listener has to do, so the transitions are testable without sockets.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "stubdeps/dependency.hpp"

namespace continuum::stubdeps {

enum class FaultMode { kOk, kError, kTimeout, kSlow, kRefuse };

inline constexpr int kDefaultDelayMs = 2000;
inline constexpr int kMaxDelayMs = 600000;
// How long a connection in timeout mode is held before the stand-in gives up on it.
inline constexpr std::chrono::seconds kHoldLimit{120};

std::string_view ModeName(FaultMode m);
std::optional<FaultMode> ParseMode(std::string_view name);
// "ok, error, timeout, slow, refuse": for error messages.
std::string ModeList();

struct FaultState {
  FaultMode mode = FaultMode::kOk;
  int delay_ms = kDefaultDelayMs;  // used by slow
  uint64_t changes = 0;            // how many times it was set
};

// A validated PUT /admin/faults/{dependency} body.
struct FaultChange {
  FaultMode mode = FaultMode::kOk;
  int delay_ms = kDefaultDelayMs;
};

// Parses {"mode": "...", "delay_ms": N}. Throws BadRequest (core/error.hpp) with a
// message naming the allowed values.
FaultChange ParseFaultChange(std::string_view body);

enum class ListenerAction { kNone, kOpen, kClose };

class FaultBoard {
 public:
  [[nodiscard]] const FaultState& Get(Dependency d) const { return states_[Index(d)]; }
  // Applies `change`; returns kClose when entering refuse, kOpen when leaving it.
  ListenerAction Set(Dependency d, const FaultChange& change);

 private:
  std::array<FaultState, kAllDependencies.size()> states_{};
};

}  // namespace continuum::stubdeps
