// A route table: method + path pattern ("/fhir/R4/Patient/{}/$summary", where {}
// captures one segment) -> an entry of the caller's choosing (handler, tier, name).
// http/ knows no feature: the portal fills the table.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace continuum::http {

template <typename Entry>
class Router {
 public:
  void Add(std::string method, std::string_view pattern, Entry entry) {
    routes_.push_back({std::move(method), Split(pattern), std::move(entry)});
  }
  // Returns the entry or nullptr; `params` receives the captured segments;
  // `path_known` tells a 405 (path known, method not) from a 404.
  const Entry* Match(std::string_view method, std::string_view path,
                     std::vector<std::string>& params, bool& path_known) const {
    path_known = false;
    auto segs = Split(path);
    for (const auto& r : routes_) {
      if (r.segments.size() != segs.size()) continue;
      params.clear();
      bool ok = true;
      for (std::size_t i = 0; i < segs.size() && ok; ++i) {
        if (r.segments[i] == "{}")
          params.emplace_back(segs[i]);
        else
          ok = r.segments[i] == segs[i];
      }
      if (!ok) continue;
      path_known = true;
      if (r.method == method) return &r.entry;
    }
    params.clear();
    return nullptr;
  }
  std::vector<std::string> Allowed(std::string_view path) const {
    std::vector<std::string> out;
    auto segs = Split(path);
    for (const auto& r : routes_) {
      if (r.segments.size() != segs.size()) continue;
      bool ok = true;
      for (std::size_t i = 0; i < segs.size() && ok; ++i)
        ok = r.segments[i] == "{}" || r.segments[i] == segs[i];
      if (ok) out.push_back(r.method);
    }
    return out;
  }

 private:
  struct R {
    std::string method;
    std::vector<std::string> segments;
    Entry entry;
  };
  static std::vector<std::string> Split(std::string_view p) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < p.size()) {
      while (i < p.size() && p[i] == '/') ++i;
      std::size_t j = p.find('/', i);
      if (j == std::string_view::npos) j = p.size();
      if (j > i) out.emplace_back(p.substr(i, j - i));
      i = j;
    }
    return out;
  }
  std::vector<R> routes_;
};

}  // namespace continuum::http
