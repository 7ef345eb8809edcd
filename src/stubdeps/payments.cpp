#include "stubdeps/payments.hpp"

#include "core/error.hpp"
#include "stubdeps/api.hpp"
#include "stubdeps/instant.hpp"

namespace continuum::stubdeps {

http::Response PaymentsApi::Handle(const http::Request& req) {
  try {
    if (req.path == "/v1/charges") {
      if (req.method == "POST") return Charge(req);
      return NoRoute(true, "POST");
    }
    return NoRoute(false, "");
  } catch (...) {
    return ErrorFromException(std::current_exception());
  }
}

http::Response PaymentsApi::Charge(const http::Request& req) {
  const std::string key = IdempotencyKey(req, true);
  json::object body =
      ParseJsonObject(req, {"amount_cents", "currency", "reference", "description"});
  const json::value* amount = body.if_contains("amount_cents");
  if (!amount) throw BadRequest("\"amount_cents\" is required (a whole number of cents > 0).");
  if (!amount->is_int64() || amount->as_int64() <= 0 || amount->as_int64() > kMaxChargeCents)
    throw BadRequest("\"amount_cents\" must be a whole number of cents from 1 to " +
                     std::to_string(kMaxChargeCents) + ".");
  const std::string currency = RequireString(body, "currency", 3);
  if (currency != "USD")
    throw BadRequest("\"currency\" must be \"USD\" (the only currency this processor takes).");
  const std::string reference = RequireString(body, "reference", 128);
  if (body.contains("description")) RequireString(body, "description", 500);

  // Every call is logged, replays included ("replay": true, answered from the stored
  // response without charging), so a test can tell what the portal sent from what the
  // processor did.
  bool executed = false;
  http::Response resp = RunIdempotent(keys_, req, key, body, [&] {
    executed = true;
    const int64_t now = NowMs();
    const int64_t cents = amount->as_int64();
    const std::string charge_id = "ch_" + Hex64(StableHash("charge|" + key));
    const bool declined = cents == kDeclinedAmountCents || reference.starts_with("decline");
    log_.Append(json::object{{"charge_id", charge_id},
                             {"idempotency_key", key},
                             {"amount_cents", cents},
                             {"currency", currency},
                             {"reference", reference},
                             {"status", declined ? "failed" : "succeeded"},
                             {"replay", false}},
                now);
    if (declined) {
      return JsonResponse(402, json::object{{"error", "The card was declined."},
                                            {"code", "card_declined"},
                                            {"decline_code", "generic_decline"},
                                            {"charge_id", charge_id},
                                            {"status", "failed"}});
    }
    return JsonResponse(201, json::object{{"charge_id", charge_id},
                                          {"object", "charge"},
                                          {"status", "succeeded"},
                                          {"amount_cents", cents},
                                          {"currency", currency},
                                          {"reference", reference},
                                          {"created_at", FormatInstant(now)}});
  });
  if (!executed)
    log_.Append(json::object{{"idempotency_key", key},
                             {"amount_cents", amount->as_int64()},
                             {"reference", reference},
                             {"http_status", resp.status},
                             {"replay", true}},
                NowMs());
  return resp;
}

}  // namespace continuum::stubdeps
