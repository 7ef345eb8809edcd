#include "http/wire.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <stdexcept>
#include <vector>

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

namespace {

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

std::string_view TrimOws(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// A field's name or value as it goes out: CR, LF and NUL become spaces.
void AppendFieldText(std::string& out, std::string_view v) {
  const auto start = out.size();
  out.append(v);
  for (auto i = start; i < out.size(); ++i) {
    if (out[i] == '\r' || out[i] == '\n' || out[i] == '\0') out[i] = ' ';
  }
}

void AppendField(std::string& out, std::string_view name, std::string_view value) {
  AppendFieldText(out, name);
  out.append(": ");
  AppendFieldText(out, TrimOws(value));
  out.append("\r\n");
}

void AppendDecimal(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

}  // namespace

bool AppendResponseHead(std::string& out, const Response& r, unsigned version, bool keep_alive,
                        std::string_view request_id) {
  const int status = r.status;
  const bool bodiless = status / 100 == 1 || status == 204 || status == 304;
  if (bodiless && !r.body.empty()) throw std::invalid_argument("invalid response body");
  // The fields in Beast's order: set() drops every field of the name and appends.
  thread_local std::vector<std::pair<std::string_view, std::string_view>> fields;
  fields.clear();
  auto set = [](std::string_view name, std::string_view value) {
    std::erase_if(fields, [&](const auto& f) { return IEquals(f.first, name); });
    fields.emplace_back(name, value);
  };
  set("Server", "continuum");
  if (!r.body.empty() || status != 204) set("Content-Type", r.content_type);
  if (!request_id.empty()) set("X-Request-Id", request_id);
  for (const auto& [k, v] : r.headers) {
    if (IEquals(k, "Connection") || IEquals(k, "Content-Length") ||
        IEquals(k, "Transfer-Encoding")) {
      continue;
    }
    set(k, v);
  }
  out.append("HTTP/");
  AppendDecimal(out, version / 10);
  out.push_back('.');
  AppendDecimal(out, version % 10);
  out.push_back(' ');
  AppendDecimal(out, static_cast<std::uint64_t>(status));
  out.push_back(' ');
  out.append(bhttp::obsolete_reason(static_cast<bhttp::status>(status)));
  out.append("\r\n");
  for (const auto& [k, v] : fields) AppendField(out, k, v);
  const bool keep = keep_alive && !r.close;
  if (version >= 11 && !keep) AppendField(out, "Connection", "close");
  if (version < 11 && keep) AppendField(out, "Connection", "keep-alive");
  if (r.head_content_length || !bodiless) {
    out.append("Content-Length: ");
    AppendDecimal(out, r.head_content_length ? *r.head_content_length : r.body.size());
    out.append("\r\n");
  }
  out.append("\r\n");
  return keep;
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
