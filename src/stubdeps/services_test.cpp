// The JSON stand-ins' handlers, driven without sockets.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "stubdeps/api.hpp"
#include "stubdeps/insurance.hpp"
#include "stubdeps/payments.hpp"
#include "stubdeps/pharmacy.hpp"
#include "stubdeps/sms.hpp"

namespace continuum::stubdeps {
namespace {
namespace json = boost::json;

http::Request Post(std::string path, std::string body, std::string key = "") {
  http::Request r;
  r.method = "POST";
  r.path = r.target = std::move(path);
  r.body = std::move(body);
  r.headers.emplace_back("content-type", "application/json");
  if (!key.empty()) r.headers.emplace_back("idempotency-key", std::move(key));
  return r;
}

json::object Body(const http::Response& r) { return json::parse(r.body).as_object(); }

std::string HeaderOf(const http::Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "";
}

// The calls a stand-in acted on (its log lists replays too, marked "replay": true).
std::size_t Executed(const ReceivedLog& log) {
  std::size_t n = 0;
  for (const auto& e : log.entries())
    if (!e.at("replay").as_bool()) ++n;
  return n;
}

TEST(Payments, ChargesOncePerIdempotencyKey) {
  ReceivedLog log;
  IdempotencyStore keys;
  PaymentsApi api(log, keys);
  const std::string body = R"({"amount_cents":1999,"currency":"USD","reference":"inv-7"})";
  auto first = api.Handle(Post("/v1/charges", body, "key-1"));
  ASSERT_EQ(first.status, 201) << first.body;
  EXPECT_EQ(Body(first)["status"].as_string(), "succeeded");
  EXPECT_EQ(Body(first)["amount_cents"].as_int64(), 1999);
  EXPECT_TRUE(Body(first)["charge_id"].as_string().starts_with("ch_"));

  // The same key and body (in another key order): the identical answer, charged once.
  auto again = api.Handle(Post(
      "/v1/charges", R"({"reference":"inv-7","currency":"USD","amount_cents":1999})", "key-1"));
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body, first.body);
  EXPECT_EQ(HeaderOf(again, "Idempotent-Replayed"), "true");
  EXPECT_EQ(log.size(), 2u);  // every call is logged, the replay too
  EXPECT_EQ(Executed(log), 1u);
  EXPECT_TRUE(log.entries()[1].at("replay").as_bool());

  // The same key with a different body: 409, still one charge.
  auto other = api.Handle(Post(
      "/v1/charges", R"({"amount_cents":2000,"currency":"USD","reference":"inv-7"})", "key-1"));
  EXPECT_EQ(other.status, 409);
  EXPECT_EQ(Body(other)["code"].as_string(), "idempotency_key_reused");
  EXPECT_EQ(log.size(), 3u);
  EXPECT_EQ(Executed(log), 1u);
  EXPECT_EQ(log.entries()[2].at("http_status").as_int64(), 409);

  // A new key is a new charge.
  EXPECT_EQ(api.Handle(Post("/v1/charges", body, "key-2")).status, 201);
  EXPECT_EQ(log.size(), 4u);
  EXPECT_EQ(Executed(log), 2u);
  EXPECT_EQ(log.entries()[0].at("idempotency_key").as_string(), "key-1");
}

TEST(Payments, DeclinesTheMagicAmountAndRemembersTheDecline) {
  ReceivedLog log;
  IdempotencyStore keys;
  PaymentsApi api(log, keys);
  const std::string body = R"({"amount_cents":402,"currency":"USD","reference":"inv-8"})";
  auto r = api.Handle(Post("/v1/charges", body, "d-1"));
  EXPECT_EQ(r.status, 402);
  EXPECT_EQ(Body(r)["code"].as_string(), "card_declined");
  auto again = api.Handle(Post("/v1/charges", body, "d-1"));
  EXPECT_EQ(again.status, 402);
  EXPECT_EQ(again.body, r.body);
  auto by_ref = api.Handle(Post(
      "/v1/charges", R"({"amount_cents":100,"currency":"USD","reference":"decline-me"})", "d-2"));
  EXPECT_EQ(by_ref.status, 402);
  EXPECT_EQ(log.size(), 3u);
  EXPECT_EQ(Executed(log), 2u);
  EXPECT_EQ(log.entries()[0].at("status").as_string(), "failed");
}

TEST(Payments, ValidatesInput) {
  ReceivedLog log;
  IdempotencyStore keys;
  PaymentsApi api(log, keys);
  const std::string ok = R"({"amount_cents":100,"currency":"USD","reference":"r"})";
  EXPECT_EQ(api.Handle(Post("/v1/charges", ok)).status, 400);  // no Idempotency-Key
  for (const char* bad : {
           R"({"amount_cents":0,"currency":"USD","reference":"r"})",
           R"({"amount_cents":-5,"currency":"USD","reference":"r"})",
           R"({"amount_cents":1.5,"currency":"USD","reference":"r"})",
           R"({"amount_cents":"100","currency":"USD","reference":"r"})",
           R"({"currency":"USD","reference":"r"})",
           R"({"amount_cents":100,"currency":"EUR","reference":"r"})",
           R"({"amount_cents":100,"reference":"r"})",
           R"({"amount_cents":100,"currency":"USD","reference":""})",
           R"({"amount_cents":100,"currency":"USD"})",
           R"({"amount_cents":100,"currency":"USD","reference":"r","card":"4242"})",
           R"([1,2])",
           R"({"amount_cents":)",
       }) {
    auto r = api.Handle(Post("/v1/charges", bad, "v-1"));
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_FALSE(Body(r)["error"].as_string().empty());
  }
  auto r = Post("/v1/charges", ok, "bad key with spaces");
  EXPECT_EQ(api.Handle(r).status, 400);
  r = Post("/v1/charges", ok, "k");
  r.headers[0].second = "text/plain";
  EXPECT_EQ(api.Handle(r).status, 415);
  r = Post("/v1/charges", ok, "k");
  r.method = "GET";
  EXPECT_EQ(api.Handle(r).status, 405);
  EXPECT_EQ(api.Handle(Post("/v1/refunds", ok, "k")).status, 404);
  EXPECT_EQ(log.size(), 0u);
  EXPECT_EQ(keys.size(), 0u);  // invalid requests do not burn keys
}

TEST(Pharmacy, FillStatusIsDeterministicPerId) {
  ReceivedLog log;
  IdempotencyStore keys;
  PharmacyApi api(log, keys);
  http::Request get;
  get.method = "GET";
  get.path = "/v1/prescriptions/rx-1001/fill-status";
  auto a = api.Handle(get);
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(api.Handle(get).body, a.body);
  json::object o = Body(a);
  EXPECT_EQ(o["prescription"].as_string(), "rx-1001");
  EXPECT_EQ(o["status"].as_string(), PharmacyApi::FillStatus("rx-1001"));
  int seen[3] = {0, 0, 0};
  for (int i = 0; i < 60; ++i) {
    auto s = PharmacyApi::FillStatus("rx-" + std::to_string(i));
    seen[s == "filled" ? 0 : s == "ready" ? 1 : 2]++;
  }
  EXPECT_GT(seen[0], 0);
  EXPECT_GT(seen[1], 0);
  EXPECT_GT(seen[2], 0);
  get.path = "/v1/prescriptions/missing-1/fill-status";
  EXPECT_EQ(api.Handle(get).status, 404);
  get.path = "/v1/prescriptions/bad%20id/fill-status";
  EXPECT_EQ(api.Handle(get).status, 400);
}

TEST(Pharmacy, RefillsAreRecordedOncePerKey) {
  ReceivedLog log;
  IdempotencyStore keys;
  PharmacyApi api(log, keys);
  const std::string body = R"({"prescription":"rx-1","patient":"42"})";
  auto a = api.Handle(Post("/v1/refills", body, "rf-key"));
  ASSERT_EQ(a.status, 201) << a.body;
  EXPECT_EQ(Body(a)["status"].as_string(), "requested");
  auto b = api.Handle(Post("/v1/refills", body, "rf-key"));
  EXPECT_EQ(b.status, 200);
  EXPECT_EQ(b.body, a.body);
  EXPECT_EQ(log.size(), 1u);
  EXPECT_EQ(
      api.Handle(Post("/v1/refills", R"({"prescription":"rx-2","patient":"42"})", "rf-key")).status,
      409);
  EXPECT_EQ(api.Handle(Post("/v1/refills", body)).status, 400);  // key required
  EXPECT_EQ(api.Handle(Post("/v1/refills", R"({"prescription":"rx-1"})", "k2")).status, 400);
}

TEST(Insurance, DeterministicByMemberAndValidated) {
  ReceivedLog log;
  InsuranceApi api(log);
  auto check = [&](const std::string& member) {
    return api.Handle(Post(
        "/v1/eligibility",
        R"({"member_id":")" + member + R"(","payer":"Acme Health","service":"office-visit"})"));
  };
  auto a = check("M1001");
  ASSERT_EQ(a.status, 200) << a.body;
  json::object o = Body(a), o2 = Body(check("M1001"));
  EXPECT_EQ(o["eligible"], o2["eligible"]);
  EXPECT_EQ(o["coverage"], o2["coverage"]);
  EXPECT_EQ(o["eligible"].as_bool(), InsuranceApi::Eligible("M1001"));
  EXPECT_FALSE(Body(check("INELIGIBLE-7"))["eligible"].as_bool());
  EXPECT_EQ(Body(check("INELIGIBLE-7"))["coverage"].as_object().at("status").as_string(),
            "inactive");
  int eligible = 0;
  for (int i = 0; i < 200; ++i) eligible += InsuranceApi::Eligible("M" + std::to_string(i));
  EXPECT_GT(eligible, 150);
  EXPECT_LT(eligible, 200);
  EXPECT_EQ(log.size(), 4u);
  for (const char* bad : {R"({"member_id":"M1","payer":"P"})", R"({"payer":"P","service":"s"})",
                          R"({"member_id":"","payer":"P","service":"s"})",
                          R"({"member_id":"M 1","payer":"P","service":"s"})"}) {
    EXPECT_EQ(api.Handle(Post("/v1/eligibility", bad)).status, 400) << bad;
  }
}

TEST(Sms, QueuesValidatesAndDeduplicatesWithAKey) {
  ReceivedLog log;
  IdempotencyStore keys;
  SmsApi api(log, keys);
  const std::string body = R"({"to":"+15555550123","body":"Your appointment is confirmed."})";
  auto a = api.Handle(Post("/v1/messages", body));
  ASSERT_EQ(a.status, 202) << a.body;
  EXPECT_TRUE(Body(a)["message_id"].as_string().starts_with("SM"));
  auto b = api.Handle(Post("/v1/messages", body));  // no key: a second message
  EXPECT_NE(Body(b)["message_id"], Body(a)["message_id"]);
  auto c = api.Handle(Post("/v1/messages", body, "sms-1"));
  auto d = api.Handle(Post("/v1/messages", body, "sms-1"));
  EXPECT_EQ(c.status, 202);
  EXPECT_EQ(d.status, 200);
  EXPECT_EQ(c.body, d.body);
  EXPECT_EQ(log.size(), 4u);  // the replay is logged too
  EXPECT_EQ(Executed(log), 3u);
  EXPECT_EQ(api.Handle(Post("/v1/messages", R"({"to":"5550123","body":"x"})")).status, 400);
  EXPECT_EQ(api.Handle(Post("/v1/messages", R"({"to":"+15555550123","body":""})")).status, 400);
  EXPECT_EQ(api.Handle(Post("/v1/messages",
                            R"({"to":"+15555550123","body":")" + std::string(1601, 'x') + R"("})"))
                .status,
            400);
  EXPECT_TRUE(ValidE164("+442071838750"));
  EXPECT_FALSE(ValidE164("+0123456789"));
  EXPECT_FALSE(ValidE164("+1555"));
  EXPECT_EQ(SmsSegments(160), 1);
  EXPECT_EQ(SmsSegments(161), 2);
  EXPECT_EQ(SmsSegments(306), 2);
  EXPECT_EQ(SmsSegments(307), 3);
}

TEST(Api, StableHashIsStable) {
  // Answers that must be deterministic per id depend on these exact values.
  EXPECT_EQ(Hex64(StableHash("continuum")), "76e1730c73ef13c9");
  EXPECT_NE(StableHash("a"), StableHash("b"));
  EXPECT_EQ(Hex64(0x1234abcdULL), "000000001234abcd");
  EXPECT_TRUE(ValidId("rx-1.a_B"));
  EXPECT_FALSE(ValidId(""));
  EXPECT_FALSE(ValidId("a/b"));
  EXPECT_FALSE(ValidId(std::string(65, 'a')));
}

}  // namespace
}  // namespace continuum::stubdeps
