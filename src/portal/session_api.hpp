// POST /api/v1/session (log in) and DELETE /api/v1/session (log out).
#pragma once

#include <boost/asio/awaitable.hpp>

#include "portal/context.hpp"

namespace continuum::portal {

boost::asio::awaitable<http::Response> Login(RequestContext& ctx);
boost::asio::awaitable<http::Response> Logout(RequestContext& ctx);

}  // namespace continuum::portal
