#include "monitor/probe_config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "http/client.hpp"

namespace continuum::monitor {
namespace {

namespace fs = std::filesystem;

struct Ctx {
  std::string file;
  fs::path dir;
  [[noreturn]] void Fail(const std::string& key, const std::string& why) const {
    throw std::runtime_error("probe config " + file + ": " + key + ": " + why);
  }
  std::string Resolve(const std::string& p) const {
    if (p.empty() || fs::path(p).is_absolute()) return p;
    return (dir / p).lexically_normal().string();
  }
};

void CheckKeys(const toml::table& t, const Ctx& c, const std::string& section,
               std::initializer_list<std::string_view> allowed) {
  for (auto&& [k, v] : t) {
    if (std::find(allowed.begin(), allowed.end(), k.str()) == allowed.end())
      c.Fail(section.empty() ? std::string(k.str()) : section + "." + std::string(k.str()),
             "unknown key");
  }
}

void GetString(const toml::table& t, const Ctx& c, const std::string& key_path, const char* key,
               std::string& out) {
  const toml::node* n = t.get(key);
  if (!n) return;
  auto v = n->value<std::string>();
  if (!v) c.Fail(key_path + key, "must be a string");
  out = *v;
}

void GetInt(const toml::table& t, const Ctx& c, const std::string& key_path, const char* key,
            int64_t min, int64_t max, auto& out) {
  const toml::node* n = t.get(key);
  if (!n) return;
  auto v = n->value<int64_t>();
  if (!v || *v < min || *v > max)
    c.Fail(key_path + key,
           "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
  out = static_cast<std::remove_reference_t<decltype(out)>>(*v);
}

// A secret file: its first line, without surrounding whitespace.
Secret ReadSecretFile(const Ctx& c, const std::string& key, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) c.Fail(key, "cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t b = 0;
  while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  s.erase(0, b);
  if (s.empty()) c.Fail(key, path + " is empty");
  return Secret(s);
}

bool ValidName(const std::string& s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
  });
}

void CheckUrl(const Ctx& c, const std::string& key, const std::string& url) {
  try {
    http::ParseBaseUrl(url);
  } catch (const std::invalid_argument& e) {
    c.Fail(key, e.what());
  }
}

}  // namespace

ProbeConfig LoadProbeConfig(const std::string& path) {
  Ctx c{path, fs::path(path).parent_path()};
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw std::runtime_error("probe config " + path + ": " + std::string(e.description()));
  }
  ProbeConfig cfg;
  CheckKeys(root, c, "", {"probe", "report", "alerts", "vantage"});
  if (auto* s = root["probe"].as_table()) {
    CheckKeys(
        *s, c, "probe",
        {"listen_address", "listen_port", "interval_s", "journeys_dir", "request_timeout_ms"});
    GetString(*s, c, "probe.", "listen_address", cfg.listen_address);
    GetInt(*s, c, "probe.", "listen_port", 1, 65535, cfg.listen_port);
    GetInt(*s, c, "probe.", "interval_s", 1, 86400, cfg.interval_s);
    GetString(*s, c, "probe.", "journeys_dir", cfg.journeys_dir);
    cfg.journeys_dir = c.Resolve(cfg.journeys_dir);
    GetInt(*s, c, "probe.", "request_timeout_ms", 1, 600000, cfg.request_timeout_ms);
  }
  if (auto* s = root["report"].as_table()) {
    CheckKeys(*s, c, "report", {"url", "token_file", "timeout_ms"});
    GetString(*s, c, "report.", "url", cfg.report_url);
    if (cfg.report_url.empty()) c.Fail("report.url", "is required in [report]");
    CheckUrl(c, "report.url", cfg.report_url);
    GetString(*s, c, "report.", "token_file", cfg.report_token_file);
    cfg.report_token_file = c.Resolve(cfg.report_token_file);
    if (!cfg.report_token_file.empty())
      cfg.report_token = ReadSecretFile(c, "report.token_file", cfg.report_token_file);
    GetInt(*s, c, "report.", "timeout_ms", 1, 60000, cfg.report_timeout_ms);
  }
  if (auto* s = root["alerts"].as_table()) {
    CheckKeys(*s, c, "alerts", {"log_file", "token_file"});
    GetString(*s, c, "alerts.", "log_file", cfg.alerts_log_file);
    cfg.alerts_log_file = c.Resolve(cfg.alerts_log_file);
    if (cfg.alerts_log_file.empty()) c.Fail("alerts.log_file", "is required in [alerts]");
    GetString(*s, c, "alerts.", "token_file", cfg.alerts_token_file);
    cfg.alerts_token_file = c.Resolve(cfg.alerts_token_file);
    if (!cfg.alerts_token_file.empty())
      cfg.alerts_token = ReadSecretFile(c, "alerts.token_file", cfg.alerts_token_file);
  }
  const toml::node* vn = root.get("vantage");
  const toml::array* vs = vn ? vn->as_array() : nullptr;
  if (!vs || vs->empty())
    c.Fail("vantage", "at least one [[vantage]] (name, base_urls, password_file) is required");
  for (const auto& e : *vs) {
    const toml::table* t = e.as_table();
    if (!t) c.Fail("vantage", "each entry must be a table");
    CheckKeys(*t, c, "vantage",
              {"name", "base_urls", "headers", "patient_username", "provider_username",
               "password_file", "patient_id", "patient_identifier", "vars"});
    Vantage v;
    GetString(*t, c, "vantage.", "name", v.name);
    if (!ValidName(v.name)) c.Fail("vantage.name", "must be 1 to 64 characters of [A-Za-z0-9_-]");
    std::string k = "vantage[" + v.name + "].";
    for (const auto& o : cfg.vantages)
      if (o.name == v.name) c.Fail(k + "name", "vantage " + v.name + " is listed twice");
    const toml::array* urls = (*t)["base_urls"].as_array();
    if (!urls || urls->empty()) c.Fail(k + "base_urls", "must be a non-empty list of http:// URLs");
    for (const auto& u : *urls) {
      auto s = u.value<std::string>();
      if (!s) c.Fail(k + "base_urls", "must be a list of strings");
      CheckUrl(c, k + "base_urls", *s);
      v.base_urls.push_back(*s);
    }
    if (const toml::node* h = t->get("headers")) {
      const toml::table* ht = h->as_table();
      if (!ht) c.Fail(k + "headers", "must be a table of header = \"value\"");
      for (auto&& [hk, hv] : *ht) {
        auto s = hv.value<std::string>();
        if (!s) c.Fail(k + "headers." + std::string(hk.str()), "must be a string");
        v.headers.emplace_back(std::string(hk.str()), *s);
      }
    }
    v.patient_username = "synthetic-patient-" + v.name;
    v.provider_username = "synthetic-provider-" + v.name;
    v.patient_identifier = "urn:continuum:synthetic|" + v.name;
    GetString(*t, c, k, "patient_username", v.patient_username);
    GetString(*t, c, k, "provider_username", v.provider_username);
    GetString(*t, c, k, "patient_id", v.patient_id);
    GetString(*t, c, k, "patient_identifier", v.patient_identifier);
    GetString(*t, c, k, "password_file", v.password_file);
    if (v.password_file.empty()) c.Fail(k + "password_file", "is required");
    v.password_file = c.Resolve(v.password_file);
    v.password = ReadSecretFile(c, k + "password_file", v.password_file);
    if (const toml::node* h = t->get("vars")) {
      const toml::table* ht = h->as_table();
      if (!ht) c.Fail(k + "vars", "must be a table of name = \"value\"");
      for (auto&& [hk, hv] : *ht) {
        auto s = hv.value<std::string>();
        std::string name(hk.str());
        if (!s) c.Fail(k + "vars." + name, "must be a string");
        if (!ValidName(name) || name.find('-') != std::string::npos)
          c.Fail(k + "vars." + name, "variable names are [A-Za-z0-9_]+");
        if (RunnerVariables(Vantage{}).count(name) || name == "patient_id")
          c.Fail(k + "vars." + name, "is a built-in variable");
        v.vars[name] = *s;
      }
    }
    cfg.vantages.push_back(std::move(v));
  }
  return cfg;
}

std::set<std::string> RunnerVariables(const Vantage& v) {
  std::set<std::string> out = {"vantage",          "base_url",
                               "patient_username", "provider_username",
                               "password",         "patient_identifier",
                               "run_id",           "today",
                               "tomorrow",         "now_unix"};
  if (!v.patient_id.empty()) out.insert("patient_id");
  for (const auto& [k, val] : v.vars) out.insert(k);
  return out;
}

}  // namespace continuum::monitor
