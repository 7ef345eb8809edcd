// Non-blocking libpq on the Asio executor, and the per-tier connection pools.
//
// A Pool belongs to one shard (one io_context, one thread): nothing in here locks.
// Every statement runs in libpq pipeline mode: a batch of statements (prepare when
// first seen on a connection, set statement_timeout when the request's remaining time
// calls for it, execute) goes out in one round trip and runs as one implicit
// transaction. The request's Deadline bounds the wait for a connection, sets the
// server-side statement_timeout, and bounds the socket waits.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/deadline.hpp"
#include "core/secret.hpp"

struct pg_conn;
struct pg_result;

namespace continuum::db {

// What a write changes decides how it commits (ARCHITECTURE §4). This is the one
// place that says so: every Query names its class, and Connection::Run commits a batch
// made only of operational statements with synchronous_commit = local (fast, may lose
// the last moments on failover); anything else waits for the synchronous standby in
// another region (zero loss on failover).
enum class DataClass {
  kClinical,     // records, medications, allergies, notes, appointments, messages
  kUser,         // accounts, sessions, credentials
  kAudit,        // the HIPAA audit trail
  kOperational,  // analytics, activity timestamps, journey results, request logs, caches
};
constexpr bool CommitsLocally(DataClass c) { return c == DataClass::kOperational; }

// Whether a query changes anything. Stated on every named query, never guessed from
// its text (`SELECT ... FROM continuum_book(...)` writes): a batch made only of kRead
// queries may be replayed on a fresh connection after a connection loss; a batch with a
// kWrite query is sent once unless its caller vouches for it (BatchOptions::kIdempotent),
// since the server may have committed it before the connection broke.
enum class Access { kRead, kWrite };

// A named query: its name keys prepared statements, timeouts and metrics. The access is
// required (no default), so a new query cannot forget to say whether it writes.
struct Query {
  constexpr Query(const char* n, const char* s, Access a, DataClass c = DataClass::kClinical)
      : name(n), sql(s), access(a), data_class(c) {}
  const char* name;
  const char* sql;
  Access access;
  DataClass data_class;
};

// A text-format parameter ($1, $2, ...).
struct Param {
  Param(std::nullopt_t) : null(true) {}
  Param(std::string v) : value(std::move(v)) {}
  Param(std::string_view v) : value(v) {}
  Param(const char* v) : value(v) {}
  Param(int64_t v) : value(std::to_string(v)) {}
  Param(int v) : value(std::to_string(v)) {}
  Param(bool v) : value(v ? "true" : "false") {}
  std::string value;
  bool null = false;
};
using Params = std::vector<Param>;

// Builds Params without an initializer_list: GCC 12 rejects braced lists whose
// lifetime spans a co_await ("array used as initializer"), so coroutines write
// co_await pool.Exec(q, db::P(a, b), deadline).
template <typename... A>
Params P(A&&... a) {
  Params v;
  v.reserve(sizeof...(a));
  (v.emplace_back(std::forward<A>(a)), ...);
  return v;
}

class Result {
 public:
  Result() = default;
  explicit Result(pg_result* r);
  int rows() const { return rows_; }
  int cols() const { return cols_; }
  bool null(int row, int col) const;
  std::string_view get(int row, int col) const;
  std::string str(int row, int col) const { return std::string(get(row, col)); }
  int64_t get_int(int row, int col) const;
  bool get_bool(int row, int col) const { return get(row, col) == "t"; }
  int64_t affected() const;  // rows affected by INSERT/UPDATE/DELETE

 private:
  std::shared_ptr<pg_result> res_;
  int rows_ = 0;
  int cols_ = 0;
};

struct Statement {
  const Query* query;
  Params params;
};

// A connection's TCP socket fails when data it sent (a SYN too) stays unacknowledged this
// long (libpq tcp_user_timeout): a database behind a network partition, whose packets
// vanish, costs this much per host of a multi-host URL instead of the kernel's minutes.
inline constexpr int kTcpUserTimeoutMs = 2500;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  explicit Connection(boost::asio::any_io_executor ex);
  ~Connection();
  boost::asio::awaitable<void> Connect(const std::string& conninfo, Deadline deadline);
  // Runs the statements as one pipeline (one round trip, one implicit transaction).
  //
  // With `require_sync_standby`, a batch that writes clinical data is acknowledged only
  // when a synchronous standby holds its commit. PostgreSQL acknowledges a commit without
  // one while synchronous_standby_names is empty: Patroni's non-strict synchronous mode
  // empties it when the sync standby is lost (releasing the commits that were waiting for
  // it) and leaves it empty for a few seconds after a failover. So the same round trip
  // reads the setting before and after the commit (the session sees a reload at the next
  // message, and the postmaster signals every backend before the releasing reload is
  // read); when either was empty, the commit is held: every 100 ms a barrier transaction
  // (an xid, synchronously committed) is run, and once it commits while a standby is named,
  // that standby has flushed the WAL up to the barrier and so our commit. When the
  // deadline passes first, SyncStandbyUnavailable (503): the write may stand on the
  // primary alone; the client retries with its idempotency key. A lone surviving
  // database therefore takes no clinical writes (the policy, db/README.md).
  boost::asio::awaitable<std::vector<Result>> Run(const std::vector<Statement>& stmts,
                                                  Deadline deadline,
                                                  bool require_sync_standby = false);
  // Several read-only batches in one round trip (Pool::Batch groups the reads queued for
  // a connection): each is its own implicit transaction behind its own sync point, so one
  // batch's error aborts none of the others. `done(i, results, error)` is called once for
  // every batch, in order, as soon as its results are in (error set instead when it
  // failed, or when the connection was lost before its results came). The socket waits
  // and statement_timeout follow the latest deadline of the group; a batch whose own
  // deadline has passed before sending is answered DeadlineExceeded and not sent.
  struct GroupBatch {
    const std::vector<Statement>* stmts;
    Deadline deadline;
  };
  using GroupDone = std::function<void(std::size_t, std::vector<Result>, std::exception_ptr)>;
  boost::asio::awaitable<void> RunGroup(const std::vector<GroupBatch>& batches,
                                        const GroupDone& done);
  bool broken() const { return broken_; }
  // Cheap, non-blocking check of an idle connection: false when the server closed it
  // (restart, failover, idle kill). Marks the connection broken then.
  bool LooksAlive();
  // Held clinical commits so far (all connections of the process), for tests and metrics.
  static uint64_t held_commits();
  // Connects of a multi-host URL that went on to the hosts after one where libpq had stopped
  // (e.g. it accepted and closed: db/hosts.hpp), so far in the process; for tests.
  static uint64_t hosts_resumed();
  // True when the server reports itself a hot standby (read-only).
  bool in_hot_standby() const;

 private:
  // One pipeline: stmts (one implicit transaction), optionally framed by reads of
  // synchronous_standby_names; *sync_named = both reads named a standby.
  boost::asio::awaitable<std::vector<Result>> RunOnce(const std::vector<Statement>& stmts,
                                                      Deadline deadline, bool check_sync,
                                                      bool* sync_named);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool broken_ = false;
};

struct PoolOptions {
  std::string name;  // e.g. "critical"
  Secret database_url;
  int size = 4;
  int queue_limit = 64;
  // Clinical commits need a synchronous standby (see Connection::Run): on in a replicated
  // deployment (the node sets it from database.clinical_commit), off for a lone database.
  bool require_sync_standby = false;
  // Read-only batches waiting for a connection that may go in one round trip with the one
  // the next free connection is handed to (Connection::RunGroup): under saturation the
  // database then answers many small reads per wakeup instead of one. 1 = each its own.
  int group_limit = 1;
};

struct PoolStats {
  std::atomic<int64_t> open{0};
  std::atomic<int64_t> in_use{0};
  std::atomic<int64_t> waiting{0};
  std::atomic<uint64_t> acquired{0};
  std::atomic<uint64_t> rejected{0};       // queue full
  std::atomic<uint64_t> wait_timeouts{0};  // deadline spent waiting
  std::atomic<uint64_t> connect_failures{0};
  std::atomic<uint64_t> connect_backoffs{0};  // connects that waited for the pool's backoff
  std::atomic<uint64_t> grouped{0};           // read batches sent in another's round trip
  std::atomic<uint64_t> query_failures{0};
  std::atomic<int64_t> last_ok_unix{0};
  std::atomic<int64_t> last_failure_unix{0};
};

struct BatchOptions {
  enum class Replay {
    kAuto,        // replay read-only batches on a fresh connection within the deadline
    kIdempotent,  // the caller guarantees a replay has no second effect (idempotency key)
    kNever,       // one attempt; the caller handles failover itself
  };
  Replay replay = Replay::kAuto;
  // When set, receives the server's WAL position right after the batch committed: a
  // replica that has replayed up to it sees the batch's effects (read-your-writes).
  uint64_t* commit_lsn = nullptr;
};

class Pool;

// A connection borrowed from a pool; returns itself when destroyed.
class Lease {
 public:
  Lease(Pool* pool, std::shared_ptr<Connection> c) : pool_(pool), conn_(std::move(c)) {}
  Lease(Lease&& o) noexcept : pool_(o.pool_), conn_(std::move(o.conn_)) { o.pool_ = nullptr; }
  Lease& operator=(Lease&&) = delete;
  ~Lease();
  Connection& operator*() { return *conn_; }
  Connection* operator->() { return conn_.get(); }

 private:
  Pool* pool_;
  std::shared_ptr<Connection> conn_;
};

class Pool {
 public:
  Pool(boost::asio::any_io_executor ex, PoolOptions options);
  ~Pool();
  // Waits (bounded by the deadline and the queue cap) for a connection.
  boost::asio::awaitable<Lease> Acquire(Deadline deadline);
  // Convenience: acquire, run one statement, release.
  boost::asio::awaitable<Result> Exec(const Query& q, Params params, Deadline deadline);
  // Convenience: acquire, run a batch atomically, release. Failures to get a
  // connection (nothing was sent) are retried while the deadline allows; a batch that
  // was sent is replayed only when it is read-only or the caller says it is idempotent.
  boost::asio::awaitable<std::vector<Result>> Batch(std::vector<Statement> stmts, Deadline deadline,
                                                    BatchOptions options = {});
  // Closes idle connections and forgets waiters; leases returned later are dropped.
  // Called at shutdown while the io_context still exists.
  void Close();
  const PoolOptions& options() const { return options_; }
  const PoolStats& stats() const { return stats_; }
  PoolStats& mutable_stats() { return stats_; }

 private:
  friend class Lease;
  struct Waiter;
  // Acquire, or (with `group`, a read-only batch) ride the round trip of the waiter the
  // next connection goes to: then the waiter comes back with its results, no lease.
  boost::asio::awaitable<std::variant<Lease, std::shared_ptr<Waiter>>> AcquireOrJoin(
      Deadline deadline, const std::vector<Statement>* group);
  // Runs `stmts` on the lease together with the groupable waiters at the queue's head.
  boost::asio::awaitable<std::vector<Result>> RunLed(Lease& lease,
                                                     const std::vector<Statement>& stmts,
                                                     Deadline deadline);
  void Release(std::shared_ptr<Connection> c);
  bool HandOver(std::shared_ptr<Connection> c);

  boost::asio::any_io_executor ex_;
  PoolOptions options_;
  PoolStats stats_;
  std::vector<std::shared_ptr<Connection>> idle_;
  int total_ = 0;  // open + connecting
  // Connects while the database fails them (db/README.md, "Connect backoff"): after a
  // failed connect, one at a time and no sooner than retry_at_.
  int connecting_ = 0;       // connects in flight (and waiters handed the right to open one)
  int failed_connects_ = 0;  // in a row; 0 after a connect succeeds
  std::chrono::steady_clock::time_point retry_at_{};
  bool closed_ = false;
  std::deque<std::shared_ptr<Waiter>> waiters_;
};

}  // namespace continuum::db
