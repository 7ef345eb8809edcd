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

struct RouteEntry {
  std::function<boost::asio::awaitable<http::Response>(RequestContext&)> handler;
  Tier tier;
  std::string name;
  RouteAccess access = RouteAccess::kHandler;
};

http::Router<RouteEntry> BuildRoutes();

}  // namespace continuum::portal
