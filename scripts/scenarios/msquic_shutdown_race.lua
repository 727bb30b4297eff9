-- msquic_shutdown_race: SCENARIOS.md section 1 (microsoft/msquic issue
-- 4166, fixed by PR 4169; dotnet/runtime 99074). The client defers
-- certificate validation (MsQuic's DEFER_CERTIFICATE_VALIDATION): its TLS
-- handshake runs on and installs 1-RTT write keys, but its Finished waits.
-- About 1 s later the application completes the validation and shuts the
-- connection down. MsQuic queues shutdown at the front of the connection's
-- operation queue, so shutdown runs first, before the Finished is sent.
--
--   variant=fixed  CONNECTION_CLOSE by RFC 9000 10.2.3: in the Handshake
--                  packet as 0x1c APPLICATION_ERROR (and a 1-RTT copy);
--                  the server drains within a few RTTs
--   variant=buggy  the close goes at the write-key level: a 0x1d in a
--                  1-RTT packet the server must not process before its
--                  handshake completes; it ends only at its handshake
--                  timeout (10 s, MsQuic's default)
--   variant=tail   buggy close rule, but shutdown queued at the tail and
--                  the two calls made from two timers at the same virtual
--                  time: the tie-break (the seed) decides the order
--
--   tlsim run scripts/scenarios/msquic_shutdown_race.lua --set variant=buggy --trace t.db
--   sqlite3 t.db < scripts/queries/msquic_close.sql
local w = tlsim.world{ seed = arg.seed or 1 }
local variant = arg.variant or "fixed"
local policies = {
  fixed = { close_rule = "rfc", shutdown_queue = "front" },
  buggy = { close_rule = "write_key", shutdown_queue = "front" },
  tail = { close_rule = "write_key", shutdown_queue = "tail" },
}
local p = policies[variant]
if p == nil then error("unknown variant '" .. variant .. "'") end
local rtt = w:ms(40)
w:link{ latency = "20ms" }
local pki = w:pki{}
local srv = w:quic_server{ pki = pki, handshake_timeout = "10s" }
local cli = w:quic_client{ pki = pki, verify = "deferred",
                           close_rule = p.close_rule,
                           shutdown_queue = p.shutdown_queue }

local called_at
cli:on("peer_certificate", function(c, ev)
  if variant == "tail" then
    w:after("1s", function() c:validation_complete(true) end)
    w:after("1s", function() called_at = w:now(); c:shutdown(0) end)
  else
    w:after("1s", function()
      called_at = w:now()
      c:validation_complete(true) -- queued at the tail
      c:shutdown(0)               -- queued per shutdown_queue
    end)
  end
  return "pending"
end)
local peer_close
srv:on("shutdown_by_peer", function(s, ev) peer_close = ev end)

cli:start()
w:run{ limit = "60s" }

local si = srv:info()
w:expect(peer_close ~= nil, "the server learns of the close",
         "server: " .. si.close_reason)
w:expect(peer_close ~= nil and si.close_received_ns - called_at <= 3 * rtt,
         "the server drains within 3 RTT of the client's call",
         peer_close and w:fmt(si.close_received_ns - called_at) or "never")
if peer_close ~= nil and peer_close.frame == 0x1c then
  w:expect(peer_close.error == 0x0c,
           "an application close before confirmation is APPLICATION_ERROR",
           ("0x%x"):format(peer_close.error))
end
w:log(("server ended: %s at %s"):format(si.close_reason, w:fmt(si.closed_ns)))
