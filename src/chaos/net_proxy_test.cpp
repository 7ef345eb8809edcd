#include "chaos/net_proxy.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <future>
#include <random>
#include <thread>
#include <vector>

#include "core/error.hpp"

namespace continuum::chaos {
namespace {
namespace asio = boost::asio;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

http::Request Req(std::string method, std::string path, std::string body = "") {
  http::Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.target = r.path;
  r.body = std::move(body);
  r.headers.emplace_back("content-type", "application/json");
  return r;
}

std::string ErrorOf(std::string body) {
  try {
    ParseToxics(Req("PUT", "/proxies/x", std::move(body)));
  } catch (const Error& e) {
    EXPECT_EQ(e.http_status(), 400);
    return e.what();
  }
  return "";
}

TEST(NetProxyToxics, ParsesTheWholeSet) {
  Toxics t = ParseToxics(Req("PUT", "/p", R"({"latency_ms": 200, "jitter_ms": 50})"));
  EXPECT_EQ(t.latency_ms, 200);
  EXPECT_EQ(t.jitter_ms, 50);
  EXPECT_FALSE(t.hold);
  EXPECT_TRUE(t.any());
  t = ParseToxics(Req("PUT", "/p", R"({"hold": true, "close_after_ms": 3000})"));
  EXPECT_TRUE(t.hold);
  EXPECT_EQ(t.close_after_ms, 3000);
  EXPECT_FALSE(ParseToxics(Req("PUT", "/p", "{}")).any());
  EXPECT_EQ(ParseToxics(Req("PUT", "/p", ToxicsJson(t))), t);  // round trip
}

TEST(NetProxyToxics, RefusesWhatItCannotDo) {
  EXPECT_NE(ErrorOf(R"({"latency": 5})").find("Unknown field 'latency'"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"latency_ms": -1})").find("\"latency_ms\" must be from 0"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"latency_ms": "5"})").find("whole number"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"latency_ms": 1.5})").find("whole number"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"reset": 1})").find("true or false"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"latency_ms": 10, "jitter_ms": 20})").find("must not exceed"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"close_after_ms": 10})").find("goes with \"hold\""), std::string::npos);
  EXPECT_NE(ErrorOf("[1]").find("JSON object"), std::string::npos);
  EXPECT_NE(ErrorOf("{").find("not valid JSON"), std::string::npos);
}

TEST(NetProxySpec, Parses) {
  ProxySpec p = ParseProxySpec("us-east,127.0.0.1:15450,127.0.0.1:15441");
  EXPECT_EQ(p.name, "us-east");
  EXPECT_EQ(p.listen_host, "127.0.0.1");
  EXPECT_EQ(p.listen_port, 15450);
  EXPECT_EQ(p.upstream_port, 15441);
  for (const char* bad :
       {"", "a", "a,127.0.0.1:1", "a,127.0.0.1:1,127.0.0.1:2,x", "a,localhost:1,127.0.0.1:2",
        "a,127.0.0.1:99999,127.0.0.1:2", "a,127.0.0.1:1,127.0.0.1:0", "a b,127.0.0.1:1,127.0.0.1:2",
        ",127.0.0.1:1,127.0.0.1:2"})
    EXPECT_THROW(ParseProxySpec(bad), std::invalid_argument) << bad;
}

// An echo server as the upstream, and the proxy in front of it, on a background thread.
class NetProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    echo_ = std::make_unique<tcp::acceptor>(ioc_,
                                            tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    asio::co_spawn(ioc_, Echo(), asio::detached);
    NetProxyOptions o;
    o.admin_port = 0;
    o.connect_timeout_ms = 500;
    o.proxies.push_back(
        ProxySpec{"db", "127.0.0.1", 0, "127.0.0.1", echo_->local_endpoint().port()});
    server_ = std::make_unique<NetProxyServer>(ioc_, o);
    server_->Open();
    port_ = server_->listen_port("db");
    thread_ = std::thread([this] { ioc_.run(); });
  }
  void TearDown() override {
    asio::post(ioc_, [this] {
      server_->Close();
      boost::system::error_code ec;
      echo_->close(ec);
    });
    // let the sessions unwind, then stop
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ioc_.stop();
    thread_.join();
  }

  asio::awaitable<void> Echo() {
    for (;;) {
      auto [ec, s] = co_await echo_->async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      asio::co_spawn(
          ioc_,
          [sock = std::make_shared<tcp::socket>(std::move(s))]() -> asio::awaitable<void> {
            char buf[8192];
            for (;;) {
              auto [e, n] = co_await sock->async_read_some(asio::buffer(buf),
                                                           asio::as_tuple(asio::use_awaitable));
              if (e) co_return;
              auto [e2, m] = co_await asio::async_write(*sock, asio::buffer(buf, n),
                                                        asio::as_tuple(asio::use_awaitable));
              if (e2) co_return;
            }
          },
          asio::detached);
    }
  }

  // The admin API, called on the proxy's thread.
  json::value Admin(std::string method, std::string path, std::string body = "",
                    int want_status = 200) {
    std::promise<http::Response> done;
    asio::post(ioc_, [&] { done.set_value(server_->Handle(Req(method, path, body))); });
    http::Response r = done.get_future().get();
    EXPECT_EQ(r.status, want_status) << r.body;
    return json::parse(r.body);
  }

  tcp::socket Connect() {
    tcp::socket s(client_ioc_);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    // a proxy that never answers fails the test instead of hanging it
    timeval tv{5, 0};
    setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return s;
  }

  // Sends `n` bytes and reads them back; the seconds it took.
  double RoundTrip(tcp::socket& s, std::size_t n) {
    std::string out(n, 'x');
    auto t0 = Clock::now();
    asio::write(s, asio::buffer(out));
    std::string in(n, '\0');
    asio::read(s, asio::buffer(in));
    EXPECT_EQ(in, out);
    return std::chrono::duration<double>(Clock::now() - t0).count();
  }

  asio::io_context ioc_{1};
  asio::io_context client_ioc_;
  std::unique_ptr<tcp::acceptor> echo_;
  std::unique_ptr<NetProxyServer> server_;
  uint16_t port_ = 0;
  std::thread thread_;
};

TEST_F(NetProxyTest, ForwardsBothWaysAndCounts) {
  auto s = Connect();
  EXPECT_LT(RoundTrip(s, 100), 0.5);
  EXPECT_LT(RoundTrip(s, 100'000), 2.0);
  // the client can read the last bytes before the proxy's writer counts them: wait for it
  json::object p;
  for (int i = 0; i < 100; ++i) {
    p = Admin("GET", "/proxies/db").as_object();
    if (p.at("bytes_to_client").to_number<uint64_t>() == 100'100u) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(p.at("connections_open").to_number<uint64_t>(), 1u);
  EXPECT_EQ(p.at("bytes_to_upstream").to_number<uint64_t>(), 100'100u);
  EXPECT_EQ(p.at("bytes_to_client").to_number<uint64_t>(), 100'100u);
  EXPECT_TRUE(p.at("listening").as_bool());
}

TEST_F(NetProxyTest, LatencyDelaysEveryAnswerAndIsRemovedAtRunTime) {
  auto s = Connect();  // opened before the toxic: it applies to open connections too
  Admin("PUT", "/proxies/db", R"({"latency_ms": 150, "jitter_ms": 20})");
  for (int i = 0; i < 3; ++i) EXPECT_GE(RoundTrip(s, 10), 0.125);
  auto fresh = Connect();
  EXPECT_GE(RoundTrip(fresh, 10), 0.125);
  Admin("DELETE", "/proxies/db");
  EXPECT_LT(RoundTrip(s, 10), 0.125);
}

TEST_F(NetProxyTest, RateLimitsTheBytes) {
  Admin("PUT", "/proxies/db", R"({"rate_kb_s": 100})");
  auto s = Connect();
  // 50 kB each way at 100 kB/s: 0.5 s, less the first 50 ms slice that goes out at once
  EXPECT_GE(RoundTrip(s, 50'000), 0.4);
}

TEST_F(NetProxyTest, DownRefusesAndClosesThenComesBack) {
  auto s = Connect();
  Admin("PUT", "/proxies/db", R"({"down": true})");
  char c;
  boost::system::error_code ec;
  s.read_some(asio::buffer(&c, 1), ec);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  tcp::socket t(client_ioc_);
  t.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
  EXPECT_EQ(ec, asio::error::connection_refused);
  EXPECT_FALSE(Admin("GET", "/proxies/db").at("listening").as_bool());
  Admin("DELETE", "/proxies");
  auto u = Connect();
  EXPECT_LT(RoundTrip(u, 10), 0.5);
}

TEST_F(NetProxyTest, ResetResetsOpenAndNewConnections) {
  auto s = Connect();
  RoundTrip(s, 10);
  Admin("PUT", "/proxies/db", R"({"reset": true})");
  char c;
  boost::system::error_code ec;
  s.read_some(asio::buffer(&c, 1), ec);
  EXPECT_EQ(ec, asio::error::connection_reset) << ec.message();
  auto t = Connect();  // accepted, then reset
  t.read_some(asio::buffer(&c, 1), ec);
  EXPECT_EQ(ec, asio::error::connection_reset) << ec.message();
}

TEST_F(NetProxyTest, HoldPassesNothingThenClosesAfterItsTime) {
  auto s = Connect();
  Admin("PUT", "/proxies/db", R"({"hold": true, "close_after_ms": 300})");
  auto t0 = Clock::now();
  asio::write(s, asio::buffer(std::string("ping")));
  char buf[8];
  boost::system::error_code ec;
  std::size_t n = s.read_some(asio::buffer(buf), ec);  // nothing comes back; then EOF
  double waited = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_EQ(n, 0u);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  EXPECT_GE(waited, 0.25);
}

TEST_F(NetProxyTest, HeldBytesFlowWhenTheHoldEnds) {
  auto s = Connect();
  Admin("PUT", "/proxies/db", R"({"hold": true})");
  asio::write(s, asio::buffer(std::string("ping")));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(s.available(), 0u);
  Admin("DELETE", "/proxies/db");
  char buf[4];
  asio::read(s, asio::buffer(buf));
  EXPECT_EQ(std::string(buf, 4), "ping");
}

TEST_F(NetProxyTest, AnUnreachableUpstreamResetsTheClient) {
  asio::post(ioc_, [this] { echo_->close(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto s = Connect();
  char c;
  boost::system::error_code ec;
  s.read_some(asio::buffer(&c, 1), ec);
  EXPECT_TRUE(ec == asio::error::connection_reset || ec == asio::error::eof) << ec.message();
  EXPECT_EQ(Admin("GET", "/proxies/db").at("upstream_connect_failures").to_number<uint64_t>(), 1u);
}

// Chunks go straight out while no toxic is set and through the queue while one is: as
// toxics come and go mid-stream, no byte may overtake another (a chunk read while the
// writer still writes or paces out an earlier one must wait for it), and the client's
// half-close goes through after its last byte. The client reads slower than it writes.
TEST_F(NetProxyTest, BytesKeepTheirOrderAsToxicsComeAndGo) {
  auto s = Connect();
  const int fd = s.native_handle();
  constexpr std::size_t kTotal = 3u << 20;  // sent at ~4 MB/s, read at ~2 MB/s
  auto byte_at = [](std::size_t i) { return static_cast<char>((i * 131 + (i >> 12)) & 0xff); };
  std::thread writer([&] {
    std::mt19937 rng(7);
    std::vector<char> out(8'000);
    for (std::size_t i = 0; i < kTotal;) {
      std::size_t n = std::min<std::size_t>(kTotal - i, 1 + rng() % out.size());
      for (std::size_t k = 0; k < n; ++k) out[k] = byte_at(i + k);
      for (std::size_t off = 0; off < n;) {
        ssize_t w = ::send(fd, out.data() + off, n - off, MSG_NOSIGNAL);
        if (w <= 0) return;
        off += static_cast<std::size_t>(w);
      }
      i += n;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ::shutdown(fd, SHUT_WR);
  });
  std::atomic<bool> done{false};
  std::size_t received = 0, first_wrong = SIZE_MAX;
  bool eof = false;
  std::thread reader([&] {
    std::vector<char> in(2'048);
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      ssize_t r = ::recv(fd, in.data(), in.size(), 0);
      if (r == 0) eof = true;
      if (r <= 0) break;  // EOF, or 5 s without a byte (SO_RCVTIMEO)
      for (ssize_t k = 0; k < r && first_wrong == SIZE_MAX; ++k)
        if (in[k] != byte_at(received + k)) first_wrong = received + k;
      received += static_cast<std::size_t>(r);
    }
    done = true;
  });
  // 100 kB/s paces 5 kB slices 50 ms apart: the toxic is lifted mid-chunk
  const char* toxics[] = {R"({"rate_kb_s": 100})", R"({"latency_ms": 3, "jitter_ms": 2})",
                          R"({"hold": true})", R"({"rate_kb_s": 5000})", R"({"latency_ms": 1})"};
  int changes = 0;
  for (auto t0 = Clock::now(); !done && Clock::now() - t0 < std::chrono::seconds(20);) {
    Admin("PUT", "/proxies/db", toxics[changes++ % std::size(toxics)]);
    std::this_thread::sleep_for(std::chrono::milliseconds(7));
    Admin("DELETE", "/proxies/db");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  reader.join();
  if (!eof) ::shutdown(fd, SHUT_RDWR);  // a stalled proxy: wake a send blocked on a full socket
  writer.join();
  EXPECT_EQ(first_wrong, SIZE_MAX) << "byte " << first_wrong << " out of order";
  // every byte back: the half-close reached the echo server only after the last byte it
  // had to echo, and the echo's close came back after the last echoed one
  EXPECT_EQ(received, kTotal);
  EXPECT_TRUE(eof) << "the stream did not end";
  EXPECT_GE(changes, 20) << "the stream ended before the toxics had several turns each";
}

TEST_F(NetProxyTest, AdminApiRefusesBadRequestsAndChangesNothing) {
  Admin("PUT", "/proxies/db", R"({"latency_ms": 40})");
  Admin("PUT", "/proxies/db", R"({"latency_ms": 40, "bogus": 1})", 400);
  EXPECT_EQ(Admin("GET", "/proxies/db").at("toxics").at("latency_ms").to_number<int64_t>(), 40);
  auto nf = Admin("PUT", "/proxies/nope", "{}", 404).as_object();
  EXPECT_NE(std::string(nf.at("error").as_string()).find("Proxies: db"), std::string::npos);
  Admin("POST", "/proxies/db", "{}", 405);
  EXPECT_EQ(Admin("GET", "/proxies").at("proxies").as_array().size(), 1u);
}

}  // namespace
}  // namespace continuum::chaos
