// The external dependencies the stand-ins imitate, their names on the admin API and
// their ports relative to --base-port (admin = base, ehr = base+1, ..., smtp = base+25).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace continuum::stubdeps {

enum class Dependency { kEhr, kPharmacy, kInsurance, kPayments, kSms, kSmtp };

inline constexpr std::array<Dependency, 6> kAllDependencies = {
    Dependency::kEhr,      Dependency::kPharmacy, Dependency::kInsurance,
    Dependency::kPayments, Dependency::kSms,      Dependency::kSmtp};

inline constexpr std::string_view Name(Dependency d) {
  switch (d) {
    case Dependency::kEhr:
      return "ehr";
    case Dependency::kPharmacy:
      return "pharmacy";
    case Dependency::kInsurance:
      return "insurance";
    case Dependency::kPayments:
      return "payments";
    case Dependency::kSms:
      return "sms";
    case Dependency::kSmtp:
      return "smtp";
  }
  return "?";
}

// Port offset from --base-port. 25 for SMTP, so that its port ends like the real one's
// when the base is a round number.
inline constexpr uint16_t PortOffset(Dependency d) {
  switch (d) {
    case Dependency::kEhr:
      return 1;
    case Dependency::kPharmacy:
      return 2;
    case Dependency::kInsurance:
      return 3;
    case Dependency::kPayments:
      return 4;
    case Dependency::kSms:
      return 5;
    case Dependency::kSmtp:
      return 25;
  }
  return 0;
}
inline constexpr uint16_t kMaxPortOffset = 25;

inline constexpr std::size_t Index(Dependency d) { return static_cast<std::size_t>(d); }

inline std::optional<Dependency> ParseDependency(std::string_view name) {
  for (Dependency d : kAllDependencies)
    if (Name(d) == name) return d;
  return std::nullopt;
}

// "ehr, pharmacy, insurance, payments, sms, smtp": for error messages.
inline std::string DependencyList() {
  std::string out;
  for (Dependency d : kAllDependencies) {
    if (!out.empty()) out += ", ";
    out += Name(d);
  }
  return out;
}

}  // namespace continuum::stubdeps
