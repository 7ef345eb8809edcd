// The journal's writer: one thread owns the segment file. Append() only queues (mutex +
// vector) and returns to the I/O thread; the writer takes everything queued, chains and
// serializes it, writes it with one write() and makes it durable with one fdatasync()
// (group commit: the more appenders wait, the more records share a sync), then posts
// every waiter's completion to its executor.
//
// The segment is written with pwrite at its durable size, into space zero-filled and
// synced ahead (JournalOptions::preallocate_bytes), so each fdatasync only flushes data.
//
// Failure policy (HIPAA: no PHI without its audit record): if a write or sync fails,
// every waiter of the batch gets "audit journal write failed: ..." and the journal is
// rolled back to its last durable record: the segment is truncated to the durable size
// (retried before the next batch if truncation itself fails) and seq/prev_hash continue
// from the last durable line, so the chain on disk never has a hole.
#include "audit/journal.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <climits>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>

#include "audit/internal/files.hpp"
#include "audit/internal/format.hpp"
#include "audit/internal/heads.hpp"
#include "audit/internal/pg.hpp"

namespace continuum::audit {
namespace fs = std::filesystem;
using namespace internal;

namespace {

using Handler = boost::asio::any_completion_handler<void(std::exception_ptr)>;

constexpr auto kDatabaseRetry = std::chrono::seconds(1);  // CheckDatabase's wait between tries

struct Waiter {
  std::vector<Record> records;
  boost::asio::any_io_executor ex;  // tracks outstanding work until completed
  Handler handler;
  long long last_seq = 0;  // assigned by the writer
};

void Complete(Waiter& w, std::exception_ptr ep) {
  auto ex = std::move(w.ex);
  boost::asio::post(ex, [h = std::move(w.handler), ep]() mutable { std::move(h)(ep); });
}

// The valid prefix of a segment: everything up to the end of its last line that is a
// complete, well-formed record of `node`. A crash can leave a torn last line (no
// newline) or, on some file systems, garbage (e.g. zeros) after the last good line.
struct TailScan {
  std::uint64_t good_len = 0;
  std::optional<ParsedLine> last;
};

TailScan ScanTail(std::string_view data, std::string_view node) {
  const auto nl = data.rfind('\n');
  std::size_t good = nl == std::string_view::npos ? 0 : nl + 1;
  while (good > 0) {
    const auto prev_nl = good >= 2 ? data.rfind('\n', good - 2) : std::string_view::npos;
    const std::size_t start = prev_nl == std::string_view::npos ? 0 : prev_nl + 1;
    auto p = ParseLine(data.substr(start, good - 1 - start));
    if (p && p->record.node_id == node) return {good, std::move(p)};
    good = start;
  }
  return {0, std::nullopt};
}

}  // namespace

struct Journal::Impl {
  JournalOptions opt;
  fs::path dir;
  std::string durable_key;
  int lock_fd = -1;
  int seg_fd = -1;

  // Owned by the writer thread after construction.
  std::uint64_t seg_index = 0;
  std::uint64_t seg_size = 0;  // durable size of the current segment
  std::uint64_t file_end = 0;  // its size on disk: seg_size + zero-filled padding
  std::chrono::steady_clock::time_point reserve_retry_at{};
  long long last_seq = 0;  // last durable record
  std::string last_hash;
  std::optional<std::uint64_t> truncate_to;  // rollback still to do

  std::mutex mu;
  std::condition_variable cv;
  std::vector<Waiter> queue;
  bool stopping = false;
  std::thread writer;

  std::atomic<std::uint64_t> records{0}, syncs{0}, pending{0}, failures{0}, refused{0};
  std::atomic<bool> healthy{true};                // last write or probe succeeded
  std::atomic<std::int64_t> writing_since_ns{0};  // steady clock; 0: no batch being written
  std::atomic<long long> last_seq_pub{0};
  long long epoch_start_seq = 0;

  explicit Impl(JournalOptions o) : opt(std::move(o)) {}

  ~Impl() {
    if (seg_fd >= 0) ::close(seg_fd);
    if (lock_fd >= 0) ::close(lock_fd);  // releases the flock
  }

  [[nodiscard]] fs::path SegmentPath(std::uint64_t index) const {
    return dir / SegmentFileName(opt.node_id, index);
  }

  void Open();
  void Recover(const std::vector<SegmentFile>& segs);
  void CheckDatabase(bool fresh);
  void OpenSegment(std::uint64_t index, bool create);
  void Reserve(std::uint64_t end);
  void TrimPadding();
  void TruncateTo(std::uint64_t size);
  void Run();
  void WriteBatch(std::vector<Waiter>& batch);
  void Probe();
  void Publish() {
    PublishDurableMark(durable_key,
                       DurableMark{seg_index, seg_size, last_seq, last_hash, epoch_start_seq});
    last_seq_pub.store(last_seq, std::memory_order_relaxed);
  }
  void Enqueue(boost::asio::any_io_executor ex, std::vector<Record> recs, Handler handler);
};

void Journal::Impl::Open() {
  if (!IsValidNodeId(opt.node_id)) {
    throw std::runtime_error("audit journal: node_id must be 1-128 of [A-Za-z0-9._-]");
  }
  if (opt.dir.empty()) throw std::runtime_error("audit journal: dir is empty");
  if (opt.segment_bytes < 4096) opt.segment_bytes = 4096;
  dir = opt.dir;
  std::error_code ec;
  const bool created = fs::create_directories(dir, ec);
  if (ec)
    throw std::runtime_error("audit journal: cannot create " + dir.string() + ": " + ec.message());
  if (created) {  // the new folder's name must survive a crash too
    fs::path abs = fs::absolute(dir).lexically_normal();
    if (!abs.has_filename()) abs = abs.parent_path();
    FsyncDir(abs.parent_path());
  }
  durable_key = DurableKey(dir, opt.node_id);

  // One writer per node: two would fork the chain.
  const auto lock_path = dir / ("journal-" + opt.node_id + ".lock");
  lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (lock_fd < 0) ThrowErrno("audit journal: open " + lock_path.string());
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    ThrowErrno("audit journal: " + dir.string() + " is already open for node " + opt.node_id);
  }

  auto all = ListSegments(dir);
  for (const auto& [node, segs] : all) {
    if (node != opt.node_id) {
      throw std::runtime_error("audit journal: " + dir.string() + " holds the journal of node " +
                               node + "; use one folder per node");
    }
  }
  auto it = all.find(opt.node_id);
  const bool fresh = it == all.end();
  if (fresh) {
    last_seq = 0;
    last_hash = GenesisHash(opt.node_id);
    // Asked before the first segment exists: a refused open leaves no file behind, and
    // the next open is as careful as this one.
    if (!opt.database_url.empty()) CheckDatabase(true);
    OpenSegment(1, /*create=*/true);
  } else {
    Recover(it->second);
    // No record recovered (a segment created, nothing written yet): as new as a fresh one.
    if (!opt.database_url.empty()) CheckDatabase(last_seq == 0);
  }
  Publish();
}

// The highest seq the database knows for this node: its shipped rows and its signed
// heads (a head may be ahead of the rows). An epoch's start counts as seq - 1 there.
void Journal::Impl::CheckDatabase(bool fresh) {
  auto ask = [&] {
    PgConn conn(opt.database_url, "continuum-audit-journal", 10000);
    const char* node = opt.node_id.c_str();
    PgResult r =
        conn.Exec("SELECT coalesce(max(seq), 0) FROM audit_event WHERE node_id = $1", {node});
    long long known = std::stoll(PQgetvalue(r.get(), 0, 0));
    try {
      PgResult h = conn.Exec(
          "SELECT coalesce(max(CASE kind WHEN 'epoch' THEN seq - 1 ELSE seq END), 0) "
          "FROM audit_head WHERE node_id = $1",
          {node});
      known = std::max(known, std::stoll(PQgetvalue(h.get(), 0, 0)));
    } catch (const PgError& e) {
      if (e.sqlstate() != "42P01") throw;  // audit_head not migrated yet: rows only
    }
    return known;
  };
  long long known = 0;
  // A new journal waits for the database (one starting, or a host so loaded that a connect
  // outlasts its timeout: seen with two clusters starting on two cores) up to
  // database_wait_ms. Retried: a failed connect (libpq gives those no SQLSTATE, so a
  // refused login is retried too) and SQLSTATE classes 08 and 57P; not a query's error.
  const auto give_up = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(fresh ? std::max(0, opt.database_wait_ms) : 0);
  for (int attempt = 1;; ++attempt) {
    try {
      known = ask();
      break;
    } catch (const std::exception& e) {
      const auto* pg = dynamic_cast<const PgError*>(&e);
      const bool unreachable = pg && (pg->sqlstate().empty() || pg->sqlstate().starts_with("08") ||
                                      pg->sqlstate().starts_with("57P"));
      if (unreachable && std::chrono::steady_clock::now() + kDatabaseRetry < give_up) {
        spdlog::warn(
            "audit journal: a new journal of node {} waits for the database to say where its "
            "chain ends (attempt {}): {}",
            opt.node_id, attempt, e.what());
        std::this_thread::sleep_for(kDatabaseRetry);
        continue;
      }
      if (fresh) {
        // A new folder could be a lost one: starting at seq 1 unchecked could collide.
        throw std::runtime_error(
            "audit journal: " + dir.string() + " holds no record of node " + opt.node_id +
            " and the database cannot be asked where its chain ends (" + e.what() + "; " +
            std::to_string(attempt) + (attempt == 1 ? " attempt" : " attempts") +
            "); refusing to start a chain that could collide with shipped records");
      }
      spdlog::warn("audit journal: cannot compare the journal of node {} with the database: {}",
                   opt.node_id, e.what());
      return;
    }
  }
  if (known <= last_seq) return;
  const long long first = known + 1;
  spdlog::error(
      "audit journal: the journal in {} ends at seq {} but the database holds node {}'s chain "
      "up to seq {}: the journal folder was lost or replaced. Starting a NEW EPOCH at seq {} "
      "(records between that were only in the lost journal are gone; `continuum audit "
      "verify` reports them)",
      dir.string(), last_seq, opt.node_id, known, first);
  last_seq = known;
  last_hash = EpochGenesisHash(opt.node_id, first);
  epoch_start_seq = first;
  // An epoch starts a segment of its own, so the files show where it begins.
  if (seg_size > 0) OpenSegment(seg_index + 1, /*create=*/true);
}

// Finds the last good record, cutting torn or garbage tails off the newest segments
// (the cut bytes are kept in a torn-*.bin file: audit evidence is never just deleted).
void Journal::Impl::Recover(const std::vector<SegmentFile>& segs) {
  last_seq = 0;
  last_hash = GenesisHash(opt.node_id);
  for (auto seg = segs.rbegin(); seg != segs.rend(); ++seg) {
    const std::string data = ReadRange(seg->path, 0, UINT64_MAX);
    // Records hold no NUL, and a successful sync covers every byte before the records it
    // made durable: nothing at or after the first NUL was acknowledged. (Written over
    // zero-filled space, a batch's pages can reach the disk out of order: a crash can leave
    // a hole of zeros with complete lines after it. They are torn evidence, not the chain.)
    const std::string_view valid(data.data(), std::min(data.size(), data.find('\0')));
    TailScan scan = ScanTail(valid, opt.node_id);
    const std::size_t evidence_end = std::max<std::size_t>(PaddingStart(data), scan.good_len);
    if (scan.good_len < data.size() && evidence_end == scan.good_len) {
      // Only the writer's zero-filled padding follows the last record: nothing to keep.
      if (::truncate(seg->path.c_str(), static_cast<off_t>(scan.good_len)) != 0) {
        ThrowErrno("audit journal: truncate " + seg->path.string());
      }
    } else if (scan.good_len < data.size()) {
      char suffix[64];
      (void)std::snprintf(suffix, sizeof suffix, "-%06llu-%llu.bin",
                          static_cast<unsigned long long>(seg->index),
                          static_cast<unsigned long long>(scan.good_len));
      const auto torn = dir / ("torn-" + opt.node_id + suffix);
      const int tfd = ::open(torn.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
      if (tfd < 0) ThrowErrno("audit journal: open " + torn.string());
      try {
        // Without the trailing zero padding: it is no evidence, and on a full disk the
        // copy must stay small.
        WriteAll(tfd, std::string_view(data).substr(scan.good_len, evidence_end - scan.good_len),
                 torn.string());
        if (::fsync(tfd) != 0) ThrowErrno("audit journal: fsync " + torn.string());
      } catch (...) {
        ::close(tfd);
        throw;
      }
      ::close(tfd);
      FsyncDir(dir);
      if (::truncate(seg->path.c_str(), static_cast<off_t>(scan.good_len)) != 0) {
        ThrowErrno("audit journal: truncate " + seg->path.string());
      }
    }
    if (scan.last) {
      last_seq = scan.last->record.seq;
      last_hash = scan.last->hash;
      break;
    }
  }
  OpenSegment(segs.back().index, /*create=*/false);
  // Lines written before a process crash may still be only in the page cache.
  if (::fdatasync(seg_fd) != 0)
    ThrowErrno("audit journal: fdatasync " + SegmentPath(seg_index).string());
}

void Journal::Impl::OpenSegment(std::uint64_t index, bool create) {
  const auto path = SegmentPath(index);
  const int flags = O_WRONLY | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);
  const int fd = ::open(path.c_str(), flags, 0640);
  if (fd < 0) ThrowErrno("open " + path.string());
  if (create) {
    try {
      FsyncDir(dir);  // the new file's name must survive a crash too
    } catch (...) {
      ::close(fd);
      ::unlink(path.c_str());
      throw;
    }
  }
  const off_t size = ::lseek(fd, 0, SEEK_END);
  if (size < 0) {
    ::close(fd);
    ThrowErrno("lseek " + path.string());
  }
  if (seg_fd >= 0) ::close(seg_fd);
  seg_fd = fd;
  seg_index = index;
  seg_size = file_end = static_cast<std::uint64_t>(size);
}

// Zero-fills the current segment from file_end to past `end` (preallocate_bytes more,
// within the segment's size) and syncs it, once per preallocate_bytes of records. Best
// effort: if it fails (a full disk), the padding is cut off and the write appends.
void Journal::Impl::Reserve(std::uint64_t end) {
  file_end = std::max(file_end, seg_size);  // never zero what holds records
  if (opt.preallocate_bytes == 0 || end <= file_end) return;
  const auto now = std::chrono::steady_clock::now();
  if (now < reserve_retry_at) return;  // it failed a moment ago (a full disk): append
  const std::uint64_t target = std::max<std::uint64_t>(
      end, std::min<std::uint64_t>(end + opt.preallocate_bytes, opt.segment_bytes));
  static const std::string zeros(64 << 10, '\0');
  std::uint64_t written_to = file_end;
  try {
    for (std::uint64_t at = file_end; at < target;) {
      const auto n = std::min<std::uint64_t>(zeros.size(), target - at);
      written_to = at + n;  // a failed write may still have extended the file
      PWriteAll(seg_fd, std::string_view(zeros).substr(0, n), at, "padding");
      at += n;
    }
    if (::fdatasync(seg_fd) != 0) ThrowErrno("fdatasync padding");
    file_end = target;
  } catch (const std::exception& e) {
    spdlog::warn(
        "audit journal: cannot zero-fill {} bytes ahead in {} ({}); appending, "
        "trying again in {} ms",
        target - file_end, SegmentPath(seg_index).string(), e.what(), opt.preallocate_retry_ms);
    reserve_retry_at = now + std::chrono::milliseconds(opt.preallocate_retry_ms);
    if (::ftruncate(seg_fd, static_cast<off_t>(file_end)) != 0) {
      // The zeros stay: padding to every reader, cut when the segment is left (TrimPadding).
      file_end = std::max(file_end, written_to);
    }
  }
}

// Cuts the current segment's padding off (the segment is left, or the journal stops),
// so that a finished segment ends with its last record.
void Journal::Impl::TrimPadding() {
  if (seg_fd < 0 || file_end == seg_size || truncate_to) return;
  if (::ftruncate(seg_fd, static_cast<off_t>(seg_size)) == 0) file_end = seg_size;
}

// Rolls the segment back to `size` bytes (padding included); throws if it cannot.
void Journal::Impl::TruncateTo(std::uint64_t size) {
  if (::ftruncate(seg_fd, static_cast<off_t>(size)) != 0) {
    ThrowErrno("truncate " + SegmentPath(seg_index).string());
  }
  seg_size = file_end = size;
}

void Journal::Impl::Enqueue(boost::asio::any_io_executor ex, std::vector<Record> recs,
                            Handler handler) {
  Waiter w{std::move(recs),
           boost::asio::prefer(std::move(ex), boost::asio::execution::outstanding_work.tracked),
           std::move(handler)};
  const auto n = w.records.size();
  const char* refusal = nullptr;
  {
    std::lock_guard lk(mu);
    if (stopping) {
      refusal = "journal is stopped";
    } else if (pending.load(std::memory_order_relaxed) + n > opt.max_pending_records) {
      // The disk is not keeping up (stalled or failing): refuse rather than queue
      // without bound; the caller answers 503 and the client retries.
      refusal = "queue full (the disk is not keeping up)";
    } else {
      pending.fetch_add(n, std::memory_order_relaxed);
      queue.push_back(std::move(w));
    }
  }
  if (refusal) {
    refused.fetch_add(1, std::memory_order_relaxed);
    Complete(w, std::make_exception_ptr(
                    std::runtime_error(std::string("audit journal write failed: ") + refusal)));
    return;
  }
  cv.notify_one();
}

void Journal::Impl::Run() {
  std::vector<Waiter> batch;
  bool busy = false;  // records arrived while the last batch was being written
  for (;;) {
    // Under load, let the next batch fill for a moment: one sync for more records. The
    // appenders queue meanwhile (their notify finds no waiter: no wake-up per record).
    if (busy && opt.group_commit_wait_us > 0)
      std::this_thread::sleep_for(std::chrono::microseconds(opt.group_commit_wait_us));
    {
      std::unique_lock lk(mu);
      auto ready = [&] { return !queue.empty() || stopping; };
      if (healthy.load(std::memory_order_relaxed))
        cv.wait(lk, ready);
      else
        cv.wait_for(lk, std::chrono::milliseconds(opt.probe_interval_ms), ready);
      if (queue.empty()) {
        if (stopping) {  // everything is drained
          lk.unlock();
          TrimPadding();
          return;
        }
        lk.unlock();
        Probe();  // unhealthy and idle: has the disk come back?
        continue;
      }
      batch.swap(queue);
    }
    writing_since_ns.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                           std::memory_order_relaxed);
    const auto failed_before = failures.load(std::memory_order_relaxed);
    WriteBatch(batch);
    healthy.store(failures.load(std::memory_order_relaxed) == failed_before,
                  std::memory_order_relaxed);
    writing_since_ns.store(0, std::memory_order_relaxed);
    batch.clear();
    {
      std::lock_guard lk(mu);
      busy = !queue.empty() && !stopping;
    }
  }
}

// Health probe after a failed write: can the folder take a write and a sync again (a
// full disk with space freed, a read-only file system remounted read-write)? A pending
// rollback truncation is retried first; it failing keeps the journal unhealthy.
void Journal::Impl::Probe() {
  writing_since_ns.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                         std::memory_order_relaxed);
  bool ok = true;
  if (truncate_to) {
    try {
      TruncateTo(*truncate_to);
      truncate_to.reset();
    } catch (const std::exception&) {
      ok = false;
    }
  }
  if (ok) {
    const auto path = dir / (".probe-" + opt.node_id);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
      ok = false;
    } else {
      const std::string block(4096, '\n');
      ok = ::write(fd, block.data(), block.size()) == static_cast<ssize_t>(block.size()) &&
           ::fdatasync(fd) == 0;
      ::close(fd);
      ::unlink(path.c_str());
    }
  }
  healthy.store(ok, std::memory_order_relaxed);
  writing_since_ns.store(0, std::memory_order_relaxed);
}

void Journal::Impl::WriteBatch(std::vector<Waiter>& batch) {
  // A batch normally goes to the current segment in one write; if it would cross
  // segment_bytes it is split into chunks, each written (and synced) in its own segment.
  struct Chunk {
    bool new_segment;
    std::string data;
    long long last_seq;
    std::string last_hash;
  };
  for (auto& w : batch) w.last_seq = LLONG_MAX;  // "not durable" until proven otherwise

  std::exception_ptr error;
  try {
    std::vector<Chunk> chunks;
    chunks.push_back(Chunk{false, {}, last_seq, last_hash});
    std::uint64_t projected = truncate_to ? *truncate_to : seg_size;
    long long seq = last_seq;
    std::string prev = last_hash;
    for (auto& w : batch) {
      for (auto& r : w.records) {
        r.seq = ++seq;
        r.region = opt.region;
        r.node_id = opt.node_id;
        SanitizeRecord(r);
        // The line is the content with the hash appended as its last member: exactly
        // what SerializeLine(r, prev, &hash) gives (hex needs no escaping), one
        // serialization cheaper.
        std::string line = SerializeLine(r, prev, nullptr);
        std::string hash = Sha256Hex(line);
        line.pop_back();  // '}'
        line.append(R"(,"hash":")").append(hash).append("\"}\n");
        if (projected > 0 && projected + line.size() > opt.segment_bytes) {
          chunks.push_back(Chunk{true, {}, 0, {}});
          projected = 0;
        }
        auto& c = chunks.back();
        c.data += line;
        c.last_seq = seq;
        c.last_hash = hash;
        projected += line.size();
        prev = std::move(hash);
      }
      w.last_seq = seq;
    }

    if (truncate_to) {  // an earlier rollback could not truncate: retry first
      TruncateTo(*truncate_to);
      truncate_to.reset();
    }
    for (auto& c : chunks) {
      if (c.data.empty()) continue;
      if (c.new_segment) {
        TrimPadding();
        OpenSegment(seg_index + 1, /*create=*/true);
      }
      const auto path = SegmentPath(seg_index).string();
      Reserve(seg_size + c.data.size());
      truncate_to = seg_size;  // until the sync succeeds, bytes past seg_size are not durable
      PWriteAll(seg_fd, c.data, seg_size, path);
      const int rc = ::fdatasync(seg_fd);
      syncs.fetch_add(1, std::memory_order_relaxed);
      if (rc != 0) ThrowErrno("fdatasync " + path);
      truncate_to.reset();
      seg_size += c.data.size();
      file_end = std::max(file_end, seg_size);  // an append grew the file
      last_seq = c.last_seq;
      last_hash = c.last_hash;
      Publish();
    }
  } catch (const std::exception& e) {
    failures.fetch_add(1, std::memory_order_relaxed);
    error = std::make_exception_ptr(
        std::runtime_error(std::string("audit journal write failed: ") + e.what()));
    // Roll back to the last durable record now; if the truncation fails too it is
    // retried before the next batch is written (and fails that batch if it fails again).
    if (truncate_to) {
      try {
        TruncateTo(*truncate_to);
        truncate_to.reset();
      } catch (const std::exception&) {
      }
    }
  }

  // A waiter succeeds only if all its records are durable; records of a failed waiter
  // that did reach the disk stay in the trail (an extra record is harmless). Stats first,
  // so a resumed caller sees them.
  std::uint64_t done = 0, total = 0;
  for (const auto& w : batch) {
    total += w.records.size();
    if (w.last_seq <= last_seq) done += w.records.size();
  }
  records.fetch_add(done, std::memory_order_relaxed);
  pending.fetch_sub(total, std::memory_order_relaxed);
  for (auto& w : batch) Complete(w, w.last_seq <= last_seq ? nullptr : error);
}

Journal::Journal(JournalOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  if (!impl_->opt.enabled) return;
  impl_->Open();
  impl_->writer = std::thread([impl = impl_.get()] {
    pthread_setname_np(pthread_self(), "continuum-audit");  // top -H, perf: the writer's share
    impl->Run();
  });
}

// The durable mark outlives Stop() (the shipper's last round signs the final head from
// it) and goes with the object, like the folder's lock.
Journal::~Journal() {
  Stop();
  if (!impl_->durable_key.empty()) RemoveDurableMark(impl_->durable_key);
}

namespace {
// One Append's wait: the writer's completion (posted to the caller's executor) or the
// deadline, whichever comes first. Shared, so a completion arriving after the deadline
// finds it alive.
struct AppendWait {
  explicit AppendWait(const boost::asio::any_io_executor& ex) : timer(ex) {}
  boost::asio::steady_timer timer;
  bool done = false;
  std::exception_ptr error;
};
}  // namespace

boost::asio::awaitable<void> Journal::Append(boost::asio::any_io_executor ex,
                                             std::vector<Record> records,
                                             std::chrono::steady_clock::time_point deadline) {
  if (!impl_->opt.enabled || records.empty()) co_return;
  std::string now;
  for (auto& r : records) {
    if (r.recorded_at.empty()) {
      if (now.empty()) now = NowRfc3339();
      r.recorded_at = now;
    } else if (!ParseRfc3339Micros(r.recorded_at)) {
      throw std::invalid_argument("audit record: recorded_at is not RFC 3339 (" +
                                  r.recorded_at.substr(0, 40) + ")");
    }
  }
  auto wait = std::make_shared<AppendWait>(ex);
  wait->timer.expires_at(deadline);
  // The completion runs on `ex` (single-threaded), so it cannot run before this
  // coroutine waits on the timer; expiring the timer wakes the wait, or makes a wait
  // not yet begun return at once.
  impl_->Enqueue(ex, std::move(records), Handler([wait](std::exception_ptr ep) {
                   wait->done = true;
                   wait->error = std::move(ep);
                   wait->timer.expires_at(std::chrono::steady_clock::now());
                 }));
  co_await wait->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  if (!wait->done) {
    impl_->refused.fetch_add(1, std::memory_order_relaxed);
    throw std::runtime_error(
        "audit journal write failed: not durable within the request deadline (the disk is "
        "stalled)");
  }
  if (wait->error) std::rethrow_exception(wait->error);
}

void Journal::Stop() {
  if (!impl_->writer.joinable()) return;
  {
    std::lock_guard lk(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_one();
  impl_->writer.join();
}

JournalStats Journal::stats() const {
  JournalStats s;
  s.records = impl_->records.load(std::memory_order_relaxed);
  s.syncs = impl_->syncs.load(std::memory_order_relaxed);
  s.pending = impl_->pending.load(std::memory_order_relaxed);
  s.failures = impl_->failures.load(std::memory_order_relaxed);
  s.last_seq = impl_->last_seq_pub.load(std::memory_order_relaxed);
  s.refused = impl_->refused.load(std::memory_order_relaxed);
  s.healthy = !impl_->opt.enabled || impl_->healthy.load(std::memory_order_relaxed);
  if (auto since = impl_->writing_since_ns.load(std::memory_order_relaxed); since != 0)
    s.writing_for_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now().time_since_epoch() -
                           std::chrono::steady_clock::duration(since))
                           .count();
  s.epoch_start_seq = impl_->epoch_start_seq;
  return s;
}

const JournalOptions& Journal::options() const { return impl_->opt; }

}  // namespace continuum::audit
