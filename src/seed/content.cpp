#include "seed/content.hpp"

#include <libpq-fe.h>

#include <boost/json.hpp>
#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

#include "core/release.hpp"

namespace continuum::seed {
namespace json = boost::json;

namespace {

const char* kUpsert =
    "INSERT INTO article (slug, title, summary, body, tags, codes, reviewed) "
    "SELECT a.slug, a.title, a.summary, a.body, COALESCE(a.tags, '{}'), COALESCE(a.codes, '{}'), "
    "a.reviewed FROM jsonb_to_recordset($1::jsonb) AS a(slug text, title text, summary text, "
    "body text, tags text[], codes text[], reviewed date) "
    "ON CONFLICT (slug) DO UPDATE SET title = EXCLUDED.title, summary = EXCLUDED.summary, body = "
    "EXCLUDED.body, tags = EXCLUDED.tags, codes = EXCLUDED.codes, reviewed = EXCLUDED.reviewed, "
    "updated_at = now() WHERE (article.title, article.summary, article.body, article.tags, "
    "article.codes, article.reviewed) IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.summary, "
    "EXCLUDED.body, EXCLUDED.tags, EXCLUDED.codes, EXCLUDED.reviewed)";

std::string Where(const std::string& file, std::size_t i, const std::string& slug) {
  return file + ": article " + std::to_string(i + 1) + (slug.empty() ? "" : " (" + slug + ")");
}

void RequireText(const json::object& a, const char* key, std::size_t max,
                 const std::string& where) {
  auto* v = a.if_contains(key);
  if (!v || !v->is_string() || v->as_string().empty() || v->as_string().size() > max)
    throw std::runtime_error(where + ": " + key + " must be text of 1 to " + std::to_string(max) +
                             " characters");
}

void RequireStrings(const json::object& a, const char* key, const std::string& where) {
  auto* v = a.if_contains(key);
  if (!v) return;
  if (!v->is_array()) throw std::runtime_error(where + ": " + key + " must be a list of strings");
  for (const auto& e : v->as_array())
    if (!e.is_string() || e.as_string().empty())
      throw std::runtime_error(where + ": " + key + " must be a list of non-empty strings");
}

}  // namespace

std::string DefaultArticlesFile() {
  return std::string(continuum::SourceDir()) + "/content/articles.json";
}

ContentResult LoadArticles(const Secret& database_url, const std::string& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("content: cannot read " + file);
  std::stringstream ss;
  ss << in.rdbuf();
  boost::system::error_code ec;
  json::value doc = json::parse(ss.str(), ec);
  if (ec || !doc.is_array())
    throw std::runtime_error("content: " + file + " must hold a JSON array of articles" +
                             (ec ? " (" + ec.message() + ")" : ""));
  static const std::regex kSlug("^[a-z0-9]+(-[a-z0-9]+)*$");
  static const std::regex kDate("^[0-9]{4}-[0-9]{2}-[0-9]{2}$");
  std::set<std::string> slugs;
  const auto& arr = doc.as_array();
  for (std::size_t i = 0; i < arr.size(); ++i) {
    if (!arr[i].is_object()) throw std::runtime_error(Where(file, i, "") + ": must be an object");
    const auto& a = arr[i].as_object();
    for (const auto& kv : a) {
      static const std::set<std::string> kKeys = {"slug", "title", "summary", "body",
                                                  "tags", "codes", "reviewed"};
      if (!kKeys.contains(std::string(kv.key())))
        throw std::runtime_error(Where(file, i, "") + ": unknown field " + std::string(kv.key()));
    }
    std::string slug =
        a.contains("slug") && a.at("slug").is_string() ? std::string(a.at("slug").as_string()) : "";
    std::string where = Where(file, i, slug);
    if (!std::regex_match(slug, kSlug) || slug.size() > 100)
      throw std::runtime_error(where + ": slug must be lowercase words joined by hyphens");
    if (!slugs.insert(slug).second) throw std::runtime_error(where + ": slug is used twice");
    RequireText(a, "title", 200, where);
    RequireText(a, "summary", 1000, where);
    RequireText(a, "body", 20000, where);
    RequireStrings(a, "tags", where);
    RequireStrings(a, "codes", where);
    if (auto* r = a.if_contains("reviewed"))
      if (!r->is_string() || !std::regex_match(std::string(r->as_string()), kDate))
        throw std::runtime_error(where + ": reviewed must be a date, YYYY-MM-DD");
  }

  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(database_url.reveal().c_str()),
                                                    &PQfinish);
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK)
    throw std::runtime_error("content: cannot connect to the database: " +
                             std::string(conn ? PQerrorMessage(conn.get()) : "out of memory"));
  auto exec = [&](const char* sql, int n, const char* const* vals) {
    std::unique_ptr<PGresult, decltype(&PQclear)> r(
        PQexecParams(conn.get(), sql, n, nullptr, vals, nullptr, nullptr, 0), &PQclear);
    auto st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
      throw std::runtime_error(std::string("content: ") + PQerrorMessage(conn.get()));
    return std::atoi(PQcmdTuples(r.get()));
  };
  exec("BEGIN", 0, nullptr);
  // Reference content, reloadable from the file: it need not wait for a standby.
  exec("SET LOCAL synchronous_commit = local", 0, nullptr);
  std::string payload = json::serialize(doc);
  const char* vals[1] = {payload.c_str()};
  int changed = exec(kUpsert, 1, vals);
  exec("COMMIT", 0, nullptr);
  return {static_cast<int>(arr.size()), changed};
}

}  // namespace continuum::seed
