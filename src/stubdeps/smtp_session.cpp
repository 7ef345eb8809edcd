#include "stubdeps/smtp_session.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace continuum::stubdeps {

namespace {

std::string Upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool IStartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && IEquals(s.substr(0, prefix.size()), prefix);
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool ValidMailbox(std::string_view a) {
  if (a.size() > 254) return false;
  for (char c : a)
    if (static_cast<unsigned char>(c) <= 0x20 || c == '<' || c == '>' || c == 0x7f) return false;
  const auto at = a.rfind('@');
  if (at == std::string_view::npos) return IEquals(a, "postmaster");
  return at > 0 && at + 1 < a.size() && a.front() != '@';
}

std::string Line(int code, std::string_view text) {
  return std::to_string(code) + " " + std::string(text) + "\r\n";
}

}  // namespace

std::optional<SmtpPath> ParseSmtpPath(std::string_view arg, std::string_view prefix,
                                      bool allow_empty) {
  arg = Trim(arg);
  if (!IStartsWith(arg, prefix)) return std::nullopt;
  arg = Trim(arg.substr(prefix.size()));
  if (arg.empty() || arg.front() != '<') return std::nullopt;
  const auto close = arg.find('>');
  if (close == std::string_view::npos) return std::nullopt;
  SmtpPath out;
  out.address = std::string(arg.substr(1, close - 1));
  if (out.address.empty() ? !allow_empty : !ValidMailbox(out.address)) return std::nullopt;
  std::string_view rest = arg.substr(close + 1);
  if (!rest.empty() && rest.front() != ' ') return std::nullopt;
  while (!(rest = Trim(rest)).empty()) {
    const auto sp = rest.find(' ');
    std::string_view p = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp);
    const auto eq = p.find('=');
    std::string key = Upper(p.substr(0, eq));
    if (key.empty()) return std::nullopt;
    out.params.emplace_back(std::move(key),
                            eq == std::string_view::npos ? "" : std::string(p.substr(eq + 1)));
  }
  return out;
}

SmtpSession::SmtpSession(std::string hostname, SmtpLimits limits,
                         std::function<std::string()> next_queue_id)
    : hostname_(std::move(hostname)), limits_(limits), next_queue_id_(std::move(next_queue_id)) {}

std::string SmtpSession::Greeting() const {
  return Line(220, hostname_ + " ESMTP continuum stub-deps");
}

SmtpSession::Reply SmtpSession::LineTooLong() {
  return Reply{Line(500, "5.5.2 Error: line too long, closing connection"), 500, true, "?", {}};
}

void SmtpSession::ResetTransaction() {
  from_.clear();
  to_.clear();
  size_ = 0;
  too_big_ = line_too_long_ = false;
  in_headers_ = true;
  headers_.clear();
  subject_.clear();
  message_id_.clear();
  if (state_ != State::kConnected) state_ = State::kReady;
}

SmtpSession::Reply SmtpSession::Error(int code, std::string_view text, std::string verb) {
  Reply r{Line(code, text), code, false, std::move(verb), {}};
  if (code >= 500 && ++errors_ >= limits_.max_errors) {
    r.text += Line(421, "4.7.0 " + hostname_ + " Error: too many errors, closing connection");
    r.close = true;
  }
  return r;
}

SmtpSession::Reply SmtpSession::OnLine(std::string_view line, bool temporary_failure) {
  if (state_ == State::kData) return DataLine(line, temporary_failure);
  return Command(line, temporary_failure);
}

SmtpSession::Reply SmtpSession::Command(std::string_view line, bool temporary_failure) {
  if (line.size() + 2 > limits_.max_command_line)
    return Error(500, "5.5.2 Error: command line too long", "?");
  const auto sp = line.find(' ');
  const std::string verb = Upper(line.substr(0, sp));
  const std::string_view arg =
      sp == std::string_view::npos ? std::string_view{} : Trim(line.substr(sp + 1));

  if (verb == "EHLO" || verb == "HELO") {
    if (arg.empty() || arg.find(' ') != std::string_view::npos)
      return Error(501, "5.5.4 Syntax: " + verb + " hostname", verb);
    state_ = State::kReady;
    ResetTransaction();
    helo_ = std::string(arg);
    if (verb == "HELO") return Reply{Line(250, hostname_), 250, false, verb, {}};
    std::string text = "250-" + hostname_ + " Hello " + helo_ + "\r\n";
    text += "250-SIZE " + std::to_string(limits_.max_message_bytes) + "\r\n";
    text += "250-8BITMIME\r\n";
    if (starttls_available_ && !tls_) text += "250-STARTTLS\r\n";
    text += "250 ENHANCEDSTATUSCODES\r\n";
    return Reply{std::move(text), 250, false, verb, {}};
  }
  if (verb == "MAIL") {
    if (state_ == State::kConnected) return Error(503, "5.5.1 Error: send HELO/EHLO first", verb);
    if (state_ != State::kReady) return Error(503, "5.5.1 Error: nested MAIL command", verb);
    auto path = ParseSmtpPath(arg, "FROM:", true);
    if (!path) return Error(501, "5.1.7 Bad sender address syntax", verb);
    for (const auto& [k, v] : path->params) {
      if (k == "SIZE") {
        std::size_t n = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec != std::errc() || p != v.data() + v.size())
          return Error(501, "5.5.4 Bad SIZE parameter", verb);
        if (n > limits_.max_message_bytes)
          return Error(552, "5.3.4 Message size exceeds fixed limit", verb);
      } else if (k == "BODY") {
        if (!IEquals(v, "7BIT") && !IEquals(v, "8BITMIME"))
          return Error(501, "5.5.4 Bad BODY parameter", verb);
      } else {
        return Error(555, "5.5.4 Unsupported option: " + k.substr(0, 32), verb);
      }
    }
    if (temporary_failure)
      return Reply{
          Line(451, "4.3.0 Temporary failure, please try again later"), 451, false, verb, {}};
    from_ = std::move(path->address);
    state_ = State::kMail;
    return Reply{Line(250, "2.1.0 Ok"), 250, false, verb, {}};
  }
  if (verb == "RCPT") {
    if (state_ != State::kMail && state_ != State::kRcpt)
      return Error(503, "5.5.1 Error: need MAIL command", verb);
    auto path = ParseSmtpPath(arg, "TO:", false);
    if (!path) return Error(501, "5.1.3 Bad recipient address syntax", verb);
    if (!path->params.empty()) return Error(555, "5.5.4 Unsupported RCPT TO option", verb);
    if (to_.size() >= limits_.max_recipients)
      return Reply{Line(452, "4.5.3 Error: too many recipients"), 452, false, verb, {}};
    to_.push_back(std::move(path->address));
    state_ = State::kRcpt;
    return Reply{Line(250, "2.1.5 Ok"), 250, false, verb, {}};
  }
  if (verb == "DATA") {
    if (!arg.empty()) return Error(501, "5.5.4 Syntax: DATA", verb);
    if (state_ != State::kRcpt)
      return Error(503,
                   state_ == State::kMail ? "5.5.1 Error: need RCPT command"
                                          : "5.5.1 Error: need MAIL command",
                   verb);
    state_ = State::kData;
    return Reply{Line(354, "End data with <CR><LF>.<CR><LF>"), 354, false, verb, {}};
  }
  if (verb == "RSET") {
    if (!arg.empty()) return Error(501, "5.5.4 Syntax: RSET", verb);
    ResetTransaction();
    return Reply{Line(250, "2.0.0 Ok"), 250, false, verb, {}};
  }
  if (verb == "NOOP") return Reply{Line(250, "2.0.0 Ok"), 250, false, verb, {}};
  if (verb == "QUIT") return Reply{Line(221, "2.0.0 Bye"), 221, true, verb, {}};
  if (verb == "VRFY")
    return Reply{
        Line(252, "2.0.0 Cannot VRFY user, but will accept message"), 252, false, verb, {}};
  if (verb == "HELP")
    return Reply{Line(214, "2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY"),
                 214,
                 false,
                 verb,
                 {}};
  if (verb == "STARTTLS" && starttls_available_) {
    if (tls_) return Error(503, "5.5.1 Error: TLS already active", verb);
    if (!arg.empty()) return Error(501, "5.5.4 Syntax: STARTTLS", verb);
    if (state_ != State::kReady && state_ != State::kConnected)
      return Error(503, "5.5.1 Error: STARTTLS inside a mail transaction", verb);
    Reply r{Line(220, "2.0.0 Ready to start TLS"), 220, false, verb, {}};
    r.start_tls = true;
    return r;
  }
  if (verb == "STARTTLS" || verb == "AUTH" || verb == "EXPN" || verb == "TURN" || verb == "ETRN" ||
      verb == "BDAT")
    return Error(502, "5.5.1 Error: command not implemented", verb);
  return Error(500, "5.5.2 Error: command not recognized", verb.empty() ? "?" : verb.substr(0, 16));
}

void SmtpSession::OnTlsStarted() {
  tls_ = true;
  state_ = State::kConnected;
  helo_.clear();
  ResetTransaction();
}

void SmtpSession::ParseHeaders() {
  // Unfold (a line starting with white space continues the previous one), then pick
  // the two fields the received log records.
  std::vector<std::string> fields;
  std::string_view rest = headers_;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    std::string_view l = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    if (l.empty()) continue;
    if ((l.front() == ' ' || l.front() == '\t') && !fields.empty())
      fields.back() += " " + std::string(Trim(l));
    else
      fields.emplace_back(l);
  }
  for (const auto& f : fields) {
    const auto colon = f.find(':');
    if (colon == std::string::npos) continue;
    std::string_view name = Trim(std::string_view(f).substr(0, colon));
    std::string_view value = Trim(std::string_view(f).substr(colon + 1));
    if (IEquals(name, "Subject") && subject_.empty()) subject_ = std::string(value.substr(0, 998));
    if (IEquals(name, "Message-ID") && message_id_.empty())
      message_id_ = std::string(value.substr(0, 998));
  }
}

SmtpSession::Reply SmtpSession::DataLine(std::string_view line, bool temporary_failure) {
  if (line == ".") {
    if (in_headers_) ParseHeaders();
    Reply r;
    r.verb = "DATA-END";
    if (too_big_) {
      r = Error(552, "5.3.4 Error: message file too big", "DATA-END");
    } else if (line_too_long_) {
      r = Error(554, "5.6.0 Error: message has a line longer than 998 octets", "DATA-END");
    } else if (temporary_failure) {
      r.code = 451;
      r.text = Line(451, "4.3.0 Temporary failure, please try again later");
    } else {
      SmtpMail m;
      m.helo = helo_;
      m.from = from_;
      m.to = to_;
      m.subject = subject_;
      m.message_id = message_id_;
      m.size = size_;
      m.tls = tls_;
      m.queue_id = next_queue_id_ ? next_queue_id_() : "Q" + std::to_string(++queue_counter_);
      r.code = 250;
      r.text = Line(250, "2.0.0 Ok: queued as " + m.queue_id);
      r.mail = std::move(m);
    }
    state_ = State::kReady;
    ResetTransaction();
    return r;
  }
  if (line.size() + 2 > limits_.max_text_line) line_too_long_ = true;
  if (!line.empty() && line.front() == '.') line.remove_prefix(1);  // dot-unstuffing
  size_ += line.size() + 2;
  if (size_ > limits_.max_message_bytes) too_big_ = true;
  if (in_headers_) {
    if (line.empty()) {
      in_headers_ = false;
      ParseHeaders();
    } else if (headers_.size() < 64 * 1024) {
      headers_.append(line);
      headers_ += '\n';
    }
  }
  return Reply{};
}

}  // namespace continuum::stubdeps
