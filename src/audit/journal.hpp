// The local audit journal: append-only, hash-chained, group-committed.
//
// Records are written as JSON lines to segment files under `dir`. A single writer
// thread batches every record queued while the previous fdatasync ran, writes the
// batch and syncs once (group commit). Append() completes only after the records are
// durable, so a response carrying PHI can wait for its audit record before it is
// written to the socket. Each line carries seq, prev_hash and hash; hash is the
// SHA-256 of prev_hash and the line's canonical content, so any gap, reordering or
// modification is detected by `continuum audit verify`. A node's first record links to
// SHA-256("genesis:<node_id>"). The line format is specified in audit/internal/format.hpp.
//
// Epochs: when `database_url` is set, opening checks what the database already holds for
// this node (audit_event rows, signed heads). A journal folder that is behind it (lost,
// emptied, or replaced by an older copy) would restart at a seq already shipped, and its
// new records would collide with the shipped rows (ON CONFLICT DO NOTHING would drop
// them). Instead the journal starts a new epoch: a new segment whose first record has
// seq = (highest known seq) + 1 and links to EpochGenesisHash(node, seq); it logs an
// error and stats().epoch_start_seq says so (exported as a metric). A new, empty folder
// whose database cannot be asked is refused (the constructor throws).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "audit/record.hpp"
#include "core/secret.hpp"

namespace continuum::audit {

struct JournalOptions {
  std::string dir;
  std::string node_id;
  std::string region;
  bool enabled = true;  // false: Append completes at once and writes nothing (benchmarks)
  std::size_t segment_bytes = 64 << 20;
  // The audit database (empty: no check at open, e.g. unit tests and benchmarks).
  Secret database_url;
};

struct JournalStats {
  uint64_t records = 0;   // records made durable since start
  uint64_t syncs = 0;     // fdatasync calls
  uint64_t pending = 0;   // records queued, not yet durable
  uint64_t failures = 0;  // failed writes/syncs
  int64_t last_seq = 0;
  int64_t epoch_start_seq = 0;  // > 0: this open started a new epoch at that seq
};

class Journal {
 public:
  // Opens (creating if needed) the journal, recovers its tail (a torn last line left by
  // a crash is cut off) and continues the chain. Throws std::runtime_error on failure.
  explicit Journal(JournalOptions options);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Appends the records (fills recorded_at if empty, region, node_id, seq) and resumes
  // the caller on `ex` once they are durable. Throws std::runtime_error if the disk
  // write or sync failed: the caller must not send the PHI then.
  boost::asio::awaitable<void> Append(boost::asio::any_io_executor ex, std::vector<Record> records);

  // Finishes the pending batch and stops the writer thread.
  void Stop();
  JournalStats stats() const;
  const JournalOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace continuum::audit
