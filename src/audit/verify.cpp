// `continuum audit verify`. Two passes:
//  1. Every journal: each line must parse as a record in canonical form, hash to its
//     `hash`, link by prev_hash to the record before it (seq 1 to the node's genesis),
//     and seqs must run 1, 2, 3 ... in file order. Gaps, duplicates, reordering,
//     modification and damaged lines are each named with node, seq and file:line.
//  2. If a database URL is given, the audit_event table, node by node in seq order
//     (one REPEATABLE READ snapshot): rows must be contiguous, `record` must hash to
//     `hash`, every column must agree with `record`, prev_hash must link, and each row
//     must be byte for byte the journal's line for that seq. A row without a record
//     (the shipper leaves it out when the columns give the line back: README.md, "The
//     table's rows") is checked on the line rebuilt from its columns, and on what that
//     line cannot show (a time off the millisecond, "" for NULL). A journal record missing
//     from the table is fine only past the shipper's position ("not yet shipped").
//  3. Signed heads (audit_head, README.md "Anchoring"): every head's Ed25519 signature
//     must verify with a trusted key of its node (--trusted-keys, else the first key the
//     node stored: trust on first use, said in a note), and the chain (table, else
//     journal) must still hold record `seq` with hash `hash`. A chain cut at its tail, a
//     rewritten chain, or a node whose rows and journal are gone no longer match.
// On live nodes the reads are ordered (see Verify): shipped positions, then the table's
// snapshot, then the journals, so that appends and shipping meanwhile are never reported;
// a last segment read across the writer's copy (a zero hole before its padding) is read
// again until whole (ReadSegment).
// New epochs (audit/journal.hpp): a record whose prev_hash is EpochGenesisHash(node,
// seq) starts an epoch; that is a note, the records it skipped must still be in the table.
// Problem texts never quote field values: they may be PHI.
#include "audit/verify.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "audit/internal/files.hpp"
#include "audit/internal/format.hpp"
#include "audit/internal/heads.hpp"
#include "audit/internal/pg.hpp"

namespace continuum::audit {
namespace fs = std::filesystem;
using namespace internal;

namespace {

// A zero byte before a segment's trailing zeros (its preallocated space).
bool HasHole(std::string_view data) {
  const auto end = PaddingStart(data);
  return data.substr(0, end).find('\0') != std::string_view::npos;
}
constexpr int kLiveRereads = 200;
constexpr std::chrono::milliseconds kLiveRereadPause{10};

struct JournalLine {
  long long seq;
  std::string hash;
  std::string prev_hash;
  std::array<unsigned char, 32> digest;  // SHA-256 of the whole line, to compare with rows
  std::uint32_t file;
  std::uint64_t line_no;
};

struct NodeJournal {
  std::vector<std::string> files;
  std::vector<JournalLine> lines;                     // well-formed lines, in file order
  std::set<long long> damaged;                        // seqs salvaged from unparseable lines
  std::unordered_map<long long, std::size_t> by_seq;  // first occurrence
  long long max_seq = 0;
  long long shipped_seq = 0;

  std::string Where(const JournalLine& l) const {
    return files[l.file] + ":" + std::to_string(l.line_no);
  }
  const JournalLine* Find(long long seq) const {
    auto it = by_seq.find(seq);
    return it == by_seq.end() ? nullptr : &lines[it->second];
  }
};

std::string Range(long long a, long long b) {
  return a == b ? "seq " + std::to_string(a)
                : "seq " + std::to_string(a) + ".." + std::to_string(b);
}

class Verifier {
 public:
  explicit Verifier(VerifyReport& report) : r_(report) {}
  std::optional<std::map<std::string, std::set<std::string>>> trusted_;

  void ReadPositions(const std::string& dir_name);
  void ReadDir(const std::string& dir_name);
  void CheckJournals();
  void CheckTable(PgConn& conn);

 private:
  void Problem(std::string s) { r_.problems.push_back(std::move(s)); }
  void ReadSegment(const std::string& node, NodeJournal& nj, const SegmentFile& seg, bool last);
  void CheckJournal(const std::string& node, NodeJournal& nj);
  void CheckNodeRows(PgConn& conn, const std::string& node);
  void TableGap(const std::string& node, long long a, long long b);
  bool IsEpochStart(const std::string& node, long long seq, const std::string& prev) const {
    return seq > 1 && prev == EpochGenesisHash(node, seq);
  }
  bool heads_table_ = false;
  std::map<std::string, std::string> first_key_;  // node -> key of its first head (TOFU)

  VerifyReport& r_;
  std::map<std::string, NodeJournal> journals_;
  std::map<std::string, long long> positions_;  // node -> shipped seq, read before the snapshot
};

void Verifier::ReadPositions(const std::string& dir_name) {
  const fs::path dir(dir_name);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;  // ReadDir names it
  for (const auto& [node, segs] : ListSegments(dir)) {
    if (auto pos = ReadShipPosition(dir, node)) positions_.emplace(node, pos->seq);
  }
}

void Verifier::ReadDir(const std::string& dir_name) {
  const fs::path dir(dir_name);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    Problem("journal folder " + dir_name + ": not found");
    return;
  }
  for (const auto& [node, segs] : ListSegments(dir)) {
    if (journals_.count(node)) {
      Problem("journal " + node + ": segments in more than one folder (" + dir_name + ")");
      continue;
    }
    NodeJournal& nj = journals_[node];
    if (auto it = positions_.find(node); it != positions_.end()) nj.shipped_seq = it->second;
    for (std::size_t i = 0; i < segs.size(); ++i) {
      const std::uint64_t expected = i == 0 ? segs[0].index : segs[i - 1].index + 1;
      for (std::uint64_t k = expected; k < segs[i].index && k < expected + 100; ++k) {
        Problem("journal " + node + ": segment " + SegmentFileName(node, k) + " is missing");
      }
      ReadSegment(node, nj, segs[i], i + 1 == segs.size());
    }
  }
}

void Verifier::ReadSegment(const std::string& node, NodeJournal& nj, const SegmentFile& seg,
                           bool last) {
  const std::string file = seg.path.filename().string();
  nj.files.push_back(file);
  const auto file_idx = static_cast<std::uint32_t>(nj.files.size() - 1);
  std::string data;
  try {
    data = ReadRange(seg.path, 0, UINT64_MAX);
  } catch (const std::exception& e) {
    Problem("journal " + node + " " + file + ": " + e.what());
    return;
  }
  // A live node's writer may be copying a batch into the last segment's zero-filled space
  // while this reads it, and Linux does not make a read atomic against a write: the read
  // can see a later page written and an earlier one still zero. Such a hole is gone a
  // moment later, so the segment is read again (up to 2 s) until no zero byte precedes
  // its trailing ones. A hole that stays is damage and is reported below.
  for (int i = 0; last && i < kLiveRereads && HasHole(data); ++i) {
    std::this_thread::sleep_for(kLiveRereadPause);
    try {
      data = ReadRange(seg.path, 0, UINT64_MAX);
    } catch (const std::exception& e) {
      Problem("journal " + node + " " + file + ": " + e.what());
      return;
    }
  }
  data.resize(PaddingStart(data));  // the writer's zero-filled space ahead is no record
  std::size_t start = 0;
  std::uint64_t line_no = 0;
  while (start < data.size()) {
    const auto nl = data.find('\n', start);
    ++line_no;
    const std::string where = file + ":" + std::to_string(line_no);
    if (nl == std::string::npos) {
      if (last) {
        r_.notes.push_back("journal " + node + " " + where +
                           ": incomplete last line (a write in progress, or a crash; the "
                           "journal cuts it off when it next opens)");
      } else {
        Problem("journal " + node + " " + where + ": incomplete line at the end of a segment");
      }
      break;
    }
    const std::string_view line(data.data() + start, nl - start);
    start = nl + 1;
    std::string error;
    auto p = ParseLine(line, &error);
    if (!p) {
      const auto seq = SalvageSeq(line);
      if (seq) nj.damaged.insert(*seq);
      Problem("journal " + node + (seq ? " seq " + std::to_string(*seq) : std::string()) + " " +
              where + ": unparseable line: " + error + " (damaged or modified)");
      continue;
    }
    const long long seq = p->record.seq;
    const std::string prefix = "journal " + node + " seq " + std::to_string(seq) + ": ";
    if (p->record.node_id != node) {
      Problem(prefix + "node_id does not match the file's node (" + where + ")");
    }
    if (ComputeHash(*p) != p->hash) {
      Problem(prefix + "hash mismatch (record modified) at " + where);
    } else if (!IsCanonical(line, *p)) {
      Problem(prefix + "line is not in canonical form (modified) at " + where);
    }
    nj.by_seq.emplace(seq, nj.lines.size());
    nj.max_seq = std::max(nj.max_seq, seq);
    nj.lines.push_back(JournalLine{seq, std::move(p->hash), std::move(p->prev_hash), Sha256(line),
                                   file_idx, line_no});
    ++r_.journal_records;
  }
}

void Verifier::CheckJournals() {
  for (auto& [node, nj] : journals_) CheckJournal(node, nj);
}

void Verifier::CheckJournal(const std::string& node, NodeJournal& nj) {
  const std::string genesis = GenesisHash(node);
  // Seqs must be contiguous from 1: report each gap once, as a range.
  std::vector<long long> seqs;
  seqs.reserve(nj.by_seq.size() + nj.damaged.size());
  for (const auto& [seq, idx] : nj.by_seq) seqs.push_back(seq);
  for (long long s : nj.damaged) seqs.push_back(s);
  std::sort(seqs.begin(), seqs.end());
  seqs.erase(std::unique(seqs.begin(), seqs.end()), seqs.end());
  long long expect = 1;
  for (long long s : seqs) {
    if (s > expect) {
      const JournalLine* at = nj.Find(s);
      if (at && IsEpochStart(node, s, at->prev_hash)) {
        r_.notes.push_back("journal " + node + " " + Range(expect, s - 1) +
                           ": not in this journal, which starts a new epoch at seq " +
                           std::to_string(s) +
                           " (its folder was lost or replaced); the table must hold them");
      } else {
        Problem("journal " + node + " " + Range(expect, s - 1) +
                ": missing (gap in the chain: deleted or never written)");
      }
    }
    expect = s + 1;
  }
  // Duplicates.
  std::unordered_map<long long, int> count;
  for (const auto& l : nj.lines) ++count[l.seq];
  for (const auto& l : nj.lines) {
    auto it = count.find(l.seq);
    if (it != count.end() && it->second > 1) {
      Problem("journal " + node + " seq " + std::to_string(l.seq) + ": appears " +
              std::to_string(it->second) + " times");
      count.erase(it);
    }
  }
  for (std::size_t i = 0; i < nj.lines.size(); ++i) {
    const auto& l = nj.lines[i];
    const std::string prefix = "journal " + node + " seq " + std::to_string(l.seq) + ": ";
    // Order: each line follows its predecessor in the file, unless only missing seqs
    // lie between them (a gap, reported above).
    if (i > 0) {
      const long long prev = nj.lines[i - 1].seq;
      bool ok = l.seq == prev + 1;
      if (!ok && l.seq > prev + 1) {
        ok = true;
        for (long long s = prev + 1; s < l.seq && ok && s - prev < 1000000; ++s) {
          ok = !nj.by_seq.count(s);
        }
      }
      if (!ok) {
        Problem(prefix + "out of order (follows seq " + std::to_string(prev) + ") at " +
                nj.Where(l));
      }
    }
    // Chain: prev_hash is the hash of seq - 1 (or the node's genesis for seq 1).
    const JournalLine* before = l.seq > 1 ? nj.Find(l.seq - 1) : nullptr;
    if (IsEpochStart(node, l.seq, l.prev_hash)) {
      // A journal only starts an epoch when it lacks the records before it.
      if (before) {
        Problem(prefix + "starts a new epoch although seq " + std::to_string(l.seq - 1) +
                " is in the journal (chain broken) at " + nj.Where(l));
      }
    } else if (l.seq == 1 && l.prev_hash != genesis) {
      Problem(prefix + "prev_hash is not the genesis of node " + node + " (chain broken) at " +
              nj.Where(l));
    } else if (before && before->hash != l.prev_hash) {
      Problem(prefix + "prev_hash does not match the hash of seq " + std::to_string(l.seq - 1) +
              " (chain broken) at " + nj.Where(l));
    }
  }
}

// Rows a..b of `node` are missing from the table: fine past the shipped position if the
// journal has them, a problem otherwise.
void Verifier::TableGap(const std::string& node, long long a, long long b) {
  auto it = journals_.find(node);
  if (it == journals_.end()) {
    Problem("table " + node + " " + Range(a, b) + ": missing (gap in the table)");
    return;
  }
  const NodeJournal& nj = it->second;
  enum Kind { kShippedMissing, kUnshipped, kNotInJournal };
  auto kind_of = [&](long long s) {
    if (s > nj.max_seq || (!nj.by_seq.count(s) && !nj.damaged.count(s))) return kNotInJournal;
    return s <= nj.shipped_seq ? kShippedMissing : kUnshipped;
  };
  auto flush = [&](Kind k, long long x, long long y) {
    switch (k) {
      case kShippedMissing:
        Problem("table " + node + " " + Range(x, y) +
                ": missing from the table although shipped (deleted?)");
        break;
      case kUnshipped:
        r_.not_yet_shipped += static_cast<std::uint64_t>(y - x + 1);
        r_.notes.push_back("journal " + node + " " + Range(x, y) + ": not yet shipped");
        break;
      case kNotInJournal:
        Problem("table " + node + " " + Range(x, y) + ": missing from the table and the journal");
        break;
    }
  };
  const long long scan_end = std::min(b, nj.max_seq);
  long long run_start = a;
  for (long long s = a; s <= scan_end; ++s) {
    if (s + 1 > scan_end || kind_of(s + 1) != kind_of(s)) {
      flush(kind_of(s), run_start, s);
      run_start = s + 1;
    }
  }
  if (run_start <= b) flush(kNotInJournal, std::max(run_start, a), b);
}

// The text columns of kRowsSql and the record fields they hold, in the line's order.
struct RowColumn {
  int column;
  std::string Record::*member;
  const char* name;
};
constexpr RowColumn kRowColumns[] = {
    {2, &Record::region, "region"},
    {3, &Record::request_id, "request_id"},
    {4, &Record::actor, "actor"},
    {5, &Record::role, "role"},
    {6, &Record::action, "action"},
    {7, &Record::resource_type, "resource_type"},
    {8, &Record::resource_id, "resource_id"},
    {9, &Record::patient_id, "patient_id"},
    {10, &Record::client_address, "client_address"},
    {11, &Record::purpose_of_use, "purpose_of_use"},
    {12, &Record::outcome, "outcome"},
    {13, &Record::detail, "detail"},
};

void Verifier::CheckNodeRows(PgConn& conn, const std::string& node) {
  static constexpr const char* kRowsSql =
      "SELECT seq, (extract(epoch FROM recorded_at) * 1000000)::bigint, region, request_id, "
      "actor, role, action, resource_type, resource_id, patient_id, client_address, "
      "purpose_of_use, outcome, detail, prev_hash, hash, record FROM audit_event "
      "WHERE node_id = $1 AND seq > $2 ORDER BY seq LIMIT 5000";
  const auto jit = journals_.find(node);
  const NodeJournal* nj = jit == journals_.end() ? nullptr : &jit->second;
  const std::string genesis = GenesisHash(node);
  struct Head {
    std::string kind, hash, signed_at, public_key, signature;
    long long seq;
  };
  std::vector<Head> heads;
  std::map<long long, std::string> chain_at;  // seq of a head -> (row hash, prev_hash)
  if (heads_table_) {
    PgResult h = conn.Exec(
        "SELECT kind, seq, hash, to_char(signed_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), public_key, signature FROM audit_head "
        "WHERE node_id = $1 ORDER BY received_at, seq",
        {node.c_str()});
    for (int i = 0; i < PQntuples(h.get()); ++i) {
      heads.push_back(Head{PQgetvalue(h.get(), i, 0), PQgetvalue(h.get(), i, 2),
                           PQgetvalue(h.get(), i, 3), PQgetvalue(h.get(), i, 4),
                           PQgetvalue(h.get(), i, 5), std::stoll(PQgetvalue(h.get(), i, 1))});
      chain_at.emplace(heads.back().seq, std::string());
    }
  }
  long long last_seq = 0;
  std::string last_hash;
  for (;;) {
    const std::string after = std::to_string(last_seq);
    PgResult res = conn.Exec(kRowsSql, {node.c_str(), after.c_str()});
    const int n = PQntuples(res.get());
    for (int i = 0; i < n; ++i) {
      auto col = [&](int c) -> std::string {
        return PQgetisnull(res.get(), i, c) ? std::string() : PQgetvalue(res.get(), i, c);
      };
      ++r_.table_rows;
      const long long seq = std::stoll(col(0));
      const std::string prefix = "table " + node + " seq " + std::to_string(seq) + ": ";
      if (seq > last_seq + 1) TableGap(node, last_seq + 1, seq - 1);
      const std::string row_prev = col(14), row_hash = col(15);
      const bool rebuilt = PQgetisnull(res.get(), i, 16);
      std::string record = col(16);

      std::string error;
      std::optional<ParsedLine> p;
      if (rebuilt) {
        // No record: the shipper left it out because the columns give the line back. The
        // line rebuilt from them must hash to the row's hash and match the journal's.
        Record rec;
        rec.seq = seq;
        rec.node_id = node;
        for (const auto& c : kRowColumns) rec.*c.member = col(c.column);
        const long long micros = std::stoll(col(1));
        record = RebuildLine(std::move(rec), micros, row_prev, row_hash);
        p = ParseLine(record, &error);
        if (p && ComputeHash(*p) != p->hash) {
          Problem(prefix + "hash mismatch (row modified)");
        }
        // What the line cannot show, the shipper never writes: a time between two
        // milliseconds (it keeps the record of such a line). "" in an optional column:
        // below, for every row.
        if (micros % 1000 != 0) {
          Problem(prefix +
                  "column recorded_at is not on a millisecond, as no row without a "
                  "record is shipped (row modified)");
        }
      } else {
        p = ParseLine(record, &error);
      }
      if (rebuilt && !p) {
        Problem(prefix + "the row's columns do not make a journal line: " + error +
                " (row modified)");
      } else if (rebuilt) {
        // The columns are the record: nothing to compare them with.
      } else if (!p) {
        Problem(prefix + "record is not a valid journal line: " + error + " (row modified)");
      } else {
        if (ComputeHash(*p) != p->hash || !IsCanonical(record, *p)) {
          Problem(prefix + "hash mismatch (record modified)");
        }
        const Record& rec = p->record;
        const auto micros = ParseRfc3339Micros(rec.recorded_at);
        auto differs = [&](const char* name) {
          Problem(prefix + "column " + name + " differs from its record (row modified)");
        };
        if (rec.node_id != node) differs("node_id");
        if (rec.seq != seq) differs("seq");
        if (!micros || std::to_string(*micros) != col(1)) differs("recorded_at");
        for (const auto& c : kRowColumns) {
          if (rec.*c.member != col(c.column)) differs(c.name);
        }
        if (p->prev_hash != row_prev) differs("prev_hash");
        if (p->hash != row_hash) differs("hash");
      }
      // An empty optional field is NULL in every row any release's shipper wrote
      // (NULLIF from the first one on), so "" there was put in after shipping. Neither a
      // line nor a record can show it: both read NULL and "" alike.
      for (const auto& [c, name] : {std::pair{7, "resource_type"}, std::pair{8, "resource_id"},
                                    std::pair{9, "patient_id"}, std::pair{13, "detail"}}) {
        if (!PQgetisnull(res.get(), i, c) && col(c).empty()) {
          Problem(prefix + "column " + name + " is empty, not NULL (row modified)");
        }
      }
      if (auto it = chain_at.find(seq); it != chain_at.end())
        it->second = row_hash + " " + row_prev;
      if (IsEpochStart(node, seq, row_prev)) {
        r_.notes.push_back("table " + node + " seq " + std::to_string(seq) +
                           ": a new journal epoch starts here (the node's journal folder was "
                           "lost or replaced)");
      } else if (seq == 1 && row_prev != genesis) {
        Problem(prefix + "prev_hash is not the genesis of node " + node + " (chain broken)");
      } else if (seq > 1 && seq == last_seq + 1 && row_prev != last_hash) {
        Problem(prefix + "prev_hash does not match the hash of seq " + std::to_string(seq - 1) +
                " (chain broken)");
      }
      if (nj) {
        if (const JournalLine* l = nj->Find(seq)) {
          if (Sha256(record) != l->digest) {
            Problem(prefix + "row differs from the journal line at " + nj->Where(*l));
          }
        } else if (seq > nj->max_seq) {
          Problem(prefix + "not in the journal (journal ends at seq " +
                  std::to_string(nj->max_seq) + ")");
        }
      }
      last_seq = seq;
      last_hash = row_hash;
    }
    if (n < 5000) break;
  }
  if (nj && nj->max_seq > last_seq) TableGap(node, last_seq + 1, nj->max_seq);

  // Signed heads: each must be signed by a trusted key and match the chain.
  long long chain_end = std::max(last_seq, nj ? nj->max_seq : 0);
  std::uint64_t bad_sig = 0, untrusted = 0;
  for (const auto& h : heads) {
    const std::string prefix =
        "signed " + h.kind + " " + node + " seq " + std::to_string(h.seq) + ": ";
    if (!VerifyHex(h.public_key, h.signature,
                   HeadMessage(h.kind, node, h.seq, h.hash, h.signed_at))) {
      if (++bad_sig <= 10) Problem(prefix + "bad signature (head forged or modified)");
      continue;
    }
    if (trusted_) {
      auto t = trusted_->find(node);
      if (t == trusted_->end() || !t->second.count(h.public_key)) {
        if (++untrusted <= 10) Problem(prefix + "signed by a key not trusted for this node");
        continue;
      }
    } else {
      auto [k, first] = first_key_.emplace(node, h.public_key);
      if (!first && k->second != h.public_key) {
        if (++untrusted <= 10) {
          Problem(prefix +
                  "signed by another key than the node's first head (pin the "
                  "nodes' keys with --trusted-keys)");
        }
        continue;
      }
    }
    // What the chain holds at h.seq: the row, else the journal line.
    std::string hash, prev;
    if (const auto& v = chain_at[h.seq]; !v.empty()) {
      hash = v.substr(0, v.find(' '));
      prev = v.substr(v.find(' ') + 1);
    } else if (const JournalLine* l = nj ? nj->Find(h.seq) : nullptr) {
      hash = l->hash;
      prev = l->prev_hash;
    }
    if (hash.empty()) {
      if (h.seq > chain_end) {
        Problem(prefix + (chain_end == 0 ? std::string("the node has no rows and no journal "
                                                       "(its trail was deleted)")
                                         : "the chain ends at seq " + std::to_string(chain_end) +
                                               " (truncated: newer records deleted)"));
      } else {
        Problem(prefix + "record missing from the table and the journal (deleted)");
      }
    } else if ((h.kind == "head" && hash != h.hash) || (h.kind == "epoch" && prev != h.hash)) {
      Problem(prefix + "the chain's record differs from the signed head (chain rewritten)");
    }
  }
  if (bad_sig > 10 || untrusted > 10) {
    Problem("signed heads " + node + ": " + std::to_string(bad_sig) + " bad signature(s), " +
            std::to_string(untrusted) + " untrusted key(s) in all");
  }
  if (heads_table_ && heads.empty() && last_seq > 0) {
    r_.notes.push_back("table " + node +
                       ": no signed head (chain not anchored: written before heads were "
                       "signed, or the node signs none)");
  }
}

void Verifier::CheckTable(PgConn& conn) {
  try {
    std::set<std::string> nodes;
    for (const auto& [node, nj] : journals_) nodes.insert(node);
    PgResult res = conn.Exec("SELECT DISTINCT node_id FROM audit_event");
    for (int i = 0; i < PQntuples(res.get()); ++i) nodes.insert(PQgetvalue(res.get(), i, 0));
    PgResult has = conn.Exec(
        "SELECT to_regclass('audit_head') IS NOT NULL AND "
        "has_table_privilege('audit_head', 'SELECT')");
    heads_table_ = std::string_view(PQgetvalue(has.get(), 0, 0)) == "t";
    if (heads_table_) {
      PgResult hn = conn.Exec("SELECT DISTINCT node_id FROM audit_head");
      for (int i = 0; i < PQntuples(hn.get()); ++i) nodes.insert(PQgetvalue(hn.get(), i, 0));
      if (!trusted_ && PQntuples(hn.get()) > 0) {
        r_.notes.push_back(
            "signed heads checked against the key each node stored first (trust on first "
            "use); pass --trusted-keys to pin the nodes' public keys");
      }
    } else {
      r_.notes.push_back("no audit_head table: chain heads are not checked");
    }
    for (const auto& node : nodes) CheckNodeRows(conn, node);
    conn.Exec("COMMIT");
  } catch (const std::exception& e) {
    Problem(std::string("database: ") + e.what());
  }
}

}  // namespace

VerifyReport Verify(const std::vector<std::string>& journal_dirs, const Secret& database_url,
                    const std::string& trusted_keys_file) {
  VerifyReport report;
  Verifier v(report);
  if (!trusted_keys_file.empty()) {
    try {
      v.trusted_ = ReadTrustedKeys(trusted_keys_file);
    } catch (const std::exception& e) {
      report.problems.push_back(e.what());
      return report;
    }
  }
  // Live nodes go on appending and shipping while this runs, so the three reads are
  // ordered: the shipped positions, then the table's snapshot, then the journals. A
  // journal only grows and a position is written after its rows commit, so every row of
  // the snapshot is in the journals as read, and every record up to a position is in the
  // snapshot; read in any other order, records shipped meanwhile would show as rows
  // missing from the journal, or as shipped records missing from the table.
  for (const auto& dir : journal_dirs) v.ReadPositions(dir);
  std::optional<PgConn> conn;
  if (!database_url.empty()) {
    try {
      conn.emplace(database_url, "continuum-audit-verify", 0);
      conn->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      conn->Exec("SELECT 1");  // the transaction's snapshot is taken here
    } catch (const std::exception& e) {
      report.problems.push_back(std::string("database: ") + e.what());
      conn.reset();
    }
  }
  for (const auto& dir : journal_dirs) v.ReadDir(dir);
  v.CheckJournals();
  if (conn) v.CheckTable(*conn);
  return report;
}

}  // namespace continuum::audit
