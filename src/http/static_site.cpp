#include "http/static_site.hpp"

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <system_error>

#include "http/outcome.hpp"

namespace continuum::http {

namespace fs = std::filesystem;

namespace {

// FNV-1a, 64 bits: an ETag only has to change when the bytes do.
std::string ETagOf(const std::string& body) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : body) {
    h ^= c;
    h *= 1099511628211ull;
  }
  static const char* kHex = "0123456789abcdef";
  std::string out = "\"";
  for (int i = 60; i >= 0; i -= 4) out += kHex[(h >> i) & 15];
  out += "-" + std::to_string(body.size()) + "\"";
  return out;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string_view FirstSegment(std::string_view key) { return key.substr(0, key.find('/')); }

// A hidden file (".gitignore", ".vite/") is never part of the site.
bool Hidden(const fs::path& rel) {
  for (const auto& part : rel)
    if (!part.empty() && part.native()[0] == '.') return true;
  return false;
}

}  // namespace

std::optional<std::string> StaticSite::KeyFor(std::string_view path) {
  if (path.empty() || path[0] != '/') return std::nullopt;
  if (path == "/") return std::string("index.html");
  std::string_view rest = path.substr(1);
  std::string key;
  std::size_t i = 0;
  while (true) {
    std::size_t j = rest.find('/', i);
    std::string_view seg = rest.substr(i, j == std::string_view::npos ? j : j - i);
    // Empty segments ("//etc"), dot segments and hidden names, and anything a file
    // system or a log could read differently.
    if (seg.empty() || seg[0] == '.') return std::nullopt;
    for (char c : seg) {
      auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f || c == '\\' || c == ':') return std::nullopt;
    }
    if (!key.empty()) key += '/';
    key += seg;
    if (j == std::string_view::npos) break;
    i = j + 1;
    if (i == rest.size()) return std::nullopt;  // a trailing slash names no file
  }
  if (key.size() > 512) return std::nullopt;
  return key;
}

std::string_view StaticSite::ContentTypeFor(std::string_view name) {
  static const std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".webmanifest", "application/manifest+json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".webp", "image/webp"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".txt", "text/plain; charset=utf-8"},
  };
  for (const auto& [ext, type] : kTypes)
    if (EndsWith(name, ext)) return type;
  return "application/octet-stream";
}

StaticSite StaticSite::Load(StaticSiteOptions options) {
  StaticSite site;
  std::error_code ec;
  fs::path root = fs::canonical(options.root, ec);
  if (ec || !fs::is_directory(root))
    throw std::runtime_error("web root " + options.root + " is not a readable folder");
  options.root = root.string();
  // Symbolic links are neither followed nor served: the site is what the folder holds.
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const auto& entry = *it;
    fs::path rel = entry.path().lexically_relative(root);
    if (Hidden(rel)) {
      if (entry.is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (entry.is_symlink() || !entry.is_regular_file()) continue;
    std::string key = rel.generic_string();
    if (!KeyFor("/" + key))
      throw std::runtime_error("web root " + options.root + ": unusable file name " + key);
    if (site.files_.size() >= options.max_files)
      throw std::runtime_error("web root " + options.root + " has more than " +
                               std::to_string(options.max_files) + " files");
    auto size = entry.file_size();
    if (size > options.max_file_bytes)
      throw std::runtime_error("web root " + options.root + ": " + key + " is larger than " +
                               std::to_string(options.max_file_bytes) + " bytes");
    if (site.total_bytes_ + size > options.max_total_bytes)
      throw std::runtime_error("web root " + options.root + " holds more than " +
                               std::to_string(options.max_total_bytes) + " bytes");
    std::ifstream in(entry.path(), std::ios::binary);
    std::string body(size, '\0');
    if (!in.read(body.data(), static_cast<std::streamsize>(size)))
      throw std::runtime_error("web root " + options.root + ": cannot read " + key);
    File f;
    f.content_type = std::string(ContentTypeFor(key));
    f.etag = ETagOf(body);
    if (FirstSegment(key) == "assets" && key.find('/') != std::string::npos)
      f.cache_control = "public, max-age=31536000, immutable";
    else if (EndsWith(key, ".html"))
      f.cache_control = "no-store";
    else
      f.cache_control = "no-cache";
    site.total_bytes_ += body.size();
    f.body = std::move(body);
    site.files_.emplace(std::move(key), std::move(f));
  }
  if (ec) throw std::runtime_error("web root " + options.root + ": " + ec.message());
  if (!site.files_.contains("index.html"))
    throw std::runtime_error("web root " + options.root + " has no index.html (run: cd web && " +
                             "npm ci && npm run build)");
  site.options_ = std::move(options);
  return site;
}

void StaticSite::SecurityHeaders(Response& r) const {
  r.set_header("Content-Security-Policy", options_.content_security_policy);
  r.set_header("X-Frame-Options", "DENY");
  r.set_header("X-Content-Type-Options", "nosniff");
  r.set_header("Referrer-Policy", "no-referrer");
}

Response StaticSite::Answer(const File& f, std::string_view method,
                            std::string_view if_none_match) const {
  Response r;
  r.content_type = f.content_type;
  r.set_header("Cache-Control", f.cache_control);
  r.set_header("ETag", f.etag);
  SecurityHeaders(r);
  if (!if_none_match.empty() && if_none_match.find(f.etag) != std::string_view::npos) {
    r.status = 304;
    return r;
  }
  if (method == "HEAD")
    r.head_content_length = f.body.size();
  else
    r.body = f.body;
  return r;
}

Response StaticSite::NotFound(std::string_view method) const {
  Response r = OutcomeResponse(404, "not-found", "There is no resource at this path.");
  r.set_header("Cache-Control", "no-store");
  SecurityHeaders(r);
  if (method == "HEAD") {
    r.head_content_length = r.body.size();
    r.body.clear();
  }
  return r;
}

std::optional<Response> StaticSite::Serve(std::string_view method, std::string_view path,
                                          std::string_view if_none_match) const {
  if (method != "GET" && method != "HEAD") return std::nullopt;
  auto key = KeyFor(path);
  if (key) {
    for (const auto& ex : options_.spa_exclude)
      if (FirstSegment(*key) == ex) return std::nullopt;
    if (auto it = files_.find(*key); it != files_.end())
      return Answer(it->second, method, if_none_match);
  }
  // Not a file: an app path (no dot in its last segment, not under assets/) gets the app.
  if (!key || FirstSegment(*key) == "assets") return NotFound(method);
  std::string_view last = *key;
  if (auto slash = last.rfind('/'); slash != std::string_view::npos) last = last.substr(slash + 1);
  if (last.find('.') != std::string_view::npos) return NotFound(method);
  return Answer(files_.at("index.html"), method, if_none_match);
}

std::string DefaultWebRoot() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  fs::path dir = exe.parent_path();
  for (const fs::path& candidate : {dir / ".." / "web" / "dist", dir / "web" / "dist"}) {
    if (fs::is_regular_file(candidate / "index.html", ec))
      return fs::weakly_canonical(candidate, ec).string();
  }
  return {};
}

}  // namespace continuum::http
