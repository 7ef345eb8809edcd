// The hosts of a multi-host connection string, and the ones left after a failed connect.
//
// libpq tries a multi-host URL's hosts in order and moves on after a failed TCP connect
// (refused, unreachable, connect_timeout), a server answering that it is starting up or
// shutting down (SQLSTATE 57P03), or, with target_session_attrs=read-write, a standby. It
// does not move on when a host accepts the TCP connection and closes it before the startup
// handshake ends ("server closed the connection unexpectedly"): the whole connect fails
// there. That is what a TCP proxy in front of a stopped PostgreSQL does (HAProxy in TCP
// mode, a cloud load balancer, and the chaos net-proxy: each accepts, fails to reach its
// upstream, and closes). Measured in the local cluster: while a switchover's old primary
// was down, every node whose URL named it before the new primary could not open a
// connection, for 14 s, until the old primary came back as a standby. So the callers
// (db::Connection::Connect, the audit shipper) try the rest of the hosts themselves:
// HostsAfter gives them. They do so after any failure at a host that was not the last and
// did not run out of time, also one where the server answered with another error (too many
// connections, a failed login): every host of the URL is a candidate for the same role,
// and target_session_attrs still applies to each. A connect that failed at the last host
// is not repeated (libpq had tried them all).
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

struct pg_conn;

namespace continuum::db {

struct HostList {
  // One entry per host; `port` is empty when the URL names none (libpq's default).
  struct Host {
    std::string host;
    std::string hostaddr;
    std::string port;
  };
  std::vector<Host> hosts;
  bool has_host = false, has_hostaddr = false, has_port = false;

  // Appends "host", "hostaddr" and "port" (those the URL had) with these hosts as values, to
  // go after the expanded URL ("dbname"), which they override; the values point into
  // `storage`, which must outlive the connect call.
  void AppendKeywords(std::vector<const char*>& keys, std::vector<const char*>& values,
                      std::array<std::string, 3>& storage) const;
};

// The conninfo's hosts (key=value or URI form); nullopt when it cannot be parsed or names
// fewer than two hosts (nothing to go on to).
std::optional<HostList> ParseHosts(const std::string& conninfo);

// The hosts of `list` after the one the failed connect `failed` stopped at, or nullopt when
// that was the last (libpq had tried them all) or it is not in the list.
std::optional<HostList> HostsAfter(const HostList& list, const pg_conn* failed);

// HostsAfter's core, for a test without a connection: the hosts after the first entry whose
// host (or hostaddr, when it has no host) and port are `host` and `port`.
std::optional<HostList> HostsAfter(const HostList& list, const std::string& host,
                                   const std::string& port);

}  // namespace continuum::db
