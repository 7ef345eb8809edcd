// With http/wire.cpp, the only translation units that include Beast's HTTP machinery.
#include "http/server.hpp"

#include <sodium.h>

#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <list>
#include <mutex>

#include "core/log.hpp"
#include "http/client_address.hpp"
#include "http/outcome.hpp"
#include "http/request_id.hpp"
#include "http/wire.hpp"

namespace continuum::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Writes a response: its head (AppendResponseHead, into the connection's reused buffer)
// and its body in one gathered write. Beast's serializer wrote the same bytes, with a
// field list allocated per response and a buffer sequence walked per write.
asio::awaitable<std::pair<beast::error_code, bool>> WriteResponse(beast::tcp_stream& stream,
                                                                  std::string& head,
                                                                  const Response& resp,
                                                                  unsigned version, bool keep,
                                                                  std::string_view request_id) {
  head.clear();
  const bool stays = AppendResponseHead(head, resp, version, keep, request_id);
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(head), asio::buffer(resp.body)};
  auto [ec, n] = co_await asio::async_write(stream, buffers, asio::as_tuple(asio::use_awaitable));
  co_return std::pair{ec, stays};
}

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  struct Session {
    tcp::socket* socket = nullptr;
    bool idle = true;
  };
  struct Shard {
    asio::io_context* ioc;
    RequestHandler handler;
    std::unique_ptr<tcp::acceptor> acceptor;
    std::list<Session> sessions;  // touched only on this shard's thread
  };

  ServerOptions options;
  std::vector<std::unique_ptr<Shard>> shards;
  std::atomic<bool> stopping{false};
  std::atomic<bool> close_after_response{false};
  std::atomic<int> connections{0};
  std::mutex drained_mu;
  std::function<void()> on_drained;
  bool drained_called = false;
  uint16_t bound_port = 0;

  void MaybeDrained() {
    if (!stopping.load() || connections.load() != 0) return;
    std::function<void()> f;
    {
      std::lock_guard lock(drained_mu);
      if (drained_called || !on_drained) return;
      drained_called = true;
      f = on_drained;
    }
    f();
  }

  asio::awaitable<void> Accept(Shard* shard) {
    auto self = shared_from_this();
    for (;;) {
      auto [ec, socket] =
          co_await shard->acceptor->async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (stopping.load() || ec == asio::error::operation_aborted) break;
        // Out of descriptors or similar: back off instead of spinning.
        log::Warn("accept failed: {}", ec.message());
        asio::steady_timer t(*shard->ioc);
        t.expires_after(std::chrono::milliseconds(100));
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      if (stopping.load()) break;
      boost::system::error_code opt_ec;
      socket.set_option(tcp::no_delay(true), opt_ec);
      connections.fetch_add(1);
      asio::co_spawn(*shard->ioc, Serve(shard, std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> Serve(Shard* shard, tcp::socket socket) {
    auto self = shared_from_this();
    std::string client;
    {
      boost::system::error_code ec;
      auto ep = socket.remote_endpoint(ec);
      if (!ec) client = ep.address().to_string();
    }
    beast::tcp_stream stream(std::move(socket));
    shard->sessions.push_back(Session{&stream.socket(), true});
    auto me = std::prev(shard->sessions.end());
    beast::flat_buffer buffer;
    std::string head;  // each response's status line and fields
    bool first = true;
    try {
      for (;;) {
        if (stopping.load()) break;
        me->idle = true;
        BeastRequestParser parser;
        ApplyLimits(parser, options);
        stream.expires_after(
            std::chrono::milliseconds(first ? options.header_timeout_ms : options.idle_timeout_ms));
        first = false;
        auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser,
                                                         asio::as_tuple(asio::use_awaitable));
        me->idle = false;  // a request has begun: shutdown lets it finish
        if (!ec && !parser.is_done()) {
          stream.expires_after(std::chrono::milliseconds(options.header_timeout_ms));
          std::tie(ec, n) = co_await bhttp::async_read(stream, buffer, parser,
                                                       asio::as_tuple(asio::use_awaitable));
        }
        me->idle = false;
        if (ec == bhttp::error::end_of_stream || ec == asio::error::operation_aborted ||
            ec == beast::error::timeout || ec == asio::error::connection_reset ||
            ec == asio::error::eof || ec == asio::error::bad_descriptor) {
          break;
        }
        if (ec) {
          const Response err = ParseErrorResponse(ec, options);
          const std::string rid = NewRequestId();
          stream.expires_after(std::chrono::seconds(5));
          co_await WriteResponse(stream, head, err, 11, false, rid);
          break;
        }
        auto& breq = parser.get();
        Request req;
        Response resp;
        if (auto err = ToRequest(breq, client, options, req))
          resp = std::move(*err);
        else
          resp = co_await shard->handler(req);
        if (breq.method() == bhttp::verb::head && !resp.body.empty()) {
          // A HEAD's answer has no body, whatever the handler built (an error's
          // OperationOutcome): its length goes in Content-Length, as for the GET. Bytes
          // after the head would be read as the next response on this connection.
          const bool bodiless = resp.status / 100 == 1 || resp.status == 204 || resp.status == 304;
          if (!resp.head_content_length && !bodiless) resp.head_content_length = resp.body.size();
          resp.body.clear();
        }
        bool keep = breq.keep_alive() && !stopping.load() && !close_after_response.load();
        stream.expires_after(std::chrono::seconds(30));
        const auto [wec, stays] =
            co_await WriteResponse(stream, head, resp, breq.version(), keep, req.request_id);
        if (wec || !stays) break;
      }
    } catch (const std::exception& e) {
      log::Warn("connection error: {}", e.what());
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.socket().close(ignored);
    shard->sessions.erase(me);
    connections.fetch_sub(1);
    MaybeDrained();
  }
};

Server::Server(ServerOptions options, std::vector<asio::io_context*> shards,
               std::vector<RequestHandler> handlers)
    : impl_(std::make_shared<Impl>()) {
  impl_->options = std::move(options);
  for (std::size_t i = 0; i < shards.size(); ++i) {
    auto s = std::make_unique<Impl::Shard>();
    s->ioc = shards[i];
    s->handler = std::move(handlers[i]);
    impl_->shards.push_back(std::move(s));
  }
}

Server::~Server() = default;

void Server::Listen() {
  auto addr = asio::ip::make_address(impl_->options.address);
  uint16_t port = impl_->options.port;
  for (auto& s : impl_->shards) {
    auto acc = std::make_unique<tcp::acceptor>(*s->ioc);
    tcp::endpoint ep(addr, port);
    acc->open(ep.protocol());
    acc->set_option(tcp::acceptor::reuse_address(true));
    acc->set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
    acc->bind(ep);
    acc->listen(1024);
    if (port == 0) port = acc->local_endpoint().port();  // later shards share the port
    s->acceptor = std::move(acc);
  }
  impl_->bound_port = port;
  for (auto& s : impl_->shards) asio::co_spawn(*s->ioc, impl_->Accept(s.get()), asio::detached);
}

uint16_t Server::port() const { return impl_->bound_port; }

void Server::OnDrained(std::function<void()> f) {
  std::lock_guard lock(impl_->drained_mu);
  impl_->on_drained = std::move(f);
}

void Server::CloseAfterEachResponse() { impl_->close_after_response.store(true); }

void Server::Stop() {
  if (impl_->stopping.exchange(true)) return;
  for (auto& s : impl_->shards) {
    Impl::Shard* shard = s.get();
    auto impl = impl_;
    asio::post(*shard->ioc, [impl, shard] {
      boost::system::error_code ec;
      if (shard->acceptor) shard->acceptor->close(ec);
      for (auto& sess : shard->sessions)
        if (sess.idle) sess.socket->cancel(ec);
      impl->MaybeDrained();
    });
  }
}

}  // namespace continuum::http
