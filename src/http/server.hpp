// The HTTP/1.1 server: Beast on Asio C++20 coroutines.
//
// Shared-nothing: one io_context and one thread per shard; every shard has its own
// acceptor on the same port (SO_REUSEPORT), so a connection, its coroutines and the
// shard's database pools never cross threads. Keep-alive, a body size limit, header
// and idle timeouts, X-Request-Id, and graceful shutdown: on Stop() (SIGTERM) the
// acceptors close, idle connections close, in-flight requests finish and get
// "Connection: close", then Run() returns.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "http/message.hpp"

namespace continuum::http {

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8080;
  std::size_t body_limit = 1 << 20;
  int header_timeout_ms = 10000;
  int idle_timeout_ms = 60000;
  int shutdown_grace_ms = 10000;
  std::vector<std::string> trusted_proxies;  // peers whose X-Forwarded-For is believed
};

// Handles one request on the shard's executor.
using RequestHandler = std::function<boost::asio::awaitable<Response>(Request&)>;

class Server {
 public:
  // `shards` io_contexts, each to be run by one thread in Run().
  Server(ServerOptions options, std::vector<boost::asio::io_context*> shards,
         std::vector<RequestHandler> handlers);
  ~Server();
  // Binds all acceptors (throws on failure, e.g. port in use).
  void Listen();
  uint16_t port() const;
  // Begins graceful shutdown; thread-safe, idempotent.
  void Stop();
  // Called (once) when the last connection closed after Stop().
  void OnDrained(std::function<void()> f);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace continuum::http
