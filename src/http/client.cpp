// The second (and last) translation unit with Beast's HTTP machinery: the client side.
#include "http/client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>

namespace continuum::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;

Endpoint ParseBaseUrl(const std::string& url, bool allow_https) {
  auto u = boost::urls::parse_uri(url);
  if (!u) throw std::invalid_argument("not a URL: " + url);
  Endpoint ep;
  if (u->scheme() == "https" && allow_https) {
    ep.tls = true;
  } else if (u->scheme() != "http") {
    throw std::invalid_argument(std::string("only ") +
                                (allow_https ? "http:// and https://" : "http://") +
                                " URLs are supported here: " + url);
  }
  ep.host = std::string(u->host_address());
  if (ep.host.empty()) throw std::invalid_argument("URL without a host: " + url);
  ep.port = u->has_port() ? static_cast<uint16_t>(u->port_number()) : (ep.tls ? 443 : 80);
  ep.base_path = std::string(u->path());
  while (!ep.base_path.empty() && ep.base_path.back() == '/') ep.base_path.pop_back();
  return ep;
}

std::shared_ptr<ssl::context> MakeClientTlsContext(const std::string& ca_file) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  if (ca_file.empty())
    ctx->set_default_verify_paths(ec);
  else
    ctx->load_verify_file(ca_file, ec);
  if (ec)
    throw std::runtime_error("cannot load the trusted CA certificates " +
                             (ca_file.empty() ? std::string("(system default)") : ca_file) + ": " +
                             ec.message());
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

std::string ClientResponse::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return v;
  return {};
}

namespace {

TransportError Fail(const Endpoint& ep, const char* what, const beast::error_code& ec) {
  bool timed_out = ec == beast::error::timeout;
  std::string why = timed_out ? "timed out" : ec.message();
  // OpenSSL's reason ("certificate verify failed") says little about which check failed.
  return TransportError(
      std::string(what) + " " + ep.host + ":" + std::to_string(ep.port) + ": " + why, timed_out);
}

template <typename Stream>
asio::awaitable<ClientResponse> Exchange(Stream& stream, const Endpoint& ep, std::string method,
                                         std::string path,
                                         std::vector<std::pair<std::string, std::string>> headers,
                                         std::string body) {
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
  if (wec) throw Fail(ep, "sending to", wec);
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(4 << 20);
  auto [rec, rn] =
      co_await bhttp::async_read(stream, buf, parser, asio::as_tuple(asio::use_awaitable));
  if (rec) throw Fail(ep, "reading from", rec);
  auto& res = parser.get();
  ClientResponse out;
  out.status = static_cast<int>(res.result_int());
  out.body = std::move(res.body());
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers.emplace_back(std::move(name), std::string(f.value()));
  }
  co_return out;
}

}  // namespace

asio::awaitable<ClientResponse> Fetch(const Endpoint& ep, std::string method, std::string path,
                                      std::vector<std::pair<std::string, std::string>> headers,
                                      std::string body, std::chrono::milliseconds timeout,
                                      ssl::context* tls) {
  if (ep.tls && !tls)
    throw TransportError("https://" + ep.host + ": no TLS context configured", false);
  auto ex = co_await asio::this_coro::executor;
  beast::tcp_stream stream(ex);
  stream.expires_after(timeout);
  boost::system::error_code aec;
  auto addr = asio::ip::make_address(ep.host, aec);
  const bool is_ip = !aec;
  if (is_ip) {
    auto [cec] = co_await stream.async_connect(asio::ip::tcp::endpoint(addr, ep.port),
                                               asio::as_tuple(asio::use_awaitable));
    if (cec) throw Fail(ep, "connecting to", cec);
  } else {
    asio::ip::tcp::resolver resolver(ex);
    auto [rec, results] = co_await resolver.async_resolve(ep.host, std::to_string(ep.port),
                                                          asio::as_tuple(asio::use_awaitable));
    if (rec) throw Fail(ep, "resolving", rec);
    auto [cec, cep] = co_await stream.async_connect(results, asio::as_tuple(asio::use_awaitable));
    if (cec) throw Fail(ep, "connecting to", cec);
  }
  ClientResponse out;
  if (ep.tls) {
    ssl::stream<beast::tcp_stream&> s(stream, *tls);
    // Hostname (or IP) verification on top of the chain check; SNI for DNS names only
    // (RFC 6066 forbids IP literals there).
    s.set_verify_callback(ssl::host_name_verification(ep.host));
    if (!is_ip && !SSL_set_tlsext_host_name(s.native_handle(), ep.host.c_str()))
      throw TransportError("cannot set SNI for " + ep.host, false);
    auto [hec] =
        co_await s.async_handshake(ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
    if (hec) throw Fail(ep, "TLS handshake with", hec);
    out = co_await Exchange(s, ep, std::move(method), std::move(path), std::move(headers),
                            std::move(body));
    // No close_notify round trip: "Connection: close" and the full body already ended
    // the exchange; waiting for the peer's close_notify would only add latency.
  } else {
    out = co_await Exchange(stream, ep, std::move(method), std::move(path), std::move(headers),
                            std::move(body));
  }
  beast::error_code sec;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, sec);
  co_return out;
}

}  // namespace continuum::http
