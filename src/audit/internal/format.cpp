#include "audit/internal/format.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <climits>
#include <cstdio>
#include <ctime>
#include <stdexcept>

#include "core/json_escape.hpp"

namespace continuum::audit::internal {
namespace {

// Field accessors in kLineKeys order (seq, prev_hash and hash are handled apart).
struct StringField {
  std::string_view key;
  std::string Record::*member;
};
constexpr std::array<StringField, 14> kStringFields = {{
    {"recorded_at", &Record::recorded_at},
    {"region", &Record::region},
    {"node_id", &Record::node_id},
    {"request_id", &Record::request_id},
    {"actor", &Record::actor},
    {"role", &Record::role},
    {"action", &Record::action},
    {"resource_type", &Record::resource_type},
    {"resource_id", &Record::resource_id},
    {"patient_id", &Record::patient_id},
    {"client_address", &Record::client_address},
    {"purpose_of_use", &Record::purpose_of_use},
    {"outcome", &Record::outcome},
    {"detail", &Record::detail},
}};

void SetError(std::string* error, std::string msg) {
  if (error) *error = std::move(msg);
}

bool ParseDigits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
long long DaysFromCivil(int y, unsigned m, unsigned d) {
  y -= m <= 2;
  const long long era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<long long>(doe) - 719468;
}

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
  return kDays[m - 1];
}

}  // namespace

std::array<unsigned char, 32> Sha256(std::string_view data) {
  std::array<unsigned char, 32> md{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr) != 1 ||
      len != md.size()) {
    throw std::runtime_error("audit: SHA-256 failed");
  }
  return md;
}

std::string Sha256Hex(std::string_view data) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto md = Sha256(data);
  std::string out(64, '0');
  for (std::size_t i = 0; i < md.size(); ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 0xf];
  }
  return out;
}

std::string GenesisHash(std::string_view node_id) {
  std::string s = "genesis:";
  s.append(node_id);
  return Sha256Hex(s);
}

std::string SerializeLine(const Record& r, std::string_view prev_hash, const std::string* hash) {
  // Written directly, byte for byte what boost::json::serialize gives for the object of
  // kLineKeys (AppendJsonEscaped escapes as it does; keys need no escaping); the unit test
  // and fuzz_audit_line hold the two equal. Without the DOM the journal's writer spends
  // about a third less on each line (bench/README.md, sixteenth round).
  // Boost.JSON refuses a string longer than its maximum (std::length_error): so does this.
  constexpr std::size_t kMaxString = boost::json::string::max_size();
  if (prev_hash.size() > kMaxString || (hash && hash->size() > kMaxString))
    throw std::length_error("string too large");
  std::size_t size = 48 + prev_hash.size() + (hash ? hash->size() + 10 : 0);
  for (const auto& f : kStringFields) {
    if ((r.*f.member).size() > kMaxString) throw std::length_error("string too large");
    size += f.key.size() + (r.*f.member).size() + 6;
  }
  std::string out;
  out.reserve(size + size / 8);
  out += "{\"seq\":";
  char digits[24];
  out.append(digits, std::to_chars(digits, digits + sizeof digits, r.seq).ptr);
  auto member = [&out](std::string_view key, std::string_view value) {
    out += ",\"";
    out += key;
    out += "\":\"";
    AppendJsonEscaped(out, value);
    out += '"';
  };
  for (const auto& f : kStringFields) member(f.key, r.*f.member);
  member("prev_hash", prev_hash);
  if (hash) member("hash", *hash);
  out += '}';
  return out;
}

std::string SerializeLineDom(const Record& r, std::string_view prev_hash, const std::string* hash) {
  unsigned char buf[4096];
  boost::json::monotonic_resource mr(buf, sizeof buf);
  boost::json::object o(&mr);
  o.reserve(kLineKeys.size());
  o.emplace("seq", static_cast<std::int64_t>(r.seq));
  for (const auto& f : kStringFields) o.emplace(f.key, r.*f.member);
  o.emplace("prev_hash", prev_hash);
  if (hash) o.emplace("hash", *hash);
  return boost::json::serialize(o);
}

namespace {

// The checks both parsers share once the structure is read: hex hashes, an RFC 3339
// recorded_at, a node id.
std::optional<ParsedLine> CheckParsed(ParsedLine p, std::string* error) {
  if (!IsHex64(p.prev_hash) || !IsHex64(p.hash)) {
    SetError(error, "prev_hash or hash is not 64 lower-case hex digits");
    return std::nullopt;
  }
  const auto micros = ParseRfc3339Micros(p.record.recorded_at);
  if (!micros) {
    SetError(error, "recorded_at is not an RFC 3339 timestamp");
    return std::nullopt;
  }
  p.recorded_at_micros = *micros;
  if (p.record.node_id.empty()) {
    SetError(error, "node_id is empty");
    return std::nullopt;
  }
  return p;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads `"key":"` at `pos` and the string after it into `out`. Takes only what
// SerializeLine writes: ASCII without control bytes, the short escapes and \u00XX below
// 0x80 but not NUL. Anything else (non-ASCII, whitespace, other escapes) is false, and
// the caller hands the line to the general parser.
bool ReadCanonicalMember(std::string_view line, std::size_t& pos, std::string_view key,
                         std::string& out, bool& canonical) {
  if (line.size() - pos < key.size() + 4 || line[pos] != '"' ||
      line.compare(pos + 1, key.size(), key) != 0 || line[pos + key.size() + 1] != '"' ||
      line[pos + key.size() + 2] != ':' || line[pos + key.size() + 3] != '"') {
    return false;
  }
  std::size_t i = pos + key.size() + 4;
  std::size_t run = i;
  out.clear();
  while (i < line.size()) {
    const auto c = static_cast<unsigned char>(line[i]);
    if (c == '"') {
      out.append(line.data() + run, i - run);
      pos = i + 1;
      return true;
    }
    if (c < 0x20 || c >= 0x80) return false;
    if (c != '\\') {
      ++i;
      continue;
    }
    out.append(line.data() + run, i - run);
    if (i + 1 >= line.size()) return false;
    switch (line[i + 1]) {
      case '"':
        out += '"';
        break;
      case '\\':
        out += '\\';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        if (line.size() - i < 6 || line[i + 2] != '0' || line[i + 3] != '0') return false;
        const int hi = HexValue(line[i + 4]), lo = HexValue(line[i + 5]);
        if (hi < 0 || lo < 0 || hi > 7 || (hi == 0 && lo == 0)) return false;
        const char c = static_cast<char>(hi * 16 + lo);
        // The writer uses \u00xx only for control bytes without a short form, lower-case.
        if (hi > 1 || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t' ||
            (line[i + 5] >= 'A' && line[i + 5] <= 'F')) {
          canonical = false;
        }
        out += c;
        i += 4;
        break;
      }
      default:
        return false;
    }
    i += 2;
    run = i;
  }
  return false;
}

// The line as SerializeLine writes it, read without building a JSON document (the
// shipper reads every line; bench/README.md, sixteenth round). nullopt: not in that
// form, which does not mean invalid: ParseLineDom decides.
std::optional<ParsedLine> ParseCanonicalLine(std::string_view line) {
  constexpr std::string_view kSeq = "{\"seq\":";
  if (line.substr(0, kSeq.size()) != kSeq) return std::nullopt;
  // A field past Boost.JSON's longest string is its parser's error to give.
  if (line.size() > boost::json::string::max_size()) return std::nullopt;
  std::size_t pos = kSeq.size();
  const std::size_t digits_start = pos;
  long long seq = 0;
  while (pos < line.size() && pos - digits_start < 18 && line[pos] >= '0' && line[pos] <= '9')
    seq = seq * 10 + (line[pos++] - '0');
  if (pos == digits_start || line[digits_start] == '0') return std::nullopt;
  ParsedLine p;
  p.record.seq = seq;
  p.canonical = true;
  auto next = [&](std::string_view key, std::string& out) {
    if (pos >= line.size() || line[pos] != ',') return false;
    ++pos;
    return ReadCanonicalMember(line, pos, key, out, p.canonical);
  };
  for (const auto& f : kStringFields) {
    if (!next(f.key, p.record.*f.member)) return std::nullopt;
  }
  if (!next("prev_hash", p.prev_hash) || !next("hash", p.hash)) return std::nullopt;
  if (pos + 1 != line.size() || line[pos] != '}') return std::nullopt;
  return p;
}

}  // namespace

std::optional<ParsedLine> ParseLine(std::string_view line, std::string* error) {
  if (auto p = ParseCanonicalLine(line)) return CheckParsed(std::move(*p), error);
  return ParseLineDom(line, error);
}

std::optional<ParsedLine> ParseLineDom(std::string_view line, std::string* error) {
  boost::system::error_code ec;
  unsigned char buf[8192];
  boost::json::monotonic_resource mr(buf, sizeof buf);
  boost::json::value v = boost::json::parse(line, ec, &mr);
  if (ec) {
    SetError(error, "invalid JSON (" + ec.message() + ")");
    return std::nullopt;
  }
  if (!v.is_object()) {
    SetError(error, "not a JSON object");
    return std::nullopt;
  }
  const auto& o = v.get_object();
  if (o.size() != kLineKeys.size()) {
    SetError(error, "has " + std::to_string(o.size()) + " fields, expected " +
                        std::to_string(kLineKeys.size()));
    return std::nullopt;
  }
  std::size_t i = 0;
  for (const auto& kv : o) {
    if (kv.key() != kLineKeys[i]) {
      SetError(error,
               "field " + std::to_string(i + 1) + " is not \"" + std::string(kLineKeys[i]) + "\"");
      return std::nullopt;
    }
    ++i;
  }
  ParsedLine p;
  const auto& seq = o.begin()->value();
  if (seq.is_int64() && seq.get_int64() >= 1) {
    p.record.seq = seq.get_int64();
  } else if (seq.is_uint64() && seq.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    p.record.seq = static_cast<long long>(seq.get_uint64());
  } else {
    SetError(error, "seq is not a positive integer");
    return std::nullopt;
  }
  auto get_string = [&](std::string_view key, std::string& out) {
    const auto* jv = o.if_contains(key);
    if (!jv || !jv->is_string()) {
      SetError(error, "field \"" + std::string(key) + "\" is not a string");
      return false;
    }
    const auto& s = jv->get_string();
    if (std::string_view(s).find('\0') != std::string_view::npos) {
      SetError(error, "field \"" + std::string(key) + "\" contains NUL");
      return false;
    }
    out.assign(s.data(), s.size());
    return true;
  };
  for (const auto& f : kStringFields) {
    if (!get_string(f.key, p.record.*f.member)) return std::nullopt;
  }
  if (!get_string("prev_hash", p.prev_hash) || !get_string("hash", p.hash)) return std::nullopt;
  return CheckParsed(std::move(p), error);
}

std::string ComputeHash(const ParsedLine& p) {
  return Sha256Hex(SerializeLine(p.record, p.prev_hash, nullptr));
}

bool IsCanonical(std::string_view line, const ParsedLine& p) {
  return SerializeLine(p.record, p.prev_hash, &p.hash) == line;
}

bool RebuildableFromColumns(const ParsedLine& p) {
  return p.canonical && p.recorded_at_micros % 1000 == 0 &&
         FormatRfc3339Millis(p.recorded_at_micros) == p.record.recorded_at;
}

std::string RebuildLine(Record r, long long recorded_at_micros, std::string_view prev_hash,
                        const std::string& hash) {
  r.recorded_at = FormatRfc3339Millis(recorded_at_micros);
  return SerializeLine(r, prev_hash, &hash);
}

std::string FormatRfc3339Millis(long long micros) {
  long long secs = micros / 1000000;
  long long rem = micros % 1000000;
  if (rem < 0) {
    rem += 1000000;
    --secs;
  }
  // The date and time of day once a second per thread: the shipper formats every line's
  // time (RebuildableFromColumns) and the request threads every append's, most of them in
  // the second before; gmtime_r takes glibc's time zone lock, snprintf parses its format.
  thread_local long long cached_secs = LLONG_MIN;
  thread_local char prefix[96];
  thread_local std::size_t prefix_len = 0;
  if (secs != cached_secs) {
    const auto t = static_cast<time_t>(secs);
    tm parts{};
    gmtime_r(&t, &parts);
    const int n =
        std::snprintf(prefix, sizeof prefix, "%04d-%02d-%02dT%02d:%02d:%02d.", parts.tm_year + 1900,
                      parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec);
    prefix_len = std::min<std::size_t>(n < 0 ? 0 : static_cast<std::size_t>(n), sizeof prefix - 1);
    cached_secs = secs;
  }
  const int ms = static_cast<int>(rem / 1000);
  std::string out;
  out.reserve(prefix_len + 4);
  out.append(prefix, prefix_len);
  out += static_cast<char>('0' + ms / 100);
  out += static_cast<char>('0' + ms / 10 % 10);
  out += static_cast<char>('0' + ms % 10);
  out += 'Z';
  return out;
}

std::optional<long long> SalvageSeq(std::string_view line) {
  constexpr std::string_view kPrefix = "{\"seq\":";
  if (line.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  long long v = 0;
  std::size_t i = kPrefix.size();
  const std::size_t start = i;
  while (i < line.size() && i - start < 18 && line[i] >= '0' && line[i] <= '9') {
    v = v * 10 + (line[i] - '0');
    ++i;
  }
  if (i == start || i >= line.size() || line[i] != ',' || v < 1) return std::nullopt;
  return v;
}

std::string NowRfc3339() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return FormatRfc3339Millis(static_cast<long long>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000);
}

std::optional<long long> ParseRfc3339Micros(std::string_view s) {
  int y, mo, d, h, mi, sec;
  if (s.size() < 20 || !ParseDigits(s, 0, 4, y) || s[4] != '-' || !ParseDigits(s, 5, 2, mo) ||
      s[7] != '-' || !ParseDigits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't') ||
      !ParseDigits(s, 11, 2, h) || s[13] != ':' || !ParseDigits(s, 14, 2, mi) || s[16] != ':' ||
      !ParseDigits(s, 17, 2, sec)) {
    return std::nullopt;
  }
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > DaysInMonth(y, mo) || h > 23 || mi > 59 ||
      sec > 59) {
    return std::nullopt;
  }
  std::size_t i = 19;
  long long micros = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      // More than 6 digits would be rounded by PostgreSQL; refuse them so the table's
      // timestamptz always equals the journal's value.
      if (++digits > 6) return std::nullopt;
      micros = micros * 10 + (s[i] - '0');
      ++i;
    }
    if (digits == 0) return std::nullopt;
    for (int k = digits; k < 6; ++k) micros *= 10;
  }
  long long offset_s = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (!ParseDigits(s, i + 1, 2, oh) || i + 3 >= s.size() || s[i + 3] != ':' ||
        !ParseDigits(s, i + 4, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_s = (oh * 3600LL + om * 60LL) * (s[i] == '+' ? 1 : -1);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  const long long days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  const long long secs = days * 86400 + h * 3600LL + mi * 60LL + sec - offset_s;
  return secs * 1000000 + micros;
}

std::string SanitizeUtf8(std::string_view s) {
  std::size_t i = 0;
  // Fast path: printable-or-control ASCII without NUL.
  while (i < s.size() && static_cast<unsigned char>(s[i]) < 0x80 && s[i] != '\0') ++i;
  if (i == s.size()) return std::string(s);
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out(s.substr(0, i));
  out.reserve(s.size() + 8);
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    std::size_t n = 0;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;  // no overlong forms
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    }
    bool ok = n > 0 && i + n < s.size();
    for (std::size_t k = 1; ok && k <= n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    }
    if (ok) {
      out.append(s.substr(i, n + 1));
      i += n + 1;
    } else {
      out += kReplacement;
      ++i;
    }
  }
  return out;
}

void SanitizeRecord(Record& r) {
  for (const auto& f : kStringFields) {
    auto& v = r.*f.member;
    // Almost every field is ASCII without NUL: leave those as they are, uncopied.
    const bool plain = std::all_of(v.begin(), v.end(), [](char c) {
      return c != '\0' && static_cast<unsigned char>(c) < 0x80;
    });
    if (!plain) v = SanitizeUtf8(v);
  }
}

bool IsHex64(std::string_view s) {
  if (s.size() != 64) return false;
  bool hex = true;  // no early exit: a loop without branches, which the compiler vectorizes
  for (char c : s) hex &= (c >= '0' && c <= '9') | (c >= 'a' && c <= 'f');
  return hex;
}

}  // namespace continuum::audit::internal
