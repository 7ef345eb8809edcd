// A TCP endpoint that can be opened and closed at run time, and that knows its
// connections: Close() shuts the listening socket (new connections are refused by the
// kernel) and drops every open connection. That is the stand-ins' "refuse" mode, and
// also how they stop.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>

namespace continuum::stubdeps {

struct Connection {
  explicit Connection(boost::asio::ip::tcp::socket socket);
  boost::beast::tcp_stream stream;
  boost::asio::steady_timer timer;  // delays (slow mode) wait on it; Close() cancels it
  std::string peer;
  bool closed = false;
  void Close();
};

// Waits `ms` on the connection's timer; false when the connection was closed meanwhile.
boost::asio::awaitable<bool> Delay(Connection& conn, int ms);

// "timeout" mode: accept, never answer. Reads and discards until the client gives up
// (EOF), the connection is dropped, or `limit` passes.
boost::asio::awaitable<void> Hold(Connection& conn, std::chrono::seconds limit);

class Listener {
 public:
  using Session = std::function<boost::asio::awaitable<void>(std::shared_ptr<Connection>)>;

  Listener(boost::asio::io_context& ioc, std::string name, boost::asio::ip::tcp::endpoint ep,
           Session session);
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds and listens (throws boost::system::system_error, e.g. port in use).
  void Open();
  // Closes the listening socket and every connection.
  void Close();
  [[nodiscard]] bool is_open() const { return acceptor_ != nullptr; }
  [[nodiscard]] uint16_t port() const { return endpoint_.port(); }
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] std::size_t connections() const { return connections_.size(); }

 private:
  boost::asio::awaitable<void> Accept(std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor);
  boost::asio::awaitable<void> Run(std::shared_ptr<Connection> conn);

  boost::asio::io_context& ioc_;
  std::string name_;
  boost::asio::ip::tcp::endpoint endpoint_;
  Session session_;
  std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::list<std::shared_ptr<Connection>> connections_;
};

}  // namespace continuum::stubdeps
