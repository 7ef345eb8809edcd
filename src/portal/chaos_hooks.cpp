#include "portal/chaos_hooks.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <ctime>
#include <memory>

#include "core/error.hpp"
#include "core/log.hpp"
#include "db/pool.hpp"
#include "fhir/fhir.hpp"
#include "portal/bodies.hpp"
#include "portal/ops_api.hpp"
#include "portal/ops_payloads.hpp"

namespace continuum::portal::chaos {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

constexpr auto kAcquireWait = 2s;  // per connection: busy or unreachable counts as not held
constexpr auto kPoll = 100ms;      // how often a holder looks at its time and generation

// What the holders of one request report back to it (shared: the request may have
// answered already when a slow holder finishes).
struct Progress {
  std::atomic<int> pending{0};
  std::atomic<int64_t> held{0};
  std::atomic<int64_t> wanted{0};
  std::atomic<int> pools{0};
};

Tier TierOf(const std::string& name) {
  for (Tier t : kAllTiers)
    if (TierName(t) == name && t != Tier::kOps) return t;
  throw BadRequest("tier must be critical, high, medium or low.");
}

PoolHolds& Holds(RequestContext& ctx) {
  if (!ctx.svc.config.chaos_hooks || !ctx.svc.pool_holds)
    throw Forbidden(
        "The chaos hooks are off on this node: [ops] chaos_hooks = true turns them on (for a "
        "cluster that practises chaos days).");
  return *ctx.svc.pool_holds;
}

// On shard s: takes every connection of tier t's pools, keeps them until `until` or until
// the tier's generation moves on, then gives them back.
asio::awaitable<void> Hold(Shard& s, Tier t, std::chrono::steady_clock::time_point until,
                           uint64_t gen, PoolHolds& holds, std::shared_ptr<Progress> progress) {
  const int ti = static_cast<int>(t);
  std::vector<db::Pool*> pools{&s.pool(t)};
  for (auto& rp : s.read_pools) pools.push_back(rp[ti].get());
  std::vector<db::Lease> leases;
  for (db::Pool* p : pools) {
    progress->wanted += p->options().size;
    progress->pools += 1;
    for (int i = 0; i < p->options().size; ++i) {
      if (holds.generation[ti].load() != gen) break;
      try {
        leases.push_back(co_await p->Acquire(Deadline::After(kAcquireWait)));
      } catch (const std::exception&) {
        break;  // this pool's database is busy or unreachable: the rest of it is not held
      }
    }
  }
  holds.held[ti] += static_cast<int64_t>(leases.size());
  progress->held += static_cast<int64_t>(leases.size());
  progress->pending -= 1;
  asio::steady_timer timer(s.executor);
  while (std::chrono::steady_clock::now() < until && holds.generation[ti].load() == gen) {
    timer.expires_after(kPoll);
    co_await timer.async_wait(asio::use_awaitable);
  }
  holds.held[ti] -= static_cast<int64_t>(leases.size());
  leases.clear();
}

std::string Rfc3339(std::chrono::system_clock::time_point tp) {
  std::time_t t = std::chrono::system_clock::to_time_t(tp);
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(t));
}

}  // namespace

void PoolHolds::RenderMetrics(std::string& out) const {
  out +=
      "# HELP continuum_chaos_pool_held_connections Connections a chaos experiment holds "
      "(POST /api/v1/ops/chaos/pool-hold).\n";
  out += "# TYPE continuum_chaos_pool_held_connections gauge\n";
  for (Tier t : kAllTiers) {
    if (t == Tier::kOps) continue;
    out += fmt::format("continuum_chaos_pool_held_connections{{tier=\"{}\"}} {}\n", TierName(t),
                       held[static_cast<int>(t)].load());
  }
}

asio::awaitable<http::Response> HoldPool(RequestContext& ctx) {
  PoolHolds& holds = Holds(ctx);
  ops::PoolHoldRequest body;
  try {
    body = ParsePoolHoldBody(ctx.req);
  } catch (const Error& e) {
    ops::NoteRefusedBody(ctx, e);
    throw;
  }
  Tier t = TierOf(body.tier);
  const int ti = static_cast<int>(t);
  uint64_t gen = ++holds.generation[ti];
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(body.seconds);
  auto progress = std::make_shared<Progress>();
  progress->pending = static_cast<int>(holds.shards().size());
  for (Shard* s : holds.shards())
    asio::co_spawn(s->executor, Hold(*s, t, until, gen, holds, progress), asio::detached);
  // Wait for every shard's holder to have taken what it could (bounded: each connection
  // waits at most kAcquireWait; a shard's pools are tried one after the other).
  asio::steady_timer timer(co_await asio::this_coro::executor);
  auto give_up = std::chrono::steady_clock::now() + 15s;
  while (progress->pending.load() > 0 && std::chrono::steady_clock::now() < give_up) {
    timer.expires_after(20ms);
    co_await timer.async_wait(asio::use_awaitable);
  }
  std::string ends = Rfc3339(std::chrono::system_clock::now() + std::chrono::seconds(body.seconds));
  log::Event(spdlog::level::warn,
             fmt::format(R"("event":"chaos_pool_hold","tier":"{}","seconds":{},"held":{},)"
                         R"("wanted":{},"until":"{}","request_id":"{}")",
                         body.tier, body.seconds, progress->held.load(), progress->wanted.load(),
                         ends, log::JsonEscape(ctx.req.request_id)));
  co_return ops::JsonResponse(200, json::object{{"tier", body.tier},
                                                {"seconds", body.seconds},
                                                {"until", ends},
                                                {"held", progress->held.load()},
                                                {"wanted", progress->wanted.load()},
                                                {"pools", progress->pools.load()},
                                                {"complete", progress->pending.load() == 0}});
}

asio::awaitable<http::Response> ReleasePool(RequestContext& ctx) {
  PoolHolds& holds = Holds(ctx);
  fhir::CheckParams(ctx.req, {"tier"});
  std::vector<Tier> tiers;
  if (auto name = ctx.req.param("tier"))
    tiers.push_back(TierOf(std::string(*name)));
  else
    tiers = {Tier::kCritical, Tier::kHigh, Tier::kMedium, Tier::kLow};
  json::object before;
  for (Tier t : tiers) {
    before[TierName(t)] = holds.held[static_cast<int>(t)].load();
    ++holds.generation[static_cast<int>(t)];
  }
  log::Event(spdlog::level::warn,
             fmt::format(R"("event":"chaos_pool_release","held_before":{},"request_id":"{}")",
                         json::serialize(before), log::JsonEscape(ctx.req.request_id)));
  // The holders notice within kPoll; the answer says what was held when it was asked.
  co_return ops::JsonResponse(200,
                              json::object{{"released", true}, {"held_before", std::move(before)}});
}

}  // namespace continuum::portal::chaos
