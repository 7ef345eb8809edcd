#include "stubdeps/smtp_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <memory>

#include "core/log.hpp"

namespace continuum::stubdeps {
namespace asio = boost::asio;

namespace {

constexpr std::chrono::seconds kCommandTimeout{300};  // RFC 5321 4.5.3.2.7
constexpr std::chrono::seconds kWriteTimeout{30};
constexpr std::size_t kMaxBufferedLine = 64 * 1024;

using TlsStream = asio::ssl::stream<boost::beast::tcp_stream&>;

asio::awaitable<bool> Send(Connection& conn, TlsStream* tls, const std::string& text) {
  conn.stream.expires_after(kWriteTimeout);
  boost::system::error_code ec;
  if (tls)
    std::tie(ec, std::ignore) =
        co_await asio::async_write(*tls, asio::buffer(text), asio::as_tuple(asio::use_awaitable));
  else
    std::tie(ec, std::ignore) = co_await asio::async_write(conn.stream, asio::buffer(text),
                                                           asio::as_tuple(asio::use_awaitable));
  co_return !ec;
}

FaultMode ModeOf(const SmtpService& s) { return s.fault ? s.fault->mode : FaultMode::kOk; }

void AccessLog(const Connection& conn, std::string_view verb, int code, double ms, FaultMode mode,
               bool tls = false) {
  log::Access(fmt::format(
      R"("dependency":"smtp","command":"{}","reply":{},"ms":{:.3f},"fault":"{}","client":"{}","tls":{})",
      log::JsonEscape(verb), code, ms, ModeName(mode), log::JsonEscape(conn.peer), tls));
}

}  // namespace

asio::awaitable<void> ServeSmtp(std::shared_ptr<Connection> conn, const SmtpService& service) {
  SmtpSession session(service.hostname, service.limits, service.next_queue_id);
  session.set_starttls_available(service.tls != nullptr);
  std::unique_ptr<TlsStream> tls;  // after STARTTLS
  FaultMode mode = ModeOf(service);
  if (mode == FaultMode::kTimeout || mode == FaultMode::kRefuse) {
    co_await Hold(*conn, kHoldLimit);
    AccessLog(*conn, "CONNECT", 0, 0, mode);
    co_return;
  }
  if (mode == FaultMode::kSlow && !co_await Delay(*conn, service.fault->delay_ms)) co_return;
  if (!co_await Send(*conn, nullptr, session.Greeting())) co_return;

  std::string buf;
  while (!conn->closed) {
    conn->stream.expires_after(kCommandTimeout);
    boost::system::error_code ec;
    std::size_t n = 0;
    if (tls)
      std::tie(ec, n) =
          co_await asio::async_read_until(*tls, asio::dynamic_buffer(buf, kMaxBufferedLine), '\n',
                                          asio::as_tuple(asio::use_awaitable));
    else
      std::tie(ec, n) =
          co_await asio::async_read_until(conn->stream, asio::dynamic_buffer(buf, kMaxBufferedLine),
                                          '\n', asio::as_tuple(asio::use_awaitable));
    if (conn->closed) break;
    if (ec == asio::error::not_found) {  // no line end within the buffer limit
      auto r = SmtpSession::LineTooLong();
      AccessLog(*conn, r.verb, r.code, 0, ModeOf(service), tls != nullptr);
      co_await Send(*conn, tls.get(), r.text);
      break;
    }
    if (ec) break;
    const auto start = std::chrono::steady_clock::now();
    std::string_view line(buf.data(), n - 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

    mode = ModeOf(service);
    if (mode == FaultMode::kTimeout || mode == FaultMode::kRefuse) {
      co_await Hold(*conn, kHoldLimit);
      AccessLog(*conn, "?", 0, 0, mode);
      break;
    }
    SmtpSession::Reply reply = session.OnLine(line, mode == FaultMode::kError);
    buf.erase(0, n);
    if (reply.mail && service.on_mail) service.on_mail(*reply.mail);
    if (reply.code == 0) continue;  // a line of DATA
    if (mode == FaultMode::kSlow && reply.verb == "DATA-END" &&
        !co_await Delay(*conn, service.fault->delay_ms))
      break;
    AccessLog(
        *conn, reply.verb, reply.code,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count(),
        mode, tls != nullptr);
    if (!co_await Send(*conn, tls.get(), reply.text) || reply.close) break;
    if (reply.start_tls) {
      buf.clear();  // RFC 3207 4.2: nothing pipelined before the handshake counts
      tls = std::make_unique<TlsStream>(conn->stream, *service.tls);
      conn->stream.expires_after(kWriteTimeout);
      auto [hec] = co_await tls->async_handshake(asio::ssl::stream_base::server,
                                                 asio::as_tuple(asio::use_awaitable));
      AccessLog(*conn, "TLS-HANDSHAKE", hec ? 0 : 220, 0, mode, !hec);
      if (hec) break;
      session.OnTlsStarted();
    }
  }
}

}  // namespace continuum::stubdeps
