// PostgreSQL COPY text format: one field, escaped (used by the seed loader; the audit
// shipper sends COPY's binary format, src/audit/shipper.cpp).
#pragma once

#include <string>
#include <string_view>

namespace continuum::db {

// Appends `v` with backslash, tab, newline and carriage return escaped.
inline void AppendCopyText(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
}

inline constexpr std::string_view kCopyNull = "\\N";

}  // namespace continuum::db
