// A small HTTP/1.1 client for the portal's calls to external dependencies (payments,
// insurance, pharmacy, EHR, SMS). One request per connection, a hard timeout over
// connect + write + read, bounded response size. Transport failures (refused, reset,
// timed out, malformed) throw TransportError; any HTTP status is a response.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace continuum::http {

struct Endpoint {
  std::string host;
  uint16_t port = 80;
  std::string base_path;  // without a trailing slash
};
// "http://127.0.0.1:9104[/prefix]"; throws std::invalid_argument naming what is wrong.
Endpoint ParseBaseUrl(const std::string& url);

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

boost::asio::awaitable<ClientResponse> Fetch(
    const Endpoint& ep, std::string method, std::string path,
    std::vector<std::pair<std::string, std::string>> headers, std::string body,
    std::chrono::milliseconds timeout);

}  // namespace continuum::http
