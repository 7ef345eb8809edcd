#include "stubdeps/idempotency.hpp"

#include <algorithm>
#include <vector>

namespace continuum::stubdeps {
namespace json = boost::json;

namespace {
void AppendCanonical(const json::value& v, std::string& out) {
  if (v.is_object()) {
    const json::object& o = v.as_object();
    std::vector<const json::key_value_pair*> kvs;
    kvs.reserve(o.size());
    for (const auto& kv : o) kvs.push_back(&kv);
    std::sort(kvs.begin(), kvs.end(),
              [](const auto* a, const auto* b) { return a->key() < b->key(); });
    out += '{';
    bool first = true;
    for (const auto* kv : kvs) {
      if (!first) out += ',';
      first = false;
      out += json::serialize(json::string(kv->key()));
      out += ':';
      AppendCanonical(kv->value(), out);
    }
    out += '}';
  } else if (v.is_array()) {
    out += '[';
    bool first = true;
    for (const auto& e : v.as_array()) {
      if (!first) out += ',';
      first = false;
      AppendCanonical(e, out);
    }
    out += ']';
  } else {
    out += json::serialize(v);
  }
}
}  // namespace

std::string CanonicalJson(const json::value& v) {
  std::string out;
  AppendCanonical(v, out);
  return out;
}

std::string Fingerprint(std::string_view method, std::string_view path, const json::value& body) {
  std::string out(method);
  out += ' ';
  out += path;
  out += ' ';
  out += CanonicalJson(body);
  return out;
}

IdempotencyStore::Lookup IdempotencyStore::Find(const std::string& key,
                                                std::string_view fingerprint) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) return {};
  return {it->second.fingerprint == fingerprint ? Outcome::kReplay : Outcome::kConflict,
          &it->second.response};
}

void IdempotencyStore::Insert(const std::string& key, Entry entry) {
  if (entries_.contains(key)) return;
  entries_.emplace(key, std::move(entry));
  order_.push_back(key);
  while (entries_.size() > capacity_ && !order_.empty()) {
    entries_.erase(order_.front());
    order_.pop_front();
  }
}

void IdempotencyStore::Remember(const std::string& key, std::string fingerprint,
                                StoredResponse response) {
  if (entries_.contains(key)) return;
  if (file_.is_open()) {
    file_.Append(json::object{{"key", key},
                              {"fingerprint", fingerprint},
                              {"status", response.status},
                              {"body", response.body}});
  }
  Insert(key, Entry{std::move(fingerprint), std::move(response)});
}

void IdempotencyStore::Persist(const std::filesystem::path& path) {
  file_.Open(path, [this](json::object&& o) {
    const auto* key = o.if_contains("key");
    const auto* fp = o.if_contains("fingerprint");
    const auto* status = o.if_contains("status");
    const auto* body = o.if_contains("body");
    if (!key || !key->is_string() || !fp || !fp->is_string() || !status || !status->is_int64() ||
        !body || !body->is_string())
      return;
    Insert(std::string(key->as_string()),
           Entry{std::string(fp->as_string()), StoredResponse{static_cast<int>(status->as_int64()),
                                                              std::string(body->as_string())}});
  });
}

}  // namespace continuum::stubdeps
