#include "http/outcome.hpp"

#include <boost/json.hpp>

#include "core/error.hpp"
#include "core/log.hpp"

namespace continuum::http {

namespace {

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlongs, no
// surrogates, at most U+10FFFF), or 0.
std::size_t Utf8SequenceAt(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  auto cont = [&](std::size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if ((c == 0xE0 && b(1) < 0xA0) || (c == 0xED && b(1) > 0x9F)) return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if ((c == 0xF0 && b(1) < 0x90) || (c == 0xF4 && b(1) > 0x8F)) return 0;
    return 4;
  }
  return 0;
}

}  // namespace

std::string Utf8Safe(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    std::size_t n = Utf8SequenceAt(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

Response OutcomeResponse(int status, std::string_view code, std::string_view diagnostics) {
  // Diagnostics may quote what the client sent (a parameter name, an id), cut at a
  // length: the serializer copies bytes as they are, so invalid UTF-8 would make the
  // body invalid JSON. Found by fuzz/fhir_search_fuzz.cpp.
  boost::json::object issue{{"severity", status >= 500 ? "fatal" : "error"},
                            {"code", code},
                            {"diagnostics", Utf8Safe(diagnostics)}};
  boost::json::object oo{{"resourceType", "OperationOutcome"},
                         {"issue", boost::json::array{std::move(issue)}}};
  Response r;
  r.status = status;
  r.content_type = "application/fhir+json";
  r.body = boost::json::serialize(oo);
  return r;
}

Response ErrorResponse(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const TooManyRequests& x) {
    auto r = OutcomeResponse(x.http_status(), x.code(), x.what());
    r.set_header("Retry-After", std::to_string(x.retry_after_s));
    return r;
  } catch (const Degraded& x) {
    auto r = OutcomeResponse(x.http_status(), x.code(), x.what());
    r.set_header("Retry-After", std::to_string(x.retry_after_s));
    r.set_header("X-Continuum-Degraded", x.mode);
    return r;
  } catch (const Unavailable& x) {
    auto r = OutcomeResponse(x.http_status(), x.code(), x.what());
    r.set_header("Retry-After", std::to_string(x.retry_after_s));
    return r;
  } catch (const Error& x) {
    auto r = OutcomeResponse(x.http_status(), x.code(), x.what());
    if (x.http_status() == 401) r.set_header("WWW-Authenticate", "Bearer realm=\"continuum\"");
    return r;
  } catch (const std::exception& x) {
    log::Error("unhandled error: {}", x.what());
    return OutcomeResponse(500, "exception",
                           "An internal error occurred; it has been logged. Please retry.");
  }
}

}  // namespace continuum::http
