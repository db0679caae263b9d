-- GET the first page of PARAMS.batch messages of PARAMS.queue (api-v1.md
-- 2.11); over v1.1 and v2 (PARAMS.api) in PARAMS.project, where the page
-- is {"messages": [...], "links": [...]} with the same hrefs.
wrk.method = "GET"
wrk.path = "/" .. PARAMS.api .. "/queues/" .. PARAMS.queue .. "/messages?limit=" .. PARAMS.batch .. "&echo=true"
wrk.headers["Client-ID"] = PARAMS.client_id
if PARAMS.project ~= "" then
   wrk.headers["X-Project-ID"] = PARAMS.project
end

function response(status, headers, body)
   if status == 200 then
      -- Message hrefs end in an id; the "next" link ends in "?marker=".
      for _ in string.gmatch(body, '/messages/[^"?/]+"') do
         bench_messages = bench_messages + 1
      end
   elseif status == 204 then
      bench_empty = bench_empty + 1
   else
      bench_unexpected = bench_unexpected + 1
   end
end
