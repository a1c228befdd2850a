-- wrk script: POST the GitHub pull_request fixture to /api/v1/webhooks/github, signed.
--
-- Environment:
--   AIOPS_WRK_BODY       path of the body (default service/tests/fixtures/github_pull_request.json)
--   AIOPS_WRK_SIGNATURE  X-Hub-Signature-256 value for that body ("sha256=<hex>"); compute it with
--                        openssl dgst -sha256 -hmac "$AIOPS_WEBHOOK_SECRET_GITHUB" -hex < body
--                        (service/scripts/measure.sh does it). Unset: no signature header.
--   AIOPS_WRK_DELIVERY   "unique" (default): a new X-GitHub-Delivery per request, every request is
--                        accepted (202); "same": one delivery id, all but the first are duplicates (200).
--
-- Usage: wrk -t1 -c32 -d10s --latency -s service/scripts/wrk_github_pr.lua http://127.0.0.1:18080

local body_path = os.getenv("AIOPS_WRK_BODY") or "service/tests/fixtures/github_pull_request.json"
local signature = os.getenv("AIOPS_WRK_SIGNATURE")
local mode = os.getenv("AIOPS_WRK_DELIVERY") or "unique"

local f = assert(io.open(body_path, "rb"), "cannot open body file " .. body_path .. ": set AIOPS_WRK_BODY")
local body = f:read("*a")
f:close()

local path = "/api/v1/webhooks/github"
local headers = {
  ["Content-Type"] = "application/json",
  ["User-Agent"] = "GitHub-Hookshot/wrk",
  ["X-GitHub-Event"] = "pull_request",
}
if signature and signature ~= "" then
  headers["X-Hub-Signature-256"] = signature
end

threads = {}
thread_id = 0
local counter = 0
statuses = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  -- A per-run prefix so two runs against the same server do not collide.
  prefix = string.format("wrk-%d-%d-%d", os.time(), math.random(1, 1000000000), thread_id)
  if mode == "same" then
    headers["X-GitHub-Delivery"] = prefix .. "-same"
    fixed = wrk.format("POST", path, headers, body)
  end
end

function request()
  if fixed then
    return fixed
  end
  counter = counter + 1
  headers["X-GitHub-Delivery"] = prefix .. "-" .. counter
  return wrk.format("POST", path, headers, body)
end

function response(status, hdrs, resp_body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local by_status = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for code, n in pairs(s) do
      by_status[code] = (by_status[code] or 0) + n
    end
  end
  io.write("status counts:")
  for code, n in pairs(by_status) do
    io.write(string.format(" %s=%d", tostring(code), n))
  end
  io.write("\n")
end
