#include "db/pool.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdlib>
#include <unordered_map>
#include <unordered_set>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "db/errors.hpp"
#include "db/hosts.hpp"

namespace continuum::db {
namespace asio = boost::asio;

namespace {
// statement_timeout is set in steps so that most batches need not change it.
constexpr int kTimeoutStepMs = 250;
constexpr int kKeepaliveIdleS = 2;
const Query kSetTimeout{"set_statement_timeout",
                        "SELECT set_config('statement_timeout', $1, false)", Access::kRead};
// Read before and after a clinical commit (see Connection::Run).
const Query kSyncNames{"sync_standby_names", "SELECT current_setting('synchronous_standby_names')",
                       Access::kRead};
// Takes an xid, so its commit writes a record and waits for the synchronous standby.
const Query kSyncBarrier{"sync_barrier", "SELECT pg_current_xact_id()::text", Access::kWrite,
                         DataClass::kClinical};
std::atomic<uint64_t> held_commits_total{0};
// Connects that went on past a host libpq had stopped at (Connection::Connect).
std::atomic<uint64_t> connect_retries_total{0};
// Transaction-local: a grouped batch whose deadline ends before the group's (RunGroup).
const Query kSetLocalTimeout{"set_statement_timeout_local",
                             "SELECT set_config('statement_timeout', $1, true)", Access::kRead};
// Transaction-local: ends with the batch's implicit transaction.
const Query kCommitLocally{"set_synchronous_commit_local",
                           "SELECT set_config('synchronous_commit', 'local', true)", Access::kRead};
const Query kWalPosition{"wal_position", "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::text",
                         Access::kRead};
}  // namespace

// ---------------------------------------------------------------- Result

Result::Result(pg_result* r)
    : res_(r, [](pg_result* p) { PQclear(p); }), rows_(PQntuples(r)), cols_(PQnfields(r)) {}

bool Result::null(int row, int col) const { return PQgetisnull(res_.get(), row, col) != 0; }

std::string_view Result::get(int row, int col) const {
  return {PQgetvalue(res_.get(), row, col),
          static_cast<std::size_t>(PQgetlength(res_.get(), row, col))};
}

int64_t Result::get_int(int row, int col) const {
  return std::strtoll(PQgetvalue(res_.get(), row, col), nullptr, 10);
}

int64_t Result::affected() const {
  const char* s = PQcmdTuples(res_.get());
  return s && *s ? std::strtoll(s, nullptr, 10) : 0;
}

// ---------------------------------------------------------------- Connection

struct Connection::Impl {
  explicit Impl(asio::any_io_executor ex) : ex(ex), timer(ex) {}
  asio::any_io_executor ex;
  PGconn* conn = nullptr;
  std::optional<asio::posix::stream_descriptor> sock;
  asio::steady_timer timer;
  bool timed_out = false;
  uint64_t generation = 0;
  std::unordered_set<std::string> prepared;
  int statement_timeout_ms = -1;  // unknown

  // (Re)registers libpq's current socket. While connecting, libpq may close its socket
  // and open another for the next host, often under the same fd number, which the
  // reactor no longer watches: so during connect this runs after every poll step.
  void Adopt() {
    if (sock) sock->release();
    sock.emplace(ex, PQsocket(conn));
  }
  // Arms the deadline timer: on expiry the pending socket wait is cancelled.
  void Arm(Deadline d, std::weak_ptr<Connection> owner) {
    timed_out = false;
    uint64_t gen = ++generation;
    timer.expires_at(d.is_never() ? asio::steady_timer::time_point::max() : d.at());
    // The callback may run after the connection is gone: it holds only a weak_ptr.
    timer.async_wait([owner = std::move(owner), this, gen](boost::system::error_code ec) {
      auto alive = owner.lock();
      if (!ec && alive && gen == generation) {
        timed_out = true;
        if (sock) sock->cancel();
      }
    });
  }
  void Disarm() {
    ++generation;
    timer.cancel();
  }
  asio::awaitable<bool> Wait(asio::posix::descriptor_base::wait_type w) {
    auto [ec] = co_await sock->async_wait(w, asio::as_tuple(asio::use_awaitable));
    co_return !ec;
  }
  ~Impl() {
    if (sock) sock->release();  // libpq owns the descriptor
    if (conn) PQfinish(conn);
  }
};

Connection::Connection(asio::any_io_executor ex) : impl_(std::make_unique<Impl>(ex)) {}
Connection::~Connection() = default;

bool Connection::in_hot_standby() const {
  const char* v = impl_->conn ? PQparameterStatus(impl_->conn, "in_hot_standby") : nullptr;
  return v && std::string_view(v) == "on";
}

bool Connection::LooksAlive() {
  if (broken_ || !impl_->conn || PQstatus(impl_->conn) != CONNECTION_OK) return !(broken_ = true);
  pollfd p{PQsocket(impl_->conn), POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) > 0) {
    // An idle connection has nothing to read but notices: a closed socket, or an
    // error the server sent before hanging up (57P01 on shutdown), means it is gone.
    if ((p.revents & (POLLRDHUP | POLLHUP | POLLERR)) || !PQconsumeInput(impl_->conn) ||
        PQstatus(impl_->conn) != CONNECTION_OK)
      return !(broken_ = true);
    if (!PQisBusy(impl_->conn)) {
      if (PGresult* r = PQgetResult(impl_->conn)) {
        PQclear(r);
        return !(broken_ = true);
      }
    }
  }
  return true;
}

asio::awaitable<void> Connection::Connect(const std::string& conninfo, Deadline deadline) {
  auto& d = *impl_;
  // libpq ignores connect_timeout in this non-blocking connect (PQconnectPoll), and a
  // database behind a network partition drops our packets instead of refusing them: a
  // SYN to it, or a query sent on an open connection, waits for the kernel's own timeouts
  // (minutes), and a multi-host URL never reaches the next host (the new primary). So
  // the kernel is told to give up sooner: data (a SYN too) unacknowledged for
  // kTcpUserTimeoutMs fails the socket, and an idle-looking connection (a query whose
  // answer never comes) is probed after kKeepaliveIdleS. An answer that is merely slow
  // (a lock, a commit waiting for its standby) is acknowledged by the server's kernel and
  // is not affected. These come before the expanded URL (dbname): the URL may override.
  const std::string user_timeout = std::to_string(kTcpUserTimeoutMs);
  const std::string idle = std::to_string(kKeepaliveIdleS);
  // libpq gives up on a multi-host URL at a host that accepts and then closes (a proxy in
  // front of a stopped database): the hosts after it are tried here, after that and any
  // other failure but a timeout (db/hosts.hpp).
  std::optional<HostList> hosts = ParseHosts(conninfo);
  std::optional<HostList> rest;  // set: this round overrides the URL's hosts with these
  for (;;) {
    std::vector<const char*> keys = {"keepalives",       "keepalives_idle",  "keepalives_interval",
                                     "keepalives_count", "tcp_user_timeout", "dbname"};
    std::vector<const char*> values = {"1", idle.c_str(),         "1",
                                       "2", user_timeout.c_str(), conninfo.c_str()};
    std::array<std::string, 3> overrides;  // alive until the connect call has copied them
    if (rest) rest->AppendKeywords(keys, values, overrides);
    keys.push_back(nullptr);
    values.push_back(nullptr);
    if (d.conn) {
      if (d.sock) d.sock->release();  // libpq owns the descriptor
      d.sock.reset();
      PQfinish(d.conn);
    }
    d.conn = PQconnectStartParams(keys.data(), values.data(), /*expand_dbname=*/1);
    // Bad at once: a bad option, or every host refused before a byte was exchanged.
    if (!d.conn || PQstatus(d.conn) == CONNECTION_BAD) {
      d.Disarm();
      broken_ = true;
      throw ConnectionError("the database is unavailable right now; please retry shortly");
    }
    if (!rest) d.Arm(deadline, weak_from_this());  // one deadline for every round
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK) {
      if (st == PGRES_POLLING_FAILED || d.timed_out) break;
      d.Adopt();
      bool ok =
          co_await d.Wait(st == PGRES_POLLING_READING ? asio::posix::descriptor_base::wait_read
                                                      : asio::posix::descriptor_base::wait_write);
      if (!ok) break;
      st = PQconnectPoll(d.conn);
    }
    if (st == PGRES_POLLING_OK) break;
    if (!d.timed_out && hosts) {
      if (auto next = HostsAfter(rest ? *rest : *hosts, d.conn)) {
        connect_retries_total.fetch_add(1);
        rest = std::move(next);
        continue;
      }
    }
    d.Disarm();
    broken_ = true;
    if (d.timed_out)
      throw ConnectionError("connecting to the database took longer than the request deadline");
    throw ConnectionError("the database is unavailable right now; please retry shortly");
  }
  d.Disarm();
  d.Adopt();
  if (PQsetnonblocking(d.conn, 1) != 0 || PQenterPipelineMode(d.conn) != 1) {
    broken_ = true;
    throw ConnectionError("could not set up the database connection");
  }
}

uint64_t Connection::held_commits() { return held_commits_total.load(); }
uint64_t Connection::hosts_resumed() { return connect_retries_total.load(); }

asio::awaitable<std::vector<Result>> Connection::Run(const std::vector<Statement>& stmts,
                                                     Deadline deadline, bool require_sync_standby) {
  bool clinical_write = false, all_local = !stmts.empty();
  for (const auto& s : stmts) {
    all_local = all_local && CommitsLocally(s.query->data_class);
    clinical_write = clinical_write || (s.query->access == Access::kWrite &&
                                        s.query->data_class == DataClass::kClinical);
  }
  const bool check = require_sync_standby && clinical_write && !all_local;
  bool named = true;
  auto results = co_await RunOnce(stmts, deadline, check, &named);
  if (!check || named) co_return results;
  // Committed, but maybe on this server alone: hold the acknowledgement (see header).
  held_commits_total.fetch_add(1);
  asio::steady_timer pause(impl_->ex);
  std::vector<Statement> barrier;
  barrier.push_back(Statement{&kSyncBarrier, {}});
  for (;;) {
    if (deadline.left() < std::chrono::milliseconds(150))
      throw SyncStandbyUnavailable(
          "the write reached the primary database, but no synchronous standby confirmed it "
          "within the request deadline; please retry with the same Idempotency-Key");
    pause.expires_after(std::chrono::milliseconds(100));
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    try {
      co_await RunOnce(barrier, deadline, true, &named);
    } catch (const Error&) {
      // The commit stands (or stood) on this server; a replay of the batch could do it
      // twice, so no ConnectionError escapes from here.
      throw SyncStandbyUnavailable(
          "the database failed over while confirming the write; please retry with the same "
          "Idempotency-Key");
    }
    if (named) co_return results;
  }
}

asio::awaitable<std::vector<Result>> Connection::RunOnce(const std::vector<Statement>& stmts,
                                                         Deadline deadline, bool check_sync,
                                                         bool* sync_named) {
  auto& d = *impl_;
  if (broken_) throw ConnectionError("the database connection was lost; please retry");
  deadline.Check("waiting for the database");
  auto started = std::chrono::steady_clock::now();

  // What each PGresult sequence (terminated by NULL) belongs to.
  enum Kind { kHousekeeping, kPrepare, kQuery, kCheck };
  struct Expect {
    Kind kind;
    std::size_t index;
  };
  std::vector<Expect> expect;
  std::unordered_set<std::string_view> preparing;
  auto fail_send = [&]() -> void {
    broken_ = true;
    throw ConnectionError("the database connection was lost; please retry");
  };
  int want_timeout = 0;
  if (!deadline.is_never()) {
    auto left = static_cast<int>(deadline.left().count());
    want_timeout = std::max(kTimeoutStepMs, left / kTimeoutStepMs * kTimeoutStepMs);
  }
  bool set_timeout = want_timeout != d.statement_timeout_ms;
  if (set_timeout) {
    std::string v = std::to_string(want_timeout);
    const char* vals[1] = {v.c_str()};
    if (!PQsendQueryParams(d.conn, kSetTimeout.sql, 1, nullptr, vals, nullptr, nullptr, 0))
      fail_send();
    expect.push_back({kHousekeeping, 0});
  }
  bool local_commit = !stmts.empty();
  for (const auto& s : stmts) local_commit = local_commit && CommitsLocally(s.query->data_class);
  if (local_commit) {
    if (!PQsendQueryParams(d.conn, kCommitLocally.sql, 0, nullptr, nullptr, nullptr, nullptr, 0))
      fail_send();
    expect.push_back({kHousekeeping, 0});
  }
  std::string names[2];
  bool names_read[2] = {false, false};
  if (check_sync) {
    if (!PQsendQueryParams(d.conn, kSyncNames.sql, 0, nullptr, nullptr, nullptr, nullptr, 0))
      fail_send();
    expect.push_back({kCheck, 0});
  }
  std::vector<const char*> vals;
  for (std::size_t i = 0; i < stmts.size(); ++i) {
    const auto& s = stmts[i];
    if (!d.prepared.contains(s.query->name) && !preparing.contains(s.query->name)) {
      if (!PQsendPrepare(d.conn, s.query->name, s.query->sql, 0, nullptr)) fail_send();
      preparing.insert(s.query->name);
      expect.push_back({kPrepare, i});
    }
    vals.clear();
    for (const auto& p : s.params) vals.push_back(p.null ? nullptr : p.value.c_str());
    if (!PQsendQueryPrepared(d.conn, s.query->name, static_cast<int>(vals.size()), vals.data(),
                             nullptr, nullptr, 0))
      fail_send();
    expect.push_back({kQuery, i});
  }
  if (!PQpipelineSync(d.conn)) fail_send();
  // After the commit, in its own implicit transaction.
  if (check_sync) {
    if (!PQsendQueryParams(d.conn, kSyncNames.sql, 0, nullptr, nullptr, nullptr, nullptr, 0) ||
        !PQpipelineSync(d.conn))
      fail_send();
  }

  d.Arm(deadline, weak_from_this());
  std::vector<Result> results(stmts.size());
  std::string err_state, err_constraint, err_message;
  bool lost = false;
  // Flush.
  for (;;) {
    int f = PQflush(d.conn);
    if (f == 0) break;
    if (f < 0 || !co_await d.Wait(asio::posix::descriptor_base::wait_write)) {
      lost = true;
      break;
    }
  }
  auto next = [&]() -> asio::awaitable<PGresult*> {
    while (PQisBusy(d.conn)) {
      if (!co_await d.Wait(asio::posix::descriptor_base::wait_read) || !PQconsumeInput(d.conn)) {
        lost = true;
        co_return nullptr;
      }
    }
    co_return PQgetResult(d.conn);
  };
  for (std::size_t k = 0; k < expect.size() && !lost; ++k) {
    const Expect& owner = expect[k];
    // Results of one command, up to the NULL that ends them.
    for (;;) {
      PGresult* r = co_await next();
      if (lost || !r) break;
      auto st = PQresultStatus(r);
      if (st == PGRES_FATAL_ERROR && err_state.empty()) {
        const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char* c = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
        const char* m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        err_state = s ? s : "XX000";
        err_constraint = c ? c : "";
        err_message = m ? m : "";
        PQclear(r);
      } else if (owner.kind == kQuery && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)) {
        results[owner.index] = Result(r);
      } else if (owner.kind == kCheck && st == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        names[owner.index] = PQgetvalue(r, 0, 0);
        names_read[owner.index] = true;
        PQclear(r);
      } else {
        if (owner.kind == kPrepare && st == PGRES_COMMAND_OK)
          d.prepared.insert(stmts[owner.index].query->name);
        PQclear(r);
      }
    }
  }
  // The sync marker.
  auto sync_marker = [&]() -> asio::awaitable<void> {
    while (!lost) {
      PGresult* r = co_await next();
      if (lost) break;
      if (!r) {
        if (PQstatus(d.conn) != CONNECTION_OK) lost = true;
        continue;
      }
      bool sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
      PQclear(r);
      if (sync) break;
    }
  };
  co_await sync_marker();
  if (check_sync && !lost) {
    // The setting after the commit, then its own sync marker.
    for (;;) {
      PGresult* r = co_await next();
      if (lost || !r) break;
      if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        names[1] = PQgetvalue(r, 0, 0);
        names_read[1] = true;
      }
      PQclear(r);
    }
    co_await sync_marker();
  }
  if (sync_named)
    *sync_named =
        !check_sync || (names_read[0] && names_read[1] && !names[0].empty() && !names[1].empty());
  d.Disarm();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const char* qname = stmts.empty() ? "empty" : stmts.back().query->name;
  if (lost || PQstatus(d.conn) != CONNECTION_OK) {
    broken_ = true;
    Metrics::Get().ObserveQuery(qname, false, secs);
    if (d.timed_out) throw QueryCanceled("the database did not answer within the request deadline");
    throw ConnectionError("the database connection was lost; please retry");
  }
  if (!err_state.empty()) {
    // Connection-level states (shutdown, crash recovery, a demoted primary answering
    // read-only): drop the connection so the pool opens a fresh one, which libpq
    // points at the current read-write host.
    auto cls = err_state.substr(0, 2);
    if (cls == "08" || cls == "53" || cls == "57" || err_state == "25006") broken_ = true;
    d.statement_timeout_ms = -1;  // the implicit transaction rolled back any set_config
    // Prepares that completed are remembered above (they are not transactional);
    // those skipped by the aborted pipeline were not.
    Metrics::Get().ObserveQuery(qname, false, secs);
    ThrowForSqlState(err_state, err_constraint, err_message, qname);
  }
  if (set_timeout) d.statement_timeout_ms = want_timeout;
  Metrics::Get().ObserveQuery(qname, true, secs);
  co_return results;
}

asio::awaitable<void> Connection::RunGroup(const std::vector<GroupBatch>& batches,
                                           const GroupDone& done) {
  auto& d = *impl_;
  constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::vector<bool> answered(batches.size(), false);
  auto answer = [&](std::size_t i, std::vector<Result> r, std::exception_ptr e) {
    answered[i] = true;
    done(i, std::move(r), std::move(e));
  };
  auto lost_error = [](bool timed_out) {
    try {
      if (timed_out) throw QueryCanceled("the database did not answer within the request deadline");
      throw ConnectionError("the database connection was lost; please retry");
    } catch (...) {
      return std::current_exception();
    }
  };
  auto answer_rest = [&](std::exception_ptr e) {
    for (std::size_t i = 0; i < batches.size(); ++i)
      if (!answered[i]) answer(i, {}, e);
  };
  if (broken_) {
    answer_rest(lost_error(false));
    co_return;
  }
  // Batches already out of time are answered now and not sent; the rest share the latest
  // deadline for the socket waits and the session's statement_timeout, and a batch whose
  // own time ends sooner sets its own for its transaction.
  std::vector<std::size_t> live;
  Deadline latest(Deadline::Clock::time_point::min());
  for (std::size_t i = 0; i < batches.size(); ++i) {
    if (batches[i].deadline.expired()) {
      try {
        throw DeadlineExceeded("request deadline exceeded while waiting for the database");
      } catch (...) {
        answer(i, {}, std::current_exception());
      }
      continue;
    }
    live.push_back(i);
    if (batches[i].deadline.at() > latest.at()) latest = batches[i].deadline;
  }
  if (live.empty()) co_return;
  auto timeout_for = [](Deadline dl) {
    if (dl.is_never()) return 0;  // PostgreSQL: no limit
    auto left = static_cast<int>(dl.left().count());
    return std::max(kTimeoutStepMs, left / kTimeoutStepMs * kTimeoutStepMs);
  };
  const int want_timeout = timeout_for(latest);
  const bool set_timeout = want_timeout != d.statement_timeout_ms;
  auto started = std::chrono::steady_clock::now();
  // What each PGresult sequence (up to its NULL) belongs to. The housekeeping segments
  // come first, each behind its own sync point (so committed on its own, and one failing
  // prepare skips no other): the session's statement_timeout, then one per prepare the
  // group needs. Then one segment per batch.
  enum Kind { kTimeout, kPrepare, kLocal, kQuery };
  struct Pending {
    Kind kind;
    const char* name;   // kPrepare: the statement prepared
    std::size_t index;  // kQuery: the statement's index within its batch
  };
  std::vector<std::pair<std::size_t, std::vector<Pending>>> segments;  // owner, expected
  bool lost = false;
  // A prepare's error, answered to every batch that needed it (not "does not exist").
  struct SqlError {
    std::string state, constraint, message;
  };
  std::unordered_map<std::string_view, SqlError> prepare_errors;
  try {
    auto send_params = [&](const char* sql, const char* value) {
      const char* vals[1] = {value};
      if (!lost &&
          !PQsendQueryParams(d.conn, sql, value ? 1 : 0, nullptr, vals, nullptr, nullptr, 0))
        lost = broken_ = true;
    };
    auto sync = [&](std::size_t owner, std::vector<Pending> seg) {
      if (!lost && !PQpipelineSync(d.conn)) lost = broken_ = true;
      segments.emplace_back(owner, std::move(seg));
    };
    if (set_timeout) {
      send_params(kSetTimeout.sql, std::to_string(want_timeout).c_str());
      sync(kNone, {{kTimeout, nullptr, kNone}});
    }
    std::unordered_set<std::string_view> preparing;
    for (std::size_t i : live)
      for (const auto& s : *batches[i].stmts)
        if (!lost && !d.prepared.contains(s.query->name) &&
            preparing.insert(s.query->name).second) {
          if (!PQsendPrepare(d.conn, s.query->name, s.query->sql, 0, nullptr))
            lost = broken_ = true;
          sync(kNone, {{kPrepare, s.query->name, kNone}});
        }
    std::vector<const char*> vals;
    for (std::size_t i : live) {
      if (lost) break;
      std::vector<Pending> seg;
      const auto& stmts = *batches[i].stmts;
      const int own = timeout_for(batches[i].deadline);
      if (own != 0 && (want_timeout == 0 || own < want_timeout)) {
        send_params(kSetLocalTimeout.sql, std::to_string(own).c_str());
        seg.push_back({kLocal, nullptr, kNone});
      }
      bool local_commit = !stmts.empty();
      for (const auto& s : stmts)
        local_commit = local_commit && CommitsLocally(s.query->data_class);
      if (local_commit) {
        send_params(kCommitLocally.sql, nullptr);
        seg.push_back({kLocal, nullptr, kNone});
      }
      for (std::size_t k = 0; k < stmts.size() && !lost; ++k) {
        vals.clear();
        for (const auto& p : stmts[k].params) vals.push_back(p.null ? nullptr : p.value.c_str());
        if (!PQsendQueryPrepared(d.conn, stmts[k].query->name, static_cast<int>(vals.size()),
                                 vals.data(), nullptr, nullptr, 0))
          lost = broken_ = true;
        seg.push_back({kQuery, nullptr, k});
      }
      sync(i, std::move(seg));
    }

    d.Arm(latest, weak_from_this());
    // (Groups are capped at 64 batches of a few short statements: what is sent fits the
    // socket buffers, so the server never waits for us to read while we wait to write.)
    while (!lost) {
      int f = PQflush(d.conn);
      if (f == 0) break;
      if (f < 0 || !co_await d.Wait(asio::posix::descriptor_base::wait_write)) lost = true;
    }
    auto next = [&]() -> asio::awaitable<PGresult*> {
      while (PQisBusy(d.conn)) {
        if (!co_await d.Wait(asio::posix::descriptor_base::wait_read) || !PQconsumeInput(d.conn)) {
          lost = true;
          co_return nullptr;
        }
      }
      co_return PQgetResult(d.conn);
    };
    for (const auto& segment : segments) {
      if (lost) break;
      const std::size_t owner = segment.first;
      const std::vector<Pending>& seg = segment.second;
      std::vector<Result> results(owner == kNone ? 0 : batches[owner].stmts->size());
      SqlError err;
      for (const Pending& e : seg) {
        if (lost) break;
        for (;;) {
          PGresult* r = co_await next();
          if (lost || !r) break;
          auto st = PQresultStatus(r);
          if (st == PGRES_FATAL_ERROR && err.state.empty()) {
            const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            const char* c = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
            const char* m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
            err = {s ? s : "XX000", c ? c : "", m ? m : ""};
            PQclear(r);
          } else if (e.kind == kQuery && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)) {
            results[e.index] = Result(r);
          } else {
            PQclear(r);
          }
        }
      }
      // The segment's sync point.
      while (!lost) {
        PGresult* r = co_await next();
        if (lost) break;
        if (!r) {
          if (PQstatus(d.conn) != CONNECTION_OK) lost = true;
          continue;
        }
        bool at_sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
        PQclear(r);
        if (at_sync) break;
      }
      if (lost) break;
      if (!err.state.empty()) {
        auto cls = err.state.substr(0, 2);
        if (cls == "08" || cls == "53" || cls == "57" || err.state == "25006") broken_ = true;
      }
      if (owner == kNone) {
        const Pending& e = seg.front();
        if (e.kind == kTimeout)
          d.statement_timeout_ms = err.state.empty() ? want_timeout : -1;
        else if (err.state.empty())
          d.prepared.insert(e.name);
        else
          prepare_errors[e.name] = err;
        continue;
      }
      const auto& stmts = *batches[owner].stmts;
      for (const auto& s : stmts)
        if (auto it = prepare_errors.find(s.query->name); it != prepare_errors.end()) {
          err = it->second;
          break;
        }
      const char* qname = stmts.empty() ? "empty" : stmts.back().query->name;
      double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      Metrics::Get().ObserveQuery(qname, err.state.empty(), secs);
      if (err.state.empty()) {
        answer(owner, std::move(results), nullptr);
        continue;
      }
      try {
        ThrowForSqlState(err.state, err.constraint, err.message, qname);
      } catch (...) {
        answer(owner, {}, std::current_exception());
      }
    }
    d.Disarm();
  } catch (...) {
    // Whatever threw may have left results unread on the connection: it is not reused,
    // and every batch not yet answered is (none is left waiting for good).
    broken_ = true;
    d.Disarm();
    answer_rest(lost_error(false));
    throw;
  }
  if (lost || PQstatus(d.conn) != CONNECTION_OK) {
    broken_ = true;
    for (std::size_t i : live)
      if (!answered[i]) {
        const auto& stmts = *batches[i].stmts;
        Metrics::Get().ObserveQuery(
            stmts.empty() ? "empty" : stmts.back().query->name, false,
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
      }
    answer_rest(lost_error(d.timed_out));
  }
}

// ---------------------------------------------------------------- Pool

namespace {
// The pause before a pool's next connect after `failures` failed in a row: 50 ms,
// doubling, at most 250 ms. Without it, every failed connect woke the next waiter to try
// at once: during a switchover, while no server took writes, each node's pools made
// connects as fast as the servers could refuse them (a fork and an authentication at each
// standby saying read-only), and kept two cores saturated.
std::chrono::milliseconds ConnectBackoff(int failures) {
  return std::chrono::milliseconds(std::min(250, 50 << std::min(failures - 1, 3)));
}
}  // namespace

struct Pool::Waiter {
  explicit Waiter(asio::any_io_executor ex) : timer(ex) {}
  asio::steady_timer timer;
  std::shared_ptr<Connection> conn;
  bool may_create = false;  // a slot freed up: the waiter opens a new connection
  bool done = false;
  // A read-only batch that may ride the round trip of the waiter ahead of it (group_limit).
  bool groupable = false;
  std::vector<Statement> batch;  // a copy: the leader may send it after this waiter left
  Deadline deadline;
  bool grouped = false;  // taken into a leader's round trip; done = its answer is in
  std::vector<Result> results;
  std::exception_ptr error;
};

Lease::~Lease() {
  if (pool_ && conn_) pool_->Release(std::move(conn_));
}

Pool::Pool(asio::any_io_executor ex, PoolOptions options) : ex_(ex), options_(std::move(options)) {}

Pool::~Pool() {
  for (auto& w : waiters_) w->timer.cancel();
}

void Pool::Close() {
  closed_ = true;
  idle_.clear();
  for (auto& w : waiters_) w->timer.cancel();
  waiters_.clear();
}

// Wakes the first waiter with `c`, or with the right to open a connection when `c` is
// null (a slot freed up). False when nobody waits.
bool Pool::HandOver(std::shared_ptr<Connection> c) {
  if (waiters_.empty()) return false;
  auto w = waiters_.front();
  waiters_.pop_front();
  w->may_create = !c;
  if (!c) {  // the waiter opens a connection when it resumes: counted from now
    ++total_;
    ++connecting_;
  }
  w->conn = std::move(c);
  w->done = true;
  w->timer.cancel();
  return true;
}

void Pool::Release(std::shared_ptr<Connection> c) {
  stats_.in_use.fetch_sub(1);
  if (closed_) return;
  if (c->broken()) {
    --total_;
    stats_.open.fetch_sub(1);
    c.reset();
    HandOver(nullptr);
    return;
  }
  if (HandOver(c)) return;
  idle_.push_back(std::move(c));
}

asio::awaitable<Lease> Pool::Acquire(Deadline deadline) {
  auto got = co_await AcquireOrJoin(deadline, nullptr);
  co_return std::move(std::get<Lease>(got));
}

asio::awaitable<std::variant<Lease, std::shared_ptr<Pool::Waiter>>> Pool::AcquireOrJoin(
    Deadline deadline, const std::vector<Statement>* group) {
  deadline.Check(("waiting for a database connection (" + options_.name + " pool)").c_str());
  std::shared_ptr<Connection> conn;
  bool create = false;
  while (!idle_.empty() && !idle_.back()->LooksAlive()) {
    idle_.pop_back();
    --total_;
    stats_.open.fetch_sub(1);
  }
  if (!idle_.empty()) {
    conn = std::move(idle_.back());
    idle_.pop_back();
  } else if (total_ < options_.size && (failed_connects_ == 0 || connecting_ == 0)) {
    create = true;
    ++total_;
    ++connecting_;
  } else {
    if (static_cast<int>(waiters_.size()) >= options_.queue_limit) {
      stats_.rejected.fetch_add(1);
      throw Unavailable("the " + options_.name +
                        " tier is at capacity (too many requests waiting for the database); "
                        "please retry shortly");
    }
    auto w = std::make_shared<Waiter>(ex_);
    w->timer.expires_at(deadline.is_never() ? asio::steady_timer::time_point::max()
                                            : deadline.at());
    if (group) {
      w->groupable = true;
      w->batch = *group;
      w->deadline = deadline;
    }
    waiters_.push_back(w);
    stats_.waiting.fetch_add(1);
    co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    stats_.waiting.fetch_sub(1);
    if (!w->done) {
      stats_.wait_timeouts.fetch_add(1);
      if (w->grouped)  // sent, its answer not in yet: a later answer goes nowhere
        throw DeadlineExceeded("request deadline exceeded while waiting for the database (" +
                               options_.name + " pool)");
      std::erase(waiters_, w);
      throw DeadlineExceeded("request deadline exceeded while waiting for a database connection (" +
                             options_.name + " pool)");
    }
    if (w->grouped) co_return w;
    if (w->conn) {
      conn = std::move(w->conn);
    } else {
      create = true;  // HandOver counted it in total_ and connecting_
    }
  }
  if (create) {
    auto c = std::make_shared<Connection>(ex_);
    bool tried = false;
    try {
      if (failed_connects_ > 0 && std::chrono::steady_clock::now() < retry_at_) {
        stats_.connect_backoffs.fetch_add(1);
        asio::steady_timer pause(ex_);
        pause.expires_at(deadline.is_never() ? retry_at_ : std::min(retry_at_, deadline.at()));
        co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      // Not when this request's deadline has passed (a waiter handed over late): a connect
      // doomed to time out would count as the database's failure.
      deadline.Check(("waiting to connect to the database (" + options_.name + " pool)").c_str());
      tried = true;
      co_await c->Connect(options_.database_url.reveal(), deadline);
    } catch (...) {
      --connecting_;
      --total_;
      if (tried) {  // not when this request's deadline ended during the pause
        stats_.connect_failures.fetch_add(1);
        stats_.last_failure_unix.store(UnixNow());
        ++failed_connects_;
        retry_at_ = std::chrono::steady_clock::now() + ConnectBackoff(failed_connects_);
      }
      // The next waiter tries, after the backoff; while another connect is in flight, its
      // end hands over instead (one at a time).
      if (connecting_ == 0) HandOver(nullptr);
      throw;
    }
    --connecting_;
    failed_connects_ = 0;
    stats_.open.fetch_add(1);
    conn = std::move(c);
    // Waiters queued while connects were failing: the next one may open another.
    if (!waiters_.empty() && total_ < options_.size) HandOver(nullptr);
  }
  stats_.in_use.fetch_add(1);
  stats_.acquired.fetch_add(1);
  co_return Lease(this, std::move(conn));
}

asio::awaitable<std::vector<Result>> Pool::RunLed(Lease& lease, const std::vector<Statement>& stmts,
                                                  Deadline deadline) {
  // The groupable waiters at the head of the queue (a write waiting there keeps its turn)
  // whose deadlines end near this one's: the round trip is bounded by the latest of them,
  // so this batch's answer is never held much past its own deadline.
  constexpr auto kSlack = std::chrono::milliseconds(kTimeoutStepMs);
  std::vector<std::shared_ptr<Waiter>> riders;
  while (static_cast<int>(riders.size()) + 1 < options_.group_limit && !waiters_.empty()) {
    auto& w = waiters_.front();
    if (!w->groupable) break;
    if (!deadline.is_never() &&
        (w->deadline.is_never() || w->deadline.at() > deadline.at() + kSlack))
      break;
    w->grouped = true;
    riders.push_back(std::move(w));
    waiters_.pop_front();
  }
  if (riders.empty()) co_return co_await lease->Run(stmts, deadline, options_.require_sync_standby);
  stats_.grouped.fetch_add(riders.size());
  // This batch goes last: it is answered when the round trip ends (the leader reads it
  // to the end), the riders each as soon as their own results are in.
  std::vector<Connection::GroupBatch> batches;
  batches.reserve(riders.size() + 1);
  for (const auto& w : riders) batches.push_back({&w->batch, w->deadline});
  batches.push_back({&stmts, deadline});
  std::vector<Result> mine;
  std::exception_ptr my_error;
  // Named, not a temporary: GCC 12 miscompiles temporaries that span a co_await.
  const Connection::GroupDone on_done = [&](std::size_t i, std::vector<Result> r,
                                            std::exception_ptr e) {
    if (i == riders.size()) {
      mine = std::move(r);
      my_error = std::move(e);
      return;
    }
    auto& w = *riders[i];
    w.results = std::move(r);
    w.error = std::move(e);
    w.done = true;
    w.timer.cancel();
  };
  co_await lease->RunGroup(batches, on_done);
  if (my_error) std::rethrow_exception(my_error);
  co_return mine;
}

asio::awaitable<Result> Pool::Exec(const Query& q, Params params, Deadline deadline) {
  std::vector<Statement> s;
  s.push_back(Statement{&q, std::move(params)});
  auto r = co_await Batch(std::move(s), deadline);
  co_return std::move(r[0]);
}

namespace {
// A batch of read queries can be replayed on another connection without effect. What a
// query does is stated on it (Query::access), never guessed from its text.
bool ReadOnly(const std::vector<Statement>& stmts) {
  for (const auto& s : stmts)
    if (s.query->access != Access::kRead) return false;
  return true;
}
}  // namespace

asio::awaitable<std::vector<Result>> Pool::Batch(std::vector<Statement> stmts, Deadline deadline,
                                                 BatchOptions options) {
  // A batch that never reached the server (no connection to be had: the database is
  // restarting or failing over) is always safe to try again. Once sent, the server may
  // have committed it before the connection broke, so only read-only batches, or those
  // the caller declares idempotent, are replayed.
  using Replay = BatchOptions::Replay;
  const bool replayable =
      options.replay == Replay::kIdempotent || (options.replay == Replay::kAuto && ReadOnly(stmts));
  // Read batches may share a round trip with other reads queued for a connection.
  const bool groupable = options_.group_limit > 1 && !options.commit_lsn && ReadOnly(stmts);
  asio::steady_timer backoff(ex_);
  for (int attempt = 0;; ++attempt) {
    bool sent = false;
    try {
      auto got = co_await AcquireOrJoin(deadline, groupable ? &stmts : nullptr);
      sent = true;
      if (auto* joined = std::get_if<std::shared_ptr<Waiter>>(&got)) {
        if ((*joined)->error) std::rethrow_exception((*joined)->error);
        stats_.last_ok_unix.store(UnixNow());
        co_return std::move((*joined)->results);
      }
      Lease lease = std::move(std::get<Lease>(got));
      std::vector<Result> r;
      // (Not a conditional expression: GCC 12 miscompiles co_await inside ?:.)
      if (groupable)
        r = co_await RunLed(lease, stmts, deadline);
      else
        r = co_await lease->Run(stmts, deadline, options_.require_sync_standby);
      stats_.last_ok_unix.store(UnixNow());
      if (options.commit_lsn) {
        std::vector<Statement> pos;
        pos.push_back(Statement{&kWalPosition, {}});
        try {
          auto p = co_await lease->Run(pos, deadline);
          *options.commit_lsn = static_cast<uint64_t>(
              std::strtoull(std::string(p[0].get(0, 0)).c_str(), nullptr, 10));
        } catch (const std::exception&) {
          // Committed, position unknown: the caller reads from the primary instead.
          *options.commit_lsn = UINT64_MAX;
        }
      }
      co_return r;
    } catch (const ConnectionError& e) {
      stats_.query_failures.fetch_add(1);
      stats_.last_failure_unix.store(UnixNow());
      if (dynamic_cast<const ReadOnlyServer*>(&e)) sent = false;  // nothing ran
      if (options.replay == Replay::kNever || (sent && !replayable) ||
          deadline.left() < std::chrono::milliseconds(100))
        throw;
    } catch (const QueryCanceled&) {
      stats_.query_failures.fetch_add(1);
      throw;
    }
    // Brief, growing pause so that a database that is down is not hammered.
    backoff.expires_after(std::chrono::milliseconds(std::min(25 << std::min(attempt, 4), 400)));
    co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace continuum::db
