// `continuum seed`: streams a deterministic synthetic population (seed/population.hpp)
// into PostgreSQL with COPY FROM STDIN, table by table.
//
// One transaction for the whole load: a seed either lands completely or not at all, so a
// failed run can simply be repeated (the emptiness check would otherwise refuse a
// half-loaded database). Within it:
//  - the target tables are locked and must be empty (clear error otherwise);
//  - they are TRUNCATEd (a no-op on empty tables) so that COPY ... FREEZE can write the
//    rows frozen and all-visible: no anti-wraparound vacuum rewriting millions of rows
//    later, index-only scans work right away;
//  - as a superuser, foreign-key triggers are skipped (session_replication_role =
//    replica): the rows are consistent by construction, and per-row FK checks would
//    dominate the load time; otherwise they run normally;
//  - sequences are moved past the seeded ids if they are not already (they start at
//    1e12, far above any seeded id).
// After COMMIT the tables are ANALYZEd so the planner knows their size.
#include "seed/seed.hpp"

#include <libpq-fe.h>
#include <sodium.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

#include "auth/password.hpp"
#include "seed/content.hpp"
#include "seed/population.hpp"

namespace continuum::seed {
namespace {

constexpr size_t kFlushBytes = 4 << 20;  // COPY data is sent in ~4 MiB chunks
constexpr const char* kDemoPassword = "continuum-demo";

// Every table the seed writes, in load order (parents first). clinical_note and session
// reference them and are truncated with them (so they must be empty too).
constexpr const char* kSeededTables[] = {"facility",          "practitioner", "patient",
                                         "care_relationship", "allergy",      "medication",
                                         "condition",         "encounter",    "account"};
constexpr const char* kDependentTables[] = {
    "clinical_note", "session",  "appointment",     "slot",        "message", "job",
    "invoice",       "coverage", "medication_fill", "notification"};

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

std::string Trimmed(const char* s) {
  std::string out = s ? s : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

Result Exec(PGconn* conn, const std::string& sql) {
  Result r(PQexec(conn, sql.c_str()));
  const auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error("seed: " + Trimmed(PQerrorMessage(conn)));
  }
  return r;
}

std::string Value(PGconn* conn, const std::string& sql) {
  Result r = Exec(conn, sql);
  if (PQntuples(r.get()) == 0 || PQgetisnull(r.get(), 0, 0)) return "";
  return PQgetvalue(r.get(), 0, 0);
}

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// "seed: patients 400000/2000000 (20%) 12.3 s" every ~5% of the patients.
class Progress {
 public:
  Progress(bool enabled, const char* table, int64_t total, Clock::time_point start)
      : enabled_(enabled),
        table_(table),
        total_(total),
        start_(start),
        step_(total / 20 > 0 ? total / 20 : 1),
        next_(step_) {}

  void Tick(int64_t done, int64_t rows) {
    if (!enabled_ || done < next_) return;
    while (next_ <= done) next_ += step_;
    if (done >= total_) return;  // Done() prints the final line
    std::fprintf(stderr, "seed: %s %lld/%lld (%d%%) %lld rows %.1f s\n", table_,
                 static_cast<long long>(done), static_cast<long long>(total_),
                 static_cast<int>(done * 100 / total_), static_cast<long long>(rows),
                 SecondsSince(start_));
  }
  void Done(int64_t rows) {
    if (!enabled_) return;
    std::fprintf(stderr, "seed: %s %lld/%lld (100%%) %lld rows %.1f s\n", table_,
                 static_cast<long long>(total_), static_cast<long long>(total_),
                 static_cast<long long>(rows), SecondsSince(start_));
  }

 private:
  bool enabled_;
  const char* table_;
  int64_t total_;
  Clock::time_point start_;
  int64_t step_;
  int64_t next_;
};

// COPY table (columns) FROM STDIN in text format, fed from a large buffer.
class CopyIn {
 public:
  CopyIn(PGconn* conn, const std::string& table, const std::string& columns)
      : conn_(conn), table_(table) {
    Result r(
        PQexec(conn_, ("COPY " + table + " (" + columns + ") FROM STDIN WITH (FREEZE)").c_str()));
    if (!r || PQresultStatus(r.get()) != PGRES_COPY_IN) {
      throw std::runtime_error("seed: COPY " + table + ": " + Trimmed(PQerrorMessage(conn_)));
    }
    buffer_.reserve(kFlushBytes + (1 << 16));
  }

  std::string& buffer() { return buffer_; }
  void MaybeFlush() {
    if (buffer_.size() >= kFlushBytes) Flush();
  }

  void Finish() {
    Flush();
    if (PQputCopyEnd(conn_, nullptr) != 1) Fail();
    Result r(PQgetResult(conn_));
    if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) Fail();
    while (Result extra{PQgetResult(conn_)}) {
    }
  }

 private:
  void Flush() {
    if (buffer_.empty()) return;
    if (PQputCopyData(conn_, buffer_.data(), static_cast<int>(buffer_.size())) != 1) Fail();
    buffer_.clear();
  }
  [[noreturn]] void Fail() {
    throw std::runtime_error("seed: COPY " + table_ + ": " + Trimmed(PQerrorMessage(conn_)));
  }

  PGconn* conn_;
  std::string table_;
  std::string buffer_;
};

// The password hash every seeded account shares. Hashing millions of passwords with
// Argon2id (64 MiB, ~50 ms each) would take days; a demo population shares one hash of
// the one documented demo password. The salt is derived from the random seed, so the
// same options give byte-identical data; the string is the standard libsodium/PHC
// encoding of crypto_pwhash_str_alg at the interactive limits auth::HashPassword uses,
// and is checked with auth::VerifyPassword before use.
std::string DemoPasswordHash(uint64_t random_seed) {
  if (sodium_init() < 0) throw std::runtime_error("seed: libsodium failed to initialize");
  unsigned char salt[crypto_pwhash_SALTBYTES];
  unsigned char key[32];
  const std::string salt_input = "continuum-seed-salt:" + std::to_string(random_seed);
  crypto_generichash(salt, sizeof salt, reinterpret_cast<const unsigned char*>(salt_input.data()),
                     salt_input.size(), nullptr, 0);
  const std::string password = kDemoPassword;
  if (crypto_pwhash(key, sizeof key, password.data(), password.size(), salt,
                    crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    throw std::runtime_error("seed: password hashing failed (out of memory)");
  }
  auto b64 = [](const unsigned char* data, size_t size) {
    std::string out(sodium_base64_ENCODED_LEN(size, sodium_base64_VARIANT_ORIGINAL_NO_PADDING),
                    '\0');
    sodium_bin2base64(out.data(), out.size(), data, size,
                      sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    out.resize(std::char_traits<char>::length(out.c_str()));
    return out;
  };
  std::string hash =
      "$argon2id$v=19$m=" + std::to_string(crypto_pwhash_MEMLIMIT_INTERACTIVE / 1024) +
      ",t=" + std::to_string(crypto_pwhash_OPSLIMIT_INTERACTIVE) + ",p=1$" +
      b64(salt, sizeof salt) + "$" + b64(key, sizeof key);
  if (!auth::VerifyPassword(hash, kDemoPassword)) {
    throw std::runtime_error("seed: internal error: the demo password hash does not verify");
  }
  return hash;
}

void CheckEmptyAndLock(PGconn* conn) {
  if (Value(conn, "SELECT to_regclass('public.patient') IS NOT NULL") != "t") {
    throw std::runtime_error(
        "seed: the database has no Continuum schema; run `continuum migrate` first");
  }
  std::string all;
  for (const char* t : kSeededTables) all += std::string(all.empty() ? "" : ", ") + t;
  for (const char* t : kDependentTables) all += std::string(", ") + t;
  // TRUNCATE below needs ACCESS EXCLUSIVE anyway; take it first so a concurrent seed or
  // writer cannot slip rows in between the check and the load.
  Exec(conn, "LOCK TABLE " + all + " IN ACCESS EXCLUSIVE MODE");
  for (const char* tables :
       {"patient", "facility", "practitioner", "account", "care_relationship", "allergy",
        "medication", "condition", "encounter", "clinical_note", "session"}) {
    if (Value(conn, std::string("SELECT EXISTS (SELECT 1 FROM ") + tables + ")") == "t") {
      throw std::runtime_error(std::string("seed: refusing to load into a non-empty database: ") +
                               "table " + tables +
                               " already has rows (seed only loads into a freshly migrated, "
                               "empty database)");
    }
  }
  // Empty, verified under lock: truncating loses nothing and enables COPY FREEZE.
  Exec(conn, "TRUNCATE " + all);
}

}  // namespace

void Run(const SeedOptions& options) {
  const auto start = Clock::now();
  if (options.patients < 2) throw std::invalid_argument("seed: --patients must be at least 2");
  if (options.facilities < 1) throw std::invalid_argument("seed: --facilities must be at least 1");
  const Population pop(options.patients, options.facilities, options.random_seed);
  const std::string hash = DemoPasswordHash(options.random_seed);
  const bool progress = options.progress;

  std::unique_ptr<PGconn, ConnDeleter> holder(PQconnectdb(options.database_url.reveal().c_str()));
  PGconn* conn = holder.get();
  if (!conn || PQstatus(conn) != CONNECTION_OK) {
    throw std::runtime_error("seed: cannot connect to the database: " +
                             Trimmed(conn ? PQerrorMessage(conn) : "out of memory"));
  }
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  Exec(conn, "SET application_name = 'continuum-seed'");

  Exec(conn, "BEGIN");
  Exec(conn, "SET LOCAL statement_timeout = 0");
  Exec(conn, "SET LOCAL lock_timeout = '10s'");
  // Only one commit: durability settings are irrelevant, but avoid waiting on a sync
  // standby for a bulk load that can be repeated.
  Exec(conn, "SET LOCAL synchronous_commit = local");
  CheckEmptyAndLock(conn);
  if (Value(conn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") == "t") {
    Exec(conn, "SET LOCAL session_replication_role = replica");
  }

  const int64_t n = pop.patients();
  if (progress) {
    std::fprintf(stderr, "seed: %lld patients, %lld facilities, %lld practitioners\n",
                 static_cast<long long>(n), static_cast<long long>(pop.facilities()),
                 static_cast<long long>(pop.practitioners()));
  }

  {
    CopyIn copy(conn, "facility", "id, name, city, state, updated_at");
    pop.AppendFacilities(copy.buffer());
    copy.Finish();
    Progress(progress, "facilities", pop.facilities(), start).Done(pop.facilities());
  }
  {
    CopyIn copy(conn, "practitioner", "id, npi, family, given, specialty, facility_id, updated_at");
    for (int64_t id = 1; id <= pop.practitioners(); ++id) {
      pop.AppendPractitioner(id, copy.buffer());
      copy.MaybeFlush();
    }
    copy.Finish();
    Progress(progress, "practitioners", pop.practitioners(), start).Done(pop.practitioners());
  }
  {
    CopyIn copy(conn, "patient",
                "id, mrn, family, given, gender, birth_date, phone, email, address_line, city, "
                "state, postal_code, facility_id, updated_at");
    Progress bar(progress, "patients", n, start);
    for (int64_t id = 1; id <= n; ++id) {
      pop.AppendPatient(pop.Profile(id), copy.buffer());
      copy.MaybeFlush();
      bar.Tick(id, id);
    }
    copy.Finish();
    bar.Done(n);
  }
  {
    CopyIn copy(conn, "care_relationship", "practitioner_id, patient_id, facility_id, since");
    Progress bar(progress, "care_relationships", n, start);
    int64_t rows = 0;
    for (int64_t id = 1; id <= n; ++id) {
      const PatientProfile p = pop.Profile(id);
      pop.AppendCareRelationships(p, copy.buffer());
      rows += static_cast<int64_t>(p.care_team.size());
      copy.MaybeFlush();
      bar.Tick(id, rows);
    }
    copy.Finish();
    bar.Done(rows);
  }

  // The clinical tables: one pass each, ids sequential in patient order.
  using Appender = int (Population::*)(const PatientProfile&, int64_t*, std::string&) const;
  struct Clinical {
    const char* table;
    const char* label;
    const char* columns;
    Appender append;
  };
  const Clinical clinical[] = {
      {"allergy", "allergies",
       "id, patient_id, code, display, category, criticality, clinical_status, reaction, "
       "recorded_date, updated_at",
       &Population::AppendAllergies},
      {"medication", "medications",
       "id, patient_id, rxnorm_code, display, dosage, status, effective_start, updated_at",
       &Population::AppendMedications},
      {"condition", "conditions",
       "id, patient_id, snomed_code, display, clinical_status, onset_date, updated_at",
       &Population::AppendConditions},
      {"encounter", "encounters",
       "id, patient_id, facility_id, practitioner_id, class_code, type_display, status, "
       "period_start, period_end, updated_at",
       &Population::AppendEncounters},
  };
  for (const Clinical& c : clinical) {
    CopyIn copy(conn, c.table, c.columns);
    Progress bar(progress, c.label, n, start);
    int64_t next_id = 1;
    for (int64_t id = 1; id <= n; ++id) {
      (pop.*c.append)(pop.Profile(id), &next_id, copy.buffer());
      copy.MaybeFlush();
      bar.Tick(id, next_id - 1);
    }
    copy.Finish();
    bar.Done(next_id - 1);
  }

  {
    CopyIn copy(conn, "account",
                "id, username, password_hash, role, patient_id, practitioner_id, totp_secret, "
                "failed_attempts, locked_until, created_at");
    const int64_t total = n + pop.practitioners() + 3;
    Progress bar(progress, "accounts", total, start);
    for (int64_t id = 1; id <= n; ++id) {
      pop.AppendPatientAccount(id, hash, copy.buffer());
      copy.MaybeFlush();
      bar.Tick(id, id);
    }
    for (int64_t id = 1; id <= pop.practitioners(); ++id) {
      pop.AppendPractitionerAccount(id, hash, copy.buffer());
      copy.MaybeFlush();
    }
    pop.AppendDemoAccounts(hash, copy.buffer());
    copy.Finish();
    bar.Done(total);
  }

  // Run-time rows take ids from sequences that start at 1e12, far above the seeded ids;
  // only if a seed ever reached them would they need to move.
  for (const auto& [seq, table] : {std::pair{"account_id_seq", "account"},
                                   std::pair{"clinical_note_id_seq", "clinical_note"}}) {
    Exec(conn, std::string("SELECT setval('") + seq + "', m) FROM (SELECT max(id) AS m FROM " +
                   table + ") s WHERE m >= (SELECT last_value FROM " + seq + ")");
  }

  // Bookable slots for the next four weeks (relative to today, unlike the rest).
  Exec(conn, "SELECT continuum_open_slots(28)");
  // Invoices for some finished encounters, and one insurance coverage per patient.
  Exec(conn, "SELECT continuum_seed_billing()");

  Exec(conn, "COMMIT");
  if (progress) std::fprintf(stderr, "seed: committed %.1f s\n", SecondsSince(start));

  std::string tables;
  for (const char* t : kSeededTables) tables += std::string(tables.empty() ? "" : ", ") + t;
  Exec(conn, "ANALYZE " + tables + ", slot");
  if (!options.articles_file.empty()) {
    auto c = LoadArticles(options.database_url, options.articles_file);
    if (progress) std::fprintf(stderr, "seed: %d health articles\n", c.articles);
  }
  if (progress) {
    std::fprintf(stderr,
                 "seed: done: %lld patients, %lld facilities, %lld practitioners in %.1f s\n",
                 static_cast<long long>(n), static_cast<long long>(pop.facilities()),
                 static_cast<long long>(pop.practitioners()), SecondsSince(start));
  }
}

}  // namespace continuum::seed
