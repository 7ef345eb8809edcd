#include "portal/access.hpp"

#include <chrono>
#include <unordered_map>
#include <utility>

#include "auth/session_cache.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "http/outcome.hpp"
#include "portal/ops_api.hpp"

namespace continuum::portal {

boost::asio::awaitable<void> AuthorizePatientOnce(RequestContext& ctx,
                                                  const std::string& patient_id);

namespace {

const db::Query kCareRelationship{
    "care_relationship_exists",
    "SELECT 1 FROM care_relationship WHERE practitioner_id = $1 AND patient_id = $2",
    db::Access::kRead};

// Verified tokens per shard thread: a client sends the same token with every request,
// so the MAC check and claim parsing run once per token, not once per request. Expiry
// and session state are still checked on every request.
struct TokenHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};
const auth::Claims* VerifyCached(const auth::TokenSigner& signer, std::string_view token) {
  thread_local std::unordered_map<std::string, auth::Claims, TokenHash, std::equal_to<>> cache;
  if (auto it = cache.find(token); it != cache.end()) return &it->second;
  auto claims = signer.Verify(token);
  if (!claims) return nullptr;
  if (cache.size() >= 8192) cache.clear();
  return &cache.emplace(std::string(token), std::move(*claims)).first->second;
}

[[noreturn]] void Deny401(RequestContext& ctx, const std::string& why, const std::string& msg) {
  ctx.AuditOutcome("denied", why);
  throw Unauthorized(msg);
}

}  // namespace

void Authenticate(RequestContext& ctx) {
  if (ctx.claims) return;  // done by the route's policy
  std::string_view h = ctx.req.header("authorization");
  if (h.empty())
    Deny401(ctx, "no bearer token",
            "Log in first: this request needs an Authorization: Bearer token.");
  if (h.size() < 8 || (h.substr(0, 7) != "Bearer " && h.substr(0, 7) != "bearer "))
    Deny401(ctx, "malformed authorization header",
            "The Authorization header must be of the form 'Bearer <token>'.");
  const auth::Claims* verified = VerifyCached(*ctx.svc.signer, h.substr(7));
  if (!verified)
    Deny401(ctx, "invalid token", "The access token is not valid. Please log in again.");
  std::optional<auth::Claims> claims = *verified;
  // The actor is known from here on, even if the session turns out to be dead.
  for (auto& r : ctx.audit) {
    r.actor = claims->username;
    r.role = claims->role;
  }
  int64_t now = UnixNow();
  if (now >= claims->exp)
    Deny401(ctx, "token expired", "Your session has expired. Please log in again.");
  switch (ctx.svc.sessions->Touch(claims->sid, claims->iat, now)) {
    case auth::SessionCache::State::kLive:
      break;
    case auth::SessionCache::State::kRevoked:
      Deny401(ctx, "session revoked", "This session has been logged out. Please log in again.");
    case auth::SessionCache::State::kIdleExpired:
      Deny401(ctx, "session idle timeout",
              "Your session expired after a period of inactivity. Please log in again.");
  }
  ctx.claims = std::move(claims);
}

void RequireRole(RequestContext& ctx, std::initializer_list<std::string_view> roles) {
  for (auto r : roles)
    if (ctx.claims && ctx.claims->role == r) return;
  ctx.AuditOutcome("denied", "role not permitted");
  std::string list;
  for (auto r : roles) list += (list.empty() ? "" : " or ") + std::string(r);
  throw Forbidden("This action is only available to a " + list + ".");
}

boost::asio::awaitable<bool> HasCareRelationship(RequestContext& ctx,
                                                 const std::string& practitioner_id,
                                                 const std::string& patient_id) {
  auto r = co_await ctx.Read(kCareRelationship, db::P(practitioner_id, patient_id));
  bool related = r.rows() > 0;
  // The caller is one side of the relationship: their access to the patient is checked.
  if (related && ctx.claims &&
      ((ctx.claims->role == "provider" && ctx.claims->practitioner_id == practitioner_id) ||
       (ctx.claims->role == "patient" && ctx.claims->patient_id == patient_id)))
    ctx.authorized_patient = patient_id;
  co_return related;
}

// The break-the-glass reason is PHI (free text): kept with the clinical data, never in
// the audit record's detail (db/migrations/0015_break_glass_reason.sql).
const db::Query kBreakGlassReason{
    "break_glass_reason_insert",
    "INSERT INTO break_glass_reason (request_id, practitioner_id, patient_id, reason) VALUES "
    "($1, $2, $3, $4) ON CONFLICT (request_id) DO NOTHING",
    db::Access::kWrite};

const db::Query kSyntheticPractitioner{"practitioner_is_synthetic",
                                       "SELECT 1 FROM practitioner WHERE id = $1 AND synthetic",
                                       db::Access::kRead};

boost::asio::awaitable<void> RefuseSyntheticBreakGlass(RequestContext& ctx) {
  // The prober's synthetic provider accounts (continuum synthetic-accounts) exist to walk
  // their own synthetic patient's chart; their password sits in a monitoring config, so
  // they must never open a real patient's chart, emergency or not.
  auto r = co_await ctx.Read(kSyntheticPractitioner, db::P(ctx.claims->practitioner_id));
  if (r.rows() == 0) co_return;
  ctx.AuditOutcome("denied", "break-the-glass refused to a synthetic monitoring account");
  throw Forbidden("Synthetic monitoring accounts cannot break the glass.");
}

std::string BreakGlassReason(const RequestContext& ctx) {
  std::string_view v = ctx.req.header("x-break-glass-reason");
  std::size_t b = 0, e = v.size();
  while (b < e && std::isspace(static_cast<unsigned char>(v[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(v[e - 1]))) --e;
  return std::string(v.substr(b, e - b));
}

namespace {
// The full check of a deferred one, as the route's policy made it before the handler ran:
// a refusal's audit detail is its own reason, not what the handler noted so far; when access
// is granted (break the glass), the handler's notes are put back over the check's.
boost::asio::awaitable<void> CheckAsThePolicyWould(RequestContext& ctx, const std::string& pid) {
  std::vector<std::string> noted;
  for (auto& r : ctx.audit) noted.push_back(std::exchange(r.detail, {}));
  co_await AuthorizePatientOnce(ctx, pid);
  std::size_t i = 0;
  for (auto& r : ctx.audit) {
    if (i < noted.size() && !noted[i].empty()) r.detail = std::move(noted[i]);
    ++i;
  }
  ctx.authorized_patient = pid;
}
}  // namespace

boost::asio::awaitable<void> AuthorizePatient(RequestContext& ctx, std::string patient_id) {
  if (!ctx.claims) Authenticate(ctx);
  if (ctx.care_check_pending) {
    // A deferred check settles now, whichever patient it is for.
    std::string pending = std::move(*ctx.care_check_pending);
    ctx.care_check_pending.reset();
    if (!ctx.authorized_patient || *ctx.authorized_patient != pending)
      co_await CheckAsThePolicyWould(ctx, pending);
  }
  if (ctx.authorized_patient && *ctx.authorized_patient == patient_id) co_return;
  co_await AuthorizePatientOnce(ctx, patient_id);
  ctx.authorized_patient = patient_id;
}

boost::asio::awaitable<void> DeferAuthorizePatient(RequestContext& ctx,
                                                   const std::string& patient_id) {
  if (!ctx.claims) Authenticate(ctx);
  if (ctx.authorized_patient && *ctx.authorized_patient == patient_id) co_return;
  if (ctx.claims->role != "provider" ||
      (ctx.care_check_pending && *ctx.care_check_pending != patient_id)) {
    co_await AuthorizePatient(ctx, patient_id);
    co_return;
  }
  ctx.care_check_pending = patient_id;
}

boost::asio::awaitable<std::vector<db::Result>> ReadWithCareCheck(
    RequestContext& ctx, std::vector<db::Statement> stmts) {
  std::string pid = std::move(*ctx.care_check_pending);
  ctx.care_check_pending.reset();
  if (ctx.authorized_patient && *ctx.authorized_patient == pid)
    co_return co_await ctx.ReadNearest(std::move(stmts));
  stmts.insert(stmts.begin(), CareCheckStatement(ctx, pid));
  std::vector<db::Result> rs;
  std::exception_ptr failed;
  try {
    rs = co_await ctx.ReadNearest(stmts);
  } catch (...) {
    failed = std::current_exception();
  }
  if (failed) {
    // The batch failed (a timeout, a lost server): the check alone decides first, so a
    // caller without access is refused (403) rather than told of the data's failure.
    co_await CheckAsThePolicyWould(ctx, pid);
    std::rethrow_exception(failed);
  }
  if (AcceptCareCheck(ctx, pid, rs[0])) {
    rs.erase(rs.begin());
    co_return rs;
  }
  // No care relationship: what was read is dropped unseen, and the full check decides
  // (a 403, or break-the-glass with its reason stored before the chart is read again).
  rs.clear();
  stmts.erase(stmts.begin());
  co_await CheckAsThePolicyWould(ctx, pid);
  co_return co_await ctx.ReadNearest(std::move(stmts));
}

db::Statement CareCheckStatement(const RequestContext& ctx, const std::string& patient_id) {
  return db::Statement{&kCareRelationship, db::P(ctx.claims->practitioner_id, patient_id)};
}

bool AcceptCareCheck(RequestContext& ctx, const std::string& patient_id, const db::Result& r) {
  if (r.rows() == 0) return false;
  ctx.authorized_patient = patient_id;
  return true;
}

boost::asio::awaitable<void> SettleDeferredCheck(RequestContext& ctx) {
  if (!ctx.care_check_pending) co_return;
  std::string pid = std::move(*ctx.care_check_pending);
  ctx.care_check_pending.reset();
  if (ctx.authorized_patient && *ctx.authorized_patient == pid) co_return;
  co_await CheckAsThePolicyWould(ctx, pid);
}

boost::asio::awaitable<void> AuthorizePatientOnce(RequestContext& ctx,
                                                  const std::string& patient_id) {
  const auto& c = *ctx.claims;
  if (c.role == "patient") {
    if (c.patient_id == patient_id) co_return;
    ctx.AuditOutcome("denied", "patient accessing another patient's record");
    throw Forbidden("You can only view your own records.");
  }
  if (c.role == "provider") {
    auto r = co_await ctx.Read(kCareRelationship, db::P(c.practitioner_id, patient_id));
    if (r.rows() > 0) co_return;
    std::string reason = BreakGlassReason(ctx);
    if (!reason.empty()) {
      co_await RefuseSyntheticBreakGlass(ctx);
      if (reason.size() > 500) {
        ctx.AuditOutcome("denied", "break-the-glass reason too long");
        throw BadRequest("The break-the-glass reason must be at most 500 characters.");
      }
      for (auto& rec : ctx.audit) {
        rec.purpose_of_use = "ETREAT";
        rec.detail = "break-the-glass (reason in break_glass_reason)";
      }
      // Stored before the chart is read; the write's attempt record (ETREAT) is durable
      // before it commits.
      co_await ctx.Write(kBreakGlassReason,
                         db::P(ctx.req.request_id, c.practitioner_id, patient_id, reason),
                         /*idempotent=*/true);
      co_return;
    }
    ctx.AuditOutcome("denied", "no care relationship");
    throw Forbidden(
        "You have no care relationship with this patient. In an emergency, state a reason in the "
        "X-Break-Glass-Reason header to open the chart; the access will be reviewed.");
  }
  ctx.AuditOutcome("denied", "role has no access to clinical data");
  throw Forbidden("Your role does not give access to clinical records.");
}

const char* RouteCallerName(RouteCaller c) {
  switch (c) {
    case RouteCaller::kSession:
      return "session";
    case RouteCaller::kOpsToken:
      return "ops-token";
    default:
      return "anyone";
  }
}

const char* PatientFromName(PatientFrom p) {
  switch (p) {
    case PatientFrom::kSelf:
      return "self";
    case PatientFrom::kQuery:
      return "query";
    case PatientFrom::kPath:
      return "path";
    case PatientFrom::kResource:
      return "resource";
    default:
      return "none";
  }
}

boost::asio::awaitable<void> ApplyAccessPolicy(RequestContext& ctx, const AccessPolicy& p) {
  if (!p.action.empty()) {
    ctx.Audit(p.action, p.resource_type);
    ctx.policy_record_open = true;
  }
  switch (p.caller) {
    case RouteCaller::kAnyone:
      co_return;
    case RouteCaller::kOpsToken:
      ops::RequireOpsToken(ctx);
      co_return;
    case RouteCaller::kSession:
      break;
  }
  Authenticate(ctx);
  bool role_ok = false;
  for (const auto& r : p.roles) role_ok = role_ok || ctx.claims->role == r;
  if (!role_ok) {
    ctx.AuditOutcome("denied", "role not permitted on this route");
    std::string list;
    for (const auto& r : p.roles) list += (list.empty() ? "" : " or ") + r;
    throw Forbidden("This is only available to a " + list + ".");
  }
  if (p.patient == PatientFrom::kQuery || p.patient == PatientFrom::kPath) {
    std::string pid;
    try {
      pid = p.patient == PatientFrom::kQuery
                ? PatientParam(ctx)
                : std::to_string(ParseId(ctx.req.path_params.at(0), "Patient"));
    } catch (const Error&) {
      ctx.AuditOutcome("failure", "invalid patient");
      throw;
    }
    for (auto& r : ctx.audit) r.patient_id = pid;
    co_await DeferAuthorizePatient(ctx, pid);
  }
  if (p.writable) RequireWritable(ctx);
}

void CheckAccessAfter(RequestContext& ctx, const AccessPolicy& p, http::Response& resp) {
  bool ok = resp.status >= 200 && resp.status < 300;
  bool about_patient = p.patient == PatientFrom::kQuery || p.patient == PatientFrom::kPath ||
                       p.patient == PatientFrom::kResource;
  if (ok && about_patient && !ctx.authorized_patient) {
    log::Error("route {}: a {} response about a patient whose access was never authorized",
               ctx.route, resp.status);
    ctx.AuditOutcome("error", "route policy: patient access not authorized");
    resp = http::OutcomeResponse(500, "exception",
                                 "The response was withheld: access could not be verified.");
    return;
  }
  if (ctx.policy_record_open && !ctx.audit.empty()) {
    // The handler did not take the record over: its outcome follows the response.
    auto& r = ctx.audit.front();
    if (ok)
      r.outcome = "success";
    else if (r.outcome == "error" && resp.status < 500)
      r.outcome = "failure";
    ctx.policy_record_open = false;
  }
}

std::string PatientParam(const RequestContext& ctx) {
  auto p = ctx.req.param("patient");
  if (!p) {
    if (ctx.claims && ctx.claims->role == "patient") return ctx.claims->patient_id;
    throw BadRequest("The search needs a patient parameter, e.g. ?patient=123.");
  }
  std::string_view v = *p;
  if (v.starts_with("Patient/")) v.remove_prefix(8);
  return std::to_string(ParseId(v, "Patient"));
}

Degraded ReadOnlyTier() {
  return Degraded(
      "Scheduling and messaging are read-only for a moment while the portal switches to a "
      "backup database. You can still see your appointments and messages; please try this "
      "change again in a minute.",
      "read-only", 15);
}

void RequireWritable(const RequestContext& ctx) {
  if (ctx.svc.topology && ctx.svc.topology->PrimaryGone()) throw ReadOnlyTier();
}

std::string IdempotencyKey(const RequestContext& ctx) {
  std::string_view k = ctx.req.header("idempotency-key");
  if (k.size() > 128) throw BadRequest("Idempotency-Key must be at most 128 characters.");
  for (char c : k)
    if (c < 0x21 || c > 0x7e)
      throw BadRequest("Idempotency-Key must be printable ASCII without spaces.");
  return std::string(k);
}

}  // namespace continuum::portal
