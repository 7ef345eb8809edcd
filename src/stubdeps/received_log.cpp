#include "stubdeps/received_log.hpp"

#include <algorithm>

#include "stubdeps/instant.hpp"

namespace continuum::stubdeps {
namespace json = boost::json;

void ReceivedLog::Keep(json::object entry) {
  entries_.push_back(std::move(entry));
  while (entries_.size() > capacity_) {
    entries_.pop_front();
    ++dropped_;
  }
}

void ReceivedLog::Persist(const std::filesystem::path& path) {
  file_.Open(path, [this](json::object&& o) {
    if (const auto* seq = o.if_contains("seq"); seq && seq->is_int64() && seq->as_int64() > 0)
      next_seq_ = std::max(next_seq_, static_cast<uint64_t>(seq->as_int64()) + 1);
    Keep(std::move(o));
  });
}

const json::object& ReceivedLog::Append(json::object entry, int64_t now_ms) {
  json::object e;
  e.reserve(entry.size() + 2);
  e["seq"] = next_seq_++;
  e["received_at"] = FormatInstant(now_ms);
  for (auto& kv : entry) e[kv.key()] = std::move(kv.value());
  file_.Append(e);
  Keep(std::move(e));
  return entries_.back();
}

json::object ReceivedLog::ToJson() const {
  json::array a;
  a.reserve(entries_.size());
  for (const auto& e : entries_) a.push_back(e);
  return json::object{{"count", entries_.size()}, {"dropped", dropped_}, {"entries", std::move(a)}};
}

std::size_t ReceivedLog::Clear() {
  const std::size_t n = entries_.size();
  entries_.clear();
  dropped_ = 0;
  file_.Truncate();
  return n;
}

}  // namespace continuum::stubdeps
