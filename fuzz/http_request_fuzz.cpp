// Fuzz target: the HTTP/1.1 request head and body as a connection reads them
// (http::ParseRequestBytes: Beast's parser with the server's 16 KiB head limit and body
// limit, then the conversion to http::Request: lower-cased header names, X-Forwarded-For
// behind a trusted proxy, X-Request-Id, origin-form target, query parameters).
// The first byte picks the options; the rest is the bytes a client sent.
#include <sodium.h>

#include <boost/json.hpp>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/server.hpp"

using continuum::http::ParseRequestBytes;
using continuum::http::ServerOptions;

namespace {

[[noreturn]] void Broken(const char* what) {
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) { return sodium_init() < 0 ? 1 : 0; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  ServerOptions opts;
  opts.body_limit = (data[0] & 1) ? 64 : 65536;
  if (data[0] & 2) opts.trusted_proxies = {"127.0.0.1", "10.0.0.0/8", "::1"};
  std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  auto r = ParseRequestBytes(bytes, opts);
  if (r.request && r.error) Broken("both a request and an error");
  if (r.error) {
    int s = r.error->status;
    if (s != 400 && s != 413 && s != 431) Broken("parse error status not 400/413/431");
    // Framing errors close the connection; a bad target in a well-framed request may not.
    if (s != 400 && !r.error->close) Broken("413/431 keeps the connection");
    boost::system::error_code ec;
    (void)boost::json::parse(r.error->body, ec);
    if (ec) Broken("an error response is not valid JSON");
  }
  if (r.request) {
    const auto& q = *r.request;
    if (r.consumed > bytes.size()) Broken("consumed more than given");
    if (q.body.size() > opts.body_limit) Broken("body over the limit");
    if (q.method.empty()) Broken("empty method");
    if (q.request_id.empty() || q.request_id.size() > 128) Broken("bad request id");
    if (q.client_address.empty()) Broken("no client address");
    for (const auto& [k, v] : q.headers)
      for (char c : k)
        if (std::isupper(static_cast<unsigned char>(c))) Broken("header name not lower-cased");
    if (q.path.empty() || q.path[0] != '/') Broken("path not absolute");
  }
  return 0;
}
