#include "portal/session_api.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>

#include "auth/cpu_queue.hpp"
#include "auth/password.hpp"
#include "auth/session_cache.hpp"
#include "auth/throttle.hpp"
#include "auth/totp.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "portal/access.hpp"
#include "portal/bodies.hpp"

namespace continuum::portal {
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// A JSON answer carrying a credential (a token, a second factor's secret): never cached.
http::Response NoStoreJson(int status, const json::object& out) {
  http::Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = json::serialize(out);
  r.set_header("Cache-Control", "no-store");
  r.set_header("Pragma", "no-cache");
  return r;
}

const db::Query kAccountByName{
    "account_by_username",
    "SELECT id, password_hash, role, patient_id, practitioner_id, totp_secret, failed_attempts, "
    "locked_until > now(), to_char(locked_until AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), totp_last_step FROM account WHERE username = $1",
    db::Access::kRead};
// A failed attempt, counted towards the account lock (at $2 failures, for $3 seconds).
// Failures from before an expired lock do not count again, and failures while the
// account is locked do not extend the lock (else a guesser could keep it locked).
const db::Query kLoginFailed{
    "account_login_failed",
    "UPDATE account a SET failed_attempts = f.n, locked_until = CASE WHEN f.n >= $2 THEN now() + "
    "make_interval(secs => $3) ELSE NULL END FROM (SELECT id, CASE WHEN locked_until IS NOT NULL "
    "AND locked_until <= now() THEN 1 ELSE failed_attempts + 1 END AS n FROM account WHERE id = "
    "$1 AND (locked_until IS NULL OR locked_until <= now())) f WHERE a.id = f.id",
    db::Access::kWrite, db::DataClass::kUser};
const db::Query kLoginSucceeded{
    "account_login_succeeded",
    "UPDATE account SET failed_attempts = 0, locked_until = NULL WHERE id = $1 AND "
    "(failed_attempts <> 0 OR locked_until IS NOT NULL)",
    db::Access::kWrite, db::DataClass::kUser};
// Takes TOTP step $2 for the account: a code is accepted once (RFC 6238 section 5.2),
// also when two logins with it race (the row lock orders them; the second finds the
// step taken and updates nothing).
const db::Query kTotpClaim{"account_totp_claim",
                           "UPDATE account SET totp_last_step = $2 WHERE id = $1 AND "
                           "(totp_last_step IS NULL OR totp_last_step < $2) RETURNING 1",
                           db::Access::kWrite, db::DataClass::kUser};
const db::Query kInsertSession{
    "session_insert",
    "INSERT INTO session (id, account_id, expires_at) VALUES ($1, $2, to_timestamp($3))",
    db::Access::kWrite, db::DataClass::kUser};
const db::Query kRevokeSession{
    "session_revoke", "UPDATE session SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
    db::Access::kWrite, db::DataClass::kUser};
// Enrolment of a second factor.
const db::Query kTotpState{"account_totp_state",
                           "SELECT password_hash, totp_secret IS NOT NULL, totp_pending_secret, "
                           "totp_pending_until > now() FROM account WHERE id = $1",
                           db::Access::kRead};
const db::Query kTotpStart{"account_totp_start",
                           "UPDATE account SET totp_pending_secret = $2, totp_pending_until = "
                           "now() + make_interval(secs => $3) WHERE id = $1 AND totp_secret IS "
                           "NULL RETURNING 1",
                           db::Access::kWrite, db::DataClass::kUser};
const db::Query kTotpConfirm{
    "account_totp_confirm",
    "UPDATE account SET totp_secret = totp_pending_secret, totp_last_step = $2, "
    "totp_pending_secret = NULL, totp_pending_until = NULL WHERE id = $1 AND totp_secret IS NULL "
    "AND totp_pending_secret = $3 AND totp_pending_until > now() RETURNING 1",
    db::Access::kWrite, db::DataClass::kUser};

constexpr int kTotpEnrolmentSeconds = 600;
// Every failed login gets this answer, whatever failed: an unknown user, a wrong
// password, a missing, wrong or replayed one-time code, a locked account with a wrong
// password. Only a correct password learns that the account is locked (423).
constexpr const char* kLoginFailedMessage =
    "Wrong username, password or one-time code (accounts with a second factor send it as "
    "'totp').";

// A valid Argon2id hash of a random password: verifying against it makes an unknown
// username cost the same time as a known one.
const std::string& DummyHash() {
  static const std::string h = auth::HashPassword("continuum-dummy-password-for-timing");
  return h;
}

enum class Hashed { kMatch, kNoMatch, kBusy };

// Runs the password check f() on the login bulkhead's hashing queue and resumes the
// caller on its shard. kBusy, without hashing, when the queue is full or the request's
// deadline would pass before a typical hash could finish (checked on enqueue and again
// when the job starts). Not a coroutine itself (GCC 12 mishandles by-value lambdas in
// coroutine frames).
template <typename F>
auto OnLoginCpu(RequestContext& ctx, F f) {
  asio::any_io_executor ex = ctx.shard.executor;
  auth::CpuQueue* q = ctx.svc.login_cpu;
  Deadline deadline = ctx.deadline;
  return asio::async_initiate<decltype(asio::use_awaitable), void(std::exception_ptr, Hashed)>(
      [q, ex, deadline](auto handler, F fn) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        // The time a hash needs: the typical one, at least 50 ms, and at most 250 ms, so
        // that a slow machine (hashes slower than the deadline) still tries rather than
        // refusing every login.
        auto budget = [q] {
          return std::clamp<std::chrono::milliseconds>(
              std::chrono::duration_cast<std::chrono::milliseconds>(q->typical_job()),
              std::chrono::milliseconds(50), std::chrono::milliseconds(250));
        };
        auto finish = [ex, h](std::exception_ptr e, Hashed r) {
          asio::post(ex, [h, e, r]() mutable { std::move (*h)(e, r); });
        };
        if (deadline.left() < budget() ||
            !q->TryPost([fn = std::move(fn), deadline, budget, finish]() mutable {
              std::exception_ptr e;
              Hashed r = Hashed::kBusy;
              try {
                if (deadline.left() >= budget()) r = fn() ? Hashed::kMatch : Hashed::kNoMatch;
              } catch (...) {
                e = std::current_exception();
              }
              finish(e, r);
            })) {
          finish(nullptr, Hashed::kBusy);
        }
      },
      asio::use_awaitable, std::move(f));
}

Unavailable LoginBusy() {
  return Unavailable(
      "Logging in is busy right now; please retry in a moment. Signed-in users are not "
      "affected.",
      2);
}

// RFC 3986 unreserved characters pass, everything else is percent-encoded.
std::string UriEscape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace

asio::awaitable<http::Response> Login(RequestContext& ctx) {
  auto& rec = ctx.Audit("login");
  rec.purpose_of_use = "PATRQT";
  LoginBody body;
  try {
    body = ParseLoginBody(ctx.req);
  } catch (const Error&) {
    rec.outcome = "failure";
    rec.detail = "malformed login request";
    throw;
  }
  std::string username = std::move(body.username), password = std::move(body.password),
              totp = std::move(body.totp);
  rec.actor = username;
  // Throttling (src/auth/README.md): per client (an IPv6 client by its /64), then per
  // client and account. Both before any database or hashing work.
  const std::string client = auth::ThrottleKey(ctx.req.client_address);
  if (int wait = ctx.svc.throttle->Acquire(client, std::chrono::steady_clock::now())) {
    rec.outcome = "denied";
    rec.detail = "throttled";
    throw TooManyRequests("Too many login attempts from your address. Try again in " +
                              std::to_string(wait) + " seconds.",
                          wait);
  }
  const std::string pair_key = client + '\n' + username;
  if (int wait = ctx.svc.login_failures->Blocked(pair_key, std::chrono::steady_clock::now())) {
    rec.outcome = "denied";
    rec.detail = "throttled: repeated failures from this client for this username";
    throw TooManyRequests(
        "Too many failed logins for this username from your address. Try again in " +
            std::to_string(wait) + " seconds.",
        wait);
  }
  // The hashing queue already full: busy now, before the database read (a flood's
  // refused attempts cost the records nothing but their audit record).
  if (ctx.svc.login_cpu && ctx.svc.login_cpu->full()) {
    rec.outcome = "error";
    rec.detail = "login busy (hashing queue full)";
    throw LoginBusy();
  }
  auto acct = co_await ctx.Read(kAccountByName, db::P(username));
  const Config& cfg = ctx.svc.config;
  const bool known = acct.rows() > 0;
  std::string account_id = known ? acct.str(0, 0) : std::string();
  std::string role = known ? acct.str(0, 2) : std::string();
  if (known) rec.role = role;
  // The password is checked first, whatever the account's state: a lock is revealed
  // only to someone who knows the password.
  std::string hash = known ? acct.str(0, 1) : std::string();
  // Named, not a temporary: GCC 12 miscompiles temporaries that span a co_await.
  auto verify = [hash, password, known] {
    bool match = auth::VerifyPassword(known ? hash : DummyHash(), password);
    return known && match;
  };
  Hashed hashed = co_await OnLoginCpu(ctx, verify);
  if (hashed == Hashed::kBusy) {
    rec.outcome = "error";
    rec.detail = "login busy (hashing queue full or deadline too close)";
    throw LoginBusy();
  }
  bool ok = hashed == Hashed::kMatch;
  std::string why = known ? "wrong password" : "unknown username";
  const bool has_totp = known && !acct.null(0, 5);
  const bool locked = known && acct.get_bool(0, 7);
  if (ok && has_totp) {
    std::optional<int64_t> step;
    if (!totp.empty()) step = auth::MatchTotpStep(acct.get(0, 5), totp, UnixNow());
    if (!step) {
      ok = false;
      why = totp.empty() ? "one-time code missing" : "wrong one-time code";
    } else if (!acct.null(0, 9) && *step <= acct.get_int(0, 9)) {
      ok = false;
      why = "one-time code replayed";
    } else {
      auto claim = co_await ctx.Write(kTotpClaim, db::P(account_id, *step));
      if (claim.rows() == 0) {
        ok = false;
        why = "one-time code replayed";
      }
    }
  }
  if (!ok) {
    ctx.svc.login_failures->Failed(pair_key, std::chrono::steady_clock::now());
    if (known && !locked)
      co_await ctx.Write(kLoginFailed,
                         db::P(account_id, cfg.account_lockout_failures, cfg.lockout_s));
    rec.outcome = "failure";
    rec.detail = why + (locked ? "; account locked" : "");
    throw Unauthorized(kLoginFailedMessage);
  }
  // A locked account: the password was right. With a second factor, the right code
  // too proves the owner, who passes the lock (so no one can lock a provider out); the
  // lock stops password guessing on accounts without one.
  if (locked && !has_totp) {
    rec.outcome = "denied";
    rec.detail = "account locked";
    throw Error(423, "lock-error",
                "This account is locked after repeated failed logins. Try again after " +
                    acct.str(0, 8) + " or ask your administrator to unlock it.");
  }
  ctx.svc.login_failures->Succeeded(pair_key);
  auth::Claims c;
  c.sid = auth::RandomHex(16);
  c.account_id = std::stoll(account_id);
  c.username = username;
  c.role = role;
  if (!acct.null(0, 3)) c.patient_id = acct.str(0, 3);
  if (!acct.null(0, 4)) c.practitioner_id = acct.str(0, 4);
  c.iat = UnixNow();
  c.exp = c.iat + cfg.session_absolute_s;
  std::vector<db::Statement> batch;
  batch.push_back({&kLoginSucceeded, {account_id}});
  batch.push_back({&kInsertSession, {c.sid, account_id, c.exp}});
  co_await ctx.WriteBatch(std::move(batch));
  ctx.svc.sessions->Touch(c.sid, c.iat, c.iat);
  json::object out{{"access_token", ctx.svc.signer->Sign(c)},
                   {"token_type", "Bearer"},
                   {"expires_in", cfg.session_absolute_s},
                   {"idle_timeout", cfg.session_idle_s}};
  if (role == "patient") {
    out["patient"] = c.patient_id;
    out["scope"] = "openid patient/*.read";
  } else if (role == "provider") {
    out["practitioner"] = c.practitioner_id;
    out["scope"] = "openid user/*.*";
  } else {
    out["scope"] = "openid user/AuditEvent.read";
  }
  rec.role = role;
  rec.outcome = "success";
  if (locked) rec.detail = "account lock passed with the second factor";
  co_return NoStoreJson(200, out);
}

asio::awaitable<http::Response> EnrolTotp(RequestContext& ctx) {
  auto& rec = ctx.Audit("totp-enrol");  // the route table's action (routes.cpp)
  Authenticate(ctx);
  std::string password;
  try {
    password = ParseTotpEnrolBody(ctx.req);
  } catch (const Error&) {
    rec.outcome = "failure";
    rec.detail = "malformed request";
    throw;
  }
  std::string account_id = std::to_string(ctx.claims->account_id);
  const std::string pair_key =
      auth::ThrottleKey(ctx.req.client_address) + '\n' + ctx.claims->username;
  if (int wait = ctx.svc.login_failures->Blocked(pair_key, std::chrono::steady_clock::now())) {
    rec.outcome = "denied";
    rec.detail = "throttled";
    throw TooManyRequests(
        "Too many failed attempts. Try again in " + std::to_string(wait) + " seconds.", wait);
  }
  auto st = co_await ctx.Read(kTotpState, db::P(account_id));
  if (st.rows() == 0) {
    rec.outcome = "failure";
    rec.detail = "account gone";
    throw Unauthorized("This session's account no longer exists.");
  }
  if (st.get_bool(0, 1)) {
    rec.outcome = "failure";
    rec.detail = "already enabled";
    throw Conflict(
        "A second factor is already enabled for this account; an administrator can reset it.");
  }
  std::string hash = st.str(0, 0);
  auto verify = [hash, password] { return auth::VerifyPassword(hash, password); };
  Hashed hashed = co_await OnLoginCpu(ctx, verify);
  if (hashed == Hashed::kBusy) {
    rec.outcome = "error";
    rec.detail = "busy";
    throw LoginBusy();
  }
  if (hashed != Hashed::kMatch) {
    ctx.svc.login_failures->Failed(pair_key, std::chrono::steady_clock::now());
    rec.outcome = "denied";
    rec.detail = "wrong password";
    throw Forbidden("The password is wrong.");
  }
  std::string secret = auth::NewTotpSecret();
  auto started = co_await ctx.Write(kTotpStart, db::P(account_id, secret, kTotpEnrolmentSeconds));
  if (started.rows() == 0) {
    rec.outcome = "failure";
    rec.detail = "already enabled";
    throw Conflict("A second factor is already enabled for this account.");
  }
  std::string uri = "otpauth://totp/Continuum:" + UriEscape(ctx.claims->username) +
                    "?secret=" + secret + "&issuer=Continuum&algorithm=SHA1&digits=6&period=30";
  json::object out{{"otpauth_uri", uri},
                   {"secret", secret},
                   {"expires_in", kTotpEnrolmentSeconds},
                   {"confirm", "POST /api/v1/session/totp/confirm {\"code\": \"123456\"}"}};
  rec.outcome = "success";
  rec.detail = "enrolment started (not enforced until confirmed)";
  co_return NoStoreJson(201, out);
}

asio::awaitable<http::Response> ConfirmTotp(RequestContext& ctx) {
  auto& rec = ctx.Audit("totp-confirm");
  Authenticate(ctx);
  std::string code;
  try {
    code = ParseTotpConfirmBody(ctx.req);
  } catch (const Error&) {
    rec.outcome = "failure";
    rec.detail = "malformed request";
    throw;
  }
  std::string account_id = std::to_string(ctx.claims->account_id);
  const std::string pair_key =
      auth::ThrottleKey(ctx.req.client_address) + '\n' + ctx.claims->username;
  if (int wait = ctx.svc.login_failures->Blocked(pair_key, std::chrono::steady_clock::now())) {
    rec.outcome = "denied";
    rec.detail = "throttled";
    throw TooManyRequests(
        "Too many failed attempts. Try again in " + std::to_string(wait) + " seconds.", wait);
  }
  auto st = co_await ctx.Read(kTotpState, db::P(account_id));
  if (st.rows() == 0 || st.get_bool(0, 1)) {
    rec.outcome = "failure";
    rec.detail = "already enabled";
    throw Conflict("A second factor is already enabled for this account.");
  }
  if (st.null(0, 2) || !st.get_bool(0, 3)) {
    rec.outcome = "failure";
    rec.detail = "no enrolment in progress";
    throw Conflict(
        "No enrolment is in progress (or it expired): start one with POST "
        "/api/v1/session/totp.");
  }
  std::string pending = st.str(0, 2);
  auto step = auth::MatchTotpStep(pending, code, UnixNow());
  if (!step) {
    ctx.svc.login_failures->Failed(pair_key, std::chrono::steady_clock::now());
    rec.outcome = "failure";
    rec.detail = "wrong one-time code";
    throw BadRequest("The code does not match: enter the 6 digits your app shows now.");
  }
  auto done = co_await ctx.Write(kTotpConfirm, db::P(account_id, *step, pending));
  if (done.rows() == 0) {
    rec.outcome = "failure";
    rec.detail = "enrolment changed meanwhile";
    throw Conflict("The enrolment changed meanwhile; start again.");
  }
  rec.outcome = "success";
  rec.detail = "second factor enabled";
  http::Response r;
  r.status = 200;
  r.content_type = "application/json";
  r.body = json::serialize(json::object{{"totp", "enabled"}});
  r.set_header("Cache-Control", "no-store");
  co_return r;
}

asio::awaitable<http::Response> Logout(RequestContext& ctx) {
  auto& rec = ctx.Audit("logout");
  rec.purpose_of_use = "PATRQT";
  Authenticate(ctx);
  co_await ctx.Write(kRevokeSession, db::P(ctx.claims->sid), /*idempotent=*/true);
  ctx.svc.sessions->Revoke(ctx.claims->sid, ctx.claims->exp);
  rec.outcome = "success";
  http::Response r;
  r.status = 204;
  co_return r;
}

}  // namespace continuum::portal
