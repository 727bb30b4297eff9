-- quic_basic: the headline QUIC scenario. A QUIC v1 client and server
-- (BoringSSL's QUIC API, RFC 9001 packet protection) over a lossy link:
-- handshake, a request on stream 0, a 20 kB response, then the client
-- closes with application error 0.
--
--   tlsim run scripts/scenarios/quic_basic.lua --seed 3 --trace t.db
--   sqlite3 t.db "SELECT src, ptype, space, pn, frames FROM packet WHERE parent IS NOT NULL"
local w = tlsim.world{ seed = arg.seed or 1 }
w:link{ latency = "20ms", jitter = "2ms", loss = tonumber(arg.loss or 0.05) }
local pki = w:pki{ alg = arg.alg or "p256" }
local srv = w:quic_server{ pki = pki }
local cli = w:quic_client{ pki = pki }

local response = {}
for i = 1, 900 do response[#response + 1] = ("line %04d of the body.\n"):format(i) end
response = table.concat(response)
local request = "GET /index.html\r\n"

srv:on("data", function(s, ev)
  if ev.fin == 1 and s:received() == request then
    s:send(response, true)
  end
end)
cli:on("connected", function(c) c:send(request, true) end)
cli:on("data", function(c, ev)
  if ev.fin == 1 then c:shutdown(0) end
end)

cli:start()
w:run{ limit = "120s" }

w:expect(cli:received() == response, "the client reads the response byte-exact",
         #cli:received() .. " bytes")
w:expect(cli:info().connected_ns >= 0, "the client's handshake completed")
w:expect(srv:info().close_received_ns >= 0 and srv:info().close_app == 1,
         "the server sees the client's application close")
w:expect(srv:state() == "closed" and cli:state() == "closed",
         "both end closed", srv:state() .. "/" .. cli:state())
