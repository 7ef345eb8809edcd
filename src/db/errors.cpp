#include "db/errors.hpp"

#include "core/log.hpp"

namespace continuum::db {

void ThrowForSqlState(const std::string& st, const std::string& constraint,
                      const std::string& server_message, const std::string& query) {
  auto cls = st.substr(0, 2);
  if (st == "57014")
    throw QueryCanceled("the database query took longer than the request deadline allows");
  if (st == "08P01") {  // protocol violation: our bug, not a lost connection
    log::Error("protocol error in query {}: {}", query, server_message);
    throw DatabaseError("an internal database error occurred", st);
  }
  if (st == "25006")
    throw ReadOnlyServer("the database is switching primaries right now; please retry shortly");
  if (cls == "08" || st == "57P01" || st == "57P02" || st == "57P03" || cls == "53" ||
      st == "25006" || cls == "28" || st == "55000")
    throw ConnectionError("the database is unavailable right now; please retry shortly");
  if (st == "40001" || st == "40P01")
    throw SerializationFailure("a concurrent change conflicted with this request; please retry");
  if (st == "55P03") throw LockNotAvailable(server_message);
  if (st == "23505")
    throw UniqueViolation("a record with the same identity already exists", st, constraint);
  if (st == "23514") throw CheckViolation("the change was refused by a data rule", st, constraint);
  if (st == "23503")
    throw ForeignKeyViolation("a referenced record does not exist", st, constraint);
  if (cls == "22") throw DataException("a value in the request is not acceptable to the database");
  // Server messages of this class describe the statement, not row values.
  log::Error("database error in query {}: SQLSTATE {}: {}", query, st, server_message);
  throw DatabaseError("an internal database error occurred", st);
}

}  // namespace continuum::db
