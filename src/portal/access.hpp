// Authentication (bearer token + session liveness, no database round trip) and
// authorization of patient data: a patient sees only their own data; a provider sees
// patients with whom they have a care relationship, or any patient by breaking the
// glass (a stated reason; audited as emergency access, purpose ETREAT).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>
#include <vector>

#include "portal/bodies.hpp"  // ParseId
#include "portal/context.hpp"

namespace continuum::portal {

// ---------------------------------------------------------------- the route's policy
//
// Every route declares its access policy in the route table (routes.cpp), beside its
// tier; the dispatcher applies it in one place before the handler runs
// (ApplyAccessPolicy), so a new route cannot forget a step:
//   1. the audit record (action, resource type) is opened first, so every refusal
//      below -- no token, a bad or revoked one, the wrong role, the wrong patient --
//      is audited as denied;
//   2. the caller: anyone, a session (bearer token, checked against the session cache)
//      or the node's ops token;
//   3. the roles that may call it (a session of another role: 403, audited);
//   4. how the patient is found: from ?patient= (searches), from the path
//      (Patient/{id}/...), from the resource the handler loads (the handler must call
//      AuthorizePatient: CheckAccessAfter refuses a 2xx that was never authorized), or
//      the caller's own data (the handler scopes its queries to the claims); for ?patient=
//      and the path, a provider's care relationship is checked in the round trip of the
//      handler's first read (DeferAuthorizePatient), or by the handler's own
//      AuthorizePatient call if that comes first;
//   5. whether it needs a writable primary (high tier: read-only while none is known).
// A handler's own ctx.Audit() fills in the record the policy opened, and its own
// Authenticate()/AuthorizePatient() calls for the same patient are no-ops (the first
// AuthorizePatient settles a deferred check).
enum class RouteCaller {
  kAnyone,    // no credentials (health, content, login); the handler may still audit
  kSession,   // a live user session
  kOpsToken,  // the node's ops token (machines: Alertmanager, the prober, Prometheus)
};
enum class PatientFrom {
  kNone,      // no patient's data (or not PHI)
  kSelf,      // the caller's own data: queries are scoped to the caller's claims
  kQuery,     // ?patient= (a patient may omit it: their own)
  kPath,      // the first path parameter is the Patient id
  kResource,  // the handler loads the resource and calls AuthorizePatient
};
struct AccessPolicy {
  RouteCaller caller = RouteCaller::kAnyone;
  std::vector<std::string> roles;  // kSession: the roles allowed (never empty for a session)
  PatientFrom patient = PatientFrom::kNone;
  std::string action;         // the audit record's action ("" : the route audits nothing)
  std::string resource_type;  // and resource type
  bool writable = false;      // refused at once (read-only) while no primary is known
};
const char* RouteCallerName(RouteCaller c);
const char* PatientFromName(PatientFrom p);

// Applies the policy before the handler runs (throws the refusal, audited).
boost::asio::awaitable<void> ApplyAccessPolicy(RequestContext& ctx, const AccessPolicy& p);
// After the handler: a successful response about a patient whose access was never
// authorized is withheld (500, audited as an error). Also closes the policy's audit
// record when the handler did not take it over (its outcome follows the status).
void CheckAccessAfter(RequestContext& ctx, const AccessPolicy& p, http::Response& resp);

// Verifies the bearer token and the session; fills ctx.claims and the actor of the
// request's audit records. Throws Unauthorized (after marking the records denied).
void Authenticate(RequestContext& ctx);

// Throws Forbidden unless the caller has one of the roles (comma-free list).
void RequireRole(RequestContext& ctx, std::initializer_list<std::string_view> roles);

// Checks that the caller may see `patient_id`'s record; may set the records' purpose
// of use to ETREAT (break-the-glass). Throws Forbidden after marking records denied.
// The id is taken by value: it may name the pending check's id, which this call clears.
boost::asio::awaitable<void> AuthorizePatient(RequestContext& ctx, std::string patient_id);

// AuthorizePatient with a provider's care relationship checked in the round trip of the
// request's next read instead of one of its own (a patient's access needs no database
// and is checked at once). Until the check passes, that read's results are withheld
// (ReadWithCareCheck), nothing is written (WriteBatch settles the check first), and a
// handler that returns without reading is checked before its response goes
// (SettleDeferredCheck). When the provider has no care relationship, the read's results
// are dropped and AuthorizePatient's own path decides: break the glass (then the read is
// sent again) or 403.
boost::asio::awaitable<void> DeferAuthorizePatient(RequestContext& ctx,
                                                   const std::string& patient_id);
// RequestContext::ReadBatch while a care check is pending: the check goes first in the
// same batch (one implicit transaction, one round trip).
boost::asio::awaitable<std::vector<db::Result>> ReadWithCareCheck(RequestContext& ctx,
                                                                  std::vector<db::Statement> stmts);
// Checks a pending care relationship now (after a handler that read nothing).
boost::asio::awaitable<void> SettleDeferredCheck(RequestContext& ctx);
// For a handler that must see its data before it decides (a Patient read answers 404 for an
// id of no patient, whoever asks): the statement that checks the calling provider's care
// relationship, for the handler's own batch, and its verdict: true = authorized
// (ctx.authorized_patient is set); false = the handler calls AuthorizePatient (break the
// glass, or 403) and reads again, and uses nothing of what it read beside the check.
db::Statement CareCheckStatement(const RequestContext& ctx, const std::string& patient_id);
bool AcceptCareCheck(RequestContext& ctx, const std::string& patient_id, const db::Result& r);

// True when practitioner `practitioner_id` treats patient `patient_id`.
boost::asio::awaitable<bool> HasCareRelationship(RequestContext& ctx,
                                                 const std::string& practitioner_id,
                                                 const std::string& patient_id);

// The break-the-glass reason from the X-Break-Glass-Reason header ("" if none).
std::string BreakGlassReason(const RequestContext& ctx);
// Throws Forbidden (audited as denied) when the caller is one of the prober's synthetic
// provider accounts: they never break the glass.
boost::asio::awaitable<void> RefuseSyntheticBreakGlass(RequestContext& ctx);

// The patient a search is about: ?patient=ID or ?patient=Patient/ID. A patient may
// omit it (their own record); anyone else gets a 400.
std::string PatientParam(const RequestContext& ctx);

// The high tier's read-only answer (503, Retry-After, X-Continuum-Degraded: read-only).
Degraded ReadOnlyTier();
// For high-tier writes: throws ReadOnlyTier() at once when the primary is gone
// (db::Topology::PrimaryGone), rather than letting the request wait for one.
void RequireWritable(const RequestContext& ctx);

// The request's Idempotency-Key header ("" when absent); at most 128 printable ASCII
// characters, else BadRequest.
std::string IdempotencyKey(const RequestContext& ctx);

}  // namespace continuum::portal
