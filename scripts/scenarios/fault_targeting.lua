-- fault_targeting: protocol-aware faults (l:fault). Instead of a loss
-- probability, a rule names packets by what they are and acts on the
-- datagram or segment that carries them; the packet rows say why
-- (reason fault:NAME). Each case states what must follow:
--
--   case=hs_drop    drop the first datagram with a Handshake packet from
--                   the server: the handshake still completes, later
--   case=fin_delay  delay the client's Handshake CRYPTO (its Finished) by
--                   300 ms: the server completes 300 ms later than the
--                   client
--   case=done_dup   duplicate the datagram with HANDSHAKE_DONE: a real
--                   duplicate on the wire, harmless
--   case=reorder    hold the server's first 1-RTT datagram until two more
--                   have left, then deliver it behind them: the response
--                   still arrives byte-exact
--   case=corrupt    flip 8 bits of the server's first Handshake datagram:
--                   packet protection discards it and the handshake
--                   completes after a retransmission
--   case=tcp_fin    TLS over the stream: drop every segment carrying the
--                   client's FIN: the server never sees the close
--   case=tcp_byte  TLS over the stream: drop, once, the segment carrying
--                   byte 3000 of the server's stream (byte = 3000, 0-based,
--                   data only); its retransmission gets through and a
--                   3000-byte response arrives byte-exact
--   case=tls_finished TLS over the stream: delay the segment carrying the
--                   client's Finished (tls = "Finished") by 300 ms: the
--                   server's handshake completes 300 ms later. The client's
--                   stream is cut after its ChangeCipherSpec (the
--                   ClientHello is 250 bytes, the ChangeCipherSpec record
--                   6), so the Finished's record travels alone and the
--                   ChangeCipherSpec is not delayed
--   case=tls_server_finished TLS over the stream: the server's flight in
--                   100-byte segments; drop the ones that carry its Finished
--                   (the last two), first transmissions only: the
--                   Certificate's segments arrive, the handshake completes
--                   after the retransmission timeout
--
--   tlsim run scripts/scenarios/fault_targeting.lua --set case=fin_delay --trace t.db
--   sqlite3 t.db "SELECT src, ptype, frames, fate, reason FROM packet WHERE reason LIKE 'fault:%'"
local w = tlsim.world{ seed = arg.seed or 1 }
local case = arg.case or "hs_drop"
local l = w:link{ latency = "20ms" }
local pki = w:pki{}

if case == "tls_finished" then
  local srv = w:tls_server{ pki = pki }
  local cli = w:tls_client{ pki = pki, split_at = { 256 } }
  l:fault{ name = "client finished", from = "client", tls = "Finished",
           action = "delay", by = "300ms" }
  local at = {}
  cli:on("handshake_done", function() at.client = w:now() end)
  srv:on("handshake_done", function() at.server = w:now() end)
  cli:connect(); srv:accept()
  w:run{ limit = "5s" }
  w:expect(at.client and at.server and at.server - at.client >= w:ms(300),
           "the server completes 300 ms after the client",
           at.server and at.client and w:fmt(at.server - at.client) or "never")
  return
end

if case == "tcp_byte" then
  local srv = w:tls_server{ pki = pki }
  local cli = w:tls_client{ pki = pki }
  l:fault{ name = "server byte 3000", from = "server", byte = 3000,
           count = 1, action = "drop" }
  local body = ("abcdefghij"):rep(300)
  local got = ""
  srv:on("data", function(s) s:write(body) end)
  cli:on("handshake_done", function(c) c:write("GET") end)
  cli:on("data", function(c, ev) got = got .. ev.data end)
  cli:connect(); srv:accept()
  w:run{ limit = "5s" }
  w:expect(got == body, "the response arrives byte-exact",
           #got .. " of " .. #body .. " bytes")
  return
end

if case == "tls_server_finished" then
  local srv = w:tls_server{ pki = pki, mss = 100 }
  local cli = w:tls_client{ pki = pki }
  -- The flight leaves at 60 ms, its retransmission 200 ms later.
  l:fault{ name = "server finished", from = "server", tls = "Finished",
           before = "100ms", action = "drop" }
  local done
  cli:on("handshake_done", function() done = w:now() end)
  cli:connect(); srv:accept()
  w:run{ limit = "5s" }
  w:expect(done ~= nil, "the handshake completes after the retransmission")
  w:expect(done and done >= w:ms(260), "not before the retransmission timeout",
           done and w:fmt(done) or "never")
  return
end

if case == "tcp_fin" then
  local srv = w:tls_server{ pki = pki }
  local cli = w:tls_client{ pki = pki }
  l:fault{ name = "client FIN", from = "client", type = "FIN",
           action = "drop" }
  local closed = false
  srv:on("close_notify", function() closed = true end)
  srv:on("eof", function() closed = true end)
  cli:on("handshake_done", function(c) c:close() end)
  cli:connect(); srv:accept()
  w:run{ limit = "5s" }
  w:expect(not closed, "the server never learns of the close")
  return
end

local srv = w:quic_server{ pki = pki }
local cli = w:quic_client{ pki = pki }
local body = ("0123456789abcdef"):rep(400) -- 6400 bytes: several datagrams
local at = {}
cli:on("connected", function(c) at.client = w:now(); c:send("GET", true) end)
srv:on("connected", function() at.server = w:now() end)
srv:on("data", function(s, ev) if ev.fin == 1 then s:send(body, true) end end)
cli:on("data", function(c, ev)
  if ev.fin == 1 then at.done = w:now(); at.ok = c:received() == body; c:shutdown(0) end
end)

local rules = {
  hs_drop = { name = "first server handshake", from = "server",
              type = "handshake", nth = 1, action = "drop" },
  fin_delay = { name = "client finished", from = "client",
                type = "handshake", frame = "CRYPTO", action = "delay",
                by = "300ms" },
  done_dup = { name = "handshake done", frame = "HANDSHAKE_DONE",
               action = "dup", by = "1ms" },
  reorder = { name = "first server 1-RTT", from = "server", type = "1rtt",
              nth = 1, action = "reorder", behind = 2 },
  corrupt = { name = "server handshake bits", from = "server",
              type = "handshake", nth = 1, action = "corrupt", bits = 8 },
}
if rules[case] == nil then error("unknown case '" .. case .. "'") end
l:fault(rules[case])

cli:start()
w:run{ limit = "10s" }
w:expect(at.client ~= nil and at.server ~= nil,
         "both ends complete the handshake despite the fault")
w:expect(at.ok == true, "the response arrives byte-exact")
if case == "fin_delay" then
  w:expect(at.server and at.client and at.server - at.client >= w:ms(300),
           "the server completes 300 ms after the client",
           at.server and w:fmt(at.server - at.client) or "never")
end
w:log(("case %s: client connected %s, server %s, response %s"):format(case,
      at.client and w:fmt(at.client) or "never",
      at.server and w:fmt(at.server) or "never",
      at.done and w:fmt(at.done) or "never"))
