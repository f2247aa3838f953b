-- wrk script: single task submissions (POST /v1/tasks, one noop task each), the path that
-- `conveyor-load run --preset max-single` drives with its own client. wrk's client costs little CPU,
-- so it shows the coordinator's own rate. Used by LoadTests/wrk-single.sh:
--
--   wrk -t2 -c64 -d20s -s LoadTests/wrk-post.lua http://127.0.0.1:8080
--
-- CONVEYOR_API_TOKEN, when set, is sent as the bearer token.
wrk.method = "POST"
wrk.path = "/v1/tasks"
wrk.body = '{"type":"noop","params":{"n":1}}'
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("CONVEYOR_API_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

-- No response() callback: wrk would then hand every response to Lua, which costs its client CPU.

function done(summary, latency, requests)
  io.write(string.format("requests/s   %.0f\n", summary.requests / (summary.duration / 1e6)))
  io.write(string.format("latency      P50 %.2f ms  P99 %.2f ms  max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("non-2xx      %d  socket errors %d\n", summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
