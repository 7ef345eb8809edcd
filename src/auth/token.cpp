#include "auth/token.hpp"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>  // renameat2, RENAME_NOREPLACE
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cctype>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "auth/sodium.hpp"

namespace continuum::auth {
namespace {

static_assert(crypto_auth_KEYBYTES == sizeof(Key), "crypto_auth key must be 32 bytes");
static_assert(crypto_auth_BYTES == 32, "crypto_auth tag must be 32 bytes");

constexpr std::string_view kPrefix = "v1.";
constexpr std::size_t kMaxTokenBytes = 4096;
constexpr int kB64 = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
constexpr std::size_t kKeyHexChars = 2 * sizeof(Key);

// ---- key file -------------------------------------------------------------------------

[[noreturn]] void ThrowKeyFile(const std::string& path, const std::string& what) {
  throw std::runtime_error("key file " + path + ": " + what);
}

[[noreturn]] void ThrowKeyFileErrno(const std::string& path, const std::string& what, int err) {
  ThrowKeyFile(path, what + ": " + std::strerror(err));
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_;
};

// Parses the file content: exactly 64 hex digits (either case), optionally followed by
// one "\n" or "\r\n". Never puts the content into an error message.
Key ParseKeyText(const std::string& path, std::string text) {
  std::string_view t = text;
  if (t.ends_with("\r\n")) {
    t.remove_suffix(2);
  } else if (t.ends_with('\n')) {
    t.remove_suffix(1);
  }
  if (t.size() != kKeyHexChars) {
    sodium_memzero(text.data(), text.size());
    ThrowKeyFile(path, "expected " + std::to_string(kKeyHexChars) +
                           " hex characters (a 32-byte key), found " + std::to_string(t.size()) +
                           " characters");
  }
  Key key{};
  std::size_t bin_len = 0;
  const char* end = nullptr;
  int rc = sodium_hex2bin(key.data(), key.size(), t.data(), t.size(), nullptr, &bin_len, &end);
  bool ok = rc == 0 && bin_len == key.size() && end == t.data() + t.size();
  sodium_memzero(text.data(), text.size());
  if (!ok) {
    sodium_memzero(key.data(), key.size());
    ThrowKeyFile(path, "contains a character that is not a hex digit");
  }
  return key;
}

// Reads and parses the key file. Returns false (errno ENOENT) if it does not exist.
bool ReadKeyFile(const std::string& path, Key& key) {
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) {
    int err = errno;
    if (err == ENOENT) return false;
    ThrowKeyFileErrno(path, "cannot open", err);
  }
  Fd fd(raw);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) ThrowKeyFileErrno(path, "cannot stat", errno);
  if (!S_ISREG(st.st_mode)) ThrowKeyFile(path, "is not a regular file");
  // Read a little more than a valid file can hold so that a longer file is reported.
  std::string text(kKeyHexChars + 8, '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      sodium_memzero(text.data(), text.size());
      ThrowKeyFileErrno(path, "cannot read", err);
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  key = ParseKeyText(path, std::move(text));
  return true;
}

// Creates every missing directory above `path` with mode 0700.
void MakeParentDirs(const std::string& path) {
  std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos || slash == 0) return;
  std::string dir = path.substr(0, slash);
  for (std::size_t i = 1; i <= dir.size(); ++i) {
    if (i != dir.size() && dir[i] != '/') continue;
    std::string prefix = dir.substr(0, i);
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      ThrowKeyFileErrno(path, "cannot create directory " + prefix, errno);
    }
  }
}

void WriteAll(const std::string& path, int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowKeyFileErrno(path, "cannot write", errno);
    }
    off += static_cast<std::size_t>(n);
  }
}

void FsyncParentDir(const std::string& path) {
  std::size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);  // best effort: the key is already in place either way
    ::close(fd);
  }
}

// Publishes `tmp` under `path` only if `path` does not exist yet. Returns true if this
// process installed its file, false if another process got there first.
bool PublishNoReplace(const std::string& tmp, const std::string& path) {
  if (::link(tmp.c_str(), path.c_str()) == 0) return true;
  int err = errno;
  if (err == EEXIST) return false;
  // Some filesystems have no hard links; renameat2(RENAME_NOREPLACE) is the fallback.
  if (err == EPERM || err == ENOTSUP || err == EOPNOTSUPP || err == ENOSYS || err == EMLINK) {
    if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0) {
      return true;
    }
    err = errno;
    if (err == EEXIST) return false;
  }
  ThrowKeyFileErrno(path, "cannot install the new key file", err);
}

// ---- token encoding -------------------------------------------------------------------

std::string B64Encode(const unsigned char* data, std::size_t len) {
  std::string out(sodium_base64_ENCODED_LEN(len, kB64), '\0');
  sodium_bin2base64(out.data(), out.size(), data, len, kB64);
  out.resize(std::strlen(out.c_str()));
  return out;
}

// Strict: only the URL-safe alphabet, no padding, no whitespace, canonical trailing bits,
// and the whole input consumed.
bool B64Decode(std::string_view in, std::vector<unsigned char>& out) {
  if (in.empty()) return false;
  // libsodium 1.0.18 decodes every byte 0x80-0xFF as '_' (63): without this check a
  // token has 128 other spellings that verify. Found by fuzz/token_fuzz.cpp.
  for (char ch : in) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (!std::isalnum(c) && c != '-' && c != '_') return false;
  }
  out.resize(in.size() / 4 * 3 + 3);
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out.data(), out.size(), in.data(), in.size(), nullptr, &len, &end, kB64) !=
          0 ||
      end != in.data() + in.size()) {
    return false;
  }
  out.resize(len);
  return true;
}

}  // namespace

Key LoadOrCreateKey(const std::string& path) {
  detail::EnsureSodium();
  if (path.empty()) throw std::runtime_error("key file path is empty");
  Key key{};
  if (ReadKeyFile(path, key)) return key;

  // Missing: write a complete, synced temporary file next to it, then publish it with
  // link() (or renameat2 NOREPLACE), which fails if the name exists. Of several nodes
  // starting at once exactly one wins; the others read the winner's file, so all agree.
  MakeParentDirs(path);
  randombytes_buf(key.data(), key.size());
  std::string text(kKeyHexChars + 1, '\0');
  sodium_bin2hex(text.data(), text.size(), key.data(), key.size());
  text.back() = '\n';

  std::string tmp = path + ".tmp-" + RandomHex(8);
  int raw = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (raw < 0) {
    int err = errno;
    sodium_memzero(text.data(), text.size());
    ThrowKeyFileErrno(path, "cannot create " + tmp, err);
  }
  bool published = false;
  try {
    Fd fd(raw);
    if (::fchmod(fd.get(), 0600) != 0) ThrowKeyFileErrno(path, "cannot chmod " + tmp, errno);
    WriteAll(path, fd.get(), text);
    if (::fsync(fd.get()) != 0) ThrowKeyFileErrno(path, "cannot fsync " + tmp, errno);
    if (::close(fd.release()) != 0) ThrowKeyFileErrno(path, "cannot close " + tmp, errno);
    published = PublishNoReplace(tmp, path);
  } catch (...) {
    sodium_memzero(text.data(), text.size());
    ::unlink(tmp.c_str());
    throw;
  }
  sodium_memzero(text.data(), text.size());
  ::unlink(tmp.c_str());  // after link() both names exist; after renameat2 ENOENT is fine
  FsyncParentDir(path);
  if (published) return key;

  sodium_memzero(key.data(), key.size());
  if (!ReadKeyFile(path, key)) ThrowKeyFile(path, "disappeared while it was being created");
  return key;
}

std::string TokenSigner::Sign(const Claims& c) const {
  detail::EnsureSodium();
  boost::json::object o;
  o["sid"] = c.sid;
  o["aid"] = c.account_id;
  o["sub"] = c.username;
  o["role"] = c.role;
  o["pat"] = c.patient_id;
  o["prac"] = c.practitioner_id;
  o["iat"] = c.iat;
  o["exp"] = c.exp;
  std::string payload = boost::json::serialize(o);
  // The serializer passes invalid UTF-8 through, which Verify's parser would then
  // reject: refuse to issue a token that could never be accepted.
  boost::system::error_code ec;
  boost::json::parse(payload, ec);
  if (ec) throw std::invalid_argument("token claims contain invalid UTF-8");

  unsigned char mac[crypto_auth_BYTES];
  crypto_auth(mac, reinterpret_cast<const unsigned char*>(payload.data()), payload.size(),
              key_.data());
  std::string token;
  token.reserve(kPrefix.size() + payload.size() * 4 / 3 + 48);
  token.append(kPrefix);
  token += B64Encode(reinterpret_cast<const unsigned char*>(payload.data()), payload.size());
  token += '.';
  token += B64Encode(mac, sizeof mac);
  if (token.size() > kMaxTokenBytes) {
    throw std::invalid_argument("token would be longer than 4096 bytes");
  }
  return token;
}

std::optional<Claims> TokenSigner::Verify(std::string_view token) const {
  if (token.size() > kMaxTokenBytes || !token.starts_with(kPrefix)) return std::nullopt;
  std::string_view rest = token.substr(kPrefix.size());
  std::size_t dot = rest.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  std::string_view payload64 = rest.substr(0, dot);
  std::string_view mac64 = rest.substr(dot + 1);
  if (mac64.find('.') != std::string_view::npos) return std::nullopt;

  detail::EnsureSodium();
  std::vector<unsigned char> mac, payload;
  if (!B64Decode(mac64, mac) || mac.size() != crypto_auth_BYTES) return std::nullopt;
  if (!B64Decode(payload64, payload)) return std::nullopt;
  if (crypto_auth_verify(mac.data(), payload.data(), payload.size(), key_.data()) != 0) {
    return std::nullopt;
  }

  // Authenticated from here on; still check every type rather than trust the shape.
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(
      std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size()), ec);
  if (ec) return std::nullopt;
  const boost::json::object* o = v.if_object();
  if (!o) return std::nullopt;
  auto str = [&](std::string_view k, std::string& out) {
    const boost::json::value* f = o->if_contains(k);
    const boost::json::string* s = f ? f->if_string() : nullptr;
    if (!s) return false;
    out.assign(s->data(), s->size());
    return true;
  };
  auto i64 = [&](std::string_view k, int64_t& out) {
    const boost::json::value* f = o->if_contains(k);
    if (!f || !f->is_int64()) return false;
    out = f->get_int64();
    return true;
  };
  // Unknown keys are ignored, so that a later release can add a claim without the
  // nodes still on this release rejecting its tokens during a rolling upgrade.
  Claims c;
  if (!str("sid", c.sid) || !i64("aid", c.account_id) || !str("sub", c.username) ||
      !str("role", c.role) || !str("pat", c.patient_id) || !str("prac", c.practitioner_id) ||
      !i64("iat", c.iat) || !i64("exp", c.exp)) {
    return std::nullopt;
  }
  return c;
}

std::string RandomHex(std::size_t bytes) {
  detail::EnsureSodium();
  std::vector<unsigned char> buf(bytes);
  if (bytes > 0) randombytes_buf(buf.data(), bytes);
  std::string hex(2 * bytes + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), buf.data(), bytes);
  hex.pop_back();
  return hex;
}

}  // namespace continuum::auth
