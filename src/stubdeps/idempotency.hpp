// Idempotency-Key handling for the stand-ins' POSTs, as payment processors do it: the
// first request with a key is executed and its response stored; the same key with the
// same request returns the stored response again (never executing twice); the same key
// with a different request is a conflict (409). Keys are scoped per stand-in.
#pragma once

#include <boost/json.hpp>
#include <cstddef>
#include <deque>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>

#include "stubdeps/journal_file.hpp"

namespace continuum::stubdeps {

// What identifies "the same request": method, path and the body's JSON with object
// keys sorted (so whitespace and key order do not matter).
std::string Fingerprint(std::string_view method, std::string_view path,
                        const boost::json::value& body);

// A JSON value serialized with object keys sorted, recursively.
std::string CanonicalJson(const boost::json::value& v);

struct StoredResponse {
  int status = 0;
  std::string body;
};

class IdempotencyStore {
 public:
  // Keeps at most `capacity` keys; the oldest are forgotten first.
  explicit IdempotencyStore(std::size_t capacity = 100000) : capacity_(capacity) {}

  enum class Outcome { kNew, kReplay, kConflict };
  struct Lookup {
    Outcome outcome = Outcome::kNew;
    const StoredResponse* response = nullptr;  // kReplay and kConflict: the first answer
  };
  [[nodiscard]] Lookup Find(const std::string& key, std::string_view fingerprint) const;
  // Stores the answer to the first request with `key` (a no-op if it is known).
  void Remember(const std::string& key, std::string fingerprint, StoredResponse response);

  // Loads the records in `path` and appends every new one to it.
  void Persist(const std::filesystem::path& path);

  [[nodiscard]] std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string fingerprint;
    StoredResponse response;
  };
  void Insert(const std::string& key, Entry entry);

  std::size_t capacity_;
  std::unordered_map<std::string, Entry> entries_;
  std::deque<std::string> order_;  // insertion order, for eviction
  JsonLinesFile file_;
};

}  // namespace continuum::stubdeps
