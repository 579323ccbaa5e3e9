-- POST /api/v1/traveller/validations as the traveller's app sends it: each
-- request another traveller, signed in beforehand, with their own token and
-- evidence made moments before the run (bench/traveller_load.py).
--   wrk ... -s validate.lua URL -- BODIES_FILE KEY_PREFIX
-- BODIES_FILE has one request a line: the traveller token, a tab, the JSON
-- body. Each request carries its own Idempotency-Key (KEY_PREFIX-1,
-- KEY_PREFIX-2 ...): the API requires one.
-- If the file runs out, lines start again from the top and `wrapped` counts
-- the reuses (forms already validated: the harness flags such a cell).
-- `validated`, `check_required` and `refused` count the verdicts of the
-- forms in the answers; `unexpected` counts answers that hold no verdict
-- (a problem document, or not JSON).

counters = {"wrapped", "validated", "check_required", "refused", "unexpected"}
dofile(os.getenv("BENCH_WRK_DIR") .. "/report.lua")

local tokens, bodies = {}, {}
local i = 0
local key_prefix
wrapped, validated, check_required, refused, unexpected = 0, 0, 0, 0, 0

function init(args)
   for line in io.lines(args[1]) do
      local tab = string.find(line, "\t", 1, true)
      tokens[#tokens + 1] = string.sub(line, 1, tab - 1)
      bodies[#bodies + 1] = string.sub(line, tab + 1)
   end
   key_prefix = args[2]
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   i = i + 1
   if i > #bodies then
      wrapped = wrapped + 1
   end
   local n = (i - 1) % #bodies + 1
   wrk.headers["Authorization"] = "Bearer " .. tokens[n]
   wrk.headers["Idempotency-Key"] = key_prefix .. "-" .. i
   return wrk.format(nil, nil, nil, bodies[n])
end

local function count(body, verdict)
   local _, found = string.gsub(body, '"verdict": *"' .. verdict .. '"', "")
   return found
end

function response(status, headers, body)
   local v, c, r = count(body, "validated"), count(body, "check_required"), count(body, "refused")
   validated = validated + v
   check_required = check_required + c
   refused = refused + r
   if v + c + r == 0 then
      unexpected = unexpected + 1
   end
end
