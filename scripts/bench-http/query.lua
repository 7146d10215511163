-- wrk script for scripts/bench-http/run.sh: every request is one stateless MCP 2026-07-28
-- tools/call of query_payment_order on an existing order (ORDER_NO), as a remote agent polls.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = "query_payment_order"
local token = os.getenv("BENCH_TOKEN")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"query_payment_order",'
  .. '"arguments":{"order_no":"' .. os.getenv("ORDER_NO") .. '"},'
  .. '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
  .. '"io.modelcontextprotocol/clientCapabilities":{}}}}'

-- BENCH_PACE_MS: each connection waits about this long (jittered) between replies and its next request, so the
-- offered load is about 64 / (pace + latency) per second (the "at 3,000/s" run); unset = flat out.
local pace = tonumber(os.getenv("BENCH_PACE_MS") or "")
if pace ~= nil then
  function delay()
    -- jittered (0.5x to 1.5x), so the 64 connections do not fire in lock-step bursts
    return math.floor(pace * (0.5 + math.random()))
  end
end

-- Every reply is checked: an MCP error also comes back as HTTP 200, so count the replies that are
-- a successful query result (structuredContent with a state, no isError).
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  good, bad = 0, 0
end
function response(status, headers, body)
  if status == 200 and body:find('"state":"', 1, true) and not body:find('"isError":true', 1, true) then
    good = good + 1
  else
    bad = bad + 1
  end
end

done = function(summary, latency, requests)
  local g, b = 0, 0
  for _, t in ipairs(threads) do
    g = g + t:get("good")
    b = b + t:get("bad")
  end
  io.write(string.format("BENCH requests=%d good=%d bad=%d seconds=%.3f non2xx=%d errors=%d p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
    summary.requests, g, b, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
