#include "fhir/json_writer.hpp"

#include <boost/json/serialize.hpp>
#include <charconv>
#include <stdexcept>

#include "core/json_escape.hpp"

namespace continuum::fhir {

namespace {
constexpr int kMaxDepth = 64;
}

void JsonWriter::AppendEscaped(std::string& out, std::string_view s) {
  continuum::AppendJsonEscaped(out, s);
}

void JsonWriter::BeforeValue() {
  if (depth_ == 0) {
    if (wrote_root_) throw std::logic_error("JsonWriter: a second root value");
    wrote_root_ = true;
    return;
  }
  const std::uint64_t bit = std::uint64_t{1} << (depth_ - 1);
  if (is_object_ & bit) {
    if (!key_pending_) throw std::logic_error("JsonWriter: an object member without a key");
    key_pending_ = false;
    return;
  }
  if (has_element_ & bit) out_ += ',';
  has_element_ |= bit;
}

JsonWriter& JsonWriter::Key(std::string_view k) {
  const std::uint64_t bit = depth_ > 0 ? std::uint64_t{1} << (depth_ - 1) : 0;
  if (depth_ == 0 || !(is_object_ & bit) || key_pending_)
    throw std::logic_error("JsonWriter: a key outside an object or after another key");
  if (has_element_ & bit) out_ += ',';
  has_element_ |= bit;
  out_ += '"';
  AppendEscaped(out_, k);
  out_ += "\":";
  key_pending_ = true;
  return *this;
}

JsonWriter& JsonWriter::Open(char c, bool object) {
  BeforeValue();
  if (depth_ == kMaxDepth) throw std::logic_error("JsonWriter: nested deeper than 64");
  ++depth_;
  const std::uint64_t bit = std::uint64_t{1} << (depth_ - 1);
  if (object)
    is_object_ |= bit;
  else
    is_object_ &= ~bit;
  has_element_ &= ~bit;
  out_ += c;
  return *this;
}

JsonWriter& JsonWriter::Close(char c, bool object) {
  const std::uint64_t bit = depth_ > 0 ? std::uint64_t{1} << (depth_ - 1) : 0;
  if (depth_ == 0 || static_cast<bool>(is_object_ & bit) != object || key_pending_)
    throw std::logic_error("JsonWriter: unbalanced end of an object or array");
  --depth_;
  out_ += c;
  return *this;
}

JsonWriter& JsonWriter::String(std::string_view v) {
  BeforeValue();
  out_ += '"';
  AppendEscaped(out_, v);
  out_ += '"';
  return *this;
}

JsonWriter& JsonWriter::Bool(bool v) {
  BeforeValue();
  out_ += v ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::Int(std::int64_t v) {
  BeforeValue();
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, r.ptr);
  return *this;
}

JsonWriter& JsonWriter::Value(const boost::json::value& v) {
  BeforeValue();
  out_ += boost::json::serialize(v);
  return *this;
}

JsonWriter& JsonWriter::Value(const boost::json::object& o) {
  BeforeValue();
  out_ += boost::json::serialize(o);
  return *this;
}

}  // namespace continuum::fhir
