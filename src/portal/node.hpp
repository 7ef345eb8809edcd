// `continuum serve`: one portal node. Wires the configuration, the audit journal and
// shipper, the session cache, the per-shard pools, the route table and the HTTP server,
// and runs until SIGTERM (graceful) or SIGINT.
#pragma once

#include <string_view>

#include "core/config.hpp"

namespace continuum::portal {

// Returns the process exit code.
int Serve(const Config& config);

}  // namespace continuum::portal
