#include "stubdeps/fault.hpp"

#include <boost/json.hpp>

#include "core/error.hpp"

namespace continuum::stubdeps {
namespace json = boost::json;

namespace {
constexpr std::array<FaultMode, 5> kModes = {FaultMode::kOk, FaultMode::kError, FaultMode::kTimeout,
                                             FaultMode::kSlow, FaultMode::kRefuse};
}  // namespace

std::string_view ModeName(FaultMode m) {
  switch (m) {
    case FaultMode::kOk:
      return "ok";
    case FaultMode::kError:
      return "error";
    case FaultMode::kTimeout:
      return "timeout";
    case FaultMode::kSlow:
      return "slow";
    case FaultMode::kRefuse:
      return "refuse";
  }
  return "?";
}

std::optional<FaultMode> ParseMode(std::string_view name) {
  for (FaultMode m : kModes)
    if (ModeName(m) == name) return m;
  return std::nullopt;
}

std::string ModeList() {
  std::string out;
  for (FaultMode m : kModes) {
    if (!out.empty()) out += ", ";
    out += ModeName(m);
  }
  return out;
}

FaultChange ParseFaultChange(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) throw BadRequest("The body is not valid JSON: " + ec.message() + ".");
  if (!v.is_object())
    throw BadRequest(
        "The body must be a JSON object like {\"mode\": \"error\"}; modes: " + ModeList() + ".");
  const json::object& o = v.as_object();
  for (const auto& kv : o)
    if (kv.key() != "mode" && kv.key() != "delay_ms")
      throw BadRequest("Unknown field '" + std::string(kv.key()) +
                       "'. Allowed fields: mode, delay_ms.");
  const json::value* mode = o.if_contains("mode");
  if (!mode || !mode->is_string())
    throw BadRequest("\"mode\" is required and must be one of: " + ModeList() + ".");
  auto m = ParseMode(mode->as_string());
  if (!m)
    throw BadRequest("Unknown mode '" + std::string(mode->as_string()) +
                     "'. Allowed modes: " + ModeList() + ".");
  FaultChange change{*m, kDefaultDelayMs};
  if (const json::value* d = o.if_contains("delay_ms")) {
    if (!d->is_int64() || d->as_int64() < 0 || d->as_int64() > kMaxDelayMs)
      throw BadRequest("\"delay_ms\" must be a whole number of milliseconds from 0 to " +
                       std::to_string(kMaxDelayMs) + ".");
    change.delay_ms = static_cast<int>(d->as_int64());
  }
  return change;
}

ListenerAction FaultBoard::Set(Dependency d, const FaultChange& change) {
  FaultState& s = states_[Index(d)];
  const bool was_refusing = s.mode == FaultMode::kRefuse;
  const bool refusing = change.mode == FaultMode::kRefuse;
  s.mode = change.mode;
  s.delay_ms = change.delay_ms;
  ++s.changes;
  if (refusing && !was_refusing) return ListenerAction::kClose;
  if (!refusing && was_refusing) return ListenerAction::kOpen;
  return ListenerAction::kNone;
}

}  // namespace continuum::stubdeps
