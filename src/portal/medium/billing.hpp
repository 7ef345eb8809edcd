// Medium tier: billing and insurance. Work for an external service (a payment, an
// eligibility check) is first written to the durable job queue (db 0007_billing.sql),
// then tried at once; when the service (or its circuit breaker) says no, the answer is
// 202 Accepted with the job's status URL (Location) and `X-Continuum-Degraded: queued`,
// and every node's job worker retries it with backoff until the service answers. The
// job's id is the idempotency key sent to the service, and its completion is recorded
// once, so a job is processed exactly once across retries, restarts and regions.
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
boost::asio::awaitable<http::Response> ReadJob(RequestContext& ctx);

// The job worker: claims due jobs (any node's, SKIP LOCKED) every config.job_poll_ms
// and processes them. Runs until `stop`.
boost::asio::awaitable<void> JobWorker(Shard& shard, Services& svc, const std::atomic<bool>& stop);

}  // namespace continuum::portal::medium
