#include "portal/session_api.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

#include "auth/password.hpp"
#include "auth/session_cache.hpp"
#include "auth/throttle.hpp"
#include "auth/totp.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "fhir/fhir.hpp"
#include "portal/access.hpp"

namespace continuum::portal {
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

const db::Query kAccountByName{
    "account_by_username",
    "SELECT id, password_hash, role, patient_id, practitioner_id, totp_secret, failed_attempts, "
    "locked_until > now(), to_char(locked_until AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM account WHERE username = $1",
    db::Access::kRead};
// A failed attempt; the account locks once failures reach the limit. Failures from
// before an expired lock do not count again.
const db::Query kLoginFailed{
    "account_login_failed",
    "UPDATE account a SET failed_attempts = f.n, locked_until = CASE WHEN f.n >= $2 THEN now() + "
    "make_interval(secs => $3) ELSE NULL END FROM (SELECT id, CASE WHEN locked_until IS NOT NULL "
    "AND locked_until <= now() THEN 1 ELSE failed_attempts + 1 END AS n FROM account WHERE id = "
    "$1) f WHERE a.id = f.id RETURNING a.locked_until > now(), to_char(a.locked_until AT TIME "
    "ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
    db::Access::kWrite, db::DataClass::kUser};
const db::Query kLoginSucceeded{
    "account_login_succeeded",
    "UPDATE account SET failed_attempts = 0, locked_until = NULL WHERE id = $1 AND "
    "(failed_attempts <> 0 OR locked_until IS NOT NULL)",
    db::Access::kWrite, db::DataClass::kUser};
const db::Query kInsertSession{
    "session_insert",
    "INSERT INTO session (id, account_id, expires_at) VALUES ($1, $2, to_timestamp($3))",
    db::Access::kWrite, db::DataClass::kUser};
const db::Query kRevokeSession{
    "session_revoke", "UPDATE session SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
    db::Access::kWrite, db::DataClass::kUser};

// A valid Argon2id hash of a random password: verifying against it makes an unknown
// username cost the same time as a known one.
const std::string& DummyHash() {
  static const std::string h = auth::HashPassword("continuum-dummy-password-for-timing");
  return h;
}

// Runs f() on the CPU pool and resumes the caller on its shard. Not a coroutine
// itself (GCC 12 mishandles by-value lambdas in coroutine frames).
template <typename F>
auto OnCpuPool(RequestContext& ctx, F f) {
  using R = decltype(f());
  asio::any_io_executor ex = ctx.shard.executor;
  asio::thread_pool* pool = ctx.svc.cpu_pool;
  return asio::async_initiate<decltype(asio::use_awaitable), void(std::exception_ptr, R)>(
      [pool, ex](auto handler, F fn) {
        asio::post(*pool, [fn = std::move(fn), ex, h = std::move(handler)]() mutable {
          std::exception_ptr e;
          R r{};
          try {
            r = fn();
          } catch (...) {
            e = std::current_exception();
          }
          asio::post(ex, [h = std::move(h), e, r]() mutable { std::move(h)(e, r); });
        });
      },
      asio::use_awaitable, std::move(f));
}

}  // namespace

asio::awaitable<http::Response> Login(RequestContext& ctx) {
  auto& rec = ctx.Audit("login");
  rec.purpose_of_use = "PATRQT";
  json::object body;
  try {
    body = fhir::ParseBody(ctx.req, {"username", "password", "totp"}, false);
  } catch (const Error&) {
    rec.outcome = "failure";
    rec.detail = "malformed login request";
    throw;
  }
  auto str = [&](std::string_view k, bool required) -> std::string {
    auto* v = body.if_contains(k);
    if (!v) {
      if (!required) return {};
      rec.outcome = "failure";
      rec.detail = "malformed login request";
      throw BadRequest("The login request needs '" + std::string(k) + "' (a string).", "required");
    }
    if (!v->is_string()) {
      rec.outcome = "failure";
      rec.detail = "malformed login request";
      throw BadRequest("'" + std::string(k) + "' must be a string.");
    }
    return std::string(v->as_string());
  };
  std::string username = str("username", true), password = str("password", true),
              totp = str("totp", false);
  if (username.empty() || username.size() > 128 || password.size() > 1024) {
    rec.outcome = "failure";
    rec.detail = "malformed login request";
    throw BadRequest("username must be 1-128 characters and password at most 1024.");
  }
  rec.actor = username;
  if (int wait =
          ctx.svc.throttle->Acquire(ctx.req.client_address, std::chrono::steady_clock::now())) {
    rec.outcome = "denied";
    rec.detail = "throttled";
    throw TooManyRequests("Too many login attempts from your address. Try again in " +
                              std::to_string(wait) + " seconds.",
                          wait);
  }
  auto acct = co_await ctx.Read(kAccountByName, db::P(username));
  const Config& cfg = ctx.svc.config;
  if (acct.rows() == 0) {
    auto dummy = [] { return auth::VerifyPassword(DummyHash(), "x"); };
    co_await OnCpuPool(ctx, dummy);
    rec.outcome = "failure";
    rec.detail = "unknown username";
    throw Unauthorized("Wrong username or password.");
  }
  std::string account_id(acct.get(0, 0));
  std::string role(acct.get(0, 2));
  rec.role = role;
  if (acct.get_bool(0, 7)) {
    rec.outcome = "denied";
    rec.detail = "account locked";
    throw Error(423, "lock-error",
                "This account is locked after repeated failed logins. Try again after " +
                    acct.str(0, 8) + " or ask your administrator to unlock it.");
  }
  std::string hash(acct.get(0, 1));
  // Named, not a temporary: GCC 12 miscompiles temporaries that span a co_await.
  auto verify = [hash, password] { return auth::VerifyPassword(hash, password); };
  bool ok = co_await OnCpuPool(ctx, verify);
  if (ok && !acct.null(0, 5)) {
    // Second factor for accounts that enrolled one.
    if (totp.empty()) {
      rec.outcome = "failure";
      rec.detail = "one-time code missing";
      throw Unauthorized("This account requires a one-time code: send it as 'totp'.");
    }
    ok = auth::VerifyTotp(acct.get(0, 5), totp, UnixNow());
  }
  if (!ok) {
    auto f =
        co_await ctx.Write(kLoginFailed, db::P(account_id, cfg.max_login_failures, cfg.lockout_s));
    rec.outcome = "failure";
    rec.detail = "wrong password or one-time code";
    if (f.rows() > 0 && f.get_bool(0, 0)) {
      rec.detail += "; account locked";
      throw Error(423, "lock-error",
                  "Wrong username or password. The account is now locked after " +
                      std::to_string(cfg.max_login_failures) +
                      " failed attempts; try again after " + f.str(0, 1) + ".");
    }
    throw Unauthorized("Wrong username or password.");
  }
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
  http::Response r;
  r.status = 200;
  r.content_type = "application/json";
  r.body = json::serialize(out);
  r.set_header("Cache-Control", "no-store");
  r.set_header("Pragma", "no-cache");
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
