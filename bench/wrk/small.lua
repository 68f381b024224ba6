-- wrk script for the 100-byte workload.
-- Direct:        wrk ... -s small.lua http://127.0.0.1:ORIGIN/small
-- Through proxy: wrk ... -s small.lua http://127.0.0.1:PROXY/ -- http://127.0.0.1:ORIGIN/small 127.0.0.1:ORIGIN
--   (wrk connects to the proxy; the request line carries the absolute-form target and Host names the origin)
-- done() prints one JSON line that bench/run.ts reads.

-- BENCH_PROXY_AUTH=user:password adds proxy credentials (Basic) to every request (hctunnel --auth-file).

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
   return ((s:gsub(".", function(c)
      local bits, byte = "", c:byte()
      for i = 8, 1, -1 do bits = bits .. (byte % 2 ^ i - byte % 2 ^ (i - 1) > 0 and "1" or "0") end
      return bits
   end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(bits)
      if #bits < 6 then return "" end
      local n = 0
      for i = 1, 6 do n = n + (bits:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
      return b64chars:sub(n + 1, n + 1)
   end) .. ({ "", "==", "=" })[#s % 3 + 1])
end

function init(args)
   if args[1] ~= nil then
      wrk.path = args[1]
      wrk.headers["Host"] = args[2]
   end
   local auth = os.getenv("BENCH_PROXY_AUTH")
   if auth ~= nil and auth ~= "" then
      wrk.headers["Proxy-Authorization"] = "Basic " .. base64(auth)
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      '{"requests":%d,"durationUs":%d,"bytes":%d,"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"statusErrors":%d,"timeouts":%d,"p50Us":%d,"p90Us":%d,"p99Us":%d,"meanUs":%.1f,"maxUs":%d}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
