-- timer_edge: a packet aimed at a timer's deadline. After the handshake
-- the client goes quiet; the server's idle timer (2 s here) would close
-- the connection. The client pings once more at 1 s, and a fault rule
-- delivers that datagram at the server's idle deadline (as it stands when
-- the ping is sent) plus an offset; the client's later datagrams are
-- dropped so that nothing else re-arms the timer:
--
--   --set edge=-1ns  (default) it arrives 1 ns before the deadline: the
--                    idle timer is re-armed, the connection lives on
--   --set edge=+1ns  1 ns after: the server has closed (idle timeout)
--   --set edge=0ns   at the deadline itself: the delivery and the timer
--                    are due at the same virtual time, so the seed's tie
--                    key (or `tlsim explore`) decides which runs first;
--                    --set expect=open (or closed) states one outcome,
--                    and exploration finds the order that breaks it
--
--   --set timer=close_notify  the same over TLS: the client's shutdown
--                    waits at most 1 s for the server's close_notify
--                    (shutdown_timeout); the server's answer is aimed at
--                    that deadline
--
--   tlsim run scripts/scenarios/timer_edge.lua --set edge=+1ns --trace t.db
local w = tlsim.world{ seed = arg.seed or 1 }
local edge = arg.edge or "-1ns"
local l = w:link{ latency = "10ms" }
local pki = w:pki{}

if arg.timer == "close_notify" then
  local srv = w:tls_server{ pki = pki }
  local cli = w:tls_client{ pki = pki, shutdown_timeout = "1s" }
  l:fault{ name = "server close_notify", from = "server",
           tls = "close_notify", nth = 1, action = "at_timer",
           timer = "close_notify", offset = edge }
  -- Its retransmissions are lost: only the aimed copy arrives.
  l:fault{ name = "retransmissions", from = "server", tls = "close_notify",
           action = "drop" }
  local clean
  cli:on("handshake_done", function(c) c:shutdown() end)
  cli:on("shutdown_done", function(c, ev) clean = ev.clean end)
  srv:on("close_notify", function(s) s:shutdown() end)
  cli:connect(); srv:accept()
  w:run{ limit = "5s" }
  if edge == "-1ns" or arg.expect == "open" then
    w:expect(clean == 1, "the close_notify lands before the shutdown gives up",
             cli:outcome())
  elseif edge == "+1ns" or arg.expect == "closed" then
    w:expect(clean == 0, "1 ns late: the shutdown has given up", cli:outcome())
  end
  w:log(("edge %s: client %s"):format(edge, cli:outcome()))
  return
end
local srv = w:quic_server{ pki = pki, idle_timeout = "2s" }
local cli = w:quic_client{ pki = pki, idle_timeout = "2s" }
l:fault{ name = "last ping", from = "client", type = "1rtt", after = "1s",
         nth = 1, action = "at_timer", timer = "idle", offset = edge }
-- Nothing else from the client after 1 s (its probes would re-arm the
-- server's idle timer before the aimed packet lands).
l:fault{ name = "client quiet", from = "client", after = "1s",
         action = "drop" }
local idle_closed
srv:on("closed", function(s, ev) idle_closed = ev.reason end)
cli:on("connected", function(c)
  w:after("1s", function() c:send("ping") end)
end)
cli:start()
w:run{ limit = "2500ms" }
local si = srv:info()
if edge == "-1ns" or arg.expect == "open" then
  w:expect(si.close_reason == nil or si.close_reason == "",
           "the aimed ping lands before the idle timeout: the server stays open",
           tostring(si.close_reason))
elseif edge == "+1ns" or arg.expect == "closed" then
  w:expect(si.close_reason == "idle_timeout",
           "the aimed ping lands after the idle timeout: the server has closed",
           tostring(si.close_reason))
end
w:log(("edge %s: server %s"):format(edge, tostring(si.close_reason)))
