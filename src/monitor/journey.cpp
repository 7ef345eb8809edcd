#include "monitor/journey.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace continuum::monitor {
namespace json = boost::json;

namespace {

bool IsNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Load-time errors: "journey <file>[: step <name>]: <why>".
struct Where {
  const std::string& file;
  std::string step;
  [[noreturn]] void Fail(const std::string& why) const {
    throw std::runtime_error("journey " + file + (step.empty() ? "" : ": step " + step) + ": " +
                             why);
  }
};

void CheckKeys(const json::object& o, std::initializer_list<std::string_view> allowed,
               const Where& w, const std::string& what) {
  for (const auto& kv : o) {
    if (std::find(allowed.begin(), allowed.end(), kv.key()) == allowed.end()) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      w.Fail("unknown key \"" + std::string(kv.key()) + "\" in " + what + " (allowed: " + list +
             ")");
    }
  }
}

std::string RequireString(const json::object& o, std::string_view key, const Where& w,
                          bool required = true) {
  auto* v = o.if_contains(key);
  if (!v) {
    if (required) w.Fail("\"" + std::string(key) + "\" is required");
    return {};
  }
  if (!v->is_string()) w.Fail("\"" + std::string(key) + "\" must be a string");
  return std::string(v->as_string());
}

JsonPath PathOrFail(const json::value* v, const Where& w, const std::string& what) {
  if (!v || !v->is_string()) w.Fail(what + " must be a string path like entry.0.resource.id");
  try {
    return ParseJsonPath(v->as_string());
  } catch (const std::invalid_argument& e) {
    w.Fail(what + ": " + e.what());
  }
}

// Every variable used in `text` must be defined by now.
void CheckVars(std::string_view text, const std::set<std::string>& defined, bool always,
               const Where& w, const std::string& what) {
  std::vector<std::string> names;
  try {
    names = VariablesIn(text);
  } catch (const std::invalid_argument& e) {
    w.Fail(what + ": " + e.what());
  }
  for (const auto& n : names)
    if (!defined.count(n))
      w.Fail(what + " uses ${" + n + "}, which is neither provided by the runner nor captured " +
             (always ? "by any step" : "by an earlier step"));
}

void CheckJsonVars(const json::value& v, const std::set<std::string>& defined, bool always,
                   const Where& w, const std::string& what) {
  if (v.is_string()) {
    CheckVars(v.as_string(), defined, always, w, what);
  } else if (v.is_array()) {
    for (const auto& e : v.as_array()) CheckJsonVars(e, defined, always, w, what);
  } else if (v.is_object()) {
    for (const auto& kv : v.as_object()) CheckJsonVars(kv.value(), defined, always, w, what);
  }
}

Assertion ParseAssertion(const json::value& v, const Where& w, std::size_t i) {
  std::string what = "assert[" + std::to_string(i) + "]";
  if (!v.is_object()) w.Fail(what + " must be an object {\"path\", one of equals|exists|count_ge}");
  const auto& o = v.as_object();
  CheckKeys(o, {"path", "equals", "exists", "count_ge"}, w, what);
  Assertion a;
  a.path = PathOrFail(o.if_contains("path"), w, what + ".path");
  int ops = 0;
  if (auto* e = o.if_contains("equals")) {
    ++ops;
    if (e->is_object() || e->is_array())
      w.Fail(what + ".equals must be a string, number, bool or null");
    a.op = Assertion::Op::kEquals;
    a.expected = *e;
  }
  if (auto* e = o.if_contains("exists")) {
    ++ops;
    if (!e->is_bool()) w.Fail(what + ".exists must be true or false");
    a.op = Assertion::Op::kExists;
    a.expected = *e;
  }
  if (auto* e = o.if_contains("count_ge")) {
    ++ops;
    if (!e->is_int64() || e->as_int64() < 0)
      w.Fail(what + ".count_ge must be a non-negative integer");
    a.op = Assertion::Op::kCountGe;
    a.count = e->as_int64();
  }
  if (ops != 1) w.Fail(what + " needs exactly one of equals, exists, count_ge");
  return a;
}

Step ParseStep(const json::value& v, std::size_t index, const std::string& file,
               std::set<std::string>& defined, const std::set<std::string>& all_captures) {
  Where w{file, "#" + std::to_string(index + 1)};
  if (!v.is_object()) w.Fail("must be an object");
  const auto& o = v.as_object();
  Step s;
  s.name = RequireString(o, "name", w);
  if (s.name.empty() || s.name.size() > 64 ||
      !std::all_of(s.name.begin(), s.name.end(), [](char c) { return IsNameChar(c) || c == '-'; }))
    w.Fail("name must be 1 to 64 characters of [A-Za-z0-9_-]");
  w.step = s.name;
  CheckKeys(o,
            {"name", "description", "method", "path", "headers", "body", "expect_status", "assert",
             "capture", "budget_ms", "always"},
            w, "a step");
  s.description = RequireString(o, "description", w, false);
  s.method = RequireString(o, "method", w);
  static const std::set<std::string> kMethods = {"GET", "POST", "PUT", "PATCH", "DELETE"};
  if (!kMethods.count(s.method)) w.Fail("method must be one of GET, POST, PUT, PATCH, DELETE");
  s.path = RequireString(o, "path", w);
  if (s.path.empty() || s.path[0] != '/') w.Fail("path must start with /");
  for (char c : s.path)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f)
      w.Fail("path must not contain spaces or control characters (percent-encode them)");
  if (auto* a = o.if_contains("always")) {
    if (!a->is_bool()) w.Fail("always must be true or false");
    s.always = a->as_bool();
  }
  // An always-step runs even when earlier captures are missing (it is skipped then),
  // so it may use what any step captures.
  const std::set<std::string>& vars_ok = s.always ? all_captures : defined;
  CheckVars(s.path, vars_ok, s.always, w, "path");
  if (auto* h = o.if_contains("headers")) {
    if (!h->is_object()) w.Fail("headers must be an object of strings");
    for (const auto& kv : h->as_object()) {
      if (!kv.value().is_string()) w.Fail("header " + std::string(kv.key()) + " must be a string");
      std::string name(kv.key());
      if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
          }))
        w.Fail("header name \"" + name + "\" is not a valid HTTP header name");
      CheckVars(kv.value().as_string(), vars_ok, s.always, w, "header " + name);
      s.headers.emplace_back(name, std::string(kv.value().as_string()));
    }
  }
  if (auto* b = o.if_contains("body")) {
    if (!b->is_object() && !b->is_array()) w.Fail("body must be a JSON object or array");
    CheckJsonVars(*b, vars_ok, s.always, w, "body");
    s.body = *b;
  }
  if (auto* e = o.if_contains("expect_status")) {
    auto add = [&](const json::value& x) {
      if (!x.is_int64() || x.as_int64() < 100 || x.as_int64() > 599)
        w.Fail("expect_status must be an HTTP status (100-599) or a list of them");
      s.expect_status.push_back(static_cast<int>(x.as_int64()));
    };
    if (e->is_array()) {
      if (e->as_array().empty()) w.Fail("expect_status must not be an empty list");
      for (const auto& x : e->as_array()) add(x);
    } else {
      add(*e);
    }
  } else {
    s.expect_status = {200};
  }
  if (auto* a = o.if_contains("assert")) {
    if (!a->is_array()) w.Fail("assert must be a list");
    for (std::size_t i = 0; i < a->as_array().size(); ++i) {
      s.assertions.push_back(ParseAssertion(a->as_array()[i], w, i));
      if (s.assertions.back().expected.is_string())
        CheckVars(s.assertions.back().expected.as_string(), vars_ok, s.always, w,
                  "assert[" + std::to_string(i) + "].equals");
    }
  }
  if (auto* c = o.if_contains("budget_ms")) {
    if (!c->is_int64() || c->as_int64() < 1 || c->as_int64() > 600000)
      w.Fail("budget_ms must be an integer from 1 to 600000");
    s.budget_ms = static_cast<int>(c->as_int64());
  } else {
    w.Fail("budget_ms is required (the step's latency budget)");
  }
  if (auto* c = o.if_contains("capture")) {
    if (!c->is_object()) w.Fail("capture must be an object {var: {json: path} | {header: name}}");
    for (const auto& kv : c->as_object()) {
      std::string var(kv.key());
      std::string what = "capture " + var;
      if (var.empty() || !std::all_of(var.begin(), var.end(), IsNameChar))
        w.Fail(what + ": variable names are [A-Za-z0-9_]+");
      if (!kv.value().is_object()) w.Fail(what + " must be {\"json\": path} or {\"header\": name}");
      const auto& co = kv.value().as_object();
      CheckKeys(co, {"json", "header"}, w, what);
      Capture cap;
      cap.var = var;
      if (co.size() != 1) w.Fail(what + " needs exactly one of json, header");
      if (auto* p = co.if_contains("json")) cap.json = PathOrFail(p, w, what + ".json");
      if (auto* p = co.if_contains("header")) {
        if (!p->is_string() || p->as_string().empty()) w.Fail(what + ".header must be a name");
        cap.header = Lower(p->as_string());
      }
      s.captures.push_back(std::move(cap));
    }
  }
  // Captures become usable by the steps after this one.
  for (const auto& cap : s.captures) defined.insert(cap.var);
  return s;
}

std::string Truncate(std::string s, std::size_t max) {
  if (s.size() <= max) return s;
  s.resize(max);
  // Do not cut a UTF-8 sequence in half.
  while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0xC0) == 0x80) s.pop_back();
  if (!s.empty() && (static_cast<unsigned char>(s.back()) & 0x80)) s.pop_back();
  return s + "...";
}

std::string Scalar(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  return json::serialize(v);
}

bool ScalarEquals(const json::value& actual, const json::value& expected) {
  if (expected.is_string()) return actual.is_string() && actual.as_string() == expected.as_string();
  if (expected.is_bool()) return actual.is_bool() && actual.as_bool() == expected.as_bool();
  if (expected.is_null()) return actual.is_null();
  if (!actual.is_number()) return false;
  return actual.to_number<double>() == expected.to_number<double>();
}

}  // namespace

JsonPath ParseJsonPath(std::string_view text) {
  JsonPath p;
  p.text = std::string(text);
  if (text.empty()) throw std::invalid_argument("empty path");
  std::size_t start = 0;
  while (true) {
    std::size_t dot = text.find('.', start);
    std::string_view seg = text.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (seg.empty()) throw std::invalid_argument("empty segment in path \"" + p.text + "\"");
    for (char c : seg)
      if (!IsNameChar(c) && c != '-' && c != '$')
        throw std::invalid_argument("invalid character '" + std::string(1, c) + "' in path \"" +
                                    p.text + "\" (segments are keys or array indexes)");
    p.segments.emplace_back(seg);
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return p;
}

const json::value* Find(const json::value& root, const JsonPath& path) {
  const json::value* cur = &root;
  for (const auto& seg : path.segments) {
    if (cur->is_object()) {
      cur = cur->as_object().if_contains(seg);
    } else if (cur->is_array() && AllDigits(seg) && seg.size() < 10) {
      std::size_t i = std::stoul(seg);
      const auto& a = cur->as_array();
      cur = i < a.size() ? &a[i] : nullptr;
    } else {
      return nullptr;
    }
    if (!cur) return nullptr;
  }
  return cur;
}

namespace {
constexpr std::string_view kUrlPrefix = "url:";

// RFC 3986 unreserved characters stay, everything else is %XX.
std::string PercentEncode(std::string_view s) {
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~')
      out += c;
    else
      out += fmt::format("%{:02X}", u);
  }
  return out;
}
}  // namespace

std::vector<std::string> VariablesIn(std::string_view text) {
  std::vector<std::string> out;
  for (std::size_t i = text.find("${"); i != std::string_view::npos; i = text.find("${", i)) {
    std::size_t end = text.find('}', i + 2);
    if (end == std::string_view::npos)
      throw std::invalid_argument("\"${\" without a closing \"}\"");
    std::string_view name = text.substr(i + 2, end - i - 2);
    if (name.starts_with(kUrlPrefix)) name.remove_prefix(kUrlPrefix.size());
    if (name.empty() || !std::all_of(name.begin(), name.end(), IsNameChar))
      throw std::invalid_argument("invalid variable name \"${" + std::string(name) + "}\"");
    out.emplace_back(name);
    i = end + 1;
  }
  return out;
}

std::string Substitute(std::string_view text, const Vars& vars) {
  std::string out;
  std::size_t pos = 0;
  for (std::size_t i = text.find("${"); i != std::string_view::npos; i = text.find("${", pos)) {
    std::size_t end = text.find('}', i + 2);
    if (end == std::string_view::npos) break;  // validated at load; left as it is
    out.append(text.substr(pos, i - pos));
    std::string_view ref = text.substr(i + 2, end - i - 2);
    bool encode = ref.starts_with(kUrlPrefix);
    if (encode) ref.remove_prefix(kUrlPrefix.size());
    std::string name(ref);
    auto it = vars.find(name);
    if (it == vars.end()) throw MissingVariable(name);
    out += encode ? PercentEncode(it->second) : it->second;
    pos = end + 1;
  }
  out.append(text.substr(pos));
  return out;
}

json::value SubstituteJson(const json::value& v, const Vars& vars) {
  if (v.is_string()) return json::string(Substitute(v.as_string(), vars));
  if (v.is_array()) {
    json::array a;
    for (const auto& e : v.as_array()) a.push_back(SubstituteJson(e, vars));
    return a;
  }
  if (v.is_object()) {
    json::object o;
    for (const auto& kv : v.as_object()) o[kv.key()] = SubstituteJson(kv.value(), vars);
    return o;
  }
  return v;
}

std::string Assertion::Describe() const {
  switch (op) {
    case Op::kEquals:
      return path.text + " == " + json::serialize(expected);
    case Op::kExists:
      return path.text + (expected.as_bool() ? " exists" : " is absent");
    case Op::kCountGe:
      return "count(" + path.text + ") >= " + std::to_string(count);
  }
  return path.text;
}

Journey ParseJourney(std::string_view text, const std::string& file, const std::string& name,
                     const std::set<std::string>& defined) {
  Where w{file, ""};
  json::value root;
  boost::system::error_code ec;
  root = json::parse(text, ec);
  if (ec) w.Fail("not valid JSON: " + ec.message());
  if (!root.is_object()) w.Fail("must be a JSON object {\"description\", \"steps\": [...]}");
  const auto& o = root.as_object();
  CheckKeys(o, {"description", "steps"}, w, "the journey");
  Journey j;
  j.name = name;
  j.file = file;
  j.description = RequireString(o, "description", w, false);
  auto* steps = o.if_contains("steps");
  if (!steps || !steps->is_array() || steps->as_array().empty())
    w.Fail("\"steps\" must be a non-empty list");
  // Everything any step captures: what an always-step may refer to.
  std::set<std::string> all = defined;
  for (const auto& st : steps->as_array())
    if (st.is_object())
      if (auto* c = st.as_object().if_contains("capture"); c && c->is_object())
        for (const auto& kv : c->as_object()) all.insert(std::string(kv.key()));
  std::set<std::string> vars = defined;
  std::set<std::string> names;
  for (std::size_t i = 0; i < steps->as_array().size(); ++i) {
    j.steps.push_back(ParseStep(steps->as_array()[i], i, file, vars, all));
    if (!names.insert(j.steps.back().name).second)
      Where{file, j.steps.back().name}.Fail("duplicate step name");
  }
  return j;
}

std::vector<Journey> LoadJourneys(const std::string& dir, const std::set<std::string>& defined) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw std::runtime_error("journeys folder " + dir + " not found");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  if (files.empty()) throw std::runtime_error("journeys folder " + dir + " has no *.json file");
  std::vector<Journey> out;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in) throw std::runtime_error("journey " + f.string() + ": cannot read");
    std::string stem = f.stem().string();
    if (stem.empty() ||
        !std::all_of(stem.begin(), stem.end(), [](char c) { return IsNameChar(c) || c == '-'; }))
      throw std::runtime_error("journey " + f.string() +
                               ": the file name (the journey's name) must be [A-Za-z0-9_-]+.json");
    out.push_back(ParseJourney(ss.str(), f.string(), stem, defined));
  }
  return out;
}

std::string_view ReasonName(FailReason r) {
  switch (r) {
    case FailReason::kNone:
      return "";
    case FailReason::kStatus:
      return "status";
    case FailReason::kAssert:
      return "assert";
    case FailReason::kBudget:
      return "budget";
    case FailReason::kTransport:
      return "transport";
    case FailReason::kCapture:
      return "capture";
  }
  return "";
}

std::string Excerpt(std::string_view body, std::size_t max) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return {};
  const auto& o = v.as_object();
  std::string out;
  if (auto* rt = o.if_contains("resourceType");
      rt && rt->is_string() && rt->as_string() == "OperationOutcome") {
    if (auto* issues = o.if_contains("issue"); issues && issues->is_array()) {
      for (const auto& i : issues->as_array()) {
        if (!i.is_object()) continue;
        std::string one;
        if (auto* c = i.as_object().if_contains("code"); c && c->is_string())
          one = std::string(c->as_string());
        if (auto* d = i.as_object().if_contains("diagnostics"); d && d->is_string())
          one += (one.empty() ? "" : ": ") + std::string(d->as_string());
        if (!one.empty()) {
          out += (out.empty() ? "" : "; ") + one;
        }
        if (out.size() >= max) break;
      }
    }
  } else if (auto* e = o.if_contains("error"); e && e->is_string()) {
    if (auto* c = o.if_contains("code"); c && c->is_string())
      out = std::string(c->as_string()) + ": ";
    out += std::string(e->as_string());
  }
  for (auto& c : out)
    if (static_cast<unsigned char>(c) < ' ') c = ' ';
  return Truncate(std::move(out), max);
}

StepVerdict Evaluate(const Step& step, int status, std::string_view body,
                     const std::vector<std::pair<std::string, std::string>>& headers, Vars& vars) {
  StepVerdict v;
  if (std::find(step.expect_status.begin(), step.expect_status.end(), status) ==
      step.expect_status.end()) {
    v.reason = FailReason::kStatus;
    std::string expected;
    for (int s : step.expect_status) expected += (expected.empty() ? "" : "|") + std::to_string(s);
    v.excerpt = "status " + std::to_string(status) + ", expected " + expected;
    if (auto e = Excerpt(body); !e.empty()) v.excerpt += " (" + e + ")";
    return v;
  }
  std::optional<json::value> doc;
  auto document = [&]() -> const json::value* {
    if (!doc) {
      boost::system::error_code ec;
      doc = json::parse(body, ec);
      if (ec) doc = json::value();  // null: every path is absent
    }
    return &*doc;
  };
  for (const auto& a : step.assertions) {
    const json::value* found = Find(*document(), a.path);
    bool ok = false;
    std::string expected_text;
    switch (a.op) {
      case Assertion::Op::kEquals: {
        json::value expected = a.expected;
        if (expected.is_string()) expected = json::string(Substitute(expected.as_string(), vars));
        ok = found && ScalarEquals(*found, expected);
        expected_text = a.path.text + " == " + json::serialize(expected);
        break;
      }
      case Assertion::Op::kExists:
        ok = (found != nullptr) == a.expected.as_bool();
        expected_text = a.Describe();
        break;
      case Assertion::Op::kCountGe: {
        std::size_t n = 0;
        if (found && found->is_array()) n = found->as_array().size();
        if (found && found->is_object()) n = found->as_object().size();
        ok = static_cast<int64_t>(n) >= a.count;
        expected_text = a.Describe() + " (got " + std::to_string(n) + ")";
        break;
      }
    }
    if (!ok) {
      // The expectation is the journey's own text; the actual value is never quoted.
      v.reason = FailReason::kAssert;
      v.excerpt = Truncate("assertion failed: " + expected_text, 160);
      return v;
    }
  }
  Vars captured;
  for (const auto& c : step.captures) {
    std::string value;
    bool ok = false;
    if (c.json) {
      const json::value* found = Find(*document(), *c.json);
      if (found && (found->is_string() || found->is_number())) {
        value = Scalar(*found);
        ok = !value.empty();
      }
    } else {
      for (const auto& [k, hv] : headers)
        if (k == c.header) {
          value = hv;
          ok = !value.empty();
          break;
        }
    }
    if (!ok) {
      v.reason = FailReason::kCapture;
      v.excerpt = "capture " + c.var + " from " +
                  (c.json ? "json " + c.json->text : "header " + c.header) +
                  ": absent, empty or not a string/number";
      return v;
    }
    captured[c.var] = std::move(value);
  }
  for (auto& [k, val] : captured) vars[k] = std::move(val);
  return v;
}

}  // namespace continuum::monitor
