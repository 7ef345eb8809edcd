// The admin endpoint (on --base-port), never faulted:
//   GET    /healthz                       {"status": "ok"}
//   GET    /admin/faults                  every dependency's mode, delay and port
//   PUT    /admin/faults/{dependency}     {"mode": "ok|error|timeout|slow|refuse"[, "delay_ms": N]}
//   DELETE /admin/faults                  every dependency back to ok
//   GET    /admin/log/{dependency}        what the stand-in received (see ReceivedLog)
//   DELETE /admin/log/{dependency}        forget it
//   POST   /admin/ehr/tick[?n=K]          apply K (default 1) EHR changes now
// Unknown dependencies and modes are 400s naming the allowed values.
#pragma once

#include <array>
#include <functional>
#include <optional>
#include <string>

#include "http/message.hpp"
#include "stubdeps/dependency.hpp"
#include "stubdeps/ehr_data.hpp"
#include "stubdeps/fault.hpp"
#include "stubdeps/received_log.hpp"

namespace continuum::stubdeps {

struct AdminContext {
  FaultBoard* faults = nullptr;
  std::array<ReceivedLog*, kAllDependencies.size()> logs{};
  EhrStore* ehr = nullptr;
  // Opens or closes the dependency's listener; returns an error message on failure.
  std::function<std::optional<std::string>(Dependency, ListenerAction)> apply;
  std::function<uint16_t(Dependency)> port;
  std::function<bool(Dependency)> listening;
  uint16_t admin_port = 0;
};

class AdminApi {
 public:
  explicit AdminApi(AdminContext ctx) : ctx_(std::move(ctx)) {}
  http::Response Handle(const http::Request& req);

 private:
  http::Response SetFault(Dependency d, const http::Request& req);
  boost::json::object FaultJson(Dependency d) const;
  boost::json::object AllFaults() const;

  AdminContext ctx_;
};

}  // namespace continuum::stubdeps
