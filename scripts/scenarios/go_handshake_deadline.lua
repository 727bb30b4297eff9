-- go_handshake_deadline: SCENARIOS.md section 4 (Go commit 9d99d52, Go
-- issue 2281). The server accepts the TCP connection and never answers.
-- The client handshakes with a 5 s deadline, and closes when that fails.
--
--   variant=fixed        the handshake fails at the deadline exactly;
--                        close() skips close_notify and closes the
--                        transport, so the server sees FIN
--   variant=buggy        the timed-out read is retried as "would block":
--                        the handshake spins without virtual time moving,
--                        which tlsim's livelock detection stops and names
--   variant=buggy_close  the deadline works, but close() tries to finish
--                        the handshake to send close_notify and never
--                        closes the transport
--   --set silence=blackhole  the link drops everything the server sends
--                        instead (the client handshakes at once; its
--                        transport never even connects)
--   --set who=server     the upstream test instead: the server handshakes
--                        with a 250 ms deadline against a client that
--                        connects and sends nothing
-- A spin is caught after 10,000 events at one virtual time.
local w = tlsim.world{ seed = arg.seed or 1, livelock_events = 10000 }
local variant = arg.variant or "fixed"
local who = arg.who or "client"
local l = w:link{ latency = "10ms" }
local blackhole = arg.silence == "blackhole"
if blackhole then
  l:partition{ from = 0, to = w:s(3600), dir = "b->a" }
end
local pki = w:pki{}
local policy = {
  fixed = { deadline = "honour", close = "notify" },
  buggy = { deadline = "ignore", close = "finish_handshake" },
  buggy_close = { deadline = "honour", close = "finish_handshake" },
}
local p = policy[variant]
if p == nil then error("unknown variant '" .. variant .. "'") end
local deadline = who == "server" and w:ms(250) or w:s(5)

local srv_opts, cli_opts = { pki = pki }, { pki = pki }
local me_opts = who == "server" and srv_opts or cli_opts
me_opts.deadline, me_opts.close = p.deadline, p.close
cli_opts.auto_handshake = false
local srv = w:tls_server(srv_opts)
local cli = w:tls_client(cli_opts)
local me, peer = cli, srv
if who == "server" then me, peer = srv, cli end

local started, failed_at
local function go(e)
  started = w:now()
  e:handshake{ deadline = deadline }
end
me:on("timeout", function(e, ev)
  failed_at = w:now()
  e:close()
end)
if who == "server" then
  srv:on("connected", function(s) go(s) end)
elseif blackhole then
  go(cli)
else
  cli:on("connected", function(c) go(c) end)
end
cli:connect() -- the server never accepts: it stays silent
if blackhole then srv:accept() end
w:run{ limit = "60s" }

w:expect(failed_at ~= nil and failed_at - started == deadline,
         "the handshake fails at its deadline exactly",
         failed_at and w:fmt(failed_at - started) or "never")
local pi = peer:info()
if blackhole then
  -- The server never got past SYN-RECEIVED: what counts is that the
  -- client's transport is closed (its FIN goes out, retransmitted).
  w:expect(me:info().closed_ns >= 0, "the client closes its transport",
           me:info().stream_state)
else
  w:expect(pi.peer_closed_ns >= 0, "the peer sees the transport close (FIN)",
           pi.stream_state)
end
w:expect(not me:info().close_notify_sent,
         "no close_notify without a finished handshake")
