#include "portal/low/content.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/json.hpp>
#include <functional>

#include "core/error.hpp"
#include "core/log.hpp"
#include "portal/access.hpp"
#include "resilience/swr_cache.hpp"

namespace continuum::portal::low {
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

const db::Query kArticles{
    "articles_list",
    "SELECT slug, title, summary, tags, reviewed::text FROM article WHERE ($1::text IS NULL OR "
    "$1 = ANY (tags)) AND ($2::text IS NULL OR title ILIKE '%' || $2 || '%' OR summary ILIKE '%' "
    "|| $2 || '%') ORDER BY title LIMIT 200",
    db::Access::kRead};
const db::Query kArticle{"article_by_slug",
                         "SELECT slug, title, summary, body, tags, reviewed::text FROM article "
                         "WHERE slug = $1",
                         db::Access::kRead};
// Articles about the patient's active conditions and medications, most relevant first,
// with what made each relevant; general wellness articles fill up to five.
const db::Query kRecommend{
    "recommendations",
    "WITH mine AS (SELECT snomed_code AS code, display FROM condition WHERE patient_id = $1 AND "
    "clinical_status IN ('active', 'recurrence', 'relapse') UNION SELECT rxnorm_code, display "
    "FROM medication WHERE patient_id = $1 AND status = 'active'), "
    "matched AS (SELECT a.slug, a.title, a.summary, array_agg(DISTINCT m.display ORDER BY "
    "m.display) AS because, count(DISTINCT m.code) AS n FROM article a JOIN mine m ON m.code = "
    "ANY (a.codes) GROUP BY a.slug, a.title, a.summary) "
    "(SELECT slug, title, summary, because, n FROM matched ORDER BY n DESC, slug LIMIT 10) "
    "UNION ALL (SELECT slug, title, summary, '{}'::text[], 0 FROM article WHERE codes = '{}' "
    "ORDER BY slug LIMIT GREATEST(0, 5 - (SELECT count(*) FROM matched)))",
    db::Access::kRead};

// Text arrays come back as {a,b,"c d"}: split them (no embedded quotes in our data
// beyond plain double quotes around elements with spaces or commas).
json::array PgArray(std::string_view v) {
  json::array out;
  if (v.size() < 2) return out;
  v = v.substr(1, v.size() - 2);
  std::string cur;
  bool quoted = false, any = false;
  for (std::size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (quoted) {
      if (c == '\\' && i + 1 < v.size()) {
        cur += v[++i];
      } else if (c == '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c == '"') {
      quoted = any = true;
    } else if (c == ',') {
      out.push_back(json::string(cur));
      cur.clear();
      any = false;
    } else {
      cur += c;
      any = true;
    }
  }
  if (any || !cur.empty()) out.push_back(json::string(cur));
  return out;
}

using Loader = std::function<asio::awaitable<std::string>(RequestContext&)>;

struct Served {
  std::string body;
  const char* cache;  // hit | stale | miss
  bool degraded;
  int64_t age_s;
};

// Background revalidation: its own context (no caller, no audit), the tier's deadline.
asio::awaitable<void> Refresh(Shard* shard, Services* svc, std::string key, Loader loader) {
  http::Request req;
  auto rctx = RequestContext::Background(
      req, *svc, *shard, Tier::kLow, "content.refresh",
      std::chrono::milliseconds(svc->config.limits(Tier::kLow).deadline_ms));
  bool ok = false;
  try {
    std::string v = co_await loader(rctx);
    svc->content_cache->Put(key, std::move(v));
    ok = true;
  } catch (const std::exception& e) {
    log::Warn("low tier: refreshing cached content failed: {}", e.what());
  }
  svc->content_cache->EndRefresh(key, ok);
}

// The database is known to be unreachable right now: no read target and the primary
// gone (with a topology, from its probes: db::Topology::PrimaryGone), or the node's
// last session sync round trip failed (without one).
bool DatabaseKnownDown(RequestContext& ctx) {
  if (db::Topology* t = ctx.svc.topology)
    return t->PrimaryGone() && t->ChooseRead(0) == db::Topology::kPrimary;
  return ctx.svc.primary_unreachable.load();
}

asio::awaitable<Served> Cached(RequestContext& ctx, const std::string& key, Loader loader) {
  using F = resilience::SwrCache::Freshness;
  auto& cache = *ctx.svc.content_cache;
  auto hit = cache.Get(key);
  if (hit && hit->freshness == F::kFresh)
    co_return Served{hit->value, "hit", hit->last_refresh_failed || DatabaseKnownDown(ctx),
                     hit->age.count() / 1000};
  if (hit && hit->freshness == F::kRevalidate) {
    if (cache.BeginRefresh(key))
      asio::co_spawn(ctx.shard.executor, Refresh(&ctx.shard, &ctx.svc, key, loader),
                     asio::detached);
    co_return Served{hit->value, "stale", hit->last_refresh_failed || DatabaseKnownDown(ctx),
                     hit->age.count() / 1000};
  }
  // Missing or too old to serve without trying: load now -- briefly, when an old copy
  // could stand in.
  if (hit && hit->usable_on_error) {
    auto brief = Deadline::After(std::chrono::milliseconds(500));
    if (brief.at() < ctx.deadline.at()) ctx.deadline = brief;
  }
  std::exception_ptr err;
  std::string value;
  try {
    value = co_await loader(ctx);
  } catch (const NotFound&) {
    throw;
  } catch (...) {
    err = std::current_exception();
  }
  if (!err) {
    cache.Put(key, value);
    co_return Served{std::move(value), "miss", false, 0};
  }
  if (hit && hit->usable_on_error) {
    if (cache.BeginRefresh(key)) cache.EndRefresh(key, false);
    co_return Served{hit->value, "stale", true, hit->age.count() / 1000};
  }
  std::rethrow_exception(err);
}

http::Response Respond(const Served& s, bool personal) {
  http::Response r;
  r.content_type = "application/json";
  r.body = s.body;
  r.set_header("Cache-Control", personal ? "private, max-age=60" : "public, max-age=60");
  r.set_header("Age", std::to_string(s.age_s));
  r.set_header("X-Cache", s.cache);
  if (s.degraded) r.set_header("X-Continuum-Degraded", "stale");
  return r;
}

bool SlugChars(std::string_view s, std::size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

}  // namespace

asio::awaitable<http::Response> ListArticles(RequestContext& ctx) {
  for (const auto& [k, v] : ctx.req.query)
    if (k != "tag" && k != "q")
      throw BadRequest("Unknown parameter " + k + "; articles take tag and q.");
  std::optional<std::string> tag = ctx.req.param("tag"), q = ctx.req.param("q");
  if (tag && !SlugChars(*tag, 40))
    throw BadRequest("tag must be lowercase letters, digits and hyphens (at most 40).");
  if (q && (q->empty() || q->size() > 100)) throw BadRequest("q must be 1 to 100 characters.");
  std::string key = "articles|" + tag.value_or("") + "|" + q.value_or("");
  Loader load = [tag, q](RequestContext& c) -> asio::awaitable<std::string> {
    db::Param tp = tag ? db::Param(*tag) : db::Param(std::nullopt);
    db::Param qp = q ? db::Param(*q) : db::Param(std::nullopt);
    auto r = co_await c.Read(kArticles, db::P(tp, qp));
    json::array items;
    for (int i = 0; i < r.rows(); ++i)
      items.push_back(
          json::object{{"slug", r.get(i, 0)},
                       {"title", r.get(i, 1)},
                       {"summary", r.get(i, 2)},
                       {"tags", PgArray(r.get(i, 3))},
                       {"reviewed", r.null(i, 4) ? json::value(nullptr) : json::value(r.get(i, 4))},
                       {"url", "/api/v1/articles/" + r.str(i, 0)}});
    co_return json::serialize(
        json::object{{"count", items.size()}, {"articles", std::move(items)}});
  };
  auto served = co_await Cached(ctx, key, load);
  co_return Respond(served, false);
}

asio::awaitable<http::Response> ReadArticle(RequestContext& ctx) {
  std::string slug = ctx.req.path_params[0];
  if (!SlugChars(slug, 100)) throw NotFound("There is no article " + slug.substr(0, 100) + ".");
  Loader load = [slug](RequestContext& c) -> asio::awaitable<std::string> {
    auto r = co_await c.Read(kArticle, db::P(slug));
    if (r.rows() == 0) throw NotFound("There is no article " + slug + ".");
    co_return json::serialize(
        json::object{{"slug", r.get(0, 0)},
                     {"title", r.get(0, 1)},
                     {"summary", r.get(0, 2)},
                     {"body", r.get(0, 3)},
                     {"tags", PgArray(r.get(0, 4))},
                     {"reviewed", r.null(0, 5) ? json::value(nullptr) : json::value(r.get(0, 5))}});
  };
  auto served = co_await Cached(ctx, "article|" + slug, load);
  co_return Respond(served, false);
}

asio::awaitable<http::Response> Recommendations(RequestContext& ctx) {
  auto& rec = ctx.Audit("read", "Recommendations");
  Authenticate(ctx);
  for (const auto& [k, v] : ctx.req.query)
    if (k != "patient") throw BadRequest("Unknown parameter " + k + "; use patient.");
  std::string pid = PatientParam(ctx);
  rec.patient_id = pid;
  co_await AuthorizePatient(ctx, pid);
  Loader load = [pid](RequestContext& c) -> asio::awaitable<std::string> {
    auto r = co_await c.Read(kRecommend, db::P(pid));
    json::array items;
    for (int i = 0; i < r.rows(); ++i)
      items.push_back(json::object{{"slug", r.get(i, 0)},
                                   {"title", r.get(i, 1)},
                                   {"summary", r.get(i, 2)},
                                   {"because", PgArray(r.get(i, 3))},
                                   {"url", "/api/v1/articles/" + r.str(i, 0)}});
    co_return json::serialize(
        json::object{{"patient", pid}, {"recommendations", std::move(items)}});
  };
  auto served = co_await Cached(ctx, "rec|" + pid, load);
  rec.outcome = "success";
  if (served.degraded) rec.detail = "served from cache (stale)";
  co_return Respond(served, true);
}

}  // namespace continuum::portal::low
