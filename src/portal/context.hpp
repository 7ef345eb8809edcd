// What a request handler sees: the request, its tier and deadline, the caller's
// verified claims, the shard's per-tier pools, and the audit records this request
// produces (made durable by the dispatcher before the response is written).
//
// No committed write without its audit record (ARCHITECTURE §5): before a request's
// first write reaches the database, Write/WriteBatch make an "attempt" copy of the
// request's audit records durable in the journal (outcome "attempt": who, what, which
// patient, the request id); the dispatcher appends the outcome records afterwards as
// for any request. If the journal cannot take the attempt (failing or stalled disk,
// full queue, deadline), the write is refused with a 503 before it is sent, so a write
// that commits always has at least its attempt record. Chosen over "refuse writes while
// the journal is unhealthy" because a health flag is always a little late: the disk
// can fail between the check and the commit, and only a durable record proves it did
// not. It costs one more group-committed fdatasync per write request.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "audit/record.hpp"
#include "auth/token.hpp"
#include "core/config.hpp"
#include "core/deadline.hpp"
#include "core/tier.hpp"
#include "db/pool.hpp"
#include "db/topology.hpp"
#include "http/message.hpp"
#include "portal/consistency.hpp"
#include "resilience/critical_first.hpp"

namespace continuum::http {
class StaticSite;
}  // namespace continuum::http

namespace boost::asio {
class thread_pool;
}

namespace continuum::audit {
class Journal;
}
namespace continuum::resilience {
class SwrCache;
}
namespace continuum::deps {
class Registry;
}
namespace continuum::auth {
class SessionCache;
class LoginThrottle;
class FailureThrottle;
class CpuQueue;
}  // namespace continuum::auth

namespace continuum::portal {

struct Shard;
namespace chaos {
class PoolHolds;
}

// Process-wide services, shared by all shards (each is thread-safe).
struct Services {
  Config config;
  audit::Journal* journal = nullptr;
  std::unique_ptr<auth::TokenSigner> signer;
  auth::SessionCache* sessions = nullptr;
  auth::LoginThrottle* throttle = nullptr;
  auth::FailureThrottle* login_failures = nullptr;  // per client and account
  auth::CpuQueue* login_cpu = nullptr;              // the login bulkhead's hashing threads
  boost::asio::thread_pool* cpu_pool = nullptr;     // Argon2id and other CPU-heavy work
  std::function<std::string()> readiness;           // for /readyz details
  db::Topology* topology = nullptr;                 // null: one database for everything
  WriteTracker* writes = nullptr;                   // read-your-writes, per session
  resilience::SwrCache* content_cache = nullptr;    // low tier: articles, recommendations
  deps::Registry* deps = nullptr;                   // external services, each with a breaker
  Secret ops_token;  // [ops] token_file's content; empty: the ops API refuses everyone
  chaos::PoolHolds* pool_holds = nullptr;  // [ops] chaos_hooks (portal/chaos_hooks.hpp)
  // The web app's bundle ([web] root), served for paths no route has; null: none.
  const http::StaticSite* web = nullptr;
  // Set by the session sync loop (every revocation_poll_ms): its last round trip to the
  // primary failed.
  std::atomic<bool> primary_unreachable{false};
  // Set once the session sync loop has loaded the revocation list: until then this node
  // cannot tell a logged-out token from a live one, so it is not ready (/readyz 503).
  std::atomic<bool> revocations_loaded{false};
  // Set by SIGTERM for [server] drain_ms: /readyz answers 503 "draining" so the edge
  // takes this node out of rotation while it still serves what arrives.
  std::atomic<bool> draining{false};
  // Set by the node registry loop: the first contract migration applied to the database
  // after this build's schema (0: none). Non-zero: not ready (/readyz 503).
  std::atomic<int64_t> newer_contract{0};
};

using TierPools = std::array<std::unique_ptr<db::Pool>, 5>;

// One shard: one thread, its pools: per tier one for writes (the primary, wherever it
// is now) and, with a topology, one per region's database for reads.
struct Shard {
  int index = 0;
  boost::asio::any_io_executor executor;
  TierPools pools;
  std::vector<TierPools> read_pools;  // indexed like Topology members
  std::array<int, 5> in_flight{};     // requests per tier being worked on (bulkhead)
  // Critical first ([server] critical_first_in_flight): orders the tiers' work on this
  // shard (null on the background shard, which serves no requests).
  std::unique_ptr<resilience::CriticalFirst> critical_first;
  // The login bulkhead (RouteEntry::bulkhead): a pool and an in-flight count of its own.
  std::unique_ptr<db::Pool> login_pool;
  int login_in_flight = 0;
  db::Pool& pool(Tier t) { return *pools[static_cast<int>(t)]; }
};

struct RequestContext {
  http::Request& req;
  Services& svc;
  Shard& shard;
  Tier tier;
  std::string_view route;
  Deadline deadline;
  std::optional<auth::Claims> claims;
  std::deque<audit::Record> audit;  // deque: Audit() references stay valid

  // Starts an audit record for an access attempt; its outcome stays "error" until the
  // handler says otherwise, so a failure halfway is recorded as such.
  audit::Record& Audit(std::string action, std::string resource_type = {},
                       std::string resource_id = {}, std::string patient_id = {});
  // Marks every open record of this request.
  void AuditOutcome(const std::string& outcome, const std::string& detail = {});
  uint64_t commit_lsn = 0;         // WAL position after this request's last write (0: none)
  bool attempt_journaled = false;  // the write attempt's records are durable
  // Access policy bookkeeping (portal/access.hpp): the policy opened the first audit
  // record and the handler has not taken it over yet; the patient whose access was
  // authorized.
  bool policy_record_open = false;
  std::optional<std::string> authorized_patient{};
  // A provider's care relationship with this patient, still to be checked: the next read
  // carries the check in its own round trip and withholds its results until it passes
  // (DeferAuthorizePatient, portal/access.hpp).
  std::optional<std::string> care_check_pending{};
  // A route with a bulkhead of its own (login): every statement, reads included, goes
  // through this pool (the primary) instead of the tier's pools.
  db::Pool* own_pool = nullptr;

  // How long a request may wait for its audit records: its deadline, but at least a
  // short floor, so a request that spent its deadline on the database still gets its
  // (failed) attempt recorded while the disk is healthy.
  std::chrono::steady_clock::time_point AuditDeadline() const;

  // Reads: the nearest database that is fresh enough for this caller (see db/topology),
  // failing over to the next one, within the deadline.
  boost::asio::awaitable<db::Result> Read(const db::Query& q, db::Params params);
  boost::asio::awaitable<std::vector<db::Result>> ReadBatch(std::vector<db::Statement> stmts);
  // ReadBatch without the pending care check (access.cpp sends the check through it).
  boost::asio::awaitable<std::vector<db::Result>> ReadNearest(std::vector<db::Statement> stmts);
  // Writes: the primary. `idempotent` lets a write whose connection broke after sending
  // be sent again (it carries an idempotency key). Remembers the commit's WAL position
  // for this session's later reads.
  boost::asio::awaitable<db::Result> Write(const db::Query& q, db::Params params,
                                           bool idempotent = false);
  boost::asio::awaitable<std::vector<db::Result>> WriteBatch(std::vector<db::Statement> stmts,
                                                             bool idempotent = false);
  db::Pool& pool() { return own_pool ? *own_pool : shard.pool(tier); }
  // A context for work no client asked for (workers, cache refreshes): no caller, no
  // audit records, the tier's pools and `deadline`. `req` must outlive it.
  static RequestContext Background(http::Request& req, Services& svc, Shard& shard, Tier tier,
                                   std::string_view route, std::chrono::milliseconds deadline) {
    return RequestContext{req,          svc, shard, tier, route, Deadline::After(deadline),
                          std::nullopt, {}};
  }
  std::string BaseUrl() const;  // "<[server] public_base_url>/fhir/R4"
};

}  // namespace continuum::portal
