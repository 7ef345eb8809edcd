// A value that must never reach a log line (connection strings, keys).
#pragma once

#include <ostream>
#include <string>

namespace continuum {

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string v) : value_(std::move(v)) {}
  const std::string& reveal() const { return value_; }
  bool empty() const { return value_.empty(); }
  friend std::ostream& operator<<(std::ostream& os, const Secret&) { return os << "[secret]"; }

 private:
  std::string value_;
};

}  // namespace continuum
