// High tier: appointment scheduling as FHIR Slot and Appointment.
//
//   GET  /fhir/R4/Slot?status=free&start=ge2026-12-01&schedule=Schedule/{practitioner}&_count
//   POST /fhir/R4/Appointment                       book a slot for the logged-in patient
//   GET  /fhir/R4/Appointment?patient={id}          a patient's appointments
//   GET  /fhir/R4/Appointment/{id}
//   POST /fhir/R4/Appointment/{id}/$cancel          cancel (frees the slot)
//   POST /fhir/R4/Appointment/{id}/$reschedule      move to another slot, atomically
//
// Booking is exactly-once per Idempotency-Key and can never double-book a slot (see
// db/migrations/0004_scheduling.sql). When writes cannot reach a primary the tier is
// read-only: reads keep working, writes answer 503 read-only (portal/node.cpp).
#pragma once

#include <boost/asio/awaitable.hpp>

#include "http/message.hpp"
#include "portal/context.hpp"

namespace continuum::portal::high {

boost::asio::awaitable<http::Response> SearchSlots(RequestContext& ctx);
boost::asio::awaitable<http::Response> BookAppointment(RequestContext& ctx);
boost::asio::awaitable<http::Response> SearchAppointments(RequestContext& ctx);
boost::asio::awaitable<http::Response> ReadAppointment(RequestContext& ctx);
boost::asio::awaitable<http::Response> CancelAppointment(RequestContext& ctx);
boost::asio::awaitable<http::Response> RescheduleAppointment(RequestContext& ctx);

}  // namespace continuum::portal::high
