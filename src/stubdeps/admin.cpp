#include "stubdeps/admin.hpp"

#include <charconv>

#include "core/error.hpp"
#include "core/log.hpp"
#include "stubdeps/api.hpp"
#include "stubdeps/instant.hpp"

namespace continuum::stubdeps {

namespace {

Dependency DependencyOrThrow(std::string_view name) {
  auto d = ParseDependency(name);
  if (!d)
    throw BadRequest("Unknown dependency '" + std::string(name).substr(0, 64) +
                     "'. Allowed dependencies: " + DependencyList() + ".");
  return *d;
}

}  // namespace

json::object AdminApi::FaultJson(Dependency d) const {
  const FaultState& s = ctx_.faults->Get(d);
  return json::object{{"dependency", Name(d)},
                      {"mode", ModeName(s.mode)},
                      {"delay_ms", s.delay_ms},
                      {"port", ctx_.port(d)},
                      {"listening", ctx_.listening(d)}};
}

json::object AdminApi::AllFaults() const {
  json::object faults;
  for (Dependency d : kAllDependencies) faults[Name(d)] = FaultJson(d);
  return json::object{{"admin_port", ctx_.admin_port},
                      {"modes", json::array{"ok", "error", "timeout", "slow", "refuse"}},
                      {"faults", std::move(faults)}};
}

http::Response AdminApi::SetFault(Dependency d, const http::Request& req) {
  FaultChange change = ParseFaultChange(req.body);
  const ListenerAction action = ctx_.faults->Set(d, change);
  if (action != ListenerAction::kNone && ctx_.apply) {
    if (auto err = ctx_.apply(d, action)) {
      // Could not reopen (port taken meanwhile): stay in refuse, and say so.
      ctx_.faults->Set(d, FaultChange{FaultMode::kRefuse, change.delay_ms});
      return ErrorJson(500, "listener_failed", *err);
    }
  }
  log::Info("stub-deps: {} fault mode set to {} (delay {} ms)", Name(d), ModeName(change.mode),
            change.delay_ms);
  return JsonResponse(200, FaultJson(d));
}

http::Response AdminApi::Handle(const http::Request& req) {
  try {
    std::string_view path = req.path;
    const std::string_view m = req.method;
    if (path == "/healthz") {
      if (m != "GET") return NoRoute(true, "GET");
      return JsonResponse(200, json::object{{"status", "ok"}});
    }
    if (path == "/admin/faults" || path == "/admin/faults/") {
      if (m == "GET") return JsonResponse(200, AllFaults());
      if (m == "DELETE") {
        for (Dependency d : kAllDependencies) {
          const ListenerAction a = ctx_.faults->Set(d, FaultChange{});
          if (a != ListenerAction::kNone && ctx_.apply) {
            if (auto err = ctx_.apply(d, a)) {
              ctx_.faults->Set(d, FaultChange{FaultMode::kRefuse, kDefaultDelayMs});
              return ErrorJson(500, "listener_failed", *err);
            }
          }
        }
        log::Info("stub-deps: every fault mode reset to ok");
        return JsonResponse(200, AllFaults());
      }
      return NoRoute(true, "GET, DELETE");
    }
    if (path.starts_with("/admin/faults/")) {
      const Dependency d = DependencyOrThrow(path.substr(14));
      if (m == "PUT") return SetFault(d, req);
      if (m == "GET") return JsonResponse(200, FaultJson(d));
      return NoRoute(true, "GET, PUT");
    }
    if (path.starts_with("/admin/log/")) {
      const Dependency d = DependencyOrThrow(path.substr(11));
      ReceivedLog* log = ctx_.logs[Index(d)];
      if (m == "GET") {
        json::object o = log->ToJson();
        o["dependency"] = Name(d);
        return JsonResponse(200, o);
      }
      if (m == "DELETE") {
        const std::size_t n = log->Clear();
        return JsonResponse(200, json::object{{"dependency", Name(d)}, {"cleared", n}});
      }
      return NoRoute(true, "GET, DELETE");
    }
    if (path == "/admin/ehr/tick") {
      if (m != "POST") return NoRoute(true, "POST");
      int n = 1;
      if (auto p = req.param("n")) {
        auto [end, ec] = std::from_chars(p->data(), p->data() + p->size(), n);
        if (ec != std::errc() || end != p->data() + p->size() || n < 1 || n > 10000)
          throw BadRequest("n must be a whole number from 1 to 10000.");
      }
      json::array changes;
      for (int i = 0; i < n; ++i) {
        EhrChange c = ctx_.ehr->Tick(NowMs());
        changes.push_back(json::object{{"resourceType", TypeName(c.type)},
                                       {"id", std::to_string(c.id)},
                                       {"created", c.created}});
      }
      return JsonResponse(200, json::object{{"changes", std::move(changes)}});
    }
    return NoRoute(false, "");
  } catch (...) {
    return ErrorFromException(std::current_exception());
  }
}

}  // namespace continuum::stubdeps
