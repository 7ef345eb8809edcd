#include "portal/high/appointments.hpp"

#include <cctype>

#include "core/error.hpp"
#include "core/log.hpp"
#include "db/errors.hpp"
#include "fhir/fhir.hpp"
#include "portal/access.hpp"
#include "portal/bodies.hpp"
#include "portal/high/notifications.hpp"
#include "portal/search.hpp"

namespace continuum::portal::high {
namespace asio = boost::asio;
namespace json = boost::json;

#define CONTINUUM_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

namespace {

// ---- queries
#define SLOT_COLS                                                                                  \
  "s.id, s.practitioner_id, p.given || ' ' || p.family, p.specialty, s.facility_id, "              \
  "f.name, s.status, " CONTINUUM_TS("s.start_at") ", " CONTINUUM_TS("s.end_at") ", " CONTINUUM_TS( \
      "s.updated_at")
#define SLOT_FROM                                                                           \
  " FROM slot s JOIN practitioner p ON p.id = s.practitioner_id JOIN facility f ON f.id = " \
  "s.facility_id"

const db::Query kSlots{"slot_search",
                       "SELECT " SLOT_COLS SLOT_FROM
                       " WHERE s.status = $1 AND s.start_at >= $2::timestamptz AND s.start_at < "
                       "$3::timestamptz AND ($4::bigint IS NULL OR s.practitioner_id = $4) "
                       // The prober's synthetic practitioners only when asked for by schedule.
                       "AND ($4::bigint IS NOT NULL OR NOT p.synthetic) "
                       "ORDER BY s.start_at, s.id LIMIT $5 OFFSET $6",
                       db::Access::kRead};

#define APPT_COLS                                               \
  "a.id, a.patient_id, a.status, a.description, " CONTINUUM_TS( \
      "a.created_at") ", " SLOT_COLS ", " CONTINUUM_TS("a.updated_at")
#define APPT_FROM                                                                      \
  " FROM appointment a JOIN slot s ON s.id = a.slot_id JOIN practitioner p ON p.id = " \
  "s.practitioner_id JOIN facility f ON f.id = s.facility_id"

const db::Query kAppointmentById{
    "appointment_by_id", "SELECT " APPT_COLS APPT_FROM " WHERE a.id = $1", db::Access::kRead};
const db::Query kAppointmentsByPatient{
    "appointments_by_patient",
    "SELECT " APPT_COLS APPT_FROM
    " WHERE a.patient_id = $1 ORDER BY s.start_at DESC, a.id DESC "
    "LIMIT $2 OFFSET $3",
    db::Access::kRead};
const db::Query kCountAppointments{"appointments_count",
                                   "SELECT count(*)" APPT_FROM " WHERE a.patient_id = $1",
                                   db::Access::kRead};
// Appointments are clinical data: synchronous commit (the default class).
const db::Query kBook{"appointment_book",
                      "SELECT appointment_id, outcome FROM continuum_book($1, $2, $3, $4)",
                      db::Access::kWrite};
const db::Query kCancel{"appointment_cancel", "SELECT continuum_cancel($1, $2)",
                        db::Access::kWrite};
const db::Query kReschedule{
    "appointment_reschedule",
    "SELECT appointment_id, outcome FROM continuum_reschedule($1, $2, $3, $4)", db::Access::kWrite};

// ---- JSON
json::object SlotJson(const db::Result& r, int i, int c = 0) {
  json::object sched = fhir::Reference("Schedule", r.get(i, c + 1));
  sched["display"] = std::string(r.get(i, c + 2)) + " (" + std::string(r.get(i, c + 3)) + ")";
  return json::object{{"resourceType", "Slot"},
                      {"id", r.get(i, c + 0)},
                      {"meta", fhir::Meta(r.get(i, c + 9))},
                      {"schedule", std::move(sched)},
                      {"status", r.get(i, c + 6)},
                      {"start", r.get(i, c + 7)},
                      {"end", r.get(i, c + 8)},
                      {"comment", "At " + std::string(r.get(i, c + 5))}};
}

json::object AppointmentJson(const db::Result& r, int i) {
  constexpr int s = 5;  // the slot's columns start here
  json::object pat = fhir::Reference("Patient", r.get(i, 1));
  json::object pra = fhir::Reference("Practitioner", r.get(i, s + 1));
  pra["display"] = r.get(i, s + 2);
  json::object loc = fhir::Reference("Organization", r.get(i, s + 4));
  loc["display"] = r.get(i, s + 5);
  json::object a{{"resourceType", "Appointment"},
                 {"id", r.get(i, 0)},
                 {"meta", fhir::Meta(r.get(i, s + 10))},
                 {"status", r.get(i, 2)},
                 {"start", r.get(i, s + 7)},
                 {"end", r.get(i, s + 8)},
                 {"minutesDuration", 30},
                 {"created", r.get(i, 4)},
                 {"slot", json::array{fhir::Reference("Slot", r.get(i, s + 0))}},
                 {"participant",
                  json::array{json::object{{"actor", std::move(pat)}, {"status", "accepted"}},
                              json::object{{"actor", std::move(pra)}, {"status", "accepted"}},
                              json::object{{"actor", std::move(loc)}, {"status", "accepted"}}}}};
  if (!r.null(i, 3)) a["description"] = r.get(i, 3);
  return a;
}

// ---- parameters
bool AllDigits(std::string_view s, std::size_t from, std::size_t n) {
  if (s.size() < from + n) return false;
  for (std::size_t k = from; k < from + n; ++k)
    if (!std::isdigit(static_cast<unsigned char>(s[k]))) return false;
  return true;
}

// A FHIR date (YYYY-MM-DD, UTC midnight) or instant (YYYY-MM-DDThh:mm[:ss[.fff]](Z|+hh:mm)).
std::string ParseInstant(std::string_view v) {
  auto bad = [&]() {
    return BadRequest(
        "start must be a date (2026-12-01) or an instant (2026-12-01T09:00:00Z), "
        "with an optional ge, gt, le or lt prefix.");
  };
  if (!AllDigits(v, 0, 4) || v[4] != '-' || !AllDigits(v, 5, 2) || v[7] != '-' ||
      !AllDigits(v, 8, 2))
    throw bad();
  if (v.size() == 10) return std::string(v) + "T00:00:00Z";
  if (v[10] != 'T' || !AllDigits(v, 11, 2) || v.size() < 16 || v[13] != ':' || !AllDigits(v, 14, 2))
    throw bad();
  std::size_t k = 16;
  if (k < v.size() && v[k] == ':') {
    if (!AllDigits(v, k + 1, 2)) throw bad();
    k += 3;
    if (k < v.size() && v[k] == '.') {
      ++k;
      std::size_t d = k;
      while (k < v.size() && std::isdigit(static_cast<unsigned char>(v[k]))) ++k;
      if (k == d) throw bad();
    }
  }
  std::string_view zone = v.substr(k);
  bool ok = zone == "Z" || (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') &&
                            AllDigits(zone, 1, 2) && zone[3] == ':' && AllDigits(zone, 4, 2));
  if (!ok) throw bad();
  return std::string(v);
}

void RequirePatient(RequestContext& ctx, const char* what) {
  if (ctx.claims->role != "patient") {
    ctx.AuditOutcome("denied", "only patients book their own appointments here");
    throw Forbidden(std::string("Only a patient can ") + what + " here, for themself.");
  }
}

// The appointment as stored, for a response; 404 when it is not this patient's.
asio::awaitable<db::Result> Load(RequestContext& ctx, const std::string& id) {
  auto r = co_await ctx.Read(kAppointmentById, db::P(id));
  co_return r;
}

// The refusals continuum_book (and continuum_reschedule through it) can answer with.
void ThrowUnlessBooked(RequestContext& ctx, const std::string& outcome, const std::string& slot) {
  if (outcome == "no-slot") {
    ctx.AuditOutcome("failure", "no such slot");
    throw BadRequest("Slot/" + slot + " does not exist.", "not-found");
  }
  if (outcome == "taken") {
    ctx.AuditOutcome("failure", "slot not free");
    throw Conflict("That time is no longer available. Please choose another slot.");
  }
  if (outcome == "key-reused") {
    ctx.AuditOutcome("failure", "idempotency key reused for another request");
    throw Conflict(
        "This Idempotency-Key was already used for a different booking or change. Use a new "
        "key for a new request.");
  }
}

}  // namespace

asio::awaitable<http::Response> SearchSlots(RequestContext& ctx) {
  Authenticate(ctx);
  fhir::CheckParams(ctx.req, {"status", "start", "schedule", "_count", "_offset"});
  std::string status = ctx.req.param("status").value_or("free");
  if (status != "free" && status != "busy")
    throw BadRequest("status must be free or busy.", "value");
  std::string from = "now", to = "infinity";
  std::vector<std::pair<std::string, std::string>> self;
  self.emplace_back("status", status);
  for (const auto& [k, v] : ctx.req.query) {
    if (k != "start") continue;
    self.emplace_back("start", v);
    std::string_view sv = v;
    std::string prefix = "ge";
    if (sv.size() > 2 && std::isalpha(static_cast<unsigned char>(sv[0]))) {
      prefix = std::string(sv.substr(0, 2));
      sv.remove_prefix(2);
    }
    std::string at = ParseInstant(sv);
    if (prefix == "ge" || prefix == "gt")
      from = at;  // slots start on the half hour: ge and gt differ only at the boundary
    else if (prefix == "lt" || prefix == "le")
      to = at;
    else
      throw BadRequest("start supports the prefixes ge, gt, le and lt.", "not-supported");
  }
  db::Param practitioner(std::nullopt);
  if (auto s = ctx.req.param("schedule")) {
    std::string_view sv = *s;
    if (sv.starts_with("Schedule/")) sv.remove_prefix(9);
    practitioner = db::Param(std::to_string(ParseId(sv, "Schedule")));
    self.emplace_back("schedule", *s);
  }
  auto paging = fhir::ParsePaging(ctx.req);
  auto r = co_await ctx.Read(
      kSlots, db::P(status, from, to, practitioner, paging.count + 1, paging.offset));
  int n = std::min(r.rows(), paging.count);
  std::vector<json::object> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) out.push_back(SlotJson(r, i));
  std::string base = ctx.BaseUrl();
  std::optional<std::string> next;
  if (r.rows() > paging.count)
    next = fhir::SearchUrl(base, "Slot", self, {paging.count, paging.offset + paging.count});
  co_return fhir::Json(200, fhir::SearchBundle(fhir::SearchUrl(base, "Slot", self, paging), next,
                                               std::move(out), base));
}

asio::awaitable<http::Response> BookAppointment(RequestContext& ctx) {
  auto& rec = ctx.Audit("create", "Appointment");
  Authenticate(ctx);
  RequirePatient(ctx, "book an appointment");
  const std::string& me = ctx.claims->patient_id;
  rec.patient_id = me;
  std::string slot, key;
  std::optional<std::string> description;
  try {
    auto b = ParseAppointmentBody(ctx.req);
    slot = std::move(b.slot);
    description = std::move(b.description);
    key = IdempotencyKey(ctx);
  } catch (const Error&) {
    ctx.AuditOutcome("failure", "invalid request");
    throw;
  }
  RequireWritable(ctx);
  db::Param keyp = key.empty() ? db::Param(std::nullopt) : db::Param(key);
  db::Param descp = description ? db::Param(*description) : db::Param(std::nullopt);
  db::Result r;
  bool raced = false;
  try {
    r = co_await ctx.Write(kBook, db::P(slot, me, descp, keyp), /*idempotent=*/!key.empty());
  } catch (const db::UniqueViolation&) {
    raced = true;  // the same key, booked concurrently: this is a replay of it
  }
  if (raced) r = co_await ctx.Write(kBook, db::P(slot, me, descp, keyp), true);
  std::string outcome(r.get(0, 1));
  ThrowUnlessBooked(ctx, outcome, slot);
  std::string id(r.get(0, 0));
  rec.resource_id = id;
  // The booking is committed and stands whatever happens next. Its notification is
  // enqueued right after, in its own statement (a replay enqueues nothing new: the
  // dedupe key); if that fails, the notification worker's sweep enqueues the booked-
  // notification of any recent booking without one.
  if (outcome == "booked" || outcome == "replayed") {
    try {
      co_await EnqueueBooked(ctx, id);
    } catch (const std::exception& e) {
      log::Warn("appointment {}: notification not enqueued now ({}); the sweep will", id, e.what());
    }
  }
  auto a = co_await Load(ctx, id);
  if (a.rows() == 0) throw Unavailable("The appointment could not be read back; please retry.");
  rec.outcome = "success";
  auto resp = fhir::Json(outcome == "booked" ? 201 : 200, AppointmentJson(a, 0));
  resp.set_header("Location", ctx.BaseUrl() + "/Appointment/" + id);
  if (outcome == "replayed") resp.set_header("Idempotent-Replayed", "true");
  co_return resp;
}

asio::awaitable<http::Response> SearchAppointments(RequestContext& ctx) {
  return PatientSearch(ctx, "Appointment", kAppointmentsByPatient, kCountAppointments,
                       &AppointmentJson);
}

asio::awaitable<http::Response> ReadAppointment(RequestContext& ctx) {
  const std::string& raw = ctx.req.path_params[0];
  auto& rec = ctx.Audit("read", "Appointment", raw.substr(0, 64));
  Authenticate(ctx);
  std::string id = std::to_string(ParseId(raw, "Appointment"));
  rec.resource_id = id;
  auto r = co_await Load(ctx, id);
  if (r.rows() == 0) {
    rec.outcome = "failure";
    throw NotFound("Appointment/" + id + " does not exist.");
  }
  rec.patient_id = std::string(r.get(0, 1));
  co_await AuthorizePatient(ctx, rec.patient_id);
  rec.outcome = "success";
  co_return fhir::Json(200, AppointmentJson(r, 0));
}

asio::awaitable<http::Response> CancelAppointment(RequestContext& ctx) {
  const std::string& raw = ctx.req.path_params[0];
  auto& rec = ctx.Audit("cancel", "Appointment", raw.substr(0, 64));
  Authenticate(ctx);
  RequirePatient(ctx, "cancel an appointment");
  std::string id = std::to_string(ParseId(raw, "Appointment"));
  rec.resource_id = id;
  rec.patient_id = ctx.claims->patient_id;
  RequireWritable(ctx);
  // Idempotent by nature: a second cancel finds it cancelled and answers the same.
  auto r = co_await ctx.Write(kCancel, db::P(id, ctx.claims->patient_id), /*idempotent=*/true);
  std::string outcome(r.get(0, 0));
  if (outcome == "not-found") {
    rec.outcome = "failure";
    throw NotFound("Appointment/" + id + " is not one of your appointments.");
  }
  auto a = co_await Load(ctx, id);
  if (a.rows() == 0) throw Unavailable("The appointment could not be read back; please retry.");
  rec.outcome = "success";
  co_return fhir::Json(200, AppointmentJson(a, 0));
}

asio::awaitable<http::Response> RescheduleAppointment(RequestContext& ctx) {
  const std::string& raw = ctx.req.path_params[0];
  auto& rec = ctx.Audit("reschedule", "Appointment", raw.substr(0, 64));
  Authenticate(ctx);
  RequirePatient(ctx, "reschedule an appointment");
  std::string id = std::to_string(ParseId(raw, "Appointment"));
  rec.patient_id = ctx.claims->patient_id;
  std::string slot, key;
  try {
    slot = ParseRescheduleBody(ctx.req);
    key = IdempotencyKey(ctx);
  } catch (const Error&) {
    ctx.AuditOutcome("failure", "invalid request");
    throw;
  }
  RequireWritable(ctx);
  db::Param keyp = key.empty() ? db::Param(std::nullopt) : db::Param(key);
  db::Result r;
  bool raced = false;
  try {
    r = co_await ctx.Write(kReschedule, db::P(id, ctx.claims->patient_id, slot, keyp),
                           /*idempotent=*/!key.empty());
  } catch (const db::UniqueViolation&) {
    raced = true;
  }
  if (raced)
    r = co_await ctx.Write(kReschedule, db::P(id, ctx.claims->patient_id, slot, keyp), true);
  std::string outcome(r.get(0, 1));
  if (outcome == "not-found") {
    rec.outcome = "failure";
    throw NotFound("Appointment/" + id + " is not one of your appointments.");
  }
  if (outcome == "not-booked") {
    rec.outcome = "failure";
    throw Conflict("Appointment/" + id + " is cancelled; book a new appointment instead.");
  }
  ThrowUnlessBooked(ctx, outcome, slot);
  std::string new_id(r.get(0, 0));
  rec.resource_id = new_id;
  auto a = co_await Load(ctx, new_id);
  if (a.rows() == 0) throw Unavailable("The appointment could not be read back; please retry.");
  rec.outcome = "success";
  auto resp = fhir::Json(outcome == "replayed" ? 200 : 201, AppointmentJson(a, 0));
  resp.set_header("Location", ctx.BaseUrl() + "/Appointment/" + new_id);
  if (outcome == "replayed") resp.set_header("Idempotent-Replayed", "true");
  co_return resp;
}

}  // namespace continuum::portal::high
