// A TCP listener on loopback that accepts every connection and closes it with a reset as
// soon as the client has sent something, without answering: what a TCP proxy (HAProxy, a cloud load
// balancer, the chaos net-proxy) does in front of a stopped PostgreSQL. libpq stops a multi-host
// connect at such a host (db/hosts.hpp); the *_pgtest suites put one before a real database.
#pragma once

#include <atomic>
#include <string>
#include <thread>

namespace continuum::testing {

class ClosingListener {
 public:
  ClosingListener();  // throws std::runtime_error
  ~ClosingListener();
  ClosingListener(const ClosingListener&) = delete;
  ClosingListener& operator=(const ClosingListener&) = delete;

  int port() const { return port_; }
  int accepted() const { return accepted_.load(); }
  // `url` (postgresql://user@host:port/db) with this listener as its first host.
  std::string InFrontOf(const std::string& url) const;

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace continuum::testing
