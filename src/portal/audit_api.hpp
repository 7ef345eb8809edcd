// The audit trail as FHIR AuditEvent (GET /fhir/R4/AuditEvent?patient=) and the
// break-the-glass review list (GET /api/v1/break-glass), for the auditor role. Served
// from PostgreSQL's append-only audit_event table (what the shippers have copied).
#pragma once

#include <boost/asio/awaitable.hpp>

#include "portal/context.hpp"

namespace continuum::portal {

boost::asio::awaitable<http::Response> SearchAuditEvents(RequestContext& ctx);
boost::asio::awaitable<http::Response> BreakGlassList(RequestContext& ctx);

}  // namespace continuum::portal
