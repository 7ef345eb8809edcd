// Civil-date arithmetic for the seed (days since 1970-01-01, proleptic Gregorian;
// H. Hinnant's algorithms), without time zones or the C library's locale.
#pragma once

#include <cstdint>
#include <string>

namespace continuum::seed {

constexpr int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

struct CivilDate {
  int64_t year;
  unsigned month;
  unsigned day;
};

constexpr CivilDate CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {y + (m <= 2), m, d};
}

// Appends YYYY-MM-DD.
inline void AppendDate(std::string& out, int64_t days) {
  const CivilDate c = CivilFromDays(days);
  char buf[16];
  buf[0] = static_cast<char>('0' + c.year / 1000 % 10);
  buf[1] = static_cast<char>('0' + c.year / 100 % 10);
  buf[2] = static_cast<char>('0' + c.year / 10 % 10);
  buf[3] = static_cast<char>('0' + c.year % 10);
  buf[4] = '-';
  buf[5] = static_cast<char>('0' + c.month / 10);
  buf[6] = static_cast<char>('0' + c.month % 10);
  buf[7] = '-';
  buf[8] = static_cast<char>('0' + c.day / 10);
  buf[9] = static_cast<char>('0' + c.day % 10);
  out.append(buf, 10);
}

// Appends "YYYY-MM-DD HH:MM:SS+00" for a UTC instant in seconds since the epoch.
inline void AppendTimestamp(std::string& out, int64_t epoch_seconds) {
  int64_t days = epoch_seconds / 86400;
  int64_t secs = epoch_seconds % 86400;
  if (secs < 0) {
    secs += 86400;
    --days;
  }
  AppendDate(out, days);
  const int h = static_cast<int>(secs / 3600), m = static_cast<int>(secs / 60 % 60),
            s = static_cast<int>(secs % 60);
  char buf[16] = {' ',
                  static_cast<char>('0' + h / 10),
                  static_cast<char>('0' + h % 10),
                  ':',
                  static_cast<char>('0' + m / 10),
                  static_cast<char>('0' + m % 10),
                  ':',
                  static_cast<char>('0' + s / 10),
                  static_cast<char>('0' + s % 10),
                  '+',
                  '0',
                  '0'};
  out.append(buf, 12);
}

}  // namespace continuum::seed
