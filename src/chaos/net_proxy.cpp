#include "chaos/net_proxy.hpp"

#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <list>
#include <random>
#include <stdexcept>

#include "core/error.hpp"
#include "core/log.hpp"
#include "stubdeps/api.hpp"
#include "stubdeps/http_session.hpp"
#include "stubdeps/listener.hpp"

namespace continuum::chaos {
namespace asio = boost::asio;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr int kMaxDelayMs = 600'000;
constexpr std::size_t kChunk = 16 * 1024;
constexpr std::size_t kMaxQueued = 4 * 1024 * 1024;  // per direction: then stop reading

int IntField(const json::object& o, std::string_view key, int lo, int hi) {
  const json::value* v = o.if_contains(key);
  if (!v) return 0;
  const std::string what = "\"" + std::string(key) + "\"";
  if (!v->is_int64() && !v->is_uint64())
    throw BadRequest(what + " must be a whole number from " + std::to_string(lo) + " to " +
                     std::to_string(hi) + ".");
  const int64_t n = v->is_int64() ? v->as_int64() : static_cast<int64_t>(v->as_uint64());
  if (n < lo || n > hi)
    throw BadRequest(what + " must be from " + std::to_string(lo) + " to " + std::to_string(hi) +
                     ", got " + std::to_string(n) + ".");
  return static_cast<int>(n);
}

bool BoolField(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (!v) return false;
  if (!v->is_bool()) throw BadRequest("\"" + std::string(key) + "\" must be true or false.");
  return v->as_bool();
}

uint16_t ParsePort(std::string_view s, std::string_view what) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v > 65535)
    throw std::invalid_argument(std::string(what) + ": '" + std::string(s) + "' is not a port");
  return static_cast<uint16_t>(v);
}

std::pair<std::string, uint16_t> HostPort(std::string_view s, std::string_view what) {
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    throw std::invalid_argument(std::string(what) + ": '" + std::string(s) + "' is not HOST:PORT");
  std::string host(s.substr(0, colon));
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  if (ec) throw std::invalid_argument(std::string(what) + ": '" + host + "' is not an IP address");
  return {host, ParsePort(s.substr(colon + 1), what)};
}

// One proxied connection: the client's socket and the upstream's.
struct Pipe {
  Pipe(tcp::socket c, asio::any_io_executor ex) : client(std::move(c)), upstream(ex) {}
  tcp::socket client;
  tcp::socket upstream;
  bool closed = false;
  std::vector<std::shared_ptr<asio::steady_timer>> timers;  // cancelled on Close

  void Close(bool reset) {
    if (closed) return;
    closed = true;
    boost::system::error_code ec;
    for (tcp::socket* s : {&client, &upstream}) {
      if (!s->is_open()) continue;
      // SO_LINGER 0: close() sends RST instead of FIN ("connection reset by peer").
      if (reset)
        s->set_option(asio::socket_base::linger(true, 0), ec);
      else
        s->shutdown(tcp::socket::shutdown_both, ec);
      s->close(ec);
    }
    for (auto& t : timers) t->cancel();
  }
};

struct Chunk {
  std::vector<char> data;
  Clock::time_point due;
};

}  // namespace

Toxics ParseToxics(const http::Request& req) {
  json::object o = stubdeps::ParseJsonObject(
      req, {"latency_ms", "jitter_ms", "rate_kb_s", "hold", "close_after_ms", "reset", "down"});
  Toxics t;
  t.latency_ms = IntField(o, "latency_ms", 0, kMaxDelayMs);
  t.jitter_ms = IntField(o, "jitter_ms", 0, kMaxDelayMs);
  t.rate_kb_s = IntField(o, "rate_kb_s", 0, 10'000'000);
  t.hold = BoolField(o, "hold");
  t.close_after_ms = IntField(o, "close_after_ms", 0, kMaxDelayMs);
  t.reset = BoolField(o, "reset");
  t.down = BoolField(o, "down");
  if (t.jitter_ms > t.latency_ms)
    throw BadRequest("\"jitter_ms\" (" + std::to_string(t.jitter_ms) +
                     ") must not exceed \"latency_ms\" (" + std::to_string(t.latency_ms) +
                     "): a chunk cannot arrive before it was sent.");
  if (t.close_after_ms > 0 && !t.hold)
    throw BadRequest(
        "\"close_after_ms\" goes with \"hold\": true (how long a held connection "
        "stays open).");
  return t;
}

std::string ToxicsJson(const Toxics& t) {
  return json::serialize(json::object{{"latency_ms", t.latency_ms},
                                      {"jitter_ms", t.jitter_ms},
                                      {"rate_kb_s", t.rate_kb_s},
                                      {"hold", t.hold},
                                      {"close_after_ms", t.close_after_ms},
                                      {"reset", t.reset},
                                      {"down", t.down}});
}

ProxySpec ParseProxySpec(std::string_view spec) {
  auto c1 = spec.find(',');
  auto c2 = c1 == std::string_view::npos ? c1 : spec.find(',', c1 + 1);
  if (c2 == std::string_view::npos || spec.find(',', c2 + 1) != std::string_view::npos)
    throw std::invalid_argument("--proxy '" + std::string(spec) +
                                "': expected NAME,LISTEN_HOST:PORT,UPSTREAM_HOST:PORT");
  ProxySpec p;
  p.name = std::string(spec.substr(0, c1));
  if (p.name.empty() || p.name.size() > 64 || !stubdeps::ValidId(p.name))
    throw std::invalid_argument("--proxy '" + std::string(spec) +
                                "': the name must be 1..64 of [A-Za-z0-9._-]");
  std::tie(p.listen_host, p.listen_port) = HostPort(spec.substr(c1 + 1, c2 - c1 - 1), "listen");
  std::tie(p.upstream_host, p.upstream_port) = HostPort(spec.substr(c2 + 1), "upstream");
  if (p.upstream_port == 0) throw std::invalid_argument("upstream: port 0");
  return p;
}

// ---------------------------------------------------------------------------------------

namespace {

class Proxy {
 public:
  Proxy(asio::io_context& ioc, ProxySpec spec, int connect_timeout_ms)
      : ioc_(ioc),
        spec_(std::move(spec)),
        connect_timeout_ms_(connect_timeout_ms),
        upstream_(asio::ip::make_address(spec_.upstream_host), spec_.upstream_port),
        rng_(std::random_device{}()) {}

  void Open() {
    if (acceptor_) return;
    auto acc = std::make_shared<tcp::acceptor>(ioc_);
    tcp::endpoint ep(asio::ip::make_address(spec_.listen_host),
                     bound_port_ ? bound_port_ : spec_.listen_port);
    acc->open(ep.protocol());
    acc->set_option(tcp::acceptor::reuse_address(true));
    acc->bind(ep);
    acc->listen(256);
    bound_port_ = acc->local_endpoint().port();
    acceptor_ = acc;
    asio::co_spawn(ioc_, Accept(acc), asio::detached);
  }

  void CloseListener() {
    if (!acceptor_) return;
    boost::system::error_code ec;
    acceptor_->close(ec);
    acceptor_.reset();
  }

  void CloseAll(bool reset) {
    for (auto& p : pipes_) p->Close(reset);
  }

  void Stop() {
    CloseListener();
    CloseAll(false);
  }

  // Applies a new set of toxics: down closes the listener and the connections; reset
  // resets the connections; hold/latency/rate apply to the next chunk of every open one.
  void Set(const Toxics& t) {
    toxics_ = t;
    if (t.down) {
      CloseListener();
      CloseAll(false);
    } else {
      Open();
      if (t.reset) CloseAll(true);
    }
    for (auto& w : wakeups_) w->cancel();  // re-evaluate held writers now
    log::Info("net-proxy {}: toxics {}", spec_.name, ToxicsJson(t));
  }

  json::object Json() const {
    return json::object{
        {"name", spec_.name},
        {"listen", spec_.listen_host + ":" + std::to_string(bound_port_)},
        {"upstream", spec_.upstream_host + ":" + std::to_string(spec_.upstream_port)},
        {"listening", acceptor_ != nullptr},
        {"toxics", json::parse(ToxicsJson(toxics_))},
        {"connections_open", pipes_.size()},
        {"connections_total", accepted_},
        {"upstream_connect_failures", connect_failures_},
        {"bytes_to_upstream", bytes_up_},
        {"bytes_to_client", bytes_down_}};
  }

  const std::string& name() const { return spec_.name; }
  uint16_t port() const { return bound_port_; }

 private:
  asio::awaitable<void> Accept(std::shared_ptr<tcp::acceptor> acc) {
    for (;;) {
      auto [ec, sock] = co_await acc->async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (!acc->is_open()) co_return;
        log::Warn("net-proxy {}: accept: {}", spec_.name, ec.message());
        asio::steady_timer t(ioc_, milliseconds(50));
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      ++accepted_;
      boost::system::error_code ignore;
      sock.set_option(tcp::no_delay(true), ignore);
      auto pipe = std::make_shared<Pipe>(std::move(sock), ioc_.get_executor());
      // accepted by the kernel before the toxic came: reset or down apply to it too
      if (toxics_.reset || toxics_.down || acc != acceptor_) {
        pipe->Close(toxics_.reset);
        continue;
      }
      pipes_.push_back(pipe);
      auto it = std::prev(pipes_.end());
      asio::co_spawn(ioc_, Session(pipe), [this, it](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            log::Warn("net-proxy {}: connection ended: {}", spec_.name, ex.what());
          }
        }
        (*it)->Close(false);
        pipes_.erase(it);
      });
    }
  }

  asio::awaitable<void> Session(std::shared_ptr<Pipe> p) {
    using namespace asio::experimental::awaitable_operators;
    // Connect to the upstream within connect_timeout_ms.
    auto timer = std::make_shared<asio::steady_timer>(ioc_, milliseconds(connect_timeout_ms_));
    p->timers.push_back(timer);
    auto result =
        co_await (p->upstream.async_connect(upstream_, asio::as_tuple(asio::use_awaitable)) ||
                  timer->async_wait(asio::as_tuple(asio::use_awaitable)));
    if (result.index() != 0 || std::get<0>(std::get<0>(result)) || p->closed) {
      ++connect_failures_;
      // The client sees a reset: its connection was accepted, so it cannot see the refusal
      // itself. libpq ends a multi-host connect at such a host instead of trying the next;
      // the portal goes on itself (db/hosts.hpp), as it must behind any TCP proxy.
      p->Close(true);
      co_return;
    }
    boost::system::error_code ignore;
    p->upstream.set_option(tcp::no_delay(true), ignore);
    co_await (Pump(p, p->client, p->upstream, false) && Pump(p, p->upstream, p->client, true));
  }

  // Delay of a chunk read now in this direction.
  milliseconds DelayFor(bool downstream) {
    if (!downstream || toxics_.latency_ms <= 0) return milliseconds(0);
    int d = toxics_.latency_ms;
    if (toxics_.jitter_ms > 0) {
      std::uniform_int_distribution<int> j(-toxics_.jitter_ms, toxics_.jitter_ms);
      d += j(rng_);
    }
    return milliseconds(std::max(0, d));
  }

  // Whether a chunk read now in this direction may go straight out: nothing delays, paces or
  // holds it. (Nothing queued or being written either: the caller checks that.)
  [[nodiscard]] bool Direct(bool downstream) const {
    return !toxics_.hold && toxics_.rate_kb_s == 0 && (!downstream || toxics_.latency_ms == 0);
  }

  // from -> to: a reader that timestamps chunks and a writer that passes them on when due,
  // in order, at the rate limit, and not while held. With no toxic in the way and nothing
  // queued, the reader writes the chunk itself from its one buffer: the chaos proxies sit
  // on every portal node's path to PostgreSQL, so the usual case (no experiment running)
  // pays no queue, no timer wake-up and no allocation per chunk.
  asio::awaitable<void> Pump(std::shared_ptr<Pipe> p, tcp::socket& from, tcp::socket& to,
                             bool downstream) {
    using namespace asio::experimental::awaitable_operators;
    auto queue = std::make_shared<std::deque<Chunk>>();
    auto wake_writer = std::make_shared<asio::steady_timer>(ioc_, Clock::time_point::max());
    auto wake_reader = std::make_shared<asio::steady_timer>(ioc_, Clock::time_point::max());
    p->timers.push_back(wake_writer);
    p->timers.push_back(wake_reader);
    wakeups_.push_back(wake_writer);
    auto forget = [this, wake_writer] { std::erase(wakeups_, wake_writer); };
    auto queued = std::make_shared<std::size_t>(0);
    auto eof = std::make_shared<bool>(false);
    auto writing = std::make_shared<bool>(false);  // the writer holds a chunk off the queue

    auto reader = [&, p, queue, wake_writer, wake_reader, queued, eof,
                   writing]() -> asio::awaitable<void> {
      Clock::time_point last_due{};
      std::vector<char> buf(kChunk);
      while (!p->closed) {
        while (*queued >= kMaxQueued && !p->closed) {
          wake_reader->expires_at(Clock::time_point::max());
          co_await wake_reader->async_wait(asio::as_tuple(asio::use_awaitable));
        }
        if (p->closed) break;
        auto [ec, n] =
            co_await from.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
        if (ec || n == 0) break;
        if (queue->empty() && !*writing && Direct(downstream)) {
          auto [wec, written] = co_await asio::async_write(to, asio::buffer(buf.data(), n),
                                                           asio::as_tuple(asio::use_awaitable));
          if (wec) {
            p->Close(false);
            break;
          }
          (downstream ? bytes_down_ : bytes_up_) += written;
          continue;
        }
        Clock::time_point due = std::max(last_due, Clock::now() + DelayFor(downstream));
        last_due = due;
        *queued += n;
        queue->push_back(Chunk{std::vector<char>(buf.data(), buf.data() + n), due});
        wake_writer->cancel();
      }
      *eof = true;
      wake_writer->cancel();
    };

    auto writer = [&, p, queue, wake_writer, wake_reader, queued, eof,
                   writing]() -> asio::awaitable<void> {
      std::optional<Clock::time_point> held_since;
      while (!p->closed) {
        if (toxics_.hold) {
          if (!held_since) held_since = Clock::now();
          if (toxics_.close_after_ms > 0 &&
              Clock::now() - *held_since >= milliseconds(toxics_.close_after_ms)) {
            p->Close(false);
            break;
          }
          wake_writer->expires_after(milliseconds(50));
          co_await wake_writer->async_wait(asio::as_tuple(asio::use_awaitable));
          continue;
        }
        held_since.reset();
        if (queue->empty()) {
          if (*eof) break;
          wake_writer->expires_at(Clock::time_point::max());
          co_await wake_writer->async_wait(asio::as_tuple(asio::use_awaitable));
          continue;
        }
        if (queue->front().due > Clock::now()) {
          wake_writer->expires_at(queue->front().due);
          co_await wake_writer->async_wait(asio::as_tuple(asio::use_awaitable));
          continue;  // toxics may have changed meanwhile
        }
        Chunk c = std::move(queue->front());
        queue->pop_front();
        *writing = true;
        std::size_t off = 0;
        while (off < c.data.size() && !p->closed) {
          std::size_t slice = c.data.size() - off;
          const int64_t rate = toxics_.rate_kb_s;
          if (rate > 0)
            slice = std::min<std::size_t>(slice, std::max<int64_t>(1, rate * 1000 / 20));
          auto [ec, n] = co_await asio::async_write(to, asio::buffer(c.data.data() + off, slice),
                                                    asio::as_tuple(asio::use_awaitable));
          if (ec) {
            p->Close(false);
            break;
          }
          off += n;
          (downstream ? bytes_down_ : bytes_up_) += n;
          if (rate > 0) {
            // n bytes at rate kB/s take n / rate ms
            wake_writer->expires_after(milliseconds(static_cast<int64_t>(n) / rate));
            co_await wake_writer->async_wait(asio::as_tuple(asio::use_awaitable));
          }
        }
        *writing = false;
        *queued -= c.data.size();
        wake_reader->cancel();
      }
      // the source closed and everything queued is out: pass the half-close on
      boost::system::error_code ec;
      if (!p->closed) to.shutdown(tcp::socket::shutdown_send, ec);
    };

    co_await (reader() && writer());
    forget();
  }

  asio::io_context& ioc_;
  ProxySpec spec_;
  int connect_timeout_ms_;
  tcp::endpoint upstream_;
  std::mt19937 rng_;
  Toxics toxics_;
  std::shared_ptr<tcp::acceptor> acceptor_;
  uint16_t bound_port_ = 0;
  std::list<std::shared_ptr<Pipe>> pipes_;
  std::vector<std::shared_ptr<asio::steady_timer>> wakeups_;
  uint64_t accepted_ = 0, connect_failures_ = 0, bytes_up_ = 0, bytes_down_ = 0;
};

}  // namespace

struct NetProxyServer::Impl {
  asio::io_context& ioc;
  NetProxyOptions options;
  std::vector<std::unique_ptr<Proxy>> proxies;
  std::unique_ptr<stubdeps::HttpService> admin_service;
  std::unique_ptr<stubdeps::Listener> admin;

  Proxy* Find(std::string_view name) {
    for (auto& p : proxies)
      if (p->name() == name) return p.get();
    return nullptr;
  }

  json::object All() const {
    json::array list;
    for (const auto& p : proxies) list.push_back(p->Json());
    return json::object{{"proxies", std::move(list)}};
  }
};

NetProxyServer::NetProxyServer(asio::io_context& ioc, NetProxyOptions options)
    : impl_(std::make_unique<Impl>(Impl{ioc, std::move(options), {}, nullptr, nullptr})) {
  for (const auto& spec : impl_->options.proxies) {
    if (impl_->Find(spec.name))
      throw std::invalid_argument("two proxies are named '" + spec.name + "'");
    impl_->proxies.push_back(std::make_unique<Proxy>(ioc, spec, impl_->options.connect_timeout_ms));
  }
  impl_->admin_service = std::make_unique<stubdeps::HttpService>();
  impl_->admin_service->name = "admin";
  impl_->admin_service->handle = [this](const http::Request& r) { return Handle(r); };
  const stubdeps::HttpService* svc = impl_->admin_service.get();
  impl_->admin = std::make_unique<stubdeps::Listener>(
      ioc, "admin",
      tcp::endpoint(asio::ip::make_address(impl_->options.admin_host), impl_->options.admin_port),
      [svc](std::shared_ptr<stubdeps::Connection> c) {
        return stubdeps::ServeHttp(std::move(c), *svc);
      });
}

NetProxyServer::~NetProxyServer() = default;

void NetProxyServer::Open() {
  impl_->admin->Open();
  for (auto& p : impl_->proxies) p->Open();
}

void NetProxyServer::Close() {
  impl_->admin->Close();
  for (auto& p : impl_->proxies) p->Stop();
}

uint16_t NetProxyServer::admin_port() const { return impl_->admin->port(); }

uint16_t NetProxyServer::listen_port(std::string_view proxy) const {
  Proxy* p = impl_->Find(proxy);
  return p ? p->port() : 0;
}

http::Response NetProxyServer::Handle(const http::Request& req) {
  try {
    const std::string_view path = req.path;
    const std::string_view m = req.method;
    if (path == "/healthz") {
      if (m != "GET") return stubdeps::NoRoute(true, "GET");
      return stubdeps::JsonResponse(200, json::object{{"status", "ok"}});
    }
    if (path == "/proxies" || path == "/proxies/") {
      if (m == "GET") return stubdeps::JsonResponse(200, impl_->All());
      if (m == "DELETE") {
        for (auto& p : impl_->proxies) p->Set(Toxics{});
        return stubdeps::JsonResponse(200, impl_->All());
      }
      return stubdeps::NoRoute(true, "GET, DELETE");
    }
    constexpr std::string_view kPrefix = "/proxies/";
    if (path.starts_with(kPrefix)) {
      std::string_view name = path.substr(kPrefix.size());
      Proxy* p = impl_->Find(name);
      if (!p) {
        std::string names;
        for (auto& x : impl_->proxies) names += (names.empty() ? "" : ", ") + x->name();
        return stubdeps::ErrorJson(
            404, "unknown_proxy",
            "No proxy named '" + std::string(name).substr(0, 64) + "'. Proxies: " + names + ".");
      }
      if (m == "GET") return stubdeps::JsonResponse(200, p->Json());
      if (m == "PUT") {
        Toxics t = ParseToxics(req);  // throws before anything changes
        p->Set(t);
        return stubdeps::JsonResponse(200, p->Json());
      }
      if (m == "DELETE") {
        p->Set(Toxics{});
        return stubdeps::JsonResponse(200, p->Json());
      }
      return stubdeps::NoRoute(true, "GET, PUT, DELETE");
    }
    return stubdeps::NoRoute(false, "");
  } catch (...) {
    return stubdeps::ErrorFromException(std::current_exception());
  }
}

int RunNetProxy(const NetProxyOptions& o) {
  log::Init("net-proxy", "net-proxy");
  if (o.proxies.empty()) {
    log::Error("net-proxy: give at least one --proxy NAME,LISTEN_HOST:PORT,UPSTREAM_HOST:PORT");
    return 2;
  }
  asio::io_context ioc(1);
  std::unique_ptr<NetProxyServer> server;
  try {
    server = std::make_unique<NetProxyServer>(ioc, o);
    server->Open();
  } catch (const std::exception& e) {
    log::Error("net-proxy: cannot start: {}", e.what());
    return 2;
  }
  for (const auto& p : o.proxies)
    log::Info("net-proxy {}: {}:{} -> {}:{}", p.name, p.listen_host, server->listen_port(p.name),
              p.upstream_host, p.upstream_port);
  log::Info("net-proxy: admin API on http://{}:{}", o.admin_host, server->admin_port());
  if (!o.status_file.empty()) {
    json::array list;
    for (const auto& p : o.proxies)
      list.push_back(json::object{
          {"name", p.name},
          {"listen", p.listen_host + ":" + std::to_string(server->listen_port(p.name))},
          {"upstream", p.upstream_host + ":" + std::to_string(p.upstream_port)}});
    const std::string tmp = o.status_file + ".tmp";
    {
      std::ofstream f(tmp, std::ios::trunc);
      f << json::serialize(
               json::object{{"admin", o.admin_host + ":" + std::to_string(server->admin_port())},
                            {"pid", static_cast<int64_t>(::getpid())},
                            {"proxies", std::move(list)}})
        << "\n";
      if (!f.flush()) {
        log::Error("net-proxy: cannot write {}", tmp);
        return 2;
      }
    }
    if (std::rename(tmp.c_str(), o.status_file.c_str()) != 0) {
      log::Error("net-proxy: cannot rename {} to {}", tmp, o.status_file);
      return 2;
    }
  }
  asio::signal_set signals(ioc, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log::Info("net-proxy: signal {}: stopping", sig);
    server->Close();
    ioc.stop();
  });
  ioc.run();
  return 0;
}

}  // namespace continuum::chaos
