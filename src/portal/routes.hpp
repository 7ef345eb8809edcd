// The route table: every route, its handler, its tier and its access policy, declared
// once. The dispatcher (portal/node.cpp) derives the rest: pools, in-flight limits,
// deadlines and fallbacks from the tier; who may call, how the patient is found, what
// is audited and whether a writable primary is needed from the policy
// (portal/access.hpp), applied before the handler runs.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <string>
#include <vector>

#include "http/router.hpp"
#include "portal/access.hpp"
#include "portal/context.hpp"

namespace continuum::portal {

struct RouteEntry {
  std::function<boost::asio::awaitable<http::Response>(RequestContext&)> handler;
  Tier tier;
  std::string name;
  AccessPolicy access;
  std::string method;
  std::string pattern;
};

http::Router<RouteEntry> BuildRoutes();
// Every route, in table order (for `continuum routes --json` and tests).
std::vector<RouteEntry> ListRoutes();
// The table as JSON: [{method, pattern, name, tier, caller, roles, patient, action,
// resource_type, writable}].
std::string RoutesJson();

}  // namespace continuum::portal
