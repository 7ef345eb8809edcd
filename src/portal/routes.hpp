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
#include "portal/bodies.hpp"
#include "portal/context.hpp"

namespace continuum::portal {

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
  AccessPolicy access;
  std::string method;
  std::string pattern;
  Bulkhead bulkhead = Bulkhead::kTier;
  // Its body's parser (portal/bodies.hpp), for every route but the GETs: a route that
  // takes none refuses one in the dispatcher; a JSON body's handler parses it.
  const RouteBody* body = nullptr;
};

http::Router<RouteEntry> BuildRoutes();
// Every route, in table order (for `continuum routes --json` and tests).
std::vector<RouteEntry> ListRoutes();
// The first path segments of every route ("api", "fhir", "healthz", ...): paths under
// them are the API's, never the web app's (no index.html fallback for them).
std::vector<std::string> ApiPrefixes();
// The table as JSON: [{method, pattern, name, tier, caller, roles, patient, action,
// resource_type, writable, body}], body "json", "none" (a body is refused) or null (GET).
std::string RoutesJson();

}  // namespace continuum::portal
