// `continuum probe --config FILE`: the prober's TOML configuration, validated strictly
// like the portal's (unknown keys rejected with the key named). Format and an example:
// deploy/probe/README.md. Relative paths are relative to the config file's folder.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/secret.hpp"

namespace continuum::monitor {

struct Vantage {
  std::string name;
  std::vector<std::string> base_urls;  // rotated run by run
  std::vector<std::pair<std::string, std::string>> headers;
  std::string patient_username;   // default synthetic-patient-<name>
  std::string provider_username;  // default synthetic-provider-<name>
  std::string password_file;
  Secret password;                          // read from password_file
  std::string patient_id;                   // optional
  std::string patient_identifier;           // default urn:continuum:synthetic|<name>
  std::map<std::string, std::string> vars;  // extra journey variables
};

struct ProbeConfig {
  std::string listen_address = "127.0.0.1";
  uint16_t listen_port = 9140;
  int interval_s = 30;       // >= 1; each run starts interval +- 10 % after the previous one
  std::string journeys_dir;  // default: <home>/deploy/probe/journeys
  int request_timeout_ms = 5000;
  std::string report_url;  // empty: runs are not reported
  std::string report_token_file;
  Secret report_token;
  int report_timeout_ms = 2000;
  std::string alerts_log_file;  // empty: POST /alerts answers 404
  std::string alerts_token_file;
  Secret alerts_token;  // empty: no authentication on POST /alerts
  std::vector<Vantage> vantages;
};

// Throws std::runtime_error "probe config <file>: <key>: <why>".
ProbeConfig LoadProbeConfig(const std::string& path);

// The variables every run of `v` starts with (journey files may use them): vantage,
// base_url (set per run), patient_username, provider_username, password,
// patient_identifier, patient_id (when configured), run_id, today, tomorrow, now_unix,
// and the vantage's vars.
std::set<std::string> RunnerVariables(const Vantage& v);

}  // namespace continuum::monitor
