#include "portal/search.hpp"

#include "fhir/fhir.hpp"
#include "portal/access.hpp"

namespace continuum::portal {

boost::asio::awaitable<http::Response> PatientSearch(RequestContext& ctx, std::string_view type,
                                                     const db::Query& q, RowToJson to_json,
                                                     int total_col) {
  auto& rec = ctx.Audit("search", std::string(type));
  Authenticate(ctx);
  fhir::CheckParams(ctx.req, {"patient"});
  std::string pid = PatientParam(ctx);
  rec.patient_id = pid;
  auto paging = fhir::ParsePaging(ctx.req);
  co_await AuthorizePatient(ctx, pid);
  auto r = co_await ctx.Read(q, db::P(pid, paging.count + 1, paging.offset));
  int n = std::min(r.rows(), paging.count);
  std::vector<boost::json::object> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) out.push_back(to_json(r, i));
  std::string base = ctx.BaseUrl();
  std::vector<std::pair<std::string, std::string>> params{{"patient", pid}};
  std::optional<std::string> next;
  if (r.rows() > paging.count)
    next = fhir::SearchUrl(base, type, params, {paging.count, paging.offset + paging.count});
  std::optional<int64_t> total;
  if (r.rows() > 0)
    total = r.get_int(0, total_col >= 0 ? total_col : r.cols() - 1);
  else if (paging.offset == 0)
    total = 0;
  rec.outcome = "success";
  rec.detail = std::to_string(n) + " results";
  co_return fhir::Json(200, fhir::SearchBundle(fhir::SearchUrl(base, type, params, paging), next,
                                               std::move(out), base, total));
}

}  // namespace continuum::portal
