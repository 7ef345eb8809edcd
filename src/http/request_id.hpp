// X-Request-Id: a client's id is kept when it is sane (1-128 of [A-Za-z0-9-_.:]),
// otherwise the server makes one (96 random bits, hex).
#pragma once

#include <string>
#include <string_view>

namespace continuum::http {

bool SaneRequestId(std::string_view id);
std::string NewRequestId();

}  // namespace continuum::http
