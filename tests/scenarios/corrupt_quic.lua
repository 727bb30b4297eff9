-- corrupt_quic: stream data over a damaging link (tests/cli/corruption.sh
-- sweeps it over 500 seeds). Bit flips (5% of datagrams), duplicates and
-- reordering; no loss, so every failure to deliver is the corruption's.
-- The client sends a 6 KB request on stream 0, the server a 16 KB
-- response once the request is complete, then the client closes. Both
-- payloads are a deterministic pattern of every byte value.
--
-- What must hold for every seed (never silently wrong):
--   - the run ends by itself (idle) within its limit: no hang, no livelock;
--   - each side's received bytes are a prefix of what the peer sent, and a
--     FIN is only seen after all of them;
--   - a side that did not get everything ended with the error reported (a
--     close other than the client's own application close 0: a timeout, a
--     transport or crypto error), never as a quiet success.
-- --set corrupt=P, dup=P, reorder=P, bits=N (bits flipped per damaged
-- datagram, default 1), require=1 (also require completion: counts the
-- runs where the error path was taken).
local w = tlsim.world{ seed = arg.seed or 1 }
local corrupt = tonumber(arg.corrupt or 0.05)
w:link{ latency = "20ms", jitter = "2ms", corrupt = corrupt,
        corrupt_bits = tonumber(arg.bits or 1),
        dup = tonumber(arg.dup or 0.05), reorder = tonumber(arg.reorder or 0.05),
        reorder_delay = "15ms" }
local pki = w:pki{}
local srv = w:quic_server{ pki = pki }
local cli = w:quic_client{ pki = pki }

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
    if ev.fin == 1 and #got ~= #want then
      bad[#bad + 1] = name .. ": FIN after " .. #got .. " of " .. #want .. " bytes"
    end
    if ev.fin == 1 and e == srv and got == want then e:send(response, true) end
    if ev.fin == 1 and e == cli and got == want then e:shutdown(0) end
  end)
  return function() return table.concat(seen) end
end
-- --set tamper=1: the client checks against a response with one byte
-- changed, to show that the checks catch wrong bytes.
local expected = response
if tostring(arg.tamper) == "1" then expected = response:sub(1, -2) .. "!" end
local srv_got = watch(srv, request, "server")
local cli_got = watch(cli, expected, "client")
cli:on("connected", function(c) c:send(request, true) end)
local errors = 0
cli:on("error", function() errors = errors + 1 end)

cli:start()
local why = w:run{ limit = "300s" }

w:expect(why == "idle", "the run ends by itself within its limit", why)
w:expect(#bad == 0, "no wrong bytes, no early FIN", bad[1])
local sr, cr = srv:received(), cli:received()
w:expect(sr == srv_got() and cr == cli_got(), "received() equals the data events")
w:expect(prefix(sr, request), "the server's bytes are the request's", #sr .. " bytes")
w:expect(prefix(cr, expected), "the client's bytes are the response's", #cr .. " bytes")
local ci, si = cli:info(), srv:info()
local complete = cr == response and sr == request
-- An incomplete transfer must show on the client: a timeout, or a
-- CONNECTION_CLOSE with an error, or an error event; never the plain
-- "closed" of a connection that ended as it should.
local reported = ci.close_reason ~= "closed" or errors > 0
    or (ci.close_received_ns >= 0 and ci.close_error ~= 0)
w:expect(complete or reported, "an incomplete transfer is reported as an error",
         ("client %s, %d/%d and %d/%d bytes"):format(ci.close_reason,
           #sr, #request, #cr, #response))
-- A server that never decrypted an Initial has no connection: it stays idle.
local srv_ended = srv:state() == "closed"
    or (srv:state() == "idle" and si.packets_received == 0)
w:expect(cli:state() == "closed" and srv_ended, "both ends closed",
         cli:state() .. "/" .. srv:state())
if tostring(arg.require) == "1" then
  w:expect(complete, "the transfer completes",
           ("client %s, server %s"):format(ci.close_reason, si.close_reason))
end
