#include "stubdeps/sms.hpp"

#include "core/error.hpp"
#include "stubdeps/api.hpp"
#include "stubdeps/instant.hpp"

namespace continuum::stubdeps {

bool ValidE164(std::string_view n) {
  if (n.size() < 8 || n.size() > 16 || n[0] != '+' || n[1] == '0') return false;
  for (std::size_t i = 1; i < n.size(); ++i)
    if (n[i] < '0' || n[i] > '9') return false;
  return true;
}

int SmsSegments(std::size_t length) {
  if (length <= 160) return 1;
  return static_cast<int>((length + 152) / 153);
}

http::Response SmsApi::Handle(const http::Request& req) {
  try {
    if (req.path == "/v1/messages") {
      if (req.method != "POST") return NoRoute(true, "POST");
      return Send(req);
    }
    return NoRoute(false, "");
  } catch (...) {
    return ErrorFromException(std::current_exception());
  }
}

http::Response SmsApi::Send(const http::Request& req) {
  const std::string key = IdempotencyKey(req, false);
  json::object body = ParseJsonObject(req, {"to", "body", "from"});
  const std::string to = RequireString(body, "to", 16);
  if (!ValidE164(to))
    throw BadRequest("\"to\" must be an E.164 phone number such as +15555550123.");
  const std::string text = RequireString(body, "body", kMaxSmsBody);
  std::string from = "+15555550100";
  if (body.contains("from")) {
    from = RequireString(body, "from", 16);
    if (!ValidE164(from))
      throw BadRequest("\"from\" must be an E.164 phone number such as +15555550100.");
  }
  // Every call is logged, replays included ("replay": true: answered from the stored
  // response, nothing sent), so a test can tell what the portal sent from what went out.
  bool executed = false;
  http::Response resp = RunIdempotent(keys_, req, key, body, [&] {
    executed = true;
    const int64_t now = NowMs();
    const uint64_t n = ++sent_;
    const std::string id =
        "SM" +
        Hex64(StableHash(key.empty() ? "sms-seq|" + std::to_string(n) + "|" + std::to_string(now)
                                     : "sms|" + key));
    const int segments = SmsSegments(text.size());
    json::object entry{{"message_id", id},     {"to", to},       {"from", from}, {"body", text},
                       {"segments", segments}, {"replay", false}};
    if (!key.empty()) entry["idempotency_key"] = key;
    log_.Append(std::move(entry), now);
    return JsonResponse(202, json::object{{"message_id", id},
                                          {"status", "queued"},
                                          {"to", to},
                                          {"from", from},
                                          {"segments", segments},
                                          {"created_at", FormatInstant(now)}});
  });
  if (!executed) {
    json::object entry{{"to", to}, {"http_status", resp.status}, {"replay", true}};
    if (!key.empty()) entry["idempotency_key"] = key;
    log_.Append(std::move(entry), NowMs());
  }
  return resp;
}

}  // namespace continuum::stubdeps
