#include "stubdeps/pharmacy.hpp"

#include "core/error.hpp"
#include "seed/population.hpp"
#include "stubdeps/api.hpp"
#include "stubdeps/instant.hpp"

namespace continuum::stubdeps {

namespace {
constexpr std::string_view kStatusPrefix = "/v1/prescriptions/";
constexpr std::string_view kStatusSuffix = "/fill-status";
}  // namespace

std::string_view PharmacyApi::FillStatus(std::string_view prescription) {
  static constexpr std::string_view kStatuses[] = {"filled", "ready", "in-progress"};
  return kStatuses[StableHash("rx|" + std::string(prescription)) % 3];
}

http::Response PharmacyApi::Handle(const http::Request& req) {
  try {
    std::string_view path = req.path;
    if (path.starts_with(kStatusPrefix) && path.ends_with(kStatusSuffix) &&
        path.size() > kStatusPrefix.size() + kStatusSuffix.size()) {
      if (req.method != "GET") return NoRoute(true, "GET");
      return Status(path.substr(kStatusPrefix.size(),
                                path.size() - kStatusPrefix.size() - kStatusSuffix.size()));
    }
    if (path == "/v1/refills") {
      if (req.method != "POST") return NoRoute(true, "POST");
      return Refill(req);
    }
    return NoRoute(false, "");
  } catch (...) {
    return ErrorFromException(std::current_exception());
  }
}

http::Response PharmacyApi::Status(std::string_view id) {
  if (!ValidId(id))
    throw BadRequest(
        "The prescription id must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-'.");
  if (id.starts_with("missing"))
    throw NotFound("Prescription " + std::string(id) + " is unknown to the pharmacy.");
  // Updated some time in the 30 days before the seed's reference day, stable per id.
  const uint64_t h = StableHash("rx-updated|" + std::string(id));
  const int64_t updated =
      seed::kSeededAtEpochSeconds * 1000 - static_cast<int64_t>(h % (uint64_t{30} * 86400 * 1000));
  return JsonResponse(200, json::object{{"prescription", id},
                                        {"status", FillStatus(id)},
                                        {"updated_at", FormatInstant(updated - updated % 1000)}});
}

http::Response PharmacyApi::Refill(const http::Request& req) {
  const std::string key = IdempotencyKey(req, true);
  json::object body = ParseJsonObject(req, {"prescription", "patient"});
  const std::string prescription = RequireString(body, "prescription", 64);
  const std::string patient = RequireString(body, "patient", 64);
  if (!ValidId(prescription))
    throw BadRequest(
        "\"prescription\" must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-'.");
  return RunIdempotent(keys_, req, key, body, [&] {
    const int64_t now = NowMs();
    const std::string refill_id = "rf_" + Hex64(StableHash("refill|" + key));
    log_.Append(json::object{{"refill_id", refill_id},
                             {"idempotency_key", key},
                             {"prescription", prescription},
                             {"patient", patient}},
                now);
    return JsonResponse(201, json::object{{"refill_id", refill_id},
                                          {"status", "requested"},
                                          {"prescription", prescription},
                                          {"patient", patient},
                                          {"requested_at", FormatInstant(now)}});
  });
}

}  // namespace continuum::stubdeps
