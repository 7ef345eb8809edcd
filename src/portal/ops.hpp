// Operations endpoints and the FHIR CapabilityStatement.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "portal/context.hpp"

namespace continuum::portal {

boost::asio::awaitable<http::Response> Healthz(RequestContext& ctx);
boost::asio::awaitable<http::Response> Readyz(RequestContext& ctx);
// The operations view: the same at-a-glance state as /readyz (node, database and
// replicas, each tier's mode, each external dependency's health and breaker, audit),
// always 200 so dashboards can read it from an unready node too.
boost::asio::awaitable<http::Response> OpsStatus(RequestContext& ctx);
boost::asio::awaitable<http::Response> MetricsText(RequestContext& ctx);
boost::asio::awaitable<http::Response> Capability(RequestContext& ctx);

}  // namespace continuum::portal
