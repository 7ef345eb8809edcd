-- wrk script: providers write clinical notes and sign them (critical tier, synchronous
-- commit, audited). BENCH_TOKENS names a file of "patient_id token" lines: a provider's
-- session and a patient in that provider's care. Each note is two requests: POST
-- DocumentReference (a fresh Idempotency-Key), then POST DocumentReference/{id}/$sign with
-- the author's session, sent by whichever connection asks next (wrk's callbacks do not say
-- which connection answered, so created notes wait in a queue for their signature).
-- Every non-2xx answer is an error (wrk counts it); a create answer without an id too.
local sessions, author = {}, {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  local id, tok = line:match("(%S+) (%S+)")
  if id then
    sessions[#sessions + 1] = {id, "Bearer " .. tok}
    author[id] = "Bearer " .. tok     -- one provider per patient (bench/writes picks them so)
  end
end
local run = os.getenv("BENCH_RUN") or tostring(os.time())
local i = math.random(1, #sessions)
local n = 0
local to_sign = {}     -- {note id, authorization} in creation order: a queue [head, tail)
local head, tail = 1, 1
created, signed, bad = 0, 0, 0    -- globals: done() reads them with thread:get

local function body(patient)
  return '{"resourceType":"DocumentReference","status":"current","docStatus":"preliminary",' ..
         '"subject":{"reference":"Patient/' .. patient .. '"},"content":[{"attachment":' ..
         '{"contentType":"text/plain","data":"QmVuY2htYXJrIG5vdGUu","title":"Benchmark"}}]}'
end

request = function()
  if head < tail then
    local s = to_sign[head]
    to_sign[head] = nil
    head = head + 1
    return wrk.format("POST", "/fhir/R4/DocumentReference/" .. s[1] .. "/$sign",
                      {["Authorization"] = s[2]})
  end
  i = i % #sessions + 1
  n = n + 1
  local s = sessions[i]
  return wrk.format("POST", "/fhir/R4/DocumentReference",
                    {["Authorization"] = s[2], ["Content-Type"] = "application/fhir+json",
                     ["Idempotency-Key"] = "bench-" .. run .. "-" .. n}, body(s[1]))
end

response = function(status, headers, body)
  if status < 200 or status >= 300 then return end     -- wrk counts it as an error
  if headers["Idempotent-Replayed"] then bad = bad + 1; return end   -- keys are fresh: never
  local doc = body and body:match('"docStatus"%s*:%s*"(%a+)"')
  local id = body and body:match('"id"%s*:%s*"([^"]+)"')
  local patient = body and body:match('"reference"%s*:%s*"Patient/([^"]+)"')
  if doc == "final" then
    signed = signed + 1
  elseif doc == "preliminary" and id and author[patient] then
    created = created + 1
    to_sign[tail] = {id, author[patient]}
    tail = tail + 1
  else
    bad = bad + 1
  end
end

local threads = {}
setup = function(thread)
  threads[#threads + 1] = thread
end

done = function(summary, latency, requests)
  local e = summary.errors
  local c, s, b = 0, 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created"); s = s + t:get("signed"); b = b + t:get("bad")
  end
  io.write(string.format("RESULT requests=%d duration_us=%d p50_ms=%.3f p99_ms=%.3f errors=%d " ..
    "created=%d signed=%d unexpected=%d\n",
    summary.requests, summary.duration, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, e.connect + e.read + e.write + e.timeout + e.status + b, c, s, b))
end
