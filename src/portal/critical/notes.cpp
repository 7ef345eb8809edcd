#include "portal/critical/notes.hpp"

#include <sodium.h>

#include "core/error.hpp"
#include "fhir/fhir.hpp"
#include "portal/access.hpp"
#include "portal/bodies.hpp"
#include "portal/search.hpp"

namespace continuum::portal::critical {
namespace asio = boost::asio;
namespace json = boost::json;

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define NOTE_COLS_N                                                                             \
  "id, patient_id, author_id, status, title, content, content_type, " TS("created_at") ", " TS( \
      "signed_at") ", signed_by, " TS("updated_at") ", idempotency_key"

// The test release N+1 (CONTINUUM_TEST_RELEASE_NEXT, the continuum_next build; see
// src/db/README.md): db/migrations-next/9001 adds clinical_note.content_bytes, which N+1
// writes on every note and serves as content.attachment.size (column 12); release N
// neither writes nor reads it.
#ifdef CONTINUUM_TEST_RELEASE_NEXT
#define NOTE_COLS NOTE_COLS_N ", coalesce(content_bytes, octet_length(content))"
#define NOTE_INSERT_COLS "content_type, idempotency_key, content_bytes"
#define NOTE_INSERT_VALUES "'text/plain', $5, octet_length($4)"
#else
#define NOTE_COLS NOTE_COLS_N
#define NOTE_INSERT_COLS "content_type, idempotency_key"
#define NOTE_INSERT_VALUES "'text/plain', $5"
#endif

namespace {

// Clinical data (db::DataClass::kClinical, the default): committed with
// synchronous_commit = on, so an acknowledged note survives a failover.
const db::Query kInsertNote{
    "note_insert",
    "INSERT INTO clinical_note (patient_id, author_id, status, title, content, " NOTE_INSERT_COLS
    ") VALUES ($1, $2, 'preliminary', $3, $4, " NOTE_INSERT_VALUES
    ") "
    "ON CONFLICT (author_id, idempotency_key) DO NOTHING RETURNING " NOTE_COLS,
    db::Access::kWrite};
const db::Query kNoteByKey{"note_by_idempotency_key",
                           "SELECT " NOTE_COLS
                           " FROM clinical_note WHERE author_id = $1 AND idempotency_key = $2",
                           db::Access::kRead};
const db::Query kNoteById{"note_by_id", "SELECT " NOTE_COLS " FROM clinical_note WHERE id = $1",
                          db::Access::kRead};
// Whether practitioner $2 treats note $1's patient: read in the note's own batch.
const db::Query kNoteCareCheck{
    "note_care_relationship",
    "SELECT 1 FROM clinical_note n JOIN care_relationship c ON c.patient_id = n.patient_id "
    "WHERE n.id = $1 AND c.practitioner_id = $2",
    db::Access::kRead};
const db::Query kSignNote{
    "note_sign",
    "UPDATE clinical_note SET status = 'final', signed_at = now(), signed_by = $2, updated_at = "
    "now() WHERE id = $1 AND status = 'preliminary' RETURNING " NOTE_COLS,
    db::Access::kWrite};
const db::Query kNotesByPatient{
    "notes_by_patient",
    "SELECT " NOTE_COLS
    " FROM clinical_note WHERE patient_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 "
    "OFFSET $3",
    db::Access::kRead};
const db::Query kCountNotes{
    "notes_count", "SELECT count(*) FROM clinical_note WHERE patient_id = $1", db::Access::kRead};

std::string Base64(std::string_view s) {
  std::string out(sodium_base64_encoded_len(s.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(s.data()),
                    s.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

json::object NoteJson(const db::Result& r, int i) {
  json::object d{{"resourceType", "DocumentReference"},
                 {"id", r.get(i, 0)},
                 {"meta", fhir::Meta(r.get(i, 10))}};
  bool final = r.get(i, 3) == "final";
  if (final && !r.null(i, 8))
    d["extension"] = json::array{
        json::object{{"url", "https://continuum.health/fhir/StructureDefinition/signed-at"},
                     {"valueDateTime", r.get(i, 8)}}};
  d["status"] = "current";
  d["docStatus"] = r.get(i, 3);
  d["type"] = fhir::Concept("http://loinc.org", "11506-3", "Progress note");
  d["subject"] = fhir::Reference("Patient", r.get(i, 1));
  d["date"] = r.get(i, 7);
  d["author"] = json::array{fhir::Reference("Practitioner", r.get(i, 2))};
  if (final && !r.null(i, 9)) d["authenticator"] = fhir::Reference("Practitioner", r.get(i, 9));
  d["description"] = r.get(i, 4);
  json::object attachment{{"contentType", r.get(i, 6)},
                          {"data", Base64(r.get(i, 5))},
                          {"title", r.get(i, 4)},
                          {"creation", r.get(i, 7)}};
#ifdef CONTINUUM_TEST_RELEASE_NEXT
  attachment["size"] = r.get_int(i, 12);
#endif
  d["content"] = json::array{json::object{{"attachment", std::move(attachment)}}};
  return d;
}

// The note, and the caller's access to its patient: a provider's care relationship is read
// in the note's own round trip (else AuthorizePatient decides: break the glass, or 403); a
// note that does not exist is a 404 for anyone.
asio::awaitable<db::Result> LoadNoteAuthorized(RequestContext& ctx, audit::Record& rec,
                                               const std::string& id) {
  const bool provider = ctx.claims->role == "provider";
  std::vector<db::Statement> batch;
  batch.push_back({&kNoteById, db::P(id)});
  if (provider) batch.push_back({&kNoteCareCheck, db::P(id, ctx.claims->practitioner_id)});
  auto rs = co_await ctx.ReadBatch(std::move(batch));
  if (rs[0].rows() == 0) {
    rec.outcome = "failure";
    throw NotFound("DocumentReference/" + id + " does not exist.");
  }
  rec.patient_id = std::string(rs[0].get(0, 1));
  if (!provider || !AcceptCareCheck(ctx, rec.patient_id, rs[1]))
    co_await AuthorizePatient(ctx, rec.patient_id);
  co_return std::move(rs[0]);
}

}  // namespace

asio::awaitable<http::Response> CreateNote(RequestContext& ctx) {
  auto& rec = ctx.Audit("create", "DocumentReference");
  Authenticate(ctx);
  RequireRole(ctx, {"provider"});
  NoteBody n;
  std::string key;
  try {
    n = ParseNoteBody(ctx.req, *ctx.claims);
    key = IdempotencyKey(ctx);
  } catch (const Error&) {
    ctx.AuditOutcome("failure", "invalid request");
    throw;
  }
  rec.patient_id = n.patient_id;
  co_await AuthorizePatient(ctx, n.patient_id);
  const std::string& me = ctx.claims->practitioner_id;
  db::Param keyp = key.empty() ? db::Param(std::nullopt) : db::Param(key);
  auto r = co_await ctx.Write(kInsertNote, db::P(n.patient_id, me, n.title, n.content, keyp),
                              /*idempotent=*/!key.empty());
  int status = 201;
  if (r.rows() == 0) {
    // The key was used before: answer with the note it created, if it is the same note.
    r = co_await ctx.Read(kNoteByKey, db::P(me, key));
    if (r.rows() == 0) throw Unavailable("The note could not be stored; please retry.");
    if (r.get(0, 1) != n.patient_id || r.get(0, 5) != n.content) {
      ctx.AuditOutcome("failure", "idempotency key reused for a different note");
      throw Conflict(
          "This Idempotency-Key was already used for a different note. Use a new key for a new "
          "note.");
    }
    status = 200;
  }
  rec.resource_id = std::string(r.get(0, 0));
  rec.outcome = "success";
  auto resp = fhir::Json(status, NoteJson(r, 0));
  resp.set_header("Location", ctx.BaseUrl() + "/DocumentReference/" + rec.resource_id);
  if (status == 200) resp.set_header("Idempotent-Replayed", "true");
  co_return resp;
}

asio::awaitable<http::Response> SignNote(RequestContext& ctx) {
  const std::string& raw = ctx.req.path_params[0];
  auto& rec = ctx.Audit("sign", "DocumentReference", raw.substr(0, 64));
  Authenticate(ctx);
  RequireRole(ctx, {"provider"});
  std::string id = std::to_string(ParseId(raw, "DocumentReference"));
  rec.resource_id = id;
  auto cur = co_await LoadNoteAuthorized(ctx, rec, id);
  if (cur.get(0, 2) != ctx.claims->practitioner_id) {
    ctx.AuditOutcome("denied", "only the author may sign");
    throw Forbidden("Only the note's author can sign it.");
  }
  if (cur.get(0, 3) == "final") {
    rec.outcome = "failure";
    rec.detail = "already signed";
    throw Conflict("This note is already signed; a signed note cannot be changed.");
  }
  auto r = co_await ctx.Write(kSignNote, db::P(id, ctx.claims->practitioner_id));
  if (r.rows() == 0) {
    rec.outcome = "failure";
    rec.detail = "already signed";
    throw Conflict("This note is already signed; a signed note cannot be changed.");
  }
  rec.outcome = "success";
  co_return fhir::Json(200, NoteJson(r, 0));
}

asio::awaitable<http::Response> ReadNote(RequestContext& ctx) {
  const std::string& raw = ctx.req.path_params[0];
  auto& rec = ctx.Audit("read", "DocumentReference", raw.substr(0, 64));
  Authenticate(ctx);
  std::string id = std::to_string(ParseId(raw, "DocumentReference"));
  rec.resource_id = id;
  auto r = co_await LoadNoteAuthorized(ctx, rec, id);
  rec.outcome = "success";
  co_return fhir::Json(200, NoteJson(r, 0));
}

asio::awaitable<http::Response> SearchNotes(RequestContext& ctx) {
  return PatientSearch(ctx, "DocumentReference", kNotesByPatient, kCountNotes, &NoteJson);
}

}  // namespace continuum::portal::critical
