// Operations endpoints and the FHIR CapabilityStatement.
#pragma once

#include <array>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <vector>

#include "portal/context.hpp"

namespace continuum::portal {

// A tier's mode as /readyz reports it: "normal", or its degraded mode (critical:
// writes-waiting | unavailable; high: read-only | unavailable; medium: queued; low:
// stale), from whether reads and writes can reach a database and whether a medium-tier
// service (payments, insurance, pharmacy) is unhealthy.
const char* TierMode(Tier t, bool reads_ok, bool writes_ok, bool medium_service_down);
// The degraded modes a tier can be in (empty for ops).
std::vector<const char*> DegradedModes(Tier t);
bool MediumServiceDown(deps::Registry* deps);
// Every tier's mode as known now without a database round trip (for /metrics): with a
// topology from its probe loop; without one from the session sync loop's last round
// trip to the database (every [auth] revocation_poll_ms).
std::array<const char*, 5> TierModesNow(Services& svc);

// GET /healthz: {"status":"ok"} while the process serves; nothing else, for anyone.
boost::asio::awaitable<http::Response> Healthz(RequestContext& ctx);
// GET /readyz: 200 when this node can serve the critical tier, else 503 (HAProxy's check).
// Without an Authorization header the body is only AnonymousReadyBody (no topology, no
// error text, no tier details); with the ops token it is the full state (node, region,
// database members, audit journal, each tier's mode and pool, each dependency's health,
// EHR sync); with any other credentials the request is refused (RequireOpsToken).
boost::asio::awaitable<http::Response> Readyz(RequestContext& ctx);
// {"status": "ready"} or {"status": "not-ready"}: all an anonymous caller learns.
boost::json::object AnonymousReadyBody(bool ready);
// The operations view: the same at-a-glance state as /readyz (node, database and
// replicas, each tier's mode, each external dependency's health and breaker, audit),
// always 200 so dashboards can read it from an unready node too. Adds, from the
// database, the alerts firing now and each journey's last run per vantage (see
// ops::AddOpsState).
boost::asio::awaitable<http::Response> OpsStatus(RequestContext& ctx);
// GET /metrics (Prometheus text). Its route is behind the ops token (routes.cpp): the
// series name regions, database members, dependencies and routes.
boost::asio::awaitable<http::Response> MetricsText(RequestContext& ctx);
boost::asio::awaitable<http::Response> Capability(RequestContext& ctx);

}  // namespace continuum::portal
