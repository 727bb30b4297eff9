-- corrupt_transfer: stream data over a damaging link, over QUIC (--set
-- proto=quic, the default) or TLS over the TCP-shaped stream (proto=tls);
-- tests/cli/corruption.sh sweeps 500 seeds of each. Bit flips (5% of the
-- packets), duplicates and reordering; no loss, so every failure to
-- deliver is the damage's. QUIC's packet protection drops a damaged
-- packet; the stream's CRC-32C does (a flip it missed would reach TLS,
-- whose record MAC fails with an alert). Retransmission repairs both.
-- The client sends a 6 KB request, the server a 16 KB response once the
-- request is complete; then QUIC's client closes (application error 0),
-- TLS's sides shut down with close_notify. Both payloads are a
-- deterministic pattern of every byte value.
--
-- What must hold for every seed (never silently wrong):
--   - the run ends by itself (idle) within its limit: no hang, no livelock;
--   - each side's received bytes are a prefix of what the peer sent,
--     checked at every data event too, and a QUIC FIN only after all;
--   - an incomplete transfer is reported as an error (a timeout, an
--     alert, a reset, a transport failure), never a clean end;
--   - both ends finished (below: the accepted ways to stay idle or open).
-- --set corrupt=P, dup=P, reorder=P, bits=N (bits flipped per damaged
-- packet, default 1), version=1.2 (TLS), require=1 (also require the
-- transfer to complete: counts the runs that took the error path),
-- tamper=1 (the client checks against a response with its last byte
-- changed: shows that the checks catch wrong bytes).
local w = tlsim.world{ seed = arg.seed or 1 }
local quic = (arg.proto or "quic") == "quic"
assert(quic or arg.proto == "tls", "proto must be quic or tls")
w:link{ latency = "20ms", jitter = "2ms", corrupt = tonumber(arg.corrupt or 0.05),
        corrupt_bits = tonumber(arg.bits or 1),
        dup = tonumber(arg.dup or 0.05), reorder = tonumber(arg.reorder or 0.05),
        reorder_delay = "15ms" }
local pki = w:pki{}
local srv, cli
if quic then
  srv = w:quic_server{ pki = pki }
  cli = w:quic_client{ pki = pki }
else
  srv = w:tls_server{ pki = pki }
  cli = w:tls_client{ pki = pki, max_version = arg.version or "1.3" }
end

local function pattern(n, k)
  local t = {}
  for i = 0, n - 1 do t[#t + 1] = string.char((i * k + (i >> 8)) & 0xff) end
  return table.concat(t)
end
local request, response = pattern(6000, 7), pattern(16000, 131)
local expected = response
if tostring(arg.tamper) == "1" then expected = response:sub(1, -2) .. "!" end
local function prefix(got, want) return want:sub(1, #got) == got end

-- The server answers a complete request; the QUIC client closes after a
-- complete response (TLS's shuts down on the server's close_notify).
local function on_complete(e)
  if e == srv and quic then e:send(response, true)
  elseif e == srv then e:write(response); e:shutdown{ wait = true }
  elseif quic then e:shutdown(0) end
end
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
    if got == want and (ev.fin == 1 or not quic) then on_complete(e) end
  end)
  return function() return table.concat(seen) end
end
local srv_got = watch(srv, request, "server")
local cli_got = watch(cli, expected, "client")
local errors, gave_up = {}, {}
for _, ep in ipairs{ cli, srv } do
  ep:on("error", function(e, ev)
    errors[e] = true
    if ev.op == "transport" then gave_up[e] = true end
  end)
end
if quic then
  cli:on("connected", function(c) c:send(request, true) end)
  cli:start()
else
  cli:on("handshake_done", function(c) c:write(request) end)
  cli:on("close_notify", function(c) c:shutdown{} end)
  srv:accept()
  cli:connect()
end
local why = w:run{ limit = "600s" }

w:expect(why == "idle", "the run ends by itself within its limit", why)
w:expect(#bad == 0, "no wrong bytes, no early FIN", bad[1])
local sr, cr = srv:received(), cli:received()
w:expect(sr == srv_got() and cr == cli_got(), "received() equals the data events")
w:expect(prefix(sr, request), "the server's bytes are the request's", #sr .. " bytes")
w:expect(prefix(cr, expected), "the client's bytes are the response's", #cr .. " bytes")
local complete = cr == expected and sr == request
local reported, ended, why_not, clean_ends = nil, nil, nil, true
if quic then
  -- An incomplete transfer shows on the client: a timeout, a
  -- CONNECTION_CLOSE with an error, or an error event; never the plain
  -- "closed" of a connection that ended as it should.
  local ci, si = cli:info(), srv:info()
  reported = ci.close_reason ~= "closed" or errors[cli]
      or (ci.close_received_ns >= 0 and ci.close_error ~= 0)
  -- A server that never decrypted an Initial has no connection: it
  -- stays idle.
  ended = cli:state() == "closed" and (srv:state() == "closed"
      or (srv:state() == "idle" and si.packets_received == 0))
  why_not = ("client %s/%s, server %s/%s"):format(cli:state(), ci.close_reason,
    srv:state(), si.close_reason)
else
  -- A side that did not get everything must not report a clean end.
  local function clean(ep) return ep:outcome():sub(1, 6) == "clean:" end
  reported = (cr == expected or not clean(cli)) and (sr == request or not clean(srv))
  clean_ends = clean(cli) and clean(srv)
  -- The stream has no keepalive: when one side's retransmissions run out
  -- (an error event, op "transport") while its last segments were all
  -- damaged, the other is left open and waiting, as a TCP endpoint is.
  -- That is the one accepted way for a side to end the run still open.
  local function done(ep, peer) return ep:outcome() ~= "open" or gave_up[peer] end
  ended = done(cli, srv) and done(srv, cli)
  why_not = ("client %s, server %s"):format(cli:outcome(), srv:outcome())
end
w:expect(complete or reported, "an incomplete transfer is reported as an error",
         ("%s; %d/%d and %d/%d bytes"):format(why_not, #sr, #request, #cr, #response))
w:expect(ended, "both ends finished", why_not)
if tostring(arg.require) == "1" then
  w:expect(complete and clean_ends, "the transfer completes", why_not)
end
