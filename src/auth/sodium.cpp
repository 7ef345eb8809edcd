#include "auth/sodium.hpp"

#include <sodium.h>

#include <stdexcept>

namespace continuum::auth::detail {

void EnsureSodium() {
  static const bool ok = sodium_init() >= 0;  // 0: initialised now, 1: already was
  if (!ok) throw std::runtime_error("libsodium could not be initialised");
}

}  // namespace continuum::auth::detail
