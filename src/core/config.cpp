#include "core/config.hpp"

#include <toml++/toml.h>

#include <cstdio>
#include <limits>
#include <stdexcept>

namespace continuum {
namespace {

[[noreturn]] void Fail(const std::string& path, const std::string& key, const std::string& why) {
  throw std::runtime_error("config " + path + ": " + key + ": " + why);
}

template <typename T>
void Get(const toml::table& t, const std::string& path, const std::string& section, const char* key,
         T& out) {
  const toml::node* n = t.get(key);
  if (!n) return;
  if constexpr (std::is_same_v<T, std::string>) {
    auto v = n->value<std::string>();
    if (!v) Fail(path, section + "." + key, "must be a string");
    out = *v;
  } else if constexpr (std::is_same_v<T, bool>) {
    // as_boolean, not value<bool>: the latter also takes 0 and 1.
    auto* v = n->as_boolean();
    if (!v) Fail(path, section + "." + key, "must be true or false");
    out = v->get();
  } else {
    // is_integer first: value<int64_t>() also takes true/false (as 1/0).
    auto v = n->is_integer() ? n->value<int64_t>() : std::nullopt;
    if (!v || *v < 0) Fail(path, section + "." + key, "must be a non-negative integer");
    if (static_cast<uint64_t>(*v) > static_cast<uint64_t>(std::numeric_limits<T>::max()))
      Fail(path, section + "." + key, "is too large");
    out = static_cast<T>(*v);
  }
}

void CheckKeys(const toml::table& t, const std::string& path, const std::string& section,
               std::initializer_list<std::string_view> allowed) {
  for (auto&& [k, v] : t) {
    bool ok = false;
    for (auto a : allowed) ok = ok || a == k.str();
    if (!ok)
      Fail(path, section.empty() ? std::string(k.str()) : section + "." + std::string(k.str()),
           "unknown key");
  }
}

// An absolute http(s) URL with a host, no query, fragment or user info; returns it
// without trailing '/'. Empty string when `url` is not one.
std::string NormalisePublicBaseUrl(std::string url) {
  std::string_view rest;
  if (url.rfind("http://", 0) == 0)
    rest = std::string_view(url).substr(7);
  else if (url.rfind("https://", 0) == 0)
    rest = std::string_view(url).substr(8);
  else
    return {};
  if (url.find_first_of("?# \t\r\n\"") != std::string::npos) return {};
  std::string_view authority = rest.substr(0, rest.find('/'));
  if (authority.empty() || authority.find('@') != std::string_view::npos ||
      authority.front() == ':')
    return {};
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

}  // namespace

std::string Config::PublicBaseUrl() const {
  if (!public_base_url.empty()) return public_base_url;
  std::string host = listen_address;
  if (host.empty() || host == "0.0.0.0" || host == "::") host = "127.0.0.1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(listen_port);
}

Config DefaultConfig() {
  Config c;
  c.limits(Tier::kCritical) = {8, 256, 3000, 1024};
  c.limits(Tier::kHigh) = {3, 64, 3000, 128};
  c.limits(Tier::kMedium) = {2, 32, 5000, 32};
  c.limits(Tier::kLow) = {2, 32, 2000, 64};
  c.limits(Tier::kOps) = {2, 32, 2000, 64};
  return c;
}

Config LoadConfig(const std::string& path) {
  Config c = DefaultConfig();
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw std::runtime_error("config " + path + ": " + std::string(e.description()));
  }
  CheckKeys(root, path, "",
            {"server", "node", "database", "topology", "cache", "dependencies", "jobs",
             "notifications", "ehr", "auth", "audit", "ops", "web", "fault_injection"});
  if (auto* s = root["server"].as_table()) {
    CheckKeys(*s, path, "server",
              {"listen_address", "listen_port", "threads", "body_limit_bytes", "header_timeout_ms",
               "idle_timeout_ms", "shutdown_grace_ms", "drain_ms", "access_log", "trusted_proxies",
               "public_base_url", "critical_first_in_flight", "critical_first_threshold",
               "critical_first_lag_us"});
    Get(*s, path, "server", "listen_address", c.listen_address);
    Get(*s, path, "server", "listen_port", c.listen_port);
    Get(*s, path, "server", "threads", c.threads);
    Get(*s, path, "server", "body_limit_bytes", c.body_limit_bytes);
    Get(*s, path, "server", "header_timeout_ms", c.header_timeout_ms);
    Get(*s, path, "server", "idle_timeout_ms", c.idle_timeout_ms);
    Get(*s, path, "server", "shutdown_grace_ms", c.shutdown_grace_ms);
    Get(*s, path, "server", "drain_ms", c.drain_ms);
    if (c.drain_ms < 0 || c.drain_ms > 600000)
      Fail(path, "server.drain_ms",
           "must be between 0 and 600000 (milliseconds of readiness 503 before a SIGTERM stops "
           "accepting), got " +
               std::to_string(c.drain_ms));
    Get(*s, path, "server", "critical_first_in_flight", c.critical_first_in_flight);
    if (c.critical_first_in_flight > 100000)
      Fail(path, "server.critical_first_in_flight",
           "must be between 0 (off) and 100000 (requests per lower tier a node works on at once "
           "while it serves critical-tier requests), got " +
               std::to_string(c.critical_first_in_flight));
    Get(*s, path, "server", "critical_first_threshold", c.critical_first_threshold);
    if (c.critical_first_threshold < 1 || c.critical_first_threshold > 100000)
      Fail(path, "server.critical_first_threshold",
           "must be between 1 and 100000 (critical-tier requests a node works on at once from "
           "which the other tiers yield), got " +
               std::to_string(c.critical_first_threshold));
    Get(*s, path, "server", "critical_first_lag_us", c.critical_first_lag_us);
    if (c.critical_first_lag_us < 0 || c.critical_first_lag_us > 10000000)
      Fail(path, "server.critical_first_lag_us",
           "must be between 0 (engage on the threshold alone) and 10000000 (microseconds a "
           "node's event loop runs late, its CPU saturated, from which the other tiers "
           "yield), got " +
               std::to_string(c.critical_first_lag_us));
    Get(*s, path, "server", "access_log", c.access_log);
    if (s->get("public_base_url")) {
      std::string url;
      Get(*s, path, "server", "public_base_url", url);
      c.public_base_url = NormalisePublicBaseUrl(url);
      if (c.public_base_url.empty())
        Fail(path, "server.public_base_url",
             "must be an absolute http:// or https:// URL with a host and no query, fragment "
             "or user info (the edge's public address, e.g. \"https://portal.example\"), not \"" +
                 url + "\"");
    }
    if (const toml::node* n = s->get("trusted_proxies")) {
      const toml::array* a = n->as_array();
      if (!a) Fail(path, "server.trusted_proxies", "must be an array of addresses");
      for (const auto& e : *a) {
        auto v = e.value<std::string>();
        if (!v) Fail(path, "server.trusted_proxies", "must be an array of address strings");
        c.trusted_proxies.push_back(*v);
      }
    }
  }
  if (auto* s = root["node"].as_table()) {
    CheckKeys(*s, path, "node", {"region", "node_id"});
    Get(*s, path, "node", "region", c.region);
    Get(*s, path, "node", "node_id", c.node_id);
  }
  if (auto* s = root["database"].as_table()) {
    std::initializer_list<std::string_view> keys = {
        "url", "critical", "high", "medium", "low", "ops", "clinical_commit", "read_group_limit"};
    CheckKeys(*s, path, "database", keys);
    Get(*s, path, "database", "clinical_commit", c.clinical_commit);
    Get(*s, path, "database", "read_group_limit", c.read_group_limit);
    if (c.read_group_limit < 1 || c.read_group_limit > 64)
      Fail(path, "database.read_group_limit", "must be between 1 and 64");
    if (c.clinical_commit != "auto" && c.clinical_commit != "sync-standby" &&
        c.clinical_commit != "local")
      Fail(path, "database.clinical_commit", "must be \"auto\", \"sync-standby\" or \"local\"");
    std::string url = c.database_url.reveal();
    Get(*s, path, "database", "url", url);
    c.database_url = Secret(url);
    for (Tier t : kAllTiers) {
      std::string name(TierName(t));
      if (auto* tt = (*s)[name].as_table()) {
        CheckKeys(*tt, path, "database." + name,
                  {"pool_size", "queue_limit", "deadline_ms", "max_in_flight"});
        Get(*tt, path, "database." + name, "pool_size", c.limits(t).pool_size);
        Get(*tt, path, "database." + name, "queue_limit", c.limits(t).queue_limit);
        Get(*tt, path, "database." + name, "deadline_ms", c.limits(t).deadline_ms);
        Get(*tt, path, "database." + name, "max_in_flight", c.limits(t).max_in_flight);
        if (c.limits(t).max_in_flight < 1)
          Fail(path, "database." + name + ".max_in_flight", "must be >= 1");
        if (c.limits(t).pool_size < 1)
          Fail(path, "database." + name + ".pool_size", "must be >= 1");
      }
    }
  }
  if (auto* s = root["topology"].as_table()) {
    CheckKeys(*s, path, "topology", {"max_replica_lag_ms", "probe_interval_ms", "region"});
    Get(*s, path, "topology", "max_replica_lag_ms", c.max_replica_lag_ms);
    Get(*s, path, "topology", "probe_interval_ms", c.probe_interval_ms);
    if (c.probe_interval_ms < 50) Fail(path, "topology.probe_interval_ms", "must be >= 50");
    const toml::array* regions = (*s)["region"].as_array();
    if (!regions || regions->empty())
      Fail(path, "topology.region",
           "must list every region's database as [[topology.region]] tables (name, "
           "database_url), this node's region first");
    for (const auto& e : *regions) {
      const toml::table* t = e.as_table();
      if (!t)
        Fail(path, "topology.region", "each entry must be a table with name and database_url");
      CheckKeys(*t, path, "topology.region", {"name", "database_url"});
      RegionDatabaseConfig r;
      std::string url;
      Get(*t, path, "topology.region", "name", r.name);
      Get(*t, path, "topology.region", "database_url", url);
      if (r.name.empty() || url.empty())
        Fail(path, "topology.region", "every entry needs a name and a database_url");
      for (const auto& o : c.topology_regions)
        if (o.name == r.name)
          Fail(path, "topology.region", "region " + r.name + " is listed twice");
      r.database_url = Secret(url);
      c.topology_regions.push_back(std::move(r));
    }
  }
  if (auto* s = root["cache"].as_table()) {
    CheckKeys(*s, path, "cache",
              {"fresh_ms", "stale_while_revalidate_ms", "stale_if_error_ms", "max_entries"});
    Get(*s, path, "cache", "fresh_ms", c.cache_fresh_ms);
    Get(*s, path, "cache", "stale_while_revalidate_ms", c.cache_stale_while_revalidate_ms);
    Get(*s, path, "cache", "stale_if_error_ms", c.cache_stale_if_error_ms);
    Get(*s, path, "cache", "max_entries", c.cache_max_entries);
    if (c.cache_max_entries < 1) Fail(path, "cache.max_entries", "must be >= 1");
  }
  if (auto* s = root["dependencies"].as_table()) {
    CheckKeys(*s, path, "dependencies",
              {"payments", "insurance", "pharmacy", "ehr", "sms", "smtp"});
    for (auto&& [k, v] : *s) {
      std::string sec = "dependencies." + std::string(k.str());
      const toml::table* t = v.as_table();
      if (!t) Fail(path, sec, "must be a table (url, timeout_ms, ...)");
      CheckKeys(*t, path, sec,
                {"url", "timeout_ms", "check_interval_ms", "failure_threshold", "open_ms",
                 "failure_rate_pct", "ca_file", "allow_plaintext"});
      DependencyConfig d;
      d.name = std::string(k.str());
      Get(*t, path, sec, "url", d.url);
      Get(*t, path, sec, "timeout_ms", d.timeout_ms);
      Get(*t, path, sec, "check_interval_ms", d.check_interval_ms);
      Get(*t, path, sec, "failure_threshold", d.failure_threshold);
      Get(*t, path, sec, "open_ms", d.open_ms);
      Get(*t, path, sec, "failure_rate_pct", d.failure_rate_pct);
      Get(*t, path, sec, "ca_file", d.ca_file);
      Get(*t, path, sec, "allow_plaintext", d.allow_plaintext);
      if (d.failure_rate_pct > 100) Fail(path, sec + ".failure_rate_pct", "must be 0 to 100");
      if (d.name == "smtp") {
        if (!d.url.starts_with("smtp://"))
          Fail(path, sec + ".url",
               "must be an smtp:// URL (smtp://127.0.0.1:25; STARTTLS is required unless "
               "allow_plaintext = true)");
      } else if (d.url.starts_with("http://")) {
        if (!d.allow_plaintext)
          Fail(path, sec + ".url",
               "is plain http://, which would send PHI in clear text: use https:// (with "
               "ca_file), or set allow_plaintext = true to allow it explicitly");
      } else if (!d.url.starts_with("https://")) {
        Fail(path, sec + ".url", "must be an https:// URL");
      }
      if (!d.ca_file.empty()) {
        std::FILE* f = std::fopen(d.ca_file.c_str(), "rb");
        if (!f) Fail(path, sec + ".ca_file", "cannot read " + d.ca_file);
        std::fclose(f);
      }
      if (d.timeout_ms < 1 || d.failure_threshold < 1)
        Fail(path, sec, "timeout_ms and failure_threshold must be >= 1");
      c.dependencies.push_back(std::move(d));
    }
  }
  if (auto* s = root["jobs"].as_table()) {
    CheckKeys(*s, path, "jobs", {"poll_ms", "lock_ms", "max_attempts"});
    Get(*s, path, "jobs", "poll_ms", c.job_poll_ms);
    if (c.job_poll_ms < 50) Fail(path, "jobs.poll_ms", "must be >= 50");
    Get(*s, path, "jobs", "lock_ms", c.job_lock_ms);
    if (c.job_lock_ms < 1000) Fail(path, "jobs.lock_ms", "must be >= 1000");
    Get(*s, path, "jobs", "max_attempts", c.job_max_attempts);
    if (c.job_max_attempts < 1) Fail(path, "jobs.max_attempts", "must be >= 1");
  }
  if (auto* s = root["notifications"].as_table()) {
    CheckKeys(*s, path, "notifications", {"from", "poll_ms"});
    Get(*s, path, "notifications", "from", c.notify_from);
    Get(*s, path, "notifications", "poll_ms", c.notify_poll_ms);
    if (c.notify_poll_ms < 50) Fail(path, "notifications.poll_ms", "must be >= 50");
    auto at = c.notify_from.find('@');
    if (at == std::string::npos || at == 0 || at + 1 == c.notify_from.size() ||
        c.notify_from.find_first_of(" <>\r\n") != std::string::npos)
      Fail(path, "notifications.from", "must be a bare email address (noreply@example.org)");
  }
  if (auto* s = root["ehr"].as_table()) {
    CheckKeys(*s, path, "ehr", {"sync_interval_ms"});
    Get(*s, path, "ehr", "sync_interval_ms", c.ehr_sync_interval_ms);
    if (c.ehr_sync_interval_ms < 100) Fail(path, "ehr.sync_interval_ms", "must be >= 100");
  }
  if (auto* s = root["auth"].as_table()) {
    CheckKeys(
        *s, path, "auth",
        {"key_file", "session_idle_s", "session_absolute_s", "max_login_failures", "lockout_s",
         "revocation_poll_ms", "login_burst", "login_rate_per_minute", "account_lockout_failures",
         "login_pool_size", "login_max_in_flight", "login_cpu_queue", "login_hash_threads",
         "login_hash_nice", "login_hash_idle", "login_cpu_percent", "login_cpu_burst_s"});
    Get(*s, path, "auth", "key_file", c.key_file);
    Get(*s, path, "auth", "session_idle_s", c.session_idle_s);
    Get(*s, path, "auth", "session_absolute_s", c.session_absolute_s);
    Get(*s, path, "auth", "max_login_failures", c.max_login_failures);
    Get(*s, path, "auth", "lockout_s", c.lockout_s);
    Get(*s, path, "auth", "revocation_poll_ms", c.revocation_poll_ms);
    Get(*s, path, "auth", "login_burst", c.login_burst);
    Get(*s, path, "auth", "login_rate_per_minute", c.login_rate_per_minute);
    Get(*s, path, "auth", "account_lockout_failures", c.account_lockout_failures);
    Get(*s, path, "auth", "login_pool_size", c.login_pool_size);
    Get(*s, path, "auth", "login_max_in_flight", c.login_max_in_flight);
    Get(*s, path, "auth", "login_cpu_queue", c.login_cpu_queue);
    Get(*s, path, "auth", "login_hash_threads", c.login_hash_threads);
    Get(*s, path, "auth", "login_hash_nice", c.login_hash_nice);
    Get(*s, path, "auth", "login_hash_idle", c.login_hash_idle);
    Get(*s, path, "auth", "login_cpu_percent", c.login_cpu_percent);
    Get(*s, path, "auth", "login_cpu_burst_s", c.login_cpu_burst_s);
    if (c.login_hash_nice < 0 || c.login_hash_nice > 19)
      Fail(path, "auth.login_hash_nice", "must be 0..19");
    if (c.login_cpu_percent < 1 || c.login_cpu_percent > 100)
      Fail(path, "auth.login_cpu_percent", "must be 1..100 (percent of the node's CPUs)");
    if (c.login_cpu_burst_s < 0) Fail(path, "auth.login_cpu_burst_s", "must be >= 0");
    for (auto [key, v] : {std::pair{"max_login_failures", c.max_login_failures},
                          std::pair{"account_lockout_failures", c.account_lockout_failures},
                          std::pair{"login_pool_size", c.login_pool_size},
                          std::pair{"login_max_in_flight", c.login_max_in_flight},
                          std::pair{"login_cpu_queue", c.login_cpu_queue},
                          std::pair{"login_hash_threads", c.login_hash_threads}})
      if (v < 1) Fail(path, std::string("auth.") + key, "must be >= 1");
  }
  if (auto* s = root["audit"].as_table()) {
    CheckKeys(*s, path, "audit",
              {"enabled", "dir", "ship_interval_ms", "max_pending_records", "min_free_mb",
               "preallocate_kb", "group_commit_wait_us", "signing_key_file", "head_interval_ms"});
    Get(*s, path, "audit", "enabled", c.audit_enabled);
    Get(*s, path, "audit", "dir", c.audit_dir);
    Get(*s, path, "audit", "ship_interval_ms", c.audit_ship_interval_ms);
    Get(*s, path, "audit", "max_pending_records", c.audit_max_pending_records);
    if (c.audit_max_pending_records < 1)
      Fail(path, "audit.max_pending_records", "must be at least 1");
    Get(*s, path, "audit", "min_free_mb", c.audit_min_free_mb);
    if (c.audit_min_free_mb < 0 || c.audit_min_free_mb > 1048576)
      Fail(path, "audit.min_free_mb", "must be 0..1048576 (MiB; 0: no reserve)");
    Get(*s, path, "audit", "preallocate_kb", c.audit_preallocate_kb);
    if (c.audit_preallocate_kb < 0 || c.audit_preallocate_kb > 65536)
      Fail(path, "audit.preallocate_kb", "must be 0..65536 (KiB; 0: append)");
    Get(*s, path, "audit", "group_commit_wait_us", c.audit_group_commit_wait_us);
    if (c.audit_group_commit_wait_us < 0 || c.audit_group_commit_wait_us > 10000)
      Fail(path, "audit.group_commit_wait_us", "must be 0..10000 (microseconds; 0: no wait)");
    Get(*s, path, "audit", "signing_key_file", c.audit_signing_key_file);
    Get(*s, path, "audit", "head_interval_ms", c.audit_head_interval_ms);
    if (c.audit_head_interval_ms < 100 || c.audit_head_interval_ms > 60000)
      Fail(path, "audit.head_interval_ms", "must be 100..60000");
  }
  if (auto* s = root["ops"].as_table()) {
    CheckKeys(*s, path, "ops", {"token_file", "prometheus_url", "chaos_hooks"});
    Get(*s, path, "ops", "chaos_hooks", c.chaos_hooks);
    if (s->get("token_file")) {
      Get(*s, path, "ops", "token_file", c.ops_token_file);
      if (c.ops_token_file.empty())
        Fail(path, "ops.token_file", "must name a file (leave it out to disable the ops API)");
    }
    if (s->get("prometheus_url")) {
      Get(*s, path, "ops", "prometheus_url", c.prometheus_url);
      std::string_view u = c.prometheus_url;
      if (!u.starts_with("http://") || u.size() <= 7 || u.find_first_of("?#") != u.npos)
        Fail(path, "ops.prometheus_url",
             "must be Prometheus' http:// address, e.g. http://127.0.0.1:9090 (no query)");
      while (c.prometheus_url.ends_with('/')) c.prometheus_url.pop_back();
    }
  }
  if (auto* s = root["web"].as_table()) {
    CheckKeys(*s, path, "web", {"root", "enabled"});
    Get(*s, path, "web", "enabled", c.web_enabled);
    if (s->get("root")) {
      Get(*s, path, "web", "root", c.web_root);
      if (c.web_root.empty())
        Fail(path, "web.root",
             "must name a folder (leave it out for the default, or set enabled = false)");
    }
  }
  if (auto* s = root["fault_injection"].as_table()) {
    CheckKeys(*s, path, "fault_injection",
              {"error_permille", "extra_latency_ms", "crash_on_start", "never_ready"});
    Get(*s, path, "fault_injection", "error_permille", c.fault_error_permille);
    Get(*s, path, "fault_injection", "extra_latency_ms", c.fault_extra_latency_ms);
    Get(*s, path, "fault_injection", "crash_on_start", c.fault_crash_on_start);
    Get(*s, path, "fault_injection", "never_ready", c.fault_never_ready);
    if (c.fault_error_permille > 1000)
      Fail(path, "fault_injection.error_permille", "must be 0..1000 (failed requests per 1,000)");
    if (c.fault_extra_latency_ms > 60000)
      Fail(path, "fault_injection.extra_latency_ms", "must be 0..60000");
  }
  if (!c.topology_regions.empty()) {
    bool found = false;
    for (const auto& r : c.topology_regions) found = found || r.name == c.region;
    if (!found)
      Fail(path, "topology.region",
           "no entry for this node's own region \"" + c.region + "\" (node.region)");
  }
  return c;
}

std::string Config::AuditSigningKeyFile() const {
  if (!audit_signing_key_file.empty()) return audit_signing_key_file;
  std::string dir = audit_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const auto slash = dir.rfind('/');
  const std::string parent =
      slash == std::string::npos ? "." : dir.substr(0, slash == 0 ? 1 : slash);
  return parent + (parent == "/" ? "" : "/") + "audit-signing-" + node_id + ".key";
}

}  // namespace continuum
