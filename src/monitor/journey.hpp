// Synthetic journeys as data (deploy/probe/journeys/*.json, format in
// deploy/probe/README.md): a journey is a list of HTTP steps with `${var}` substitution,
// expected statuses, JSON assertions, captures and a latency budget per step.
//
// Files are validated strictly when loaded (unknown keys, bad paths, undefined
// variables, duplicate step names): the error names the file and the step. At run time
// Evaluate() judges one response; it never copies a response body into its result, only
// an OperationOutcome's issue code and truncated diagnostics (no PHI in excerpts).
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace continuum::monitor {

// A path into a JSON document: dot-separated keys; a segment of digits indexes an array
// ("entry.0.resource.resourceType").
struct JsonPath {
  std::string text;
  std::vector<std::string> segments;
};
// Throws std::invalid_argument saying what is wrong.
JsonPath ParseJsonPath(std::string_view text);
// nullptr when the path does not lead anywhere.
const boost::json::value* Find(const boost::json::value& root, const JsonPath& path);

using Vars = std::map<std::string, std::string>;

// A `${name}` whose variable is not defined.
struct MissingVariable : std::runtime_error {
  explicit MissingVariable(const std::string& name)
      : std::runtime_error("variable ${" + name + "} is not defined"), name(name) {}
  std::string name;
};

// The variable names a text refers to; throws std::invalid_argument for a malformed
// reference ("${" without "}", an empty or invalid name). Names: [A-Za-z0-9_]+.
// `${url:name}` is the value percent-encoded (for query strings and path segments).
std::vector<std::string> VariablesIn(std::string_view text);
// Replaces every ${name}; throws MissingVariable.
std::string Substitute(std::string_view text, const Vars& vars);
// Substitutes inside every string (keys stay as they are) of a JSON value.
boost::json::value SubstituteJson(const boost::json::value& v, const Vars& vars);

struct Assertion {
  enum class Op { kEquals, kExists, kCountGe };
  JsonPath path;
  Op op = Op::kExists;
  boost::json::value expected;  // kEquals: a scalar (strings substituted); kExists: bool
  int64_t count = 0;            // kCountGe
  std::string Describe() const;
};

struct Capture {
  std::string var;
  std::optional<JsonPath> json;  // from the response body
  std::string header;            // or from a response header (lower-cased name)
};

struct Step {
  std::string name;
  std::string description;
  std::string method;
  std::string path;
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<boost::json::value> body;
  std::vector<int> expect_status;
  std::vector<Assertion> assertions;
  std::vector<Capture> captures;
  int budget_ms = 2000;
  bool always = false;  // runs even after an earlier step failed (log-out)
};

struct Journey {
  std::string name;  // the file's stem: "patient", "provider"
  std::string file;
  std::string description;
  std::vector<Step> steps;
};

// Parses and validates one journey. `defined` are the variables the runner provides
// before the first step; each step may use those and what earlier steps capture.
// Throws std::runtime_error "journey <file>: step <name>: <why>".
Journey ParseJourney(std::string_view text, const std::string& file, const std::string& name,
                     const std::set<std::string>& defined);
// Every *.json in `dir`, sorted by name; at least one.
std::vector<Journey> LoadJourneys(const std::string& dir, const std::set<std::string>& defined);

// Why a step failed, as in continuum_probe_journey_failure_info's reason label.
enum class FailReason { kNone, kStatus, kAssert, kBudget, kTransport, kCapture };
std::string_view ReasonName(FailReason r);

struct StepVerdict {
  FailReason reason = FailReason::kNone;
  std::string excerpt;  // short, no PHI
  bool ok() const { return reason == FailReason::kNone; }
};

// Judges a response against the step's expected status, assertions and captures (in
// that order); on success the captures are added to `vars`. The latency budget is the
// caller's (it measures the time).
StepVerdict Evaluate(const Step& step, int status, std::string_view body,
                     const std::vector<std::pair<std::string, std::string>>& headers, Vars& vars);

// A PHI-free excerpt of an error response: "<issue code>: <diagnostics>" of a FHIR
// OperationOutcome or "<code>: <error>" of an {"error","code"} body, at most `max`
// bytes; "" for anything else (a resource body is never quoted).
std::string Excerpt(std::string_view body, std::size_t max = 120);

}  // namespace continuum::monitor
