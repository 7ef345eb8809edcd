-- wrk script for test_rollout's article reader: every connection waits `delay` ms (the
-- first argument after `--`; 6 by default) before each request, so 4 connections send at
-- most about 4 * 1000 / (delay + response time) requests a second instead of as many as the
-- machine can take. Unpaced, the reader saturated the 2 cores and every vantage's login
-- went over its time budget (see test_6).
local delay_ms = 6

function init(args)
  delay_ms = tonumber(args[1]) or delay_ms
end

function delay()
  return delay_ms
end
