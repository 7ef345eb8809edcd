#include "portal/node.hpp"

#include <fmt/format.h>
#include <pthread.h>
#include <sodium.h>
#include <sys/statvfs.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <thread>

#include "audit/journal.hpp"
#include "audit/shipper.hpp"
#include "auth/cpu_queue.hpp"
#include "auth/session_cache.hpp"
#include "auth/throttle.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/release.hpp"
#include "db/errors.hpp"
#include "deps/dependency.hpp"
#include "deps/smtp_client.hpp"
#include "http/outcome.hpp"
#include "http/server.hpp"
#include "http/static_site.hpp"
#include "portal/access.hpp"
#include "portal/chaos_hooks.hpp"
#include "portal/ehr_sync.hpp"
#include "portal/high/notifications.hpp"
#include "portal/medium/billing.hpp"
#include "portal/medium/jobs.hpp"
#include "portal/ops.hpp"
#include "portal/ops_api.hpp"
#include "portal/routes.hpp"
#include "resilience/swr_cache.hpp"

namespace continuum::portal {
namespace asio = boost::asio;

namespace {

// "Last seen" bookkeeping is operational data: it commits with synchronous_commit =
// local (losing the last second of it on failover is harmless; revocations are written
// by the logout request itself with full durability).
const db::Query kFlushSeen{
    "session_flush_last_seen",
    "UPDATE session s SET last_seen_at = to_timestamp(v.ts) FROM (SELECT unnest($1::text[]) AS "
    "id, unnest($2::float8[]) AS ts) v WHERE s.id = v.id AND s.last_seen_at < to_timestamp(v.ts)",
    db::Access::kWrite, db::DataClass::kOperational};
// Revocations are polled by a cursor that is monotonic at commit (0016_session_auth.sql):
// the id of the transaction that revoked. The cursor is the oldest transaction still
// running when the previous poll began (pg_snapshot_xmin), read BEFORE the poll's query:
// a revocation that poll did not see had not committed, so its transaction was running
// or not yet started, and its id is >= that cursor -- however long its commit took.
// (A time window, revoked_at >= last poll - 5 s, lost a logout whose commit came more
// than 5 s after its transaction began: revoked_at is the transaction's start.)
const db::Query kRevocationCursor{"session_revocation_cursor",
                                  "SELECT pg_snapshot_xmin(pg_current_snapshot())::text",
                                  db::Access::kRead};
const db::Query kRevokedAll{"session_revoked_all",
                            "SELECT id, extract(epoch FROM expires_at)::bigint FROM session "
                            "WHERE revoked_at IS NOT NULL AND expires_at > now()",
                            db::Access::kRead};
const db::Query kRevokedAfter{"session_revoked_after",
                              "SELECT id, extract(epoch FROM expires_at)::bigint FROM session "
                              "WHERE revoked_xid >= $1::xid8 AND expires_at > now()",
                              db::Access::kRead};
const db::Query kDbNow{"db_now", "SELECT extract(epoch FROM now())::bigint", db::Access::kRead};
const db::Query kSeenSince{
    "session_seen_since",
    "SELECT id, extract(epoch FROM last_seen_at)::bigint FROM session WHERE last_seen_at >= "
    "to_timestamp($1) AND revoked_at IS NULL AND expires_at > now()",
    db::Access::kRead};

struct NodeState {
  std::atomic<bool> stopping{false};
};

// Keeps this node's session cache in step with the cluster: pushes local activity,
// pulls revocations and other nodes' activity.
asio::awaitable<void> SessionSync(Shard& shard, Services& svc, NodeState& state) {
  asio::steady_timer timer(shard.executor);
  int64_t since = 0;
  std::string cursor;  // revocations: see kRevocationCursor; empty: load them all
  bool warned = false;
  while (!state.stopping.load()) {
    int64_t now = UnixNow();
    auto dirty = svc.sessions->TakeDirtyLastSeen();
    try {
      auto deadline = Deadline::After(std::chrono::milliseconds(2000));
      if (!dirty.empty()) {
        std::string ids = "{", ts = "{";
        for (std::size_t i = 0; i < dirty.size(); ++i) {
          ids += (i ? "," : "") + dirty[i].first;
          ts += (i ? "," : "") + std::to_string(dirty[i].second);
        }
        ids += "}";
        ts += "}";
        std::vector<db::Statement> b;
        b.push_back({&kFlushSeen, {ids, ts}});
        co_await shard.pool(Tier::kOps).Batch(std::move(b), deadline);
      }
      std::vector<db::Statement> b;
      b.push_back({&kRevocationCursor, {}});  // first: see kRevocationCursor
      if (cursor.empty())
        b.push_back({&kRevokedAll, {}});
      else
        b.push_back({&kRevokedAfter, {cursor}});
      // Activity stays on a time window: a missed last_seen_at only makes this node's
      // idle view lag (see auth/session_cache.hpp), never revives a session.
      b.push_back({&kSeenSince, {since > 0 ? since - 5 : now - svc.config.session_idle_s}});
      b.push_back({&kDbNow, {}});
      auto rs = co_await shard.pool(Tier::kOps).Batch(std::move(b), deadline);
      std::vector<std::pair<std::string, int64_t>> revoked;
      for (int i = 0; i < rs[1].rows(); ++i)
        revoked.emplace_back(rs[1].str(i, 0), rs[1].get_int(i, 1));
      svc.sessions->ApplyRevocations(revoked);
      std::vector<std::pair<std::string, int64_t>> seen;
      for (int i = 0; i < rs[2].rows(); ++i)
        seen.emplace_back(rs[2].str(i, 0), rs[2].get_int(i, 1));
      svc.sessions->ApplyLastSeen(seen);
      cursor = rs[0].str(0, 0);
      // The next window starts from the database's clock, not ours.
      since = rs[3].get_int(0, 0);
      svc.revocations_loaded.store(true);
      svc.primary_unreachable.store(false);
      warned = false;
    } catch (const std::exception& e) {
      // Put the activity back so it is flushed next time.
      if (!dirty.empty()) svc.sessions->ApplyLastSeen(dirty);
      svc.primary_unreachable.store(true);
      if (!warned) log::Warn("session sync failed: {}", e.what());
      warned = true;
    }
    svc.sessions->Sweep(now);
    timer.expires_after(std::chrono::milliseconds(svc.config.revocation_poll_ms));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

// The node registry (db/migrations/0019_node_registry.sql): this process registers
// with its release and the schema it was built for, moves its heartbeat every
// kHeartbeatMs, and deregisters on a clean stop. `continuum migrate --contract` reads
// it and refuses a contract migration while a node built before it is live. Best effort:
// a failed heartbeat (no primary during a failover, a schema before 0019) is logged once
// and retried; it never affects serving.
constexpr int kHeartbeatMs = 5000;
const db::Query kNodeHeartbeat{
    "node_heartbeat",
    "INSERT INTO continuum_node (instance_id, node_id, region, version, schema_version) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (instance_id) DO UPDATE SET heartbeat_at = now()",
    db::Access::kWrite, db::DataClass::kOperational};
// The first contract migration applied after this build's schema (0 if none): this
// release's statements may violate it (e.g. an INSERT without a column now required), so
// the node stays out of rotation. to_jsonb: a database migrated before the kind column
// existed has no contract recorded.
const db::Query kNewerContract{
    "node_newer_contract",
    "SELECT coalesce(min(version), 0) FROM schema_migrations s WHERE version > $1 AND "
    "to_jsonb(s) ->> 'kind' = 'contract'",
    db::Access::kRead, db::DataClass::kOperational};
const db::Query kNodeDeregister{"node_deregister",
                                "DELETE FROM continuum_node WHERE instance_id = $1",
                                db::Access::kWrite, db::DataClass::kOperational};

std::string NewInstanceId() {
  unsigned char b[12];
  randombytes_buf(b, sizeof b);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : b) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

asio::awaitable<void> NodeRegistry(Shard& shard, Services& svc, NodeState& state,
                                   const std::string& instance) {
  asio::steady_timer timer(shard.executor);
  bool warned = false;
  int64_t reported = 0;
  while (!state.stopping.load()) {
    try {
      auto r = co_await shard.pool(Tier::kOps)
                   .Exec(kNewerContract, db::P(std::to_string(KnownSchemaVersion())),
                         Deadline::After(std::chrono::milliseconds(2000)));
      int64_t v = r.get_int(0, 0);
      svc.newer_contract.store(v);
      if (v != reported && v != 0)
        log::Error(
            "the database has contract migration {}, applied after this release's schema "
            "({}): not ready; run a release built with it",
            v, KnownSchemaVersion());
      reported = v;
    } catch (const std::exception& e) {
      if (!warned) log::Warn("node registry: schema check failed (retrying): {}", e.what());
    }
    try {
      co_await shard.pool(Tier::kOps)
          .Exec(kNodeHeartbeat,
                db::P(instance, svc.config.node_id, svc.config.region, std::string(BuildVersion()),
                      std::to_string(KnownSchemaVersion())),
                Deadline::After(std::chrono::milliseconds(2000)));
      if (warned) log::Info("node registry: heartbeat written again");
      warned = false;
    } catch (const std::exception& e) {
      if (!warned) log::Warn("node registry: heartbeat failed (retrying): {}", e.what());
      warned = true;
    }
    timer.expires_after(std::chrono::milliseconds(kHeartbeatMs));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<void> NodeDeregister(Shard& shard, const std::string& instance) {
  try {
    co_await shard.pool(Tier::kOps)
        .Exec(kNodeDeregister, db::P(instance), Deadline::After(std::chrono::milliseconds(1500)));
    log::Info("node registry: deregistered");
  } catch (const std::exception& e) {
    log::Warn("node registry: deregistration failed (the row goes stale instead): {}", e.what());
  }
}

// The tier's fallback (ARCHITECTURE §3), applied to a request its backend failed: a
// high-tier write that found no primary (connection lost, none reachable, deadline
// spent waiting) becomes "read-only" -- reads keep working meanwhile, and the tier
// recovers by itself as soon as a primary answers. Only while the topology's probes call
// the primary gone (`primary_gone`: db::Topology::PrimaryGone, as for RequireWritable and
// /readyz's tier mode): before that the failure was this request's own (a deadline spent
// on a saturated node, one lost connection, one missed probe), no backup database is being
// switched to, and the 503 says what happened instead (seen at a cluster's start: a
// booking refused as "read-only ... switching to a backup database" with the primary up).
std::exception_ptr DegradeForTier(Tier tier, const http::Request& req, std::exception_ptr e,
                                  bool primary_gone) {
  if (tier != Tier::kHigh || req.method == "GET" || req.method == "HEAD") return e;
  if (!primary_gone) return e;
  try {
    std::rethrow_exception(e);
  } catch (const Degraded&) {
    return e;
  } catch (const db::ConnectionError&) {
  } catch (const DeadlineExceeded&) {
  } catch (...) {
    return e;
  }
  return std::make_exception_ptr(ReadOnlyTier());
}

bool HasHeader(const http::Response& r, std::string_view lower_name) {
  for (const auto& [k, v] : r.headers) {
    if (k.size() != lower_name.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < k.size() && same; ++i)
      same = std::tolower(static_cast<unsigned char>(k[i])) == lower_name[i];
    if (same) return true;
  }
  return false;
}

// [fault_injection] error_permille: request i (counted over the whole node from 0) fails
// when floor((i + 1) * p / 1000) > floor(i * p / 1000): exactly p of any 1,000 consecutive
// requests fail, evenly spread.
bool InjectFault(const Config& cfg) {
  static std::atomic<uint64_t> n{0};
  const uint64_t i = n.fetch_add(1, std::memory_order_relaxed);
  const auto p = static_cast<uint64_t>(cfg.fault_error_permille);
  return (i + 1) * p / 1000 != i * p / 1000;
}

asio::awaitable<http::Response> Dispatch(Shard& shard, Services& svc,
                                         const http::Router<RouteEntry>& router,
                                         http::Request& req) {
  auto start = std::chrono::steady_clock::now();
  bool known = false;
  const RouteEntry* e = router.Match(req.method, req.path, req.path_params, known);
  http::Response resp;
  std::string_view route = "unmatched";
  Tier tier = Tier::kOps;
  if (!e) {
    if (known) {
      std::string allow;
      for (auto& m : router.Allowed(req.path)) allow += (allow.empty() ? "" : ", ") + m;
      resp = http::OutcomeResponse(405, "not-supported",
                                   req.method + " is not supported here; allowed: " + allow + ".");
      resp.set_header("Allow", allow);
    } else if (auto page = svc.web
                               ? svc.web->Serve(req.method, req.path, req.header("if-none-match"))
                               : std::nullopt) {
      // The web app's files: no PHI, so neither audited nor on a tier's bulkhead.
      route = "static";
      resp = std::move(*page);
    } else {
      resp = http::OutcomeResponse(404, "not-found", "There is no resource at this path.");
    }
  } else if (e->tier != Tier::kOps && svc.config.fault_error_permille > 0 &&
             InjectFault(svc.config)) {
    route = e->name;
    tier = e->tier;
    resp = http::OutcomeResponse(500, "exception",
                                 "Injected fault ([fault_injection] error_permille): this node "
                                 "runs a configuration that fails requests on purpose.");
  } else {
    route = e->name;
    tier = e->tier;
    if (tier != Tier::kOps && svc.config.fault_extra_latency_ms > 0) {
      asio::steady_timer t(shard.executor,
                           std::chrono::milliseconds(svc.config.fault_extra_latency_ms));
      co_await t.async_wait(asio::use_awaitable);
    }
    RequestContext ctx{
        req,
        svc,
        shard,
        tier,
        route,
        Deadline::After(std::chrono::milliseconds(svc.config.limits(tier).deadline_ms)),
        std::nullopt,
        {}};
    // Bulkhead: each tier may occupy only so much of this shard, so a flood of one
    // tier's requests (a hung billing backend) cannot take the others' capacity. Login
    // has a bulkhead of its own (its pool, its limit), though it is on the critical tier.
    bool own = e->bulkhead == Bulkhead::kLogin;
    int& in_flight = own ? shard.login_in_flight : shard.in_flight[static_cast<int>(tier)];
    int configured = own ? svc.config.login_max_in_flight : svc.config.limits(tier).max_in_flight;
    int limit = std::max(1, (configured + static_cast<int>(svc.config.threads) - 1) /
                                std::max(1, svc.config.threads));
    if (own) ctx.own_pool = shard.login_pool.get();
    if (in_flight >= limit) {
      resp = http::OutcomeResponse(
          503, "transient",
          own ? std::string("Logging in is busy right now; please retry in a moment. Signed-in "
                            "users are not affected.")
              : std::string("The ") + std::string(TierName(tier)) +
                    " features are busy right now; please retry in a moment. Other features "
                    "are not affected.");
      resp.set_header("Retry-After", "2");
    } else {
      ++in_flight;
      // The slots this request takes are given back however it ends: at the end of this
      // block, when an exception escapes it, or when its frame is destroyed at shutdown.
      struct Slots {
        int& in_flight;
        resilience::CriticalFirst* gate;  // set once it holds a critical-first slot
        Tier tier;
        const http::Response& resp;
        ~Slots() {
          if (gate && tier == Tier::kCritical)
            gate->CriticalEnd(resp.status < 500);
          else if (gate)
            gate->Leave(tier);
          --in_flight;
        }
      } slots{in_flight, nullptr, tier, resp};
      // Critical first: while this shard works on many critical-tier requests with its CPU
      // saturated, the other tiers take their turn within a small limit each, waiting at most
      // half of their time to the deadline (resilience/critical_first.hpp). Login has its own
      // bulkhead and is not counted; ops is never held back.
      resilience::CriticalFirst* gate = own ? nullptr : shard.critical_first.get();
      const bool lower = tier == Tier::kHigh || tier == Tier::kMedium || tier == Tier::kLow;
      if (gate && tier == Tier::kCritical) {
        gate->CriticalBegin();
        slots.gate = gate;
      } else if (gate && lower) {
        co_await gate->Enter(tier, ctx.deadline);  // delays, never refuses
        slots.gate = gate;
      }
      std::exception_ptr failed;
      try {
        // The route's access policy, in one place (portal/access.hpp).
        co_await ApplyAccessPolicy(ctx, e->access);
        if (e->body && e->body->kind == BodyKind::kNone) {
          try {
            RequireNoBody(req);  // the operation never runs on a body it would ignore
          } catch (const Error& bad) {
            ctx.AuditOutcome("failure", "invalid request: a body where none is taken");
            if (tier == Tier::kOps) ops::NoteRefusedBody(ctx, bad);  // counted like any ops body
            throw;
          }
        }
        resp = co_await e->handler(ctx);
        co_await SettleDeferredCheck(ctx);  // a handler that read nothing (access.hpp)
        CheckAccessAfter(ctx, e->access, resp);
      } catch (...) {
        failed = std::current_exception();
      }
      if (failed && ctx.care_check_pending) {
        // The handler failed before its first read (a bad parameter, a body): the deferred
        // check decides first, and its refusal wins, as when the policy ran before it.
        try {
          co_await SettleDeferredCheck(ctx);
        } catch (...) {
          failed = std::current_exception();
        }
      }
      if (failed)
        resp = http::ErrorResponse(DegradeForTier(
            tier, req, failed, svc.topology == nullptr || svc.topology->PrimaryGone()));
      if (ctx.commit_lsn != 0 && ctx.commit_lsn != UINT64_MAX)
        resp.set_header("X-Continuum-LSN", std::to_string(ctx.commit_lsn));
      // What a session or the ops token reads is PHI or operators' data: no browser or
      // shared cache keeps it, unless the handler chose (content: "private, max-age=60").
      if (e->access.caller != RouteCaller::kAnyone && !HasHeader(resp, "cache-control"))
        resp.set_header("Cache-Control", "no-store");
      if (!ctx.audit.empty()) {
        // No response about PHI leaves before its audit records are durable. The wait
        // holds the tier's bulkhead slot (a stalled disk fills the tier's in-flight
        // limit, then new requests get a fast 503, instead of piling up) and ends at the
        // request's deadline (Journal::Append; the journal's queue is capped too).
        std::vector<audit::Record> records(std::make_move_iterator(ctx.audit.begin()),
                                           std::make_move_iterator(ctx.audit.end()));
        bool ok = true;
        try {
          co_await svc.journal->Append(shard.executor, std::move(records), ctx.AuditDeadline());
        } catch (const std::exception& ex) {
          ok = false;
          log::Error("audit journal append failed: {}", ex.what());
        }
        if (!ok) {
          resp = http::OutcomeResponse(
              503, "transient",
              "The audit trail could not be written, so the response is withheld. Please retry.");
          resp.set_header("Retry-After", "1");
        }
      }
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Metrics::Get().ObserveRequest(route, TierName(tier), resp.status, secs);
  if (svc.config.access_log)
    log::Access(fmt::format(
        R"("request_id":"{}","method":"{}","route":"{}","tier":"{}","status":{},"ms":{:.3f},"client":"{}")",
        log::JsonEscape(req.request_id), log::JsonEscape(req.method), route, TierName(tier),
        resp.status, secs * 1000, log::JsonEscape(req.client_address)));
  co_return resp;
}

// Taken at static initialisation, i.e. as the process starts; a restart (by a
// supervisor, after a crash) shows as a new value.
const double kProcessStart =
    std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
double ProcessStartTime() { return kProcessStart; }

void RegisterCollectors(std::vector<std::unique_ptr<Shard>>& shards, audit::Journal& journal,
                        audit::Shipper* shipper, auth::SessionCache& sessions, Services& svc) {
  Metrics::Get().AddCollector([&svc](std::string& out) {
    out += "# HELP continuum_build_info The running build (git describe when it was built).\n";
    out += "# TYPE continuum_build_info gauge\n";
    out += fmt::format("continuum_build_info{{version=\"{}\",node=\"{}\",region=\"{}\"}} 1\n",
                       BuildVersion(), log::JsonEscape(svc.config.node_id),
                       log::JsonEscape(svc.config.region));
    out += "# HELP continuum_process_start_time_seconds When this process started (Unix time).\n";
    out += "# TYPE continuum_process_start_time_seconds gauge\n";
    out += fmt::format("continuum_process_start_time_seconds {:.3f}\n", ProcessStartTime());
    out += "# HELP continuum_fault_injection_active 1 while [fault_injection] defects are on.\n";
    out += "# TYPE continuum_fault_injection_active gauge\n";
    out += fmt::format("continuum_fault_injection_active {}\n",
                       svc.config.FaultInjectionActive() ? 1 : 0);
    // 1 while a tier is in that degraded mode (as /readyz reports it); every tier's
    // possible modes are always exported, so a rule can tell 0 from absent.
    out += "# HELP continuum_tier_degraded 1 while the tier is in this degraded mode.\n";
    out += "# TYPE continuum_tier_degraded gauge\n";
    auto modes = TierModesNow(svc);
    for (Tier t : kAllTiers)
      for (const char* m : DegradedModes(t))
        out += fmt::format("continuum_tier_degraded{{tier=\"{}\",mode=\"{}\"}} {}\n", TierName(t),
                           m, std::string_view(modes[static_cast<int>(t)]) == m ? 1 : 0);
    // The audit journal's file system: a full disk stops every PHI response.
    struct statvfs fs {};
    if (svc.config.audit_enabled && statvfs(svc.config.audit_dir.c_str(), &fs) == 0) {
      out +=
          "# HELP continuum_audit_journal_fs_avail_bytes Free bytes (for unprivileged users) "
          "of the audit journal's file system.\n";
      out += "# TYPE continuum_audit_journal_fs_avail_bytes gauge\n";
      out += fmt::format("continuum_audit_journal_fs_avail_bytes {}\n",
                         static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize);
      out += "# TYPE continuum_audit_journal_fs_size_bytes gauge\n";
      out += fmt::format("continuum_audit_journal_fs_size_bytes {}\n",
                         static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize);
    }
    ops::RenderMetrics(out);
  });
  Metrics::Get().AddCollector([&shards, &journal, shipper, &sessions, &svc](std::string& out) {
    // Configured limits (summed over shards, as the pools are split per shard), so a
    // rule can compute saturation: in_use / size, waiting / queue_limit.
    // (Each family's samples stay together, as the exposition format asks.)
    std::string sizes = "# TYPE continuum_db_pool_size gauge\n";
    std::string queues = "# TYPE continuum_db_pool_queue_limit gauge\n";
    for (Tier t : kAllTiers) {
      int64_t size = 0, queue = 0;
      for (auto& s : shards) {
        size += s->pool(t).options().size;
        queue += s->pool(t).options().queue_limit;
      }
      sizes += fmt::format("continuum_db_pool_size{{tier=\"{}\"}} {}\n", TierName(t), size);
      queues +=
          fmt::format("continuum_db_pool_queue_limit{{tier=\"{}\"}} {}\n", TierName(t), queue);
    }
    out += sizes + queues;
    out += "# TYPE continuum_db_pool_connections gauge\n";
    out += "# TYPE continuum_db_pool_events_total counter\n";
    for (Tier t : kAllTiers) {
      int64_t open = 0, in_use = 0, waiting = 0;
      uint64_t rejected = 0, timeouts = 0, cfail = 0, qfail = 0, acquired = 0, grouped = 0;
      for (auto& s : shards) {
        const auto& st = s->pool(t).stats();
        grouped += st.grouped.load();
        open += st.open.load();
        in_use += st.in_use.load();
        waiting += st.waiting.load();
        rejected += st.rejected.load();
        timeouts += st.wait_timeouts.load();
        cfail += st.connect_failures.load();
        qfail += st.query_failures.load();
        acquired += st.acquired.load();
      }
      auto n = TierName(t);
      out +=
          fmt::format("continuum_db_pool_connections{{tier=\"{}\",state=\"open\"}} {}\n", n, open);
      out += fmt::format("continuum_db_pool_connections{{tier=\"{}\",state=\"in_use\"}} {}\n", n,
                         in_use);
      out += fmt::format("continuum_db_pool_connections{{tier=\"{}\",state=\"waiting\"}} {}\n", n,
                         waiting);
      out += fmt::format("continuum_db_pool_events_total{{tier=\"{}\",event=\"acquired\"}} {}\n", n,
                         acquired);
      out += fmt::format("continuum_db_pool_events_total{{tier=\"{}\",event=\"rejected\"}} {}\n", n,
                         rejected);
      out += fmt::format(
          "continuum_db_pool_events_total{{tier=\"{}\",event=\"wait_timeout\"}} {}\n", n, timeouts);
      out += fmt::format(
          "continuum_db_pool_events_total{{tier=\"{}\",event=\"connect_failure\"}} {}\n", n, cfail);
      out += fmt::format(
          "continuum_db_pool_events_total{{tier=\"{}\",event=\"query_failure\"}} {}\n", n, qfail);
      out += fmt::format("continuum_db_pool_events_total{{tier=\"{}\",event=\"grouped\"}} {}\n", n,
                         grouped);
    }
    // With a topology, reads have pools of their own per region's database.
    if (svc.topology) {
      std::string conns = "# TYPE continuum_db_read_pool_connections gauge\n";
      std::string events = "# TYPE continuum_db_read_pool_events_total counter\n";
      const auto& regions = svc.topology->options().regions;
      for (std::size_t r = 0; r < regions.size(); ++r)
        for (Tier t : kAllTiers) {
          int64_t open = 0, in_use = 0, waiting = 0;
          uint64_t rejected = 0, timeouts = 0, cfail = 0, grouped = 0;
          for (auto& s : shards) {
            if (r >= s->read_pools.size()) continue;
            const auto& st = s->read_pools[r][static_cast<int>(t)]->stats();
            grouped += st.grouped.load();
            open += st.open.load();
            in_use += st.in_use.load();
            waiting += st.waiting.load();
            rejected += st.rejected.load();
            timeouts += st.wait_timeouts.load();
            cfail += st.connect_failures.load();
          }
          auto labels = fmt::format(R"(tier="{}",region="{}")", TierName(t), regions[r].name);
          for (auto [state, v] : {std::pair{"open", open}, std::pair{"in_use", in_use},
                                  std::pair{"waiting", waiting}})
            conns += fmt::format("continuum_db_read_pool_connections{{{},state=\"{}\"}} {}\n",
                                 labels, state, v);
          for (auto [event, v] :
               {std::pair{"rejected", rejected}, std::pair{"wait_timeout", timeouts},
                std::pair{"connect_failure", cfail}, std::pair{"grouped", grouped}})
            events += fmt::format("continuum_db_read_pool_events_total{{{},event=\"{}\"}} {}\n",
                                  labels, event, v);
        }
      out += conns + events;
    }
    // Critical first: the lower tiers' requests that waited for critical work, how long,
    // how many went ahead at half their time to the deadline, and the shards engaged now.
    {
      std::string waits =
          "# HELP continuum_critical_first_waits_total Lower-tier requests that waited their "
          "turn while critical-tier requests were served.\n"
          "# TYPE continuum_critical_first_waits_total counter\n";
      std::string overdue =
          "# HELP continuum_critical_first_overdue_total Of those, went ahead before their "
          "turn, having waited half of their time to the deadline.\n"
          "# TYPE continuum_critical_first_overdue_total counter\n";
      std::string seconds =
          "# HELP continuum_critical_first_wait_seconds_total Time those requests waited.\n"
          "# TYPE continuum_critical_first_wait_seconds_total counter\n";
      std::string now =
          "# HELP continuum_critical_first_waiting Lower-tier requests waiting now.\n"
          "# TYPE continuum_critical_first_waiting gauge\n";
      for (Tier t : {Tier::kHigh, Tier::kMedium, Tier::kLow}) {
        uint64_t w = 0, r = 0, us = 0;
        int64_t waiting = 0;
        for (auto& s : shards) {
          if (!s->critical_first) continue;
          const auto& st = s->critical_first->stats()[static_cast<int>(t)];
          w += st.waited.load(std::memory_order_relaxed);
          r += st.overdue.load(std::memory_order_relaxed);
          us += st.wait_us.load(std::memory_order_relaxed);
          waiting += st.waiting.load(std::memory_order_relaxed);
        }
        auto n = TierName(t);
        waits += fmt::format("continuum_critical_first_waits_total{{tier=\"{}\"}} {}\n", n, w);
        overdue += fmt::format("continuum_critical_first_overdue_total{{tier=\"{}\"}} {}\n", n, r);
        seconds +=
            fmt::format("continuum_critical_first_wait_seconds_total{{tier=\"{}\"}} {:.6f}\n", n,
                        static_cast<double>(us) / 1e6);
        now += fmt::format("continuum_critical_first_waiting{{tier=\"{}\"}} {}\n", n, waiting);
      }
      out += waits + overdue + seconds + now;
      int engaged = 0;
      uint64_t probes = 0, late = 0, engaged_probes = 0;
      for (auto& s : shards)
        if (s->critical_first) {
          engaged += s->critical_first->engaged_now();
          probes += s->critical_first->probes();
          late += s->critical_first->late_probes();
          engaged_probes += s->critical_first->engaged_probes();
        }
      out += fmt::format(
          "# HELP continuum_critical_first_engaged Threads (shards) whose lower tiers yield to "
          "critical work now.\n"
          "# TYPE continuum_critical_first_engaged gauge\n"
          "continuum_critical_first_engaged {}\n"
          "# HELP continuum_critical_first_lag_probes_total Event-loop lag measurements taken "
          "while critical work was at its threshold.\n"
          "# TYPE continuum_critical_first_lag_probes_total counter\n"
          "continuum_critical_first_lag_probes_total {}\n"
          "# HELP continuum_critical_first_late_probes_total Of those, at or above "
          "critical_first_lag_us (CPU saturated).\n"
          "# TYPE continuum_critical_first_late_probes_total counter\n"
          "continuum_critical_first_late_probes_total {}\n"
          "# HELP continuum_critical_first_engaged_probes_total Of those, taken while the "
          "lower tiers yielded.\n"
          "# TYPE continuum_critical_first_engaged_probes_total counter\n"
          "continuum_critical_first_engaged_probes_total {}\n",
          engaged, probes, late, engaged_probes);
    }
    auto js = journal.stats();
    out += "# TYPE continuum_audit_journal_records_total counter\n";
    out += fmt::format("continuum_audit_journal_records_total {}\n", js.records);
    out += "# TYPE continuum_audit_journal_syncs_total counter\n";
    out += fmt::format("continuum_audit_journal_syncs_total {}\n", js.syncs);
    out += "# TYPE continuum_audit_journal_pending gauge\n";
    out += fmt::format("continuum_audit_journal_pending {}\n", js.pending);
    out += "# TYPE continuum_audit_journal_failures_total counter\n";
    out += fmt::format("continuum_audit_journal_failures_total {}\n", js.failures);
    out += "# TYPE continuum_audit_journal_refused_total counter\n";
    out += fmt::format("continuum_audit_journal_refused_total {}\n", js.refused);
    out += "# TYPE continuum_audit_journal_healthy gauge\n";
    out += fmt::format("continuum_audit_journal_healthy {}\n", js.healthy ? 1 : 0);
    // > 0: the journal folder was lost or replaced and this start began a new epoch at
    // that seq (src/audit/journal.hpp); alert on it.
    out += "# TYPE continuum_audit_journal_epoch_start_seq gauge\n";
    out += fmt::format("continuum_audit_journal_epoch_start_seq {}\n", js.epoch_start_seq);
    if (shipper) {
      auto ss = shipper->stats();
      out += "# TYPE continuum_audit_ship_backlog gauge\n";
      out += fmt::format("continuum_audit_ship_backlog {}\n", ss.backlog);
      out += "# TYPE continuum_audit_shipped_total counter\n";
      out += fmt::format("continuum_audit_shipped_total {}\n", ss.shipped);
      out += "# TYPE continuum_audit_signed_heads_total counter\n";
      out += fmt::format("continuum_audit_signed_heads_total {}\n", ss.heads);
      out += "# TYPE continuum_audit_ship_failures_total counter\n";
      out += fmt::format("continuum_audit_ship_failures_total {}\n", ss.failures);
    }
    out += "# TYPE continuum_sessions_cached gauge\n";
    out += fmt::format("continuum_sessions_cached {}\n", sessions.size());
  });
}

}  // namespace

int Serve(const Config& cfg) {
  log::Init("serve", cfg.node_id);
  const std::string instance_id = NewInstanceId();  // this process in continuum_node
  log::Info("release {} (schema {}), instance {}", BuildVersion(), KnownSchemaVersion(),
            instance_id);
  Metrics::Get().SetRequestLabel("version", BuildVersion());
  if (cfg.FaultInjectionActive()) {
    log::Warn(
        "[fault_injection] is on: error_permille={} extra_latency_ms={} crash_on_start={} "
        "never_ready={} (a test configuration: never in production)",
        cfg.fault_error_permille, cfg.fault_extra_latency_ms, cfg.fault_crash_on_start,
        cfg.fault_never_ready);
    if (cfg.fault_crash_on_start) {
      log::Error("[fault_injection] crash_on_start: exiting with 70 before listening");
      log::Flush();
      return 70;
    }
  }
  Services svc;
  svc.config = cfg;
  if (!cfg.ops_token_file.empty()) svc.ops_token = ops::LoadOpsToken(cfg.ops_token_file);
  svc.signer = std::make_unique<auth::TokenSigner>(auth::LoadOrCreateKey(cfg.key_file));
  audit::JournalOptions jo{cfg.audit_dir, cfg.node_id, cfg.region, cfg.audit_enabled};
  jo.max_pending_records = static_cast<std::size_t>(cfg.audit_max_pending_records);
  jo.preallocate_bytes = static_cast<std::size_t>(cfg.audit_preallocate_kb) << 10;
  jo.group_commit_wait_us = cfg.audit_group_commit_wait_us;
  jo.database_url = cfg.database_url;  // a lost journal folder starts a new epoch
  audit::Journal journal(std::move(jo));
  svc.journal = &journal;
  std::unique_ptr<audit::Shipper> shipper;
  if (cfg.audit_enabled) {
    audit::ShipperOptions so;
    so.journal_dir = cfg.audit_dir;
    so.database_url = cfg.database_url;
    so.interval_ms = cfg.audit_ship_interval_ms;
    so.signing_key_file = cfg.AuditSigningKeyFile();
    so.head_interval_ms = cfg.audit_head_interval_ms;
    shipper = std::make_unique<audit::Shipper>(std::move(so));
    shipper->Start();
  }
  auth::SessionCache sessions(cfg.session_idle_s);
  svc.sessions = &sessions;
  auth::LoginThrottle throttle(cfg.login_burst, cfg.login_rate_per_minute);
  svc.throttle = &throttle;
  auth::FailureThrottle login_failures(cfg.max_login_failures, std::chrono::seconds(cfg.lockout_s));
  svc.login_failures = &login_failures;
  // Hashing below the request threads' priority and within a share of the node's CPU:
  // records first, logins with what is left (src/auth/README.md).
  auth::CpuQueue login_cpu(
      {.threads = cfg.login_hash_threads,
       .max_jobs = cfg.login_cpu_queue,
       .idle = cfg.login_hash_idle,
       .nice = cfg.login_hash_nice,
       .cpu_per_s = cfg.login_cpu_percent / 100.0 * auth::CpuQueue::UsableCpus(),
       .burst_s = static_cast<double>(cfg.login_cpu_burst_s)});
  svc.login_cpu = &login_cpu;
  asio::thread_pool cpu_pool(1);
  svc.cpu_pool = &cpu_pool;
  NodeState state;
  // Reads by region (optional): the local region's database first, then the others in
  // configured order.
  std::unique_ptr<db::Topology> topology;
  std::unique_ptr<WriteTracker> writes;
  if (!cfg.topology_regions.empty()) {
    db::TopologyOptions to;
    to.local_region = cfg.region;
    to.max_replica_lag_ms = cfg.max_replica_lag_ms;
    to.probe_interval_ms = cfg.probe_interval_ms;
    for (const auto& r : cfg.topology_regions)
      if (r.name == cfg.region) to.regions.push_back({r.name, r.database_url});
    for (const auto& r : cfg.topology_regions)
      if (r.name != cfg.region) to.regions.push_back({r.name, r.database_url});
    topology = std::make_unique<db::Topology>(std::move(to));
    svc.topology = topology.get();
    writes = std::make_unique<WriteTracker>(
        std::chrono::milliseconds(cfg.max_replica_lag_ms + 2 * cfg.probe_interval_ms));
    svc.writes = writes.get();
  }
  resilience::SwrCache content_cache(
      {std::chrono::milliseconds(cfg.cache_fresh_ms),
       std::chrono::milliseconds(cfg.cache_stale_while_revalidate_ms),
       std::chrono::milliseconds(cfg.cache_stale_if_error_ms),
       static_cast<std::size_t>(cfg.cache_max_entries)});
  svc.content_cache = &content_cache;
  deps::Registry dependencies;
  for (const auto& d : cfg.dependencies) {
    deps::DependencyOptions o;
    o.name = d.name;
    o.url = d.url;
    o.ca_file = d.ca_file;
    o.allow_plaintext = d.allow_plaintext;
    o.timeout = std::chrono::milliseconds(d.timeout_ms);
    o.health_path = "/health";
    o.check_interval = std::chrono::milliseconds(d.check_interval_ms);
    o.breaker.failure_threshold = d.failure_threshold;
    o.breaker.open_for = std::chrono::milliseconds(d.open_ms);
    o.breaker.failure_rate = d.failure_rate_pct / 100.0;
    if (d.name == "smtp") {
      // No HTTP health endpoint: the check is an SMTP dialogue up to MAIL FROM, then RSET.
      o.health_path.clear();
      auto ep = http::ParseBaseUrl("http://" + d.url.substr(7));
      deps::smtp::Server server;
      server.host = ep.host;
      server.port = ep.port;
      server.helo = cfg.notify_from.substr(cfg.notify_from.find('@') + 1);
      server.timeout = o.timeout;
      std::string from = cfg.notify_from;
      // The dependency owns the TLS context (STARTTLS unless allow_plaintext).
      o.check = [server, from, &dependencies, name = d.name]() mutable {
        server.tls = dependencies.Find(name)->tls();
        return deps::smtp::Probe(server, from);
      };
    }
    dependencies.Add(std::move(o));
  }
  svc.deps = &dependencies;
  auto* shipper_ptr = shipper.get();
  svc.readiness = [&svc, shipper_ptr]() {
    boost::json::object o{
        {"sessions", boost::json::object{{"revocations_loaded", svc.revocations_loaded.load()}}}};
    if (shipper_ptr) {
      auto ss = shipper_ptr->stats();
      o["audit_shipping"] = boost::json::object{{"backlog", ss.backlog},
                                                {"database_reachable", ss.database_reachable}};
    }
    if (ehr::Configured()) o["ehr_sync"] = ehr::ReadinessJson();
    return boost::json::serialize(o);
  };

  int n = std::max(1, cfg.threads);
  // Shards (and their pools) outlive the io_contexts: suspended coroutines destroyed
  // with an io_context may still return leases to a pool.
  std::vector<std::unique_ptr<Shard>> shards;
  std::unique_ptr<Shard> background;  // the background loops' own shard (below)
  std::vector<std::unique_ptr<asio::io_context>> iocs;
  auto router = BuildRoutes();
  // The web app (src/http/static_site.hpp): read once, now; a configured root that cannot
  // be served stops the start, a missing default only warns.
  std::optional<http::StaticSite> web;
  if (cfg.web_enabled) {
    std::string root = cfg.web_root.empty() ? http::DefaultWebRoot() : cfg.web_root;
    if (root.empty()) {
      log::Warn(
          "no web app: [web] root is not set and no web/dist with an index.html was found "
          "beside the binary (build it: cd web && npm ci && npm run build)");
    } else {
      http::StaticSiteOptions wo;
      wo.root = root;
      wo.spa_exclude = ApiPrefixes();
      web = http::StaticSite::Load(std::move(wo));
      svc.web = &*web;
      log::Info("web app: {} files, {} bytes from {}", web->file_count(), web->total_bytes(),
                web->root());
    }
  }
  std::vector<http::RequestHandler> handlers;
  std::vector<asio::io_context*> ioc_ptrs;
  for (int i = 0; i < n; ++i) {
    iocs.push_back(std::make_unique<asio::io_context>(1));
    auto s = std::make_unique<Shard>();
    s->index = i;
    s->executor = iocs.back()->get_executor();
    for (Tier t : kAllTiers) {
      const auto& l = cfg.limits(t);
      db::PoolOptions po{std::string(TierName(t)), cfg.database_url,
                         std::max(1, (l.pool_size + n - 1) / n), std::max(1, l.queue_limit / n)};
      po.require_sync_standby = cfg.RequireSyncStandby();
      po.group_limit = cfg.read_group_limit;
      s->pools[static_cast<int>(t)] = std::make_unique<db::Pool>(s->executor, po);
    }
    {
      db::PoolOptions po{"login", cfg.database_url, std::max(1, (cfg.login_pool_size + n - 1) / n),
                         std::max(1, (cfg.login_max_in_flight + n - 1) / n)};
      s->login_pool = std::make_unique<db::Pool>(s->executor, po);
    }
    if (topology) {
      for (const auto& r : topology->options().regions) {
        TierPools tp;
        for (Tier t : kAllTiers) {
          const auto& l = cfg.limits(t);
          db::PoolOptions po{std::string(TierName(t)) + "@" + r.name, r.url,
                             std::max(1, (l.pool_size + n - 1) / n),
                             std::max(1, l.queue_limit / n)};
          po.group_limit = cfg.read_group_limit;
          tp[static_cast<int>(t)] = std::make_unique<db::Pool>(s->executor, po);
        }
        s->read_pools.push_back(std::move(tp));
      }
    }
    s->critical_first = std::make_unique<resilience::CriticalFirst>(
        s->executor, resilience::CriticalFirstOptions{
                         cfg.critical_first_in_flight == 0
                             ? 0
                             : std::max(1, (cfg.critical_first_in_flight + n - 1) / n),
                         std::max(1, (cfg.critical_first_threshold + n - 1) / n),
                         std::chrono::microseconds(cfg.critical_first_lag_us)});
    Shard* sp = s.get();
    handlers.push_back(
        [sp, &svc, &router](http::Request& req) { return Dispatch(*sp, svc, router, req); });
    ioc_ptrs.push_back(iocs.back().get());
    shards.push_back(std::move(s));
  }
  RegisterCollectors(shards, journal, shipper.get(), sessions, svc);
  std::vector<Shard*> shard_ptrs;
  for (auto& s : shards) shard_ptrs.push_back(s.get());
  chaos::PoolHolds pool_holds(std::move(shard_ptrs));
  if (cfg.chaos_hooks) {
    svc.pool_holds = &pool_holds;
    log::Warn(
        "[ops] chaos_hooks is on: an operator with the ops token can hold a tier's pools "
        "(POST /api/v1/ops/chaos/pool-hold)");
    Metrics::Get().AddCollector([&pool_holds](std::string& out) { pool_holds.RenderMetrics(out); });
  }
  Metrics::Get().AddCollector([&dependencies](std::string& out) {
    std::string breakers = "# TYPE continuum_dependency_breaker_state gauge\n";
    out += "# TYPE continuum_dependency_health gauge\n";
    out += "# TYPE continuum_dependency_calls_total counter\n";
    for (auto* d : dependencies.All()) {
      auto h = d->health();
      for (const char* st : {"healthy", "degraded", "down"})
        out += fmt::format("continuum_dependency_health{{dependency=\"{}\",state=\"{}\"}} {}\n",
                           d->name(), st, std::string_view(h.state) == st ? 1 : 0);
      for (const char* st : {"closed", "open", "half-open"})
        breakers +=
            fmt::format("continuum_dependency_breaker_state{{dependency=\"{}\",state=\"{}\"}} {}\n",
                        d->name(), st, std::string_view(h.breaker) == st ? 1 : 0);
      auto bs = d->breaker().stats();
      for (auto [ev, n] : {std::pair{"success", bs.successes}, std::pair{"failure", bs.failures},
                           std::pair{"refused", bs.refused}, std::pair{"opened", bs.opened}})
        out +=
            fmt::format("continuum_dependency_calls_total{{dependency=\"{}\",event=\"{}\"}} {}\n",
                        d->name(), ev, n);
    }
    out += breakers;
  });
  Metrics::Get().AddCollector([&login_cpu, &login_failures](std::string& out) {
    out += "# TYPE continuum_login_hash_jobs gauge\n";
    out += fmt::format("continuum_login_hash_jobs {}\n", login_cpu.jobs());
    out += "# TYPE continuum_login_hash_refused_total counter\n";
    out += fmt::format("continuum_login_hash_refused_total {}\n", login_cpu.refused());
    out += "# TYPE continuum_login_failure_keys gauge\n";
    out += fmt::format("continuum_login_failure_keys {}\n", login_failures.size());
  });
  Metrics::Get().AddCollector([&content_cache](std::string& out) {
    auto cs = content_cache.stats();
    out += "# TYPE continuum_content_cache_events_total counter\n";
    out += fmt::format("continuum_content_cache_events_total{{event=\"hit\"}} {}\n", cs.hits);
    out +=
        fmt::format("continuum_content_cache_events_total{{event=\"stale\"}} {}\n", cs.stale_hits);
    out += fmt::format("continuum_content_cache_events_total{{event=\"miss\"}} {}\n", cs.misses);
    out += fmt::format("continuum_content_cache_events_total{{event=\"refresh_failure\"}} {}\n",
                       cs.refresh_failures);
    out += "# TYPE continuum_content_cache_entries gauge\n";
    out += fmt::format("continuum_content_cache_entries {}\n", cs.entries);
  });
  if (topology) {
    Metrics::Get().AddCollector([topo = topology.get()](std::string& out) {
      out += "# TYPE continuum_db_member_up gauge\n";
      out += "# TYPE continuum_db_member_lag_ms gauge\n";
      for (const auto& m : topo->Snapshot()) {
        const char* role = m.role == db::Topology::Role::kPrimary   ? "primary"
                           : m.role == db::Topology::Role::kStandby ? "standby"
                                                                    : "unknown";
        out += fmt::format("continuum_db_member_up{{region=\"{}\",role=\"{}\"}} {}\n", m.name, role,
                           m.reachable ? 1 : 0);
        out += fmt::format("continuum_db_member_lag_ms{{region=\"{}\"}} {}\n", m.name, m.lag_ms);
      }
    });
  }

  http::ServerOptions so{cfg.listen_address,    cfg.listen_port,     cfg.body_limit_bytes,
                         cfg.header_timeout_ms, cfg.idle_timeout_ms, cfg.shutdown_grace_ms,
                         cfg.trusted_proxies};
  http::Server server(so, ioc_ptrs, std::move(handlers));
  server.Listen();
  log::Info("continuum serve listening on {}:{} ({} shards, region {}, audit {}, ops API {})",
            cfg.listen_address, server.port(), n, cfg.region, cfg.audit_enabled ? "on" : "off",
            svc.ops_token.empty() ? "off (no [ops] token_file)" : "on");

  auto stop_all = [&iocs]() {
    for (auto& io : iocs) io->stop();
  };
  // SIGTERM: drain ([server] drain_ms: readiness 503, answers close their connections,
  // requests are still served), then stop accepting and give the requests in flight
  // shutdown_grace_ms. A second signal during the drain ends it at once.
  asio::signal_set signals(*iocs[0], SIGTERM, SIGINT);
  asio::steady_timer drain(*iocs[0]);
  asio::steady_timer grace(*iocs[0]);
  auto shut_down = [&]() {
    if (state.stopping.exchange(true)) return;
    log::Info("graceful shutdown: no new connections (grace {} ms)", cfg.shutdown_grace_ms);
    server.Stop();
    grace.expires_after(std::chrono::milliseconds(cfg.shutdown_grace_ms));
    grace.async_wait([&](boost::system::error_code gec) {
      if (!gec) {
        log::Warn("grace period over; closing remaining connections");
        stop_all();
      }
    });
  };
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec,
                                                                      int sig) {
    if (ec) return;
    if (cfg.drain_ms <= 0 || svc.draining.load()) {
      log::Info("signal {}", sig);
      drain.cancel();
      shut_down();
      return;
    }
    log::Info(
        "signal {}: draining for {} ms (readiness 503, connections closed after "
        "each answer)",
        sig, cfg.drain_ms);
    svc.draining.store(true);
    server.CloseAfterEachResponse();
    drain.expires_after(std::chrono::milliseconds(cfg.drain_ms));
    drain.async_wait([&](boost::system::error_code dec) {
      if (!dec) shut_down();
    });
    signals.async_wait(on_signal);  // a second signal ends the drain
  };
  signals.async_wait(on_signal);
  // Background loops (revocation sync, jobs, notifications, EHR sync, dependency and
  // database probes) run on a shard of their own: their own io_context on their own
  // thread, with their own small pools (one connection per tier), so none of their work
  // (JSON parsing of EHR pages, a slow probe, a pool wait) is ever queued behind or in
  // front of a request on an I/O thread, and they never take a request shard's
  // connections. stop_all stops it with the others.
  iocs.push_back(std::make_unique<asio::io_context>(1));
  asio::io_context& bg_ioc = *iocs.back();
  background = std::make_unique<Shard>();
  background->index = n;
  background->executor = bg_ioc.get_executor();
  for (Tier t : kAllTiers) {
    db::PoolOptions po{std::string(TierName(t)), cfg.database_url, 1,
                       std::max(1, cfg.limits(t).queue_limit / n)};
    background->pools[static_cast<int>(t)] = std::make_unique<db::Pool>(background->executor, po);
  }
  if (topology) {
    for (const auto& r : topology->options().regions) {
      TierPools tp;
      for (Tier t : kAllTiers) {
        db::PoolOptions po{std::string(TierName(t)) + "@" + r.name, r.url, 1,
                           std::max(1, cfg.limits(t).queue_limit / n)};
        tp[static_cast<int>(t)] = std::make_unique<db::Pool>(background->executor, po);
      }
      background->read_pools.push_back(std::move(tp));
    }
  }
  Shard& bg = *background;
  // Once the last connection closed: deregister (at most 1.5 s), then stop every shard.
  server.OnDrained([&]() {
    log::Info("all connections drained");
    asio::co_spawn(
        bg_ioc,
        [&]() -> asio::awaitable<void> {
          co_await NodeDeregister(bg, instance_id);
          asio::post(*iocs[0], stop_all);
        },
        asio::detached);
  });
  asio::co_spawn(bg_ioc, SessionSync(bg, svc, state), asio::detached);
  asio::co_spawn(bg_ioc, NodeRegistry(bg, svc, state, instance_id), asio::detached);
  asio::co_spawn(bg_ioc, medium::JobWorker(bg, svc, state.stopping), asio::detached);
  asio::co_spawn(bg_ioc, high::NotificationWorker(bg, svc, state.stopping), asio::detached);
  for (auto* d : dependencies.All())
    asio::co_spawn(bg_ioc, d->ActiveChecks(state.stopping), asio::detached);
  if (dependencies.Find("ehr"))
    asio::co_spawn(bg_ioc, ehr::SyncLoop(bg, svc, state.stopping), asio::detached);
  if (topology)
    for (int i = 0; i < static_cast<int>(topology->size()); ++i)
      asio::co_spawn(bg_ioc, topology->Probe(i, state.stopping), asio::detached);

  std::vector<std::thread> threads;
  threads.emplace_back([&bg_ioc] {
    pthread_setname_np(pthread_self(), "continuum-bg");
    bg_ioc.run();
  });
  for (int i = 1; i < n; ++i)
    threads.emplace_back([&iocs, i] {
      pthread_setname_np(pthread_self(), "continuum-io");  // shard 0 is the main thread
      iocs[i]->run();
    });
  iocs[0]->run();
  for (auto& t : threads) t.join();
  shards.push_back(std::move(background));  // closed with the others
  for (auto& s : shards) {
    // Before the io_contexts go: their timers belong to them.
    if (s->critical_first) s->critical_first->Close();
    for (auto& p : s->pools) p->Close();
    if (s->login_pool) s->login_pool->Close();  // the background shard has none
    for (auto& rp : s->read_pools)
      for (auto& p : rp) p->Close();
  }
  cpu_pool.join();
  login_cpu.Stop();
  journal.Stop();
  if (shipper) {
    try {
      shipper->Stop();
      shipper->ShipOnce();
    } catch (const std::exception& e) {
      log::Warn("final audit shipping deferred: {}", e.what());
    }
  }
  log::Info("continuum serve stopped");
  return 0;
}

}  // namespace continuum::portal
