// The common shape of a patient-scoped FHIR search: GET /fhir/R4/{Type}?patient=ID
// (&_count, &_offset) — audited, authenticated, authorized for that patient, one query
// and a searchset Bundle with self/next links and the total.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json.hpp>
#include <string_view>

#include "http/message.hpp"
#include "portal/context.hpp"

namespace continuum::portal {

using RowToJson = boost::json::object (*)(const db::Result&, int);

// `q` takes $1 = patient id, $2 = page size + 1, $3 = offset, and returns
// `count(*) OVER ()` in column `total_col` (-1: the last column).
boost::asio::awaitable<http::Response> PatientSearch(RequestContext& ctx, std::string_view type,
                                                     const db::Query& q, RowToJson to_json,
                                                     int total_col = -1);

}  // namespace continuum::portal
