// A minimal blocking libpq wrapper for the audit shipper and verify, which run on their
// own threads (or in the CLI), never on an I/O thread.
#pragma once

#include <libpq-fe.h>

#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/secret.hpp"

namespace continuum::audit::internal {

class PgError : public std::runtime_error {
 public:
  PgError(const std::string& message, std::string sqlstate)
      : std::runtime_error(message), sqlstate_(std::move(sqlstate)) {}
  // Empty when the error did not come from the server (connection failures).
  [[nodiscard]] const std::string& sqlstate() const { return sqlstate_; }

 private:
  std::string sqlstate_;
};

struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

class PgConn {
 public:
  // connect_timeout=2 unless the URL sets its own; TCP keepalives so a dead peer is
  // noticed; statement_timeout bounds every statement. Throws PgError.
  PgConn(const Secret& url, const char* application_name, int statement_timeout_ms);
  ~PgConn();
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  [[nodiscard]] bool ok() const;
  // Runs `sql` (may hold several statements when there are no params). Throws PgError.
  PgResult Exec(const char* sql, const std::vector<const char*>& params = {});
  // Runs a COPY ... FROM STDIN statement with `data`, sent part after part (the format is
  // the statement's). Throws PgError.
  void CopyIn(const char* copy_sql, std::initializer_list<std::string_view> data);

 private:
  PGconn* conn_ = nullptr;
};

}  // namespace continuum::audit::internal
