// Email and SMS notifications through an outbox (db 0009_notifications.sql). A
// notification is written first, then delivered by every node's notification worker
// (SKIP LOCKED, so nodes share the work): by the patient's preferred channel (email
// when the patient has an address, else SMS), and at once by the other channel when
// that one is down (its breaker open or the send failing). While both are down it stays
// queued and is retried with backoff. Each channel is a deps::Dependency ("smtp",
// "sms"), so its health is in /readyz.
//
// Delivery is once per notification: SMS carries Idempotency-Key
// continuum-notification-<id>; SMTP has no idempotency, so a notification is marked
// sent right after the server's 250 to DATA: a crash between that 250 and the UPDATE
// sends that one email again (the usual at-least-once caveat of SMTP).
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <string>

#include "http/message.hpp"
#include "portal/context.hpp"

namespace continuum::portal::high {

// Enqueues the 'appointment-booked' notification of a just booked appointment (once:
// dedupe_key booked-<id>). Throws on database errors; the caller decides.
boost::asio::awaitable<void> EnqueueBooked(RequestContext& ctx, const std::string& appointment_id);

// GET /api/v1/notifications: the logged-in patient's notifications, newest first.
boost::asio::awaitable<http::Response> ListNotifications(RequestContext& ctx);

// The worker: every [notifications] poll_ms, enqueues due reminders (booked
// appointments starting within 24 h, once each; and the booked-notification of any
// recent booking whose enqueue failed), then delivers due notifications, until `stop`.
boost::asio::awaitable<void> NotificationWorker(Shard& shard, Services& svc,
                                                const std::atomic<bool>& stop);

// "555-555-0123" / "(555) 555-0123" / "+15555550123" -> E.164 ("+15555550123"); "" when
// it is not a usable number.
std::string E164(const std::string& phone);

}  // namespace continuum::portal::high
