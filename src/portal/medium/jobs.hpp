// The medium tier's durable job queue (db 0007_billing.sql): work for an external
// service (a payment, an eligibility check, a refill request) is written first, then
// tried at once; while the service (or its circuit breaker) says no, the answer is 202
// Accepted with the job's status URL (Location) and `X-Continuum-Degraded: queued`, and
// every node's job worker retries due jobs with backoff (SKIP LOCKED, so nodes share
// the work). The job's id is the idempotency key sent to the service and its completion
// is recorded once: each job is processed exactly once across retries, node restarts
// and the loss of a region.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/json.hpp>
#include <string>
#include <string_view>

#include "audit/record.hpp"
#include "http/message.hpp"
#include "portal/context.hpp"

namespace continuum::portal::medium {

// Enqueues `request` (JSON) as a job of `kind` for the caller, exactly once per
// Idempotency-Key (a different request under a used key: 409), tries it now, and
// answers 201 (done) / 422 (refused by the service) / 202 (queued).
boost::asio::awaitable<http::Response> Submit(RequestContext& ctx, audit::Record& rec,
                                              const std::string& kind,
                                              const std::string& patient_id,
                                              const std::string& request, const std::string& key);
// A payment of `amount_cents` on the caller's `invoice`: enqueued on the primary in one
// transaction that locks the invoice and reserves the amount (db 0017), so two keys (or
// two nodes) can never charge more than is open. Then as Submit.
boost::asio::awaitable<http::Response> SubmitPayment(RequestContext& ctx, audit::Record& rec,
                                                     const std::string& patient_id,
                                                     const std::string& invoice,
                                                     int64_t amount_cents, const std::string& key);
// True when the caller already submitted `kind` work under `key`.
boost::asio::awaitable<bool> JobExists(RequestContext& ctx, const std::string& kind,
                                       const std::string& key);
// The Idempotency-Key header, required (BadRequest without one).
std::string RequiredKey(RequestContext& ctx);

// GET /api/v1/jobs/{id}: the caller's job and its status.
boost::asio::awaitable<http::Response> ReadJob(RequestContext& ctx);
// The worker: claims due jobs every config.job_poll_ms and processes them, until `stop`.
boost::asio::awaitable<void> JobWorker(Shard& shard, Services& svc, const std::atomic<bool>& stop);

}  // namespace continuum::portal::medium
