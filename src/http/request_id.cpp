#include "http/request_id.hpp"

#include <sodium.h>

#include <cctype>

namespace continuum::http {

bool SaneRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
          c == ':'))
      return false;
  return true;
}

std::string NewRequestId() {
  unsigned char b[12];
  randombytes_buf(b, sizeof b);
  char hex[25];
  sodium_bin2hex(hex, sizeof hex, b, sizeof b);
  return hex;
}

}  // namespace continuum::http
