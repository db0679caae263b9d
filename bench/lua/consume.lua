-- The consume cycle: claim PARAMS.batch messages (api-v1.md 2.16), then
-- delete exactly those by ids (2.13); over v2 (PARAMS.api) in PARAMS.project,
-- where a claim answers {"messages": [...]} with the same hrefs. The connections of a wrk thread share
-- this Lua state, so the cycle is a thread-wide state machine: an answered
-- claim queues its delete, and the next request of any connection of the
-- thread sends the oldest queued delete before claiming again. Every claim
-- is thus followed by its delete, and at most one request per connection is
-- in flight (no pipelining). With PARAMS.queues above 1, the claims go in
-- turn to PARAMS.queue .. "-0" ... "-(queues-1)" (loads spread over pools),
-- and each delete to the queue its claim's hrefs name.

local claim_requests = {}
local queues = PARAMS.queues or 1
local turn = 0
local api_prefix = "/" .. PARAMS.api .. "/queues/"
local delete_headers = {["Client-ID"] = PARAMS.client_id}
local claim_headers = {["Client-ID"] = PARAMS.client_id, ["Content-Type"] = "application/json"}
if PARAMS.project ~= "" then
   delete_headers["X-Project-ID"] = PARAMS.project
   claim_headers["X-Project-ID"] = PARAMS.project
end
local pending = {}
local first, last = 1, 0

function init(args)
   for i = 1, queues do
      local name = PARAMS.queue
      if queues > 1 then
         name = name .. "-" .. (i - 1)
      end
      claim_requests[i] = wrk.format(
         "POST", api_prefix .. name .. "/claims?limit=" .. PARAMS.batch, claim_headers,
         '{"ttl":60,"grace":60}')
   end
end

function request()
   if first <= last then
      local path = pending[first]
      pending[first] = nil
      first = first + 1
      bench_deletes = bench_deletes + 1
      return wrk.format("DELETE", path, delete_headers)
   end
   turn = turn % queues + 1
   return claim_requests[turn]
end

function response(status, headers, body)
   if status == 201 then
      local ids, queue = {}, nil
      for name, id in string.gmatch(body, '/queues/([^/"]+)/messages/([^"?/]+)%?claim_id=') do
         ids[#ids + 1] = id
         queue = name
      end
      bench_messages = bench_messages + #ids
      if #ids > 0 then
         last = last + 1
         pending[last] = api_prefix .. queue .. "/messages?ids=" .. table.concat(ids, ",")
      end
   elseif status == 204 then
      bench_no_content = bench_no_content + 1
   else
      bench_unexpected = bench_unexpected + 1
   end
end
