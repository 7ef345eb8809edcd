// Copies journal records into PostgreSQL's append-only audit_event table. Runs on its
// own thread with its own (blocking) libpq connection, so it never touches an I/O
// thread. Inserts are idempotent (ON CONFLICT (node_id, seq) DO NOTHING); progress is
// remembered in the journal folder, and after the database was unreachable it simply
// catches up. Auditing never stops because PostgreSQL is down: the journal is the
// record of truth until shipped.
// With a signing key it also signs each in-process journal's durable head (Ed25519) and
// stores it in audit_head, which anchors the chain (README.md, "Anchoring").
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/secret.hpp"

namespace continuum::audit {

struct ShipperOptions {
  std::string journal_dir;
  Secret database_url;
  int interval_ms = 200;
  // Signed heads (README.md, "Anchoring"): the node's Ed25519 key file (created if
  // missing). Empty: no heads are signed. At most one head per node per head_interval_ms,
  // and only when its chain moved; only nodes whose Journal is open in this process.
  std::string signing_key_file;
  int head_interval_ms = 1000;
  // `continuum audit ship` (another process than the node): take each node's journal
  // lock while shipping it, and refuse a journal a live node holds (only that node
  // knows how much of it is durable).
  bool take_journal_locks = false;
};

struct ShipperStats {
  uint64_t shipped = 0;   // records inserted (or found present) since start
  uint64_t backlog = 0;   // journal records not yet shipped
  uint64_t failures = 0;  // failed shipping rounds
  uint64_t heads = 0;     // signed heads stored since start
  bool database_reachable = false;
};

// The hex Ed25519 public key of a node's head-signing key file (created if missing).
std::string SigningPublicKey(const std::string& key_file);

class Shipper {
 public:
  Shipper(std::string journal_dir, Secret database_url, int interval_ms);
  explicit Shipper(ShipperOptions options);
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
