-- tls_basic: the headline TLS scenario. A TLS 1.3 client and server over a
-- lossy, jittery link: handshake, a request, a 20 kB response, then both
-- sides shut down with close_notify. Loss shows up as retransmissions and
-- delay, never as wrong bytes.
--
--   tlsim run scripts/scenarios/tls_basic.lua --seed 3 --trace t.db
--   sqlite3 t.db "SELECT time_ns, node, event, level, direction FROM tls"
--   --set version=1.2   a TLS 1.2 client; --set alg=ed25519; --set loss=P
local w = tlsim.world{ seed = arg.seed or 1 }
w:link{ latency = "20ms", jitter = "2ms", loss = tonumber(arg.loss or 0.05) }
local pki = w:pki{ alg = arg.alg or "p256" }
local srv = w:tls_server{ pki = pki }
local cli = w:tls_client{ pki = pki, max_version = arg.version or "1.3" }

local response = {}
for i = 1, 400 do response[#response + 1] = ("line %04d of the body.\n"):format(i) end
response = table.concat(response)
local request = "GET / HTTP/1.1\r\nHost: server.test\r\n\r\n"

srv:on("data", function(s, ev)
  if s:received() == request then
    s:write(response)
    s:shutdown{ wait = true }
  end
end)
cli:on("handshake_done", function(c) c:write(request) end)
cli:on("close_notify", function(c) c:shutdown{} end)

srv:accept()
cli:connect()
w:run{ limit = "120s" }

w:expect(cli:received() == response, "the client reads the response byte-exact",
         #cli:received() .. " bytes")
w:expect(cli:outcome() == "clean: close_notify exchanged",
         "client: clean close", cli:outcome())
w:expect(srv:outcome() == "clean: close_notify exchanged",
         "server: clean close", srv:outcome())
