// FHIR OperationOutcome responses: the one shape every error takes.
#pragma once

#include <string>
#include <string_view>

#include "http/message.hpp"

namespace continuum::http {

// `diagnostics` may quote client input: it is made valid UTF-8 (Utf8Safe), so the body
// is always valid JSON.
// `code` is a FHIR IssueType code (invalid, structure, not-found, forbidden, login,
// throttled, transient, conflict, too-long, not-supported, exception, ...).
Response OutcomeResponse(int status, std::string_view code, std::string_view diagnostics);

// `text` with every byte that is not part of well-formed UTF-8 replaced by U+FFFD.
std::string Utf8Safe(std::string_view text);

// Maps any exception to an OperationOutcome response. The one place where errors
// become HTTP (continuum::Error carries its status; anything else is a 500 whose
// message does not leak internals).
Response ErrorResponse(std::exception_ptr e);

}  // namespace continuum::http
