// The files of a journal folder, shared by the journal, the shipper and verify:
//   journal-<node_id>-<NNNNNN>.jsonl   segments, numbered from 1 (at least six digits)
//   journal-<node_id>.lock             held (flock) by the one Journal writing the node
//   shipped-<node_id>.pos              the shipper's progress (segment, offset, seq)
//   torn-<node_id>-<NNNNNN>-<offset>.bin  bytes cut off a segment's tail on recovery,
//                                      kept for forensics, never read again
// A segment may end in NUL bytes: space the writer zero-filled ahead of its writes (so
// that an fdatasync has no file-system metadata to commit; journal.cpp). They are never
// part of a record (records hold no NUL) and every reader skips them (PaddingStart).
// Also the in-process "durable mark": the Journal publishes how far its segments are
// fdatasync'ed, and a Shipper in the same process never reads past it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace continuum::audit::internal {

struct SegmentFile {
  std::string node_id;
  std::uint64_t index = 0;
  std::filesystem::path path;
};

// True if `node_id` is usable in file names: [A-Za-z0-9._-], 1..128 characters.
bool IsValidNodeId(std::string_view node_id);
std::string SegmentFileName(std::string_view node_id, std::uint64_t index);
// Parses a segment file name; nullopt if it is not one.
std::optional<std::pair<std::string, std::uint64_t>> ParseSegmentFileName(std::string_view name);
// Segments under `dir` by node, each node's in index order. Missing dir: empty map.
std::map<std::string, std::vector<SegmentFile>> ListSegments(const std::filesystem::path& dir);

struct ShipPosition {
  std::uint64_t segment = 0;  // segment index; 0 = nothing shipped yet
  std::uint64_t offset = 0;   // bytes of that segment shipped
  long long seq = 0;          // last seq shipped
};
// The position file (version 2) is 8 KiB: two 256-byte slots at offsets 0 and 4096, so in
// different disk blocks. Each slot holds one line,
//   "continuum-audit-shipped v2 gen=<n> segment=<n> offset=<n> seq=<n> sum=<16 hex>\n",
// where sum is FNV-1a 64 of the line's text before " sum=". Save number `gen` goes to slot
// gen % 2: a save overwrites the older slot in place and fdatasyncs it, so it creates no
// file, renames nothing and syncs no directory. A slot torn by a crash fails its sum, and
// the other slot, one save older, is read instead: the batch after it is shipped again,
// which ON CONFLICT makes harmless. Version 1 files (one line, replaced by rename) are
// still read.
std::filesystem::path ShipPositionPath(const std::filesystem::path& dir, std::string_view node);
// nullopt if there is no position file or no valid slot in it.
std::optional<ShipPosition> ReadShipPosition(const std::filesystem::path& dir,
                                             std::string_view node);
// Atomically replaces the position file with a new one holding `pos` as save 0 (write,
// fsync, rename, fsync dir). Throws.
void WriteShipPosition(const std::filesystem::path& dir, std::string_view node,
                       const ShipPosition& pos);

// One node's position file, kept open by the shipper between rounds. Not thread-safe.
class ShipPositionFile {
 public:
  ShipPositionFile(std::filesystem::path dir, std::string node);
  ~ShipPositionFile();
  ShipPositionFile(const ShipPositionFile&) = delete;
  ShipPositionFile& operator=(const ShipPositionFile&) = delete;

  // What the file says (nullopt: none), read through the open file while the path still
  // names it, else opened again: a file removed, moved, replaced or edited behind its back
  // (by WriteShipPosition, or by hand to ship everything again) counts.
  std::optional<ShipPosition> Load();
  // Durable on return: in place in a version 2 file this object has open; else (the first
  // save, a version 1 file, no valid slot, the file removed or replaced) by
  // WriteShipPosition, after which the file is kept open. Throws; the next save starts over.
  void Save(const ShipPosition& pos);

 private:
  bool InPlace() const;  // the path still names the open file
  void Close();

  std::filesystem::path dir_;
  std::string node_;
  int fd_ = -1;
  std::uint64_t gen_ = 0;  // the newest save seen in the open file
};

// How much of a node's journal is durable, as published by an open Journal.
struct DurableMark {
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;
  long long seq = 0;
  std::string hash;           // of record `seq` (what the shipper signs as the chain's head)
  long long epoch_start = 0;  // > 0: the journal started a new epoch at this seq
};
std::string DurableKey(const std::filesystem::path& dir, std::string_view node);
void PublishDurableMark(const std::string& key, const DurableMark& mark);
void RemoveDurableMark(const std::string& key);
std::optional<DurableMark> LookupDurableMark(const std::string& key);

// POSIX helpers; all throw std::runtime_error naming `what` and errno.
[[noreturn]] void ThrowErrno(const std::string& what);
void WriteAll(int fd, std::string_view data, const std::string& what);
// WriteAll at `offset` (pwrite).
void PWriteAll(int fd, std::string_view data, std::uint64_t offset, const std::string& what);
void FsyncDir(const std::filesystem::path& dir);
// Reads [offset, offset + max) of a file (less at its end).
std::string ReadRange(const std::filesystem::path& path, std::uint64_t offset, std::uint64_t max);
std::uint64_t FileSize(const std::filesystem::path& path);
// The length of `data` without its trailing NUL bytes (a segment's zero-filled padding).
std::size_t PaddingStart(std::string_view data);

}  // namespace continuum::audit::internal
