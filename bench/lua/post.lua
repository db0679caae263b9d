-- POST a batch of PARAMS.batch messages to PARAMS.queue: over v1 a bare
-- array (api-v1.md 2.10), over v2 {"messages": [...]} in PARAMS.project
-- (api-v2.md 3.1); with PARAMS.token, as X-Auth-Token. With PARAMS.queues
-- above 1, the requests go in turn to PARAMS.queue .. "-0" ... "-(queues-1)"
-- (loads spread over pools).
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

local queues = PARAMS.queues or 1
if queues > 1 then
   local requests = {}
   for i = 0, queues - 1 do
      requests[i + 1] = wrk.format(nil, "/" .. PARAMS.api .. "/queues/" .. PARAMS.queue
                                   .. "-" .. i .. "/messages")
   end
   local turn = 0
   function request()
      turn = turn % queues + 1
      return requests[turn]
   end
end

function response(status, headers, body)
   if status == 201 then
      bench_messages = bench_messages + PARAMS.batch
   else
      bench_unexpected = bench_unexpected + 1
   end
end
