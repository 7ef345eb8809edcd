// FHIR OperationOutcome responses: the one shape every error takes.
#pragma once

#include <string>
#include <string_view>

#include "http/message.hpp"

namespace continuum::http {

// `code` is a FHIR IssueType code (invalid, structure, not-found, forbidden, login,
// throttled, transient, conflict, too-long, not-supported, exception, ...).
Response OutcomeResponse(int status, std::string_view code, std::string_view diagnostics);

// Maps any exception to an OperationOutcome response. The one place where errors
// become HTTP (continuum::Error carries its status; anything else is a 500 whose
// message does not leak internals).
Response ErrorResponse(std::exception_ptr e);

}  // namespace continuum::http
