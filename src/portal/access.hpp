// Authentication (bearer token + session liveness, no database round trip) and
// authorization of patient data: a patient sees only their own data; a provider sees
// patients with whom they have a care relationship, or any patient by breaking the
// glass (a stated reason; audited as emergency access, purpose ETREAT).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>

#include "portal/context.hpp"

namespace continuum::portal {

// Verifies the bearer token and the session; fills ctx.claims and the actor of the
// request's audit records. Throws Unauthorized (after marking the records denied).
void Authenticate(RequestContext& ctx);

// Throws Forbidden unless the caller has one of the roles (comma-free list).
void RequireRole(RequestContext& ctx, std::initializer_list<std::string_view> roles);

// Checks that the caller may see `patient_id`'s record; may set the records' purpose
// of use to ETREAT (break-the-glass). Throws Forbidden after marking records denied.
boost::asio::awaitable<void> AuthorizePatient(RequestContext& ctx, const std::string& patient_id);

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

// FHIR ids of seeded and created rows are decimal bigints; anything else that is a
// valid FHIR id is simply unknown (404), anything that is not one is a 400.
int64_t ParseId(std::string_view id, std::string_view what);

// The high tier's read-only answer (503, Retry-After, X-Continuum-Degraded: read-only).
Degraded ReadOnlyTier();
// For high-tier writes: throws ReadOnlyTier() at once when no primary is known, rather
// than letting the request wait for one.
void RequireWritable(const RequestContext& ctx);

// The request's Idempotency-Key header ("" when absent); at most 128 printable ASCII
// characters, else BadRequest.
std::string IdempotencyKey(const RequestContext& ctx);

}  // namespace continuum::portal
