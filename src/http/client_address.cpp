#include "http/client_address.hpp"

#include <algorithm>

namespace continuum::http {

namespace {
bool Trusted(std::string_view a, const std::vector<std::string>& trusted) {
  return std::find(trusted.begin(), trusted.end(), a) != trusted.end();
}
std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
bool Plausible(std::string_view a) {
  if (a.empty() || a.size() > 45) return false;
  for (char c : a)
    if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == '.' || c == ':')) return false;
  return true;
}
}  // namespace

std::string ClientAddress(std::string_view peer, std::string_view xff,
                          const std::vector<std::string>& trusted) {
  if (xff.empty() || !Trusted(peer, trusted)) return std::string(peer);
  // Walk from the right (the hop nearest to us) past trusted proxies.
  std::string_view rest = xff;
  std::string_view chosen = peer;
  while (!rest.empty()) {
    auto comma = rest.rfind(',');
    std::string_view hop = Trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
    if (!Plausible(hop)) break;  // garbage: keep the last address we could trust
    chosen = hop;
    if (!Trusted(hop, trusted)) break;
  }
  return std::string(chosen);
}

}  // namespace continuum::http
