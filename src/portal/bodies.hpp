// The request bodies of every route that is not a GET, validated without a database.
//
// Each handler calls its route's parser here before any database work (and before any
// write, so a refused body leaves no trace but its audit record); the parsers are pure
// functions of the request (and, where the rule depends on who asks, the caller's
// claims). RouteBodies() lists them by route name (routes.cpp): the route table takes
// each route's entry from it, the dispatcher applies the no-body rule with it, a unit
// test checks that every route but the GETs has one, and fuzz/route_body_fuzz.cpp
// feeds every entry arbitrary bytes.
//
// A refused body throws a continuum::Error with a 4xx status (400 naming the field and
// what is wrong, 415 for a body that is not JSON); nothing else may escape a parser (any
// other exception would be a 500). Every field a route allows is checked for its type
// and size, also the ones the server derives itself and otherwise ignores (a FHIR client
// may send a whole resource): a wrong value is refused, never silently dropped.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "auth/token.hpp"
#include "http/message.hpp"
#include "portal/ops_payloads.hpp"

namespace continuum::portal {

// FHIR ids of seeded and created rows are decimal bigints; anything else that is a
// valid FHIR id is simply unknown (404), anything that is not one is a 400.
int64_t ParseId(std::string_view id, std::string_view what);
// "Type/ID" or ID (string or number) in o[key] -> ID; BadRequest otherwise.
std::string RefOrId(const boost::json::object& o, const char* key, std::string_view type);

// Routes that take no body ($sign, $cancel, $read, logout): none, or the empty JSON
// object `{}` (what many clients send with a POST); anything else is refused (400, or
// 415 for a body that is not JSON), so the operation never runs on a body it ignores.
void RequireNoBody(const http::Request& req);

// POST /api/v1/session {"username", "password"[, "totp"]}.
struct LoginBody {
  std::string username;
  std::string password;
  std::string totp;  // "" when absent
};
LoginBody ParseLoginBody(const http::Request& req);
// POST /api/v1/session/totp {"password"}: the password.
std::string ParseTotpEnrolBody(const http::Request& req);
// POST /api/v1/session/totp/confirm {"code"}: the code (6 digits).
std::string ParseTotpConfirmBody(const http::Request& req);

// POST /fhir/R4/DocumentReference: a new, preliminary note by the calling provider.
struct NoteBody {
  std::string patient_id;
  std::string title;
  std::string content;  // UTF-8 text, 1 to 65536 bytes
};
NoteBody ParseNoteBody(const http::Request& req, const auth::Claims& caller);

// POST /fhir/R4/Appointment: the slot to book and an optional description.
struct AppointmentBody {
  std::string slot;
  std::optional<std::string> description;
};
AppointmentBody ParseAppointmentBody(const http::Request& req);
// POST /fhir/R4/Appointment/{id}/$reschedule {"slot": [...]}: the new slot's id.
std::string ParseRescheduleBody(const http::Request& req);

// POST /fhir/R4/Communication: a message between the caller and the other side.
struct MessageBody {
  std::string patient_id, practitioner_id;
  std::optional<std::string> subject;
  std::string body;
  std::optional<std::string> in_response_to;
};
MessageBody ParseMessageBody(const http::Request& req, const auth::Claims& caller);

// POST /api/v1/payments {"invoice", "amount_cents"}.
struct PaymentBody {
  std::string invoice;
  int64_t amount_cents = 0;
};
PaymentBody ParsePaymentBody(const http::Request& req);
// POST /api/v1/insurance/verify {"coverage"[, "service"]}.
struct EligibilityBody {
  std::string coverage;
  std::string service;  // "office-visit" when absent
};
EligibilityBody ParseEligibilityBody(const http::Request& req);
// POST /api/v1/refills {"medication"}: the MedicationStatement id.
std::string ParseRefillBody(const http::Request& req);

// POST /api/v1/ops/alerts and /api/v1/ops/journey-runs: application/json, then
// ops::ParseAlertmanagerWebhook / ops::ParseJourneyRun.
ops::AlertBatch ParseAlertsBody(const http::Request& req);
ops::JourneyRun ParseJourneyRunBody(const http::Request& req);
ops::OpsReport ParseOpsReportBody(const http::Request& req);
ops::PoolHoldRequest ParsePoolHoldBody(const http::Request& req);

enum class BodyKind {
  kNone,  // the route takes no body (RequireNoBody, applied by the dispatcher)
  kJson,  // a JSON body, parsed by the handler with its route's parser
};
const char* BodyKindName(BodyKind k);  // "none" | "json"

// One route's body: its parser, as a check of a whole request by a caller.
struct RouteBody {
  std::string_view route;  // the route's name in the route table
  BodyKind kind;
  void (*check)(const http::Request& req, const auth::Claims& caller);
};
// Every route that is not a GET, in no particular order.
std::span<const RouteBody> RouteBodies();
const RouteBody* FindRouteBody(std::string_view route);

}  // namespace continuum::portal
