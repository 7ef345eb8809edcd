// Critical tier, read side: Patient read and lookup, the clinical record by patient
// (allergies, medications, conditions, encounters) and Patient/{id}/$summary.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "portal/context.hpp"

namespace continuum::portal::critical {

boost::asio::awaitable<http::Response> ReadPatient(RequestContext& ctx);
boost::asio::awaitable<http::Response> SearchPatients(RequestContext& ctx);
boost::asio::awaitable<http::Response> PatientSummary(RequestContext& ctx);
boost::asio::awaitable<http::Response> SearchAllergies(RequestContext& ctx);
boost::asio::awaitable<http::Response> SearchMedications(RequestContext& ctx);
boost::asio::awaitable<http::Response> SearchConditions(RequestContext& ctx);
boost::asio::awaitable<http::Response> SearchEncounters(RequestContext& ctx);

}  // namespace continuum::portal::critical
