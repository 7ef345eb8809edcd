// Chaos experiments' hooks inside a portal node ([ops] chaos_hooks = true; routes behind
// the ops token). One so far: "exhaust a tier's pool", which cannot be done from outside
// the process (PostgreSQL's max_connections can, and is: ops/continuum_ops/faults.py).
//
// POST /api/v1/ops/chaos/pool-hold {"tier","seconds"}: on every shard, take every
// connection of that tier's pools (the primary's and, with a topology, each region's read
// pool) and keep them for `seconds` (1..600), then give them back. Requests of that tier
// then wait for a connection until their deadline and fail or fall back the way the tier
// is designed to (the point of the experiment); the other tiers' pools are untouched (the
// bulkheads). Answers once the connections are taken (at most ~3 s: a connection that
// cannot be had in 2 s, a busy or unreachable database, is counted as not held):
//   {"tier","seconds","until","held","wanted","pools"}
// A second hold of the same tier replaces the first (its connections go back, new ones are
// taken for the new time). DELETE /api/v1/ops/chaos/pool-hold[?tier=] gives every held
// connection back at once (a chaos run's revert; a no-op when nothing is held). A hold
// ends by itself at its time, so a controller that died never leaves a pool held for long.
//
// Both are logged (event chaos_pool_hold / chaos_pool_release) and the held connections
// exported: continuum_chaos_pool_held_connections{tier}.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "http/message.hpp"
#include "portal/context.hpp"

namespace continuum::portal::chaos {

class PoolHolds {
 public:
  explicit PoolHolds(std::vector<Shard*> shards) : shards_(std::move(shards)) {}
  const std::vector<Shard*>& shards() const { return shards_; }
  // Per tier (Tier's value): the current hold's generation (a new hold or a release bumps
  // it; a holder whose generation is no longer current gives its connections back) and
  // the connections held now.
  std::array<std::atomic<uint64_t>, 5> generation{};
  std::array<std::atomic<int64_t>, 5> held{};

  void RenderMetrics(std::string& out) const;

 private:
  std::vector<Shard*> shards_;
};

boost::asio::awaitable<http::Response> HoldPool(RequestContext& ctx);
boost::asio::awaitable<http::Response> ReleasePool(RequestContext& ctx);

}  // namespace continuum::portal::chaos
