-- corrupt_tls: TLS 1.3 application data over a damaging link
-- (tests/cli/corruption.sh sweeps it over 500 seeds). Bit flips (5% of
-- segments), duplicates and reordering; no loss. The stream's CRC-32C
-- turns a damaged segment into a retransmission; a flip it missed would
-- reach TLS, whose record MAC fails with an alert. The client writes a
-- 6 KB request, the server a 16 KB response once the request is
-- complete, then both shut down with close_notify. Both payloads are a
-- deterministic pattern of every byte value.
--
-- What must hold for every seed (never silently wrong):
--   - the run ends by itself (idle) within its limit: no hang, no livelock;
--   - each side's received bytes are a prefix of what the peer wrote;
--   - a clean outcome (close_notify exchanged) only with every byte
--     delivered: a side that did not get everything reports an error
--     (alert, reset, truncation, transport failure), never a clean end.
-- --set corrupt=P, dup=P, reorder=P, bits=N (bits flipped per damaged
-- segment, default 1), version=1.2, require=1 (also require completion).
local w = tlsim.world{ seed = arg.seed or 1 }
w:link{ latency = "20ms", jitter = "2ms", corrupt = tonumber(arg.corrupt or 0.05),
        corrupt_bits = tonumber(arg.bits or 1),
        dup = tonumber(arg.dup or 0.05), reorder = tonumber(arg.reorder or 0.05),
        reorder_delay = "15ms" }
local pki = w:pki{}
local srv = w:tls_server{ pki = pki }
local cli = w:tls_client{ pki = pki, max_version = arg.version or "1.3" }

local function pattern(n, k)
  local t = {}
  for i = 0, n - 1 do t[#t + 1] = string.char((i * k + (i >> 8)) & 0xff) end
  return table.concat(t)
end
local request, response = pattern(6000, 7), pattern(16000, 131)
local function prefix(got, want) return want:sub(1, #got) == got end

-- Every data event is checked as it arrives, and the events' bytes must
-- add up to received().
local bad = {}
local function watch(ep, want, name)
  local seen = {}
  ep:on("data", function(e, ev)
    seen[#seen + 1] = ev.data
    local got = table.concat(seen)
    if not prefix(got, want) then bad[#bad + 1] = name .. ": wrong bytes at " .. #got end
    if e == srv and got == want then
      e:write(response)
      e:shutdown{ wait = true }
    end
  end)
  return function() return table.concat(seen) end
end
-- --set tamper=1: the client checks against a response with one byte
-- changed, to show that the checks catch wrong bytes.
local expected = response
if tostring(arg.tamper) == "1" then expected = response:sub(1, -2) .. "!" end
local srv_got = watch(srv, request, "server")
local cli_got = watch(cli, expected, "client")
cli:on("handshake_done", function(c) c:write(request) end)
cli:on("close_notify", function(c) c:shutdown{} end)
local gave_up = {}
for _, ep in ipairs{ cli, srv } do
  ep:on("error", function(e, ev) if ev.op == "transport" then gave_up[e] = true end end)
end

srv:accept()
cli:connect()
local why = w:run{ limit = "600s" }

w:expect(why == "idle", "the run ends by itself within its limit", why)
w:expect(#bad == 0, "no wrong bytes", bad[1])
local sr, cr = srv:received(), cli:received()
w:expect(sr == srv_got() and cr == cli_got(), "received() equals the data events")
w:expect(prefix(sr, request), "the server's bytes are the request's", #sr .. " bytes")
w:expect(prefix(cr, expected), "the client's bytes are the response's", #cr .. " bytes")
local function clean(ep) return ep:outcome():sub(1, 6) == "clean:" end
w:expect(cr == response or not clean(cli),
         "the client reports an incomplete response as an error",
         ("%s, %d/%d bytes"):format(cli:outcome(), #cr, #response))
w:expect(sr == request or not clean(srv),
         "the server reports an incomplete request as an error",
         ("%s, %d/%d bytes"):format(srv:outcome(), #sr, #request))
-- The stream has no keepalive: when one side's retransmissions run out
-- (an error event, op "transport", reason "timeout") and its last
-- segments were all damaged, the other is left open and waiting, as a TCP
-- endpoint is. That is the one accepted way for a side to end the run
-- still open.
local function ended(ep, peer)
  return ep:outcome() ~= "open" or gave_up[peer]
end
w:expect(ended(cli, srv) and ended(srv, cli), "both ends finished",
         cli:outcome() .. " / " .. srv:outcome())
if tostring(arg.require) == "1" then
  w:expect(cr == response and clean(cli) and clean(srv), "the transfer completes",
           cli:outcome() .. " / " .. srv:outcome())
end
