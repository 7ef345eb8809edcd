// The request side of the HTTP/1.1 wire, shared by the server's connection loop
// (http/server.cpp) and http::ParseRequestBytes (the fuzz target's entry): the parser's
// limits, the answer to unparseable bytes, the conversion of Beast's message to
// http::Request. Internal to http/: only server.cpp and wire.cpp include it. No
// coroutines here, so the fuzz build (clang 14) compiles it without the server.
#pragma once

#include <boost/beast/http.hpp>
#include <optional>
#include <string>

#include "http/message.hpp"
#include "http/server.hpp"

namespace continuum::http {

inline constexpr std::size_t kHeaderLimit = 16 * 1024;

using BeastRequest = boost::beast::http::request<boost::beast::http::string_body>;
using BeastRequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

void ApplyLimits(BeastRequestParser& parser, const ServerOptions& options);

// The answer to bytes that are not an acceptable HTTP/1.1 request (the connection closes).
Response ParseErrorResponse(const boost::system::error_code& ec, const ServerOptions& options);

// Fills `req` from a parsed message (headers lower-cased, client address, request id,
// path and query); the body moves. Returns the error response when the target is not
// a valid origin-form URL.
std::optional<Response> ToRequest(BeastRequest& breq, const std::string& client,
                                  const ServerOptions& options, Request& req);

}  // namespace continuum::http
