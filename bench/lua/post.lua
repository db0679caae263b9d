-- POST a batch of PARAMS.batch messages to PARAMS.queue (api-v1.md 2.10).
wrk.method = "POST"
wrk.path = "/v1/queues/" .. PARAMS.queue .. "/messages"
wrk.headers["Client-ID"] = PARAMS.client_id
wrk.headers["Content-Type"] = "application/json"
do
   local items = {}
   for i = 1, PARAMS.batch do
      items[i] = '{"ttl":300,"body":{"event":"BackupStarted","id":' .. i .. '}}'
   end
   wrk.body = "[" .. table.concat(items, ",") .. "]"
end

function response(status, headers, body)
   if status == 201 then
      bench_messages = bench_messages + PARAMS.batch
   else
      bench_unexpected = bench_unexpected + 1
   end
end
