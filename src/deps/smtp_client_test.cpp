#include "deps/smtp_client.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <exception>
#include <string>
#include <vector>

namespace continuum::deps::smtp {
namespace {
namespace asio = boost::asio;
using asio::ip::tcp;

TEST(SmtpClient, ParsesSingleAndMultiLineReplies) {
  std::size_t used = 0;
  auto r = ParseReply("250 ok\r\nrest", &used);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->code, 250);
  EXPECT_EQ(r->text, "ok");
  EXPECT_EQ(used, 8u);
  r = ParseReply("250-mx Hello\r\n250-SIZE 10\r\n250 HELP\r\n", &used);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->code, 250);
  EXPECT_EQ(r->text, "mx Hello\nSIZE 10\nHELP");
  EXPECT_FALSE(ParseReply("250-mx Hello\r\n250 HE", &used).has_value());
  EXPECT_FALSE(ParseReply("", &used).has_value());
  r = ParseReply("354\r\n", &used);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->code, 354);
  EXPECT_THROW(ParseReply("hello\r\n", &used), SmtpError);
  EXPECT_THROW(ParseReply("250-a\r\n251 b\r\n", &used), SmtpError);
  EXPECT_THROW(ParseReply("25x ok\r\n", &used), SmtpError);
}

TEST(SmtpClient, DotStuffsAndNormalisesLineEndings) {
  EXPECT_EQ(DotStuff("a\nb"), "a\r\nb\r\n.\r\n");
  EXPECT_EQ(DotStuff("a\r\nb\r\n"), "a\r\nb\r\n.\r\n");
  EXPECT_EQ(DotStuff(".start\n..two\nmid.dle\n."), "..start\r\n...two\r\nmid.dle\r\n..\r\n.\r\n");
  EXPECT_EQ(DotStuff("x\r\n.\r\ny"), "x\r\n..\r\ny\r\n.\r\n");
  EXPECT_EQ(DotStuff(""), ".\r\n");
  EXPECT_EQ(DotStuff("bare\rcr"), "bare\r\ncr\r\n.\r\n");
}

TEST(SmtpClient, FormatsHeadersWithoutInjection) {
  Message m{"noreply@c.example", "pat@example.com", "Hi\r\nBcc: evil@x", "Body\n.", "n-1@c"};
  std::string d = FormatData(m, "Wed, 25 Nov 2026 10:00:00 +0000");
  EXPECT_NE(d.find("Subject: HiBcc: evil@x\r\n"), std::string::npos) << d;
  EXPECT_EQ(d.find("\r\nBcc:"), std::string::npos);
  EXPECT_NE(d.find("Message-ID: <n-1@c>\r\n"), std::string::npos);
  EXPECT_TRUE(d.ends_with("\r\n\r\nBody\r\n..\r\n.\r\n")) << d;
}

TEST(SmtpClient, ValidatesAddresses) {
  EXPECT_TRUE(ValidAddress("a@b.example"));
  EXPECT_FALSE(ValidAddress(""));
  EXPECT_FALSE(ValidAddress("ab.example"));
  EXPECT_FALSE(ValidAddress("@b"));
  EXPECT_FALSE(ValidAddress("a@"));
  EXPECT_FALSE(ValidAddress("a@b>\r\nRCPT TO:<c@d"));
  EXPECT_FALSE(ValidAddress("a b@c"));
}

// A scripted SMTP server: answers each client line with the next reply; records what
// it received.
struct FakeServer {
  std::vector<std::string> replies;  // [0] is the greeting
  std::vector<std::string> received;
  int fail_at = -1;  // reply index answered with 451 instead

  asio::awaitable<void> Serve(tcp::acceptor& acc) {
    auto sock = co_await acc.async_accept(asio::use_awaitable);
    std::string buf;
    std::string greet = replies[0];
    co_await asio::async_write(sock, asio::buffer(greet), asio::use_awaitable);
    bool in_data = false;
    for (std::size_t i = 1; i < replies.size();) {
      std::size_t n = co_await asio::async_read_until(
          sock, asio::dynamic_buffer(buf), in_data ? "\r\n.\r\n" : "\r\n", asio::use_awaitable);
      std::string got = buf.substr(0, n);
      buf.erase(0, n);
      received.push_back(got);
      in_data = got == "DATA\r\n";
      std::string reply = static_cast<int>(i) == fail_at ? "451 4.3.0 try later\r\n" : replies[i];
      ++i;
      co_await asio::async_write(sock, asio::buffer(reply), asio::use_awaitable);
      if (static_cast<int>(i - 1) == fail_at) in_data = false;
    }
  }
};

struct Outcome {
  bool ok = false;
  int code = -1;
  std::string error;
};

Outcome RunSend(FakeServer& fake, const Message& m, asio::ssl::context* tls = nullptr) {
  asio::io_context ioc;
  tcp::acceptor acc(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  Server s;
  s.host = "127.0.0.1";
  s.port = acc.local_endpoint().port();
  s.helo = "c.example";
  s.timeout = std::chrono::milliseconds(3000);
  s.tls = tls;
  Outcome out;
  asio::co_spawn(ioc, fake.Serve(acc), [](std::exception_ptr) {});
  asio::co_spawn(ioc, Send(s, m), [&](std::exception_ptr e) {
    if (!e) {
      out.ok = true;
      return;
    }
    try {
      std::rethrow_exception(e);
    } catch (const SmtpError& err) {
      out.code = err.code;
      out.error = err.what();
    }
  });
  ioc.run_for(std::chrono::seconds(5));
  return out;
}

const std::vector<std::string> kHappy = {
    "220 mx ESMTP\r\n", "250-mx Hello\r\n250 8BITMIME\r\n", "250 ok\r\n", "250 ok\r\n",
    "354 go ahead\r\n", "250 2.0.0 queued as Q1\r\n",       "221 bye\r\n"};

TEST(SmtpClient, SpeaksTheDialogue) {
  FakeServer fake{kHappy, {}, -1};
  Message m{"noreply@c.example", "pat@example.com", "Booked", ".hidden line\nsecond", "id-1@c"};
  auto out = RunSend(fake, m);
  ASSERT_TRUE(out.ok) << out.error;
  ASSERT_EQ(fake.received.size(), 6u);
  EXPECT_EQ(fake.received[0], "EHLO c.example\r\n");
  EXPECT_EQ(fake.received[1], "MAIL FROM:<noreply@c.example>\r\n");
  EXPECT_EQ(fake.received[2], "RCPT TO:<pat@example.com>\r\n");
  EXPECT_EQ(fake.received[3], "DATA\r\n");
  EXPECT_NE(fake.received[4].find("\r\n\r\n..hidden line\r\nsecond\r\n.\r\n"), std::string::npos)
      << fake.received[4];
  EXPECT_EQ(fake.received[5], "QUIT\r\n");
}

TEST(SmtpClient, FindsStartTlsInTheEhloReply) {
  EXPECT_TRUE(OffersStartTls("mx Hello c\nSIZE 10\nSTARTTLS\nHELP"));
  EXPECT_TRUE(OffersStartTls("mx Hello\nstarttls"));
  EXPECT_FALSE(OffersStartTls("mx Hello\n8BITMIME\nX-STARTTLS"));
  EXPECT_FALSE(OffersStartTls(""));
}

// TLS required (the default for a configured SMTP dependency) and the server does not
// offer STARTTLS: nothing past EHLO is sent, so no address or PHI leaves in clear text.
TEST(SmtpClient, RefusesToSendWhenStartTlsIsNotOffered) {
  FakeServer fake{kHappy, {}, -1};
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  Message m{"noreply@c.example", "pat@example.com", "Booked", "x", ""};
  auto out = RunSend(fake, m, &ctx);
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.code, 0);
  EXPECT_NE(out.error.find("does not offer STARTTLS"), std::string::npos) << out.error;
  ASSERT_EQ(fake.received.size(), 1u);
  EXPECT_EQ(fake.received[0], "EHLO c.example\r\n");
}

TEST(SmtpClient, A4xxOr5xxReplyIsAFailure) {
  FakeServer fake{kHappy, {}, 2};  // MAIL FROM answered 451
  Message m{"noreply@c.example", "pat@example.com", "Booked", "x", ""};
  auto out = RunSend(fake, m);
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.code, 451) << out.error;
  FakeServer late{kHappy, {}, 5};  // the end of DATA answered 451
  out = RunSend(late, m);
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.code, 451) << out.error;
}

TEST(SmtpClient, ARefusedConnectionIsATransportFailure) {
  asio::io_context ioc;
  uint16_t port;
  {
    tcp::acceptor acc(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = acc.local_endpoint().port();
  }
  Server s{"127.0.0.1", port, "c.example", std::chrono::milliseconds(1000)};
  Message m{"noreply@c.example", "pat@example.com", "s", "b", ""};
  Outcome out;
  asio::co_spawn(ioc, Send(s, m), [&](std::exception_ptr e) {
    try {
      if (e) std::rethrow_exception(e);
      out.ok = true;
    } catch (const SmtpError& err) {
      out.code = err.code;
    }
  });
  ioc.run_for(std::chrono::seconds(3));
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.code, 0);
}

TEST(SmtpClient, ASilentServerTimesOut) {
  asio::io_context ioc;
  tcp::acceptor acc(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  Server s{"127.0.0.1", acc.local_endpoint().port(), "c.example", std::chrono::milliseconds(300)};
  Message m{"noreply@c.example", "pat@example.com", "s", "b", ""};
  Outcome out;
  tcp::socket held(ioc);
  acc.async_accept(held, [](boost::system::error_code) {});
  auto t0 = std::chrono::steady_clock::now();
  asio::co_spawn(ioc, Send(s, m), [&](std::exception_ptr e) {
    try {
      if (e) std::rethrow_exception(e);
      out.ok = true;
    } catch (const SmtpError& err) {
      out.code = err.code;
      out.error = err.what();
    }
  });
  ioc.run_for(std::chrono::seconds(3));
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.code, 0);
  EXPECT_NE(out.error.find("timed out"), std::string::npos) << out.error;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
}

}  // namespace
}  // namespace continuum::deps::smtp
