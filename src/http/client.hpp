// A small HTTP/1.1 client for the portal's calls to external dependencies (payments,
// insurance, pharmacy, EHR, SMS). One request per connection, a hard timeout over
// connect + TLS handshake + write + read, bounded response size. Transport failures
// (refused, reset, timed out, malformed, a certificate that does not verify) throw
// TransportError; any HTTP status is a response.
//
// TLS: an https:// endpoint is spoken to through OpenSSL (asio::ssl::stream) with the
// caller's client context (MakeClientTlsContext: peer verification on, TLS 1.2+), and
// the certificate must name the host: a DNS name is checked against the certificate's
// names, an IP address against its IP subjectAltNames (RFC 2818 / RFC 6125). A DNS
// host is also sent as SNI.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace continuum::http {

struct Endpoint {
  std::string host;  // an IP address or a DNS name
  uint16_t port = 80;
  std::string base_path;  // without a trailing slash
  bool tls = false;       // https://
};
// "http://127.0.0.1:9104[/prefix]" (and "https://..." when `allow_https`); throws
// std::invalid_argument naming what is wrong.
Endpoint ParseBaseUrl(const std::string& url, bool allow_https = false);

// A client context that verifies the peer: trusts the PEM bundle `ca_file`, or the
// system's default trust store when `ca_file` is empty. Throws std::runtime_error naming
// the file when it cannot be loaded.
std::shared_ptr<boost::asio::ssl::context> MakeClientTlsContext(const std::string& ca_file);

struct ClientResponse {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string header(std::string_view lower_name) const;
};

struct TransportError : std::runtime_error {
  TransportError(const std::string& m, bool timed_out)
      : std::runtime_error(m), timed_out(timed_out) {}
  bool timed_out;
};

// `tls`: required when ep.tls (the handshake verifies the peer with it); ignored otherwise.
boost::asio::awaitable<ClientResponse> Fetch(
    const Endpoint& ep, std::string method, std::string path,
    std::vector<std::pair<std::string, std::string>> headers, std::string body,
    std::chrono::milliseconds timeout, boost::asio::ssl::context* tls = nullptr);

}  // namespace continuum::http
