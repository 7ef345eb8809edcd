#include "audit/internal/heads.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "audit/internal/files.hpp"
#include "audit/internal/format.hpp"

namespace continuum::audit::internal {
namespace fs = std::filesystem;

namespace {

void EnsureSodium() {
  static const int rc = sodium_init();
  if (rc < 0) throw std::runtime_error("audit: libsodium cannot be initialised");
}

std::string Hex(const unsigned char* data, std::size_t n) {
  std::string out(n * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), data, n);
  out.pop_back();
  return out;
}

template <std::size_t N>
bool FromHex(std::string_view hex, std::array<unsigned char, N>& out) {
  if (hex.size() != 2 * N) return false;
  std::size_t len = 0;
  return sodium_hex2bin(out.data(), N, hex.data(), hex.size(), nullptr, &len, nullptr) == 0 &&
         len == N;
}

}  // namespace

std::string SigningKey::public_hex() const { return Hex(public_key.data(), public_key.size()); }

SigningKey LoadOrCreateSigningKey(const std::string& path) {
  EnsureSodium();
  if (path.empty()) throw std::runtime_error("audit signing key: no key file configured");
  SigningKey key;
  std::error_code ec;
  if (fs::exists(path, ec)) {
    const std::string data = ReadRange(path, 0, 4096);
    if (data.size() != key.secret_key.size()) {
      throw std::runtime_error("audit signing key " + path + ": expected " +
                               std::to_string(key.secret_key.size()) + " bytes, found " +
                               std::to_string(data.size()));
    }
    std::copy(data.begin(), data.end(), key.secret_key.begin());
    crypto_sign_ed25519_sk_to_pk(key.public_key.data(), key.secret_key.data());
    return key;
  }
  crypto_sign_keypair(key.public_key.data(), key.secret_key.data());
  fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  fs::path tmp = p;
  tmp += ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) ThrowErrno("audit signing key: create " + tmp.string());
  try {
    WriteAll(fd,
             std::string_view(reinterpret_cast<const char*>(key.secret_key.data()),
                              key.secret_key.size()),
             tmp.string());
    if (::fsync(fd) != 0) ThrowErrno("audit signing key: fsync " + tmp.string());
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  // link(2) fails if another process created the key meanwhile: then use theirs.
  if (::link(tmp.c_str(), p.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    if (err == EEXIST) return LoadOrCreateSigningKey(path);
    errno = err;
    ThrowErrno("audit signing key: create " + path);
  }
  ::unlink(tmp.c_str());
  FsyncDir(p.has_parent_path() ? p.parent_path() : fs::path("."));
  return key;
}

std::string HeadMessage(std::string_view kind, std::string_view node_id, long long seq,
                        std::string_view hash, std::string_view signed_at) {
  std::string m = "continuum-audit-head v1\n";
  m.append(kind).append("\n").append(node_id).append("\n").append(std::to_string(seq));
  m.append("\n").append(hash).append("\n").append(signed_at).append("\n");
  return m;
}

std::string SignHex(const SigningKey& key, std::string_view message) {
  EnsureSodium();
  std::array<unsigned char, crypto_sign_BYTES> sig{};
  crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const unsigned char*>(message.data()),
                       message.size(), key.secret_key.data());
  return Hex(sig.data(), sig.size());
}

bool VerifyHex(std::string_view public_key_hex, std::string_view signature_hex,
               std::string_view message) {
  EnsureSodium();
  std::array<unsigned char, crypto_sign_PUBLICKEYBYTES> pk{};
  std::array<unsigned char, crypto_sign_BYTES> sig{};
  if (!FromHex(public_key_hex, pk) || !FromHex(signature_hex, sig)) return false;
  return crypto_sign_verify_detached(sig.data(),
                                     reinterpret_cast<const unsigned char*>(message.data()),
                                     message.size(), pk.data()) == 0;
}

std::string EpochGenesisHash(std::string_view node_id, long long seq) {
  std::string s = "epoch:";
  s.append(node_id).append(":").append(std::to_string(seq));
  return Sha256Hex(s);
}

std::map<std::string, std::set<std::string>> ReadTrustedKeys(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("trusted keys " + path + ": cannot open");
  std::map<std::string, std::set<std::string>> out;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::size_t a = line.find_first_not_of(" \t\r");
    if (a == std::string::npos) continue;
    std::size_t b = line.find_first_of(" \t", a);
    std::size_t c = b == std::string::npos ? b : line.find_first_not_of(" \t", b);
    std::size_t d = c == std::string::npos ? c : line.find_first_of(" \t\r", c);
    const std::string node = line.substr(a, b == std::string::npos ? b : b - a);
    const std::string key =
        c == std::string::npos ? "" : line.substr(c, d == std::string::npos ? d : d - c);
    std::array<unsigned char, 32> pk{};
    if (!IsValidNodeId(node) || !FromHex(key, pk) ||
        (d != std::string::npos && line.find_first_not_of(" \t\r", d) != std::string::npos)) {
      throw std::runtime_error("trusted keys " + path + ":" + std::to_string(n) +
                               ": expected \"<node_id> <64 hex digits>\"");
    }
    std::string lower = key;
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    out[node].insert(lower);
  }
  return out;
}

}  // namespace continuum::audit::internal
