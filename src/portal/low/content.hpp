// Low tier: health articles and personalised recommendations, served from a per-node
// cache (resilience::SwrCache) with stale-while-revalidate and stale-if-error: when the
// database cannot be reached, cached content is served and marked
// `X-Continuum-Degraded: stale` (with its Age), never an error while a copy exists.
//
//   GET /api/v1/articles[?tag=heart][&q=word]   the library (public)
//   GET /api/v1/articles/{slug}                 one article (public)
//   GET /api/v1/recommendations[?patient=ID]    articles for the patient's active
//                                               conditions and medications (audited)
#pragma once

#include <boost/asio/awaitable.hpp>

#include "http/message.hpp"
#include "portal/context.hpp"

namespace continuum::portal::low {

boost::asio::awaitable<http::Response> ListArticles(RequestContext& ctx);
boost::asio::awaitable<http::Response> ReadArticle(RequestContext& ctx);
boost::asio::awaitable<http::Response> Recommendations(RequestContext& ctx);

}  // namespace continuum::portal::low
