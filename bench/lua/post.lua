-- POST a batch of PARAMS.batch messages to PARAMS.queue: over v1 a bare
-- array (api-v1.md 2.10), over v2 {"messages": [...]} in PARAMS.project
-- (api-v2.md 3.1); with PARAMS.token, as X-Auth-Token.
wrk.method = "POST"
wrk.path = "/" .. PARAMS.api .. "/queues/" .. PARAMS.queue .. "/messages"
wrk.headers["Client-ID"] = PARAMS.client_id
wrk.headers["Content-Type"] = "application/json"
if PARAMS.project ~= "" then
   wrk.headers["X-Project-ID"] = PARAMS.project
end
if PARAMS.token ~= "" then
   wrk.headers["X-Auth-Token"] = PARAMS.token
end
do
   local items = {}
   for i = 1, PARAMS.batch do
      items[i] = '{"ttl":300,"body":{"event":"BackupStarted","id":' .. i .. '}}'
   end
   local list = "[" .. table.concat(items, ",") .. "]"
   if PARAMS.api == "v1" then
      wrk.body = list
   else
      wrk.body = '{"messages":' .. list .. '}'
   end
end

function response(status, headers, body)
   if status == 201 then
      bench_messages = bench_messages + PARAMS.batch
   else
      bench_unexpected = bench_unexpected + 1
   end
end
