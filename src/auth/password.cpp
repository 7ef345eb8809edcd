#include "auth/password.hpp"

#include <argon2.h>
#include <sodium.h>
#include <sys/mman.h>

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "auth/sodium.hpp"

namespace continuum::auth {
namespace {

// Longer passwords are refused: Argon2 cost does not depend on the length, but there is
// no reason to accept megabytes from a login form, and a fixed cap keeps the behaviour
// of Hash and Verify identical.
constexpr std::size_t kMaxPasswordBytes = 1024;
// libsodium's crypto_pwhash_*_INTERACTIVE for Argon2id, and its salt and hash sizes.
constexpr uint32_t kTimeCost = 2;
constexpr uint32_t kMemoryKiB = 64 * 1024;
// HashCost::kMachineSecret (password.hpp).
constexpr uint32_t kMachineTimeCost = 1;
constexpr uint32_t kMachineMemoryKiB = 2 * 1024;
constexpr std::size_t kSaltBytes = 16;
constexpr std::size_t kHashBytes = 32;
// What a stored string may ask for before it is refused as malformed.
constexpr uint32_t kMaxMemoryKiB = 1024 * 1024;
constexpr uint32_t kMaxTimeCost = 16;
constexpr uint32_t kMaxLanes = 8;
constexpr std::size_t kMaxDecoded = 64;

// The calling thread's work area: mapped (and faulted in) by the first hash on the
// thread, handed to every later one, unmapped when the thread exits. A request larger
// than the area, or a nested one, gets plain heap memory. libargon2 wipes the memory
// before it calls `Release`.
class WorkArea {
 public:
  ~WorkArea() {
    if (base_ != nullptr) munmap(base_, size_);
  }
  uint8_t* Take(std::size_t bytes) {
    if (in_use_) return nullptr;
    if (bytes > size_) {
      if (base_ != nullptr) munmap(base_, size_);
      base_ = nullptr;
      size_ = 0;
      // Huge pages where the kernel has them (Argon2 reads its memory at random: 4 KiB
      // pages cost a TLB miss on most reads). Aligned to 2 MiB, and faulted in now.
      constexpr std::size_t kHuge = std::size_t{2} << 20;
      std::size_t len = (bytes + kHuge - 1) / kHuge * kHuge;
      void* p =
          mmap(nullptr, len + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) return nullptr;
      auto raw = reinterpret_cast<uintptr_t>(p);
      uintptr_t aligned = (raw + kHuge - 1) / kHuge * kHuge;
      if (aligned > raw) munmap(p, aligned - raw);
      if (raw + len + kHuge > aligned + len) {
        munmap(reinterpret_cast<void*>(aligned + len), raw + len + kHuge - (aligned + len));
      }
      base_ = reinterpret_cast<uint8_t*>(aligned);
      size_ = len;
      madvise(base_, size_, MADV_HUGEPAGE);
      for (std::size_t i = 0; i < size_; i += 4096) base_[i] = 0;
    }
    in_use_ = true;
    return base_;
  }
  bool Give(uint8_t* memory) {
    if (memory != base_ || !in_use_) return false;
    in_use_ = false;
    return true;
  }

 private:
  uint8_t* base_ = nullptr;
  std::size_t size_ = 0;
  bool in_use_ = false;
};

thread_local WorkArea work_area;

int Allocate(uint8_t** memory, std::size_t bytes) {
  *memory = work_area.Take(bytes);
  if (*memory == nullptr) *memory = static_cast<uint8_t*>(std::malloc(bytes));
  return *memory != nullptr ? ARGON2_OK : ARGON2_MEMORY_ALLOCATION_ERROR;
}

void Release(uint8_t* memory, std::size_t) {
  if (!work_area.Give(memory)) std::free(memory);
}

struct Params {
  uint32_t m = kMemoryKiB, t = kTimeCost, p = 1;
  uint8_t salt[kMaxDecoded];
  std::size_t salt_len = 0;
  uint8_t hash[kMaxDecoded];
  std::size_t hash_len = 0;
};

bool Eat(std::string_view& s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  return true;
}

bool Number(std::string_view& s, uint32_t& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc() || end == s.data() || s.front() == '0') return false;
  s.remove_prefix(static_cast<std::size_t>(end - s.data()));
  return true;
}

bool Base64(std::string_view text, uint8_t* out, std::size_t& len) {
  if (text.empty() || text.size() > 2 * kMaxDecoded) return false;
  const char* end = nullptr;
  return sodium_base642bin(out, kMaxDecoded, text.data(), text.size(), nullptr, &len, &end,
                           sodium_base64_VARIANT_ORIGINAL_NO_PADDING) == 0 &&
         end == text.data() + text.size();
}

// "$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>", base64 without padding.
bool Parse(std::string_view s, Params& out) {
  if (!Eat(s, "$argon2id$v=19$m=") || !Number(s, out.m) || !Eat(s, ",t=") || !Number(s, out.t) ||
      !Eat(s, ",p=") || !Number(s, out.p) || !Eat(s, "$")) {
    return false;
  }
  auto dollar = s.find('$');
  if (dollar == std::string_view::npos) return false;
  if (!Base64(s.substr(0, dollar), out.salt, out.salt_len) ||
      !Base64(s.substr(dollar + 1), out.hash, out.hash_len)) {
    return false;
  }
  return out.t >= ARGON2_MIN_TIME && out.t <= kMaxTimeCost && out.p >= 1 && out.p <= kMaxLanes &&
         out.m >= 8 * out.p && out.m <= kMaxMemoryKiB && out.salt_len >= ARGON2_MIN_SALT_LENGTH &&
         out.hash_len >= ARGON2_MIN_OUTLEN;
}

argon2_context Context(std::string_view password, Params& p, uint8_t* out) {
  argon2_context c{};
  c.out = out;
  c.outlen = static_cast<uint32_t>(p.hash_len);
  // libargon2 takes a non-const pointer but only reads the password (no CLEAR flag).
  c.pwd = reinterpret_cast<uint8_t*>(const_cast<char*>(password.data()));
  c.pwdlen = static_cast<uint32_t>(password.size());
  c.salt = p.salt;
  c.saltlen = static_cast<uint32_t>(p.salt_len);
  c.t_cost = p.t;
  c.m_cost = p.m;
  c.lanes = p.p;
  c.threads = 1;  // lanes run one after another on the calling (hashing) thread
  c.version = ARGON2_VERSION_13;
  c.allocate_cbk = Allocate;
  c.free_cbk = Release;
  c.flags = ARGON2_DEFAULT_FLAGS;
  return c;
}

std::string Encode(const uint8_t* data, std::size_t len) {
  char buf[2 * kMaxDecoded];
  sodium_bin2base64(buf, sizeof buf, data, len, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
  return buf;
}

}  // namespace

std::string HashPassword(std::string_view password, HashCost cost) {
  if (password.size() > kMaxPasswordBytes) {
    throw std::invalid_argument("password is longer than 1024 bytes");
  }
  detail::EnsureSodium();
  Params p;
  if (cost == HashCost::kMachineSecret) {
    p.m = kMachineMemoryKiB;
    p.t = kMachineTimeCost;
  }
  p.salt_len = kSaltBytes;
  p.hash_len = kHashBytes;
  randombytes_buf(p.salt, p.salt_len);
  argon2_context c = Context(password, p, p.hash);
  int rc = argon2_ctx(&c, Argon2_id);
  if (rc != ARGON2_OK) {
    throw std::runtime_error(std::string("password hashing failed: ") + argon2_error_message(rc));
  }
  std::string out = "$argon2id$v=19$m=" + std::to_string(p.m) + ",t=" + std::to_string(p.t) +
                    ",p=" + std::to_string(p.p) + "$" + Encode(p.salt, p.salt_len) + "$" +
                    Encode(p.hash, p.hash_len);
  sodium_memzero(p.hash, sizeof p.hash);
  return out;
}

bool HashHasCost(std::string_view hash, HashCost cost) {
  Params p;
  if (!Parse(hash, p)) return false;
  return cost == HashCost::kMachineSecret ? p.m == kMachineMemoryKiB && p.t == kMachineTimeCost
                                          : p.m == kMemoryKiB && p.t == kTimeCost;
}

bool VerifyPassword(std::string_view hash, std::string_view password) {
  if (password.size() > kMaxPasswordBytes) return false;
  try {
    detail::EnsureSodium();
  } catch (...) {
    return false;
  }
  Params p;
  if (!Parse(hash, p)) return false;
  uint8_t out[kMaxDecoded];
  argon2_context c = Context(password, p, out);
  // Computes into `out` and compares with the stored hash in constant time; any error
  // (allocation included) is "no match".
  bool ok = argon2_verify_ctx(&c, reinterpret_cast<const char*>(p.hash), Argon2_id) == ARGON2_OK;
  sodium_memzero(out, sizeof out);
  return ok;
}

}  // namespace continuum::auth
