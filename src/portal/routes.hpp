// The route table: every route, its handler and its tier, declared once.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <string>

#include "http/router.hpp"
#include "portal/context.hpp"

namespace continuum::portal {

struct RouteEntry {
  std::function<boost::asio::awaitable<http::Response>(RequestContext&)> handler;
  Tier tier;
  std::string name;
};

http::Router<RouteEntry> BuildRoutes();

}  // namespace continuum::portal
