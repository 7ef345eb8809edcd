// Small pieces every JSON stand-in API shares: responses, errors as
// {"error": "<message>", "code": "<machine code>"}, strict body parsing and field
// validation with messages that say what was expected, Idempotency-Key checks, and a
// stable hash for answers that must be deterministic per id.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>

#include "http/message.hpp"
#include "stubdeps/idempotency.hpp"

namespace continuum::stubdeps {

namespace json = boost::json;

http::Response JsonResponse(int status, const json::value& v);
http::Response ErrorJson(int status, std::string_view code, std::string_view message);

// continuum::Error -> ErrorJson with its status; anything else -> 500.
http::Response ErrorFromException(std::exception_ptr e);

// Parses the body as a JSON object with only `allowed` keys (BadRequest otherwise; 415
// when a Content-Type other than JSON is declared).
json::object ParseJsonObject(const http::Request& req,
                             std::initializer_list<std::string_view> allowed);

// A required non-empty string field of at most `max_len` bytes, without control characters.
std::string RequireString(const json::object& o, std::string_view key, std::size_t max_len);

// The Idempotency-Key header: 1..255 printable ASCII characters. Returns "" when absent
// and not required; throws BadRequest when required and absent, or malformed.
std::string IdempotencyKey(const http::Request& req, bool required);

// Runs `execute` at most once per Idempotency-Key (`key` empty: no key, always runs).
// A retry with the same key and the same request gets the first answer again (a 201 or
// 202 becomes 200) with "Idempotent-Replayed: true"; the same key with a different
// request gets 409. `body` is the parsed request body (part of the fingerprint).
http::Response RunIdempotent(IdempotencyStore& store, const http::Request& req,
                             const std::string& key, const json::value& body,
                             const std::function<http::Response()>& execute);

// 404, or 405 with an Allow header when the path exists with other methods.
http::Response NoRoute(bool path_known, std::string_view allowed);

// "1234abcd..." (16 lower-case hex digits).
std::string Hex64(uint64_t v);

// FNV-1a 64: stable across runs and platforms (std::hash is not).
uint64_t StableHash(std::string_view s);

// Path segment ids: 1..64 of [A-Za-z0-9._-].
bool ValidId(std::string_view id);

}  // namespace continuum::stubdeps
