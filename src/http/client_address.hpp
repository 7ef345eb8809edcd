// The client's address for audit records and throttling. Behind the HAProxy edge the
// TCP peer is the proxy; then X-Forwarded-For names the client. The header is believed
// only when the peer is a configured trusted proxy (anyone can send the header), and
// only up to the first address that is not itself a trusted proxy.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace continuum::http {

std::string ClientAddress(std::string_view peer, std::string_view x_forwarded_for,
                          const std::vector<std::string>& trusted_proxies);

}  // namespace continuum::http
