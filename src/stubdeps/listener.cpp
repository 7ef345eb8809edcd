#include "stubdeps/listener.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/log.hpp"

namespace continuum::stubdeps {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Connection::Connection(tcp::socket socket)
    : stream(std::move(socket)), timer(stream.get_executor()) {
  boost::system::error_code ec;
  auto ep = stream.socket().remote_endpoint(ec);
  if (!ec) peer = ep.address().to_string();
}

void Connection::Close() {
  if (closed) return;
  closed = true;
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream.socket().close(ec);
  timer.cancel();
}

asio::awaitable<bool> Delay(Connection& conn, int ms) {
  if (conn.closed) co_return false;
  conn.timer.expires_after(std::chrono::milliseconds(ms));
  co_await conn.timer.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return !conn.closed;
}

asio::awaitable<void> Hold(Connection& conn, std::chrono::seconds limit) {
  char sink[4096];
  conn.stream.expires_after(limit);
  while (!conn.closed) {
    auto [ec, n] = co_await conn.stream.async_read_some(asio::buffer(sink),
                                                        asio::as_tuple(asio::use_awaitable));
    if (ec) break;
  }
}

Listener::Listener(asio::io_context& ioc, std::string name, tcp::endpoint ep, Session session)
    : ioc_(ioc), name_(std::move(name)), endpoint_(ep), session_(std::move(session)) {}

void Listener::Open() {
  if (acceptor_) return;
  auto acc = std::make_shared<tcp::acceptor>(ioc_);
  acc->open(endpoint_.protocol());
  // SO_REUSEADDR: reopening after "refuse" must not wait out TIME_WAIT.
  acc->set_option(tcp::acceptor::reuse_address(true));
  acc->bind(endpoint_);
  acc->listen(128);
  acceptor_ = acc;
  asio::co_spawn(ioc_, Accept(acc), asio::detached);
}

void Listener::Close() {
  if (acceptor_) {
    boost::system::error_code ec;
    acceptor_->close(ec);
    acceptor_.reset();
  }
  for (auto& c : connections_) c->Close();
}

asio::awaitable<void> Listener::Accept(std::shared_ptr<tcp::acceptor> acceptor) {
  for (;;) {
    auto [ec, socket] = co_await acceptor->async_accept(asio::as_tuple(asio::use_awaitable));
    if (!acceptor->is_open() || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of descriptors or similar: back off instead of spinning.
      log::Warn("stub-deps {}: accept failed: {}", name_, ec.message());
      asio::steady_timer t(ioc_);
      t.expires_after(std::chrono::milliseconds(100));
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    boost::system::error_code opt;
    socket.set_option(tcp::no_delay(true), opt);
    auto conn = std::make_shared<Connection>(std::move(socket));
    connections_.push_back(conn);
    asio::co_spawn(ioc_, Run(std::move(conn)), asio::detached);
  }
}

asio::awaitable<void> Listener::Run(std::shared_ptr<Connection> conn) {
  try {
    co_await session_(conn);
  } catch (const std::exception& e) {
    log::Warn("stub-deps {}: connection error: {}", name_, e.what());
  }
  conn->Close();
  connections_.remove(conn);
}

}  // namespace continuum::stubdeps
