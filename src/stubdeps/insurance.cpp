#include "stubdeps/insurance.hpp"

#include "core/error.hpp"
#include "stubdeps/api.hpp"
#include "stubdeps/instant.hpp"

namespace continuum::stubdeps {

bool InsuranceApi::Eligible(std::string_view member_id) {
  if (member_id.starts_with("INELIGIBLE")) return false;
  return StableHash("member|" + std::string(member_id)) % 10 != 0;
}

http::Response InsuranceApi::Handle(const http::Request& req) {
  try {
    if (req.path == "/v1/eligibility") {
      if (req.method != "POST") return NoRoute(true, "POST");
      return Check(req);
    }
    return NoRoute(false, "");
  } catch (...) {
    return ErrorFromException(std::current_exception());
  }
}

http::Response InsuranceApi::Check(const http::Request& req) {
  json::object body = ParseJsonObject(req, {"member_id", "payer", "service"});
  const std::string member = RequireString(body, "member_id", 64);
  const std::string payer = RequireString(body, "payer", 128);
  const std::string service = RequireString(body, "service", 128);
  if (!ValidId(member))
    throw BadRequest("\"member_id\" must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-'.");

  static constexpr std::string_view kPlans[] = {"PPO Gold", "PPO Silver", "HMO Select",
                                                "EPO Standard", "HDHP Bronze"};
  static constexpr int64_t kCopays[] = {0, 1000, 2500, 4000};
  static constexpr int kCoinsurance[] = {0, 10, 20, 30};
  static constexpr int64_t kDeductibles[] = {50000, 150000, 300000, 600000};
  const uint64_t h = StableHash("coverage|" + member);
  const bool eligible = Eligible(member);
  json::object coverage;
  if (eligible) {
    const int64_t deductible = kDeductibles[(h >> 8) % 4];
    coverage = json::object{
        {"status", "active"},
        {"plan", kPlans[h % 5]},
        {"network", (h >> 4) % 7 == 0 ? "out-of-network" : "in-network"},
        {"copay_cents", kCopays[(h >> 12) % 4]},
        {"coinsurance_percent", kCoinsurance[(h >> 16) % 4]},
        {"deductible_cents", deductible},
        {"deductible_remaining_cents",
         static_cast<int64_t>((h >> 20) % static_cast<uint64_t>(deductible + 1)) / 100 * 100},
        {"period", json::object{{"start", "2026-01-01"}, {"end", "2026-12-31"}}}};
  } else {
    coverage =
        json::object{{"status", "inactive"},
                     {"reason", "No active coverage for this member on the date of service."}};
  }
  const int64_t now = NowMs();
  log_.Append(
      json::object{
          {"member_id", member}, {"payer", payer}, {"service", service}, {"eligible", eligible}},
      now);
  return JsonResponse(200, json::object{{"eligible", eligible},
                                        {"member_id", member},
                                        {"payer", payer},
                                        {"service", service},
                                        {"coverage", std::move(coverage)},
                                        {"checked_at", FormatInstant(now)}});
}

}  // namespace continuum::stubdeps
