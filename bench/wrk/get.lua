-- GET the URL with a bearer token (or none).
--   wrk ... -s get.lua URL -- [BEARER_TOKEN]

counters = {"unexpected"}
dofile(os.getenv("BENCH_WRK_DIR") .. "/report.lua")

unexpected = 0

function init(args)
   if args[1] then
      wrk.headers["Authorization"] = "Bearer " .. args[1]
   end
end

function response(status, headers, body)
   if string.sub(body, 1, 1) ~= "{" then
      unexpected = unexpected + 1
   end
end
