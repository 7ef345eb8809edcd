// Critical tier, write side: a provider's clinical notes (FHIR DocumentReference).
// POST creates a preliminary note (Idempotency-Key honoured: a retried POST returns
// the note it created, never a second one); $sign makes it final, recording signer and
// time; a final note is immutable (the database enforces it too).
#pragma once

#include <boost/asio/awaitable.hpp>

#include "portal/context.hpp"

namespace continuum::portal::critical {

boost::asio::awaitable<http::Response> CreateNote(RequestContext& ctx);
boost::asio::awaitable<http::Response> SignNote(RequestContext& ctx);
boost::asio::awaitable<http::Response> ReadNote(RequestContext& ctx);
boost::asio::awaitable<http::Response> SearchNotes(RequestContext& ctx);

}  // namespace continuum::portal::critical
