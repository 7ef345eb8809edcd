// The SMTP stand-in's protocol: an RFC 5321 subset as a pure state machine (no I/O),
// fed one line at a time. Commands: EHLO/HELO, MAIL FROM, RCPT TO, DATA (with
// dot-unstuffing), RSET, NOOP, QUIT (+ VRFY, HELP; STARTTLS when the I/O layer can do
// TLS (set_starttls_available), AUTH and the rest answer 502). Replies 250/354/221, 500/501/503 for
// bad commands and sequences, 552 past the size limit, 421 after too many errors. Each accepted
// message is returned with its envelope, Subject, Message-ID and size, for the received log. In
// error mode the caller passes temporary_failure = true: MAIL FROM (and the end of DATA) get
// "451 4.3.0".
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace continuum::stubdeps {

struct SmtpLimits {
  std::size_t max_command_line = 512;  // octets including CRLF (RFC 5321 4.5.3.1.4)
  std::size_t max_text_line = 1000;    // octets including CRLF (RFC 5321 4.5.3.1.6)
  std::size_t max_message_bytes = 10 * 1024 * 1024;
  std::size_t max_recipients = 100;
  int max_errors = 10;  // bad commands before "421 ... closing"
};

struct SmtpMail {
  std::string helo;
  std::string from;  // "" for the null reverse-path <>
  std::vector<std::string> to;
  std::string subject;
  std::string message_id;
  std::size_t size = 0;  // octets of the message after dot-unstuffing, CRLF line ends
  std::string queue_id;
  bool tls = false;  // received over STARTTLS
};

class SmtpSession {
 public:
  // `hostname` appears in the greeting and EHLO reply; `next_queue_id` names accepted
  // messages (default: Q1, Q2, ...).
  explicit SmtpSession(std::string hostname, SmtpLimits limits = {},
                       std::function<std::string()> next_queue_id = {});

  struct Reply {
    std::string text;  // complete reply, CRLF-terminated lines; empty while reading DATA
    int code = 0;      // 0 when there is no reply
    bool close = false;
    std::string verb;              // upper-case command ("DATA-END" for the final dot), for the log
    std::optional<SmtpMail> mail;  // the message just accepted
    bool start_tls = false;        // after sending this 220: the TLS handshake, then OnTlsStarted()
  };

  [[nodiscard]] std::string Greeting() const;
  // `line` without its CRLF (or bare LF).
  Reply OnLine(std::string_view line, bool temporary_failure = false);
  // The caller's reply to a line longer than it is willing to buffer: 500 and close.
  static Reply LineTooLong();

  [[nodiscard]] bool in_data() const { return state_ == State::kData; }

  // The I/O layer can run a TLS handshake: EHLO lists STARTTLS (until TLS is on).
  void set_starttls_available(bool on) { starttls_available_ = on; }
  // The handshake after STARTTLS succeeded: back to the start (RFC 3207 4.2: the client
  // must EHLO again and the server forgets what it was told before).
  void OnTlsStarted();
  [[nodiscard]] bool tls() const { return tls_; }

 private:
  enum class State { kConnected, kReady, kMail, kRcpt, kData };

  Reply Command(std::string_view line, bool temporary_failure);
  Reply DataLine(std::string_view line, bool temporary_failure);
  Reply Error(int code, std::string_view text, std::string verb);
  void ResetTransaction();
  void ParseHeaders();

  std::string hostname_;
  SmtpLimits limits_;
  std::function<std::string()> next_queue_id_;
  uint64_t queue_counter_ = 0;
  State state_ = State::kConnected;
  int errors_ = 0;
  bool starttls_available_ = false;
  bool tls_ = false;
  std::string helo_;
  std::string from_;
  std::vector<std::string> to_;
  // DATA
  std::size_t size_ = 0;
  bool too_big_ = false;
  bool line_too_long_ = false;
  bool in_headers_ = true;
  std::string headers_;  // the header section, kept to find Subject and Message-ID
  std::string subject_;
  std::string message_id_;
};

// Splits a MAIL/RCPT argument "FROM:<a@b> SIZE=10" into the address and its parameters.
// Returns nullopt on bad syntax. `allow_empty` admits "<>" (the null reverse-path).
struct SmtpPath {
  std::string address;
  std::vector<std::pair<std::string, std::string>> params;  // keyword upper-cased
};
std::optional<SmtpPath> ParseSmtpPath(std::string_view arg, std::string_view prefix,
                                      bool allow_empty);

}  // namespace continuum::stubdeps
