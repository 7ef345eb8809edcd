// Issue 10 item 1 against a real PostgreSQL: the portal's role cannot change the trail,
// signed chain heads anchor each node's chain (truncation, a wholesale rewrite and a
// vanished node are caught by verify), a lost journal folder starts a new epoch instead
// of colliding with shipped rows, and `audit ship` refuses a journal a live node holds.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "audit/internal/files.hpp"
#include "audit/internal/format.hpp"
#include "audit/internal/heads.hpp"
#include "audit/journal.hpp"
#include "audit/shipper.hpp"
#include "audit/test_util.hpp"
#include "audit/verify.hpp"
#include "core/release.hpp"
#include "db/migrate.hpp"
#include "support/pg_instance.hpp"

namespace continuum::audit {
namespace {
namespace fs = std::filesystem;
using namespace audit::test_util;
using continuum::testing::PgInstance;

class AuditAnchorPg : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = &PgInstance::Shared();
    if (!pg_->running()) pg_->Start();
    url_ = pg_->FreshDatabase();
    portal_url_ = PgInstance::PortalUrl(url_);
    key_file_ = (keys_.path() / "audit-signing-node-a.key").string();
  }
  // What `continuum serve` runs: journal and shipper as the portal role, signing heads.
  JournalOptions JOptions() {
    JournalOptions o = Options(dir_);
    o.database_url = Secret(portal_url_);
    return o;
  }
  std::unique_ptr<Shipper> MakeShipper() {
    ShipperOptions so;
    so.journal_dir = dir_.str();
    so.database_url = Secret(portal_url_);
    so.signing_key_file = key_file_;
    so.head_interval_ms = 0;  // a head every round in tests
    return std::make_unique<Shipper>(std::move(so));
  }
  long long Q(const std::string& sql) { return std::stoll(pg_->QueryValue(url_, sql)); }
  // As an attacker with the owner's or a superuser's rights: triggers skipped.
  void Tamper(const std::string& sql) {
    pg_->Exec(url_, "SET session_replication_role = replica; " + sql);
  }
  // The error of `sql` run as the portal role ("" if it succeeded).
  std::string AsPortal(const std::string& sql) {
    try {
      pg_->Exec(portal_url_, sql);
      return "";
    } catch (const std::exception& e) {
      return e.what();
    }
  }
  VerifyReport RunVerify(const std::string& trusted = "") {
    return Verify({dir_.str()}, Secret(url_), trusted);
  }

  PgInstance* pg_ = nullptr;
  std::string url_, portal_url_, key_file_;
  TempDir dir_, keys_;
};

TEST_F(AuditAnchorPg, ThePortalRoleMayOnlyInsertAndReadTheTrail) {
  {
    Journal j(JOptions());
    AppendN(j, 1, 4);
    auto s = MakeShipper();
    EXPECT_EQ(s->ShipOnce(), 4u);  // INSERT as the portal role works
    EXPECT_GE(s->stats().heads, 1u);
  }
  ASSERT_EQ(Q("SELECT count(*) FROM audit_event"), 4);
  const std::string tables[] = {"audit_event", "audit_head"};
  for (const auto& t : tables) {
    SCOPED_TRACE(t);
    for (const std::string sql : {"ALTER TABLE " + t + " DISABLE TRIGGER USER", "DELETE FROM " + t,
                                  "UPDATE " + t + " SET seq = seq + 100", "TRUNCATE " + t,
                                  "ALTER TABLE " + t + " OWNER TO continuum_portal",
                                  "DROP TABLE " + t, "DROP TRIGGER " + t + "_no_update ON " + t,
                                  "SET session_replication_role = replica; DELETE FROM " + t}) {
      SCOPED_TRACE(sql);
      const std::string err = AsPortal(sql);
      EXPECT_NE(err, "") << "the portal role could run it";
      EXPECT_TRUE(err.find("permission denied") != std::string::npos ||
                  err.find("must be owner") != std::string::npos)
          << err;
    }
    EXPECT_NE(
        pg_->QueryValue(
            url_, "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = '" + t + "'"),
        "continuum_portal");
  }
  EXPECT_EQ(Q("SELECT count(*) FROM audit_event"), 4);
  EXPECT_EQ(pg_->QueryValue(url_,
                            "SELECT count(*) FROM pg_trigger WHERE tgrelid = "
                            "'audit_event'::regclass AND tgenabled = 'O'"),
            "2");
  // It keeps what the portal needs on the other tables, and cannot create its own.
  EXPECT_EQ(
      pg_->QueryValue(url_,
                      "SELECT has_table_privilege('continuum_portal', 'appointment', 'UPDATE') "
                      "AND has_table_privilege('continuum_portal', 'clinical_note', 'INSERT') "
                      "AND has_table_privilege('continuum_portal', 'session', 'DELETE')"),
      "t");
  EXPECT_NE(AsPortal("CREATE TABLE audit_event_copy (x int)"), "");
  EXPECT_NE(AsPortal("INSERT INTO schema_migrations VALUES (9999, 'x', 'x')"), "");
}

TEST_F(AuditAnchorPg, MigrateRefusesThePortalRole) {
  db::MigrateOptions o;
  o.database_url = Secret(portal_url_);
  o.migrations_dir = std::string(continuum::SourceDir()) + "/db/migrations";
  try {
    db::Migrate(o);
    FAIL() << "migrate ran as continuum_portal";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("owner role"), std::string::npos) << e.what();
  }
}

// The attacker holds the node's files and the database (owner) password: deletes the
// node's newest records from the table and the journal, and makes the shipped position
// agree. Only the signed head, which names seq 10, gives it away.
TEST_F(AuditAnchorPg, SignedHeadsRevealATruncatedTail) {
  {
    Journal j(JOptions());
    AppendN(j, 1, 10);
    auto s = MakeShipper();
    ASSERT_EQ(s->ShipOnce(), 10u);
  }
  ASSERT_EQ(Q("SELECT max(seq) FROM audit_head WHERE node_id = 'node-a'"), 10);
  ASSERT_TRUE(RunVerify().ok()) << Dump(RunVerify());

  Tamper("DELETE FROM audit_event WHERE seq > 7");
  auto lines = Lines(ReadFile(FirstSegment(dir_)));
  lines.resize(7);
  WriteFile(FirstSegment(dir_), JoinLines(lines));
  internal::WriteShipPosition(dir_.path(), "node-a",
                              {1, static_cast<std::uint64_t>(JoinLines(lines).size()), 7});

  auto r = RunVerify();
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(HasProblem(r, "signed head node-a seq 10: the chain ends at seq 7 (truncated"))
      << Dump(r);
}

// The whole chain rewritten from seq 3 on, every hash recomputed, journal and table
// alike (the genesis is public, so this was undetectable): the signed head no longer
// matches.
TEST_F(AuditAnchorPg, SignedHeadsRevealARewrittenChain) {
  {
    Journal j(JOptions());
    AppendN(j, 1, 6);
    auto s = MakeShipper();
    ASSERT_EQ(s->ShipOnce(), 6u);
  }
  auto lines = Lines(ReadFile(FirstSegment(dir_)));
  std::string prev;
  for (auto& line : lines) {
    auto p = internal::ParseLine(line);
    ASSERT_TRUE(p);
    if (p->record.seq >= 3) {
      if (p->record.seq == 3) p->record.patient_id = "pat-somebody-else";
      p->prev_hash = prev;
      p->hash = internal::ComputeHash(*p);
      line = internal::SerializeLine(p->record, p->prev_hash, &p->hash);
    }
    prev = p->hash;
  }
  WriteFile(FirstSegment(dir_), JoinLines(lines));
  Tamper("DELETE FROM audit_event WHERE node_id = 'node-a'");
  fs::remove(dir_.path() / "shipped-node-a.pos");
  {
    Shipper plain(dir_.str(), Secret(url_), 1000);
    ASSERT_EQ(plain.ShipOnce(), 6u);
  }
  auto r = RunVerify();
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(HasProblem(r,
                         "signed head node-a seq 6: the chain's record differs from the "
                         "signed head (chain rewritten)"))
      << Dump(r);
}

// A node's folder and its rows are gone (owner rights): its signed heads remain.
TEST_F(AuditAnchorPg, SignedHeadsRevealAVanishedNode) {
  {
    Journal j(JOptions());
    AppendN(j, 1, 3);
    auto s = MakeShipper();
    ASSERT_EQ(s->ShipOnce(), 3u);
  }
  Tamper("DELETE FROM audit_event WHERE node_id = 'node-a'");
  for (const auto& e : fs::directory_iterator(dir_.path())) fs::remove(e.path());
  auto r = RunVerify();
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(HasProblem(r, "signed head node-a seq 3: the node has no rows and no journal"))
      << Dump(r);
}

// Heads are only as good as the keys: a head signed by another key than the trusted
// one, or altered after signing, is a problem.
TEST_F(AuditAnchorPg, ForgedOrAlteredHeadsAreRejected) {
  {
    Journal j(JOptions());
    AppendN(j, 1, 2);
    auto s = MakeShipper();
    ASSERT_EQ(s->ShipOnce(), 2u);
  }
  const std::string pk = SigningPublicKey(key_file_);
  const auto trusted = keys_.path() / "trusted";
  WriteFile(trusted, "# node keys\nnode-a " + pk + "\n");
  ASSERT_TRUE(RunVerify(trusted.string()).ok()) << Dump(RunVerify(trusted.string()));

  // An attacker's own key signs a valid head for seq 1 (the real hash): not trusted.
  const auto other = internal::LoadOrCreateSigningKey((keys_.path() / "other.key").string());
  const std::string hash = pg_->QueryValue(url_, "SELECT hash FROM audit_event WHERE seq = 1");
  const std::string at = "2026-01-01T00:00:00.000Z";
  const std::string sig =
      internal::SignHex(other, internal::HeadMessage("head", "node-a", 1, hash, at));
  pg_->Exec(portal_url_,
            "INSERT INTO audit_head (node_id, kind, seq, hash, signed_at, public_key, signature) "
            "VALUES ('node-a', 'head', 1, '" +
                hash + "', '" + at + "', '" + other.public_hex() + "', '" + sig + "')");
  auto r = RunVerify(trusted.string());
  EXPECT_TRUE(HasProblem(r, "signed head node-a seq 1: signed by a key not trusted")) << Dump(r);
  EXPECT_FALSE(HasProblem(r, "seq 2")) << Dump(r);
  // Without pinned keys, the node's first key is trusted: the newcomer is still refused.
  r = RunVerify();
  EXPECT_TRUE(HasProblem(r, "signed head node-a seq 1: signed by another key")) << Dump(r);
  // A stored head altered after signing (owner rights).
  Tamper("UPDATE audit_head SET hash = '" + std::string(64, 'a') + "' WHERE seq = 2");
  r = RunVerify(trusted.string());
  EXPECT_TRUE(HasProblem(r, "signed head node-a seq 2: bad signature")) << Dump(r);
}

// A lost journal folder used to restart at seq 1: its records collided with the shipped
// rows and ON CONFLICT DO NOTHING dropped them. Now the node starts a new epoch.
TEST_F(AuditAnchorPg, ALostJournalFolderStartsANewEpochInsteadOfColliding) {
  {
    Journal j(JOptions());
    AppendN(j, 1, 5);
    auto s = MakeShipper();
    ASSERT_EQ(s->ShipOnce(), 5u);
  }
  for (const auto& e : fs::directory_iterator(dir_.path())) fs::remove_all(e.path());
  {
    Journal j(JOptions());
    AppendN(j, 100, 3);
    EXPECT_EQ(j.stats().epoch_start_seq, 6);
    EXPECT_EQ(j.stats().last_seq, 8);
    auto s = MakeShipper();
    EXPECT_EQ(s->ShipOnce(), 3u);
  }
  EXPECT_EQ(Q("SELECT count(*) FROM audit_event WHERE node_id = 'node-a'"), 8);
  EXPECT_EQ(Q("SELECT count(*) FROM audit_event WHERE request_id = 'req-100'"), 1);
  EXPECT_EQ(Q("SELECT seq FROM audit_head WHERE kind = 'epoch'"), 6);
  auto r = RunVerify();
  EXPECT_TRUE(r.ok()) << Dump(r);
  bool noted = false;
  for (const auto& n : r.notes) noted = noted || n.find("new journal epoch") != std::string::npos;
  EXPECT_TRUE(noted) << Dump(r);

  // A folder replaced by an older copy (ends at seq 8; the table holds more) too.
  const auto copy = keys_.path() / "copy";
  fs::copy(dir_.path(), copy, fs::copy_options::recursive);
  {
    Journal j(JOptions());
    AppendN(j, 200, 2);
    auto s = MakeShipper();
    s->ShipOnce();
  }
  fs::remove_all(dir_.path());
  fs::copy(copy, dir_.path(), fs::copy_options::recursive);
  {
    Journal j(JOptions());
    AppendN(j, 300, 1);
    EXPECT_EQ(j.stats().epoch_start_seq, 11);
    auto s = MakeShipper();
    EXPECT_EQ(s->ShipOnce(), 1u);
  }
  EXPECT_EQ(Q("SELECT count(*) FROM audit_event WHERE request_id = 'req-300'"), 1);
  r = RunVerify();
  EXPECT_TRUE(r.ok()) << Dump(r);
}

TEST_F(AuditAnchorPg, ANewJournalFolderIsRefusedWhileTheDatabaseCannotBeAsked) {
  JournalOptions o = Options(dir_);
  o.database_url = Secret("postgresql://continuum_portal@127.0.0.1:1/none?connect_timeout=1");
  o.database_wait_ms = 2500;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    Journal j(o);
    FAIL() << "a new journal started unchecked";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("refusing to start"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("3 attempts"), std::string::npos) << e.what();
  }
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2))
      << "it waited for the database before refusing";
  EXPECT_FALSE(fs::exists(dir_.path() / "journal-node-a-000001.jsonl"))
      << "a refused open leaves no segment behind";
  o.database_wait_ms = 0;
  EXPECT_THROW(Journal again(o), std::runtime_error) << "the next open is as careful";
}

// `continuum audit ship` runs in another process than the node: only the node knows how
// much of its journal is durable, so ship refuses a journal whose lock is held.
TEST_F(AuditAnchorPg, ShipRefusesAJournalALiveNodeHolds) {
  ShipperOptions so;
  so.journal_dir = dir_.str();
  so.database_url = Secret(portal_url_);
  so.take_journal_locks = true;
  {
    Journal j(Options(dir_));
    AppendN(j, 1, 2);
    Shipper cli(so);
    try {
      cli.ShipOnce();
      FAIL() << "ship read a live journal";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find("open by a running node"), std::string::npos)
          << e.what();
    }
    EXPECT_EQ(Q("SELECT count(*) FROM audit_event"), 0);
  }
  Shipper cli(so);
  EXPECT_EQ(cli.ShipOnce(), 2u);  // once the node is gone
}

}  // namespace
}  // namespace continuum::audit
