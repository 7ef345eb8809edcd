#include "audit/internal/pg.hpp"

#include <optional>
#include <vector>

#include "db/hosts.hpp"

namespace continuum::audit::internal {
namespace {
std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}
}  // namespace

PgConn::PgConn(const Secret& url, const char* application_name, int statement_timeout_ms) {
  // Later keywords override earlier ones, and the expanded dbname (the URL) comes after
  // these defaults, so the URL may override them (only a retry's hosts come after it).
  const std::string options = "-c statement_timeout=" + std::to_string(statement_timeout_ms);
  // tcp_user_timeout: a statement sent into a network partition fails after 2.5 s instead
  // of the kernel's retransmission timeout (minutes): see db::kTcpUserTimeoutMs.
  // A multi-host URL's hosts after one where libpq stopped (e.g. it accepted and closed: a
  // proxy in front of a stopped database) are tried here, as db::Connection::Connect does
  // (db/hosts.hpp says after which failures).
  const auto hosts = db::ParseHosts(url.reveal());
  std::optional<db::HostList> rest;
  std::string errors;
  for (;;) {
    std::vector<const char*> keys = {"connect_timeout",
                                     "tcp_user_timeout",
                                     "keepalives",
                                     "keepalives_idle",
                                     "keepalives_interval",
                                     "keepalives_count",
                                     "application_name",
                                     "options",
                                     "dbname"};
    std::vector<const char*> values = {
        "2", "2500", "1", "5", "2", "3", application_name, options.c_str(), url.reveal().c_str()};
    std::array<std::string, 3> overrides;  // alive until the connect call has copied them
    if (rest) rest->AppendKeywords(keys, values, overrides);
    keys.push_back(nullptr);
    values.push_back(nullptr);
    conn_ = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
    if (conn_ && PQstatus(conn_) == CONNECTION_OK) return;
    std::string msg = conn_ ? Trim(PQerrorMessage(conn_)) : "out of memory";
    errors += (errors.empty() ? "" : "\n") + msg;
    auto next = hosts && conn_ ? db::HostsAfter(rest ? *rest : *hosts, conn_) : std::nullopt;
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    if (!next) throw PgError("cannot connect to the audit database: " + errors, "");
    rest = std::move(next);
  }
}

PgConn::~PgConn() {
  if (conn_) PQfinish(conn_);
}

bool PgConn::ok() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }

PgResult PgConn::Exec(const char* sql, const std::vector<const char*>& params) {
  PgResult r(params.empty() ? PQexec(conn_, sql)
                            : PQexecParams(conn_, sql, static_cast<int>(params.size()), nullptr,
                                           params.data(), nullptr, nullptr, 0));
  const auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return r;
  const char* state = r ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
  // Only the primary message: DETAIL lines may quote row values (PHI).
  const char* primary = r ? PQresultErrorField(r.get(), PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  std::string msg = primary ? Trim(primary) : std::string();
  if (msg.empty()) msg = Trim(PQerrorMessage(conn_));
  throw PgError("audit database: " + msg, state ? state : "");
}

void PgConn::CopyIn(const char* copy_sql, std::initializer_list<std::string_view> data) {
  PgResult start(PQexec(conn_, copy_sql));
  if (!start || PQresultStatus(start.get()) != PGRES_COPY_IN) {
    const char* state = start ? PQresultErrorField(start.get(), PG_DIAG_SQLSTATE) : nullptr;
    const char* primary =
        start ? PQresultErrorField(start.get(), PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    throw PgError("audit database: " + (primary ? Trim(primary) : Trim(PQerrorMessage(conn_))),
                  state ? state : "");
  }
  for (const auto part : data) {
    if (!part.empty() && PQputCopyData(conn_, part.data(), static_cast<int>(part.size())) != 1)
      throw PgError("audit database: " + Trim(PQerrorMessage(conn_)), "");
  }
  if (PQputCopyEnd(conn_, nullptr) != 1)
    throw PgError("audit database: " + Trim(PQerrorMessage(conn_)), "");
  // The COPY's own result, then the end of results.
  std::string error, sqlstate;
  while (PGresult* raw = PQgetResult(conn_)) {
    PgResult r(raw);
    if (PQresultStatus(raw) != PGRES_COMMAND_OK && error.empty()) {
      const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
      const char* primary = PQresultErrorField(raw, PG_DIAG_MESSAGE_PRIMARY);
      error = primary ? Trim(primary) : Trim(PQerrorMessage(conn_));
      sqlstate = state ? state : "";
    }
  }
  if (!error.empty()) throw PgError("audit database: " + error, sqlstate);
}

}  // namespace continuum::audit::internal
