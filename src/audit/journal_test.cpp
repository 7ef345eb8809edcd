#include "audit/journal.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "audit/internal/files.hpp"
#include "audit/internal/format.hpp"
#include "audit/test_util.hpp"
#include "audit/verify.hpp"

namespace continuum::audit {
namespace {
namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace audit::test_util;

// Appends `records` while files may not grow past `limit` bytes (a "full disk": a write
// beyond it fails with EFBIG); the failure's message, or "" if the append succeeded.
std::string AppendUnderFileSizeLimit(Journal& j, std::vector<Record> records, std::uint64_t limit) {
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGXFSZ, &ignore, &old);
  rlimit saved{};
  ::getrlimit(RLIMIT_FSIZE, &saved);
  rlimit tight = saved;
  tight.rlim_cur = limit;
  ::setrlimit(RLIMIT_FSIZE, &tight);
  std::string message;
  try {
    AppendSync(j, std::move(records));
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::sigaction(SIGXFSZ, &old, nullptr);
  return message;
}

TEST(AuditJournal, WritesCanonicalHashChainedLines) {
  TempDir dir;
  {
    Journal j(Options(dir));
    AppendSync(j, {MakeRecord(1), MakeRecord(2), MakeRecord(3)});
    AppendN(j, 4, 2);
    EXPECT_EQ(j.stats().records, 5u);
    EXPECT_EQ(j.stats().last_seq, 5);
    EXPECT_EQ(j.stats().pending, 0u);
  }
  const auto lines = Lines(ReadFile(FirstSegment(dir)));
  ASSERT_EQ(lines.size(), 5u);
  const std::vector<std::string> keys = {"seq",
                                         "recorded_at",
                                         "region",
                                         "node_id",
                                         "request_id",
                                         "actor",
                                         "role",
                                         "action",
                                         "resource_type",
                                         "resource_id",
                                         "patient_id",
                                         "client_address",
                                         "purpose_of_use",
                                         "outcome",
                                         "detail",
                                         "prev_hash",
                                         "hash"};
  // The chain starts at the node's genesis: SHA-256 of "genesis:<node_id>".
  // (printf 'genesis:node-a' | sha256sum)
  std::string prev = "bbf434cab71435838c4e2b9a6504574f46e94e704107545734914e77476fff09";
  const std::regex rfc3339(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$)");
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto v = boost::json::parse(lines[i]);
    const auto& o = v.as_object();
    std::vector<std::string> got;
    for (const auto& kv : o) got.emplace_back(kv.key());
    EXPECT_EQ(got, keys);
    EXPECT_EQ(boost::json::serialize(v), lines[i]) << "not canonical";
    EXPECT_EQ(o.at("seq").as_int64(), static_cast<int64_t>(i + 1));
    EXPECT_EQ(o.at("node_id").as_string(), "node-a");
    EXPECT_EQ(o.at("region").as_string(), "eu-1");
    EXPECT_EQ(o.at("request_id").as_string(), "req-" + std::to_string(i + 1));
    EXPECT_TRUE(std::regex_match(std::string(o.at("recorded_at").as_string()), rfc3339));
    EXPECT_EQ(o.at("prev_hash").as_string(), prev);
    // hash = SHA-256 of the line without its hash field.
    const std::string hash(o.at("hash").as_string());
    const std::string suffix = ",\"hash\":\"" + hash + "\"}";
    ASSERT_EQ(lines[i].substr(lines[i].size() - suffix.size()), suffix);
    const std::string content = lines[i].substr(0, lines[i].size() - suffix.size()) + "}";
    EXPECT_EQ(internal::Sha256Hex(content), hash);
    prev = hash;
  }
  const auto report = Verify({dir.str()}, Secret());
  EXPECT_TRUE(report.ok()) << Dump(report);
  EXPECT_EQ(report.journal_records, 5u);
}

TEST(AuditJournal, GroupCommitsManyConcurrentAppenders) {
  TempDir dir;
  Journal j(Options(dir));
  constexpr int kAppenders = 64;
  constexpr int kPerAppender = 40;
  asio::io_context io;
  std::atomic<int> done{0}, failed{0};
  for (int a = 0; a < kAppenders; ++a) {
    // Four threads run `io`: each appender on a strand of its own, as Append requires a
    // single-threaded executor (its completion must not run before the append waits).
    asio::co_spawn(
        asio::make_strand(io),
        [&, a]() -> asio::awaitable<void> {
          auto ex = co_await asio::this_coro::executor;
          for (int k = 0; k < kPerAppender; ++k) {
            // (not a braced list: GCC 12 miscompiles initializer lists in coroutines)
            std::vector<Record> records(1, MakeRecord(a * 1000 + k));
            co_await j.Append(ex, std::move(records));
            done.fetch_add(1);
          }
        },
        [&](std::exception_ptr e) {
          if (e) failed.fetch_add(1);
        });
  }
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&] { io.run(); });
  for (auto& t : threads) t.join();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  constexpr int kTotal = kAppenders * kPerAppender;
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(done.load(), kTotal);
  const auto s = j.stats();
  EXPECT_EQ(s.records, static_cast<uint64_t>(kTotal));
  EXPECT_EQ(s.last_seq, kTotal);
  EXPECT_EQ(s.pending, 0u);
  EXPECT_LT(s.syncs, static_cast<uint64_t>(kTotal));
  std::printf(
      "[ journal  ] %d appenders x %d: %.0f records/s, %llu fdatasyncs (%.1f records/sync)\n",
      kAppenders, kPerAppender, kTotal / secs, static_cast<unsigned long long>(s.syncs),
      static_cast<double>(kTotal) / static_cast<double>(s.syncs));

  j.Stop();
  const auto lines = Lines(ReadFile(FirstSegment(dir)));
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kTotal));
  std::set<std::string> requests;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto v = boost::json::parse(lines[i]);
    EXPECT_EQ(v.at("seq").as_int64(), static_cast<int64_t>(i + 1));
    requests.insert(std::string(v.at("request_id").as_string()));
  }
  EXPECT_EQ(requests.size(), static_cast<std::size_t>(kTotal)) << "a record was lost or doubled";
  const auto report = Verify({dir.str()}, Secret());
  EXPECT_TRUE(report.ok()) << Dump(report);
}

TEST(AuditJournal, RecoversFromATornTail) {
  TempDir dir;
  {
    Journal j(Options(dir));
    AppendN(j, 1, 5);
  }
  const std::string good = ReadFile(FirstSegment(dir));
  // A crash in the middle of a write: half a line, no newline.
  WriteFile(FirstSegment(dir), good + R"({"seq":6,"recorded_at":"2026-11-25T14:0)");
  {
    Journal j(Options(dir));
    EXPECT_EQ(ReadFile(FirstSegment(dir)), good);
    EXPECT_EQ(j.stats().last_seq, 5);
    AppendN(j, 6, 2);
    EXPECT_EQ(j.stats().last_seq, 7);
  }
  // The cut bytes are kept for forensics, not deleted.
  bool kept = false;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    if (e.path().filename().string().rfind("torn-node-a-000001-", 0) == 0) {
      kept = ReadFile(e.path()) == R"({"seq":6,"recorded_at":"2026-11-25T14:0)";
    }
  }
  EXPECT_TRUE(kept);
  const auto lines = Lines(ReadFile(FirstSegment(dir)));
  ASSERT_EQ(lines.size(), 7u);
  EXPECT_EQ(boost::json::parse(lines[5]).at("seq").as_int64(), 6);
  const auto report = Verify({dir.str()}, Secret());
  EXPECT_TRUE(report.ok()) << Dump(report);
  EXPECT_EQ(report.journal_records, 7u);
}

TEST(AuditJournal, RecoversFromGarbageAfterTheLastGoodLine) {
  TempDir dir;
  {
    Journal j(Options(dir));
    AppendN(j, 1, 3);
  }
  const std::string good = ReadFile(FirstSegment(dir));
  WriteFile(FirstSegment(dir), good + "{\"seq\":4,\"recor\n" + std::string(100, '\0'));
  {
    Journal j(Options(dir));
    EXPECT_EQ(ReadFile(FirstSegment(dir)), good);
    AppendN(j, 4, 1);
    EXPECT_EQ(j.stats().last_seq, 4);
  }
  const auto report = Verify({dir.str()}, Secret());
  EXPECT_TRUE(report.ok()) << Dump(report);
}

// Written over zero-filled space, a batch's pages can reach the disk out of order: a
// crash can leave a hole of zeros inside the unacknowledged tail, complete lines after it,
// then padding. Recovery keeps the chain up to the hole; what follows (zeros and padding
// aside) goes to a torn file.
TEST(AuditJournal, RecoversAtTheFirstNulOfAHoleInTheTail) {
  TempDir dir;
  {
    Journal j(Options(dir));
    AppendN(j, 1, 6);
  }
  const auto lines = Lines(ReadFile(FirstSegment(dir)));
  ASSERT_EQ(lines.size(), 6u);
  const std::string durable = JoinLines({lines.begin(), lines.begin() + 3});
  // record 4 and half of 5 lost in a hole (a page not written), the rest of 5 and record
  // 6 reached the disk (later pages), then the padding
  const std::string after_hole =
      std::string(700, '\0') + lines[4].substr(lines[4].size() / 2) + "\n" + lines[5] + "\n";
  WriteFile(FirstSegment(dir), durable + after_hole + std::string(4096, '\0'));
  {
    Journal j(Options(dir));
    EXPECT_EQ(j.stats().last_seq, 3);
    EXPECT_EQ(ReadFile(FirstSegment(dir)), durable);
    AppendN(j, 4, 3);
  }
  std::string kept;
  for (const auto& e : fs::directory_iterator(dir.path()))
    if (e.path().filename().string().rfind("torn-node-a-000001-", 0) == 0)
      kept = ReadFile(e.path());
  EXPECT_EQ(kept, after_hole) << "the torn tail, without its padding";
  const auto report = Verify({dir.str()}, Secret());
  EXPECT_TRUE(report.ok()) << Dump(report);
  EXPECT_EQ(report.journal_records, 6u);
}

TEST(AuditJournal, RotatesSegmentsAndContinuesAfterReopen) {
  TempDir dir;
  constexpr std::size_t kSegment = 4096;
  {
    Journal j(Options(dir, kSegment));
    AppendN(j, 1, 25);
    // One batch larger than a segment is split across segments too.
    std::vector<Record> batch;
    for (int i = 26; i <= 50; ++i) batch.push_back(MakeRecord(i));
    AppendSync(j, std::move(batch));
  }
  {
    Journal j(Options(dir, kSegment));
    EXPECT_EQ(j.stats().last_seq, 50);
    AppendN(j, 51, 10);
  }
  const auto segs = Segments(dir);
  ASSERT_GE(segs.size(), 5u);
  long long expect = 1;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "journal-node-a-%06zu.jsonl", i + 1);
    EXPECT_EQ(segs[i].filename().string(), name);
    EXPECT_LE(fs::file_size(segs[i]), kSegment);
    for (const auto& line : Lines(ReadFile(segs[i]))) {
      EXPECT_EQ(boost::json::parse(line).at("seq").as_int64(), expect++);
    }
  }
  EXPECT_EQ(expect, 61);
  const auto report = Verify({dir.str()}, Secret());
  EXPECT_TRUE(report.ok()) << Dump(report);
  EXPECT_EQ(report.journal_records, 60u);
}

TEST(AuditJournal, DisabledJournalWritesNothing) {
  TempDir parent;
  auto o = Options(parent);
  o.dir = (parent.path() / "audit").string();
  o.enabled = false;
  Journal j(o);
  AppendN(j, 1, 3);
  EXPECT_FALSE(fs::exists(o.dir));
  EXPECT_EQ(j.stats().records, 0u);
}

TEST(AuditJournal, FillsRecordedAtOnlyIfEmptyAndRejectsGarbage) {
  TempDir dir;
  Journal j(Options(dir));
  auto r = MakeRecord(1);
  r.recorded_at = "2026-11-25T14:03:07.123456+01:00";
  AppendSync(j, {r});
  r.recorded_at = "yesterday";
  EXPECT_THROW(AppendSync(j, {r}), std::invalid_argument);
  j.Stop();
  const auto lines = Lines(ReadFile(FirstSegment(dir)));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(boost::json::parse(lines[0]).at("recorded_at").as_string(),
            "2026-11-25T14:03:07.123456+01:00");
}

TEST(AuditJournal, SanitizesInvalidUtf8AndNul) {
  TempDir dir;
  {
    Journal j(Options(dir));
    auto r = MakeRecord(1);
    static constexpr char kDetail[] = "bad \xC3\x28 utf8 \0 nul \xF0\x9F\x98\x80 ok";
    r.detail = std::string(kDetail, sizeof kDetail - 1);
    r.request_id = "quote \" backslash \\ newline \n tab \t";
    AppendSync(j, {r});
  }
  const auto lines = Lines(ReadFile(FirstSegment(dir)));
  ASSERT_EQ(lines.size(), 1u);
  const auto v = boost::json::parse(lines[0]);
  EXPECT_EQ(v.at("detail").as_string(),
            "bad \xEF\xBF\xBD( utf8 \xEF\xBF\xBD nul \xF0\x9F\x98\x80 ok");
  EXPECT_EQ(v.at("request_id").as_string(), "quote \" backslash \\ newline \n tab \t");
  const auto report = Verify({dir.str()}, Secret());
  EXPECT_TRUE(report.ok()) << Dump(report);
}

TEST(AuditJournal, StoppedJournalRefusesAppends) {
  TempDir dir;
  Journal j(Options(dir));
  AppendN(j, 1, 1);
  j.Stop();
  EXPECT_THROW(AppendSync(j, {MakeRecord(2)}), std::runtime_error);
}

TEST(AuditJournal, OneWriterPerNodeAndOneNodePerFolder) {
  TempDir dir;
  Journal j(Options(dir));
  EXPECT_THROW(Journal second(Options(dir)), std::runtime_error);
  auto other = Options(dir);
  other.node_id = "node-b";
  EXPECT_THROW(Journal b(other), std::runtime_error);
  other.node_id = "../evil";
  EXPECT_THROW(Journal c(other), std::runtime_error);
}

// A full disk, with the segment's zero-filled space ahead (a little of it, so the batch
// needs more) and without it (appending): the batch's waiters fail, the segment is rolled
// back to its durable records, and the chain continues there once there is room.
TEST(AuditJournal, FailedWriteFailsTheWaitersAndRollsBack) {
  for (const std::size_t prealloc : {std::size_t{0}, std::size_t{256}}) {
    SCOPED_TRACE("preallocate_bytes " + std::to_string(prealloc));
    TempDir dir;
    auto opt = Options(dir);
    opt.preallocate_bytes = prealloc;
    Journal j(opt);
    AppendN(j, 1, 3);
    const std::string durable = ReadFile(FirstSegment(dir));
    const auto size = fs::file_size(FirstSegment(dir));
    EXPECT_EQ(size - internal::PaddingStart(durable), prealloc == 0 ? 0u : 256u) << "padding";
    // The disk is "full": room for a fraction of a line.
    const std::string message =
        AppendUnderFileSizeLimit(j, {MakeRecord(4), MakeRecord(5), MakeRecord(6)}, size + 100);
    EXPECT_EQ(message.rfind("audit journal write failed: ", 0), 0u) << message;
    EXPECT_EQ(j.stats().failures, 1u);
    EXPECT_EQ(j.stats().last_seq, 3);
    const std::string after = ReadFile(FirstSegment(dir));
    EXPECT_EQ(after.substr(0, internal::PaddingStart(after)),
              durable.substr(0, internal::PaddingStart(durable)))
        << "the partial write was not rolled back";
    // The disk has room again: the chain continues where the durable records ended.
    AppendN(j, 4, 2);
    EXPECT_EQ(j.stats().last_seq, 5);
    j.Stop();
    EXPECT_EQ(internal::PaddingStart(ReadFile(FirstSegment(dir))), fs::file_size(FirstSegment(dir)))
        << "a stopped journal's segment ends with its last record";
    const auto report = Verify({dir.str()}, Secret());
    EXPECT_TRUE(report.ok()) << Dump(report);
    EXPECT_EQ(report.journal_records, 5u);
  }
}

// The disk has room for a record but not for the space ahead: the record is appended,
// and the next zero-fill starts after it (never over a record).
TEST(AuditJournal, AppendsWhenTheSpaceAheadCannotBeFilledAndFillsAfterTheRecords) {
  TempDir dir;
  auto opt = Options(dir);
  opt.preallocate_bytes = 8192;
  opt.preallocate_retry_ms = 0;
  Journal j(opt);
  AppendN(j, 1, 2);
  const auto size = fs::file_size(FirstSegment(dir));
  std::vector<Record> records;
  for (int i = 3; i <= 19; ++i) records.push_back(MakeRecord(i));
  // a record fits, 8 KiB ahead of it does not
  const std::string message = AppendUnderFileSizeLimit(j, std::move(records), size + 1000);
  EXPECT_EQ(message, "");
  AppendN(j, 20, 3);  // room again: zero-fills ahead of record 22
  EXPECT_EQ(j.stats().last_seq, 22);
  const std::string live = ReadFile(FirstSegment(dir));
  EXPECT_GT(live.size(), internal::PaddingStart(live));
  j.Stop();
  const auto report = Verify({dir.str()}, Secret());
  EXPECT_TRUE(report.ok()) << Dump(report);
  EXPECT_EQ(report.journal_records, 22u);
}

// Zero-filled space ahead of the writes: an open journal's segment has it, readers skip
// it, a stopped journal's segment has none, and a crash that leaves it (in the newest
// segment, or in one the writer had left) costs nothing: recovery cuts it off without
// keeping it as torn evidence.
TEST(AuditJournal, PaddingAheadIsSkippedTrimmedAndRecovered) {
  TempDir dir;
  constexpr std::size_t kSegment = 8192;
  {
    auto opt = Options(dir, kSegment);
    opt.preallocate_bytes = 4096;
    Journal j(opt);
    AppendN(j, 1, 3);
    const std::string live = ReadFile(FirstSegment(dir));
    EXPECT_GT(live.size(), internal::PaddingStart(live)) << "no space zero-filled ahead";
    EXPECT_LE(live.size(), kSegment);
    const auto report = Verify({dir.str()}, Secret());
    EXPECT_TRUE(report.ok()) << Dump(report);
    EXPECT_TRUE(report.notes.empty()) << Dump(report);
    EXPECT_EQ(report.journal_records, 3u);
    AppendN(j, 4, 30);  // into further segments
  }
  auto segs = Segments(dir);
  ASSERT_GE(segs.size(), 2u);
  for (const auto& seg : segs) {
    const std::string data = ReadFile(seg);
    EXPECT_EQ(internal::PaddingStart(data), data.size()) << seg;
  }
  // A crash: padding left behind in a finished segment and in the newest one.
  WriteFile(segs.front(), ReadFile(segs.front()) + std::string(3000, '\0'));
  const std::string newest = ReadFile(segs.back());
  WriteFile(segs.back(), newest + std::string(5000, '\0'));
  {
    const auto report = Verify({dir.str()}, Secret());
    EXPECT_TRUE(report.ok()) << Dump(report);
    EXPECT_EQ(report.journal_records, 33u);
  }
  {
    Journal j(Options(dir, kSegment));
    EXPECT_EQ(j.stats().last_seq, 33);
    EXPECT_EQ(ReadFile(segs.back()).substr(0, newest.size()), newest);
    AppendN(j, 34, 2);
  }
  for (const auto& e : fs::directory_iterator(dir.path()))
    EXPECT_NE(e.path().filename().string().rfind("torn-", 0), 0u) << e.path();
  const auto report = Verify({dir.str()}, Secret());
  EXPECT_TRUE(report.ok()) << Dump(report);
  EXPECT_EQ(report.journal_records, 35u);
}

// --- verify on journals ---------------------------------------------------------------

class AuditVerifyJournal : public ::testing::Test {
 protected:
  void SetUp() override {
    {
      Journal j(Options(dir_));
      AppendN(j, 1, 6);
    }  // stopped: the segment ends with its last record
    lines_ = Lines(ReadFile(FirstSegment(dir_)));
    ASSERT_EQ(lines_.size(), 6u);
  }
  VerifyReport Run() { return Verify({dir_.str()}, Secret()); }
  TempDir dir_;
  std::vector<std::string> lines_;
};

TEST_F(AuditVerifyJournal, DetectsAFlippedByte) {
  std::string data = ReadFile(FirstSegment(dir_));
  const auto pos = data.find("\"actor\":\"dr.house\"", data.find("\"seq\":3,"));
  data[pos + 10] ^= 0x01;  // dr.house -> dr/house... a one-bit change in seq 3's actor
  WriteFile(FirstSegment(dir_), data);
  const auto r = Run();
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(HasProblem(r, "journal node-a seq 3: hash mismatch (record modified)")) << Dump(r);
  EXPECT_EQ(r.problems.size(), 1u) << Dump(r);
}

TEST_F(AuditVerifyJournal, DetectsADeletedLine) {
  lines_.erase(lines_.begin() + 2);
  WriteFile(FirstSegment(dir_), JoinLines(lines_));
  const auto r = Run();
  EXPECT_TRUE(HasProblem(r, "journal node-a seq 3: missing")) << Dump(r);
}

TEST_F(AuditVerifyJournal, DetectsTheLastLinesDeletedOnlyAgainstTheTable) {
  // Without the table, a truncated tail looks like a shorter journal: that is what the
  // table copy (and verify's journal-vs-table check) is for.
  lines_.pop_back();
  WriteFile(FirstSegment(dir_), JoinLines(lines_));
  EXPECT_TRUE(Run().ok());
}

TEST_F(AuditVerifyJournal, DetectsSwappedLines) {
  std::swap(lines_[2], lines_[3]);
  WriteFile(FirstSegment(dir_), JoinLines(lines_));
  const auto r = Run();
  EXPECT_TRUE(HasProblem(r, "journal node-a seq 4: out of order (follows seq 2)")) << Dump(r);
  EXPECT_TRUE(HasProblem(r, "journal node-a seq 3: out of order (follows seq 4)")) << Dump(r);
}

TEST_F(AuditVerifyJournal, DetectsARewrittenRecordWithARecomputedHash) {
  // An attacker who edits seq 3 and recomputes its hash still breaks the link of seq 4.
  auto p = internal::ParseLine(lines_[2]);
  ASSERT_TRUE(p);
  p->record.outcome = "denied";
  p->hash = internal::ComputeHash(*p);
  lines_[2] = internal::SerializeLine(p->record, p->prev_hash, &p->hash);
  WriteFile(FirstSegment(dir_), JoinLines(lines_));
  const auto r = Run();
  EXPECT_TRUE(HasProblem(r, "journal node-a seq 4: prev_hash does not match the hash of seq 3"))
      << Dump(r);
}

TEST_F(AuditVerifyJournal, NamesAnUnparseableLine) {
  lines_[1] = lines_[1].substr(0, 40) + "\x01garbage";
  WriteFile(FirstSegment(dir_), JoinLines(lines_));
  const auto r = Run();
  EXPECT_TRUE(HasProblem(r, "journal node-a seq 2 journal-node-a-000001.jsonl:2: unparseable"))
      << Dump(r);
}

TEST_F(AuditVerifyJournal, ReadsALiveSegmentAgainPastAHoleTheWriterIsFilling) {
  // A read that overlaps the writer's copy can see a later page written and an earlier
  // one still zero: the hole (seq 3 and 4 here) is filled a moment later.
  const std::string whole = ReadFile(FirstSegment(dir_));
  const auto from = whole.find("{", whole.find("\"seq\":3,") - 10);
  const auto to = whole.find("\n", whole.find("\"seq\":4,")) + 1;
  std::string holed = whole;
  std::fill(holed.begin() + static_cast<std::ptrdiff_t>(from),
            holed.begin() + static_cast<std::ptrdiff_t>(to), '\0');
  WriteFile(FirstSegment(dir_), holed + std::string(4096, '\0'));
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::fstream f(FirstSegment(dir_), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(from));
    f.write(whole.data() + from, static_cast<std::streamsize>(to - from));
  });
  const auto r = Run();
  writer.join();
  EXPECT_TRUE(r.ok()) << Dump(r);
  EXPECT_EQ(r.journal_records, 6u);
}

TEST_F(AuditVerifyJournal, ReportsAHoleThatStays) {
  std::string data = ReadFile(FirstSegment(dir_));
  const auto from = data.find("\"seq\":3,");
  std::fill(data.begin() + static_cast<std::ptrdiff_t>(from),
            data.begin() + static_cast<std::ptrdiff_t>(from) + 20, '\0');
  WriteFile(FirstSegment(dir_), data);
  const auto r = Run();
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(HasProblem(r, "journal node-a seq 3: missing")) << Dump(r);
}

TEST(AuditFormat, ParsesRfc3339) {
  using internal::ParseRfc3339Micros;
  EXPECT_EQ(ParseRfc3339Micros("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ParseRfc3339Micros("1970-01-01T00:00:01.5Z"), 1500000);
  EXPECT_EQ(ParseRfc3339Micros("1970-01-01T01:00:00+01:00"), 0);
  EXPECT_EQ(ParseRfc3339Micros("2000-03-01T00:00:00Z"), 951868800LL * 1000000);
  EXPECT_FALSE(ParseRfc3339Micros("2001-02-29T00:00:00Z"));
  EXPECT_FALSE(ParseRfc3339Micros("2026-11-25 14:03:07Z"));
  EXPECT_FALSE(ParseRfc3339Micros("2026-11-25T14:03:07.1234567Z"));
  EXPECT_FALSE(ParseRfc3339Micros("2026-11-25T14:03:07"));
  EXPECT_TRUE(internal::ParseRfc3339Micros(internal::NowRfc3339()));
}

TEST(AuditFiles, ShipPositionRoundTripsAndRejectsGarbage) {
  TempDir dir;
  EXPECT_FALSE(internal::ReadShipPosition(dir.path(), "node-a"));
  internal::WriteShipPosition(dir.path(), "node-a", {3, 123456789012, 42});
  const auto pos = internal::ReadShipPosition(dir.path(), "node-a");
  ASSERT_TRUE(pos);
  EXPECT_EQ(pos->segment, 3u);
  EXPECT_EQ(pos->offset, 123456789012u);
  EXPECT_EQ(pos->seq, 42);
  WriteFile(internal::ShipPositionPath(dir.path(), "node-a"), "segment=1 offset=x seq=1\n");
  EXPECT_FALSE(internal::ReadShipPosition(dir.path(), "node-a"));
}

// The position file's bytes: two slots, the text of each up to its NULs.
std::string PositionSlot(const fs::path& file, int slot) {
  std::string data = ReadFile(file);
  EXPECT_EQ(data.size(), 8192u);
  std::string text = data.substr(static_cast<std::size_t>(slot) * 4096, 256);
  return text.substr(0, text.find('\0'));
}

ino_t Inode(const fs::path& file) {
  struct stat st {};
  EXPECT_EQ(::stat(file.c_str(), &st), 0);
  return st.st_ino;
}

TEST(AuditFiles, ShipPositionIsSavedInPlaceInAlternateSlots) {
  TempDir dir;
  const auto file = internal::ShipPositionPath(dir.path(), "node-a");
  internal::ShipPositionFile pos(dir.path(), "node-a");
  EXPECT_FALSE(pos.Load());
  pos.Save({1, 100, 5});  // no file yet: made whole (save 0, slot 0)
  const ino_t inode = Inode(file);
  EXPECT_EQ(PositionSlot(file, 0).substr(0, 54),
            "continuum-audit-shipped v2 gen=0 segment=1 offset=100 ");
  EXPECT_EQ(PositionSlot(file, 1), "");
  pos.Save({1, 250, 9});  // save 1: slot 1, in place
  pos.Save({2, 40, 12});  // save 2: slot 0 again
  EXPECT_EQ(Inode(file), inode) << "a save after the first must not replace the file";
  EXPECT_FALSE(fs::exists(fs::path(file.string() + ".tmp")));
  EXPECT_NE(PositionSlot(file, 1).find(" gen=1 segment=1 offset=250 seq=9 sum="),
            std::string::npos);
  EXPECT_NE(PositionSlot(file, 0).find(" gen=2 segment=2 offset=40 seq=12 sum="),
            std::string::npos);
  for (const auto& p : {internal::ReadShipPosition(dir.path(), "node-a"), pos.Load()}) {
    ASSERT_TRUE(p);
    EXPECT_EQ(p->segment, 2u);
    EXPECT_EQ(p->offset, 40u);
    EXPECT_EQ(p->seq, 12);
  }
  // Another object (a restarted node) adopts the file and goes on where it stopped.
  internal::ShipPositionFile again(dir.path(), "node-a");
  ASSERT_TRUE(again.Load());
  EXPECT_EQ(again.Load()->seq, 12);
  again.Save({2, 90, 15});
  EXPECT_EQ(Inode(file), inode);
  EXPECT_NE(PositionSlot(file, 1).find(" gen=3 segment=2 offset=90 seq=15 sum="),
            std::string::npos);
}

TEST(AuditFiles, ShipPositionSurvivesATornSlot) {
  TempDir dir;
  const auto file = internal::ShipPositionPath(dir.path(), "node-a");
  {
    internal::ShipPositionFile pos(dir.path(), "node-a");
    pos.Save({1, 100, 5});
    pos.Save({1, 250, 9});  // slot 1
  }
  // A crash in the middle of the save to slot 1: its line is cut short, or a byte differs.
  for (const std::string& torn : {std::string("continuum-audit-shipped v2 gen=1 segment=1 off"),
                                  PositionSlot(file, 1).replace(50, 1, "7")}) {  // offset=750
    std::string data = ReadFile(file);
    std::string slot = torn;
    slot.resize(256, '\0');
    data.replace(4096, 256, slot);
    WriteFile(file, data);
    auto p = internal::ReadShipPosition(dir.path(), "node-a");
    ASSERT_TRUE(p) << torn;
    EXPECT_EQ(p->offset, 100u) << "the save before the torn one";
    EXPECT_EQ(p->seq, 5);
  }
  // The next save goes to the torn slot (save 1 again), never over the good one.
  internal::ShipPositionFile pos(dir.path(), "node-a");
  EXPECT_EQ(pos.Load()->seq, 5);
  pos.Save({1, 300, 11});
  EXPECT_NE(PositionSlot(file, 1).find(" gen=1 segment=1 offset=300 seq=11 "), std::string::npos);
  EXPECT_NE(PositionSlot(file, 0).find(" gen=0 segment=1 offset=100 seq=5 "), std::string::npos);
  EXPECT_EQ(internal::ReadShipPosition(dir.path(), "node-a")->seq, 11);
  // Both slots bad: no position (everything is shipped again, harmlessly); a save makes
  // the file whole again.
  WriteFile(file, std::string(8192, 'x'));
  EXPECT_FALSE(internal::ReadShipPosition(dir.path(), "node-a"));
  internal::ShipPositionFile fresh(dir.path(), "node-a");
  EXPECT_FALSE(fresh.Load());
  fresh.Save({3, 7, 20});
  EXPECT_EQ(internal::ReadShipPosition(dir.path(), "node-a")->seq, 20);
}

TEST(AuditFiles, ShipPositionFileNoticesItsFileRemovedOrReplaced) {
  TempDir dir;
  const auto file = internal::ShipPositionPath(dir.path(), "node-a");
  internal::ShipPositionFile pos(dir.path(), "node-a");
  pos.Save({1, 100, 5});
  pos.Save({1, 200, 8});
  fs::remove(file);  // by hand, to ship everything again
  EXPECT_FALSE(pos.Load());
  pos.Save({1, 300, 9});
  EXPECT_EQ(internal::ReadShipPosition(dir.path(), "node-a")->seq, 9);
  internal::WriteShipPosition(dir.path(), "node-a", {4, 1, 30});  // renamed over it
  ASSERT_TRUE(pos.Load());
  EXPECT_EQ(pos.Load()->seq, 30);
  pos.Save({4, 2, 31});
  EXPECT_EQ(internal::ReadShipPosition(dir.path(), "node-a")->seq, 31);
}

TEST(AuditFiles, ShipPositionSlotMustSitWhereItsSaveNumberPutsIt) {
  TempDir dir;
  const auto file = internal::ShipPositionPath(dir.path(), "node-a");
  internal::ShipPositionFile pos(dir.path(), "node-a");
  pos.Save({1, 100, 5});  // save 0, slot 0
  pos.Save({1, 200, 6});  // save 1, slot 1
  // The two (valid, summed) lines swapped: neither sits where its save number puts it, so
  // neither counts; the next save (into the slot after the newest) could otherwise
  // overwrite the newest.
  std::string data = ReadFile(file);
  const std::string slot0 = data.substr(0, 256);
  data.replace(0, 256, data.substr(4096, 256));
  data.replace(4096, 256, slot0);
  WriteFile(file, data);
  EXPECT_FALSE(internal::ReadShipPosition(dir.path(), "node-a"));
  EXPECT_FALSE(pos.Load());
  pos.Save({1, 300, 7});  // replaced whole
  EXPECT_EQ(internal::ReadShipPosition(dir.path(), "node-a")->seq, 7);
  EXPECT_NE(PositionSlot(file, 0).find(" gen=0 segment=1 offset=300 seq=7 "), std::string::npos);
}

TEST(AuditFiles, ShipPositionFileRereadsAFileEditedOrMovedBehindIt) {
  TempDir dir;
  const auto file = internal::ShipPositionPath(dir.path(), "node-a");
  internal::ShipPositionFile pos(dir.path(), "node-a");
  pos.Save({1, 100, 5});
  pos.Save({1, 200, 8});
  const std::string saved = ReadFile(file);
  // Emptied in place (`: > shipped-node-a.pos`): no position, everything is shipped again.
  WriteFile(file, "");
  EXPECT_FALSE(pos.Load());
  pos.Save({1, 50, 2});
  EXPECT_EQ(internal::ReadShipPosition(dir.path(), "node-a")->seq, 2);
  // An older copy put back in place (`cp backup shipped-node-a.pos`): that is what counts.
  WriteFile(file, saved);
  ASSERT_TRUE(pos.Load());
  EXPECT_EQ(pos.Load()->seq, 8);
  WriteFile(file, "continuum-audit-shipped v1 segment=1 offset=40 seq=1\n");
  ASSERT_TRUE(pos.Load());
  EXPECT_EQ(pos.Load()->seq, 1);
  pos.Save({1, 60, 3});
  EXPECT_EQ(internal::ReadShipPosition(dir.path(), "node-a")->seq, 3);
  // Moved away (`mv`): the path has no position, and the next save writes the path again,
  // not the moved file.
  fs::rename(file, dir.path() / "moved.pos");
  EXPECT_FALSE(pos.Load());
  pos.Save({1, 70, 4});
  EXPECT_EQ(internal::ReadShipPosition(dir.path(), "node-a")->seq, 4);
  pos.Save({1, 80, 5});
  EXPECT_EQ(internal::ReadShipPosition(dir.path(), "node-a")->seq, 5);
  std::string moved = ReadFile(dir.path() / "moved.pos");
  EXPECT_NE(moved.find(" seq=3 "), std::string::npos);
  EXPECT_EQ(moved.find(" seq=5 "), std::string::npos);
}

TEST(AuditFiles, ShipPositionHoldsTheWidestNumbers) {
  TempDir dir;
  const internal::ShipPosition widest{UINT64_MAX, UINT64_MAX, LLONG_MAX};
  internal::ShipPositionFile pos(dir.path(), "node-a");
  pos.Save(widest);
  pos.Save(widest);  // and in place, as save 1
  for (int i = 0; i < 3; ++i) pos.Save(widest);
  auto p = internal::ReadShipPosition(dir.path(), "node-a");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->segment, UINT64_MAX);
  EXPECT_EQ(p->offset, UINT64_MAX);
  EXPECT_EQ(p->seq, LLONG_MAX);
}

TEST(AuditFiles, ShipPositionReadsAVersionOneFileAndReplacesItOnSave) {
  TempDir dir;
  const auto file = internal::ShipPositionPath(dir.path(), "node-a");
  WriteFile(file, "continuum-audit-shipped v1 segment=2 offset=512 seq=17\n");
  internal::ShipPositionFile pos(dir.path(), "node-a");
  ASSERT_TRUE(pos.Load());
  EXPECT_EQ(pos.Load()->offset, 512u);
  EXPECT_EQ(pos.Load()->seq, 17);
  pos.Save({2, 1024, 20});
  EXPECT_EQ(fs::file_size(file), 8192u);
  EXPECT_EQ(internal::ReadShipPosition(dir.path(), "node-a")->seq, 20);
  WriteFile(file, "continuum-audit-shipped v1 segment=2 offset=512 seq=17\nmore\n");
  EXPECT_FALSE(internal::ReadShipPosition(dir.path(), "node-a"));
}

TEST(AuditFiles, ParsesSegmentNames) {
  auto p = internal::ParseSegmentFileName("journal-node-1-000012.jsonl");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->first, "node-1");
  EXPECT_EQ(p->second, 12u);
  EXPECT_EQ(internal::SegmentFileName("node-1", 12), "journal-node-1-000012.jsonl");
  EXPECT_FALSE(internal::ParseSegmentFileName("journal-node-1.lock"));
  EXPECT_FALSE(internal::ParseSegmentFileName("journal-node-1-12.jsonl"));
  EXPECT_FALSE(internal::ParseSegmentFileName("shipped-node-1.pos"));
}

}  // namespace
}  // namespace continuum::audit
