#include "deps/smtp_client.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <cctype>
#include <ctime>
#include <memory>

namespace continuum::deps::smtp {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;

bool OffersStartTls(std::string_view text) {
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? text.npos : nl - pos);
    std::string word;
    for (char c : line) {
      if (c == ' ') break;
      word += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    if (word == "STARTTLS") return true;
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return false;
}

std::optional<Reply> ParseReply(std::string_view buf, std::size_t* consumed) {
  Reply r;
  std::size_t pos = 0;
  for (;;) {
    auto eol = buf.find("\r\n", pos);
    if (eol == std::string_view::npos) {
      if (buf.size() - pos > 4096) throw SmtpError("SMTP reply line too long", 0);
      return std::nullopt;
    }
    std::string_view line = buf.substr(pos, eol - pos);
    if (line.size() < 3 || !std::isdigit(static_cast<unsigned char>(line[0])) ||
        !std::isdigit(static_cast<unsigned char>(line[1])) ||
        !std::isdigit(static_cast<unsigned char>(line[2])) ||
        (line.size() > 3 && line[3] != ' ' && line[3] != '-'))
      throw SmtpError("malformed SMTP reply: " + std::string(line.substr(0, 80)), 0);
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (r.code != 0 && code != r.code)
      throw SmtpError("SMTP reply changes its code mid-way: " + std::string(line.substr(0, 80)), 0);
    r.code = code;
    if (!r.text.empty()) r.text += '\n';
    if (line.size() > 4) r.text += line.substr(4);
    pos = eol + 2;
    if (line.size() == 3 || line[3] == ' ') {
      *consumed = pos;
      return r;
    }
  }
}

std::string DotStuff(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 32 + 8);
  bool line_start = true;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;  // CRLF: at the LF
    if (c == '\r' || c == '\n') {  // bare CR, bare LF or the LF of CRLF
      out += "\r\n";
      line_start = true;
      continue;
    }
    if (line_start && c == '.') out += '.';
    out += c;
    line_start = false;
  }
  if (!line_start) out += "\r\n";
  out += ".\r\n";
  return out;
}

namespace {

std::string HeaderValue(std::string_view v) {
  std::string out;
  for (char c : v)
    if (c != '\r' && c != '\n') out += c;
  return out;
}

}  // namespace

bool ValidAddress(std::string_view a) {
  auto at = a.find('@');
  if (a.empty() || a.size() > 254 || at == 0 || at == std::string_view::npos ||
      at + 1 == a.size() || a.find('@', at + 1) != std::string_view::npos)
    return false;
  for (char c : a)
    if (static_cast<unsigned char>(c) <= ' ' || c == '<' || c == '>' || c == 0x7f) return false;
  return true;
}

std::string FormatData(const Message& m, std::string_view date_rfc5322) {
  std::string text;
  text += "From: " + HeaderValue(m.from) + "\r\n";
  text += "To: " + HeaderValue(m.to) + "\r\n";
  text += "Subject: " + HeaderValue(m.subject) + "\r\n";
  text += "Date: " + HeaderValue(date_rfc5322) + "\r\n";
  if (!m.message_id.empty()) text += "Message-ID: <" + HeaderValue(m.message_id) + ">\r\n";
  text += "MIME-Version: 1.0\r\n";
  text += "Content-Type: text/plain; charset=utf-8\r\n";
  text += "Content-Transfer-Encoding: 8bit\r\n";
  text += "\r\n";
  text += m.body;
  return DotStuff(text);
}

namespace {

std::string NowRfc5322() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

// One SMTP connection under one deadline.
class Session {
 public:
  Session(asio::any_io_executor ex, const Server& s) : stream_(ex), server_(s) {}

  asio::awaitable<void> Connect() {
    boost::system::error_code aec;
    auto addr = asio::ip::make_address(server_.host, aec);
    if (aec) throw SmtpError("SMTP host must be an IP address: " + server_.host, 0);
    stream_.expires_after(server_.timeout);
    asio::ip::tcp::endpoint ep(addr, server_.port);
    auto [ec] = co_await stream_.async_connect(ep, asio::as_tuple(asio::use_awaitable));
    if (ec) throw Transport("connecting to", ec);
    co_await Expect("greeting", 220);
  }

  // EHLO, and STARTTLS + EHLO again when the server requires TLS (server_.tls set).
  asio::awaitable<void> Hello() {
    std::string ehlo = "EHLO " + server_.helo;
    Reply r = co_await Command(ehlo, 250);
    if (!server_.tls) co_return;
    if (!OffersStartTls(r.text))
      throw SmtpError("SMTP " + server_.host + ":" + std::to_string(server_.port) +
                          " does not offer STARTTLS; refusing to send in clear text "
                          "(allow_plaintext = true permits it)",
                      0);
    std::string starttls = "STARTTLS";
    co_await Command(starttls, 220);
    buf_.clear();  // RFC 3207 4.2: nothing read before the handshake is trusted
    tls_ = std::make_unique<ssl::stream<beast::tcp_stream&>>(stream_, *server_.tls);
    tls_->set_verify_callback(ssl::host_name_verification(server_.host));
    boost::system::error_code aec;
    asio::ip::make_address(server_.host, aec);
    if (aec) SSL_set_tlsext_host_name(tls_->native_handle(), server_.host.c_str());
    auto [hec] = co_await tls_->async_handshake(ssl::stream_base::client,
                                                asio::as_tuple(asio::use_awaitable));
    if (hec) throw Transport("TLS handshake (STARTTLS) with", hec);
    co_await Command(ehlo, 250);
  }

  // Sends `line` (CRLF added unless `raw`) and expects `code`.
  asio::awaitable<Reply> Command(const std::string& line, int code, bool raw = false) {
    std::string out = raw ? line : line + "\r\n";
    auto [ec, n] = co_await Write(out);
    if (ec) throw Transport("sending to", ec);
    std::string what = raw ? std::string("end of DATA") : line.substr(0, line.find(':'));
    co_return co_await Expect(what, code);
  }

  // Best effort: the message is already accepted (or the dialogue already failed).
  asio::awaitable<void> Quit() {
    std::string out = "QUIT\r\n";
    co_await Write(out);
    co_await ReadReply();
    boost::system::error_code ec;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  }

 private:
  asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> Write(
      const std::string& out) {
    if (tls_)
      co_return co_await asio::async_write(*tls_, asio::buffer(out),
                                           asio::as_tuple(asio::use_awaitable));
    co_return co_await asio::async_write(stream_, asio::buffer(out),
                                         asio::as_tuple(asio::use_awaitable));
  }

  SmtpError Transport(const char* what, const boost::system::error_code& ec) const {
    bool timed_out = ec == beast::error::timeout;
    return SmtpError(std::string(what) + " SMTP " + server_.host + ":" +
                         std::to_string(server_.port) + ": " +
                         (timed_out ? "timed out" : ec.message()),
                     0);
  }

  asio::awaitable<std::optional<Reply>> ReadReply() {
    for (;;) {
      std::size_t consumed = 0;
      auto r = ParseReply(buf_, &consumed);
      if (r) {
        buf_.erase(0, consumed);
        co_return r;
      }
      // read_some, not read_until "\r\n": the buffer may already hold the first lines
      // of a multi-line reply.
      std::tuple<boost::system::error_code, std::size_t> res;
      if (tls_)
        res = co_await tls_->async_read_some(asio::buffer(chunk_),
                                             asio::as_tuple(asio::use_awaitable));
      else
        res = co_await stream_.async_read_some(asio::buffer(chunk_),
                                               asio::as_tuple(asio::use_awaitable));
      auto [ec, n] = res;
      buf_.append(chunk_.data(), n);
      if (ec) {
        last_error_ = ec;
        co_return std::nullopt;
      }
    }
  }

  asio::awaitable<Reply> Expect(const std::string& what, int code) {
    auto r = co_await ReadReply();
    if (!r) throw Transport(("reading the reply to " + what + " from").c_str(), last_error_);
    if (r->code != code)
      throw SmtpError(
          "SMTP " + what + ": " + std::to_string(r->code) + " " + r->text.substr(0, 200), r->code);
    co_return *r;
  }

  beast::tcp_stream stream_;
  std::unique_ptr<ssl::stream<beast::tcp_stream&>> tls_;  // after STARTTLS
  Server server_;
  std::string buf_;
  std::array<char, 2048> chunk_{};
  boost::system::error_code last_error_;
};

}  // namespace

asio::awaitable<void> Send(const Server& server, const Message& m) {
  if (!ValidAddress(m.from)) throw SmtpError("invalid sender address", 0);
  if (!ValidAddress(m.to)) throw SmtpError("invalid recipient address", 0);
  auto ex = co_await asio::this_coro::executor;
  Session s(ex, server);
  co_await s.Connect();
  co_await s.Hello();
  std::string mail = "MAIL FROM:<" + m.from + ">";
  co_await s.Command(mail, 250);
  std::string rcpt = "RCPT TO:<" + m.to + ">";
  co_await s.Command(rcpt, 250);
  std::string data = "DATA";
  co_await s.Command(data, 354);
  std::string payload = FormatData(m, NowRfc5322());
  co_await s.Command(payload, 250, /*raw=*/true);
  // Accepted. QUIT is a courtesy: its failure does not make the message unsent.
  try {
    co_await s.Quit();
  } catch (const std::exception&) {
  }
}

asio::awaitable<void> Probe(const Server& server, const std::string& from) {
  auto ex = co_await asio::this_coro::executor;
  Session s(ex, server);
  co_await s.Connect();
  co_await s.Hello();
  std::string mail = "MAIL FROM:<" + from + ">";
  co_await s.Command(mail, 250);
  std::string rset = "RSET";
  co_await s.Command(rset, 250);
  try {
    co_await s.Quit();
  } catch (const std::exception&) {
  }
}

}  // namespace continuum::deps::smtp
