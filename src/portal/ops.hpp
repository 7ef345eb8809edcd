// Operations endpoints and the FHIR CapabilityStatement.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "portal/context.hpp"

namespace continuum::portal {

boost::asio::awaitable<http::Response> Healthz(RequestContext& ctx);
boost::asio::awaitable<http::Response> Readyz(RequestContext& ctx);
boost::asio::awaitable<http::Response> MetricsText(RequestContext& ctx);
boost::asio::awaitable<http::Response> Capability(RequestContext& ctx);

}  // namespace continuum::portal
