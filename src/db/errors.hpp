// SQLSTATE classes mapped to typed errors (continuum::Error subclasses, so the HTTP
// layer turns them into the right status without knowing about PostgreSQL). Messages
// never echo the server's text, which can contain row values (PHI); the SQLSTATE and
// constraint name are kept for logs and callers.
#pragma once

#include <string>

#include "core/error.hpp"

namespace continuum::db {

// Connection-level trouble (class 08, 57P0x, 53xxx, read-only standby, ...): retryable.
struct ConnectionError : Unavailable {
  explicit ConnectionError(const std::string& m) : Unavailable(m, 1) {}
};
// 25006: the server is (now) a read-only standby, e.g. a demoted primary. The
// statement did not run, so it is safe to send again once a primary is found.
struct ReadOnlyServer : ConnectionError {
  explicit ReadOnlyServer(const std::string& m) : ConnectionError(m) {}
};
// A clinical commit no synchronous standby was seen to hold within the deadline (the
// write may stand on the primary alone). Not a ConnectionError: never replayed blindly.
struct SyncStandbyUnavailable : Unavailable {
  explicit SyncStandbyUnavailable(const std::string& m) : Unavailable(m, 2) {}
};
// statement_timeout or the request deadline cancelled the query (57014).
struct QueryCanceled : DeadlineExceeded {
  explicit QueryCanceled(const std::string& m) : DeadlineExceeded(m) {}
};
// 40001 / 40P01: the transaction may be retried.
struct SerializationFailure : Unavailable {
  explicit SerializationFailure(const std::string& m) : Unavailable(m, 1) {}
};
// 55P03: a lock that was asked for without waiting is held by another session.
struct LockNotAvailable : Unavailable {
  explicit LockNotAvailable(const std::string& m) : Unavailable(m, 1) {}
};
struct ConstraintViolation : Conflict {
  ConstraintViolation(const std::string& m, std::string sqlstate, std::string constraint)
      : Conflict(m), sqlstate(std::move(sqlstate)), constraint(std::move(constraint)) {}
  std::string sqlstate;
  std::string constraint;
};
struct UniqueViolation : ConstraintViolation {
  using ConstraintViolation::ConstraintViolation;
};
struct CheckViolation : ConstraintViolation {
  using ConstraintViolation::ConstraintViolation;
};
struct ForeignKeyViolation : ConstraintViolation {
  using ConstraintViolation::ConstraintViolation;
};
// Class 22: a value the database could not accept.
struct DataException : BadRequest {
  explicit DataException(const std::string& m) : BadRequest(m) {}
};
// Anything else (a bug: syntax error, undefined column, ...).
struct DatabaseError : Error {
  DatabaseError(const std::string& m, std::string sqlstate)
      : Error(500, "exception", m), sqlstate(std::move(sqlstate)) {}
  std::string sqlstate;
};

// Throws the typed error for `sqlstate`. `query` is the query name (for logs).
[[noreturn]] void ThrowForSqlState(const std::string& sqlstate, const std::string& constraint,
                                   const std::string& server_message, const std::string& query);

}  // namespace continuum::db
