-- wrk script: authenticated FHIR reads spread over many patients.
-- BENCH_MODE is summary|allergy: Patient/{id}/$summary or AllergyIntolerance?patient={id};
-- critical|high|medium|low: that tier's requests of a patient's visit (VISIT below), each
-- session walking them in turn (bench/mixed; BENCH_TOMORROW, YYYY-MM-DD, for the slot search).
-- Without BENCH_PAIRS (bench/run): BENCH_TOKENS names a file of "patient_id token [region]"
-- lines, each session reading its own patient in turn (a region is sent as
-- X-Continuum-Region: the cluster's edge places that session in it).
-- With BENCH_PAIRS (bench/population): BENCH_TOKENS has "k token" lines (provider session k)
-- and BENCH_PAIRS "k patient_id" lines (a patient in the care of provider k); each request
-- takes a random pair and reads with the session of the provider whose patient it is.
local mode = os.getenv("BENCH_MODE") or "summary"
local ids, hdrs = {}, {}   -- request i reads ids[i] with hdrs[i]

local function auth(tok) return {["Authorization"] = "Bearer " .. tok} end

if os.getenv("BENCH_PAIRS") then
  local by_k = {}
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    local k, tok = line:match("(%d+) (%S+)")
    if k then by_k[tonumber(k)] = auth(tok) end
  end
  for line in io.lines(os.getenv("BENCH_PAIRS")) do
    local k, p = line:match("(%d+) (%S+)")
    if k and by_k[tonumber(k)] then
      ids[#ids + 1] = p
      hdrs[#hdrs + 1] = by_k[tonumber(k)]
    end
  end
else
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    local id, tok, region = line:match("(%S+) (%S+) ?(%S*)")
    if id then
      local h = auth(tok)
      if region ~= "" then h["X-Continuum-Region"] = region end
      ids[#ids + 1] = id
      hdrs[#hdrs + 1] = h
    end
  end
end
local random = os.getenv("BENCH_PAIRS") ~= nil
local i = math.random(1, #ids)

-- A patient's visit to the portal, by tier, shaped like the patient journey
-- (deploy/probe/journeys/patient.json) and a portal's home page. {p} is the session's patient.
local tomorrow = os.getenv("BENCH_TOMORROW") or "2030-01-01"
local VISIT = {
  critical = {"/fhir/R4/Patient/{p}/$summary", "/fhir/R4/MedicationStatement?patient={p}",
              "/fhir/R4/AllergyIntolerance?patient={p}", "/fhir/R4/Condition?patient={p}"},
  high = {"/fhir/R4/Appointment?patient={p}",
          "/fhir/R4/Slot?status=free&start=ge" .. tomorrow .. "&_count=5",
          "/fhir/R4/Communication?patient={p}", "/api/v1/messages/unread",
          "/api/v1/notifications"},
  medium = {"/fhir/R4/Invoice?patient={p}", "/fhir/R4/Coverage?patient={p}"},
  low = {"/api/v1/recommendations", "/api/v1/articles"},
}
local steps = VISIT[mode]
local n = 0   -- requests made: session n % #ids, at step n // #ids of its visit

init = function(args)
  math.randomseed(os.time())
end

request = function()
  if random then i = math.random(1, #ids) else i = i % #ids + 1 end
  local path
  if steps then
    local step = math.floor(n / #ids) % #steps + 1
    n = n + 1
    path = steps[step]:gsub("{p}", ids[i])
  elseif mode == "summary" then
    path = "/fhir/R4/Patient/" .. ids[i] .. "/$summary"
  else
    path = "/fhir/R4/AllergyIntolerance?patient=" .. ids[i]
  end
  return wrk.format("GET", path, hdrs[i])
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_ms=%.3f p99_ms=%.3f errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, e.connect + e.read + e.write + e.timeout + e.status))
end
