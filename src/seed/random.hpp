// Deterministic pseudo-random numbers for the seed: xoshiro256** seeded through
// splitmix64. Never std::uniform_int_distribution & co — their output is not specified
// by the standard and differs between library versions; the seed must produce the same
// bytes everywhere for the same options.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>

namespace continuum::seed {

inline uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Mixes several words into one well-distributed key (for per-row streams).
inline uint64_t MixKey(std::initializer_list<uint64_t> words) {
  uint64_t state = 0x2545f4914f6cdd1dULL;
  uint64_t out = 0;
  for (uint64_t w : words) {
    state ^= w;
    out = SplitMix64(state);
    state = out;
  }
  return out;
}

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t sm = seed;
    for (auto& word : s_) word = SplitMix64(sm);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n), n > 0 (Lemire's multiply-shift; the tiny bias is irrelevant here
  // and, more importantly, deterministic).
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }
  // Uniform in [lo, hi].
  int64_t Between(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(Below(static_cast<uint64_t>(hi - lo + 1)));
  }
  // Uniform in [0, 1).
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  bool Chance(double p) { return Unit() < p; }

  // Index drawn with the given (not necessarily normalized) weights.
  size_t Weighted(std::span<const double> weights) {
    double total = 0;
    for (double w : weights) total += w;
    double x = Unit() * total;
    for (size_t i = 0; i < weights.size(); ++i) {
      if (x < weights[i]) return i;
      x -= weights[i];
    }
    return weights.size() - 1;
  }

  // Poisson(lambda) by inversion, capped at `cap` (small lambdas only).
  int Poisson(double lambda, int cap) {
    double p = 1.0;
    const double l = std::exp(-lambda);
    int k = 0;
    do {
      ++k;
      p *= Unit();
    } while (p > l && k <= cap + 1);
    return k - 1 > cap ? cap : k - 1;
  }

  template <class T>
  const T& Pick(std::span<const T> items) {
    return items[Below(items.size())];
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace continuum::seed
