#include "portal/high/notifications.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <functional>

#include "audit/journal.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "deps/dependency.hpp"
#include "deps/smtp_client.hpp"
#include "fhir/fhir.hpp"
#include "portal/access.hpp"

namespace continuum::portal::high {
namespace asio = boost::asio;
namespace json = boost::json;

#define CONTINUUM_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

namespace {

// The text names a time, a place and a clinician; never a reason or a diagnosis.
#define NOTIFY_WHEN "to_char(s.start_at AT TIME ZONE 'UTC', 'Dy DD Mon YYYY, HH24:MI \"UTC\"')"
#define NOTIFY_INSERT                                                                           \
  "INSERT INTO notification (patient_id, kind, appointment_id, channel_preference, to_email, "  \
  "to_phone, subject, body, dedupe_key) SELECT a.patient_id, $1::text, a.id, CASE WHEN "        \
  "coalesce(pt.email, '') <> '' THEN 'email' ELSE 'sms' END, NULLIF(pt.email, ''), "            \
  "NULLIF(pt.phone, ''), CASE $1::text WHEN 'appointment-booked' THEN 'Your appointment is "    \
  "booked' ELSE 'Reminder: your appointment' END, format(CASE $1::text WHEN "                   \
  "'appointment-booked' THEN 'Hello %s, your appointment with %s %s at %s on %s is booked. To " \
  "change or cancel it, sign in to the Continuum patient portal.' ELSE 'Hello %s, a reminder "  \
  "of your appointment with %s %s at %s on %s. To change or cancel it, sign in to the "         \
  "Continuum patient portal.' END, pt.given, p.given, p.family, f.name, " NOTIFY_WHEN           \
  "), "                                                                                         \
  "CASE $1::text WHEN 'appointment-booked' THEN 'booked-' ELSE 'reminder-' END || a.id FROM "   \
  "appointment a JOIN slot s ON s.id = a.slot_id JOIN patient pt ON pt.id = a.patient_id JOIN " \
  "practitioner p ON p.id = s.practitioner_id JOIN facility f ON f.id = s.facility_id WHERE "   \
  "a.status = 'booked' AND NOT pt.synthetic AND (coalesce(pt.email, '') <> '' OR "              \
  "coalesce(pt.phone, '') <> '') "

const db::Query kEnqueueOne{"notification_enqueue",
                            NOTIFY_INSERT "AND a.id = $2 ON CONFLICT (dedupe_key) DO NOTHING",
                            db::Access::kWrite};
// Reminders for booked appointments starting within 24 h, once each.
const db::Query kSweepReminders{
    "notification_sweep_reminders",
    NOTIFY_INSERT
    "AND s.start_at > now() AND s.start_at <= now() + interval '24 hours' AND NOT "
    "EXISTS (SELECT 1 FROM notification n WHERE n.dedupe_key = 'reminder-' || a.id) "
    "ON CONFLICT (dedupe_key) DO NOTHING",
    db::Access::kWrite};
// The booked-notification of a recent booking whose enqueue failed (the booking stood).
const db::Query kSweepBooked{
    "notification_sweep_booked",
    NOTIFY_INSERT
    "AND a.created_at > now() - interval '1 hour' AND a.created_at < now() - "
    "interval '10 seconds' AND s.start_at > now() AND NOT EXISTS (SELECT 1 FROM "
    "notification n WHERE n.dedupe_key = 'booked-' || a.id) ON CONFLICT "
    "(dedupe_key) DO NOTHING",
    db::Access::kWrite};

// A claim lasts longer than the slowest delivery attempt (both channels, with retries).
const db::Query kClaimDue{
    "notification_claim_due",
    "UPDATE notification SET attempts = attempts + 1, locked_by = $1, locked_until = now() + "
    "interval '60 seconds' WHERE id IN (SELECT id FROM notification WHERE status = 'queued' AND "
    "next_attempt_at <= now() AND (locked_until IS NULL OR locked_until < now()) ORDER BY "
    "next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id, channel_preference, "
    "coalesce(to_email, ''), coalesce(to_phone, ''), subject, body, sms_attempted, "
    "patient_id",
    db::Access::kWrite};
// A reminder not yet sent for an appointment cancelled since is not sent.
const db::Query kDropCancelled{
    "notification_drop_cancelled",
    "UPDATE notification n SET status = 'cancelled', locked_by = NULL, locked_until = NULL, "
    "last_error = 'the appointment was cancelled' FROM appointment a WHERE a.id = "
    "n.appointment_id AND n.status = 'queued' AND n.kind = 'appointment-reminder' AND a.status = "
    "'cancelled' AND (n.locked_until IS NULL OR n.locked_until < now())",
    db::Access::kWrite};
const db::Query kSmsAttempted{"notification_sms_attempted",
                              "UPDATE notification SET sms_attempted = true WHERE id = $1",
                              db::Access::kWrite};
const db::Query kSent{
    "notification_sent",
    "UPDATE notification SET status = 'sent', channel_used = $2, sent_at = now(), "
    "locked_by = NULL, locked_until = NULL, last_error = NULL WHERE id = $1 AND "
    "status = 'queued'",
    db::Access::kWrite};
// Back off 2, 4, ... 60 s; a notification still undelivered after 48 h is given up.
const db::Query kRelease{
    "notification_release",
    "UPDATE notification SET locked_by = NULL, locked_until = NULL, last_error = $2, "
    "next_attempt_at = now() + make_interval(secs => LEAST(60, power(2, LEAST(attempts, 6)))::"
    "float8), status = CASE WHEN created_at < now() - interval '48 hours' THEN 'failed' ELSE "
    "'queued' END WHERE id = $1 AND status = 'queued'",
    db::Access::kWrite};
const db::Query kByPatient{
    "notifications_by_patient",
    "SELECT id, kind, status, channel_used, attempts, subject, " CONTINUUM_TS(
        "created_at") ", CASE WHEN sent_at IS NULL THEN NULL ELSE " CONTINUUM_TS("sent_at") " END "
                      "FROM notification WHERE patient_id = $1 ORDER BY created_at DESC, id DESC "
                      "LIMIT 100", db::Access::kRead};

struct Claimed {
  std::string id, preference, email, phone, subject, body;
  bool sms_attempted = false;
  std::string patient_id;
};

// A notification carries PHI (an appointment's time and place) to an outside service:
// it is a disclosure, audited like a request (ARCHITECTURE §5). The attempt record is
// durable before the message leaves (no disclosure without its record), the outcome
// record after. Actor "system:notifications", role "system".
asio::awaitable<void> AuditDisclosure(RequestContext& ctx, const Claimed& n,
                                      const std::string& channel, const char* outcome,
                                      std::string detail) {
  if (!ctx.svc.journal) co_return;
  audit::Record r;
  r.request_id = "notification-" + n.id;
  r.actor = "system:notifications";
  r.role = "system";
  r.action = "disclose";
  r.resource_type = "Communication";
  r.resource_id = n.id;
  r.patient_id = n.patient_id;
  r.purpose_of_use = "HOPERAT";
  r.outcome = outcome;
  r.detail = channel + (detail.empty() ? "" : ": " + detail.substr(0, 200));
  std::vector<audit::Record> recs;
  recs.push_back(std::move(r));
  co_await ctx.svc.journal->Append(ctx.shard.executor, std::move(recs), ctx.AuditDeadline());
}

// One channel's attempt: "" when delivered, else why not.
asio::awaitable<std::string> SendEmail(Services& svc, const Claimed& n) {
  deps::Dependency* dep = svc.deps ? svc.deps->Find("smtp") : nullptr;
  if (!dep) co_return "smtp is not configured";
  if (n.email.empty()) co_return "no email address";
  const std::string& from = svc.config.notify_from;
  deps::smtp::Server server;
  server.host = dep->endpoint().host;
  server.port = dep->endpoint().port;
  server.helo = from.substr(from.find('@') + 1);
  server.timeout = dep->options().timeout;
  server.tls = dep->tls();  // STARTTLS required unless the dependency allows plain text
  deps::smtp::Message m;
  m.from = from;
  m.to = n.email;
  m.subject = n.subject;
  m.body = n.body + "\n";
  m.message_id = "notification-" + n.id + "@" + server.helo;
  std::function<asio::awaitable<void>()> op = [&server, &m]() {
    return deps::smtp::Send(server, m);
  };
  try {
    co_await dep->Guard(op);
  } catch (const deps::DependencyDown& e) {
    co_return e.what();
  }
  co_return "";
}

asio::awaitable<std::string> SendSms(RequestContext& ctx, const Claimed& n) {
  deps::Dependency* dep = ctx.svc.deps ? ctx.svc.deps->Find("sms") : nullptr;
  if (!dep) co_return "sms is not configured";
  std::string to = E164(n.phone);
  if (to.empty()) co_return "no usable phone number";
  // From here on a retry may reach the SMS service a second time: prefer SMS again then,
  // so that its idempotency key (not a second channel) answers the replay.
  if (!n.sms_attempted) co_await ctx.Write(kSmsAttempted, db::P(n.id), true);
  std::string body = json::serialize(json::object{{"to", to}, {"body", n.body}});
  std::vector<std::pair<std::string, std::string>> headers;
  headers.emplace_back("Idempotency-Key", "continuum-notification-" + n.id);
  http::ClientResponse r;
  try {
    r = co_await dep->Call("POST", "/v1/messages", body, headers, /*idempotent=*/true);
  } catch (const deps::DependencyDown& e) {
    co_return e.what();
  }
  if (r.status >= 200 && r.status < 300) co_return "";
  co_return "sms: HTTP " + std::to_string(r.status) + " " + r.body.substr(0, 200);
}

// Delivers one claimed notification by its preferred channel, else the other; records
// the outcome. True when sent.
asio::awaitable<bool> Deliver(RequestContext& ctx, const Claimed& n) {
  std::string first = n.sms_attempted ? "sms" : n.preference;
  std::string second = first == "email" ? "sms" : "email";
  std::string errors;
  std::array<std::string, 2> order{first, second};
  for (const std::string& channel : order) {
    std::string error;
    // Throws (the notification stays claimed, then is retried) when the journal cannot
    // take the record: nothing is sent unaudited.
    co_await AuditDisclosure(ctx, n, channel, "attempt", "");
    if (channel == "email")
      error = co_await SendEmail(ctx.svc, n);
    else
      error = co_await SendSms(ctx, n);
    co_await AuditDisclosure(ctx, n, channel, error.empty() ? "success" : "failure",
                             error.empty() ? "" : "not delivered");
    if (error.empty()) {
      co_await ctx.Write(kSent, db::P(n.id, channel), true);
      co_return true;
    }
    if (!errors.empty()) errors += "; ";
    errors += channel + ": " + error;
  }
  std::string why = errors.substr(0, 1000);
  co_await ctx.Write(kRelease, db::P(n.id, why), true);
  co_return false;
}

}  // namespace

std::string E164(const std::string& phone) {
  std::string digits;
  for (char c : phone) {
    if (std::isdigit(static_cast<unsigned char>(c)))
      digits += c;
    else if (c != ' ' && c != '-' && c != '(' && c != ')' && c != '.' &&
             !(c == '+' && digits.empty()))
      return "";
  }
  bool plus = !phone.empty() && phone.find('+') != std::string::npos;
  if (!plus && digits.size() == 10) return "+1" + digits;
  if (digits.size() < 8 || digits.size() > 15) return "";
  return "+" + digits;
}

asio::awaitable<void> EnqueueBooked(RequestContext& ctx, const std::string& appointment_id) {
  std::string kind = "appointment-booked";
  co_await ctx.Write(kEnqueueOne, db::P(kind, appointment_id), true);
}

asio::awaitable<http::Response> ListNotifications(RequestContext& ctx) {
  auto& rec = ctx.Audit("search", "Notification");
  Authenticate(ctx);
  if (ctx.claims->role != "patient") {
    ctx.AuditOutcome("denied", "only patients list their notifications");
    throw Forbidden("Only a patient can list their notifications here.");
  }
  const std::string& me = ctx.claims->patient_id;
  rec.patient_id = me;
  auto r = co_await ctx.Read(kByPatient, db::P(me));
  json::array out;
  for (int i = 0; i < r.rows(); ++i) {
    json::object o{{"id", r.str(i, 0)},      {"kind", r.str(i, 1)},
                   {"status", r.str(i, 2)},  {"attempts", r.get_int(i, 4)},
                   {"subject", r.str(i, 5)}, {"created", r.str(i, 6)}};
    o["channel_used"] = r.null(i, 3) ? json::value(nullptr) : json::value(r.str(i, 3));
    o["sent_at"] = r.null(i, 7) ? json::value(nullptr) : json::value(r.str(i, 7));
    out.push_back(std::move(o));
  }
  rec.outcome = "success";
  auto resp = fhir::Json(200, json::object{{"notifications", std::move(out)}});
  resp.content_type = "application/json";
  co_return resp;
}

asio::awaitable<void> NotificationWorker(Shard& shard, Services& svc,
                                         const std::atomic<bool>& stop) {
  asio::steady_timer timer(shard.executor);
  bool warned = false;
  auto next_sweep = std::chrono::steady_clock::now();
  const std::string booked = "appointment-booked", reminder = "appointment-reminder";
  const bool can_send = svc.deps && (svc.deps->Find("smtp") || svc.deps->Find("sms"));
  while (!stop.load()) {
    http::Request req;
    // Background work with the medium tier's pool and deadline (like the job worker),
    // so that it never takes the high tier's connections from patients.
    auto ctx = RequestContext::Background(
        req, svc, shard, Tier::kMedium, "notifications.worker",
        std::chrono::milliseconds(svc.config.limits(Tier::kMedium).deadline_ms));
    try {
      if (std::chrono::steady_clock::now() >= next_sweep) {
        auto rem = co_await ctx.Write(kSweepReminders, db::P(reminder), true);
        auto bk = co_await ctx.Write(kSweepBooked, db::P(booked), true);
        if (rem.affected() + bk.affected() > 0)
          log::Info("notifications: enqueued {} reminder(s), {} missed booking notice(s)",
                    rem.affected(), bk.affected());
        next_sweep = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      }
      co_await ctx.Write(kDropCancelled, db::P(), true);
      // A node with no channel to send on claims nothing: each claim spends an attempt and
      // holds the notification for a minute (nodes share the queue).
      if (!can_send) {
        timer.expires_after(std::chrono::milliseconds(svc.config.notify_poll_ms));
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      auto due = co_await ctx.Write(kClaimDue, db::P(svc.config.node_id, 10));
      for (int i = 0; i < due.rows() && !stop.load(); ++i) {
        ctx.deadline = Deadline::After(
            std::chrono::milliseconds(svc.config.limits(Tier::kMedium).deadline_ms));
        Claimed n{due.str(i, 0), due.str(i, 1), due.str(i, 2),      due.str(i, 3),
                  due.str(i, 4), due.str(i, 5), due.get_bool(i, 6), due.str(i, 7)};
        bool sent = co_await Deliver(ctx, n);
        if (sent) log::Info("notification {} sent", n.id);
      }
      warned = false;
    } catch (const std::exception& e) {
      if (!warned) log::Warn("notification worker: {}", e.what());
      warned = true;
    }
    timer.expires_after(std::chrono::milliseconds(svc.config.notify_poll_ms));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace continuum::portal::high
