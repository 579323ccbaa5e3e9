-- POST /api/v1/forms with a new invoice number and traveller every request.
--   wrk ... -s forms.lua URL -- RUN_TAG BEARER_TOKEN PURCHASE_DATE
-- RUN_TAG makes invoice numbers unique across runs (one form per invoice).

counters = {"unexpected"}
dofile(os.getenv("BENCH_WRK_DIR") .. "/report.lua")

local tag, date
local n = 0
unexpected = 0

local template = '{"invoice_number": "%s-%d", "purchase_date": "%s", '
   .. '"traveller": {"first_name": "Mei", "last_name": "Chen", "passport_number": "B%s%07d", '
   .. '"passport_country": "CN", "nationality": "CN", "residence_country": "CN", '
   .. '"date_of_birth": "1988-03-14"}, '
   .. '"items": [{"description": "Wool coat", "quantity": 1, "unit_price_cents": 12100, '
   .. '"vat_rate": 21, "category": "clothing"}, '
   .. '{"description": "Scarf", "quantity": 2, "unit_price_cents": 3500, '
   .. '"vat_rate": 21, "category": "clothing"}]}'

function init(args)
   tag, date = args[1], args[3]
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Bearer " .. args[2]
end

function request()
   n = n + 1
   return wrk.format(nil, nil, nil, string.format(template, tag, n, date, string.upper(tag), n))
end

function response(status, headers, body)
   if string.sub(body, 1, 1) ~= "{" then
      unexpected = unexpected + 1
   end
end
