#include "stubdeps/smtp_session.hpp"

#include <gtest/gtest.h>

namespace continuum::stubdeps {
namespace {

// Feeds lines; returns the reply code of the last one.
int Feed(SmtpSession& s, std::initializer_list<std::string_view> lines, bool fail = false) {
  int code = 0;
  for (auto l : lines) code = s.OnLine(l, fail).code;
  return code;
}

TEST(SmtpSession, OffersStartTlsAndStartsOverAfterTheHandshake) {
  SmtpSession plain("mx.test");
  EXPECT_EQ(plain.OnLine("EHLO p.example").text.find("STARTTLS"), std::string::npos);
  EXPECT_EQ(plain.OnLine("STARTTLS").code, 502);

  SmtpSession s("mx.test");
  s.set_starttls_available(true);
  EXPECT_NE(s.OnLine("EHLO p.example").text.find("250-STARTTLS\r\n"), std::string::npos);
  EXPECT_EQ(Feed(s, {"MAIL FROM:<a@b.example>"}), 250);
  EXPECT_EQ(s.OnLine("STARTTLS").code, 503);  // not inside a transaction
  EXPECT_EQ(Feed(s, {"RSET"}), 250);
  auto r = s.OnLine("STARTTLS");
  EXPECT_EQ(r.code, 220);
  EXPECT_TRUE(r.start_tls);
  s.OnTlsStarted();
  EXPECT_TRUE(s.tls());
  EXPECT_EQ(s.OnLine("MAIL FROM:<a@b.example>").code, 503);  // EHLO again first
  EXPECT_EQ(s.OnLine("EHLO p.example").text.find("STARTTLS"), std::string::npos);
  EXPECT_EQ(Feed(s, {"MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>", "DATA", "x"}), 0);
  auto done = s.OnLine(".");
  ASSERT_TRUE(done.mail.has_value());
  EXPECT_TRUE(done.mail->tls);
}

TEST(SmtpSession, AcceptsAMailAndRecordsItsEnvelopeAndHeaders) {
  SmtpSession s("mx.test");
  EXPECT_EQ(s.Greeting(), "220 mx.test ESMTP continuum stub-deps\r\n");
  auto ehlo = s.OnLine("EHLO portal.example");
  EXPECT_EQ(ehlo.code, 250);
  EXPECT_NE(ehlo.text.find("250-mx.test Hello portal.example\r\n"), std::string::npos);
  EXPECT_NE(ehlo.text.find("250-SIZE 10485760\r\n"), std::string::npos);
  EXPECT_TRUE(ehlo.text.ends_with("250 ENHANCEDSTATUSCODES\r\n"));
  EXPECT_EQ(s.OnLine("mail from:<portal@example.com> size=120").code, 250);
  EXPECT_EQ(s.OnLine("RCPT TO:<a@example.org>").code, 250);
  EXPECT_EQ(s.OnLine("RCPT TO: <b@example.org>").code, 250);
  auto data = s.OnLine("DATA");
  EXPECT_EQ(data.code, 354);
  EXPECT_TRUE(s.in_data());
  for (std::string_view l :
       {"From: Portal <portal@example.com>", "Subject: Your lab", " results are ready",
        "Message-ID: <m1@example.com>", "", "Hello,", "..leading dot", "."}) {
    auto r = s.OnLine(l);
    if (l != ".") {
      EXPECT_EQ(r.code, 0) << l;
      continue;
    }
    EXPECT_EQ(r.code, 250);
    EXPECT_TRUE(r.text.starts_with("250 2.0.0 Ok: queued as Q1")) << r.text;
    ASSERT_TRUE(r.mail.has_value());
    EXPECT_EQ(r.mail->helo, "portal.example");
    EXPECT_EQ(r.mail->from, "portal@example.com");
    EXPECT_EQ(r.mail->to, (std::vector<std::string>{"a@example.org", "b@example.org"}));
    EXPECT_EQ(r.mail->subject, "Your lab results are ready");  // unfolded
    EXPECT_EQ(r.mail->message_id, "<m1@example.com>");
    // Unstuffed: ".leading dot"; CRLF line ends.
    const std::size_t expected =
        std::string("From: Portal <portal@example.com>").size() + 2 +
        std::string("Subject: Your lab").size() + 2 + std::string(" results are ready").size() + 2 +
        std::string("Message-ID: <m1@example.com>").size() + 2 + 2 + std::string("Hello,").size() +
        2 + std::string(".leading dot").size() + 2;
    EXPECT_EQ(r.mail->size, expected);
  }
  EXPECT_FALSE(s.in_data());
  // The next transaction starts clean, on the same connection.
  EXPECT_EQ(s.OnLine("MAIL FROM:<>").code, 250);
  EXPECT_EQ(s.OnLine("RCPT TO:<c@example.org>").code, 250);
  EXPECT_EQ(s.OnLine("DATA").code, 354);
  auto r = s.OnLine(".");
  ASSERT_TRUE(r.mail.has_value());
  EXPECT_EQ(r.mail->from, "");
  EXPECT_EQ(r.mail->to.size(), 1u);
  EXPECT_EQ(r.mail->subject, "");
  EXPECT_EQ(r.mail->size, 0u);
  auto quit = s.OnLine("QUIT");
  EXPECT_EQ(quit.code, 221);
  EXPECT_TRUE(quit.close);
}

TEST(SmtpSession, BadSequencesGet503) {
  SmtpSession s("mx.test");
  EXPECT_EQ(Feed(s, {"MAIL FROM:<a@b.c>"}), 503);  // before EHLO
  EXPECT_EQ(Feed(s, {"HELO client"}), 250);
  EXPECT_EQ(Feed(s, {"RCPT TO:<a@b.c>"}), 503);  // before MAIL
  EXPECT_EQ(Feed(s, {"DATA"}), 503);
  EXPECT_EQ(Feed(s, {"MAIL FROM:<a@b.c>"}), 250);
  EXPECT_EQ(Feed(s, {"MAIL FROM:<a@b.c>"}), 503);  // nested
  EXPECT_EQ(Feed(s, {"DATA"}), 503);               // no RCPT yet
  EXPECT_EQ(Feed(s, {"RSET"}), 250);
  EXPECT_EQ(Feed(s, {"RCPT TO:<a@b.c>"}), 503);  // RSET ended the transaction
  EXPECT_EQ(Feed(s, {"NOOP"}), 250);
}

TEST(SmtpSession, SyntaxErrorsGet501And500) {
  SmtpLimits limits;
  limits.max_errors = 100;
  SmtpSession s("mx.test", limits);
  EXPECT_EQ(Feed(s, {"EHLO"}), 501);
  EXPECT_EQ(Feed(s, {"EHLO client"}), 250);
  EXPECT_EQ(Feed(s, {"MAIL FROM:a@b.c"}), 501);  // no angle brackets
  EXPECT_EQ(Feed(s, {"MAIL FROM:<not an address>"}), 501);
  EXPECT_EQ(Feed(s, {"MAIL TO:<a@b.c>"}), 501);
  EXPECT_EQ(Feed(s, {"MAIL FROM:<a@b.c> SIZE=abc"}), 501);
  EXPECT_EQ(Feed(s, {"MAIL FROM:<a@b.c> SIZE=99999999999"}), 552);
  EXPECT_EQ(Feed(s, {"MAIL FROM:<a@b.c> FOO=1"}), 555);
  EXPECT_EQ(Feed(s, {"MAIL FROM:<a@b.c> BODY=8BITMIME"}), 250);
  EXPECT_EQ(Feed(s, {"RCPT TO:<>"}), 501);  // the null path is for senders only
  EXPECT_EQ(Feed(s, {"RCPT TO:<Postmaster>"}), 250);
  EXPECT_EQ(Feed(s, {"DATA now"}), 501);
  EXPECT_EQ(Feed(s, {"RSET please"}), 501);
  EXPECT_EQ(Feed(s, {"WHATEVER"}), 500);
  EXPECT_EQ(Feed(s, {""}), 500);
  EXPECT_EQ(Feed(s, {"STARTTLS"}), 502);
  EXPECT_EQ(Feed(s, {"VRFY someone"}), 252);
  EXPECT_EQ(Feed(s, {std::string(600, 'N')}), 500);  // longer than 512 octets
}

TEST(SmtpSession, TooManyErrorsClose) {
  SmtpLimits limits;
  limits.max_errors = 3;
  SmtpSession s("mx.test", limits);
  EXPECT_FALSE(s.OnLine("BOGUS").close);
  EXPECT_FALSE(s.OnLine("BOGUS").close);
  auto r = s.OnLine("BOGUS");
  EXPECT_TRUE(r.close);
  EXPECT_NE(r.text.find("421 4.7.0"), std::string::npos);
}

TEST(SmtpSession, ErrorModeAnswers451ToMailFrom) {
  SmtpSession s("mx.test");
  EXPECT_EQ(Feed(s, {"EHLO client"}, true), 250);
  auto r = s.OnLine("MAIL FROM:<a@b.c>", true);
  EXPECT_EQ(r.code, 451);
  EXPECT_TRUE(r.text.starts_with("451 4.3.0 ")) << r.text;
  EXPECT_FALSE(r.close);
  // No transaction began; once the fault is gone the same session works.
  EXPECT_EQ(Feed(s, {"RCPT TO:<x@y.z>"}), 503);
  EXPECT_EQ(Feed(s, {"MAIL FROM:<a@b.c>", "RCPT TO:<x@y.z>", "DATA"}), 354);
  // A fault arriving mid-transaction fails the end of DATA, and nothing is accepted.
  auto end = s.OnLine(".", true);
  EXPECT_EQ(end.code, 451);
  EXPECT_FALSE(end.mail.has_value());
}

TEST(SmtpSession, LimitsOnMessageSizeAndLineLength) {
  SmtpLimits limits;
  limits.max_message_bytes = 100;
  SmtpSession s("mx.test", limits);
  EXPECT_EQ(Feed(s, {"EHLO c", "MAIL FROM:<a@b.c>", "RCPT TO:<x@y.z>", "DATA"}), 354);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(s.OnLine(std::string(20, 'x')).code, 0);
  auto r = s.OnLine(".");
  EXPECT_EQ(r.code, 552);
  EXPECT_FALSE(r.mail.has_value());

  SmtpSession t("mx.test");
  EXPECT_EQ(Feed(t, {"EHLO c", "MAIL FROM:<a@b.c>", "RCPT TO:<x@y.z>", "DATA"}), 354);
  t.OnLine(std::string(999, 'y'));  // 999 + CRLF > 1000
  EXPECT_EQ(t.OnLine(".").code, 554);
  EXPECT_EQ(SmtpSession::LineTooLong().code, 500);
  EXPECT_TRUE(SmtpSession::LineTooLong().close);
}

TEST(SmtpSession, QueueIdsComeFromTheCaller) {
  int n = 0;
  SmtpSession s("mx.test", {}, [&n] { return "ID" + std::to_string(++n); });
  Feed(s, {"EHLO c", "MAIL FROM:<a@b.c>", "RCPT TO:<x@y.z>", "DATA"});
  auto r = s.OnLine(".");
  ASSERT_TRUE(r.mail.has_value());
  EXPECT_EQ(r.mail->queue_id, "ID1");
}

TEST(SmtpPath, ParsesAddressesAndParameters) {
  auto p = ParseSmtpPath(" FROM:<a@b.c>  SIZE=10 body=8bitmime", "FROM:", true);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->address, "a@b.c");
  ASSERT_EQ(p->params.size(), 2u);
  EXPECT_EQ(p->params[0], (std::pair<std::string, std::string>{"SIZE", "10"}));
  EXPECT_EQ(p->params[1].first, "BODY");
  EXPECT_TRUE(ParseSmtpPath("from:<>", "FROM:", true).has_value());
  EXPECT_FALSE(ParseSmtpPath("from:<>", "FROM:", false).has_value());
  EXPECT_FALSE(ParseSmtpPath("FROM:<a@b.c", "FROM:", true).has_value());
  EXPECT_FALSE(ParseSmtpPath("FROM:<a@b.c>x", "FROM:", true).has_value());
  EXPECT_FALSE(ParseSmtpPath("FROM:<@b.c>", "FROM:", true).has_value());
  EXPECT_FALSE(ParseSmtpPath("FROM:<a@>", "FROM:", true).has_value());
}

}  // namespace
}  // namespace continuum::stubdeps
