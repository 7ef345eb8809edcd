#include "stubdeps/http_session.hpp"

#include <sodium.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <chrono>

#include "core/log.hpp"
#include "http/outcome.hpp"
#include "http/request_id.hpp"
#include "stubdeps/api.hpp"

namespace continuum::stubdeps {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;

namespace {

constexpr std::chrono::seconds kHeaderTimeout{30};
constexpr std::chrono::seconds kIdleTimeout{60};
constexpr std::chrono::seconds kWriteTimeout{30};

http::Response Unavailable(const HttpService& s) {
  const std::string msg =
      "The " + s.name + " service is unavailable (stub-deps fault mode: error).";
  return s.fhir ? http::OutcomeResponse(503, "transient", msg) : ErrorJson(503, "unavailable", msg);
}

void AccessLog(const HttpService& s, const http::Request& req, int status, double ms,
               FaultMode mode) {
  log::Access(fmt::format(
      R"("dependency":"{}","request_id":"{}","method":"{}","path":"{}","status":{},"ms":{:.3f},"fault":"{}","client":"{}","tls":{})",
      s.name, log::JsonEscape(req.request_id), log::JsonEscape(req.method.substr(0, 16)),
      log::JsonEscape(req.path.substr(0, 200)), status, ms, ModeName(mode),
      log::JsonEscape(req.client_address), s.tls != nullptr));
}

template <typename Stream>
asio::awaitable<void> Serve(std::shared_ptr<Connection> conn, Stream& stream,
                            const HttpService& service);

}  // namespace

asio::awaitable<void> ServeHttp(std::shared_ptr<Connection> conn, const HttpService& service) {
  if (!service.tls) {
    co_await Serve(conn, conn->stream, service);
    co_return;
  }
  asio::ssl::stream<beast::tcp_stream&> tls(conn->stream, *service.tls);
  conn->stream.expires_after(kHeaderTimeout);
  auto [ec] = co_await tls.async_handshake(asio::ssl::stream_base::server,
                                           asio::as_tuple(asio::use_awaitable));
  if (ec) {
    // A client that does not trust our certificate aborts here: worth a line.
    log::Access(fmt::format(R"("dependency":"{}","tls_handshake":"{}","client":"{}","tls":true)",
                            service.name, log::JsonEscape(ec.message()),
                            log::JsonEscape(conn->peer)));
    co_return;
  }
  co_await Serve(conn, tls, service);
}

namespace {

template <typename Stream>
asio::awaitable<void> Serve(std::shared_ptr<Connection> conn, Stream& stream,
                            const HttpService& service) {
  beast::flat_buffer buffer;
  bool first = true;
  while (!conn->closed) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(service.body_limit);
    conn->stream.expires_after(first ? kHeaderTimeout : kIdleTimeout);
    first = false;
    auto [ec, n] =
        co_await bhttp::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    if (conn->closed) break;
    // A malformed request (Beast's HTTP error category; EOF and a cut-off message are
    // just the client leaving) gets a 400 or 413 and the connection is closed.
    const bool malformed =
        ec && &ec.category() == &bhttp::make_error_code(bhttp::error::bad_target).category() &&
        ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message;
    if (malformed) {
      const int status = ec == bhttp::error::body_limit ? 413 : 400;
      http::Response r = ErrorJson(status, status == 413 ? "too_large" : "invalid_request",
                                   "The request could not be read as HTTP/1.1: " + ec.message());
      bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), 11};
      res.set(bhttp::field::content_type, r.content_type);
      res.body() = r.body;
      res.keep_alive(false);
      res.prepare_payload();
      conn->stream.expires_after(kWriteTimeout);
      co_await bhttp::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
      break;
    }
    if (ec) break;  // EOF, timeout, reset, closed

    const auto start = std::chrono::steady_clock::now();
    auto& breq = parser.get();
    http::Request req;
    req.method = std::string(breq.method_string());
    req.target = std::string(breq.target());
    for (auto& f : breq) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    req.client_address = conn->peer;
    std::string_view rid = req.header("x-request-id");
    req.request_id = http::SaneRequestId(rid) ? std::string(rid) : http::NewRequestId();
    req.body = std::move(breq.body());
    auto url = boost::urls::parse_origin_form(req.target);
    if (url) {
      req.path = url->path();
      for (auto p : url->params()) req.query.emplace_back(p.key, p.value);
    } else {
      req.path = req.target.substr(0, req.target.find('?'));
    }

    const FaultMode mode = service.fault ? service.fault->mode : FaultMode::kOk;
    auto elapsed_ms = [&] {
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
          .count();
    };
    if (mode == FaultMode::kTimeout || mode == FaultMode::kRefuse) {
      co_await Hold(*conn, kHoldLimit);
      AccessLog(service, req, 0, elapsed_ms(), mode);  // 0: never answered
      break;
    }
    if (mode == FaultMode::kSlow && !co_await Delay(*conn, service.fault->delay_ms)) break;

    http::Response resp;
    if (!url) {
      resp = ErrorJson(400, "invalid_request", "The request target is not a valid URL path.");
    } else if (mode == FaultMode::kError) {
      resp = Unavailable(service);
    } else {
      try {
        resp = service.handle(req);
      } catch (...) {
        resp = ErrorFromException(std::current_exception());
      }
    }
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(resp.status),
                                            breq.version()};
    res.set(bhttp::field::server, "continuum-stub-deps");
    if (!resp.body.empty()) res.set(bhttp::field::content_type, resp.content_type);
    res.set("X-Request-Id", req.request_id);
    for (auto& [k, v] : resp.headers) res.set(k, v);
    res.body() = std::move(resp.body);
    res.keep_alive(breq.keep_alive() && !resp.close);
    res.prepare_payload();
    AccessLog(service, req, resp.status, elapsed_ms(), mode);
    conn->stream.expires_after(kWriteTimeout);
    auto [wec, wn] = co_await bhttp::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    if (wec || !res.keep_alive()) break;
  }
}

}  // namespace

}  // namespace continuum::stubdeps
