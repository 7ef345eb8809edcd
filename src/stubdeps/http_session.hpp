// HTTP/1.1 for the stand-ins: a Beast session loop per connection that applies the
// dependency's fault mode to every request before the handler sees it (error -> 503,
// timeout -> never answer, slow -> answer after the delay) and writes one JSON access
// line per request. With a TLS context the connection starts with a TLS handshake
// (the stand-ins serve HTTPS like the real services); the access line says "tls":true.
//
// Why not http::Server: the portal's server is built to always answer and to drain
// gracefully; a stand-in must be able to hold a request unanswered and to drop its
// connections at once ("refuse"), and it needs no shards. This is the second
// translation unit with Beast's HTTP machinery (after http/server.cpp).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <functional>
#include <memory>
#include <string>

#include "http/message.hpp"
#include "stubdeps/fault.hpp"
#include "stubdeps/listener.hpp"

namespace continuum::stubdeps {

struct HttpService {
  std::string name;                   // "payments", "ehr", "admin"
  const FaultState* fault = nullptr;  // nullptr: never faulted (the admin endpoint)
  bool fhir = false;                  // errors as OperationOutcome
  std::size_t body_limit = 1 << 20;
  std::function<http::Response(const http::Request&)> handle;
  boost::asio::ssl::context* tls = nullptr;  // set: HTTPS only
};

boost::asio::awaitable<void> ServeHttp(std::shared_ptr<Connection> conn,
                                       const HttpService& service);

}  // namespace continuum::stubdeps
