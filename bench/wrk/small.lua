-- wrk script for the 100-byte workload.
-- Direct:        wrk ... -s small.lua http://127.0.0.1:ORIGIN/small
-- Through proxy: wrk ... -s small.lua http://127.0.0.1:PROXY/ -- http://127.0.0.1:ORIGIN/small 127.0.0.1:ORIGIN
--   (wrk connects to the proxy; the request line carries the absolute-form target and Host names the origin)
-- done() prints one JSON line that bench/run.ts reads.

function init(args)
   if args[1] ~= nil then
      wrk.path = args[1]
      wrk.headers["Host"] = args[2]
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      '{"requests":%d,"durationUs":%d,"bytes":%d,"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"statusErrors":%d,"timeouts":%d,"p50Us":%d,"p90Us":%d,"p99Us":%d,"meanUs":%.1f,"maxUs":%d}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
