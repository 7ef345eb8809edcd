// The second (and last) translation unit with Beast's HTTP machinery: the client side.
#include "http/client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>

namespace continuum::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

Endpoint ParseBaseUrl(const std::string& url) {
  auto u = boost::urls::parse_uri(url);
  if (!u) throw std::invalid_argument("not a URL: " + url);
  if (u->scheme() != "http")
    throw std::invalid_argument("only http:// dependency URLs are supported here: " + url);
  Endpoint ep;
  ep.host = std::string(u->host());
  if (ep.host.empty()) throw std::invalid_argument("URL without a host: " + url);
  ep.port = u->has_port() ? static_cast<uint16_t>(u->port_number()) : 80;
  ep.base_path = std::string(u->path());
  while (!ep.base_path.empty() && ep.base_path.back() == '/') ep.base_path.pop_back();
  return ep;
}

std::string ClientResponse::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return v;
  return {};
}

asio::awaitable<ClientResponse> Fetch(const Endpoint& ep, std::string method, std::string path,
                                      std::vector<std::pair<std::string, std::string>> headers,
                                      std::string body, std::chrono::milliseconds timeout) {
  auto ex = co_await asio::this_coro::executor;
  beast::tcp_stream stream(ex);
  stream.expires_after(timeout);
  auto fail = [&](const char* what, const beast::error_code& ec) {
    bool timed_out = ec == beast::error::timeout;
    return TransportError(std::string(what) + " " + ep.host + ":" + std::to_string(ep.port) + ": " +
                              (timed_out ? "timed out" : ec.message()),
                          timed_out);
  };
  boost::system::error_code aec;
  auto addr = asio::ip::make_address(ep.host, aec);
  if (aec) throw TransportError("dependency host must be an IP address: " + ep.host, false);
  auto [cec] = co_await stream.async_connect(asio::ip::tcp::endpoint(addr, ep.port),
                                             asio::as_tuple(asio::use_awaitable));
  if (cec) throw fail("connecting to", cec);
  bhttp::request<bhttp::string_body> req;
  req.method(bhttp::string_to_verb(method));
  req.target(ep.base_path + path);
  req.version(11);
  req.set(bhttp::field::host, ep.host + ":" + std::to_string(ep.port));
  req.set(bhttp::field::user_agent, "continuum");
  req.set(bhttp::field::connection, "close");
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty() || method == "POST" || method == "PUT") {
    if (req[bhttp::field::content_type].empty())
      req.set(bhttp::field::content_type, "application/json");
    req.body() = std::move(body);
    req.prepare_payload();
  }
  auto [wec, wn] = co_await bhttp::async_write(stream, req, asio::as_tuple(asio::use_awaitable));
  if (wec) throw fail("sending to", wec);
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(4 << 20);
  auto [rec, rn] =
      co_await bhttp::async_read(stream, buf, parser, asio::as_tuple(asio::use_awaitable));
  if (rec) throw fail("reading from", rec);
  auto& res = parser.get();
  ClientResponse out;
  out.status = static_cast<int>(res.result_int());
  out.body = std::move(res.body());
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers.emplace_back(std::move(name), std::string(f.value()));
  }
  beast::error_code sec;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, sec);
  co_return out;
}

}  // namespace continuum::http
