// Medium tier: billing and insurance. Payments and eligibility checks go through the
// durable job queue (portal/medium/jobs.hpp): 202 + status URL while their service is
// down, processed exactly once when it returns.
//
//   GET  /fhir/R4/Account?patient=    balance (open invoices)
//   GET  /fhir/R4/Invoice?patient=
//   GET  /fhir/R4/Coverage?patient=
//   POST /api/v1/payments             {"invoice": "Invoice/ID", "amount_cents": N} +
//   Idempotency-Key POST /api/v1/insurance/verify     {"coverage": "Coverage/ID", "service": "..."}
//   + Idempotency-Key GET  /api/v1/jobs/{id}            a queued request's status
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>

#include "http/message.hpp"
#include "portal/context.hpp"

namespace continuum::portal::medium {

boost::asio::awaitable<http::Response> ReadAccount(RequestContext& ctx);
boost::asio::awaitable<http::Response> SearchInvoices(RequestContext& ctx);
boost::asio::awaitable<http::Response> SearchCoverage(RequestContext& ctx);
boost::asio::awaitable<http::Response> Pay(RequestContext& ctx);
boost::asio::awaitable<http::Response> VerifyInsurance(RequestContext& ctx);

}  // namespace continuum::portal::medium
