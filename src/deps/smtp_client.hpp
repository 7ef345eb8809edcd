// A small async SMTP client (RFC 5321 subset, STARTTLS per RFC 3207, no AUTH): one
// message per connection (EHLO, [STARTTLS, EHLO,] MAIL FROM, RCPT TO, DATA with
// dot-stuffing, QUIT) within one deadline.
//
// With Server::tls set (the default configuration: messages carry PHI), STARTTLS is
// required: a server whose EHLO reply does not offer it gets no MAIL FROM at all (SmtpError
// "does not offer STARTTLS"), and the certificate is verified against the host name or IP
// like any https:// dependency. Plain SMTP only when the caller leaves tls null, which the
// portal does only for a dependency configured with allow_plaintext = true. A 4xx/5xx reply, a
// malformed reply or a transport error throws SmtpError; returning means the server answered 250 to
// the end of DATA (it took the message). Use it under a deps::Dependency's circuit breaker
// (Dependency::Guard).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace continuum::deps::smtp {

struct SmtpError : std::runtime_error {
  SmtpError(const std::string& m, int code) : std::runtime_error(m), code(code) {}
  int code;  // the server's reply code; 0: transport error, timeout or malformed reply
};

struct Server {
  std::string host;  // an IP address
  uint16_t port = 25;
  std::string helo = "continuum.localhost";
  std::chrono::milliseconds timeout{5000};  // the whole dialogue
  // Verifying client context: STARTTLS required. Null: plain text (configured explicitly).
  boost::asio::ssl::context* tls = nullptr;
};

// True when an EHLO reply's text (lines joined by '\n') lists the STARTTLS extension.
bool OffersStartTls(std::string_view ehlo_text);

struct Message {
  std::string from;  // envelope and From: header, a bare address
  std::string to;    // one recipient, a bare address
  std::string subject;
  std::string body;        // plain text; any line endings
  std::string message_id;  // without <>; empty: none
};

// One reply: its code and its (joined) text lines.
struct Reply {
  int code = 0;
  std::string text;
};
// Parses one complete reply at the start of `buf` ("250-a\r\n250 b\r\n"); sets
// `consumed`. nullopt while incomplete; throws SmtpError(…, 0) when malformed.
std::optional<Reply> ParseReply(std::string_view buf, std::size_t* consumed);

// The DATA payload: CRLF line endings, a leading '.' doubled, a final CRLF, and the
// terminating ".\r\n".
std::string DotStuff(std::string_view text);

// Header fields and body of `m` (RFC 5322), dot-stuffed and terminated for DATA.
// CR and LF are removed from header values (no header injection).
std::string FormatData(const Message& m, std::string_view date_rfc5322);

// True for a plausible bare address (local@domain, no spaces, <, >, CR, LF).
bool ValidAddress(std::string_view a);

// Sends `m`; throws SmtpError unless the server accepted it.
boost::asio::awaitable<void> Send(const Server& server, const Message& m);
// Health check: greeting, EHLO, MAIL FROM:<from>, RSET, QUIT. Throws SmtpError.
boost::asio::awaitable<void> Probe(const Server& server, const std::string& from);

}  // namespace continuum::deps::smtp
