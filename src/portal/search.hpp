// The common shape of a patient-scoped FHIR search: GET /fhir/R4/{Type}?patient=ID
// (&_count, &_offset) — audited, authenticated, authorized for that patient, one query
// and a searchset Bundle with self/next links and the total.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json.hpp>
#include <string_view>

#include "fhir/json_writer.hpp"
#include "http/message.hpp"
#include "portal/context.hpp"

namespace continuum::portal {

// A row as a resource: built as a DOM, or written straight into the response (the
// critical tier's resources; their id is the row's column 0).
using RowToJson = boost::json::object (*)(const db::Result&, int);
using RowWriter = void (*)(fhir::JsonWriter&, const db::Result&, int);

// `q` takes $1 = patient id, $2 = page size + 1, $3 = offset and returns the page's rows;
// `count` takes $1 = patient id and returns the number of matches. The bundle's total is
// counted only when the page does not tell it (a full page, or one past the end): a patient's
// list rarely fills a page, and `count(*) OVER ()` in `q` cost every search a sixth of its
// database time.
boost::asio::awaitable<http::Response> PatientSearch(RequestContext& ctx, std::string_view type,
                                                     const db::Query& q, const db::Query& count,
                                                     RowToJson to_json);
boost::asio::awaitable<http::Response> PatientSearch(RequestContext& ctx, std::string_view type,
                                                     const db::Query& q, const db::Query& count,
                                                     RowWriter write);

}  // namespace continuum::portal
