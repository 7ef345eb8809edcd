// The async libpq pool against a real PostgreSQL: pipelined batches, SQLSTATE
// mapping, deadlines (pool wait and statement_timeout), queue caps, and recovery after
// the server went away.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <functional>
#include <thread>

#include "db/errors.hpp"
#include "db/pool.hpp"
#include "support/closing_listener.hpp"
#include "support/pg_instance.hpp"

namespace continuum::db {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::PgInstance;

const Query kSelectInt{"t_select_int", "SELECT $1::int + 1", Access::kRead};
const Query kSleep{"t_sleep", "SELECT pg_sleep($1::float8)", Access::kRead};
const Query kCreate{"t_create",
                    "CREATE TABLE IF NOT EXISTS t_items (k text PRIMARY KEY, v int CHECK (v >= 0))",
                    Access::kWrite};
const Query kInsert{"t_insert", "INSERT INTO t_items (k, v) VALUES ($1, $2::int)", Access::kWrite};
const Query kCount{"t_count", "SELECT count(*) FROM t_items", Access::kRead};
const Query kBadDate{"t_bad_date", "SELECT $1::date", Access::kRead};
const Query kTimeout{"t_timeout", "SELECT current_setting('statement_timeout')", Access::kRead};
// Writes although it starts with SELECT (like continuum_book).
const Query kLogAdd{"t_log_add", "SELECT t_log_add($1)", Access::kWrite};

// Runs a coroutine to completion on a fresh single-threaded io_context.
template <typename T>
T RunCoro(asio::io_context& io, std::function<asio::awaitable<T>()> f) {
  auto fut = asio::co_spawn(io, f(), asio::use_future);
  io.restart();
  io.run();
  return fut.get();
}

class PoolTest : public ::testing::Test {
 protected:
  void SetUp() override { url_ = PgInstance::Shared().FreshDatabase(); }
  std::unique_ptr<Pool> MakePool(int size, int queue) {
    return std::make_unique<Pool>(io_.get_executor(),
                                  PoolOptions{"test", Secret(url_), size, queue});
  }
  asio::io_context io_;
  std::string url_;
};

TEST_F(PoolTest, RunsPreparedStatementsAndBatches) {
  auto pool = MakePool(2, 8);
  int v = RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    auto r = co_await pool->Exec(kSelectInt, P(41), Deadline::After(5s));
    auto again = co_await pool->Exec(kSelectInt, P(1), Deadline::After(5s));  // prepared now
    co_return static_cast<int>(r.get_int(0, 0) + again.get_int(0, 0));
  });
  EXPECT_EQ(v, 44);
}

TEST_F(PoolTest, BatchIsOneTransaction) {
  auto pool = MakePool(1, 8);
  RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    co_await pool->Exec(kCreate, P(), Deadline::After(5s));
    std::vector<Statement> b;
    b.push_back({&kInsert, P("a", 1)});
    b.push_back({&kInsert, P("a", 2)});  // unique violation: the whole batch rolls back
    bool threw = false;
    try {
      co_await pool->Batch(std::move(b), Deadline::After(5s));
    } catch (const UniqueViolation& e) {
      threw = true;
      EXPECT_EQ(e.constraint, "t_items_pkey");
    }
    EXPECT_TRUE(threw);
    auto r = co_await pool->Exec(kCount, P(), Deadline::After(5s));
    EXPECT_EQ(r.get_int(0, 0), 0);
    // The connection is still usable after the error.
    co_await pool->Exec(kInsert, P("b", 1), Deadline::After(5s));
    r = co_await pool->Exec(kCount, P(), Deadline::After(5s));
    EXPECT_EQ(r.get_int(0, 0), 1);
    co_return 0;
  });
}

TEST_F(PoolTest, MapsSqlStatesToTypedErrors) {
  auto pool = MakePool(1, 8);
  RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    co_await pool->Exec(kCreate, P(), Deadline::After(5s));
    try {
      co_await pool->Exec(kInsert, P("neg", -1), Deadline::After(5s));
      ADD_FAILURE() << "check violation not raised";
    } catch (const CheckViolation& e) {
      EXPECT_EQ(e.http_status(), 409);
    }
    try {
      co_await pool->Exec(kBadDate, P("not-a-date"), Deadline::After(5s));
      ADD_FAILURE() << "data exception not raised";
    } catch (const DataException& e) {
      EXPECT_EQ(e.http_status(), 400);
      EXPECT_EQ(std::string(e.what()).find("not-a-date"), std::string::npos)
          << "server text leaked";
    }
    co_return 0;
  });
}

TEST_F(PoolTest, DeadlineSetsStatementTimeout) {
  auto pool = MakePool(1, 8);
  RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    auto r = co_await pool->Exec(kTimeout, P(), Deadline::After(1200ms));
    // Rounded down to 250 ms steps, never above the time left.
    EXPECT_EQ(r.str(0, 0), "1s");
    auto start = std::chrono::steady_clock::now();
    try {
      co_await pool->Exec(kSleep, P("5"), Deadline::After(600ms));
      ADD_FAILURE() << "sleep outlived its deadline";
    } catch (const DeadlineExceeded& e) {
      EXPECT_EQ(e.http_status(), 503);
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    // And the connection still works afterwards.
    auto ok = co_await pool->Exec(kSelectInt, P(1), Deadline::After(5s));
    EXPECT_EQ(ok.get_int(0, 0), 2);
    co_return 0;
  });
}

TEST_F(PoolTest, WaitForConnectionIsBoundedByDeadlineAndQueueCap) {
  auto pool = MakePool(1, 1);
  RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    auto held = co_await pool->Acquire(Deadline::After(5s));
    // One waiter allowed; it times out at its deadline.
    auto t0 = std::chrono::steady_clock::now();
    try {
      co_await pool->Acquire(Deadline::After(200ms));
      ADD_FAILURE() << "acquired a connection that was held";
    } catch (const DeadlineExceeded&) {
    }
    auto waited = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(waited, 150ms);
    EXPECT_LT(waited, 1s);
    EXPECT_EQ(pool->stats().wait_timeouts.load(), 1u);
    co_return 0;
  });
  // Queue cap: with the connection held and one waiter queued, the next is refused.
  auto pool2 = MakePool(1, 1);
  RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    auto held = co_await pool2->Acquire(Deadline::After(5s));
    auto ex = co_await asio::this_coro::executor;
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          try {
            auto l = co_await pool2->Acquire(Deadline::After(300ms));
          } catch (...) {
          }
        },
        asio::detached);
    asio::steady_timer t(ex);
    t.expires_after(20ms);
    co_await t.async_wait(asio::use_awaitable);
    try {
      co_await pool2->Acquire(Deadline::After(5s));
      ADD_FAILURE() << "queue cap not enforced";
    } catch (const Unavailable& e) {
      EXPECT_NE(std::string(e.what()).find("capacity"), std::string::npos);
    }
    EXPECT_EQ(pool2->stats().rejected.load(), 1u);
    co_return 0;
  });
}

TEST_F(PoolTest, ReleasedConnectionGoesToTheWaiter) {
  auto pool = MakePool(1, 4);
  int v = RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    auto ex = co_await asio::this_coro::executor;
    int got = 0;
    {
      auto held = co_await pool->Acquire(Deadline::After(5s));
      asio::co_spawn(
          ex,
          [&]() -> asio::awaitable<void> {
            auto r = co_await pool->Exec(kSelectInt, P(9), Deadline::After(5s));
            got = static_cast<int>(r.get_int(0, 0));
          },
          asio::detached);
      asio::steady_timer t(ex);
      t.expires_after(50ms);
      co_await t.async_wait(asio::use_awaitable);
      EXPECT_EQ(pool->stats().waiting.load(), 1);
    }  // release
    asio::steady_timer t(ex);
    for (int i = 0; i < 100 && got == 0; ++i) {
      t.expires_after(10ms);
      co_await t.async_wait(asio::use_awaitable);
    }
    co_return got;
  });
  EXPECT_EQ(v, 10);
}

TEST_F(PoolTest, ConnectsPastADeadHostInAMultiHostUrl) {
  // libpq tries hosts in order; the first refuses. The socket libpq opens for the
  // second host must be watched, or the connect hangs until the deadline.
  std::string multi = url_;
  auto at = multi.find('@');
  multi.insert(at + 1, "127.0.0.1:1,");
  Pool pool(io_.get_executor(), PoolOptions{"test", Secret(multi), 1, 4});
  auto t0 = std::chrono::steady_clock::now();
  int v = RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    auto r = co_await pool.Exec(kSelectInt, P(4), Deadline::After(3s));
    co_return static_cast<int>(r.get_int(0, 0));
  });
  EXPECT_EQ(v, 5);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

// A listening socket whose accept queue is full: the kernel drops every further SYN, as a
// host behind a network partition does (no refusal, no answer at all).
class BlackHole {
 public:
  BlackHole() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd_, 0) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      throw std::runtime_error("black hole listener");
    port_ = ntohs(a.sin_port);
    // Fill the accept queue (never accepted): the handshakes that fit complete, the rest
    // wait for an answer that never comes.
    for (int i = 0; i < 4; ++i) {
      int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      ::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a);
      fillers_.push_back(c);
    }
    std::this_thread::sleep_for(100ms);
  }
  ~BlackHole() {
    for (int c : fillers_) ::close(c);
    ::close(fd_);
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::vector<int> fillers_;
};

TEST_F(PoolTest, ConnectsPastAHostThatDropsPackets) {
  // libpq ignores connect_timeout in a non-blocking connect: without a TCP user timeout
  // the SYN to the silent host is retried for minutes and the second host, the one that
  // answers, is never tried (a partitioned old primary before the new one).
  BlackHole hole;
  std::string multi = url_;
  auto at = multi.find('@');
  multi.insert(at + 1, "127.0.0.1:" + std::to_string(hole.port()) + ",");
  Pool pool(io_.get_executor(), PoolOptions{"test", Secret(multi), 1, 4});
  auto t0 = std::chrono::steady_clock::now();
  int v = RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    auto r = co_await pool.Exec(kSelectInt, P(6), Deadline::After(20s));
    co_return static_cast<int>(r.get_int(0, 0));
  });
  EXPECT_EQ(v, 7);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, std::chrono::milliseconds(kTcpUserTimeoutMs) - 500ms)
      << "the silent host was not tried";
  EXPECT_LT(took, std::chrono::milliseconds(kTcpUserTimeoutMs) + 5s);
}

TEST_F(PoolTest, ConnectsPastAHostThatAcceptsAndCloses) {
  // A proxy in front of a stopped database accepts and resets. libpq ends the whole
  // multi-host connect there ("server closed the connection unexpectedly") instead of
  // trying the next host: in the cluster, a switchover's old primary, down behind its
  // net-proxy, kept nodes whose URL named it first from the new primary for 14 s.
  testing::ClosingListener closing;
  Pool pool(io_.get_executor(), PoolOptions{"test", Secret(closing.InFrontOf(url_)), 1, 4});
  const uint64_t resumed = Connection::hosts_resumed();
  int v = RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    auto r = co_await pool.Exec(kSelectInt, P(6), Deadline::After(5s));
    co_return static_cast<int>(r.get_int(0, 0));
  });
  EXPECT_EQ(v, 7);
  EXPECT_GE(closing.accepted(), 1) << "the closing host was not tried first";
  EXPECT_EQ(Connection::hosts_resumed(), resumed + 1);
}

TEST_F(PoolTest, AConnectThatFailsAtItsLastHostIsNotRetried) {
  // The closing host is the last one: libpq tried the database first (stopped: refused),
  // then the closing host, so nothing is left to go on to (the pool's own retries within
  // the deadline, for a database that may come back, start from the first host again).
  testing::ClosingListener closing;
  std::string multi = url_;
  auto colon = multi.find(':', multi.find('@'));
  auto slash = multi.find('/', colon);
  multi.insert(slash, ",127.0.0.1:" + std::to_string(closing.port()));
  Pool pool(io_.get_executor(), PoolOptions{"test", Secret(multi), 1, 4});
  PgInstance::Shared().Stop();
  const uint64_t resumed = Connection::hosts_resumed();
  RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    try {
      co_await pool.Exec(kSelectInt, P(1), Deadline::After(1s));
      ADD_FAILURE() << "query succeeded with the database stopped";
    } catch (const Unavailable& e) {
      EXPECT_EQ(e.http_status(), 503);
    }
    co_return 0;
  });
  PgInstance::Shared().Start();
  EXPECT_GE(closing.accepted(), 1) << "libpq did not go on to the closing host";
  EXPECT_EQ(Connection::hosts_resumed(), resumed);
}

TEST_F(PoolTest, ConnectsBackOffWhileTheDatabaseFailsThem) {
  // Twenty requests queue for a pool of four whose database fails every connect (a proxy
  // in front of a stopped server). Each failed connect used to wake the next waiter to try
  // at once: connects as fast as they failed. Now the four first ones, then one at a time
  // every 250 ms (the backoff after four failures): about eight in the requests' 1.2 s,
  // whatever their number.
  testing::ClosingListener closing;
  std::string only = url_;  // the closing listener as the only host
  auto at = only.find('@') + 1;
  only.replace(at, only.find('/', at) - at, "127.0.0.1:" + std::to_string(closing.port()));
  Pool pool(io_.get_executor(), PoolOptions{"test", Secret(only), 4, 64});
  int failed = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i)
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          try {
            co_await pool.Exec(kSelectInt, P(1), Deadline::After(1200ms));
          } catch (const Unavailable&) {
            ++failed;
          }
        },
        asio::detached);
  io_.restart();
  io_.run();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(failed, 20);
  EXPECT_LT(took, 2s);
  EXPECT_GE(closing.accepted(), 4);
  EXPECT_LE(closing.accepted(), 12) << "connects did not back off";
  RecordProperty("connects", closing.accepted());
  EXPECT_GT(pool.stats().connect_backoffs.load(), 0u);
}

TEST_F(PoolTest, UnreachableDatabaseIsA503AndRecoveryNeedsNoRestart) {
  auto pool = MakePool(2, 8);
  auto& pg = PgInstance::Shared();
  RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    co_await pool->Exec(kSelectInt, P(1), Deadline::After(5s));
    co_return 0;
  });
  pg.Stop();
  RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    try {
      co_await pool->Exec(kSelectInt, P(1), Deadline::After(2s));
      ADD_FAILURE() << "query succeeded with the database stopped";
    } catch (const Unavailable& e) {
      EXPECT_EQ(e.http_status(), 503);
    }
    co_return 0;
  });
  pg.Start();
  // The first query after the restart succeeds: dead idle connections are detected
  // before use instead of failing a request.
  int v = RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    auto r = co_await pool->Exec(kSelectInt, P(2), Deadline::After(5s));
    co_return static_cast<int>(r.get_int(0, 0));
  });
  EXPECT_EQ(v, 3);
}

TEST_F(PoolTest, ReadsRideOutADatabaseRestartWithinTheirDeadline) {
  auto pool = MakePool(2, 8);
  auto& pg = PgInstance::Shared();
  RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    co_await pool->Exec(kSelectInt, P(1), Deadline::After(5s));
    co_return 0;
  });
  pg.Stop();
  // The database comes back 1.5 s into an 8 s deadline: the read waits for it.
  std::thread restarter([&pg] {
    std::this_thread::sleep_for(1500ms);
    pg.Start();
  });
  int v = 0;
  try {
    v = RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
      auto r = co_await pool->Exec(kSelectInt, P(6), Deadline::After(8s));
      co_return static_cast<int>(r.get_int(0, 0));
    });
  } catch (const std::exception& e) {
    ADD_FAILURE() << "read failed across the restart: " << e.what();
  }
  restarter.join();
  EXPECT_EQ(v, 7);
}

// The commit of a write reaches the server, then the connection breaks before the answer
// comes back: the server committed, the client cannot know. The pool must not send the
// write again although its text starts with SELECT (issue 10, item 10). The commit is
// held by a synchronous standby that does not exist, and the backend is terminated while
// it waits: PostgreSQL has then committed locally and closes the connection.
TEST_F(PoolTest, AWriteIsNotReplayedAfterTheConnectionIsLostMidCommit) {
  auto& pg = PgInstance::Shared();
  pg.Exec(url_,
          "CREATE TABLE t_log (k text); CREATE FUNCTION t_log_add(p text) RETURNS int "
          "LANGUAGE sql AS $$ INSERT INTO t_log VALUES (p) RETURNING 1 $$");
  const std::string admin = pg.UrlFor("postgres");
  auto set_sync = [&](const std::string& names) {
    pg.Exec(admin, "ALTER SYSTEM SET synchronous_standby_names = '" + names + "'");
    pg.Exec(admin, "SELECT pg_reload_conf()");
  };
  struct Restore {
    std::function<void()> f;
    ~Restore() { f(); }
  } restore{[&] { set_sync(""); }};
  set_sync("nobody");
  std::thread killer([&] {
    for (int i = 0; i < 100; ++i) {
      std::string pid = pg.QueryValue(
          admin,
          "SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep' AND query LIKE "
          "'%t_log_add%'");
      if (!pid.empty()) {
        pg.QueryValue(admin, "SELECT pg_terminate_backend(" + pid + ")");
        break;
      }
      std::this_thread::sleep_for(50ms);
    }
    // Let any replay of the write commit at once.
    std::this_thread::sleep_for(100ms);
    set_sync("");
  });
  auto pool = MakePool(2, 8);
  std::string what = RunCoro<std::string>(io_, [&]() -> asio::awaitable<std::string> {
    try {
      co_await pool->Exec(kLogAdd, P("once"), Deadline::After(5s));
      co_return "acknowledged";
    } catch (const ConnectionError&) {
      co_return "connection lost";
    }
  });
  killer.join();
  EXPECT_EQ(what, "connection lost");
  EXPECT_EQ(pg.QueryValue(url_, "SELECT count(*) FROM t_log WHERE k = 'once'"), "1")
      << "the write was sent again after it had committed";
}

// ---- Reads queued for a connection share one round trip (PoolOptions::group_limit).

// Starts `f` on the test's io_context (detached); `f` records its outcome itself.
void Spawn(asio::io_context& io, std::function<asio::awaitable<void>()> f) {
  asio::co_spawn(io, std::move(f), asio::detached);
}

// Waits (on the io_context) until `pred` holds, at most ~3 s.
asio::awaitable<void> Until(std::function<bool()> pred) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  for (int i = 0; i < 300 && !pred(); ++i) {
    t.expires_after(10ms);
    co_await t.async_wait(asio::use_awaitable);
  }
}

class GroupTest : public PoolTest {
 protected:
  std::unique_ptr<Pool> MakeGroupPool(int size, int group_limit) {
    PoolOptions po{"test", Secret(url_), size, 32};
    po.group_limit = group_limit;
    return std::make_unique<Pool>(io_.get_executor(), po);
  }
};

TEST_F(GroupTest, QueuedReadsShareARoundTripAndEachGetsItsOwnAnswer) {
  auto pool = MakeGroupPool(1, 8);
  std::vector<std::string> got(6);
  RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    // The one connection is busy for 300 ms; six reads queue behind it, one of them bad.
    Spawn(io_, [&]() -> asio::awaitable<void> {
      co_await pool->Exec(kSleep, P("0.3"), Deadline::After(5s));
    });
    const std::function<bool()> pred1 = [&] { return pool->stats().in_use.load() == 1; };
    co_await Until(pred1);
    for (int i = 0; i < 6; ++i)
      Spawn(io_, [&, i]() -> asio::awaitable<void> {
        try {
          if (i == 3) {
            co_await pool->Exec(kBadDate, P("not-a-date"), Deadline::After(5s));
            got[i] = "no error";
          } else {
            auto r = co_await pool->Exec(kSelectInt, P(i * 10), Deadline::After(5s));
            got[i] = r.str(0, 0);
          }
        } catch (const DataException&) {
          got[i] = "data exception";
        } catch (const std::exception& e) {
          got[i] = std::string("error: ") + e.what();
        }
      });
    const std::function<bool()> pred2 = [&] { return pool->stats().waiting.load() == 6; };
    co_await Until(pred2);
    const std::function<bool()> pred3 = [&] {
      return std::all_of(got.begin(), got.end(), [](const auto& g) { return !g.empty(); });
    };
    co_await Until(pred3);
    co_return 0;
  });
  EXPECT_EQ(got[0], "1");
  EXPECT_EQ(got[1], "11");
  EXPECT_EQ(got[2], "21");
  EXPECT_EQ(got[3], "data exception");  // its own error, nobody else's
  EXPECT_EQ(got[4], "41");
  EXPECT_EQ(got[5], "51");
  // The first waiter took the freed connection and the five others with it.
  EXPECT_EQ(pool->stats().grouped.load(), 5u);
  EXPECT_EQ(pool->stats().acquired.load(), 2u);
}

TEST_F(GroupTest, AWriteInTheQueueKeepsItsTurnAndIsNeverGrouped) {
  auto pool = MakeGroupPool(1, 8);
  std::vector<std::string> order;
  RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    co_await pool->Exec(kCreate, P(), Deadline::After(5s));
    Spawn(io_, [&]() -> asio::awaitable<void> {
      co_await pool->Exec(kSleep, P("0.2"), Deadline::After(5s));
    });
    const std::function<bool()> pred4 = [&] { return pool->stats().in_use.load() == 1; };
    co_await Until(pred4);
    // Queue: read, read, write, read.
    auto read = [&](std::string name) -> std::function<asio::awaitable<void>()> {
      return [&, name]() -> asio::awaitable<void> {
        co_await pool->Exec(kCount, P(), Deadline::After(5s));
        order.push_back(name);
      };
    };
    Spawn(io_, read("r1"));
    Spawn(io_, read("r2"));
    Spawn(io_, [&]() -> asio::awaitable<void> {
      co_await pool->Exec(kInsert, P("w", 1), Deadline::After(5s));
      order.push_back("w");
    });
    Spawn(io_, read("r3"));
    const std::function<bool()> pred5 = [&] { return pool->stats().waiting.load() == 4; };
    co_await Until(pred5);
    const std::function<bool()> pred6 = [&] { return order.size() == 4; };
    co_await Until(pred6);
    co_return 0;
  });
  // r1 led a round trip with r2; the write waited for the next connection, and r3
  // (behind it) for the one after.
  ASSERT_EQ(order.size(), 4u);
  std::sort(order.begin(), order.begin() + 2);
  EXPECT_EQ(order, (std::vector<std::string>{"r1", "r2", "w", "r3"}));
  EXPECT_EQ(pool->stats().grouped.load(), 1u);
}

TEST_F(GroupTest, ARiderPastItsDeadlineLeavesAndTheOthersAreAnswered) {
  auto pool = MakeGroupPool(1, 8);
  std::string slow, fast, leader;
  std::chrono::steady_clock::duration slow_took{}, leader_took{};
  const auto t0 = std::chrono::steady_clock::now();
  RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    Spawn(io_, [&]() -> asio::awaitable<void> {
      co_await pool->Exec(kSleep, P("0.2"), Deadline::After(5s));
    });
    const std::function<bool()> pred7 = [&] { return pool->stats().in_use.load() == 1; };
    co_await Until(pred7);
    Spawn(io_, [&]() -> asio::awaitable<void> {
      auto r = co_await pool->Exec(kSelectInt, P(1), Deadline::After(3s));
      leader = r.str(0, 0);
      leader_took = std::chrono::steady_clock::now() - t0;
    });
    // Rides with the leader (its deadline is earlier), then outlives its own deadline:
    // its statement is cut at its own statement_timeout, not the group's, so the batches
    // behind it (the leader's last) do not wait out its 2 s.
    Spawn(io_, [&]() -> asio::awaitable<void> {
      auto t0 = std::chrono::steady_clock::now();
      try {
        co_await pool->Exec(kSleep, P("2"), Deadline::After(800ms));
        slow = "answered";
      } catch (const DeadlineExceeded& e) {
        slow = e.what();
      }
      slow_took = std::chrono::steady_clock::now() - t0;
    });
    Spawn(io_, [&]() -> asio::awaitable<void> {
      auto r = co_await pool->Exec(kSelectInt, P(2), Deadline::After(3s));
      fast = r.str(0, 0);
    });
    const std::function<bool()> pred8 = [&] {
      return !fast.empty() && !slow.empty() && !leader.empty();
    };
    co_await Until(pred8);
    co_return 0;
  });
  EXPECT_EQ(pool->stats().grouped.load(), 2u);
  EXPECT_NE(slow.find("deadline"), std::string::npos) << slow;
  EXPECT_LT(slow_took, 1500ms) << "the rider was held past its deadline";
  EXPECT_EQ(fast, "3");
  EXPECT_EQ(leader, "2");
  EXPECT_LT(leader_took, 1700ms) << "the slow rider's statement ran on under the group's timeout";
}

TEST_F(GroupTest, AFailedPrepareFailsOnlyTheBatchesThatNeedIt) {
  const Query bad{"t_group_bad", "SELECT nope FROM t_no_such_table", Access::kRead};
  const Query fresh{"t_group_fresh", "SELECT $1::int * 2", Access::kRead};
  auto pool = MakeGroupPool(1, 8);
  std::vector<std::string> got(3);
  RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    Spawn(io_, [&]() -> asio::awaitable<void> {
      co_await pool->Exec(kSleep, P("0.2"), Deadline::After(5s));
    });
    const std::function<bool()> busy = [&] { return pool->stats().in_use.load() == 1; };
    co_await Until(busy);
    // Queued: a statement that cannot be prepared, then two that need a fresh prepare.
    for (int i = 0; i < 3; ++i)
      Spawn(io_, [&, i]() -> asio::awaitable<void> {
        try {
          const Query& q = i == 0 ? bad : fresh;
          Params params = i == 0 ? P() : P(i);  // named: GCC 12 and temporaries over co_await
          auto r = co_await pool->Exec(q, std::move(params), Deadline::After(5s));
          got[i] = r.str(0, 0);
        } catch (const DatabaseError& e) {
          got[i] = "sqlstate " + e.sqlstate;
        } catch (const std::exception& e) {
          got[i] = std::string("error: ") + e.what();
        }
      });
    const std::function<bool()> all = [&] {
      return std::all_of(got.begin(), got.end(), [](const auto& g) { return !g.empty(); });
    };
    co_await Until(all);
    co_return 0;
  });
  EXPECT_EQ(pool->stats().grouped.load(), 2u);
  EXPECT_EQ(got[0], "sqlstate 42P01");  // its own error (undefined table), not 26000
  EXPECT_EQ(got[1], "2");
  EXPECT_EQ(got[2], "4");
}

TEST_F(GroupTest, ARiderWhoseDeadlineEndsLongAfterTheLeadersWaitsForItsOwnTurn) {
  auto pool = MakeGroupPool(1, 8);
  int answered = 0;
  RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    Spawn(io_, [&]() -> asio::awaitable<void> {
      co_await pool->Exec(kSleep, P("0.2"), Deadline::After(5s));
    });
    const std::function<bool()> busy = [&] { return pool->stats().in_use.load() == 1; };
    co_await Until(busy);
    // The leader's deadline is 1 s away, the next read's 4 s: more than the 250 ms slack.
    Spawn(io_, [&]() -> asio::awaitable<void> {
      co_await pool->Exec(kSelectInt, P(1), Deadline::After(1s));
      ++answered;
    });
    Spawn(io_, [&]() -> asio::awaitable<void> {
      co_await pool->Exec(kSelectInt, P(2), Deadline::After(4s));
      ++answered;
    });
    const std::function<bool()> both = [&] { return answered == 2; };
    co_await Until(both);
    // And the connection's statement_timeout bookkeeping still holds afterwards.
    auto r = co_await pool->Exec(kTimeout, P(), Deadline::After(1200ms));
    EXPECT_EQ(r.str(0, 0), "1s");
    co_return 0;
  });
  EXPECT_EQ(answered, 2);
  EXPECT_EQ(pool->stats().grouped.load(), 0u);
}

TEST_F(GroupTest, ARoundTripLostWithItsConnectionIsReplayedForEveryRead) {
  auto& pg = PgInstance::Shared();
  const std::string admin = pg.UrlFor("postgres");
  auto pool = MakeGroupPool(1, 8);
  std::vector<std::string> got(4);
  const std::string db = pg.QueryValue(url_, "SELECT current_database()");
  std::thread killer([&] {
    // The round trip's pg_sleep (in this test's database) is the one to cut.
    for (int i = 0; i < 500; ++i) {
      std::string pid = pg.QueryValue(
          admin,
          "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_sleep%' AND state = 'active' "
          "AND datname = '" +
              db + "' AND pid <> pg_backend_pid() AND query NOT LIKE '%pg_stat_activity%'");
      if (!pid.empty()) {
        pg.QueryValue(admin, "SELECT pg_terminate_backend(" + pid + ")");
        break;
      }
      std::this_thread::sleep_for(20ms);
    }
  });
  RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    // The connection is held (by a lease) while four reads queue: the first leads (its
    // batch goes last), the second is a sleep that the killer cuts, two more follow it.
    auto held = co_await pool->Acquire(Deadline::After(5s));
    for (int i = 0; i < 4; ++i)
      Spawn(io_, [&, i]() -> asio::awaitable<void> {
        try {
          if (i == 1) {
            co_await pool->Exec(kSleep, P("1"), Deadline::After(6s));
            got[i] = "slept";
          } else {
            auto r = co_await pool->Exec(kSelectInt, P(i), Deadline::After(6s));
            got[i] = r.str(0, 0);
          }
        } catch (const std::exception& e) {
          got[i] = std::string("error: ") + e.what();
        }
      });
    const std::function<bool()> pred9 = [&] { return pool->stats().waiting.load() == 4; };
    co_await Until(pred9);
    { auto release = std::move(held); }
    const std::function<bool()> pred10 = [&] {
      return std::all_of(got.begin(), got.end(), [](const auto& g) { return !g.empty(); });
    };
    co_await Until(pred10);
    co_return 0;
  });
  killer.join();
  EXPECT_GE(pool->stats().grouped.load(), 3u);  // and maybe again when replayed
  EXPECT_GE(pool->stats().query_failures.load(), 1u);
  // Every read was answered: those cut with the connection were sent again.
  EXPECT_EQ(got[0], "1");
  EXPECT_EQ(got[1], "slept");
  EXPECT_EQ(got[2], "3");
  EXPECT_EQ(got[3], "4");
}

}  // namespace
}  // namespace continuum::db
