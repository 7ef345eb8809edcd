#include "portal/ops.hpp"

#include <sys/statvfs.h>

#include <boost/json.hpp>

#include "audit/journal.hpp"
#include "core/metrics.hpp"
#include "core/release.hpp"
#include "deps/dependency.hpp"
#include "fhir/fhir.hpp"
#include "portal/node.hpp"
#include "portal/ops_api.hpp"

namespace continuum::portal {
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// What keeps working while a dependency is down (README "Degraded modes").
const char* DependencyFallback(const std::string& name) {
  if (name == "ehr")
    return "records are served from the last EHR sync, marked stale (X-Continuum-Data-As-Of)";
  if (name == "pharmacy")
    return "last known fill status, marked stale; refill requests are queued (202)";
  if (name == "insurance")
    return "verifications are queued (202 + job URL) and run when it returns";
  if (name == "payments")
    return "payments are queued (202 + job URL) and charged once when it returns";
  if (name == "smtp") return "notifications go out by SMS";
  if (name == "sms")
    return "SMS notifications are queued and retried with backoff; email still goes out";
  return "see /readyz";
}
const db::Query kPing{"ping", "SELECT 1", db::Access::kRead};
// A journal batch waiting this long for the disk means the disk is stalled.
constexpr int64_t kJournalStallMs = 2000;
}  // namespace

asio::awaitable<http::Response> Healthz(RequestContext& ctx) {
  http::Response r;
  r.content_type = "application/json";
  r.body = R"({"status":"ok"})";
  co_return r;
}

namespace {
const char* RoleName(db::Topology::Role r) {
  switch (r) {
    case db::Topology::Role::kPrimary:
      return "primary";
    case db::Topology::Role::kStandby:
      return "standby";
    default:
      return "unknown";
  }
}
}  // namespace

const char* TierMode(Tier t, bool reads_ok, bool writes_ok, bool medium_service_down) {
  // Each tier's mode follows its fallback (ARCHITECTURE §3): critical writes wait for a
  // primary, high-tier writes are refused (read-only), medium-tier work is queued, and
  // low-tier content is served from cache.
  if (reads_ok && writes_ok) return t == Tier::kMedium && medium_service_down ? "queued" : "normal";
  switch (t) {
    case Tier::kCritical:
      return reads_ok ? "writes-waiting" : "unavailable";
    case Tier::kHigh:
      return reads_ok ? "read-only" : "unavailable";
    case Tier::kMedium:
      return "queued";
    case Tier::kLow:
      return "stale";
    default:
      return "normal";  // ops: nothing to fall back to, nothing degraded
  }
}

std::vector<const char*> DegradedModes(Tier t) {
  switch (t) {
    case Tier::kCritical:
      return {"writes-waiting", "unavailable"};
    case Tier::kHigh:
      return {"read-only", "unavailable"};
    case Tier::kMedium:
      return {"queued"};
    case Tier::kLow:
      return {"stale"};
    default:
      return {};
  }
}

bool MediumServiceDown(deps::Registry* deps) {
  if (!deps) return false;
  for (auto* d : deps->All())
    if ((d->name() == "payments" || d->name() == "insurance" || d->name() == "pharmacy") &&
        std::string_view(d->health().state) != "healthy")
      return true;
  return false;
}

std::array<const char*, 5> TierModesNow(Services& svc) {
  bool reads_ok = true, writes_ok = true;
  if (const db::Topology* topo = svc.topology) {
    writes_ok = !topo->PrimaryGone();
    reads_ok = topo->ChooseRead(0) != db::Topology::kPrimary || writes_ok;
  } else {
    reads_ok = writes_ok = !svc.primary_unreachable.load();
  }
  bool medium_down = MediumServiceDown(svc.deps);
  std::array<const char*, 5> modes{};
  for (Tier t : kAllTiers)
    modes[static_cast<int>(t)] = TierMode(t, reads_ok, writes_ok, medium_down);
  return modes;
}

namespace {

// /readyz's body and status. Ready when this node can serve the critical tier: its own
// region's database answers (with a topology: as primary or standby, from the probe
// loop; without: a ping), its audit journal is healthy now (not only once: see
// JournalStats) and the session revocation list has been loaded. HAProxy takes a node
// out of rotation on a 503 here, so a region whose database is lost sends its traffic
// to the next region. So does a region cut off from the others (a partition): its own
// standby answers, but no other region's database does, and with no primary in sight its
// reads are past the lag bound and its writes have nowhere to go. (When the primary's
// region is lost but another region still answers, the nodes stay ready and wait for the
// promotion: every node turning away at once would leave the edge with no server. When
// every other region is gone or cut off and no primary is left, that is what happens: the
// edge answers 503 at once, where the nodes would have answered it after the deadline.)
asio::awaitable<std::pair<json::object, int>> ReadyState(RequestContext& ctx) {
  bool db_ok = true;      // this node's own database answers
  bool reads_ok = true;   // some database can serve its reads
  bool writes_ok = true;  // the primary is not gone (db::Topology::PrimaryGone)
  bool cut_off = false;   // no other region's database answers, and this one cannot serve
  json::object database;
  if (db::Topology* topo = ctx.svc.topology) {
    db_ok = topo->LocalServing();
    writes_ok = !topo->PrimaryGone();
    reads_ok = topo->ChooseRead(0) != db::Topology::kPrimary || writes_ok;
    cut_off = topo->options().regions.size() > 1 && !topo->PeerReachable() && !reads_ok;
    json::array members;
    for (const auto& m : topo->Snapshot())
      members.push_back(json::object{{"region", m.name},
                                     {"local", m.local},
                                     {"reachable", m.reachable},
                                     {"role", RoleName(m.role)},
                                     {"lag_ms", m.lag_ms},
                                     {"wal_position", m.replay_lsn},
                                     {"failed_probes", m.failed_probes},
                                     {"error", m.error}});
    database = json::object{
        {"reachable", db_ok},           {"primary_known", topo->PrimaryKnown()},  // answers now
        {"primary_gone", !writes_ok},  // writes refused as read-only
        {"cut_off", cut_off},           {"max_replica_lag_ms", topo->options().max_replica_lag_ms},
        {"members", std::move(members)}};
  } else {
    std::string db_error;
    try {
      co_await ctx.pool().Exec(kPing, db::P(), Deadline::After(std::chrono::milliseconds(800)));
    } catch (const std::exception& e) {
      db_ok = reads_ok = writes_ok = false;
      db_error = e.what();
    }
    database = json::object{{"reachable", db_ok}, {"error", db_error}};
  }
  // The journal's health now: its last write (or health probe) succeeded and no batch
  // has been waiting for the disk longer than kJournalStallMs (a frozen or hung disk).
  auto js = ctx.svc.journal->stats();
  bool audit_stalled = js.writing_for_ms > kJournalStallMs;
  bool audit_ok = js.healthy && !audit_stalled;
  // The journal's disk reserve: under audit.min_free_mb free the node turns not-ready
  // while its appends still succeed, so that the edge drains it before the disk is full
  // (a full journal fails every PHI response). It keeps serving what reaches it.
  int64_t audit_free = -1;
  bool audit_low = false;
  if (ctx.svc.config.audit_enabled) {
    struct statvfs fs {};
    if (statvfs(ctx.svc.config.audit_dir.c_str(), &fs) == 0) {
      audit_free = static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
      audit_low = audit_free < static_cast<int64_t>(ctx.svc.config.audit_min_free_mb) << 20;
    }
  }
  // Until the revocation list is loaded, a logged-out token would be accepted here.
  bool sessions_ok = ctx.svc.revocations_loaded.load();
  // [fault_injection] never_ready: a release that never becomes ready (rollout tests).
  bool draining = ctx.svc.draining.load();
  int64_t newer_contract = ctx.svc.newer_contract.load();
  bool ready = db_ok && !cut_off && audit_ok && !audit_low && sessions_ok && !draining &&
               newer_contract == 0 && !ctx.svc.config.fault_never_ready;
  // External services: each one's health, breaker and last error, and the fallback that
  // serves patients while it is not healthy (the same words as the alert rules').
  json::object dependencies;
  if (ctx.svc.deps)
    for (auto* d : ctx.svc.deps->All()) {
      auto h = d->health();
      bool impaired =
          std::string_view(h.state) != "healthy" || std::string_view(h.breaker) != "closed";
      dependencies[d->name()] = json::object{{"state", h.state},
                                             {"breaker", h.breaker},
                                             {"last_check_ok", h.last_check_ok},
                                             {"last_error", h.last_error},
                                             {"fallback", DependencyFallback(d->name())},
                                             {"fallback_in_effect", impaired}};
    }
  bool medium_down = MediumServiceDown(ctx.svc.deps);
  json::object tiers;
  for (Tier t : {Tier::kCritical, Tier::kHigh, Tier::kMedium, Tier::kLow}) {
    auto& p = ctx.shard.pool(t);
    tiers[std::string(TierName(t))] =
        json::object{{"mode", TierMode(t, reads_ok, writes_ok, medium_down)},
                     {"pool_open", p.stats().open.load()},
                     {"pool_in_use", p.stats().in_use.load()},
                     {"pool_waiting", p.stats().waiting.load()}};
  }
  json::object out{{"status", ready ? "ready" : (draining ? "draining" : "not-ready")},
                   {"node", ctx.svc.config.node_id},
                   {"region", ctx.svc.config.region},
                   {"database", std::move(database)},
                   {"audit", json::object{{"enabled", ctx.svc.config.audit_enabled},
                                          {"healthy", js.healthy},
                                          {"stalled", audit_stalled},
                                          {"free_bytes", audit_free},
                                          {"low_space", audit_low},
                                          {"durable_records", js.records},
                                          {"pending", js.pending},
                                          {"refused", js.refused},
                                          {"failures", js.failures}}},
                   {"schema", json::object{{"built_for", KnownSchemaVersion()},
                                           {"newer_contract_applied", newer_contract}}},
                   {"tiers", std::move(tiers)},
                   {"dependencies", std::move(dependencies)}};
  if (ctx.svc.readiness) {
    boost::system::error_code ec;
    auto extra = json::parse(ctx.svc.readiness(), ec);
    if (!ec && extra.is_object())
      for (auto& kv : extra.as_object()) out[kv.key()] = kv.value();
  }
  co_return std::pair{std::move(out), ready ? 200 : 503};
}

http::Response JsonResponse(int status, const json::object& body) {
  http::Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = json::serialize(body);
  return r;
}

}  // namespace

json::object AnonymousReadyBody(bool ready) {
  return json::object{{"status", ready ? "ready" : "not-ready"}};
}

asio::awaitable<http::Response> Readyz(RequestContext& ctx) {
  // Credentials decide the view, not readiness: a caller that sends none (HAProxy's
  // check, a load balancer, anyone on the internet) gets the status code and the bare
  // status; one that sends an Authorization header must send the ops token (anything
  // else is refused and audited) and gets the topology, tiers, dependencies and errors.
  const bool full = !ctx.req.header("authorization").empty();
  if (full) ops::RequireOpsToken(ctx);
  auto [body, status] = co_await ReadyState(ctx);
  auto r = JsonResponse(status, full ? body : AnonymousReadyBody(status == 200));
  r.set_header("Cache-Control", "no-store");
  co_return r;
}

asio::awaitable<http::Response> OpsStatus(RequestContext& ctx) {
  auto [body, status] = co_await ReadyState(ctx);
  body["version"] = BuildVersion();
  body["schema_version"] = KnownSchemaVersion();
  // Firing alerts and the journeys' last runs, from the database (within 800 ms, and
  // not at all when the database is known to be unreachable).
  const auto& db = body["database"].as_object();
  if (!ctx.svc.topology && db.contains("reachable") && !db.at("reachable").as_bool())
    ops::SetOpsStateUnavailable(body, "the database did not answer the readiness check");
  else
    co_await ops::AddOpsState(ctx, body, std::chrono::milliseconds(800));
  auto r = JsonResponse(200, body);
  r.set_header("Cache-Control", "no-store");
  co_return r;
}

asio::awaitable<http::Response> MetricsText(RequestContext& ctx) {
  http::Response r;
  r.content_type = "text/plain; version=0.0.4";
  r.body = Metrics::Get().Render();
  co_return r;
}

asio::awaitable<http::Response> Capability(RequestContext& ctx) {
  auto search = [](std::initializer_list<std::pair<const char*, const char*>> ps) {
    json::array a;
    for (auto& [n, t] : ps) a.push_back(json::object{{"name", n}, {"type", t}});
    return a;
  };
  auto res = [](const char* type, json::array interactions, json::array params) {
    json::object o{{"type", type}, {"interaction", std::move(interactions)}};
    if (!params.empty()) o["searchParam"] = std::move(params);
    return o;
  };
  auto inter = [](std::initializer_list<const char*> codes) {
    json::array a;
    for (auto c : codes) a.push_back(json::object{{"code", c}});
    return a;
  };
  json::array resources{
      res("Patient", inter({"read", "search-type"}),
          search({{"name", "string"}, {"birthdate", "date"}, {"identifier", "token"}})),
      res("AllergyIntolerance", inter({"search-type"}), search({{"patient", "reference"}})),
      res("MedicationStatement", inter({"search-type"}), search({{"patient", "reference"}})),
      res("Condition", inter({"search-type"}), search({{"patient", "reference"}})),
      res("Encounter", inter({"search-type"}), search({{"patient", "reference"}})),
      res("DocumentReference", inter({"read", "create", "search-type"}),
          search({{"patient", "reference"}})),
      res("AuditEvent", inter({"search-type"}),
          search({{"patient", "reference"}, {"agent", "reference"}}))};
  resources[0].as_object()["operation"] = json::array{
      json::object{{"name", "summary"},
                   {"definition", "http://hl7.org/fhir/uv/ips/OperationDefinition/summary"}}};
  json::object cs{
      {"resourceType", "CapabilityStatement"},
      {"status", "active"},
      {"date", "2026-11-25"},
      {"publisher", "Continuum"},
      {"kind", "instance"},
      {"software", json::object{{"name", "Continuum"}, {"version", "0.1.0"}}},
      {"implementation",
       json::object{{"description", "Continuum patient portal"}, {"url", ctx.BaseUrl()}}},
      {"fhirVersion", "4.0.1"},
      {"format", json::array{"application/fhir+json", "json"}},
      {"rest",
       json::array{json::object{
           {"mode", "server"},
           {"security",
            json::object{
                {"service", json::array{fhir::Concept(
                                "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                "SMART-on-FHIR", "SMART-on-FHIR")}},
                {"description", "Bearer tokens from POST /api/v1/session"}}},
           {"resource", std::move(resources)}}}}};
  co_return fhir::Json(200, cs);
}

}  // namespace continuum::portal
