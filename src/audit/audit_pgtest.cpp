// The audit trail against a real PostgreSQL: shipping, outages, the append-only table,
// and verify's journal-versus-table checks.
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "audit/internal/format.hpp"
#include "audit/journal.hpp"
#include "audit/shipper.hpp"
#include "audit/test_util.hpp"
#include "audit/verify.hpp"
#include "support/closing_listener.hpp"
#include "support/pg_instance.hpp"

namespace continuum::audit {
namespace {
namespace fs = std::filesystem;
using namespace audit::test_util;
using continuum::testing::PgInstance;

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

class AuditPg : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = &PgInstance::Shared();
    if (!pg_->running()) pg_->Start();  // an outage test may have stopped it
    url_ = pg_->FreshDatabase();
  }
  long long Rows() { return std::stoll(pg_->QueryValue(url_, "SELECT count(*) FROM audit_event")); }
  VerifyReport RunVerify() { return Verify({dir_.str()}, Secret(url_)); }
  // As an attacker with superuser rights: session_replication_role = replica skips the
  // append-only triggers.
  void Tamper(const std::string& sql) {
    pg_->Exec(url_, "SET session_replication_role = replica; " + sql);
  }

  PgInstance* pg_ = nullptr;
  std::string url_;
  TempDir dir_;
};

TEST_F(AuditPg, ShipsEveryRecordOnceAcrossSegments) {
  Journal j(Options(dir_, 4096));
  AppendN(j, 1, 20);
  Record login;
  login.action = "login";
  login.actor = "alice";
  login.role = "patient";
  login.outcome = "denied";
  login.detail = "bad password";
  AppendSync(j, {login});
  ASSERT_GE(Segments(dir_).size(), 3u);

  Shipper s(dir_.str(), Secret(url_), 1000);
  EXPECT_EQ(s.ShipOnce(), 21u);
  EXPECT_EQ(Rows(), 21);
  EXPECT_EQ(s.ShipOnce(), 0u);  // idempotent: nothing new
  EXPECT_EQ(Rows(), 21);
  EXPECT_TRUE(s.stats().database_reachable);
  EXPECT_EQ(s.stats().backlog, 0u);

  // Losing the position re-sends everything; ON CONFLICT keeps the rows once.
  fs::remove(dir_.path() / "shipped-node-a.pos");
  EXPECT_EQ(s.ShipOnce(), 21u);
  EXPECT_EQ(Rows(), 21);
  EXPECT_EQ(s.stats().shipped, 42u);

  // Each row's columns give its exact journal line back, so no row carries the line
  // itself (`record` NULL); verify below rebuilds each and compares it with the journal.
  std::vector<std::string> lines;
  for (const auto& seg : Segments(dir_)) {
    for (auto& l : Lines(ReadFile(seg))) lines.push_back(std::move(l));
  }
  ASSERT_EQ(lines.size(), 21u);
  EXPECT_EQ(pg_->QueryValue(url_, "SELECT count(*) FROM audit_event WHERE record IS NULL"), "21");
  const auto row7 = internal::ParseLine(lines[6]);
  ASSERT_TRUE(row7);
  EXPECT_EQ(
      internal::RebuildLine(
          row7->record,
          std::stoll(pg_->QueryValue(url_,
                                     "SELECT (extract(epoch FROM recorded_at) * 1000000)::bigint "
                                     "FROM audit_event WHERE seq = 7")),
          pg_->QueryValue(url_, "SELECT prev_hash FROM audit_event WHERE seq = 7"),
          pg_->QueryValue(url_, "SELECT hash FROM audit_event WHERE seq = 7")),
      lines[6]);
  EXPECT_EQ(pg_->QueryValue(url_, "SELECT patient_id FROM audit_event WHERE seq = 7"), "pat-0");
  EXPECT_EQ(pg_->QueryValue(url_,
                            "SELECT concat_ws('|', node_id, region, actor, action, outcome, "
                            "detail, coalesce(resource_type, 'NULL'), purpose_of_use) "
                            "FROM audit_event WHERE seq = 21"),
            "node-a|eu-1|alice|login|denied|bad password|NULL|TREAT");
  EXPECT_EQ(pg_->QueryValue(url_,
                            "SELECT count(*) FROM audit_event WHERE recorded_at > "
                            "now() - interval '1 hour' AND recorded_at < now()"),
            "21");

  AppendN(j, 22, 5);
  EXPECT_EQ(s.ShipOnce(), 5u);
  EXPECT_EQ(Rows(), 26);
  const auto report = RunVerify();
  EXPECT_TRUE(report.ok()) << Dump(report);
  EXPECT_EQ(report.table_rows, 26u);
  EXPECT_EQ(report.journal_records, 26u);
}

TEST_F(AuditPg, ShipsPastAHostThatAcceptsAndCloses) {
  // The node's database URL names its own region first; a proxy in front of a stopped
  // database there accepts and resets, and libpq ends the connect at it (db/hosts.hpp).
  testing::ClosingListener closing;
  Journal j(Options(dir_, 4096));
  AppendN(j, 1, 5);
  Shipper s(dir_.str(), Secret(closing.InFrontOf(url_)), 1000);
  EXPECT_EQ(s.ShipOnce(), 5u);
  EXPECT_EQ(Rows(), 5);
  EXPECT_TRUE(s.stats().database_reachable);
  EXPECT_GE(closing.accepted(), 1) << "the closing host was not tried first";
}

// The rows go over in COPY's binary format: text that COPY's text format would have to
// escape (tab, newline, backslash, "\N"), text beyond ASCII, optional fields left empty
// (NULL) and the timestamp must arrive exactly as the journal holds them.
TEST_F(AuditPg, ShipsEveryByteOfEveryFieldAndTheExactTimestamp) {
  Journal j(Options(dir_));
  Record odd;
  odd.request_id = "req\\N";
  odd.actor = "Zoë\tO'Brien\\";
  odd.role = "provider";
  odd.action = "read";
  odd.resource_type = "Patient";
  odd.resource_id = "7";
  odd.patient_id = "7";
  odd.client_address = "2001:db8::1";
  odd.purpose_of_use = "ETREAT";
  odd.outcome = "success";
  odd.detail = "line one\nline two\r\n\\N \xe2\x9c\x93";
  Record bare;  // no resource, patient or detail: NULL in the table
  bare.action = "logout";
  bare.outcome = "success";
  Record ascii = odd;  // every escape the writer makes, no non-ASCII: rebuilt from columns
  ascii.actor = "O'Brien\t\\ \"q\"";
  ascii.detail = "line one\nline two\r\n\\N \x01\x7f\x1f";
  AppendSync(j, {odd, bare, ascii});

  Shipper s(dir_.str(), Secret(url_), 1000);
  EXPECT_EQ(s.ShipOnce(), 3u);
  EXPECT_EQ(pg_->QueryValue(url_, "SELECT detail FROM audit_event WHERE seq = 3"), ascii.detail);
  EXPECT_EQ(pg_->QueryValue(url_, "SELECT actor FROM audit_event WHERE seq = 1"), odd.actor);
  EXPECT_EQ(pg_->QueryValue(url_, "SELECT detail FROM audit_event WHERE seq = 1"), odd.detail);
  EXPECT_EQ(pg_->QueryValue(url_, "SELECT request_id FROM audit_event WHERE seq = 1"),
            odd.request_id);
  EXPECT_EQ(pg_->QueryValue(url_,
                            "SELECT concat_ws('|', resource_type IS NULL, resource_id IS NULL, "
                            "patient_id IS NULL, detail IS NULL) FROM audit_event WHERE seq = 2"),
            "t|t|t|t");
  // The line with non-ASCII text keeps its record (the direct reader does not vouch that
  // the columns give it back); the plain one is rebuilt from its columns.
  EXPECT_EQ(pg_->QueryValue(url_,
                            "SELECT string_agg(seq || ':' || (record IS NULL), ',' ORDER BY seq) "
                            "FROM audit_event"),
            "1:false,2:true,3:true");
  // recorded_at equals the journal's value to the microsecond, read back both ways.
  EXPECT_EQ(pg_->QueryValue(url_,
                            "SELECT count(*) FROM audit_event WHERE recorded_at = "
                            "(record::json->>'recorded_at')::timestamptz"),
            "1");
  const auto report = RunVerify();
  EXPECT_TRUE(report.ok()) << Dump(report);
  EXPECT_EQ(report.table_rows, 3u);
}

// A line the journal accepts but the table refuses (a data exception, SQLSTATE class 22;
// here a trigger raises one for actor "bob", as a future constraint or a value out of the
// database's range would) must not block the trail: the batch is inserted line by line,
// the refused line is skipped (it stays in the journal; verify reports it missing) and
// every other line of the batch, before and after it, is shipped once.
TEST_F(AuditPg, ALineTheTableRefusesIsSkippedAndTheRestOfItsBatchShipped) {
  pg_->Exec(url_,
            "CREATE FUNCTION refuse_bob() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.actor = 'bob' THEN RAISE EXCEPTION 'refused' USING ERRCODE = '22023'; "
            "END IF; RETURN NEW; END $$; "
            "CREATE TRIGGER refuse_bob BEFORE INSERT ON audit_event FOR EACH ROW "
            "EXECUTE FUNCTION refuse_bob()");
  Journal j(Options(dir_));
  AppendN(j, 1, 3);
  Record odd;
  odd.action = "read";
  odd.actor = "bob";
  odd.role = "provider";
  odd.outcome = "success";
  AppendSync(j, {odd});
  AppendN(j, 5, 3);

  Shipper s(dir_.str(), Secret(url_), 1000);
  EXPECT_EQ(s.ShipOnce(), 7u);  // read and handled: six inserted, one refused
  EXPECT_EQ(Rows(), 6);
  EXPECT_EQ(
      pg_->QueryValue(url_, "SELECT string_agg(seq::text, ',' ORDER BY seq) FROM audit_event"),
      "1,2,3,5,6,7");
  EXPECT_EQ(s.ShipOnce(), 0u);  // the position moved past it
  EXPECT_EQ(Rows(), 6);
}

TEST_F(AuditPg, CatchesUpAfterTheDatabaseWasDown) {
  Journal j(Options(dir_));
  Shipper s(dir_.str(), Secret(url_), 50);
  s.Start();
  AppendN(j, 1, 10);
  ASSERT_TRUE(WaitFor([&] { return Rows() == 10; }, std::chrono::seconds(10)));

  pg_->Stop();
  AppendN(j, 11, 10);  // auditing goes on: the journal does not need the database
  ASSERT_TRUE(WaitFor([&] { return !s.stats().database_reachable && s.stats().failures > 0; },
                      std::chrono::seconds(10)));
  ASSERT_TRUE(WaitFor([&] { return s.stats().backlog == 10; }, std::chrono::seconds(5)))
      << s.stats().backlog;
  const auto failures = s.stats().failures;
  EXPECT_TRUE(WaitFor([&] { return s.stats().failures > failures; }, std::chrono::seconds(10)))
      << "the shipper stopped retrying";

  pg_->Start();
  ASSERT_TRUE(WaitFor([&] { return Rows() == 20; }, std::chrono::seconds(15)));
  EXPECT_TRUE(WaitFor([&] { return s.stats().database_reachable && s.stats().backlog == 0; },
                      std::chrono::seconds(5)));
  s.Stop();
  j.Stop();
  const auto report = RunVerify();
  EXPECT_TRUE(report.ok()) << Dump(report);
  EXPECT_EQ(report.table_rows, 20u);
}

TEST_F(AuditPg, ANewJournalWaitsForTheDatabaseToStart) {
  pg_->Stop();
  std::thread starter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    pg_->Start();
  });
  JournalOptions o = Options(dir_);
  o.database_url = Secret(url_);
  o.database_wait_ms = 30000;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    Journal j(o);
    AppendN(j, 1, 2);
    EXPECT_EQ(j.stats().last_seq, 2);
  } catch (const std::exception& e) {
    ADD_FAILURE() << e.what();
  }
  starter.join();
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1400));
}

TEST_F(AuditPg, ShipOnceThrowsAndKeepsItsPositionWhileTheDatabaseIsUnreachable) {
  Journal j(Options(dir_));
  AppendN(j, 1, 4);
  Shipper s(dir_.str(), Secret(url_), 1000);
  EXPECT_EQ(s.ShipOnce(), 4u);
  AppendN(j, 5, 3);
  pg_->Kill();
  EXPECT_THROW(s.ShipOnce(), std::runtime_error);
  EXPECT_THROW(s.ShipOnce(), std::runtime_error);
  EXPECT_EQ(s.stats().failures, 2u);
  EXPECT_FALSE(s.stats().database_reachable);
  EXPECT_EQ(s.stats().backlog, 3u);
  pg_->Start();
  EXPECT_EQ(s.ShipOnce(), 3u);  // the stale connection is replaced at once
  EXPECT_EQ(Rows(), 7);
  EXPECT_TRUE(s.stats().database_reachable);
  EXPECT_EQ(s.stats().backlog, 0u);
}

// A segment cut below its shipped position is shipped again from its start (the table's
// rows stay; verify reports what the journal lost), and the warning says so once, not
// again each time the batch is read while the database is away.
TEST_F(AuditPg, ASegmentCutBelowItsShippedPositionIsShippedAgainAndSaidOnce) {
  {
    Journal j(Options(dir_));
    AppendN(j, 1, 6);
  }
  Shipper s(dir_.str(), Secret(url_), 1000);
  ASSERT_EQ(s.ShipOnce(), 6u);
  auto lines = Lines(ReadFile(FirstSegment(dir_)));
  lines.resize(4);
  WriteFile(FirstSegment(dir_), JoinLines(lines));

  auto ring = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
  spdlog::default_logger()->sinks().push_back(ring);
  pg_->Kill();
  EXPECT_THROW(s.ShipOnce(), std::runtime_error);
  EXPECT_THROW(s.ShipOnce(), std::runtime_error);
  pg_->Start();
  EXPECT_EQ(s.ShipOnce(), 4u);
  EXPECT_EQ(s.ShipOnce(), 0u);
  spdlog::default_logger()->sinks().pop_back();
  int warnings = 0;
  for (const auto& m : ring->last_formatted()) {
    if (m.find("is shorter than its shipped position") != std::string::npos) ++warnings;
  }
  EXPECT_EQ(warnings, 1);
  EXPECT_EQ(Rows(), 6);
}

TEST_F(AuditPg, TheDatabaseRefusesUpdateDeleteAndTruncate) {
  Journal j(Options(dir_));
  AppendN(j, 1, 3);
  Shipper s(dir_.str(), Secret(url_), 1000);
  ASSERT_EQ(s.ShipOnce(), 3u);
  for (const char* sql : {"UPDATE audit_event SET outcome = 'success' WHERE seq = 2",
                          "DELETE FROM audit_event WHERE seq = 3", "TRUNCATE audit_event"}) {
    try {
      pg_->Exec(url_, sql);
      ADD_FAILURE() << "accepted: " << sql;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("append-only"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(Rows(), 3);
  EXPECT_TRUE(RunVerify().ok());
}

TEST_F(AuditPg, VerifyPassesOnACleanTrailAndNotesWhatIsNotYetShipped) {
  Journal j(Options(dir_));
  AppendN(j, 1, 5);
  Shipper s(dir_.str(), Secret(url_), 1000);
  ASSERT_EQ(s.ShipOnce(), 5u);
  AppendN(j, 6, 3);
  const auto report = RunVerify();
  EXPECT_TRUE(report.ok()) << Dump(report);
  EXPECT_EQ(report.journal_records, 8u);
  EXPECT_EQ(report.table_rows, 5u);
  EXPECT_EQ(report.not_yet_shipped, 3u);
  // (and that this shipper signs no heads: the chain is not anchored)
  ASSERT_EQ(report.notes.size(), 2u) << Dump(report);
  EXPECT_EQ(report.notes[0], "journal node-a seq 6..8: not yet shipped");
  EXPECT_NE(report.notes[1].find("no signed head"), std::string::npos) << Dump(report);
}

class AuditPgTamper : public AuditPg {
 protected:
  void SetUp() override {
    AuditPg::SetUp();
    {
      Journal j(Options(dir_));
      AppendN(j, 1, 6);
    }
    Shipper s(dir_.str(), Secret(url_), 1000);
    ASSERT_EQ(s.ShipOnce(), 6u);
    const auto clean = RunVerify();
    ASSERT_TRUE(clean.ok()) << Dump(clean);
  }
};

TEST_F(AuditPgTamper, ReportsAnAlteredColumn) {
  // The rows carry no record: the line rebuilt from the altered columns no longer hashes
  // to the row's hash, nor matches the journal.
  Tamper("UPDATE audit_event SET outcome = 'denied' WHERE seq = 3");
  Tamper("UPDATE audit_event SET patient_id = 'pat-999' WHERE seq = 5");
  const auto r = RunVerify();
  EXPECT_FALSE(r.ok());
  for (const char* seq : {"3", "5"}) {
    const std::string row = std::string("table node-a seq ") + seq + ": ";
    EXPECT_TRUE(HasProblem(r, row + "hash mismatch (row modified)")) << Dump(r);
    EXPECT_TRUE(HasProblem(r, row + "row differs from the journal line")) << Dump(r);
  }
  EXPECT_EQ(r.problems.size(), 4u) << Dump(r);
}

// What a line rebuilt from the columns cannot show is checked apart: a time moved by less
// than a millisecond, an optional column set to "" instead of NULL.
TEST_F(AuditPgTamper, ReportsWhatTheRebuiltLineCannotShow) {
  Tamper(
      "UPDATE audit_event SET recorded_at = recorded_at + interval '1 microsecond' "
      "WHERE seq = 2");
  Tamper("UPDATE audit_event SET detail = '' WHERE seq = 4");
  const auto r = RunVerify();
  EXPECT_TRUE(HasProblem(r, "table node-a seq 2: column recorded_at is not on a millisecond"))
      << Dump(r);
  EXPECT_TRUE(HasProblem(r, "table node-a seq 4: column detail is empty, not NULL")) << Dump(r);
  EXPECT_EQ(r.problems.size(), 2u) << Dump(r);
}

// Lines the columns do not give back byte for byte (here: a recorded_at with microseconds,
// which a caller may set) keep their record, and a column is checked against it.
TEST_F(AuditPg, ReportsAColumnThatDiffersFromTheRecordTheRowKept) {
  {
    Journal j(Options(dir_));
    for (int i = 1; i <= 3; ++i) {
      Record r = MakeRecord(i);
      r.recorded_at = "2026-12-06T20:01:0" + std::to_string(i) + ".123456Z";
      AppendSync(j, {r});
    }
  }
  Shipper s(dir_.str(), Secret(url_), 1000);
  ASSERT_EQ(s.ShipOnce(), 3u);
  EXPECT_EQ(pg_->QueryValue(url_, "SELECT count(*) FROM audit_event WHERE record IS NOT NULL"),
            "3");
  const auto clean = RunVerify();
  EXPECT_TRUE(clean.ok()) << Dump(clean);
  Tamper("UPDATE audit_event SET outcome = 'denied' WHERE seq = 2");
  // A DBA drops a kept record: the line rebuilt from the columns is not the hashed one.
  Tamper("UPDATE audit_event SET record = NULL WHERE seq = 3");
  // NULL to "" in an optional column: the record reads both alike, the shipper writes NULL.
  Tamper("UPDATE audit_event SET detail = '' WHERE seq = 1");
  const auto r = RunVerify();
  EXPECT_TRUE(HasProblem(r, "table node-a seq 1: column detail is empty, not NULL")) << Dump(r);
  EXPECT_TRUE(HasProblem(r, "table node-a seq 2: column outcome differs from its record"))
      << Dump(r);
  EXPECT_TRUE(HasProblem(r, "table node-a seq 3: hash mismatch (row modified)")) << Dump(r);
  EXPECT_TRUE(HasProblem(r, "table node-a seq 3: column recorded_at is not on a millisecond"))
      << Dump(r);
  EXPECT_TRUE(HasProblem(r, "table node-a seq 3: row differs from the journal line")) << Dump(r);
  EXPECT_EQ(r.problems.size(), 5u) << Dump(r);
}

// Rows leave `record` out only where every reader can rebuild it: the column is nullable
// (0023) and no live node runs a release built before that (its verify could not).
TEST_F(AuditPg, RowsKeepTheirRecordWhileTheTableOrALiveOlderNodeNeedsIt) {
  Journal j(Options(dir_));
  auto nulls = [&] {
    return pg_->QueryValue(url_,
                           "SELECT string_agg((record IS NULL)::text, ',' ORDER BY seq) "
                           "FROM audit_event");
  };
  // A database not migrated that far: every record.
  pg_->Exec(url_, "ALTER TABLE audit_event ALTER COLUMN record SET NOT NULL");
  AppendN(j, 1, 2);
  {
    Shipper s(dir_.str(), Secret(url_), 1000);
    ASSERT_EQ(s.ShipOnce(), 2u);
  }
  pg_->Exec(url_, "ALTER TABLE audit_event ALTER COLUMN record DROP NOT NULL");
  // A live node of the release before (schema 22): still every record.
  pg_->Exec(url_,
            "INSERT INTO continuum_node (instance_id, node_id, region, version, schema_version) "
            "VALUES ('old-1', 'node-z', 'eu-1', 'v-old', 22)");
  AppendN(j, 3, 1);
  {
    Shipper s(dir_.str(), Secret(url_), 1000);
    ASSERT_EQ(s.ShipOnce(), 1u);
  }
  // That node's heartbeat is a minute old (it is gone): the next rows are rebuilt.
  pg_->Exec(url_, "UPDATE continuum_node SET heartbeat_at = now() - interval '1 minute'");
  AppendN(j, 4, 2);
  {
    Shipper s(dir_.str(), Secret(url_), 1000);
    ASSERT_EQ(s.ShipOnce(), 2u);
  }
  EXPECT_EQ(nulls(), "false,false,false,true,true");
  const auto r = RunVerify();
  EXPECT_TRUE(r.ok()) << Dump(r);
  EXPECT_EQ(r.table_rows, 5u);
}

TEST_F(AuditPgTamper, ReportsARewrittenRowEvenWithARecomputedHash) {
  // The attacker rewrites row 4 consistently (a record, columns and hash) and row 2's
  // columns and hash (no record, as shipped): the table no longer matches the journal,
  // and rows 3 and 5 no longer link to them.
  const auto lines = Lines(ReadFile(FirstSegment(dir_)));
  auto p2 = internal::ParseLine(lines[1]);
  ASSERT_TRUE(p2);
  p2->record.actor = "mallory";
  p2->hash = internal::ComputeHash(*p2);
  Tamper("UPDATE audit_event SET actor = 'mallory', hash = '" + p2->hash + "' WHERE seq = 2");
  auto p = internal::ParseLine(lines[3]);
  ASSERT_TRUE(p);
  p->record.outcome = "denied";
  p->hash = internal::ComputeHash(*p);
  const auto forged = internal::SerializeLine(p->record, p->prev_hash, &p->hash);
  Tamper("UPDATE audit_event SET outcome = 'denied', hash = '" + p->hash + "', record = '" +
         forged + "' WHERE seq = 4");
  const auto r = RunVerify();
  EXPECT_TRUE(HasProblem(r, "table node-a seq 4: row differs from the journal line")) << Dump(r);
  EXPECT_TRUE(HasProblem(r, "table node-a seq 5: prev_hash does not match the hash of seq 4"))
      << Dump(r);
  EXPECT_TRUE(HasProblem(r, "table node-a seq 2: row differs from the journal line")) << Dump(r);
  EXPECT_TRUE(HasProblem(r, "table node-a seq 3: prev_hash does not match the hash of seq 2"))
      << Dump(r);
  EXPECT_EQ(r.problems.size(), 4u) << Dump(r);
}

TEST_F(AuditPgTamper, ReportsADeletedRow) {
  Tamper("DELETE FROM audit_event WHERE seq = 2");
  const auto r = RunVerify();
  EXPECT_TRUE(HasProblem(r, "table node-a seq 2: missing from the table although shipped"))
      << Dump(r);
}

TEST_F(AuditPgTamper, ReportsTheJournalsLastLinesDeleted) {
  auto lines = Lines(ReadFile(FirstSegment(dir_)));
  lines.resize(4);
  WriteFile(FirstSegment(dir_), JoinLines(lines));
  const auto r = RunVerify();
  EXPECT_TRUE(HasProblem(r, "table node-a seq 5: not in the journal")) << Dump(r);
  EXPECT_TRUE(HasProblem(r, "table node-a seq 6: not in the journal")) << Dump(r);
}

TEST_F(AuditPgTamper, ReportsAChangedJournalByte) {
  std::string data = ReadFile(FirstSegment(dir_));
  const auto pos = data.find("\"outcome\":\"success\"", data.find("\"seq\":3,"));
  data[pos + 11] = 'S';
  WriteFile(FirstSegment(dir_), data);
  const auto r = RunVerify();
  EXPECT_TRUE(HasProblem(r, "journal node-a seq 3: hash mismatch (record modified)")) << Dump(r);
  EXPECT_TRUE(HasProblem(r, "table node-a seq 3: row differs from the journal line")) << Dump(r);
}

TEST_F(AuditPg, ShipperCountsFailuresWhenTheDatabaseNeverAnswers) {
  Journal j(Options(dir_));
  AppendN(j, 1, 2);
  Shipper s(dir_.str(), Secret("postgresql://postgres@127.0.0.1:1/continuum"), 1000);
  EXPECT_THROW(s.ShipOnce(), std::runtime_error);
  EXPECT_EQ(s.stats().failures, 1u);
  EXPECT_FALSE(s.stats().database_reachable);
  EXPECT_EQ(s.stats().backlog, 2u);
  EXPECT_FALSE(fs::exists(dir_.path() / "shipped-node-a.pos"));
  const auto r = Verify({dir_.str()}, Secret("postgresql://postgres@127.0.0.1:1/continuum"));
  EXPECT_TRUE(HasProblem(r, "database: ")) << Dump(r);
}

}  // namespace
}  // namespace continuum::audit
