-- POST one JSON body per request, taken in order from a file (one body a
-- line), so that every scan carries another form's QR payload.
--   wrk ... -s payloads.lua URL -- BODIES_FILE BEARER_TOKEN [KEY_PREFIX]
-- With KEY_PREFIX each request carries its own Idempotency-Key
-- (KEY_PREFIX-1, KEY_PREFIX-2 ...), as the kiosk sends one with every scan.
-- If the file runs out, bodies start again from the top and `wrapped` counts
-- the reuses (the harness flags such a cell: those requests were re-scans).
-- `refused` counts answers with the verdict "refused" (a fresh valid form is
-- never refused); `unexpected` counts bodies that are not JSON objects.

counters = {"wrapped", "refused", "unexpected"}
dofile(os.getenv("BENCH_WRK_DIR") .. "/report.lua")

local bodies = {}
local i = 0
local key_prefix
wrapped, refused, unexpected = 0, 0, 0

function init(args)
   for line in io.lines(args[1]) do
      bodies[#bodies + 1] = line
   end
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Bearer " .. args[2]
   key_prefix = args[3]
end

function request()
   i = i + 1
   if i > #bodies then
      wrapped = wrapped + 1
   end
   if key_prefix then
      wrk.headers["Idempotency-Key"] = key_prefix .. "-" .. i
   end
   return wrk.format(nil, nil, nil, bodies[(i - 1) % #bodies + 1])
end

function response(status, headers, body)
   if string.find(body, '"verdict": *"refused"') then
      refused = refused + 1
   elseif string.sub(body, 1, 1) ~= "{" then
      unexpected = unexpected + 1
   end
end
