// The SMS API stand-in:
//   POST /v1/messages {"to": "+15555550123", "body": "...", ["from": "+1..."]}
//        [Idempotency-Key] -> 202 {"message_id", "status": "queued", "segments", ...}
// With a key, a retry gets the same answer (200) and the message is sent once.
#pragma once

#include "http/message.hpp"
#include "stubdeps/idempotency.hpp"
#include "stubdeps/received_log.hpp"

namespace continuum::stubdeps {

inline constexpr std::size_t kMaxSmsBody = 1600;

// E.164: '+', a non-zero digit, 7 to 15 digits in all.
bool ValidE164(std::string_view number);
// GSM-7 style segment count: 1 up to 160 characters, else 153 per segment.
int SmsSegments(std::size_t length);

class SmsApi {
 public:
  SmsApi(ReceivedLog& log, IdempotencyStore& keys) : log_(log), keys_(keys) {}
  http::Response Handle(const http::Request& req);

 private:
  http::Response Send(const http::Request& req);

  ReceivedLog& log_;
  IdempotencyStore& keys_;
  uint64_t sent_ = 0;
};

}  // namespace continuum::stubdeps
