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
#include <optional>
#include <string>
#include <string_view>
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

// One request read from `bytes` exactly as a connection reads it (the same parser
// limits: 16 KiB of head, options.body_limit of body; the same conversion to Request).
// Neither set: the bytes end before the request does (the connection would wait).
// For the fuzz target fuzz/http_request_fuzz.cpp and tests; Serve uses the same pieces.
struct ParsedRequest {
  std::optional<Request> request;  // a complete, acceptable request
  std::optional<Response> error;   // the 400/413/431 answer (then the connection closes)
  std::size_t consumed = 0;        // bytes of `bytes` the request took
};
ParsedRequest ParseRequestBytes(std::string_view bytes, const ServerOptions& options,
                                const std::string& client = "127.0.0.1");

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
  // Before Stop(): requests are still accepted and served, but every answer closes its
  // connection (Connection: close), so no keep-alive connection outlives the drain.
  // Thread-safe, idempotent.
  void CloseAfterEachResponse();
  // Begins graceful shutdown; thread-safe, idempotent.
  void Stop();
  // Called (once) when the last connection closed after Stop().
  void OnDrained(std::function<void()> f);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace continuum::http
