#include "http/wire.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/url/parse.hpp>
#include <cctype>

#include "http/client_address.hpp"
#include "http/outcome.hpp"
#include "http/request_id.hpp"

namespace continuum::http {
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

void ApplyLimits(BeastRequestParser& parser, const ServerOptions& options) {
  parser.header_limit(kHeaderLimit);
  parser.body_limit(options.body_limit);
}

Response ParseErrorResponse(const boost::system::error_code& ec, const ServerOptions& options) {
  int status = 400;
  std::string msg = "The request could not be parsed as HTTP/1.1: " + ec.message();
  if (ec == bhttp::error::body_limit) {
    status = 413;
    msg = "The request body exceeds the limit of " + std::to_string(options.body_limit) + " bytes.";
  } else if (ec == bhttp::error::header_limit) {
    status = 431;
    msg = "The request headers exceed the limit of " + std::to_string(kHeaderLimit) + " bytes.";
  }
  Response r = OutcomeResponse(status, status == 413 ? "too-long" : "structure", msg);
  r.close = true;
  return r;
}

std::optional<Response> ToRequest(BeastRequest& breq, const std::string& client,
                                  const ServerOptions& options, Request& req) {
  req.method = std::string(breq.method_string());
  req.target = std::string(breq.target());
  for (auto& f : breq) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    req.headers.emplace_back(std::move(name), std::string(f.value()));
  }
  req.client_address =
      options.trusted_proxies.empty()
          ? client
          : ClientAddress(client, req.header("x-forwarded-for"), options.trusted_proxies);
  std::string_view rid = req.header("x-request-id");
  req.request_id = SaneRequestId(rid) ? std::string(rid) : NewRequestId();
  auto url = boost::urls::parse_origin_form(req.target);
  if (!url) return OutcomeResponse(400, "structure", "The request target is not a valid URL path.");
  req.path = url->path();
  for (auto p : url->params()) req.query.emplace_back(p.key, p.value);
  req.body = std::move(breq.body());
  return std::nullopt;
}

ParsedRequest ParseRequestBytes(std::string_view bytes, const ServerOptions& options,
                                const std::string& client) {
  ParsedRequest out;
  BeastRequestParser parser;
  ApplyLimits(parser, options);
  parser.eager(true);
  boost::system::error_code ec;
  std::size_t off = 0;
  while (off < bytes.size() && !parser.is_done()) {
    std::size_t n = parser.put(asio::buffer(bytes.data() + off, bytes.size() - off), ec);
    if (ec == bhttp::error::need_more) break;
    if (ec) {
      out.error = ParseErrorResponse(ec, options);
      return out;
    }
    if (n == 0) break;
    off += n;
  }
  if (!parser.is_done()) {
    // The peer closed the connection: a message delimited by end of stream ends here.
    parser.put_eof(ec);
    if (ec && ec != bhttp::error::partial_message && ec != bhttp::error::end_of_stream)
      out.error = ParseErrorResponse(ec, options);
    if (!parser.is_done()) return out;
  }
  out.consumed = off;
  Request req;
  if (auto err = ToRequest(parser.get(), client, options, req))
    out.error = std::move(*err);
  else
    out.request = std::move(req);
  return out;
}

}  // namespace continuum::http
