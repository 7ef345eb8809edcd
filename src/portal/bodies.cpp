#include "portal/bodies.hpp"

#include <sodium.h>

#include <array>
#include <cctype>
#include <cstring>

#include "core/error.hpp"
#include "fhir/fhir.hpp"

namespace continuum::portal {
namespace json = boost::json;

namespace {

constexpr std::size_t kMaxNoteBytes = 64 * 1024;
constexpr std::size_t kMaxTitle = 200;  // a note's title or description
constexpr std::size_t kMaxText = 200;   // displays, CodeableConcept texts and codes
constexpr std::size_t kMaxAppointmentText = 500;
constexpr std::size_t kMaxMessageBody = 20000;
constexpr std::size_t kMaxSubject = 200;
constexpr std::size_t kMaxPassword = 1024;

std::string Quote(std::string_view where, std::string_view key) {
  return std::string(where) + "." + std::string(key);
}

std::string RequireString(const json::object& o, std::string_view key, std::string_view where) {
  auto* v = o.if_contains(key);
  if (!v || !v->is_string())
    throw BadRequest(Quote(where, key) + " is required and must be a string.");
  return std::string(v->as_string());
}

void RequireObjectKeys(const json::object& o, std::string_view where,
                       std::initializer_list<std::string_view> allowed) {
  for (const auto& kv : o) {
    bool ok = false;
    for (auto a : allowed) ok = ok || a == kv.key();
    if (!ok) throw BadRequest("Unknown field '" + Quote(where, kv.key()) + "'.", "structure");
  }
}

// An optional string member of at most `max` characters (bytes of UTF-8).
void CheckOptionalText(const json::object& o, std::string_view key, std::string_view where,
                       std::size_t max) {
  auto* v = o.if_contains(key);
  if (!v) return;
  if (!v->is_string() || v->as_string().size() > max)
    throw BadRequest(Quote(where, key) + ", when given, must be text of at most " +
                         std::to_string(max) + " characters.",
                     "value");
}

bool AllDigits(std::string_view s, std::size_t from, std::size_t n) {
  if (s.size() < from + n) return false;
  for (std::size_t k = from; k < from + n; ++k)
    if (!std::isdigit(static_cast<unsigned char>(s[k]))) return false;
  return true;
}

// A FHIR dateTime: YYYY, YYYY-MM, YYYY-MM-DD, or a full date and time with a zone
// (what FHIR's instant is too).
void CheckDateTime(const json::value& v, const std::string& field) {
  auto bad = [&] {
    return BadRequest(field + " must be a FHIR dateTime, e.g. 2026-12-01 or 2026-12-01T09:00:00Z.",
                      "value");
  };
  if (!v.is_string()) throw bad();
  std::string_view s = v.as_string();
  if (s.size() > 64) throw bad();
  bool ok = false;
  if (s.size() == 4)
    ok = AllDigits(s, 0, 4);
  else if (s.size() == 7)
    ok = AllDigits(s, 0, 4) && s[4] == '-' && AllDigits(s, 5, 2);
  else if (s.size() == 10)
    ok = AllDigits(s, 0, 4) && s[4] == '-' && AllDigits(s, 5, 2) && s[7] == '-' &&
         AllDigits(s, 8, 2);
  else
    ok = ops::ParseRfc3339(s).has_value();
  if (!ok) throw bad();
}

// A Reference: {"reference": "...", "display"?: "..."}. Returns the reference.
std::string CheckReference(const json::value& v, const std::string& where) {
  if (!v.is_object()) throw BadRequest(where + " must be a reference.", "required");
  const auto& o = v.as_object();
  RequireObjectKeys(o, where, {"reference", "display"});
  CheckOptionalText(o, "display", where, kMaxText);
  auto* ref = o.if_contains("reference");
  if (!ref || !ref->is_string() || ref->as_string().empty() || ref->as_string().size() > kMaxText)
    throw BadRequest(where + ".reference must be a reference such as \"Patient/123\".", "value");
  return std::string(ref->as_string());
}

// "Type/id" -> id for one of the expected types; BadRequest otherwise.
std::string RefId(const json::value* v, std::string_view type, const char* where) {
  std::string prefix = std::string(type) + "/";
  if (!v || !v->is_object())
    throw BadRequest(std::string(where) + " must be a reference.", "required");
  auto* ref = v->as_object().if_contains("reference");
  if (!ref || !ref->is_string() || !ref->as_string().starts_with(prefix))
    throw BadRequest(std::string(where) + ".reference must be \"" + prefix + "{id}\".", "value");
  CheckReference(*v, where);
  return std::to_string(ParseId(std::string(ref->as_string()).substr(prefix.size()), type));
}

// A CodeableConcept: {"coding"?: [{"system"?, "code"?, "display"?}], "text"?}.
void CheckCodeableConcept(const json::value& v, const std::string& where) {
  if (!v.is_object())
    throw BadRequest(where + " must be a CodeableConcept: {\"coding\": [...], \"text\": ...}.",
                     "value");
  const auto& o = v.as_object();
  RequireObjectKeys(o, where, {"coding", "text"});
  CheckOptionalText(o, "text", where, kMaxText);
  if (auto* c = o.if_contains("coding")) {
    if (!c->is_array() || c->as_array().size() > 10)
      throw BadRequest(where + ".coding must be an array of at most 10 codings.", "value");
    std::size_t i = 0;
    for (const auto& e : c->as_array()) {
      std::string at = where + ".coding[" + std::to_string(i++) + "]";
      if (!e.is_object()) throw BadRequest(at + " must be an object.", "value");
      RequireObjectKeys(e.as_object(), at, {"system", "code", "display"});
      for (auto k : {"system", "code", "display"})
        CheckOptionalText(e.as_object(), k, at, kMaxText);
    }
  }
}

std::optional<std::string> Unbase64(std::string_view s) {
  std::string out(s.size(), '\0');
  std::size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), s.data(),
                        s.size(), " \r\n", &len, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0)
    return std::nullopt;
  out.resize(len);
  return out;
}

bool ValidUtf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80             ? 0
            : (c & 0xE0) == 0xC0 ? 1
            : (c & 0xF0) == 0xE0 ? 2
            : (c & 0xF8) == 0xF0 ? 3
                                 : -1;
    if (n < 0 || i + n >= s.size() + (n == 0 ? 1 : 0)) return false;
    for (int k = 1; k <= n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n + 1;
  }
  return true;
}

// Appointment.slot: exactly one Slot reference -> its id.
std::string SlotRef(const json::object& o) {
  auto* slots = o.if_contains("slot");
  if (!slots || !slots->is_array() || slots->as_array().size() != 1 ||
      !slots->as_array()[0].is_object())
    throw BadRequest(
        "Appointment.slot must hold exactly one reference, e.g. [{\"reference\": "
        "\"Slot/123\"}].",
        "required");
  auto* ref = slots->as_array()[0].as_object().if_contains("reference");
  if (!ref || !ref->is_string() || !ref->as_string().starts_with("Slot/"))
    throw BadRequest("Appointment.slot[0].reference must be \"Slot/{id}\".", "value");
  CheckReference(slots->as_array()[0], "Appointment.slot[0]");
  std::string id = std::string(ref->as_string()).substr(5);
  return std::to_string(ParseId(id, "Slot"));
}

void RequireJsonContentType(const http::Request& req) {
  std::string_view ct = req.header("content-type");
  std::string_view media = ct.substr(0, ct.find(';'));
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  if (media != "application/json")
    throw Error(415, "not-supported",
                "The request body must be JSON: send Content-Type: application/json.");
}

}  // namespace

int64_t ParseId(std::string_view id, std::string_view what) {
  bool fhir_ok = !id.empty() && id.size() <= 64;
  for (char ch : id)
    fhir_ok = fhir_ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.');
  if (!fhir_ok)
    throw BadRequest(std::string(what) + " id '" + std::string(id.substr(0, 64)) +
                     "' is not a valid FHIR id (1-64 letters, digits, '-' or '.').");
  bool digits = id.size() <= 18;
  for (char ch : id) digits = digits && std::isdigit(static_cast<unsigned char>(ch));
  if (!digits) throw NotFound(std::string(what) + "/" + std::string(id) + " does not exist.");
  return std::stoll(std::string(id));
}

std::string RefOrId(const json::object& o, const char* key, std::string_view type) {
  auto* v = o.if_contains(key);
  std::string s;
  if (v && v->is_string())
    s = std::string(v->as_string());
  else if (v && v->is_int64())
    s = std::to_string(v->as_int64());
  else
    throw BadRequest(std::string(key) + " is required: \"" + std::string(type) + "/{id}\".",
                     "required");
  std::string prefix = std::string(type) + "/";
  if (s.starts_with(prefix)) s = s.substr(prefix.size());
  return std::to_string(ParseId(s, type));
}

void RequireNoBody(const http::Request& req) {
  if (req.body.empty()) return;
  try {
    (void)fhir::ParseBody(req, {});  // refuses any field: only {} passes
  } catch (const Error& e) {
    if (e.http_status() == 415) throw;
    throw BadRequest(
        "This operation takes no request body: send none, or the empty JSON object {}.",
        "structure");
  }
}

LoginBody ParseLoginBody(const http::Request& req) {
  json::object body = fhir::ParseBody(req, {"username", "password", "totp"}, false);
  auto str = [&](std::string_view k, bool required) -> std::string {
    auto* v = body.if_contains(k);
    if (!v) {
      if (!required) return {};
      throw BadRequest("The login request needs '" + std::string(k) + "' (a string).", "required");
    }
    if (!v->is_string()) throw BadRequest("'" + std::string(k) + "' must be a string.");
    return std::string(v->as_string());
  };
  LoginBody b;
  b.username = str("username", true);
  b.password = str("password", true);
  b.totp = str("totp", false);
  if (b.username.empty() || b.username.size() > 128 || b.password.size() > kMaxPassword)
    throw BadRequest("username must be 1-128 characters and password at most 1024.");
  if (b.totp.size() > 16)
    throw BadRequest("'totp' must be the one-time code (6 digits) your app shows.");
  return b;
}

std::string ParseTotpEnrolBody(const http::Request& req) {
  json::object body = fhir::ParseBody(req, {"password"}, false);
  auto* pw = body.if_contains("password");
  if (!pw || !pw->is_string())
    throw BadRequest("Enrolling a second factor needs your 'password' (a string).", "required");
  if (pw->as_string().size() > kMaxPassword)
    throw BadRequest("'password' must be at most 1024 characters.");
  return std::string(pw->as_string());
}

std::string ParseTotpConfirmBody(const http::Request& req) {
  json::object body = fhir::ParseBody(req, {"code"}, false);
  auto* code = body.if_contains("code");
  if (!code || !code->is_string())
    throw BadRequest("Confirming needs the 'code' (6 digits, a string) your app shows.",
                     "required");
  std::string_view c = code->as_string();
  if (c.size() != 6 || !AllDigits(c, 0, 6))
    throw BadRequest("'code' must be the 6 digits your app shows.", "value");
  return std::string(c);
}

NoteBody ParseNoteBody(const http::Request& req, const auth::Claims& caller) {
  auto o = fhir::ParseBody(req, {"resourceType", "status", "docStatus", "type", "subject",
                                 "description", "content", "author", "date"});
  if (RequireString(o, "resourceType", "DocumentReference") != "DocumentReference")
    throw BadRequest("resourceType must be DocumentReference.");
  if (o.contains("status") && RequireString(o, "status", "DocumentReference") != "current")
    throw BadRequest("A new note's status must be 'current'.", "value");
  if (o.contains("docStatus") &&
      RequireString(o, "docStatus", "DocumentReference") != "preliminary")
    throw BadRequest(
        "A new note's docStatus must be 'preliminary'; sign it with $sign to make it final.",
        "business-rule");
  if (auto* t = o.if_contains("type")) CheckCodeableConcept(*t, "DocumentReference.type");
  if (auto* d = o.if_contains("date")) CheckDateTime(*d, "DocumentReference.date");
  if (auto* d = o.if_contains("description");
      d && (!d->is_string() || d->as_string().empty() || d->as_string().size() > kMaxTitle))
    throw BadRequest("DocumentReference.description must be 1 to 200 characters of text.", "value");
  auto* subj = o.if_contains("subject");
  if (!subj || !subj->is_object())
    throw BadRequest("DocumentReference.subject is required: {\"reference\": \"Patient/<id>\"}.",
                     "required");
  RequireObjectKeys(subj->as_object(), "subject", {"reference", "display"});
  CheckOptionalText(subj->as_object(), "display", "subject", kMaxText);
  std::string ref = RequireString(subj->as_object(), "reference", "subject");
  if (!ref.starts_with("Patient/")) throw BadRequest("subject.reference must be 'Patient/<id>'.");
  NoteBody n;
  n.patient_id = std::to_string(ParseId(std::string_view(ref).substr(8), "Patient"));
  if (o.contains("author")) {
    auto* a = o.if_contains("author");
    std::string self = "Practitioner/" + caller.practitioner_id;
    if (!a->is_array() || a->as_array().size() != 1 || !a->as_array()[0].is_object() ||
        !a->as_array()[0].as_object().contains("reference") ||
        a->as_array()[0].as_object().at("reference") != json::value(self))
      throw BadRequest("author, when given, must be [{\"reference\": \"" + self +
                           "\"}] (the logged-in provider).",
                       "business-rule");
    CheckReference(a->as_array()[0], "author[0]");
  }
  auto* content = o.if_contains("content");
  if (!content || !content->is_array() || content->as_array().size() != 1 ||
      !content->as_array()[0].is_object())
    throw BadRequest("DocumentReference.content must hold exactly one attachment.", "required");
  const auto& c0 = content->as_array()[0].as_object();
  RequireObjectKeys(c0, "content[0]", {"attachment"});
  auto* att = c0.if_contains("attachment");
  if (!att || !att->is_object()) throw BadRequest("content[0].attachment is required.", "required");
  const auto& a = att->as_object();
  RequireObjectKeys(a, "content[0].attachment",
                    {"contentType", "data", "title", "language", "creation"});
  std::string ct = RequireString(a, "contentType", "content[0].attachment");
  if (ct != "text/plain" && ct != "text/plain; charset=utf-8")
    throw BadRequest("content[0].attachment.contentType must be text/plain.", "not-supported");
  CheckOptionalText(a, "language", "content[0].attachment", 35);
  if (auto* cr = a.if_contains("creation")) CheckDateTime(*cr, "content[0].attachment.creation");
  auto text = Unbase64(RequireString(a, "data", "content[0].attachment"));
  if (!text) throw BadRequest("content[0].attachment.data must be base64.", "value");
  if (text->empty()) throw BadRequest("The note is empty.", "value");
  if (text->size() > kMaxNoteBytes) throw BadRequest("The note exceeds 65536 bytes.", "too-long");
  if (!ValidUtf8(*text) || text->find('\0') != std::string::npos)
    throw BadRequest("The note must be UTF-8 text.", "value");
  n.content = std::move(*text);
  if (auto* t = a.if_contains("title")) {
    if (!t->is_string()) throw BadRequest("content[0].attachment.title must be text.", "value");
    n.title = std::string(t->as_string());
  } else if (auto* d = o.if_contains("description")) {
    n.title = std::string(d->as_string());
  } else {
    n.title = "Progress note";
  }
  if (n.title.empty() || n.title.size() > kMaxTitle || !ValidUtf8(n.title))
    throw BadRequest("The note's title must be 1 to 200 characters of UTF-8 text.", "value");
  return n;
}

AppointmentBody ParseAppointmentBody(const http::Request& req) {
  auto o = fhir::ParseBody(req, {"resourceType", "status", "slot", "description", "participant",
                                 "start", "end", "comment"});
  auto* rt = o.if_contains("resourceType");
  if (!rt || *rt != json::value("Appointment"))
    throw BadRequest("resourceType must be \"Appointment\".", "value");
  if (auto* st = o.if_contains("status");
      st && *st != json::value("booked") && *st != json::value("proposed"))
    throw BadRequest("A new appointment's status must be booked (or omitted).", "value");
  AppointmentBody b;
  b.slot = SlotRef(o);
  if (auto* d = o.if_contains("description")) {
    if (!d->is_string() || d->as_string().size() > kMaxAppointmentText)
      throw BadRequest("Appointment.description must be text of at most 500 characters.", "value");
    b.description = std::string(d->as_string());
  }
  // What the server takes from the slot and the caller; checked, not stored.
  CheckOptionalText(o, "comment", "Appointment", kMaxAppointmentText);
  for (auto k : {"start", "end"})
    if (auto* v = o.if_contains(k)) CheckDateTime(*v, Quote("Appointment", k));
  if (auto* p = o.if_contains("participant")) {
    if (!p->is_array() || p->as_array().size() > 10)
      throw BadRequest("Appointment.participant must be an array of at most 10 participants.",
                       "value");
    std::size_t i = 0;
    for (const auto& e : p->as_array()) {
      std::string at = "Appointment.participant[" + std::to_string(i++) + "]";
      if (!e.is_object()) throw BadRequest(at + " must be an object.", "value");
      RequireObjectKeys(e.as_object(), at, {"actor", "status", "required"});
      if (auto* actor = e.as_object().if_contains("actor")) CheckReference(*actor, at + ".actor");
      CheckOptionalText(e.as_object(), "status", at, 32);
      CheckOptionalText(e.as_object(), "required", at, 32);
    }
  }
  return b;
}

std::string ParseRescheduleBody(const http::Request& req) {
  auto o = fhir::ParseBody(req, {"slot"});
  return SlotRef(o);
}

MessageBody ParseMessageBody(const http::Request& req, const auth::Claims& c) {
  auto o = fhir::ParseBody(req, {"resourceType", "status", "subject", "recipient", "sender",
                                 "payload", "topic", "inResponseTo", "sent"});
  auto* rt = o.if_contains("resourceType");
  if (!rt || *rt != json::value("Communication"))
    throw BadRequest("resourceType must be \"Communication\".", "value");
  if (auto* st = o.if_contains("status"); st && *st != json::value("completed"))
    throw BadRequest("A sent message's status is completed (or omitted).", "value");
  MessageBody m;
  auto* rec = o.if_contains("recipient");
  if (!rec || !rec->is_array() || rec->as_array().size() != 1)
    throw BadRequest("Communication.recipient must hold exactly one reference.", "required");
  bool patient = c.role == "patient";
  if (patient) {
    m.patient_id = c.patient_id;
    m.practitioner_id = RefId(&rec->as_array()[0], "Practitioner", "recipient[0]");
  } else {
    m.practitioner_id = c.practitioner_id;
    m.patient_id = RefId(&rec->as_array()[0], "Patient", "recipient[0]");
  }
  // The conversation's patient, and the sender: the caller.
  if (auto* s = o.if_contains("subject"); s && RefId(s, "Patient", "subject") != m.patient_id) {
    std::string who = patient ? "yourself" : "the recipient";
    throw BadRequest("subject, when given, must be " + who + " (Patient/" + m.patient_id + ").",
                     "business-rule");
  }
  if (auto* s = o.if_contains("sender")) {
    std::string_view type = patient ? "Patient" : "Practitioner";
    const std::string& me = patient ? c.patient_id : c.practitioner_id;
    if (RefId(s, type, "sender") != me)
      throw BadRequest(
          "sender, when given, must be yourself (" + std::string(type) + "/" + me + ").",
          "business-rule");
  }
  if (auto* s = o.if_contains("sent")) CheckDateTime(*s, "Communication.sent");
  auto* payload = o.if_contains("payload");
  if (!payload || !payload->is_array() || payload->as_array().size() != 1 ||
      !payload->as_array()[0].is_object())
    throw BadRequest("Communication.payload must hold exactly one {\"contentString\": ...}.",
                     "required");
  RequireObjectKeys(payload->as_array()[0].as_object(), "payload[0]", {"contentString"});
  auto* text = payload->as_array()[0].as_object().if_contains("contentString");
  if (!text || !text->is_string() || text->as_string().empty() ||
      text->as_string().size() > kMaxMessageBody)
    throw BadRequest("payload[0].contentString must be 1 to 20000 characters of text.", "value");
  m.body = std::string(text->as_string());
  if (auto* t = o.if_contains("topic")) {
    auto* tt = t->is_object() ? t->as_object().if_contains("text") : nullptr;
    if (!tt || !tt->is_string() || tt->as_string().empty() || tt->as_string().size() > kMaxSubject)
      throw BadRequest("topic.text (the subject) must be 1 to 200 characters.", "value");
    CheckCodeableConcept(*t, "topic");
    m.subject = std::string(tt->as_string());
  }
  if (auto* irt = o.if_contains("inResponseTo")) {
    if (!irt->is_array() || irt->as_array().size() != 1)
      throw BadRequest("inResponseTo must hold exactly one reference.", "value");
    m.in_response_to = RefId(&irt->as_array()[0], "Communication", "inResponseTo[0]");
  } else if (!m.subject) {
    throw BadRequest("A new conversation needs a subject: topic.text.", "required");
  }
  return m;
}

PaymentBody ParsePaymentBody(const http::Request& req) {
  auto o = fhir::ParseBody(req, {"invoice", "amount_cents"}, false);
  PaymentBody b;
  b.invoice = RefOrId(o, "invoice", "Invoice");
  auto* a = o.if_contains("amount_cents");
  if (!a || !a->is_int64() || a->as_int64() <= 0 || a->as_int64() > 100'000'000)
    throw BadRequest("amount_cents must be a positive whole number of cents.", "value");
  b.amount_cents = a->as_int64();
  return b;
}

EligibilityBody ParseEligibilityBody(const http::Request& req) {
  auto o = fhir::ParseBody(req, {"coverage", "service"}, false);
  EligibilityBody b;
  b.coverage = RefOrId(o, "coverage", "Coverage");
  auto* s = o.if_contains("service");
  if (s && !s->is_string())
    throw BadRequest("service must be 1 to 64 characters (e.g. office-visit).", "value");
  b.service = s ? std::string(s->as_string()) : "office-visit";
  if (b.service.empty() || b.service.size() > 64)
    throw BadRequest("service must be 1 to 64 characters (e.g. office-visit).", "value");
  return b;
}

std::string ParseRefillBody(const http::Request& req) {
  auto o = fhir::ParseBody(req, {"medication"}, false);
  return RefOrId(o, "medication", "MedicationStatement");
}

ops::AlertBatch ParseAlertsBody(const http::Request& req) {
  RequireJsonContentType(req);
  return ops::ParseAlertmanagerWebhook(req.body);
}

ops::JourneyRun ParseJourneyRunBody(const http::Request& req) {
  RequireJsonContentType(req);
  return ops::ParseJourneyRun(req.body);
}

ops::OpsReport ParseOpsReportBody(const http::Request& req) {
  RequireJsonContentType(req);
  return ops::ParseOpsReport(req.body);
}

ops::PoolHoldRequest ParsePoolHoldBody(const http::Request& req) {
  RequireJsonContentType(req);
  return ops::ParsePoolHold(req.body);
}

const char* BodyKindName(BodyKind k) { return k == BodyKind::kNone ? "none" : "json"; }

namespace {

using Caller = const auth::Claims&;
using Req = const http::Request&;

constexpr std::array kRouteBodies{
    RouteBody{"ops.alerts.receive", BodyKind::kJson, [](Req r, Caller) { ParseAlertsBody(r); }},
    RouteBody{"ops.journey_runs.receive", BodyKind::kJson,
              [](Req r, Caller) { ParseJourneyRunBody(r); }},
    RouteBody{"ops.reports.receive", BodyKind::kJson, [](Req r, Caller) { ParseOpsReportBody(r); }},
    RouteBody{"ops.chaos.pool_hold", BodyKind::kJson, [](Req r, Caller) { ParsePoolHoldBody(r); }},
    RouteBody{"ops.chaos.pool_release", BodyKind::kNone, [](Req r, Caller) { RequireNoBody(r); }},
    RouteBody{"session.create", BodyKind::kJson, [](Req r, Caller) { ParseLoginBody(r); }},
    RouteBody{"session.delete", BodyKind::kNone, [](Req r, Caller) { RequireNoBody(r); }},
    RouteBody{"session.totp.enrol", BodyKind::kJson, [](Req r, Caller) { ParseTotpEnrolBody(r); }},
    RouteBody{"session.totp.confirm", BodyKind::kJson,
              [](Req r, Caller) { ParseTotpConfirmBody(r); }},
    RouteBody{"note.create", BodyKind::kJson, [](Req r, Caller c) { ParseNoteBody(r, c); }},
    RouteBody{"note.sign", BodyKind::kNone, [](Req r, Caller) { RequireNoBody(r); }},
    RouteBody{"appointment.create", BodyKind::kJson,
              [](Req r, Caller) { ParseAppointmentBody(r); }},
    RouteBody{"appointment.cancel", BodyKind::kNone, [](Req r, Caller) { RequireNoBody(r); }},
    RouteBody{"appointment.reschedule", BodyKind::kJson,
              [](Req r, Caller) { ParseRescheduleBody(r); }},
    RouteBody{"message.send", BodyKind::kJson, [](Req r, Caller c) { ParseMessageBody(r, c); }},
    RouteBody{"message.read", BodyKind::kNone, [](Req r, Caller) { RequireNoBody(r); }},
    RouteBody{"payment.create", BodyKind::kJson, [](Req r, Caller) { ParsePaymentBody(r); }},
    RouteBody{"insurance.verify", BodyKind::kJson, [](Req r, Caller) { ParseEligibilityBody(r); }},
    RouteBody{"pharmacy.refill", BodyKind::kJson, [](Req r, Caller) { ParseRefillBody(r); }},
};

}  // namespace

std::span<const RouteBody> RouteBodies() { return kRouteBodies; }

const RouteBody* FindRouteBody(std::string_view route) {
  for (const auto& b : kRouteBodies)
    if (b.route == route) return &b;
  return nullptr;
}

}  // namespace continuum::portal
