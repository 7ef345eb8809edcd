// The HTTP/1.1 wire, shared by the server's connection loop (http/server.cpp) and
// http::ParseRequestBytes (the fuzz target's entry): the parser's limits, the answer to
// unparseable bytes, the conversion of Beast's message to http::Request, and a
// response's status line and header fields. Internal to http/: only server.cpp, wire.cpp
// and wire_test.cpp include it. No coroutines here, so the fuzz build (clang 14) compiles
// it without the server.
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

// Appends the status line and header fields of `r` to `out`, ending with the blank line;
// the body follows as it is. The bytes are what Beast's serializer writes for the same
// response (wire_test compares them): Server, Content-Type (unless a 204 without body),
// X-Request-Id, the handler's fields (a later one of the same name replacing the earlier,
// values trimmed of spaces and tabs), Connection ("close" on HTTP/1.1 when the connection
// ends, "keep-alive" on HTTP/1.0 when it stays), then Content-Length (the GET's length
// for a HEAD, whose body server.cpp never sends; none on a 1xx, 204 or 304, where Beast
// wrote "0" and RFC 9110, 8.6, says not to). The framing fields are the server's: a
// handler's Connection, Content-Length or Transfer-Encoding is left out, and a CR, LF or
// NUL in a name or value becomes a space (no field can split the response). Throws
// std::invalid_argument for a body on a 1xx, 204 or 304, as Beast does. Returns whether
// the connection stays open after this response.
bool AppendResponseHead(std::string& out, const Response& r, unsigned version, bool keep_alive,
                        std::string_view request_id);

}  // namespace continuum::http
