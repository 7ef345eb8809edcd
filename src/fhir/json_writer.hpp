// A JSON writer straight into a response body: no DOM is built, allocated and freed for
// a document that is serialized once (issue 14: on the `$summary` read a third of the
// server's own CPU went to Boost.JSON's DOM and its allocations). The output is byte for
// byte what boost::json::serialize gives for the same document (compact, the same
// string escapes: json_writer_test.cpp checks every byte value against it).
//
// The caller writes the structure in order; the writer only places the commas and
// colons. Misuse (a value where a key is due, an unbalanced end, nesting deeper than
// 64) throws std::logic_error rather than producing invalid JSON.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <string>
#include <string_view>

namespace continuum::fhir {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& BeginObject() { return Open('{', true); }
  JsonWriter& EndObject() { return Close('}', true); }
  JsonWriter& BeginArray() { return Open('[', false); }
  JsonWriter& EndArray() { return Close(']', false); }

  // The next member's key; its value follows.
  JsonWriter& Key(std::string_view k);

  JsonWriter& String(std::string_view v);
  JsonWriter& Bool(bool v);
  JsonWriter& Int(std::int64_t v);
  // A DOM value, serialized in place (for resources still built as a DOM).
  JsonWriter& Value(const boost::json::value& v);
  JsonWriter& Value(const boost::json::object& o);  // without a copy into a value

  // Shorthand: "k":"v" (no bool overload: a string literal would pick it).
  JsonWriter& Member(std::string_view k, std::string_view v) { return Key(k).String(v); }

  // True when every object and array opened has been closed.
  [[nodiscard]] bool Complete() const { return depth_ == 0 && wrote_root_; }

  // `s` JSON-escaped (without quotes), appended to `out`, as boost::json::serialize does.
  static void AppendEscaped(std::string& out, std::string_view s);

 private:
  JsonWriter& Open(char c, bool object);
  JsonWriter& Close(char c, bool object);
  void BeforeValue();  // the comma before an array element; checks a key came in objects

  std::string& out_;
  int depth_ = 0;
  bool wrote_root_ = false;
  bool key_pending_ = false;  // a key was written, its value is due
  // Per nesting level (bit depth-1): is it an object, and has it an element already.
  std::uint64_t is_object_ = 0;
  std::uint64_t has_element_ = 0;
};

}  // namespace continuum::fhir
