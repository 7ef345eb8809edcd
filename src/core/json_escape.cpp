#include "core/json_escape.hpp"

#include <cstdint>
#include <cstring>

namespace continuum {

namespace {

constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
constexpr std::uint64_t kHighs = kOnes * 0x80;

// Whether any of the eight bytes in `x` needs escaping: a control byte (below 0x20), '"' or
// '\\'. Exact as a yes/no for the word (the per-byte bits can be wrong above a match, so the
// caller looks at the word's bytes one by one when it says yes). Bytes from 0x80 on never match.
constexpr bool NeedsEscape(std::uint64_t x) {
  const std::uint64_t quote = x ^ (kOnes * '"');
  const std::uint64_t backslash = x ^ (kOnes * '\\');
  const std::uint64_t below_space = (x - kOnes * 0x20) & ~x;
  const std::uint64_t is_quote = (quote - kOnes) & ~quote;
  const std::uint64_t is_backslash = (backslash - kOnes) & ~backslash;
  return ((below_space | is_quote | is_backslash) & kHighs) != 0;
}
static_assert(!NeedsEscape(0x2020202020202020ULL) && NeedsEscape(0x2020202020202220ULL) &&
              NeedsEscape(0x5c20202020202020ULL) && NeedsEscape(0x202020202020201fULL) &&
              NeedsEscape(0x2020200020202020ULL) && !NeedsEscape(0xff8080807f7e5d5bULL));

}  // namespace

std::string JsonEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  AppendJsonEscaped(out, s);
  return out;
}

void AppendJsonEscaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  const char* const p = s.data();
  const std::size_t size = s.size();
  std::size_t run = 0;  // start of the bytes not yet copied
  std::size_t i = 0;
  while (i < size) {
    // Eight bytes at a time past the text that needs nothing (most of every response).
    if (size - i >= 8) {
      std::uint64_t word;
      std::memcpy(&word, p + i, 8);
      if (!NeedsEscape(word)) {
        i += 8;
        continue;
      }
    }
    const std::size_t end = size - i >= 8 ? i + 8 : size;
    for (; i < end; ++i) {
      const auto c = static_cast<unsigned char>(p[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      out.append(p + run, i - run);
      run = i + 1;
      const char* esc = c == '"'    ? "\\\""
                        : c == '\\' ? "\\\\"
                        : c == '\b' ? "\\b"
                        : c == '\f' ? "\\f"
                        : c == '\n' ? "\\n"
                        : c == '\r' ? "\\r"
                        : c == '\t' ? "\\t"
                                    : nullptr;
      if (esc) {
        out += esc;
      } else {
        const char u[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
        out.append(u, sizeof u);
      }
    }
  }
  out.append(p + run, size - run);
}

}  // namespace continuum
