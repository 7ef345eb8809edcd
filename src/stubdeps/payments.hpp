// The payment processor stand-in:
//   POST /v1/charges  {"amount_cents": int > 0, "currency": "USD", "reference": "...",
//                      ["description": "..."]}  with a required Idempotency-Key
//     -> 201 {"charge_id", "status": "succeeded", ...}
// A retry with the same key returns the identical answer (200) and charges nothing;
// the same key with a different body is a 409. Declines on purpose, so a portal can
// show one: amount_cents 402, or a reference starting with "decline", get
// 402 {"code": "card_declined"}.
#pragma once

#include "http/message.hpp"
#include "stubdeps/idempotency.hpp"
#include "stubdeps/received_log.hpp"

namespace continuum::stubdeps {

inline constexpr int64_t kMaxChargeCents = 100'000'000;  // $1,000,000
inline constexpr int64_t kDeclinedAmountCents = 402;

class PaymentsApi {
 public:
  PaymentsApi(ReceivedLog& log, IdempotencyStore& keys) : log_(log), keys_(keys) {}
  http::Response Handle(const http::Request& req);

 private:
  http::Response Charge(const http::Request& req);

  ReceivedLog& log_;
  IdempotencyStore& keys_;
};

}  // namespace continuum::stubdeps
