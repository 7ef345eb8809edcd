#include "stubdeps/api.hpp"

#include <cctype>

#include "core/error.hpp"
#include "core/log.hpp"

namespace continuum::stubdeps {

http::Response JsonResponse(int status, const json::value& v) {
  http::Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = json::serialize(v);
  return r;
}

http::Response ErrorJson(int status, std::string_view code, std::string_view message) {
  return JsonResponse(status, json::object{{"error", message}, {"code", code}});
}

http::Response ErrorFromException(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const Error& x) {
    std::string code = x.http_status() == 400   ? "invalid_request"
                       : x.http_status() == 404 ? "not_found"
                       : x.http_status() == 405 ? "method_not_allowed"
                       : x.http_status() == 409 ? "conflict"
                       : x.http_status() == 415 ? "unsupported_media_type"
                                                : x.code();
    return ErrorJson(x.http_status(), code, x.what());
  } catch (const std::exception& x) {
    log::Error("stub-deps: unhandled error: {}", x.what());
    return ErrorJson(500, "internal_error", "An internal error occurred in the stand-in.");
  }
}

json::object ParseJsonObject(const http::Request& req,
                             std::initializer_list<std::string_view> allowed) {
  std::string_view ct = req.header("content-type");
  std::string_view media = ct.substr(0, ct.find(';'));
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  if (!media.empty() && media != "application/json" && !media.ends_with("+json"))
    throw Error(415, "unsupported_media_type",
                "The body must be JSON: send Content-Type: application/json.");
  boost::system::error_code ec;
  json::value v = json::parse(req.body, ec);
  if (ec) throw BadRequest("The body is not valid JSON: " + ec.message() + ".");
  if (!v.is_object()) throw BadRequest("The body must be a JSON object.");
  for (const auto& kv : v.as_object()) {
    bool known = false;
    for (auto a : allowed) known = known || a == kv.key();
    if (!known) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      throw BadRequest("Unknown field '" + std::string(kv.key()).substr(0, 64) +
                       "'. Allowed fields: " + list + ".");
    }
  }
  return std::move(v.as_object());
}

std::string RequireString(const json::object& o, std::string_view key, std::size_t max_len) {
  const json::value* v = o.if_contains(key);
  const std::string what = "\"" + std::string(key) + "\"";
  if (!v) throw BadRequest(what + " is required.");
  if (!v->is_string()) throw BadRequest(what + " must be a string.");
  std::string_view s = v->as_string();
  if (s.empty()) throw BadRequest(what + " must not be empty.");
  if (s.size() > max_len)
    throw BadRequest(what + " must be at most " + std::to_string(max_len) + " bytes long.");
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\r' && c != '\t')
      throw BadRequest(what + " must not contain control characters.");
  return std::string(s);
}

std::string IdempotencyKey(const http::Request& req, bool required) {
  if (!req.has_header("idempotency-key")) {
    if (required)
      throw BadRequest(
          "The Idempotency-Key header is required: send a unique key per operation (e.g. a "
          "UUID) and the same key when you retry it.");
    return "";
  }
  std::string_view k = req.header("idempotency-key");
  if (k.empty() || k.size() > 255)
    throw BadRequest("The Idempotency-Key header must be 1 to 255 characters long.");
  for (char c : k)
    if (c < 0x21 || c > 0x7e)
      throw BadRequest("The Idempotency-Key header must be printable ASCII without spaces.");
  return std::string(k);
}

http::Response RunIdempotent(IdempotencyStore& store, const http::Request& req,
                             const std::string& key, const json::value& body,
                             const std::function<http::Response()>& execute) {
  if (key.empty()) return execute();
  std::string fp = Fingerprint(req.method, req.path, body);
  auto found = store.Find(key, fp);
  if (found.outcome == IdempotencyStore::Outcome::kConflict)
    return ErrorJson(409, "idempotency_key_reused",
                     "This Idempotency-Key was already used with a different request; use a new "
                     "key for a new operation.");
  if (found.outcome == IdempotencyStore::Outcome::kReplay) {
    http::Response r;
    const int s = found.response->status;
    r.status = s == 201 || s == 202 ? 200 : s;
    r.content_type = "application/json";
    r.body = found.response->body;
    r.set_header("Idempotent-Replayed", "true");
    return r;
  }
  http::Response r = execute();
  // Server errors are not remembered: a retry may succeed.
  if (r.status < 500) store.Remember(key, std::move(fp), StoredResponse{r.status, r.body});
  return r;
}

http::Response NoRoute(bool path_known, std::string_view allowed) {
  if (!path_known) return ErrorJson(404, "not_found", "No such endpoint.");
  auto r = ErrorJson(405, "method_not_allowed",
                     "Method not allowed here; allowed: " + std::string(allowed) + ".");
  r.set_header("Allow", std::string(allowed));
  return r;
}

std::string Hex64(uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) out[i] = kHex[v & 15];
  return out;
}

uint64_t StableHash(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  // FNV's low bits are weak for short keys: finish with a mix.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

bool ValidId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return false;
  return true;
}

}  // namespace continuum::stubdeps
