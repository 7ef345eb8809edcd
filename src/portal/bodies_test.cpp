#include "portal/bodies.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "core/error.hpp"
#include "portal/routes.hpp"

namespace continuum::portal {
namespace {

namespace json = boost::json;

http::Request Body(std::string body, std::string content_type = "application/json") {
  http::Request r;
  r.method = "POST";
  if (!content_type.empty()) r.headers.emplace_back("content-type", std::move(content_type));
  r.body = std::move(body);
  return r;
}
http::Request Json(const json::value& v) { return Body(json::serialize(v)); }

auth::Claims Patient() {
  auth::Claims c;
  c.role = "patient";
  c.patient_id = "7";
  return c;
}
auth::Claims Provider() {
  auth::Claims c;
  c.role = "provider";
  c.practitioner_id = "3";
  return c;
}

// The status of the continuum::Error `f` throws, 0 when it returns.
template <typename F>
int Status(F f) {
  try {
    f();
    return 0;
  } catch (const Error& e) {
    return e.http_status();
  }
}

json::object Note() {
  return json::parse(R"({
    "resourceType": "DocumentReference", "status": "current", "docStatus": "preliminary",
    "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3",
                         "display": "Progress note"}], "text": "Progress note"},
    "subject": {"reference": "Patient/7", "display": "A. Patient"},
    "date": "2026-12-01T09:00:00Z", "description": "Follow-up",
    "author": [{"reference": "Practitioner/3"}],
    "content": [{"attachment": {"contentType": "text/plain", "data": "aGVsbG8=",
                                "title": "Visit", "language": "en",
                                "creation": "2026-12-01"}}]})")
      .as_object();
}

json::object Appointment() {
  return json::parse(R"({
    "resourceType": "Appointment", "status": "booked", "slot": [{"reference": "Slot/12"}],
    "description": "Check-up", "start": "2026-12-01T09:00:00Z", "end": "2026-12-01T09:30:00Z",
    "comment": "first visit",
    "participant": [{"actor": {"reference": "Patient/7"}, "status": "accepted"}]})")
      .as_object();
}

json::object Message(const char* recipient) {
  json::object m = json::parse(R"({
    "resourceType": "Communication", "status": "completed",
    "payload": [{"contentString": "Hello"}], "topic": {"text": "Question"},
    "sent": "2026-12-01T09:00:00Z"})")
                       .as_object();
  m["recipient"] = json::array{json::object{{"reference", recipient}}};
  return m;
}

TEST(RouteBodies, EveryRouteButTheGetsHasOne) {
  std::set<std::string> names;
  for (const auto& e : ListRoutes()) {
    names.insert(e.name);
    if (e.method == "GET") {
      EXPECT_EQ(e.body, nullptr) << e.name;
      continue;
    }
    ASSERT_NE(e.body, nullptr) << e.method << " " << e.pattern << " (" << e.name
                               << ") has no entry in RouteBodies() (portal/bodies.cpp)";
    EXPECT_EQ(e.body->route, e.name);
  }
  std::set<std::string_view> seen;
  for (const auto& b : RouteBodies()) {
    EXPECT_TRUE(names.contains(std::string(b.route))) << b.route << " is not a route";
    EXPECT_TRUE(seen.insert(b.route).second) << b.route << " twice";
  }
}

TEST(RouteBodies, RoutesJsonNamesTheBodyKind) {
  auto routes = json::parse(RoutesJson()).as_array();
  int json_bodies = 0;
  for (const auto& r : routes) {
    const auto& o = r.as_object();
    if (o.at("method") == json::value("GET"))
      EXPECT_TRUE(o.at("body").is_null());
    else
      json_bodies += o.at("body") == json::value("json");
  }
  EXPECT_GE(json_bodies, 12);
}

TEST(RequireNoBody, TakesNothingOrAnEmptyObject) {
  EXPECT_EQ(Status([] { RequireNoBody(Body("", "")); }), 0);
  EXPECT_EQ(Status([] { RequireNoBody(Body("", "text/plain")); }), 0);
  EXPECT_EQ(Status([] { RequireNoBody(Body("{}")); }), 0);
  EXPECT_EQ(Status([] { RequireNoBody(Body(" { } ", "application/fhir+json")); }), 0);
  for (const char* bad : {R"({"reason": "x"})", "[]", "null", "{", "x", " ", "{}{}"})
    EXPECT_EQ(Status([&] { RequireNoBody(Body(bad)); }), 400) << bad;
  EXPECT_EQ(Status([] { RequireNoBody(Body("{}", "text/plain")); }), 415);
  EXPECT_EQ(Status([] { RequireNoBody(Body("{}", "")); }), 415);
}

TEST(NoteBody, ParsesAWholeResource) {
  auto n = ParseNoteBody(Json(Note()), Provider());
  EXPECT_EQ(n.patient_id, "7");
  EXPECT_EQ(n.title, "Visit");
  EXPECT_EQ(n.content, "hello");
  auto o = Note();
  o["content"].as_array()[0].as_object()["attachment"].as_object().erase("title");
  EXPECT_EQ(ParseNoteBody(Json(o), Provider()).title, "Follow-up");
}

// Fields the server does not store were dropped whatever they held: a wrong type or an
// oversized value is refused now.
TEST(NoteBody, RefusesWhatItUsedToIgnore) {
  auto with = [](std::initializer_list<std::string_view> path, json::value v) {
    json::value o = Note();
    json::value* cur = &o;
    std::vector<std::string_view> keys(path);
    for (std::size_t i = 0; i + 1 < keys.size(); ++i)
      cur = cur->is_array() ? &cur->as_array().at(std::stoul(std::string(keys[i])))
                            : &cur->as_object().at(keys[i]);
    cur->as_object()[keys.back()] = std::move(v);
    return Status([&] { ParseNoteBody(Json(o), Provider()); });
  };
  EXPECT_EQ(with({"description"}, 5), 400);
  EXPECT_EQ(with({"description"}, json::string(201, 'x')), 400);
  EXPECT_EQ(with({"content", "0", "attachment", "title"}, 5), 400);
  EXPECT_EQ(with({"type"}, "note"), 400);
  EXPECT_EQ(with({"type", "text"}, 5), 400);
  EXPECT_EQ(with({"type", "colour"}, "red"), 400);
  EXPECT_EQ(with({"date"}, "yesterday"), 400);
  EXPECT_EQ(with({"date"}, nullptr), 400);
  EXPECT_EQ(with({"subject", "display"}, json::array{}), 400);
  EXPECT_EQ(with({"content", "0", "attachment", "language"}, json::string(100, 'e')), 400);
  EXPECT_EQ(with({"content", "0", "attachment", "creation"}, 20261201), 400);
  EXPECT_EQ(with({"author", "0", "display"}, false), 400);
  EXPECT_EQ(with({"description"}, "Fine"), 0);
}

TEST(AppointmentBody, ChecksTheFieldsItDerives) {
  auto b = ParseAppointmentBody(Json(Appointment()));
  EXPECT_EQ(b.slot, "12");
  EXPECT_EQ(b.description, "Check-up");
  auto status = [](const char* key, json::value v) {
    auto o = Appointment();
    o[key] = std::move(v);
    return Status([&] { ParseAppointmentBody(Json(o)); });
  };
  EXPECT_EQ(status("comment", json::string(501, 'c')), 400);
  EXPECT_EQ(status("comment", 1), 400);
  EXPECT_EQ(status("start", "soon"), 400);
  EXPECT_EQ(status("end", json::object{}), 400);
  EXPECT_EQ(status("participant", json::object{}), 400);
  EXPECT_EQ(status("participant", json::array{1}), 400);
  EXPECT_EQ(status("participant", json::array{json::object{{"actor", "Patient/7"}}}), 400);
  EXPECT_EQ(status("slot", json::array{json::object{{"reference", "Slot/1"}, {"x", 1}}}), 400);
  EXPECT_EQ(status("slot", json::object{{"reference", "Slot/1"}}), 400);
}

TEST(MessageBody, TheSubjectAndSenderMustBeTheConversations) {
  auto m = ParseMessageBody(Json(Message("Practitioner/3")), Patient());
  EXPECT_EQ(m.patient_id, "7");
  EXPECT_EQ(m.practitioner_id, "3");
  EXPECT_EQ(m.subject, "Question");
  auto o = Message("Patient/7");
  o["subject"] = json::object{{"reference", "Patient/7"}};
  o["sender"] = json::object{{"reference", "Practitioner/3"}};
  EXPECT_EQ(ParseMessageBody(Json(o), Provider()).patient_id, "7");
  // A provider's subject was not looked at: another patient is refused now.
  o["subject"] = json::object{{"reference", "Patient/8"}};
  EXPECT_EQ(Status([&] { ParseMessageBody(Json(o), Provider()); }), 400);
  o.erase("subject");
  o["sender"] = json::object{{"reference", "Practitioner/4"}};
  EXPECT_EQ(Status([&] { ParseMessageBody(Json(o), Provider()); }), 400);
  o["sender"] = "Practitioner/3";
  EXPECT_EQ(Status([&] { ParseMessageBody(Json(o), Provider()); }), 400);
  o.erase("sender");
  o["sent"] = 1;
  EXPECT_EQ(Status([&] { ParseMessageBody(Json(o), Provider()); }), 400);
  o.erase("sent");
  o["payload"] = json::array{json::object{{"contentString", "hi"}, {"contentUrl", "x"}}};
  EXPECT_EQ(Status([&] { ParseMessageBody(Json(o), Provider()); }), 400);
}

TEST(EligibilityBody, AServiceThatIsNotTextIsRefused) {
  EXPECT_EQ(ParseEligibilityBody(Body(R"({"coverage": "Coverage/4"})")).service, "office-visit");
  EXPECT_EQ(ParseEligibilityBody(Body(R"({"coverage": 4, "service": "x-ray"})")).service, "x-ray");
  // A non-string service used to become "office-visit" silently.
  for (const char* s : {"1", "null", "true", "{}", "[\"x-ray\"]"})
    EXPECT_EQ(Status([&] {
                ParseEligibilityBody(Body(std::string(R"({"coverage": 4, "service": )") + s + "}"));
              }),
              400)
        << s;
}

TEST(SessionBodies, SizesAreBounded) {
  EXPECT_EQ(Status([] { ParseLoginBody(Body(R"({"username": "a", "password": "b"})")); }), 0);
  EXPECT_EQ(Status([] {
              ParseLoginBody(Json(json::object{
                  {"username", "a"}, {"password", "b"}, {"totp", std::string(17, '1')}}));
            }),
            400);
  EXPECT_EQ(Status([] {
              ParseTotpEnrolBody(Json(json::object{{"password", std::string(1025, 'p')}}));
            }),
            400);
  EXPECT_EQ(ParseTotpConfirmBody(Body(R"({"code": "012345"})")), "012345");
  for (const char* code : {"12345", "1234567", "12345a", "１２３４５６"})
    EXPECT_EQ(Status([&] {
                ParseTotpConfirmBody(Json(json::object{{"code", code}}));
              }),
              400)
        << code;
}

TEST(PaymentBody, AmountsOutOfRange) {
  EXPECT_EQ(ParsePaymentBody(Body(R"({"invoice": "Invoice/9", "amount_cents": 100})")).invoice,
            "9");
  for (const char* a : {"0", "-1", "100000001", "9223372036854775808", "1e400", "1.5", "\"5\""})
    EXPECT_EQ(Status([&] {
                ParsePaymentBody(
                    Body(std::string(R"({"invoice": "Invoice/9", "amount_cents": )") + a + "}"));
              }),
              400)
        << a;
}

}  // namespace
}  // namespace continuum::portal
