// The shipper reads each node's journal from its persisted position (shipped-<node>.pos),
// in batches of complete lines, and inserts them into audit_event in one transaction per
// batch (synchronous_commit = on: an audit row must survive a failover). The columns
// are parsed here from the journal line itself (once, as the line is read) and COPYed,
// so the row is by construction what the journal says. `record` holds the exact line only
// when the columns cannot give it back (RebuildableFromColumns; `audit verify` rebuilds the
// others), which halves the row and its WAL (bench/README.md, sixteenth round). The
// position is advanced only after COMMIT (in place, in the file's older slot, then
// fdatasync: internal/files.hpp); a crash in between, or a torn slot, re-ships the batch,
// which ON CONFLICT (node_id, seq) DO NOTHING makes harmless.
//
// Only durable lines are read: when the node's Journal is open in this process it
// publishes how far its segments are fdatasync'ed (the durable mark) and the shipper
// stays behind it; otherwise every complete ('\n'-terminated) line counts as durable
// (the writer is gone, and recovery keeps complete well-formed lines).
#include "audit/shipper.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>

#include "audit/internal/files.hpp"
#include "audit/internal/format.hpp"
#include "audit/internal/heads.hpp"
#include "audit/internal/pg.hpp"

namespace continuum::audit {
namespace fs = std::filesystem;
using namespace internal;

namespace {

constexpr std::size_t kMaxBatchRows = 1000;
constexpr std::size_t kMaxBatchBytes = 4 << 20;
constexpr int kStatementTimeoutMs = 30000;

// A batch is COPYed in PostgreSQL's binary format (built here from the parsed line):
// no text for the server to parse (in isolation 15-17% of the COPY's time; bench/README)
// and nothing to escape here. It goes straight into audit_event; a batch with rows
// already there goes through a per-transaction staging table and moves over with ON
// CONFLICT DO NOTHING (idempotent on retries).
constexpr const char* kStageSql =
    "CREATE TEMP TABLE IF NOT EXISTS audit_stage (LIKE audit_event INCLUDING DEFAULTS) "
    "ON COMMIT DELETE ROWS";
#define CONTINUUM_AUDIT_COPY_COLUMNS                                                      \
  " (node_id, seq, recorded_at, region, request_id, actor, role, action, resource_type, " \
  "resource_id, patient_id, client_address, purpose_of_use, outcome, detail, prev_hash, " \
  "hash, record) FROM STDIN (FORMAT binary)"
constexpr const char* kCopySql = "COPY audit_stage" CONTINUUM_AUDIT_COPY_COLUMNS;
constexpr const char* kDirectCopySql = "COPY audit_event" CONTINUUM_AUDIT_COPY_COLUMNS;
#undef CONTINUUM_AUDIT_COPY_COLUMNS
constexpr const char* kMoveSql =
    "INSERT INTO audit_event SELECT * FROM audit_stage ORDER BY node_id, seq "
    "ON CONFLICT (node_id, seq) DO NOTHING";
constexpr std::int16_t kCopyColumns = 18;

// The binary COPY stream's header (signature, flags 0, no extension) and trailer.
constexpr std::string_view kCopyHeader{"PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19};
constexpr std::string_view kCopyTrailer{"\377\377", 2};

// PostgreSQL's timestamps count microseconds from 2000-01-01T00:00:00Z.
constexpr long long kPgEpochUnixMicros = 946684800LL * 1000000;

template <typename T>
void AppendBigEndian(std::string& out, T v) {
  using U = std::make_unsigned_t<T>;
  const auto u = static_cast<U>(v);
  char bytes[sizeof(U)];
  for (std::size_t i = 0; i < sizeof(U); ++i)
    bytes[i] = static_cast<char>((u >> ((sizeof(U) - 1 - i) * 8)) & 0xff);
  out.append(bytes, sizeof(U));  // one append: 18 fields a row
}

// One binary-format text field; an empty optional field is NULL (length -1).
void CopyField(std::string& out, std::string_view v, bool null_if_empty = false) {
  if (v.empty() && null_if_empty) {
    AppendBigEndian<std::int32_t>(out, -1);
    return;
  }
  AppendBigEndian(out, static_cast<std::int32_t>(v.size()));
  out.append(v);
}

// Appends the binary COPY tuple of a parsed journal line. Its `record` is the line
// itself, or NULL when `record_optional` (the table allows it) and the columns give the
// line back (RebuildableFromColumns: almost every line; verify rebuilds it).
void AppendCopyRow(std::string& out, const ParsedLine& p, std::string_view line,
                   bool record_optional) {
  const Record& r = p.record;
  AppendBigEndian(out, kCopyColumns);
  CopyField(out, r.node_id);
  AppendBigEndian<std::int32_t>(out, 8);
  AppendBigEndian<std::int64_t>(out, r.seq);
  AppendBigEndian<std::int32_t>(out, 8);
  AppendBigEndian<std::int64_t>(out, p.recorded_at_micros - kPgEpochUnixMicros);
  CopyField(out, r.region);
  CopyField(out, r.request_id);
  CopyField(out, r.actor);
  CopyField(out, r.role);
  CopyField(out, r.action);
  CopyField(out, r.resource_type, true);
  CopyField(out, r.resource_id, true);
  CopyField(out, r.patient_id, true);
  CopyField(out, r.client_address);
  CopyField(out, r.purpose_of_use);
  CopyField(out, r.outcome);
  CopyField(out, r.detail, true);
  CopyField(out, p.prev_hash);
  CopyField(out, p.hash);
  if (record_optional && RebuildableFromColumns(p)) {
    AppendBigEndian<std::int32_t>(out, -1);
  } else {
    CopyField(out, line);
  }
}

// Whether rows may leave `record` out: the column is nullable (db/migrations/0023) and no
// live node runs a release built before it (continuum_node, as `migrate --contract`
// checks: a heartbeat within 30 s), because that release's `audit verify` cannot rebuild a
// line from the columns. During a rollout, or after a rollback, every row carries its record.
constexpr int kRecordOptionalSchema = 23;
constexpr const char* kRecordOptionalSql =
    "SELECT coalesce((SELECT NOT attnotnull FROM pg_attribute "
    "WHERE attrelid = to_regclass('audit_event') AND attname = 'record'), false) "
    "AND (to_regclass('continuum_node') IS NULL OR NOT EXISTS (SELECT 1 FROM continuum_node "
    "WHERE heartbeat_at > now() - interval '30 seconds' AND schema_version < $1::int))";
constexpr auto kRecordOptionalRecheck = std::chrono::seconds(30);

struct Batch {
  std::string rows;  // the lines' binary COPY tuples (built once, as each line is read)
  std::vector<std::pair<std::size_t, std::size_t>> spans;  // each row in `rows`
  std::vector<std::int64_t> seqs;                          // each row's seq
  std::size_t line_bytes = 0;                              // the journal lines' size
  ShipPosition next;                                       // the position after this batch
  std::uint64_t invalid = 0;
};

}  // namespace

struct Shipper::Impl {
  fs::path dir;
  Secret url;
  int interval_ms;
  ShipperOptions opt;
  std::optional<SigningKey> key;
  struct Signed {
    long long seq = 0;
    std::chrono::steady_clock::time_point at{};
    bool epoch_done = false;
  };
  std::map<std::string, Signed> signed_heads;  // per node, under ship_mu
  // Each node's position file, kept open between rounds (under ship_mu).
  std::map<std::string, std::unique_ptr<ShipPositionFile>> positions;
  bool heads_table_missing = false;
  // audit_event.record is nullable in the connected database (read at each connect; until
  // the first, every row carries its record).
  bool record_optional = false;
  std::chrono::steady_clock::time_point record_checked_at{};
  void CheckRecordOptional();
  bool final_round = false;  // a graceful stop: sign the last head whatever the interval

  std::mutex ship_mu;  // one shipping round at a time
  std::unique_ptr<PgConn> conn;

  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  std::thread thread;

  std::atomic<std::uint64_t> shipped{0}, backlog{0}, failures{0}, heads{0};
  std::atomic<bool> reachable{false};
  bool ever_failed = false;

  std::string warned_short;  // the shortened segment last warned about (path, offsets)

  explicit Impl(ShipperOptions o)
      : dir(o.journal_dir), url(o.database_url), interval_ms(o.interval_ms), opt(std::move(o)) {}

  std::uint64_t ShipAll(const std::map<std::string, std::vector<SegmentFile>>& nodes);
  ShipPositionFile& PositionFile(const std::string& node);
  std::uint64_t ShipNode(const std::string& node, const std::vector<SegmentFile>& segs);
  Batch ReadBatch(const std::string& node, const std::vector<SegmentFile>& segs, ShipPosition pos,
                  const std::optional<DurableMark>& mark);
  bool EnsureConnection();
  template <typename Fn>
  void WithConnection(Fn&& fn);
  void Insert(const std::string& node, const Batch& batch);
  void InsertOnce(const std::string& rows);
  std::uint64_t Backlog(const std::map<std::string, std::vector<SegmentFile>>& nodes);
  std::uint64_t Round();
  void SignHeads(const std::map<std::string, std::vector<SegmentFile>>& nodes);
  void InsertHead(const std::string& node, const char* kind, long long seq,
                  const std::string& hash);
  void Loop();
};

// Reads complete, well-formed lines from `pos` on, up to a batch, never past the
// durable mark, moving to the next segment once the writer has left a segment.
Batch Shipper::Impl::ReadBatch(const std::string& node, const std::vector<SegmentFile>& segs,
                               ShipPosition pos, const std::optional<DurableMark>& mark) {
  Batch b;
  std::size_t i = 0;
  while (i < segs.size() && segs[i].index < pos.segment) ++i;
  if (i < segs.size() && segs[i].index != pos.segment) {
    pos.segment = segs[i].index;  // nothing shipped yet, or that segment is gone
    pos.offset = 0;
  }
  while (i < segs.size() && b.spans.size() < kMaxBatchRows && b.line_bytes < kMaxBatchBytes) {
    const auto& seg = segs[i];
    std::uint64_t end = FileSize(seg.path);
    bool finished = i + 1 < segs.size();  // the writer only ever appends to the newest
    if (mark) {
      if (seg.index > mark->segment) break;
      if (seg.index == mark->segment) {
        end = std::min(end, mark->offset);
        finished = false;
      }
    }
    if (pos.offset > end) {
      // The segment is shorter than what was shipped: it was rewritten or truncated.
      // Re-ship it from its start (idempotent); `audit verify` reports any difference.
      // Said once: a batch read again (after a reconnect) finds the same.
      const std::string what =
          seg.path.string() + " " + std::to_string(pos.offset) + " " + std::to_string(end);
      if (what != warned_short) {
        spdlog::warn(
            "audit shipper: journal segment {} is shorter than its shipped position; "
            "re-reading it",
            seg.path.filename().string());
        warned_short = what;
      }
      pos.offset = 0;
    }
    bool consumed = pos.offset == end;
    if (!consumed) {
      std::uint64_t want = std::min<std::uint64_t>(end - pos.offset, kMaxBatchBytes);
      std::string data = ReadRange(seg.path, pos.offset, want);
      if (data.find('\n') == std::string::npos && data.size() < end - pos.offset) {
        data = ReadRange(seg.path, pos.offset, end - pos.offset);  // a very long line
      }
      std::size_t start = 0;
      for (;;) {
        const auto nl = data.find('\n', start);
        if (nl == std::string::npos) break;
        const std::string_view line(data.data() + start, nl - start);
        auto parsed = ParseLine(line);
        if (parsed && parsed->record.node_id == node) {
          const std::size_t row = b.rows.size();
          AppendCopyRow(b.rows, *parsed, line, record_optional);
          b.spans.emplace_back(row, b.rows.size() - row);
          b.seqs.push_back(parsed->record.seq);
          b.line_bytes += line.size();
          pos.seq = parsed->record.seq;
        } else {
          ++b.invalid;  // not shippable; `audit verify` names it
        }
        pos.offset += nl + 1 - start;
        start = nl + 1;
        if (b.spans.size() >= kMaxBatchRows || b.line_bytes >= kMaxBatchBytes) break;
      }
      consumed = pos.offset == end;
      if (!consumed && finished && pos.offset + (data.size() - start) == end &&
          PaddingStart(std::string_view(data).substr(start)) == 0) {
        pos.offset = end;  // the writer's zero-filled padding, left by a crash: no record
        consumed = true;
      }
      if (!consumed && finished && start < data.size() &&
          data.find('\n', start) == std::string::npos &&
          pos.offset + (data.size() - start) == end) {
        ++b.invalid;  // a torn line the writer left behind in a finished segment
        pos.offset = end;
        consumed = true;
      }
    }
    if (!(consumed && finished)) break;
    ++i;
    pos.segment = segs[i].index;
    pos.offset = 0;
  }
  b.next = pos;
  return b;
}

bool Shipper::Impl::EnsureConnection() {
  if (conn && conn->ok()) return false;
  conn.reset();
  conn = std::make_unique<PgConn>(url, "continuum-audit-shipper", kStatementTimeoutMs);
  CheckRecordOptional();
  return true;
}

void Shipper::Impl::CheckRecordOptional() {
  record_optional = false;  // until the database says otherwise
  const std::string schema = std::to_string(kRecordOptionalSchema);
  PgResult r = conn->Exec(kRecordOptionalSql, {schema.c_str()});
  record_optional = PQntuples(r.get()) == 1 && std::string_view(PQgetvalue(r.get(), 0, 0)) == "t";
  record_checked_at = std::chrono::steady_clock::now();
}

// Runs `fn` on the connection; a connection that died since its last use (e.g. the
// database restarted) is replaced once at once instead of failing the round.
template <typename Fn>
void Shipper::Impl::WithConnection(Fn&& fn) {
  for (int attempt = 0;; ++attempt) {
    const bool fresh = EnsureConnection();
    try {
      fn();
      return;
    } catch (const PgError&) {
      if (conn->ok() || fresh || attempt > 0) throw;
      conn.reset();
    }
  }
}

void Shipper::Impl::InsertOnce(const std::string& rows) {
  // Fast path: COPY straight into audit_event. Rows already there (a retry after the
  // position file could not be saved) make it fail as a whole with 23505; then the
  // batch goes through the staging table with ON CONFLICT DO NOTHING.
  auto attempt = [&](bool staged) {
    conn->Exec("BEGIN; SET LOCAL synchronous_commit = on");
    try {
      if (staged) {
        conn->Exec(kStageSql);
        conn->CopyIn(kCopySql, {kCopyHeader, rows, kCopyTrailer});
        conn->Exec(kMoveSql);
      } else {
        conn->CopyIn(kDirectCopySql, {kCopyHeader, rows, kCopyTrailer});
      }
      conn->Exec("COMMIT");
    } catch (...) {
      if (conn->ok()) {
        try {
          conn->Exec("ROLLBACK");
        } catch (...) {
        }
      }
      throw;
    }
  };
  try {
    attempt(false);
  } catch (const PgError& e) {
    if (e.sqlstate() != "23505" || !conn->ok()) throw;
    attempt(true);
  }
}

void Shipper::Impl::Insert(const std::string& node, const Batch& batch) {
  try {
    WithConnection([&] { InsertOnce(batch.rows); });
    return;
  } catch (const PgError& e) {
    // A data exception (class 22) means some line is unacceptable to the table. Insert
    // line by line so one bad line cannot block the trail forever; the skipped line
    // stays in the journal and `audit verify` reports it missing from the table.
    if (!conn || !conn->ok() || e.sqlstate().rfind("22", 0) != 0) throw;
  }
  for (std::size_t i = 0; i < batch.spans.size(); ++i) {
    const auto [off, len] = batch.spans[i];
    try {
      const std::string row = batch.rows.substr(off, len);
      WithConnection([&] { InsertOnce(row); });
    } catch (const PgError& e) {
      if (!conn || !conn->ok() || e.sqlstate().rfind("22", 0) != 0) throw;
      spdlog::error(
          "audit shipper: node {} seq {} rejected by the database (SQLSTATE {}); "
          "skipped",
          node, batch.seqs[i], e.sqlstate());
    }
  }
}

std::uint64_t Shipper::Impl::ShipNode(const std::string& node,
                                      const std::vector<SegmentFile>& segs) {
  std::uint64_t total = 0;
  int lock_fd = -1;
  if (opt.take_journal_locks) {
    const auto lock_path = dir / ("journal-" + node + ".lock");
    lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (lock_fd < 0) ThrowErrno("audit ship: open " + lock_path.string());
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(lock_fd);
      throw std::runtime_error("audit ship: the journal of node " + node + " in " + dir.string() +
                               " is open by a running node (its lock is held): that node ships "
                               "it itself; only it knows how much of it is durable");
    }
  }
  struct LockCloser {
    int fd;
    ~LockCloser() {
      if (fd >= 0) ::close(fd);
    }
  } lock_closer{lock_fd};
  ShipPositionFile& position = PositionFile(node);
  ShipPosition pos = position.Load().value_or(ShipPosition{});
  for (;;) {
    const auto mark = LookupDurableMark(DurableKey(dir, node));
    Batch batch = ReadBatch(node, segs, pos, mark);
    if (!batch.spans.empty() &&
        (!(conn && conn->ok()) ||
         std::chrono::steady_clock::now() - record_checked_at > kRecordOptionalRecheck)) {
      // Whether `record` may be left out is read at connect and every 30 s: read it, then
      // build the rows again.
      WithConnection([&] {
        if (std::chrono::steady_clock::now() - record_checked_at > kRecordOptionalRecheck)
          CheckRecordOptional();
      });
      batch = ReadBatch(node, segs, pos, mark);
    }
    const bool moved = batch.next.segment != pos.segment || batch.next.offset != pos.offset;
    if (!batch.spans.empty()) Insert(node, batch);
    if (moved) position.Save(batch.next);
    pos = batch.next;
    total += batch.spans.size();
    shipped.fetch_add(batch.spans.size(), std::memory_order_relaxed);
    if (batch.invalid > 0) {
      spdlog::error(
          "audit shipper: node {}: {} malformed journal line(s) not shipped; "
          "run `continuum audit verify`",
          node, batch.invalid);
    }
    if (!moved) break;
  }
  return total;
}

ShipPositionFile& Shipper::Impl::PositionFile(const std::string& node) {
  auto& file = positions[node];
  if (!file) file = std::make_unique<ShipPositionFile>(dir, node);
  return *file;
}

std::uint64_t Shipper::Impl::ShipAll(const std::map<std::string, std::vector<SegmentFile>>& nodes) {
  std::uint64_t total = 0;
  for (const auto& [node, segs] : nodes) total += ShipNode(node, segs);
  // Nothing to ship: still check the database, so database_reachable stays true to life.
  if (total == 0) WithConnection([&] { conn->Exec("SELECT 1"); });
  return total;
}

// One round with its accounting; rethrows the failure.
std::uint64_t Shipper::Impl::Round() {
  std::lock_guard ship(ship_mu);
  try {
    // One listing for shipping and signing: a segment the writer starts meanwhile is
    // shipped in the next round, as one started after the listing always was.
    const auto nodes = ListSegments(dir);
    const auto n = ShipAll(nodes);
    if (key) SignHeads(nodes);
    if (ever_failed && !reachable.load()) {
      spdlog::info("audit shipper: database reachable again; backlog shipped");
    }
    reachable.store(true);
    // Listed again: segments the writer started or removed during the round.
    backlog.store(Backlog(ListSegments(dir)), std::memory_order_relaxed);
    return n;
  } catch (const std::exception& e) {
    failures.fetch_add(1, std::memory_order_relaxed);
    conn.reset();
    if (reachable.exchange(false) || !ever_failed) {
      spdlog::warn("audit shipper: shipping failed, retrying every {} ms: {}", interval_ms,
                   e.what());
    }
    ever_failed = true;
    try {
      backlog.store(Backlog(ListSegments(dir)), std::memory_order_relaxed);
    } catch (...) {
    }
    throw;
  }
}

// Records in the journal minus records shipped, per node: the last durable seq (from
// the durable mark, or the last complete line of the newest segment) minus the seq of
// the shipped position.
std::uint64_t Shipper::Impl::Backlog(const std::map<std::string, std::vector<SegmentFile>>& nodes) {
  std::uint64_t total = 0;
  for (const auto& [node, segs] : nodes) {
    const long long shipped_seq = PositionFile(node).Load().value_or(ShipPosition{}).seq;
    long long last = 0;
    if (auto mark = LookupDurableMark(DurableKey(dir, node))) {
      last = mark->seq;
    } else {
      for (auto seg = segs.rbegin(); seg != segs.rend() && last == 0; ++seg) {
        const std::uint64_t size = FileSize(seg->path);
        for (std::uint64_t window = 64 << 10;; window *= 4) {
          const std::uint64_t from = size > window ? size - window : 0;
          const std::string tail = ReadRange(seg->path, from, size - from);
          const auto end = tail.rfind('\n');
          if (end == std::string::npos) {
            if (from == 0) break;
            continue;
          }
          const auto begin = end == 0 ? std::string::npos : tail.rfind('\n', end - 1);
          if (begin == std::string::npos && from > 0) continue;
          const std::size_t b = begin == std::string::npos ? 0 : begin + 1;
          auto seq = SalvageSeq(std::string_view(tail).substr(b, end - b));
          if (seq) last = *seq;
          break;
        }
      }
    }
    if (last > shipped_seq) total += static_cast<std::uint64_t>(last - shipped_seq);
  }
  return total;
}

void Shipper::Impl::Loop() {
  std::unique_lock lk(mu);
  while (!stop) {
    lk.unlock();
    try {
      Round();
    } catch (...) {
      // Counted and logged by Round(); the journal keeps everything until next time.
    }
    lk.lock();
    cv.wait_for(lk, std::chrono::milliseconds(interval_ms), [&] { return stop; });
  }
}

// Signs the durable head of every node whose Journal is open in this process (and the
// start of a new epoch, once), at most once per head_interval_ms per node, and stores
// it in audit_head. Runs after the round's rows are shipped, so a head normally names a
// row already in the table; a head ahead of the rows is checked against the journal.
void Shipper::Impl::SignHeads(const std::map<std::string, std::vector<SegmentFile>>& nodes) {
  if (heads_table_missing) return;
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [node, segs] : nodes) {
    const auto mark = LookupDurableMark(DurableKey(dir, node));
    if (!mark) continue;
    Signed& s = signed_heads[node];
    try {
      if (mark->epoch_start > 0 && !s.epoch_done) {
        InsertHead(node, "epoch", mark->epoch_start, EpochGenesisHash(node, mark->epoch_start));
        s.epoch_done = true;
      }
      // Right after a new epoch started, mark->hash is the epoch's genesis, not a record's.
      if (mark->seq <= s.seq || mark->seq < 1 || mark->seq < mark->epoch_start ||
          (!final_round && now - s.at < std::chrono::milliseconds(opt.head_interval_ms))) {
        continue;
      }
      InsertHead(node, "head", mark->seq, mark->hash);
    } catch (const PgError& e) {
      if (e.sqlstate() != "42P01") throw;
      heads_table_missing = true;  // not migrated yet (an older schema): rows only
      spdlog::error("audit shipper: table audit_head is missing; chain heads are not signed");
      return;
    }
    s.seq = mark->seq;
    s.at = now;
  }
}

void Shipper::Impl::InsertHead(const std::string& node, const char* kind, long long seq,
                               const std::string& hash) {
  const std::string signed_at = NowRfc3339();
  const std::string sig = SignHex(*key, HeadMessage(kind, node, seq, hash, signed_at));
  const std::string seq_s = std::to_string(seq), pk = key->public_hex();
  WithConnection([&] {
    conn->Exec(
        "INSERT INTO audit_head (node_id, kind, seq, hash, signed_at, public_key, signature) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        {node.c_str(), kind, seq_s.c_str(), hash.c_str(), signed_at.c_str(), pk.c_str(),
         sig.c_str()});
  });
  heads.fetch_add(1, std::memory_order_relaxed);
}

std::string SigningPublicKey(const std::string& key_file) {
  return LoadOrCreateSigningKey(key_file).public_hex();
}

Shipper::Shipper(std::string journal_dir, Secret database_url, int interval_ms)
    : Shipper(ShipperOptions{std::move(journal_dir), std::move(database_url), interval_ms}) {}

Shipper::Shipper(ShipperOptions options) {
  if (options.interval_ms <= 0) options.interval_ms = 200;
  if (options.head_interval_ms < 0) options.head_interval_ms = 0;
  impl_ = std::make_unique<Impl>(std::move(options));
  if (!impl_->opt.signing_key_file.empty()) {
    impl_->key = LoadOrCreateSigningKey(impl_->opt.signing_key_file);
    spdlog::info("audit shipper: signing chain heads with Ed25519 public key {} ({})",
                 impl_->key->public_hex(), impl_->opt.signing_key_file);
  }
}

Shipper::~Shipper() { Stop(); }

void Shipper::Start() {
  std::lock_guard lk(impl_->mu);
  if (impl_->thread.joinable()) return;
  impl_->stop = false;
  impl_->thread = std::thread([impl = impl_.get()] {
    pthread_setname_np(pthread_self(), "continuum-ship");
    impl->Loop();
  });
}

void Shipper::Stop() {
  {
    std::lock_guard lk(impl_->mu);
    if (!impl_->thread.joinable()) return;
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  impl_->thread.join();
  // A last round on a graceful stop (e.g. after the journal drained), only if the
  // database answered recently: never hold a shutdown on connect timeouts.
  if (impl_->reachable.load()) {
    try {
      {
        std::lock_guard ship(impl_->ship_mu);
        impl_->final_round = true;  // the chain's last head is signed before the node goes
      }
      ShipOnce();
    } catch (...) {
    }
  }
  std::lock_guard ship(impl_->ship_mu);
  impl_->conn.reset();
}

std::uint64_t Shipper::ShipOnce() { return impl_->Round(); }

ShipperStats Shipper::stats() const {
  ShipperStats s;
  s.shipped = impl_->shipped.load(std::memory_order_relaxed);
  s.backlog = impl_->backlog.load(std::memory_order_relaxed);
  s.failures = impl_->failures.load(std::memory_order_relaxed);
  s.heads = impl_->heads.load(std::memory_order_relaxed);
  s.database_reachable = impl_->reachable.load();
  return s;
}

}  // namespace continuum::audit
