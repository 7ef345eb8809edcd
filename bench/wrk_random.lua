-- wrk script: audited provider reads of random patients (bench/population).
-- BENCH_TOKENS: lines "k token" (provider session k); BENCH_PAIRS: lines "k patient_id"
-- (a patient in the care of provider k). Each request takes a random pair: the patient's
-- $summary (BENCH_MODE=summary) or AllergyIntolerance?patient= (allergy), read with the
-- session of the provider whose patient it is.
local headers = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  local k, tok = line:match("(%d+) (%S+)")
  if k then headers[tonumber(k)] = {["Authorization"] = "Bearer " .. tok} end
end
local pairs_k, pairs_p = {}, {}
for line in io.lines(os.getenv("BENCH_PAIRS")) do
  local k, p = line:match("(%d+) (%S+)")
  if k and headers[tonumber(k)] then
    pairs_k[#pairs_k + 1] = tonumber(k)
    pairs_p[#pairs_p + 1] = p
  end
end
local mode = os.getenv("BENCH_MODE") or "summary"

init = function(args)
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))
end

request = function()
  local i = math.random(1, #pairs_p)
  local path
  if mode == "summary" then
    path = "/fhir/R4/Patient/" .. pairs_p[i] .. "/$summary"
  else
    path = "/fhir/R4/AllergyIntolerance?patient=" .. pairs_p[i]
  end
  return wrk.format("GET", path, headers[pairs_k[i]])
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_ms=%.3f p99_ms=%.3f errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, e.connect + e.read + e.write + e.timeout + e.status))
end
