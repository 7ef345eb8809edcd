// The route table: every route, its handler and its tier, declared once.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <string>

#include "http/router.hpp"
#include "portal/context.hpp"

namespace continuum::portal {

// Who may call a route, checked by the dispatcher before the handler runs.
enum class RouteAccess {
  kHandler,   // the handler decides (anyone, or a session checked by Authenticate)
  kOpsToken,  // the node's ops token (machines: Alertmanager, the prober); no PHI
};

// Whose capacity a route uses. Logging in is on the critical tier (its deadline and
// fallback), but a login flood (Argon2id costs ~50 ms of CPU each) must not take the
// records' capacity: it gets a bulkhead of its own (src/auth/README.md).
enum class Bulkhead {
  kTier,   // the tier's pools and in-flight limit
  kLogin,  // the login pool, in-flight limit and hashing queue ([auth] login_*)
};

struct RouteEntry {
  std::function<boost::asio::awaitable<http::Response>(RequestContext&)> handler;
  Tier tier;
  std::string name;
  RouteAccess access = RouteAccess::kHandler;
  Bulkhead bulkhead = Bulkhead::kTier;
};

http::Router<RouteEntry> BuildRoutes();

}  // namespace continuum::portal
