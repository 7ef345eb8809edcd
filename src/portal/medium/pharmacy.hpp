// Medium tier: the pharmacy feed.
//
//   GET  /api/v1/medications/{id}/fill-status   live from the pharmacy; while it is down,
//                                               the last status it reported, marked stale
//                                               with its time (X-Continuum-Degraded: stale)
//   POST /api/v1/refills                        {"medication": "MedicationStatement/ID"} +
//                                               Idempotency-Key; queued while the pharmacy
//                                               is down (portal/medium/jobs.hpp)
#pragma once

#include <boost/asio/awaitable.hpp>

#include "http/message.hpp"
#include "portal/context.hpp"

namespace continuum::portal::medium {

boost::asio::awaitable<http::Response> FillStatus(RequestContext& ctx);
boost::asio::awaitable<http::Response> RequestRefill(RequestContext& ctx);

}  // namespace continuum::portal::medium
