// POST /api/v1/session (log in), DELETE /api/v1/session (log out), and enrolment of a
// second factor: POST /api/v1/session/totp {"password"} answers a provisioning
// otpauth:// URI; POST /api/v1/session/totp/confirm {"code"} turns it on. Design notes:
// src/auth/README.md.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "portal/context.hpp"

namespace continuum::portal {

boost::asio::awaitable<http::Response> Login(RequestContext& ctx);
boost::asio::awaitable<http::Response> Logout(RequestContext& ctx);
boost::asio::awaitable<http::Response> EnrolTotp(RequestContext& ctx);
boost::asio::awaitable<http::Response> ConfirmTotp(RequestContext& ctx);

}  // namespace continuum::portal
