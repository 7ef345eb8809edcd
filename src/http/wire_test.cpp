#include "http/wire.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <stdexcept>

namespace continuum::http {
namespace {
namespace bhttp = boost::beast::http;

// The reference: the response as the server built it for Beast's serializer before
// AppendResponseHead, and Beast's bytes for it.
std::pair<std::string, bool> BeastBytes(Response r, unsigned version, bool keep_alive,
                                        const std::string& request_id) {
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), version};
  res.set(bhttp::field::server, "continuum");
  if (!r.body.empty() || r.status != 204) res.set(bhttp::field::content_type, r.content_type);
  if (!request_id.empty()) res.set("X-Request-Id", request_id);
  for (auto& [k, v] : r.headers) res.set(k, v);
  res.body() = std::move(r.body);
  res.keep_alive(keep_alive && !r.close);
  res.prepare_payload();
  // The one deliberate difference: Beast 1.81 writes "Content-Length: 0" on a 1xx, 204 or
  // 304. RFC 9110 (8.6) forbids the field on a 1xx or 204, and on a 304 it would say the
  // representation is empty.
  const bool bodiless = r.status / 100 == 1 || r.status == 204 || r.status == 304;
  if (bodiless) res.content_length(boost::none);
  if (r.head_content_length) res.content_length(*r.head_content_length);
  std::ostringstream os;
  os << res;
  return {os.str(), res.keep_alive()};
}

std::pair<std::string, bool> OurBytes(const Response& r, unsigned version, bool keep_alive,
                                      const std::string& request_id) {
  std::string out = "left from the last response";
  out.clear();
  const bool keep = AppendResponseHead(out, r, version, keep_alive, request_id);
  return {out + r.body, keep};
}

TEST(HttpWire, WritesWhatBeastWrites) {
  using Headers = std::vector<std::pair<std::string, std::string>>;
  const std::vector<Headers> header_sets = {
      {},
      {{"Cache-Control", "no-store"}},
      {{"Location", "/fhir/R4/Appointment/12/_history/1"},
       {"ETag", "W/\"1\""},
       {"Retry-After", "5"}},
      {{"Cache-Control", "a"}, {"Pragma", "no-cache"}, {"cache-control", "b"}},
      {{"content-type", "text/plain"}, {"Age", "3"}},
      {{"Server", "other"}, {"X-Request-Id", "from-handler"}},
      {{"X-Cache", "  hit \t"}, {"WWW-Authenticate", "\tBearer realm=\"continuum\""}},
      {{"X-Continuum-Degraded", ""}},
  };
  int cases = 0;
  for (const unsigned version : {10u, 11u}) {
    for (const bool keep : {true, false}) {
      for (const bool close : {false, true}) {
        for (const int status : {200, 201, 204, 304, 101, 404, 431, 503, 299}) {
          const bool bodiless = status / 100 == 1 || status == 204 || status == 304;
          for (const char* body : {"", "{\"resourceType\":\"Bundle\"}"}) {
            if (bodiless && *body) continue;
            for (const auto& headers : header_sets) {
              for (const char* rid : {"", "req-1"}) {
                for (const bool head : {false, true}) {
                  Response r;
                  r.status = status;
                  r.body = body;
                  r.headers = headers;
                  r.close = close;
                  if (head) r.head_content_length = 1234;
                  const auto want = BeastBytes(r, version, keep, rid);
                  const auto got = OurBytes(r, version, keep, rid);
                  EXPECT_EQ(got.first, want.first)
                      << "version " << version << " keep " << keep << " close " << close
                      << " status " << status << " rid " << rid;
                  EXPECT_EQ(got.second, want.second);
                  ++cases;
                }
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(cases, 1000);
}

TEST(HttpWire, TheFramingFieldsAreTheServers) {
  Response r;
  r.body = "12345";
  r.headers = {{"Content-Length", "1"},
               {"transfer-encoding", "chunked"},
               {"Connection", "close"},
               {"Cache-Control", "no-store"}};
  std::string out;
  EXPECT_TRUE(AppendResponseHead(out, r, 11, true, "req-9"));
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nServer: continuum\r\nContent-Type: application/fhir+json\r\n"
            "X-Request-Id: req-9\r\nCache-Control: no-store\r\nContent-Length: 5\r\n\r\n");
}

TEST(HttpWire, NoFieldSplitsTheResponse) {
  Response r;
  r.headers = {{"Location", "/a\r\nSet-Cookie: x=1"}, {"X-A\nB", "c\0d"}};
  r.headers[1].second = std::string("c\0d", 3);
  std::string out;
  AppendResponseHead(out, r, 11, true, "");
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nServer: continuum\r\nContent-Type: application/fhir+json\r\n"
            "Location: /a  Set-Cookie: x=1\r\nX-A B: c d\r\nContent-Length: 0\r\n\r\n");
}

TEST(HttpWire, RefusesABodyWhereNoneMayBe) {
  for (const int status : {100, 204, 304}) {
    Response r;
    r.status = status;
    r.body = "x";
    std::string out;
    EXPECT_THROW(AppendResponseHead(out, r, 11, true, ""), std::invalid_argument) << status;
  }
}

}  // namespace
}  // namespace continuum::http
