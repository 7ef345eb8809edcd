#include "stubdeps/idempotency.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

#include "stubdeps/received_log.hpp"

namespace continuum::stubdeps {
namespace {
namespace json = boost::json;
using Outcome = IdempotencyStore::Outcome;

std::filesystem::path TempDir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() /
           ("continuum-stubdeps-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

TEST(Fingerprint, IgnoresKeyOrderAndWhitespaceButNotValues) {
  auto a = json::parse(R"({"b":1,"a":{"y":[1,2],"x":"s"}})");
  auto b = json::parse(R"( { "a" : { "x":"s", "y":[1, 2] }, "b" : 1 } )");
  auto c = json::parse(R"({"b":2,"a":{"y":[1,2],"x":"s"}})");
  auto d = json::parse(R"({"b":1,"a":{"y":[2,1],"x":"s"}})");
  EXPECT_EQ(CanonicalJson(a), R"({"a":{"x":"s","y":[1,2]},"b":1})");
  EXPECT_EQ(Fingerprint("POST", "/v1/charges", a), Fingerprint("POST", "/v1/charges", b));
  EXPECT_NE(Fingerprint("POST", "/v1/charges", a), Fingerprint("POST", "/v1/charges", c));
  EXPECT_NE(Fingerprint("POST", "/v1/charges", a), Fingerprint("POST", "/v1/charges", d));
  EXPECT_NE(Fingerprint("POST", "/v1/charges", a), Fingerprint("POST", "/v1/refunds", a));
}

TEST(IdempotencyStore, NewReplayConflict) {
  IdempotencyStore s;
  EXPECT_EQ(s.Find("k", "fp1").outcome, Outcome::kNew);
  s.Remember("k", "fp1", {201, "first"});
  auto r = s.Find("k", "fp1");
  EXPECT_EQ(r.outcome, Outcome::kReplay);
  ASSERT_NE(r.response, nullptr);
  EXPECT_EQ(r.response->status, 201);
  EXPECT_EQ(r.response->body, "first");
  EXPECT_EQ(s.Find("k", "fp2").outcome, Outcome::kConflict);
  // The first answer stays: remembering again is a no-op.
  s.Remember("k", "fp2", {500, "second"});
  EXPECT_EQ(s.Find("k", "fp1").response->body, "first");
  EXPECT_EQ(s.size(), 1u);
}

TEST(IdempotencyStore, ForgetsTheOldestPastCapacity) {
  IdempotencyStore s(2);
  s.Remember("a", "f", {201, "a"});
  s.Remember("b", "f", {201, "b"});
  s.Remember("c", "f", {201, "c"});
  EXPECT_EQ(s.size(), 2u);
  EXPECT_EQ(s.Find("a", "f").outcome, Outcome::kNew);
  EXPECT_EQ(s.Find("c", "f").outcome, Outcome::kReplay);
}

TEST(IdempotencyStore, PersistsAcrossRestarts) {
  auto dir = TempDir("keys");
  {
    IdempotencyStore s;
    s.Persist(dir / "keys.jsonl");
    s.Remember("k1", "fp", {201, R"({"charge_id":"ch_1"})"});
    s.Remember("k2", "fp", {402, R"({"code":"card_declined"})"});
  }
  {
    // A torn last line (crash mid-write) is skipped.
    std::ofstream(dir / "keys.jsonl", std::ios::app) << R"({"key":"k3","finger)";
  }
  IdempotencyStore s;
  s.Persist(dir / "keys.jsonl");
  EXPECT_EQ(s.size(), 2u);
  EXPECT_EQ(s.Find("k1", "fp").response->body, R"({"charge_id":"ch_1"})");
  EXPECT_EQ(s.Find("k2", "fp").response->status, 402);
  EXPECT_EQ(s.Find("k1", "other").outcome, Outcome::kConflict);
  std::filesystem::remove_all(dir);
}

TEST(ReceivedLog, NumbersEntriesAndBoundsItsSize) {
  ReceivedLog log(3);
  for (int i = 0; i < 5; ++i) log.Append(json::object{{"n", i}}, 1795600000000);
  json::object o = log.ToJson();
  EXPECT_EQ(o["count"].as_uint64(), 3u);
  EXPECT_EQ(o["dropped"].as_uint64(), 2u);
  const auto& first = o["entries"].as_array()[0].as_object();
  EXPECT_EQ(first.at("seq").as_uint64(), 3u);
  EXPECT_EQ(first.at("n").as_int64(), 2);
  EXPECT_EQ(first.at("received_at").as_string(), "2026-11-25T09:46:40.000Z");
  EXPECT_EQ(log.Clear(), 3u);
  EXPECT_EQ(log.size(), 0u);
  // Sequence numbers are never reused.
  EXPECT_EQ(log.Append(json::object{}, 0).at("seq").as_uint64(), 6u);
}

TEST(ReceivedLog, PersistsAndClears) {
  auto dir = TempDir("log");
  {
    ReceivedLog log;
    log.Persist(dir / "payments.jsonl");
    log.Append(json::object{{"charge_id", "ch_1"}}, 0);
    log.Append(json::object{{"charge_id", "ch_2"}}, 0);
  }
  {
    ReceivedLog log;
    log.Persist(dir / "payments.jsonl");
    ASSERT_EQ(log.size(), 2u);
    EXPECT_EQ(log.entries()[1].at("charge_id").as_string(), "ch_2");
    EXPECT_EQ(log.Append(json::object{}, 0).at("seq").as_uint64(), 3u);
    log.Clear();
  }
  ReceivedLog log;
  log.Persist(dir / "payments.jsonl");
  EXPECT_EQ(log.size(), 0u);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace continuum::stubdeps
