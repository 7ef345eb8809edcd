// `continuum net-proxy`: a TCP proxy that injects network faults ("toxics", after
// Toxiproxy, which Debian does not package) on a path the chaos experiments need to
// degrade -- in the local cluster, every portal node's path to each region's PostgreSQL.
// The kernel here has no netem qdisc, so latency and bandwidth faults are made in user
// space, on the bytes.
//
// One process serves one or more proxies (listen address -> upstream address). Without a
// toxic a proxy forwards bytes both ways unchanged. Toxics, set per proxy at run time:
//   latency_ms, jitter_ms  every chunk from the upstream (the database's answers) is held
//                          latency_ms +- jitter_ms (uniform) before it is passed on, in
//                          order: one extra delay per round trip
//   rate_kb_s              both directions limited to that many kilobytes (1,000 bytes)
//                          per second
//   hold                   no byte passes either way (a black hole: a hung peer, a
//                          silently dropped path); with close_after_ms > 0 each
//                          connection is then closed after that long
//   reset                  every open connection is reset (RST), and so is every new one
//                          as soon as it is accepted
//   down                   the listening socket is closed (new connections are refused)
//                          and every open connection is closed
//
// Admin API (HTTP/1.1, JSON; on loopback):
//   GET    /healthz
//   GET    /proxies                 every proxy: addresses, toxics, connections, bytes
//   PUT    /proxies/{name}          set its toxics (the whole set: keys left out are off)
//   DELETE /proxies/{name}          its toxics off
//   DELETE /proxies                 every proxy's toxics off
// A bad body (unknown key, wrong type, out of range) is a 400 with a message and changes
// nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.hpp"

namespace boost::asio {
class io_context;
}

namespace continuum::chaos {

struct Toxics {
  int latency_ms = 0;
  int jitter_ms = 0;
  int64_t rate_kb_s = 0;  // 0: unlimited
  bool hold = false;
  int close_after_ms = 0;  // with hold: close each connection after this long (0: never)
  bool reset = false;
  bool down = false;

  [[nodiscard]] bool any() const {
    return latency_ms > 0 || jitter_ms > 0 || rate_kb_s > 0 || hold || reset || down;
  }
  bool operator==(const Toxics&) const = default;
};

// A PUT request's JSON body -> Toxics; throws continuum::Error (400, or 415 for a body
// declared as something other than JSON) with a message that names the key.
Toxics ParseToxics(const http::Request& req);
std::string ToxicsJson(const Toxics& t);

struct ProxySpec {
  std::string name;
  std::string listen_host;
  uint16_t listen_port = 0;
  std::string upstream_host;
  uint16_t upstream_port = 0;
};

// "NAME,LISTEN_HOST:PORT,UPSTREAM_HOST:PORT"; throws std::invalid_argument.
ProxySpec ParseProxySpec(std::string_view spec);

struct NetProxyOptions {
  std::string admin_host = "127.0.0.1";
  uint16_t admin_port = 0;
  std::vector<ProxySpec> proxies;
  int connect_timeout_ms = 2000;
  // Written (atomically) once every listener is bound: {"admin": "HOST:PORT", "proxies":
  // [{"name", "listen", "upstream"}]} -- the ports actually bound (port 0 picks one).
  std::string status_file;
};

// Runs until SIGTERM/SIGINT; 0 on a clean stop, 2 on bad options or a port in use.
int RunNetProxy(const NetProxyOptions& options);

// For tests: the proxies and their admin API on an io_context the caller runs.
class NetProxyServer {
 public:
  NetProxyServer(boost::asio::io_context& ioc, NetProxyOptions options);
  ~NetProxyServer();
  NetProxyServer(const NetProxyServer&) = delete;
  NetProxyServer& operator=(const NetProxyServer&) = delete;
  // Binds every listener (throws on a port in use).
  void Open();
  void Close();
  // The admin API, callable directly.
  http::Response Handle(const http::Request& req);
  [[nodiscard]] uint16_t admin_port() const;
  [[nodiscard]] uint16_t listen_port(std::string_view proxy) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace continuum::chaos
