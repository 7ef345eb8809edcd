#include "stubdeps/instant.hpp"

#include <chrono>
#include <cstdio>

#include "seed/dates.hpp"

namespace continuum::stubdeps {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string FormatInstant(int64_t epoch_ms) {
  int64_t days = epoch_ms / 86400000;
  int64_t rem = epoch_ms % 86400000;
  if (rem < 0) {
    rem += 86400000;
    --days;
  }
  const seed::CivilDate c = seed::CivilFromDays(days);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(c.year),
                c.month, c.day, static_cast<int>(rem / 3600000), static_cast<int>(rem / 60000 % 60),
                static_cast<int>(rem / 1000 % 60), static_cast<int>(rem % 1000));
  return buf;
}

namespace {

// Reads exactly `n` digits at s[*pos].
bool Digits(std::string_view s, size_t* pos, int n, int* out) {
  if (*pos + n > s.size()) return false;
  int v = 0;
  for (int i = 0; i < n; ++i) {
    char c = s[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

bool Expect(std::string_view s, size_t* pos, char c) {
  if (*pos >= s.size() || s[*pos] != c) return false;
  ++*pos;
  return true;
}

unsigned DaysInMonth(int y, int m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

}  // namespace

std::optional<Period> ParseFhirDateTime(std::string_view s) {
  size_t pos = 0;
  int y = 0, mo = 1, d = 1;
  if (!Digits(s, &pos, 4, &y) || y < 1) return std::nullopt;
  if (pos == s.size()) {
    return Period{seed::DaysFromCivil(y, 1, 1) * 86400000,
                  seed::DaysFromCivil(y + 1, 1, 1) * 86400000};
  }
  if (!Expect(s, &pos, '-') || !Digits(s, &pos, 2, &mo) || mo < 1 || mo > 12) return std::nullopt;
  if (pos == s.size()) {
    const int ny = mo == 12 ? y + 1 : y, nm = mo == 12 ? 1 : mo + 1;
    return Period{seed::DaysFromCivil(y, static_cast<unsigned>(mo), 1) * 86400000,
                  seed::DaysFromCivil(ny, static_cast<unsigned>(nm), 1) * 86400000};
  }
  if (!Expect(s, &pos, '-') || !Digits(s, &pos, 2, &d) || d < 1 ||
      static_cast<unsigned>(d) > DaysInMonth(y, mo))
    return std::nullopt;
  const int64_t day_ms =
      seed::DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400000;
  if (pos == s.size()) return Period{day_ms, day_ms + 86400000};

  int h = 0, mi = 0, sec = 0;
  if (!Expect(s, &pos, 'T') || !Digits(s, &pos, 2, &h) || h > 23 || !Expect(s, &pos, ':') ||
      !Digits(s, &pos, 2, &mi) || mi > 59)
    return std::nullopt;
  int64_t precision_ms = 60000;
  int ms = 0;
  if (pos < s.size() && s[pos] == ':') {
    ++pos;
    if (!Digits(s, &pos, 2, &sec) || sec > 60) return std::nullopt;  // 60: leap second
    precision_ms = 1000;
    if (pos < s.size() && s[pos] == '.') {
      ++pos;
      int frac_digits = 0;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
        if (frac_digits < 3) ms = ms * 10 + (s[pos] - '0');
        ++frac_digits;
        ++pos;
      }
      if (frac_digits == 0 || frac_digits > 9) return std::nullopt;
      for (int k = frac_digits; k < 3; ++k) ms *= 10;
      precision_ms = 1;
    }
  }
  // Zone: required with a time.
  if (pos >= s.size()) return std::nullopt;
  int64_t offset_ms = 0;
  if (s[pos] == 'Z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-' || s[pos] == ' ') {
    const int sign = s[pos] == '-' ? -1 : 1;
    ++pos;
    int oh = 0, om = 0;
    if (!Digits(s, &pos, 2, &oh) || oh > 14 || !Expect(s, &pos, ':') || !Digits(s, &pos, 2, &om) ||
        om > 59)
      return std::nullopt;
    offset_ms = sign * (int64_t{oh} * 3600000 + int64_t{om} * 60000);
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  const int64_t start =
      day_ms + int64_t{h} * 3600000 + int64_t{mi} * 60000 + int64_t{sec} * 1000 + ms - offset_ms;
  return Period{start, start + precision_ms};
}

}  // namespace continuum::stubdeps
