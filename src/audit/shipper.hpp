// Copies journal records into PostgreSQL's append-only audit_event table. Runs on its
// own thread with its own (blocking) libpq connection, so it never touches an I/O
// thread. Inserts are idempotent (ON CONFLICT (node_id, seq) DO NOTHING); progress is
// remembered in the journal folder, and after the database was unreachable it simply
// catches up. Auditing never stops because PostgreSQL is down: the journal is the
// record of truth until shipped.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/secret.hpp"

namespace continuum::audit {

struct ShipperStats {
  uint64_t shipped = 0;   // records inserted (or found present) since start
  uint64_t backlog = 0;   // journal records not yet shipped
  uint64_t failures = 0;  // failed shipping rounds
  bool database_reachable = false;
};

class Shipper {
 public:
  Shipper(std::string journal_dir, Secret database_url, int interval_ms);
  ~Shipper();
  void Start();
  void Stop();
  // Ships everything durable in the journal now; returns records shipped. Throws on
  // database errors. Used by tests and by `continuum audit ship`.
  uint64_t ShipOnce();
  ShipperStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace continuum::audit
