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
// Bounds (a stalled or failing disk must not pile up requests and memory): every Append
// has a deadline (the request's) after which the caller gets an error while its records
// stay queued (they are written if the disk comes back: an extra record is harmless);
// the queue holds at most `max_pending_records` records (queued + being written), beyond
// which Append fails at once. stats() reports the journal's current health: the outcome
// of its last write, and how long the batch being written has been waiting for the disk.
// After a failed write the writer probes the folder (write + fdatasync of a small probe
// file) every `probe_interval_ms` until the disk accepts writes again, so health
// recovers without waiting for traffic (a node taken out of rotation gets none).
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
#include <chrono>
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
  // Zero-filled (and synced) ahead of the writes, this much at a time: overwriting
  // allocated, initialized blocks, an fdatasync only flushes data, where an appending
  // write makes it commit the file system's journal too (bench/README.md: about half the
  // time and CPU of each sync here). 0: append. The padding is trimmed when the segment
  // is left or the journal stops; readers skip it (internal/files.hpp).
  std::size_t preallocate_bytes = 1 << 20;
  int preallocate_retry_ms = 10000;  // after a failed zero-fill (a full disk): append meanwhile
  // Group commit under load: when records arrived while the last batch was being synced,
  // the writer waits this long before taking the next batch, so one fdatasync covers more
  // records (bench/README.md: 3 records per sync without it at ~7,000 audited reads/s, 6-9
  // with 100 us, and 8-15% more throughput at 64 connections). An idle journal writes a
  // record at once. 0: never wait.
  int group_commit_wait_us = 100;
  std::size_t max_pending_records = 20000;  // queued + in the batch being written
  int probe_interval_ms = 1000;             // health probe period after a failed write
  // The audit database (empty: no check at open, e.g. unit tests and benchmarks).
  Secret database_url;
  // A new journal (no journal of this node in dir) must learn from the database where the
  // node's chain ends before it starts one: this long it retries (once a second) while
  // the database cannot be reached, then the open fails.
  int database_wait_ms = 30000;
};

struct JournalStats {
  uint64_t records = 0;   // records made durable since start
  uint64_t syncs = 0;     // fdatasync calls
  uint64_t pending = 0;   // records queued, not yet durable
  uint64_t failures = 0;  // failed writes/syncs
  int64_t last_seq = 0;
  uint64_t refused = 0;         // appends refused: queue full or deadline passed
  bool healthy = true;          // the last write (or health probe) succeeded
  int64_t writing_for_ms = 0;   // age of the batch being written now (0: idle)
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
  // write or sync failed, the queue is full, or `deadline` passed first: the caller must
  // not send the PHI then. `ex` must be a single-threaded executor (an io_context run by
  // one thread, or a strand).
  boost::asio::awaitable<void> Append(boost::asio::any_io_executor ex, std::vector<Record> records,
                                      std::chrono::steady_clock::time_point deadline =
                                          std::chrono::steady_clock::time_point::max());

  // Finishes the pending batch and stops the writer thread.
  void Stop();
  JournalStats stats() const;
  const JournalOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace continuum::audit
