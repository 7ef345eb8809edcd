// Continuum's own request and response types. Handlers see these, never Beast, so
// that Beast stays in a single translation unit (http/server.cpp).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace continuum::http {

struct Request {
  std::string method;                                        // "GET", "POST", ...
  std::string target;                                        // raw request target
  std::string path;                                          // decoded path
  std::vector<std::pair<std::string, std::string>> query;    // decoded, in order
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string client_address;
  std::string request_id;
  std::vector<std::string> path_params;  // captured by the router

  // Returns the header value or an empty view (names are compared lower-case).
  std::string_view header(std::string_view lower_name) const {
    for (const auto& [k, v] : headers)
      if (k == lower_name) return v;
    return {};
  }
  bool has_header(std::string_view lower_name) const {
    for (const auto& [k, v] : headers)
      if (k == lower_name) return true;
    return false;
  }
  std::optional<std::string> param(std::string_view name) const {
    for (const auto& [k, v] : query)
      if (k == name) return v;
    return std::nullopt;
  }
};

struct Response {
  int status = 200;
  std::string content_type = "application/fhir+json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;  // close the connection after this response
  // The answer to a HEAD: no body, and the Content-Length the GET's body would have.
  std::optional<std::size_t> head_content_length;

  void set_header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

}  // namespace continuum::http
