#include "portal/context.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdlib>

#include "audit/journal.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "db/errors.hpp"
#include "portal/access.hpp"

namespace continuum::portal {
namespace asio = boost::asio;

// ---------------------------------------------------------------- WriteTracker

void WriteTracker::Note(const std::string& session, uint64_t lsn) {
  if (session.empty() || lsn == 0) return;
  std::lock_guard lock(mu_);
  auto now = Clock::now();
  auto& e = map_[session];
  e.lsn = std::max(e.lsn, lsn);
  e.at = now;
  if (now - last_sweep_ > keep_) {
    std::erase_if(map_, [&](const auto& kv) { return now - kv.second.at > keep_; });
    last_sweep_ = now;
  }
}

uint64_t WriteTracker::MinLsn(const std::string& session) const {
  if (session.empty()) return 0;
  std::lock_guard lock(mu_);
  auto it = map_.find(session);
  if (it == map_.end() || Clock::now() - it->second.at > keep_) return 0;
  return it->second.lsn;
}

std::size_t WriteTracker::size() const {
  std::lock_guard lock(mu_);
  return map_.size();
}

// ---------------------------------------------------------------- reads and writes

namespace {
std::string SessionKey(const RequestContext& ctx) { return ctx.claims ? ctx.claims->sid : ""; }

// How often a read that waits for a standby to replay its caller's last write, or for a
// primary, looks at the topology again (the probes themselves run every probe interval).
constexpr std::chrono::milliseconds kReplayPoll{20};
// What a read that waited for a primary in vain keeps of its deadline for the write pool.
constexpr std::chrono::milliseconds kWritePoolReserve{1000};
}  // namespace

asio::awaitable<db::Result> RequestContext::Read(const db::Query& q, db::Params params) {
  std::vector<db::Statement> s;
  s.push_back(db::Statement{&q, std::move(params)});
  auto r = co_await ReadBatch(std::move(s));
  co_return std::move(r[0]);
}

asio::awaitable<std::vector<db::Result>> RequestContext::ReadBatch(
    std::vector<db::Statement> stmts) {
  if (care_check_pending) co_return co_await ReadWithCareCheck(*this, std::move(stmts));
  co_return co_await ReadNearest(std::move(stmts));
}

asio::awaitable<std::vector<db::Result>> RequestContext::ReadNearest(
    std::vector<db::Statement> stmts) {
  db::Topology* topo = svc.topology;
  if (!topo || own_pool) co_return co_await pool().Batch(std::move(stmts), deadline);
  uint64_t min_lsn = commit_lsn;
  if (svc.writes) min_lsn = std::max(min_lsn, svc.writes->MinLsn(SessionKey(*this)));
  if (auto h = req.header("x-continuum-min-lsn"); !h.empty())
    min_lsn = std::max<uint64_t>(min_lsn, std::strtoull(std::string(h).c_str(), nullptr, 10));
  asio::steady_timer backoff(shard.executor);
  for (int attempt = 0;;) {
    int target = topo->ChooseRead(min_lsn);
    if (target == db::Topology::kPrimary) {
      // No primary in sight. Only a primary serves the write pool, so the read waits here
      // for the topology's next probes and goes to whatever serves it first:
      //   - a standby serves reads that need no particular commit but has not replayed
      //     this caller's last write yet, as far as its last probe says (an asynchronous
      //     standby, or a probe not due yet): it waits for that replay or a primary, to
      //     the end of its deadline;
      //   - the primary is gone (Topology::PrimaryGone: its probes ran out of time twice
      //     in a row, or failed sooner, or it answers as a standby; a failover, or a
      //     partition once the lag bound is past; writes are refused as read-only
      //     meanwhile): the probes see a promoted standby within a probe interval, where
      //     libpq over the write URL finds it only at its next connect. The read keeps
      //     kWritePoolReserve of its deadline for the write pool, in case the probes lag.
      // A primary only missed (one probe, or a read's lost connection) is tried through
      // the write pool, which finds out for itself.
      // Neither wait counts as an attempt (the backoff below is for lost read servers).
      if (!topo->PrimaryKnown()) {
        const bool replay = min_lsn > 0 && topo->ChooseRead(0) != db::Topology::kPrimary;
        if ((replay && deadline.left() > kReplayPoll) ||
            (!replay && topo->PrimaryGone() && deadline.left() > kWritePoolReserve)) {
          backoff.expires_after(kReplayPoll);
          co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
          continue;
        }
      }
      // The write pool finds and follows the primary.
      co_return co_await pool().Batch(stmts, deadline);
    }
    db::BatchOptions once;
    once.replay = db::BatchOptions::Replay::kNever;
    try {
      co_return co_await shard.read_pools[target][static_cast<int>(tier)]->Batch(stmts, deadline,
                                                                                 once);
    } catch (const db::ConnectionError&) {
      // That server is gone (or going): avoid it until its probe says otherwise, and
      // read from the next one.
      topo->MarkDown(target);
      if (deadline.left() < std::chrono::milliseconds(50)) throw;
    }
    backoff.expires_after(std::chrono::milliseconds(std::min(10 << std::min(attempt, 4), 200)));
    ++attempt;
    co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<db::Result> RequestContext::Write(const db::Query& q, db::Params params,
                                                  bool idempotent) {
  std::vector<db::Statement> s;
  s.push_back(db::Statement{&q, std::move(params)});
  auto r = co_await WriteBatch(std::move(s), idempotent);
  co_return std::move(r[0]);
}

std::chrono::steady_clock::time_point RequestContext::AuditDeadline() const {
  return std::max(deadline.at(), std::chrono::steady_clock::now() + std::chrono::milliseconds(200));
}

namespace {
// The write attempt's records, durable before the write is sent (see context.hpp).
asio::awaitable<void> JournalAttempt(RequestContext& ctx) {
  if (ctx.attempt_journaled || ctx.audit.empty() || !ctx.svc.journal) co_return;
  std::vector<audit::Record> recs;
  for (const auto& r : ctx.audit) {
    audit::Record a = r;
    a.outcome = "attempt";
    a.detail = "write attempted; its outcome follows under the same request id";
    recs.push_back(std::move(a));
  }
  try {
    co_await ctx.svc.journal->Append(ctx.shard.executor, std::move(recs), ctx.AuditDeadline());
  } catch (const std::exception& e) {
    log::Error("audit journal: write attempt not recorded, write refused: {}", e.what());
    throw Unavailable(
        "The audit trail cannot be written right now, so the change was not made. Please "
        "retry in a moment.");
  }
  ctx.attempt_journaled = true;
}
}  // namespace

asio::awaitable<std::vector<db::Result>> RequestContext::WriteBatch(
    std::vector<db::Statement> stmts, bool idempotent) {
  // Nothing is written for a caller whose access to the patient is still unchecked.
  if (care_check_pending) co_await SettleDeferredCheck(*this);
  co_await JournalAttempt(*this);
  db::BatchOptions o;
  o.replay = idempotent ? db::BatchOptions::Replay::kIdempotent : db::BatchOptions::Replay::kAuto;
  uint64_t lsn = 0;
  if (svc.topology) o.commit_lsn = &lsn;
  auto r = co_await pool().Batch(std::move(stmts), deadline, o);
  if (lsn) {
    commit_lsn = std::max(commit_lsn, lsn);
    if (svc.writes) svc.writes->Note(SessionKey(*this), commit_lsn);
  }
  co_return r;
}

audit::Record& RequestContext::Audit(std::string action, std::string resource_type,
                                     std::string resource_id, std::string patient_id) {
  if (policy_record_open && !audit.empty()) {
    // The route's policy opened this request's record; the handler names it precisely.
    policy_record_open = false;
    auto& r = audit.front();
    r.action = std::move(action);
    r.resource_type = std::move(resource_type);
    r.resource_id = std::move(resource_id);
    if (!patient_id.empty()) r.patient_id = std::move(patient_id);
    return r;
  }
  audit::Record r;
  r.request_id = req.request_id;
  r.client_address = req.client_address;
  r.action = std::move(action);
  r.resource_type = std::move(resource_type);
  r.resource_id = std::move(resource_id);
  r.patient_id = std::move(patient_id);
  r.outcome = "error";
  if (claims) {
    r.actor = claims->username;
    r.role = claims->role;
  }
  audit.push_back(std::move(r));
  return audit.back();
}

void RequestContext::AuditOutcome(const std::string& outcome, const std::string& detail) {
  for (auto& r : audit) {
    r.outcome = outcome;
    if (!detail.empty() && r.detail.empty()) r.detail = detail;
  }
}

// The configured public base ([server] public_base_url), never the request's Host or
// X-Forwarded-Proto: those are chosen by the client, and links built on them would send
// the next request (with its token) wherever the client or a poisoned cache said.
std::string RequestContext::BaseUrl() const { return svc.config.PublicBaseUrl() + "/fhir/R4"; }

}  // namespace continuum::portal
