#include "db/hosts.hpp"

#include <libpq-fe.h>

#include <memory>
#include <string_view>

namespace continuum::db {
namespace {

std::vector<std::string> SplitCommas(std::string_view s) {
  std::vector<std::string> out;
  for (;;) {
    auto comma = s.find(',');
    out.emplace_back(s.substr(0, comma));
    if (comma == std::string_view::npos) return out;
    s.remove_prefix(comma + 1);
  }
}

}  // namespace

void HostList::AppendKeywords(std::vector<const char*>& keys, std::vector<const char*>& values,
                              std::array<std::string, 3>& storage) const {
  auto add = [&](bool has, const char* key, std::string& out, std::string Host::*field) {
    if (!has) return;
    out.clear();
    for (const auto& h : hosts) {
      if (!out.empty()) out += ',';
      out += h.*field;
    }
    keys.push_back(key);
    values.push_back(out.c_str());
  };
  add(has_host, "host", storage[0], &Host::host);
  add(has_hostaddr, "hostaddr", storage[1], &Host::hostaddr);
  add(has_port, "port", storage[2], &Host::port);
}

std::optional<HostList> ParseHosts(const std::string& conninfo) {
  char* err = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> opts(
      PQconninfoParse(conninfo.c_str(), &err), &PQconninfoFree);
  if (err) PQfreemem(err);
  if (!opts) return std::nullopt;
  std::vector<std::string> host, hostaddr, port;
  for (auto* o = opts.get(); o->keyword; ++o) {
    if (!o->val || !*o->val) continue;
    std::string_view k = o->keyword;
    if (k == "host") host = SplitCommas(o->val);
    if (k == "hostaddr") hostaddr = SplitCommas(o->val);
    if (k == "port") port = SplitCommas(o->val);
  }
  const std::size_t n = std::max(host.size(), hostaddr.size());
  // libpq's own rules: hostaddr and port lists match the host list, or port has one entry.
  if (n < 2 || (!host.empty() && host.size() != n) || (!hostaddr.empty() && hostaddr.size() != n) ||
      (port.size() > 1 && port.size() != n))
    return std::nullopt;
  HostList list;
  list.has_host = !host.empty();
  list.has_hostaddr = !hostaddr.empty();
  list.has_port = !port.empty();
  for (std::size_t i = 0; i < n; ++i) {
    list.hosts.push_back({host.empty() ? std::string() : host[i],
                          hostaddr.empty() ? std::string() : hostaddr[i],
                          port.empty() ? std::string() : port[port.size() == 1 ? 0 : i]});
  }
  return list;
}

std::optional<HostList> HostsAfter(const HostList& list, const std::string& host,
                                   const std::string& port) {
  for (std::size_t i = 0; i < list.hosts.size(); ++i) {
    const auto& h = list.hosts[i];
    const std::string& name = h.host.empty() ? h.hostaddr : h.host;
    if (name != host || (!h.port.empty() && h.port != port)) continue;
    if (i + 1 == list.hosts.size()) return std::nullopt;
    HostList rest = list;
    rest.hosts.erase(rest.hosts.begin(), rest.hosts.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    return rest;
  }
  return std::nullopt;
}

std::optional<HostList> HostsAfter(const HostList& list, const pg_conn* failed) {
  if (!failed) return std::nullopt;
  const char* host = PQhost(failed);
  const char* port = PQport(failed);
  return HostsAfter(list, host ? host : "", port ? port : "");
}

}  // namespace continuum::db
