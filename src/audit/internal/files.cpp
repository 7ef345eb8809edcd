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

std::optional<ShipPosition> ReadShipPosition(const fs::path& dir, std::string_view node) {
  const auto path = ShipPositionPath(dir, node);
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  const std::string text = ReadRange(path, 0, 4096);
  // "<magic> segment=<n> offset=<n> seq=<n>\n"
  std::string_view rest(text);
  if (rest.substr(0, kPosMagic.size()) != kPosMagic) return std::nullopt;
  rest.remove_prefix(kPosMagic.size());
  auto field = [&rest](std::string_view key, auto& out) {
    const std::string prefix = " " + std::string(key) + "=";
    if (rest.substr(0, prefix.size()) != prefix) return false;
    rest.remove_prefix(prefix.size());
    const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), out);
    if (ec != std::errc() || end == rest.data()) return false;
    rest.remove_prefix(static_cast<std::size_t>(end - rest.data()));
    return true;
  };
  std::uint64_t segment = 0, offset = 0;
  long long seq = 0;
  if (!field("segment", segment) || !field("offset", offset) || !field("seq", seq) || seq < 0 ||
      rest != "\n") {
    return std::nullopt;
  }
  return ShipPosition{segment, offset, seq};
}

void WriteShipPosition(const fs::path& dir, std::string_view node, const ShipPosition& pos) {
  const auto path = ShipPositionPath(dir, node);
  auto tmp = path;
  tmp += ".tmp";
  char buf[160];
  const int n =
      std::snprintf(buf, sizeof buf, "%s segment=%llu offset=%llu seq=%lld\n",
                    std::string(kPosMagic).c_str(), static_cast<unsigned long long>(pos.segment),
                    static_cast<unsigned long long>(pos.offset), pos.seq);
  {
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) ThrowErrno("open " + tmp.string());
    FdCloser closer{fd};
    WriteAll(fd, std::string_view(buf, static_cast<std::size_t>(n)), tmp.string());
    if (::fsync(fd) != 0) ThrowErrno("fsync " + tmp.string());
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) ThrowErrno("rename " + tmp.string());
  FsyncDir(dir);
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
