// `continuum probe`: runs every journey for every vantage, concurrently on one Asio
// io_context (C++20 coroutines, the non-blocking http::Fetch client), each on its own
// schedule: a random first start within one interval, then every interval +- 10 %, so
// runs do not align. A vantage's base URLs are used in turn, run by run.
//
// After each run the result is POSTed to `[report] url` (detached, short timeout; a
// failure is logged and counted in continuum_probe_report_failures_total, it never
// delays a run). The prober's own HTTP server answers GET /metrics (the series of
// notes/monitoring-spec.md), GET /runs (last 20 runs per journey and vantage) and POST
// /alerts (an Alertmanager webhook receiver that appends each alert as a JSON line to
// `[alerts] log_file`). Nothing of a response body is logged or kept, apart from
// OperationOutcome issue codes and truncated diagnostics.
#pragma once

#include <vector>

#include "monitor/journey.hpp"
#include "monitor/probe_config.hpp"

namespace continuum::monitor {

// Runs until SIGINT or SIGTERM; returns the exit code.
int RunProbe(const ProbeConfig& config, const std::vector<Journey>& journeys);

// Loads the config and the journeys (validated against the variables every vantage
// provides). Throws std::runtime_error naming the file (and step) at fault.
std::vector<Journey> LoadJourneysFor(const ProbeConfig& config);

}  // namespace continuum::monitor
