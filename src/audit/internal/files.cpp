#include "audit/internal/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <unordered_map>

namespace continuum::audit::internal {
namespace fs = std::filesystem;

namespace {
constexpr std::string_view kSegmentPrefix = "journal-";
constexpr std::string_view kSegmentSuffix = ".jsonl";
constexpr std::string_view kPosMagic = "continuum-audit-shipped v1";

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

std::mutex& MarkMutex() {
  static std::mutex mu;
  return mu;
}
std::unordered_map<std::string, DurableMark>& Marks() {
  static std::unordered_map<std::string, DurableMark> marks;
  return marks;
}
}  // namespace

void ThrowErrno(const std::string& what) {
  const int err = errno;
  throw std::runtime_error(what + ": " + std::generic_category().message(err));
}

bool IsValidNodeId(std::string_view node_id) {
  if (node_id.empty() || node_id.size() > 128) return false;
  for (char c : node_id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return node_id != "." && node_id != "..";
}

std::string SegmentFileName(std::string_view node_id, std::uint64_t index) {
  char num[24];
  (void)std::snprintf(num, sizeof num, "%06llu", static_cast<unsigned long long>(index));
  std::string name(kSegmentPrefix);
  name.append(node_id).append("-").append(num).append(kSegmentSuffix);
  return name;
}

std::optional<std::pair<std::string, std::uint64_t>> ParseSegmentFileName(std::string_view name) {
  if (name.size() <= kSegmentPrefix.size() + kSegmentSuffix.size() ||
      name.substr(0, kSegmentPrefix.size()) != kSegmentPrefix ||
      name.substr(name.size() - kSegmentSuffix.size()) != kSegmentSuffix) {
    return std::nullopt;
  }
  std::string_view mid = name.substr(kSegmentPrefix.size(),
                                     name.size() - kSegmentPrefix.size() - kSegmentSuffix.size());
  const auto dash = mid.rfind('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const std::string_view node = mid.substr(0, dash);
  const std::string_view digits = mid.substr(dash + 1);
  if (digits.size() < 6 || digits.size() > 18 || !IsValidNodeId(node)) return std::nullopt;
  std::uint64_t index = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    index = index * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (index == 0) return std::nullopt;
  return std::make_pair(std::string(node), index);
}

std::map<std::string, std::vector<SegmentFile>> ListSegments(const fs::path& dir) {
  std::map<std::string, std::vector<SegmentFile>> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    auto parsed = ParseSegmentFileName(entry.path().filename().string());
    if (!parsed) continue;
    out[parsed->first].push_back(SegmentFile{parsed->first, parsed->second, entry.path()});
  }
  for (auto& [node, segs] : out) {
    std::sort(segs.begin(), segs.end(),
              [](const SegmentFile& a, const SegmentFile& b) { return a.index < b.index; });
  }
  return out;
}

fs::path ShipPositionPath(const fs::path& dir, std::string_view node) {
  return dir / ("shipped-" + std::string(node) + ".pos");
}

namespace {
constexpr std::string_view kPosMagicV2 = "continuum-audit-shipped v2";
constexpr std::size_t kPosSlotBytes = 256;
constexpr std::size_t kPosSlotStride = 4096;
constexpr std::size_t kPosFileBytes = 2 * kPosSlotStride;

std::uint64_t Fnv1a64(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// Parses " key=<number>" at the front of `rest` (and drops it).
template <typename T>
bool TakeField(std::string_view& rest, std::string_view key, T& out) {
  if (rest.size() < key.size() + 2 || rest[0] != ' ' || rest.substr(1, key.size()) != key ||
      rest[key.size() + 1] != '=') {
    return false;
  }
  rest.remove_prefix(key.size() + 2);
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), out);
  if (ec != std::errc() || end == rest.data()) return false;
  rest.remove_prefix(static_cast<std::size_t>(end - rest.data()));
  return true;
}

bool TakePosition(std::string_view& rest, ShipPosition& pos) {
  return TakeField(rest, "segment", pos.segment) && TakeField(rest, "offset", pos.offset) &&
         TakeField(rest, "seq", pos.seq) && pos.seq >= 0;
}

struct Slot {
  std::uint64_t gen = 0;
  ShipPosition pos;
};

// One version 2 slot: nullopt unless its line is whole and its sum matches.
std::optional<Slot> ParseSlot(std::string_view slot) {
  const auto nl = slot.find('\n');
  if (nl == std::string_view::npos) return std::nullopt;
  const std::string_view line = slot.substr(0, nl);
  const auto sum_at = line.rfind(" sum=");
  if (sum_at == std::string_view::npos) return std::nullopt;
  std::string_view rest = line.substr(0, sum_at);
  if (rest.substr(0, kPosMagicV2.size()) != kPosMagicV2) return std::nullopt;
  const std::string_view hex = line.substr(sum_at + 5);
  std::uint64_t sum = 0;
  const auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), sum, 16);
  if (hex.size() != 16 || ec != std::errc() || end != hex.data() + hex.size() ||
      sum != Fnv1a64(rest)) {
    return std::nullopt;
  }
  rest.remove_prefix(kPosMagicV2.size());
  Slot s;
  if (!TakeField(rest, "gen", s.gen) || !TakePosition(rest, s.pos) || !rest.empty())
    return std::nullopt;
  return s;
}

// The newest valid slot of a version 2 file, if it sits where its save number puts it.
std::optional<Slot> NewestSlot(std::string_view data) {
  std::optional<Slot> best;
  for (std::size_t i = 0; i < 2; ++i) {
    if (data.size() < i * kPosSlotStride + kPosSlotBytes) break;
    auto s = ParseSlot(data.substr(i * kPosSlotStride, kPosSlotBytes));
    if (s && s->gen % 2 == i && (!best || s->gen > best->gen)) best = s;
  }
  return best;
}

std::optional<ShipPosition> ParsePositionFile(std::string_view data) {
  if (data.substr(0, kPosMagic.size()) == kPosMagic) {
    // version 1: "<magic> segment=<n> offset=<n> seq=<n>\n"
    std::string_view rest = data.substr(kPosMagic.size());
    ShipPosition pos;
    if (!TakePosition(rest, pos) || rest != "\n") return std::nullopt;
    return pos;
  }
  if (auto s = NewestSlot(data)) return s->pos;
  return std::nullopt;
}

std::string SlotText(std::uint64_t gen, const ShipPosition& pos) {
  char buf[kPosSlotBytes];
  const int n =
      std::snprintf(buf, sizeof buf, "%s gen=%llu segment=%llu offset=%llu seq=%lld",
                    std::string(kPosMagicV2).c_str(), static_cast<unsigned long long>(gen),
                    static_cast<unsigned long long>(pos.segment),
                    static_cast<unsigned long long>(pos.offset), pos.seq);
  // The longest line (every number at its widest) is 175 bytes with its sum.
  if (n < 0 || static_cast<std::size_t>(n) + 22 > kPosSlotBytes)
    throw std::runtime_error("audit shipper: position line too long");
  std::string text(buf, static_cast<std::size_t>(n));
  char sum[24];
  (void)std::snprintf(sum, sizeof sum, " sum=%016llx\n",
                      static_cast<unsigned long long>(Fnv1a64(text)));
  text += sum;
  text.resize(kPosSlotBytes, '\0');
  return text;
}
}  // namespace

std::optional<ShipPosition> ReadShipPosition(const fs::path& dir, std::string_view node) {
  const auto path = ShipPositionPath(dir, node);
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  return ParsePositionFile(ReadRange(path, 0, kPosFileBytes));
}

void WriteShipPosition(const fs::path& dir, std::string_view node, const ShipPosition& pos) {
  const auto path = ShipPositionPath(dir, node);
  auto tmp = path;
  tmp += ".tmp";
  std::string file(kPosFileBytes, '\0');
  file.replace(0, kPosSlotBytes, SlotText(0, pos));
  {
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) ThrowErrno("open " + tmp.string());
    FdCloser closer{fd};
    WriteAll(fd, file, tmp.string());
    if (::fsync(fd) != 0) ThrowErrno("fsync " + tmp.string());
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) ThrowErrno("rename " + tmp.string());
  FsyncDir(dir);
}

ShipPositionFile::ShipPositionFile(fs::path dir, std::string node)
    : dir_(std::move(dir)), node_(std::move(node)) {}

ShipPositionFile::~ShipPositionFile() { Close(); }

void ShipPositionFile::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

// The path still names the open file: not removed, renamed away or renamed over.
bool ShipPositionFile::InPlace() const {
  if (fd_ < 0) return false;
  struct stat open_st {};
  struct stat path_st {};
  return ::fstat(fd_, &open_st) == 0 && open_st.st_nlink > 0 &&
         ::stat(ShipPositionPath(dir_, node_).c_str(), &path_st) == 0 &&
         open_st.st_ino == path_st.st_ino && open_st.st_dev == path_st.st_dev;
}

std::optional<ShipPosition> ShipPositionFile::Load() {
  // Read from the open file each time (no open, no path lookup beyond the stat): a file
  // edited in place by someone else (truncated, copied over) counts, as it always did.
  if (InPlace()) {
    std::string data(kPosFileBytes + 1, '\0');
    const ssize_t n = ::pread(fd_, data.data(), data.size(), 0);
    if (n == static_cast<ssize_t>(kPosFileBytes)) {
      if (auto newest = NewestSlot(std::string_view(data).substr(0, kPosFileBytes))) {
        gen_ = newest->gen;
        return newest->pos;
      }
    }
  }
  Close();  // the next save adopts or replaces whatever the path holds then
  return ReadShipPosition(dir_, node_);
}

void ShipPositionFile::Save(const ShipPosition& pos) {
  const auto path = ShipPositionPath(dir_, node_);
  if (!InPlace()) {
    Close();
    // Adopt a version 2 file in place; anything else is replaced whole.
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
      std::string data(kPosFileBytes + 1, '\0');
      const ssize_t n = ::pread(fd, data.data(), data.size(), 0);
      std::optional<Slot> newest;
      if (n == static_cast<ssize_t>(kPosFileBytes))
        newest = NewestSlot(std::string_view(data).substr(0, kPosFileBytes));
      if (newest) {
        fd_ = fd;
        gen_ = newest->gen;
      } else {
        ::close(fd);
      }
    }
    if (fd_ < 0) {
      WriteShipPosition(dir_, node_, pos);
      fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
      if (fd_ < 0) ThrowErrno("open " + path.string());
      gen_ = 0;
      return;
    }
  }
  const std::uint64_t gen = gen_ + 1;
  try {
    PWriteAll(fd_, SlotText(gen, pos), (gen % 2) * kPosSlotStride, path.string());
    if (::fdatasync(fd_) != 0) ThrowErrno("fdatasync " + path.string());
  } catch (...) {
    Close();  // what the file holds now is unknown: the next save starts over
    throw;
  }
  gen_ = gen;
}

std::string DurableKey(const fs::path& dir, std::string_view node) {
  std::error_code ec;
  auto canon = fs::weakly_canonical(fs::absolute(dir), ec);
  std::string key = (ec ? fs::absolute(dir) : canon).lexically_normal().string();
  while (key.size() > 1 && key.back() == '/') key.pop_back();
  key.push_back('\n');
  key.append(node);
  return key;
}

void PublishDurableMark(const std::string& key, const DurableMark& mark) {
  std::lock_guard lk(MarkMutex());
  Marks()[key] = mark;
}

void RemoveDurableMark(const std::string& key) {
  std::lock_guard lk(MarkMutex());
  Marks().erase(key);
}

std::optional<DurableMark> LookupDurableMark(const std::string& key) {
  std::lock_guard lk(MarkMutex());
  auto it = Marks().find(key);
  if (it == Marks().end()) return std::nullopt;
  return it->second;
}

void WriteAll(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("write " + what);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void PWriteAll(int fd, std::string_view data, std::uint64_t offset, const std::string& what) {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("write " + what);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
}

void FsyncDir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) ThrowErrno("open directory " + dir.string());
  FdCloser closer{fd};
  if (::fsync(fd) != 0) ThrowErrno("fsync directory " + dir.string());
}

std::string ReadRange(const fs::path& path, std::uint64_t offset, std::uint64_t max) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) ThrowErrno("open " + path.string());
  FdCloser closer{fd};
  std::string out;
  constexpr std::uint64_t kChunk = 1 << 20;
  while (out.size() < max) {
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, max - out.size()));
    const std::size_t old = out.size();
    out.resize(old + want);
    const ssize_t n = ::pread(fd, out.data() + old, want, static_cast<off_t>(offset + old));
    if (n < 0) {
      out.resize(old);
      if (errno == EINTR) continue;
      ThrowErrno("read " + path.string());
    }
    out.resize(old + static_cast<std::size_t>(n));
    if (n == 0) break;
  }
  return out;
}

std::size_t PaddingStart(std::string_view data) {
  std::size_t n = data.size();
  while (n > 0 && data[n - 1] == '\0') --n;
  return n;
}

std::uint64_t FileSize(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) ThrowErrno("stat " + path.string());
  return static_cast<std::uint64_t>(st.st_size);
}

}  // namespace continuum::audit::internal
