// A static site (the web app's bundle, web/dist) served from memory.
//
// The folder is read once, at start: every regular file under it (bounded in count and
// size) goes into a table keyed by its path relative to the root. A request can only
// ever get one of those files, so no request path reaches the file system: `..`, encoded
// `%2e%2e` (the path arrives decoded), empty segments (`//etc/passwd`), backslashes and
// NULs are refused (404) before the lookup anyway. A new bundle needs a restart (a
// deploy restarts the nodes), and no I/O thread ever waits on a disk.
//
// Caching: files under `assets/` carry a content hash in their names (Vite's output)
// and are `immutable` for a year; HTML is `no-store` (a new release is seen at once);
// anything else `no-cache` with an ETag. Every answer has the security headers
// (Content-Security-Policy, X-Frame-Options, X-Content-Type-Options, Referrer-Policy).
//
// Single-page app: a GET of a path that names no file, has no dot in its last segment
// and does not start with one of `spa_exclude`'s first segments (the API's prefixes)
// answers index.html, so /appointments can be reloaded or bookmarked.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.hpp"

namespace continuum::http {

struct StaticSiteOptions {
  std::string root;  // the folder (web/dist)
  std::size_t max_files = 2000;
  std::size_t max_file_bytes = 8u << 20;
  std::size_t max_total_bytes = 64u << 20;
  // First path segments that are never the app's (the API's): no index.html fallback.
  std::vector<std::string> spa_exclude;
  std::string content_security_policy =
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
      "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
};

class StaticSite {
 public:
  // Reads the folder. Throws std::runtime_error when it is missing, has no index.html,
  // or exceeds a limit (the message says which).
  static StaticSite Load(StaticSiteOptions options);

  // The answer to a GET or HEAD of `path` (decoded, as Request::path), or nullopt when
  // the site has nothing to say (another handler's path, or not GET/HEAD). A path that
  // looks like a file but is not there answers 404. `if_none_match`: the request's
  // If-None-Match (304 when it names the file's ETag).
  std::optional<Response> Serve(std::string_view method, std::string_view path,
                                std::string_view if_none_match = {}) const;

  std::size_t file_count() const { return files_.size(); }
  std::size_t total_bytes() const { return total_bytes_; }
  const std::string& root() const { return options_.root; }

  // The table key for a request path ("/assets/a.js" -> "assets/a.js", "/" ->
  // "index.html"), or nullopt when the path is not acceptable (dot segments, empty
  // segments, backslash, NUL, control characters, not starting with '/').
  static std::optional<std::string> KeyFor(std::string_view path);
  // The Content-Type for a file name, by its extension.
  static std::string_view ContentTypeFor(std::string_view name);

 private:
  struct File {
    std::string body;
    std::string content_type;
    std::string etag;
    std::string cache_control;
  };
  Response Answer(const File& f, std::string_view method, std::string_view if_none_match) const;
  Response NotFound(std::string_view method) const;
  void SecurityHeaders(Response& r) const;

  StaticSiteOptions options_;
  std::map<std::string, File, std::less<>> files_;
  std::size_t total_bytes_ = 0;
};

// The web root to use when none is configured: the first of `<dir of the running
// binary>/../web/dist` (a build folder inside the checkout) and `<that dir>/web/dist`
// that holds an index.html; empty if neither does.
std::string DefaultWebRoot();

}  // namespace continuum::http
