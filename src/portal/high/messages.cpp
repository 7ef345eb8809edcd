#include "portal/high/messages.hpp"

#include <algorithm>
#include <cctype>

#include "core/error.hpp"
#include "fhir/fhir.hpp"
#include "portal/access.hpp"
#include "portal/bodies.hpp"

namespace continuum::portal::high {
namespace asio = boost::asio;
namespace json = boost::json;

#define CONTINUUM_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

namespace {

#define MESSAGE_COLS \
  "m.id, m.thread_id, m.patient_id, m.practitioner_id, m.from_patient, m.subject, m.body, " \
  "m.in_response_to, " CONTINUUM_TS("m.sent_at") ", CASE WHEN m.read_at IS NULL THEN NULL "   \
                                                 "ELSE " CONTINUUM_TS("m.read_at") " END"

const db::Query kMessagesByPatient{
    "messages_by_patient",
    "SELECT " MESSAGE_COLS
    ", count(*) OVER () FROM message m WHERE m.patient_id = $1 AND "
    "($2::bigint IS NULL OR m.practitioner_id = $2) ORDER BY m.sent_at DESC, m.id DESC LIMIT $3 "
    "OFFSET $4",
    db::Access::kRead};
const db::Query kMessageById{
    "message_by_id", "SELECT " MESSAGE_COLS " FROM message m WHERE m.id = $1", db::Access::kRead};
const db::Query kMessageByKey{"message_by_idempotency_key",
                              "SELECT " MESSAGE_COLS
                              " FROM message m WHERE m.sender_account = $1 AND "
                              "m.idempotency_key = $2",
                              db::Access::kRead};
// A reply joins its parent's thread and, without a subject of its own, takes the
// parent's; a parent from another conversation makes the insert a no-op.
const db::Query kSend{
    "message_send",
    "INSERT INTO message (id, thread_id, patient_id, practitioner_id, from_patient, "
    "sender_account, subject, body, in_response_to, idempotency_key) "
    "SELECT n.id, COALESCE(parent.thread_id, n.id), $1, $2, $3, $4, COALESCE($5, CASE WHEN "
    "parent.subject LIKE 'Re: %' THEN parent.subject ELSE left('Re: ' || parent.subject, 200) "
    "END, 'Message'), $6, parent.id, $8 FROM (SELECT nextval('message_id_seq') AS id) n "
    "LEFT JOIN message parent ON parent.id = $7::bigint AND parent.patient_id = $1 AND "
    "parent.practitioner_id = $2 WHERE $7::bigint IS NULL OR parent.id IS NOT NULL "
    "ON CONFLICT (sender_account, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING "
    "RETURNING id",
    db::Access::kWrite};
const db::Query kMarkRead{"message_mark_read",
                          "UPDATE message SET read_at = now() WHERE id = $1 AND read_at IS NULL",
                          db::Access::kWrite};
const db::Query kUnreadForPatient{
    "messages_unread_patient",
    "SELECT count(*) FROM message WHERE patient_id = $1 AND read_at IS NULL AND NOT from_patient",
    db::Access::kRead};
// A provider's unread messages in the inbox's scope (below): a message from a patient they
// no longer treat, or from a synthetic patient, is not counted for a real practitioner
// (the badge and the inbox's unread_total agree with the conversations listed).
const db::Query kUnreadForPractitioner{
    "messages_unread_practitioner",
    "SELECT count(*) FROM message m JOIN care_relationship cr ON cr.practitioner_id = "
    "m.practitioner_id AND cr.patient_id = m.patient_id JOIN patient p ON p.id = m.patient_id "
    "WHERE m.practitioner_id = $1 AND m.read_at IS NULL AND m.from_patient AND (NOT p.synthetic "
    "OR EXISTS (SELECT 1 FROM practitioner pr WHERE pr.id = $1 AND pr.synthetic))",
    db::Access::kRead};
// A provider's conversations across their patients (care relationships only; synthetic
// patients only for a synthetic practitioner), newest activity first: the thread's first
// message gives its subject and patient (a thread's id is its first message's id).
const db::Query kInbox{
    "messages_inbox",
    "WITH t AS (SELECT m.thread_id, max(m.sent_at) AS last_sent, count(*) AS n, count(*) "
    "FILTER (WHERE m.from_patient AND m.read_at IS NULL) AS unread FROM message m JOIN "
    "care_relationship cr ON cr.practitioner_id = m.practitioner_id AND cr.patient_id = "
    "m.patient_id JOIN patient p ON p.id = m.patient_id WHERE m.practitioner_id = $1 AND (NOT "
    "p.synthetic OR EXISTS (SELECT 1 FROM practitioner pr WHERE pr.id = $1 AND pr.synthetic)) "
    "GROUP BY m.thread_id HAVING NOT $2::boolean OR count(*) FILTER (WHERE m.from_patient AND "
    "m.read_at IS NULL) > 0 ORDER BY max(m.sent_at) DESC, m.thread_id DESC LIMIT $3) "
    "SELECT t.thread_id, p.id, p.given || ' ' || p.family, f.subject, " CONTINUUM_TS(
        "t.last_sent") ", l.from_patient, t.unread, t.n FROM t JOIN message f ON f.id = "
                       "t.thread_id JOIN patient p ON p.id = f.patient_id CROSS JOIN LATERAL "
                       "(SELECT from_patient FROM message WHERE thread_id = t.thread_id ORDER BY "
                       "sent_at DESC, id DESC LIMIT 1) l ORDER BY t.last_sent DESC, t.thread_id "
                       "DESC",
    db::Access::kRead};

json::object MessageJson(const db::Result& r, int i) {
  bool from_patient = r.get_bool(i, 4);
  json::object patient = fhir::Reference("Patient", r.get(i, 2));
  json::object practitioner = fhir::Reference("Practitioner", r.get(i, 3));
  json::object m{{"resourceType", "Communication"},
                 {"id", r.get(i, 0)},
                 {"meta", fhir::Meta(r.get(i, 8))},
                 {"identifier", json::array{json::object{{"system", "urn:continuum:thread"},
                                                         {"value", r.get(i, 1)}}}},
                 {"status", "completed"},
                 {"subject", patient},
                 {"topic", json::object{{"text", r.get(i, 5)}}},
                 {"sent", r.get(i, 8)},
                 {"sender", from_patient ? patient : practitioner},
                 {"recipient", json::array{from_patient ? practitioner : patient}},
                 {"payload", json::array{json::object{{"contentString", r.get(i, 6)}}}}};
  if (!r.null(i, 9)) m["received"] = r.get(i, 9);
  if (!r.null(i, 7)) m["inResponseTo"] = json::array{fhir::Reference("Communication", r.get(i, 7))};
  return m;
}

}  // namespace

asio::awaitable<http::Response> SearchMessages(RequestContext& ctx) {
  auto& rec = ctx.Audit("search", "Communication");
  Authenticate(ctx);
  RequireRole(ctx, {"patient", "provider"});
  fhir::CheckParams(ctx.req, {"patient"});
  std::string pid = PatientParam(ctx);
  rec.patient_id = pid;
  auto paging = fhir::ParsePaging(ctx.req);
  const bool provider = ctx.claims->role == "provider";
  if (!provider) co_await AuthorizePatient(ctx, pid);
  // A provider reads their own conversations with a patient they treat (a care relationship;
  // breaking the glass opens the chart, not the messages): checked in the same round trip.
  db::Param own = provider ? db::Param(ctx.claims->practitioner_id) : db::Param(std::nullopt);
  std::vector<db::Statement> batch;
  if (provider) batch.push_back(CareCheckStatement(ctx, pid));
  batch.push_back({&kMessagesByPatient, db::P(pid, own, paging.count + 1, paging.offset)});
  auto rs = co_await ctx.ReadBatch(std::move(batch));
  if (provider && !AcceptCareCheck(ctx, pid, rs[0])) {
    ctx.AuditOutcome("denied", "no care relationship");
    throw Forbidden("You can only read messages of patients you treat.");
  }
  const db::Result& r = rs.back();
  int n = std::min(r.rows(), paging.count);
  std::vector<json::object> out;
  for (int i = 0; i < n; ++i) out.push_back(MessageJson(r, i));
  std::string base = ctx.BaseUrl();
  std::optional<std::string> next;
  if (r.rows() > paging.count)
    next = fhir::SearchUrl(base, "Communication", {{"patient", pid}},
                           {paging.count, paging.offset + paging.count});
  rec.outcome = "success";
  co_return fhir::Json(
      200, fhir::SearchBundle(fhir::SearchUrl(base, "Communication", {{"patient", pid}}, paging),
                              next, std::move(out), base,
                              r.rows() ? std::optional<int64_t>(r.get_int(0, 10)) : std::nullopt));
}

asio::awaitable<http::Response> SendMessage(RequestContext& ctx) {
  auto& rec = ctx.Audit("create", "Communication");
  Authenticate(ctx);
  RequireRole(ctx, {"patient", "provider"});
  MessageBody m;
  std::string key;
  try {
    m = ParseMessageBody(ctx.req, *ctx.claims);
    key = IdempotencyKey(ctx);
  } catch (const Error&) {
    ctx.AuditOutcome("failure", "invalid request");
    throw;
  }
  rec.patient_id = m.patient_id;
  if (!co_await HasCareRelationship(ctx, m.practitioner_id, m.patient_id)) {
    ctx.AuditOutcome("denied", "no care relationship");
    throw Forbidden(ctx.claims->role == "patient"
                        ? "You can message the practitioners who treat you."
                        : "You can message only patients you treat.");
  }
  RequireWritable(ctx);
  const std::string account = std::to_string(ctx.claims->account_id);
  db::Param keyp = key.empty() ? db::Param(std::nullopt) : db::Param(key);
  db::Param subject = m.subject ? db::Param(*m.subject) : db::Param(std::nullopt);
  db::Param parent = m.in_response_to ? db::Param(*m.in_response_to) : db::Param(std::nullopt);
  auto r = co_await ctx.Write(kSend,
                              db::P(m.patient_id, m.practitioner_id, ctx.claims->role == "patient",
                                    account, subject, m.body, parent, keyp),
                              /*idempotent=*/!key.empty());
  int status = 201;
  std::string id;
  if (r.rows() == 1) {
    id = std::string(r.get(0, 0));
  } else {
    if (key.empty()) {
      ctx.AuditOutcome("failure", "inResponseTo outside the conversation");
      throw BadRequest("inResponseTo must be a message of this conversation.", "business-rule");
    }
    auto prior = co_await ctx.Read(kMessageByKey, db::P(account, key));
    if (prior.rows() == 0) {
      ctx.AuditOutcome("failure", "inResponseTo outside the conversation");
      throw BadRequest("inResponseTo must be a message of this conversation.", "business-rule");
    }
    if (prior.get(0, 6) != m.body || prior.get(0, 2) != m.patient_id ||
        prior.get(0, 3) != m.practitioner_id) {
      ctx.AuditOutcome("failure", "idempotency key reused for a different message");
      throw Conflict("This Idempotency-Key was already used for a different message.");
    }
    id = std::string(prior.get(0, 0));
    status = 200;
  }
  rec.resource_id = id;
  auto msg = co_await ctx.Read(kMessageById, db::P(id));
  if (msg.rows() == 0) throw Unavailable("The message could not be read back; please retry.");
  rec.outcome = "success";
  auto resp = fhir::Json(status, MessageJson(msg, 0));
  resp.set_header("Location", ctx.BaseUrl() + "/Communication/" + id);
  if (status == 200) resp.set_header("Idempotent-Replayed", "true");
  co_return resp;
}

asio::awaitable<http::Response> MarkMessageRead(RequestContext& ctx) {
  const std::string& raw = ctx.req.path_params[0];
  auto& rec = ctx.Audit("read", "Communication", raw.substr(0, 64));
  Authenticate(ctx);
  RequireRole(ctx, {"patient", "provider"});
  std::string id = std::to_string(ParseId(raw, "Communication"));
  rec.resource_id = id;
  auto r = co_await ctx.Read(kMessageById, db::P(id));
  const auto& c = *ctx.claims;
  // Only the recipient marks a message read; anyone else learns nothing about it.
  bool recipient =
      r.rows() == 1 && (r.get_bool(0, 4) ? c.role == "provider" && r.get(0, 3) == c.practitioner_id
                                         : c.role == "patient" && r.get(0, 2) == c.patient_id);
  if (!recipient) {
    rec.outcome = "failure";
    throw NotFound("Communication/" + id + " is not a message addressed to you.");
  }
  rec.patient_id = std::string(r.get(0, 2));
  if (r.null(0, 9)) {
    RequireWritable(ctx);
    co_await ctx.Write(kMarkRead, db::P(id), /*idempotent=*/true);
    r = co_await ctx.Read(kMessageById, db::P(id));
  }
  rec.outcome = "success";
  co_return fhir::Json(200, MessageJson(r, 0));
}

asio::awaitable<http::Response> UnreadMessages(RequestContext& ctx) {
  Authenticate(ctx);
  RequireRole(ctx, {"patient", "provider"});
  const auto& c = *ctx.claims;
  db::Result r;
  if (c.role == "patient")
    r = co_await ctx.Read(kUnreadForPatient, db::P(c.patient_id));
  else
    r = co_await ctx.Read(kUnreadForPractitioner, db::P(c.practitioner_id));
  http::Response resp;
  resp.content_type = "application/json";
  resp.body = json::serialize(json::object{{"unread", r.get_int(0, 0)}});
  co_return resp;
}

asio::awaitable<http::Response> MessageInbox(RequestContext& ctx) {
  fhir::CheckParams(ctx.req, {"unread", "_count"});
  bool unread_only = false;
  if (auto u = ctx.req.param("unread")) {
    if (*u != "true" && *u != "false") throw BadRequest("unread must be true or false.");
    unread_only = *u == "true";
  }
  int count = 50;
  if (auto c = ctx.req.param("_count")) {
    bool digits = !c->empty() && c->size() <= 3 &&
                  std::all_of(c->begin(), c->end(), [](char ch) { return std::isdigit(ch); });
    count = digits ? std::stoi(*c) : 0;
    if (count < 1 || count > 100) throw BadRequest("_count must be a whole number from 1 to 100.");
  }
  const auto& c = *ctx.claims;
  std::vector<db::Statement> stmts;
  stmts.push_back({&kInbox, db::P(c.practitioner_id, unread_only, count)});
  stmts.push_back({&kUnreadForPractitioner, db::P(c.practitioner_id)});
  auto rs = co_await ctx.ReadBatch(std::move(stmts));
  const auto& r = rs[0];
  // One audit record per patient whose messages are listed (the policy's record, opened
  // before the caller was known, says how many).
  auto tmpl = ctx.audit.front();
  std::vector<std::string> patients;
  json::array threads;
  for (int i = 0; i < r.rows(); ++i) {
    std::string pid(r.get(i, 1));
    if (std::find(patients.begin(), patients.end(), pid) == patients.end()) patients.push_back(pid);
    json::object patient = fhir::Reference("Patient", pid);
    patient["display"] = r.get(i, 2);
    threads.push_back(json::object{{"thread", r.get(i, 0)},
                                   {"patient", std::move(patient)},
                                   {"subject", r.get(i, 3)},
                                   {"last_sent", r.get(i, 4)},
                                   {"last_from_patient", r.get_bool(i, 5)},
                                   {"unread", r.get_int(i, 6)},
                                   {"messages", r.get_int(i, 7)}});
  }
  ctx.audit.front().outcome = "success";
  ctx.audit.front().detail = "inbox: " + std::to_string(threads.size()) + " conversations, " +
                             std::to_string(patients.size()) + " patients";
  for (const auto& pid : patients) {
    auto rec = tmpl;
    rec.patient_id = pid;
    rec.outcome = "success";
    ctx.audit.push_back(std::move(rec));
  }
  http::Response resp;
  resp.content_type = "application/json";
  resp.body = json::serialize(
      json::object{{"threads", std::move(threads)}, {"unread_total", rs[1].get_int(0, 0)}});
  co_return resp;
}

}  // namespace continuum::portal::high
