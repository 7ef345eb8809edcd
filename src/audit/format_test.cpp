// The journal line's writer and reader against Boost.JSON's document: SerializeLine writes
// what boost::json::serialize writes, and ParseLine (which reads SerializeLine's own form
// directly) answers every input as ParseLineDom does.
#include "audit/internal/format.hpp"

#include <gtest/gtest.h>

#include <climits>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace continuum::audit::internal {
namespace {

Record Typical() {
  Record r;
  r.seq = 123456;
  r.recorded_at = "2026-12-06T20:01:02.345Z";
  r.region = "eu-west";
  r.node_id = "eu-west-1";
  r.request_id = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
  r.actor = "demo-provider";
  r.role = "provider";
  r.action = "search";
  r.resource_type = "AllergyIntolerance";
  r.resource_id = "";
  r.patient_id = "1742";
  r.client_address = "127.0.0.1";
  r.purpose_of_use = "TREAT";
  r.outcome = "success";
  r.detail = "";
  return r;
}

const std::string kPrev(64, 'a');
const std::string kHash(64, 'b');

void ExpectSameParse(std::string_view line) {
  std::string fast_error, dom_error;
  const auto fast = ParseLine(line, &fast_error);
  const auto dom = ParseLineDom(line, &dom_error);
  ASSERT_EQ(fast.has_value(), dom.has_value()) << line;
  EXPECT_EQ(fast_error, dom_error) << line;
  if (!fast) return;
  // `canonical` is a promise the shipper relies on to leave `record` out.
  if (fast->canonical) {
    EXPECT_TRUE(IsCanonical(line, *fast)) << line;
  }
  if (RebuildableFromColumns(*fast)) {  // what `audit verify` rebuilds from the columns
    EXPECT_EQ(RebuildLine(fast->record, fast->recorded_at_micros, fast->prev_hash, fast->hash),
              line);
  }
  EXPECT_EQ(fast->record.seq, dom->record.seq);
  EXPECT_EQ(SerializeLine(fast->record, fast->prev_hash, &fast->hash),
            SerializeLine(dom->record, dom->prev_hash, &dom->hash))
      << line;
  EXPECT_EQ(fast->recorded_at_micros, dom->recorded_at_micros);
}

TEST(AuditFormat, SerializesAsTheBoostJsonDocumentDoes) {
  Record r = Typical();
  EXPECT_EQ(SerializeLine(r, kPrev, nullptr), SerializeLineDom(r, kPrev, nullptr));
  EXPECT_EQ(SerializeLine(r, kPrev, &kHash), SerializeLineDom(r, kPrev, &kHash));
  for (long long seq : {0LL, 1LL, 9LL, 10LL, 999999999999LL, LLONG_MAX, -5LL}) {
    r.seq = seq;
    EXPECT_EQ(SerializeLine(r, kPrev, &kHash), SerializeLineDom(r, kPrev, &kHash)) << seq;
  }
  // Every byte value in every field (as a Record holds it before SanitizeRecord too).
  for (int c = 0; c < 256; ++c) {
    Record b = Typical();
    const std::string s = std::string("x") + static_cast<char>(c) + "\"\\" + static_cast<char>(c);
    b.request_id = b.actor = b.resource_id = b.detail = b.client_address = s;
    ASSERT_EQ(SerializeLine(b, kPrev, &kHash), SerializeLineDom(b, kPrev, &kHash)) << c;
  }
  // Around the escaper's eight-byte words: every byte at every place, unsanitized.
  for (std::size_t len : {7u, 8u, 9u, 16u, 17u}) {
    for (std::size_t pos = 0; pos < len; ++pos) {
      for (int c = 0; c < 256; ++c) {
        Record w = Typical();
        w.detail.assign(len, 'y');
        w.detail[pos] = static_cast<char>(c);
        ASSERT_EQ(SerializeLine(w, kPrev, &kHash), SerializeLineDom(w, kPrev, &kHash))
            << len << " " << pos << " " << c;
      }
    }
  }
  Record u = Typical();
  u.actor = "Zoë Ångström \xF0\x9F\x98\x80";
  u.detail = "no care relationship\n\t";
  EXPECT_EQ(SerializeLine(u, kPrev, &kHash), SerializeLineDom(u, kPrev, &kHash));
}

TEST(AuditFormat, ReadsCanonicalLinesAsTheDocumentParserDoes) {
  Record r = Typical();
  const std::string line = SerializeLine(r, kPrev, &kHash);
  const auto p = ParseLine(line);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->record.actor, "demo-provider");
  EXPECT_EQ(p->record.patient_id, "1742");
  EXPECT_EQ(p->record.resource_id, "");
  EXPECT_EQ(p->hash, kHash);
  ExpectSameParse(line);
  // Every byte in a field, sanitized as the journal does: escapes and non-ASCII.
  for (int c = 0; c < 256; ++c) {
    Record b = Typical();
    b.detail = std::string("d") + static_cast<char>(c) + "\"\\/" + static_cast<char>(c);
    SanitizeRecord(b);
    const std::string l = SerializeLine(b, kPrev, &kHash);
    ExpectSameParse(l);
    const auto q = ParseLine(l);
    ASSERT_TRUE(q) << c;
    EXPECT_EQ(q->record.detail, b.detail) << c;
  }
}

TEST(AuditFormat, AnswersEveryMutatedLineAsTheDocumentParserDoes) {
  Record r = Typical();
  r.detail = "a \"b\" \\ c\n\x01";
  const std::string line = SerializeLine(r, kPrev, &kHash);
  // Every byte replaced by a few telling values, deleted, and a byte inserted.
  const std::string probes = std::string("0 9,:{}\"\\u/bx\x7f\x80\xC3") + '\0';
  for (std::size_t i = 0; i < line.size(); ++i) {
    for (char c : probes) {
      std::string m = line;
      m[i] = c;
      ExpectSameParse(m);
      std::string ins = line;
      ins.insert(i, 1, c);
      ExpectSameParse(ins);
    }
    std::string del = line;
    del.erase(i, 1);
    ExpectSameParse(del);
  }
  // Forms the writer never makes but JSON allows, and some it does not.
  for (const std::string& s :
       {std::string(R"({"seq": 1,"recorded_at":"x"})"), std::string("{\"seq\":01}"),
        std::string("{\"seq\":18446744073709551615}"), std::string("{\"seq\":1.0}"),
        std::string(""), std::string("{"), std::string("[]")}) {
    ExpectSameParse(s);
  }
  std::string escaped = line;
  const auto at = escaped.find("demo-provider");
  escaped.replace(at, 1, "\\u0064");  // 'd' escaped: valid JSON, not the writer's form
  ExpectSameParse(escaped);
  escaped = line;
  escaped.replace(escaped.find("demo-provider"), 1, "\\u0000");
  ExpectSameParse(escaped);  // NUL: refused by both
  escaped = line;
  escaped.replace(escaped.find("demo-provider"), 1, "\\u00e9");
  ExpectSameParse(escaped);
  escaped = line;
  escaped.replace(escaped.find("demo-provider"), 1, "\\ud83d\\ude00");
  ExpectSameParse(escaped);
  // The escapes the direct reader decodes itself, in both cases of hex, and some it leaves.
  for (const char* esc : {"\\u007f", "\\u007F", "\\u001f", "\\u001F", "\\u0022", "\\u005c",
                          "\\u005C", "\\u0080", "\\/", "\\", "\\u00", "\\x41"}) {
    for (const char* where : {"demo-provider", "0f1e2d3c"}) {
      escaped = line;
      escaped.replace(escaped.find(where), 1, esc);
      ExpectSameParse(escaped);
    }
  }
}

TEST(AuditFormat, AnswersRandomLinesAsTheDocumentParserDoes) {
  std::mt19937 rng(20261206);
  const std::string alphabet = "az09 \"\\/{}:,\n\t\x01\x1f\x7f\xC3\xA9\xF0\x9F\x98\x80";
  for (int n = 0; n < 2000; ++n) {
    Record r = Typical();
    r.seq = std::uniform_int_distribution<long long>(1, INT64_MAX)(rng);
    for (std::string* f : {&r.request_id, &r.actor, &r.resource_id, &r.patient_id, &r.detail}) {
      f->clear();
      const int len = std::uniform_int_distribution<int>(0, 12)(rng);
      for (int k = 0; k < len; ++k)
        *f += alphabet[std::uniform_int_distribution<std::size_t>(0, alphabet.size() - 1)(rng)];
    }
    SanitizeRecord(r);
    std::string line = SerializeLine(r, kPrev, &kHash);
    ExpectSameParse(line);
    const auto p = ParseLine(line);
    ASSERT_TRUE(p);
    EXPECT_EQ(SerializeLine(p->record, p->prev_hash, &p->hash), line);
    line[std::uniform_int_distribution<std::size_t>(0, line.size() - 1)(rng)] =
        alphabet[std::uniform_int_distribution<std::size_t>(0, alphabet.size() - 1)(rng)];
    ExpectSameParse(line);
  }
}

TEST(AuditFormat, TellsWhichLinesTheTableColumnsGiveBack) {
  Record r = Typical();
  r.detail = "tab\there \"q\" \\ \x01";
  const std::string line = SerializeLine(r, kPrev, &kHash);
  auto p = ParseLine(line);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->canonical);
  ASSERT_TRUE(RebuildableFromColumns(*p));
  Record columns = p->record;
  columns.recorded_at = "";  // the table keeps microseconds, not the text
  EXPECT_EQ(RebuildLine(columns, p->recorded_at_micros, kPrev, kHash), line);

  // Valid lines the columns would not give back byte for byte: their record is kept.
  auto rebuildable = [](const std::string& l) {
    const auto q = ParseLine(l);
    return q && RebuildableFromColumns(*q);
  };
  for (const char* at :
       {"2026-12-06T20:01:02.345678Z", "2026-12-06T20:01:02Z", "2026-12-06T21:01:02.345+01:00",
        "2026-12-06t20:01:02.345z", "2026-12-06T20:01:02.34Z"}) {
    Record o = Typical();
    o.recorded_at = at;
    EXPECT_FALSE(rebuildable(SerializeLine(o, kPrev, &kHash))) << at;
  }
  const std::string from = "demo-provider";
  for (const char* esc : {"\\u0064", "\\u0008", "\\u000A", "\\u001F"}) {
    std::string l = line;
    l.replace(l.find(from), 1, esc);
    EXPECT_FALSE(rebuildable(l)) << esc;
    ExpectSameParse(l);
  }
  Record c = Typical();
  c.detail = "\x1f";  // written \u001f, as the writer writes byte 0x1f: rebuilt
  EXPECT_TRUE(rebuildable(SerializeLine(c, kPrev, &kHash)));
  c.actor = "Zoë";  // read by the document parser: not known to be canonical, kept
  EXPECT_FALSE(rebuildable(SerializeLine(c, kPrev, &kHash)));
  EXPECT_FALSE(rebuildable(" " + line));
}

TEST(AuditFormat, FormatsMillisecondsAsTheWriterDoes) {
  const std::string now = NowRfc3339();
  const auto micros = ParseRfc3339Micros(now);
  ASSERT_TRUE(micros);
  EXPECT_EQ(FormatRfc3339Millis(*micros), now);
  EXPECT_EQ(FormatRfc3339Millis(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(-1000), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatRfc3339Millis(*ParseRfc3339Micros("2024-02-29T23:59:59.999Z")),
            "2024-02-29T23:59:59.999Z");
  EXPECT_EQ(FormatRfc3339Millis(*ParseRfc3339Micros("2026-12-06T20:01:02.345678Z")),
            "2026-12-06T20:01:02.345Z");
}

// The formatter keeps each thread's last second: times that go back and forth between
// seconds, days and years, and within one second, all read back as themselves (to the
// millisecond).
TEST(AuditFormat, FormatsEveryMillisecondWhateverTheSecondBefore) {
  const long long base = *ParseRfc3339Micros("2026-12-31T23:59:58.000Z");
  const long long day = 86400000000LL;
  const long long steps[] = {0,       1,       999,     1000, 999999, 1000000,  1000001,
                             1999999, 2000000, 2000999, day,  -day,   366 * day};
  for (const long long a : steps) {
    for (const long long b : steps) {
      for (const long long m : {base + a, base + b, base + a, base - b}) {
        const std::string text = FormatRfc3339Millis(m);
        const auto back = ParseRfc3339Micros(text);
        ASSERT_TRUE(back) << text;
        const long long floor_ms = m - ((m % 1000) + 1000) % 1000;
        EXPECT_EQ(*back, floor_ms) << m << " " << text;
        EXPECT_EQ(text.size(), 24u) << text;
      }
    }
  }
  EXPECT_EQ(FormatRfc3339Millis(base + 2000000), "2027-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(base + 1999999), "2026-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatRfc3339Millis(base + 2000000), "2027-01-01T00:00:00.000Z");
}

TEST(AuditFormat, SanitizeRecordKeepsPlainFieldsAndReplacesTheRest) {
  Record r = Typical();
  r.actor = std::string("bad\0nul", 7);
  r.detail = "\xC3(";  // a lead byte without its continuation
  r.request_id = "Zoë";
  SanitizeRecord(r);
  EXPECT_EQ(r.actor, "bad\xEF\xBF\xBDnul");
  EXPECT_EQ(r.detail, "\xEF\xBF\xBD(");
  EXPECT_EQ(r.request_id, "Zoë");
  EXPECT_EQ(r.patient_id, "1742");
}

}  // namespace
}  // namespace continuum::audit::internal
