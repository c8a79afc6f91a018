-- wrk script for benches/load.rs: a mix of GET / and POST /compose over every connection.
--
-- wrk runs one Lua state per thread. Each thread numbers its own POSTs, so a message's text
-- ("load <run> t<thread> n<counter>") is unique, and writes the Location of every 303 it
-- receives (it names the stored message) to its own file: the runner then checks that every
-- acknowledged message is in the database.
--
-- Arguments (after `--`): run id, directory for the per-thread files, POSTs per 100 requests.

local counter = 0
local threads = {}

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   run = args[1]
   dir = args[2]
   post_percent = tonumber(args[3])
   requests, posts, acked, others = 0, 0, 0, 0
   acked_file = io.open(dir .. "/acked-" .. id .. ".txt", "w")
end

function request()
   requests = requests + 1
   -- Spread the POSTs evenly: request k is a POST when k*p/100 crosses an integer.
   if math.floor(requests * post_percent / 100) ~= math.floor((requests - 1) * post_percent / 100) then
      posts = posts + 1
      local body = "text=load+" .. run .. "+t" .. id .. "+n" .. posts
      return wrk.format("POST", "/compose",
                        { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
   end
   return wrk.format("GET", "/")
end

function response(status, headers, body)
   if status == 303 then
      acked = acked + 1
      acked_file:write(headers["Location"] or "(none)", "\n")
      acked_file:flush()
   elseif status ~= 200 then
      others = others + 1
   end
end

function done(summary, latency, requests)
   local sent, acked_all, others_all = 0, 0, 0
   for _, t in ipairs(threads) do
      sent = sent + t:get("posts")
      acked_all = acked_all + t:get("acked")
      others_all = others_all + t:get("others")
   end
   io.write(string.format("LOAD posts_sent=%d posts_acked=%d other_statuses=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d requests=%d\n",
                          sent, acked_all, others_all,
                          latency:percentile(50), latency:percentile(90), latency:percentile(99),
                          latency.max, summary.requests))
end
