-- wrk script: authenticated FHIR reads spread over many patients.
-- BENCH_TOKENS names a file of "patient_id token [region]" lines (a region is sent as
-- X-Continuum-Region: the cluster's edge places that session in it); BENCH_MODE is
-- summary|allergy.
local sessions = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  local id, tok, region = line:match("(%S+) (%S+) ?(%S*)")
  if id then
    local headers = {["Authorization"] = "Bearer " .. tok}
    if region ~= "" then headers["X-Continuum-Region"] = region end
    sessions[#sessions + 1] = {id, headers}
  end
end
local mode = os.getenv("BENCH_MODE") or "summary"
local i = math.random(1, #sessions)

request = function()
  i = i % #sessions + 1
  local s = sessions[i]
  local path
  if mode == "summary" then
    path = "/fhir/R4/Patient/" .. s[1] .. "/$summary"
  else
    path = "/fhir/R4/AllergyIntolerance?patient=" .. s[1]
  end
  return wrk.format("GET", path, s[2])
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_ms=%.3f p99_ms=%.3f errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, e.connect + e.read + e.write + e.timeout + e.status))
end
