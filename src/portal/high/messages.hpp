// High tier: secure messaging between a patient and their care team (FHIR
// Communication).
//
//   GET  /fhir/R4/Communication?patient={id}      a patient's messages, newest first (a
//                                                 provider sees their own conversations)
//   POST /fhir/R4/Communication                   send (or reply: inResponseTo), exactly
//                                                 once per Idempotency-Key
//   POST /fhir/R4/Communication/{id}/$read        the recipient marks it read
//   GET  /api/v1/messages/unread                  the caller's unread count
//
// A patient writes to a practitioner who treats them; a practitioner writes to a patient
// they treat. While no primary is reachable, sending answers 503 read-only.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "http/message.hpp"
#include "portal/context.hpp"

namespace continuum::portal::high {

boost::asio::awaitable<http::Response> SearchMessages(RequestContext& ctx);
boost::asio::awaitable<http::Response> SendMessage(RequestContext& ctx);
boost::asio::awaitable<http::Response> MarkMessageRead(RequestContext& ctx);
boost::asio::awaitable<http::Response> UnreadMessages(RequestContext& ctx);
// GET /api/v1/messages/inbox?unread=true&_count=1..100 (providers): the provider's
// conversations across their patients, newest activity first: {"threads":[{"thread",
// "patient":{"reference","display"},"subject","last_sent","last_from_patient","unread",
// "messages"}],"unread_total"}. One audit record per patient listed.
boost::asio::awaitable<http::Response> MessageInbox(RequestContext& ctx);

}  // namespace continuum::portal::high
