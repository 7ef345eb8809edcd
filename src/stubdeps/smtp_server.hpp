// The SMTP stand-in's I/O: one SmtpSession per connection, fed line by line, with the
// fault mode applied: timeout -> accept and stay silent; slow -> the greeting and the
// answer to the end of DATA come after delay_ms; error -> 451 4.3.0 to MAIL FROM (and
// to the end of DATA); refuse -> the listener is closed. One JSON access line per
// command; addresses and subjects stay out of the log (they go to the received log).
// With a TLS context the EHLO reply offers STARTTLS (RFC 3207); the access line of every
// command says whether TLS was on, and each received mail records it ("tls").
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <functional>
#include <memory>
#include <string>

#include "stubdeps/fault.hpp"
#include "stubdeps/listener.hpp"
#include "stubdeps/smtp_session.hpp"

namespace continuum::stubdeps {

struct SmtpService {
  const FaultState* fault = nullptr;
  std::string hostname = "stub-deps.continuum.test";
  SmtpLimits limits;
  std::function<void(const SmtpMail&)> on_mail;
  std::function<std::string()> next_queue_id;
  boost::asio::ssl::context* tls = nullptr;  // set: STARTTLS offered
};

boost::asio::awaitable<void> ServeSmtp(std::shared_ptr<Connection> conn,
                                       const SmtpService& service);

}  // namespace continuum::stubdeps
