#include "portal/search.hpp"

#include "fhir/fhir.hpp"
#include "portal/access.hpp"

namespace continuum::portal {

namespace {

// One of to_json and write is set.
boost::asio::awaitable<http::Response> Search(RequestContext& ctx, std::string_view type,
                                              const db::Query& q, const db::Query& count,
                                              RowToJson to_json, RowWriter write) {
  auto& rec = ctx.Audit("search", std::string(type));
  Authenticate(ctx);
  fhir::CheckParams(ctx.req, {"patient"});
  std::string pid = PatientParam(ctx);
  rec.patient_id = pid;
  auto paging = fhir::ParsePaging(ctx.req);
  co_await DeferAuthorizePatient(ctx, pid);  // checked in the page's round trip
  auto r = co_await ctx.Read(q, db::P(pid, paging.count + 1, paging.offset));
  int n = std::min(r.rows(), paging.count);
  std::string base = ctx.BaseUrl();
  std::vector<std::pair<std::string, std::string>> params{{"patient", pid}};
  std::optional<std::string> next;
  if (r.rows() > paging.count)
    next = fhir::SearchUrl(base, type, params, {paging.count, paging.offset + paging.count});
  std::optional<int64_t> total;
  if (r.rows() > paging.count || (r.rows() == 0 && paging.offset > 0)) {
    // More follow, or the page is past the end: only a count tells how many there are.
    auto c = co_await ctx.Read(count, db::P(pid));
    total = c.get_int(0, 0);
  } else {
    total = paging.offset + r.rows();
  }
  rec.outcome = "success";
  rec.detail = std::to_string(n) + " results";
  std::string body;
  fhir::JsonWriter w(body);
  fhir::BeginSearchBundle(w, fhir::SearchUrl(base, type, params, paging), next, total);
  for (int i = 0; i < n; ++i) {
    if (write) {
      fhir::BeginSearchEntry(w, base, type, r.get(i, 0));
      write(w, r, i);
    } else {
      const boost::json::object res = to_json(r, i);
      fhir::BeginSearchEntry(w, base, res.at("resourceType").as_string(), res.at("id").as_string());
      w.Value(res);
    }
    fhir::EndSearchEntry(w);
  }
  fhir::EndSearchBundle(w);
  co_return fhir::Json(200, std::move(body));
}

}  // namespace

boost::asio::awaitable<http::Response> PatientSearch(RequestContext& ctx, std::string_view type,
                                                     const db::Query& q, const db::Query& count,
                                                     RowToJson to_json) {
  return Search(ctx, type, q, count, to_json, nullptr);
}

boost::asio::awaitable<http::Response> PatientSearch(RequestContext& ctx, std::string_view type,
                                                     const db::Query& q, const db::Query& count,
                                                     RowWriter write) {
  return Search(ctx, type, q, count, nullptr, write);
}

}  // namespace continuum::portal
