-- clock_skew: endpoints with their own clocks. clock_offset shifts an
-- endpoint's wall clock (what certificate validity is checked against);
-- clock_drift makes its clock run fast or slow (its timers and its wall
-- clock both see it).
--
--   case=behind   the client's clock is 2 h behind; the server's leaf is
--                 valid from 1 h before the epoch: to the client it is not
--                 yet valid (X.509 error 9) and the handshake fails
--   case=ahead    the client's clock is 40 days ahead of a leaf valid for
--                 30 days: expired to the client (X.509 error 10)
--   case=fast     the QUIC client's clock runs 25% fast: its 4 s idle
--                 timer fires after 3.2 s of virtual time, the server's
--                 (correct clock) after 4 s
--   case=none     no skew: the handshake succeeds
--
--   tlsim run scripts/scenarios/clock_skew.lua --set case=behind
local w = tlsim.world{ seed = arg.seed or 1 }
local case = arg.case or "none"
w:link{ latency = "10ms" }
local pki = w:pki{ not_before = "-1h", not_after = "30d" }

if case == "fast" then
  local srv = w:quic_server{ pki = pki, idle_timeout = "4s" }
  local cli = w:quic_client{ pki = pki, idle_timeout = "4s",
                             clock_drift = 0.25 }
  local closed = {}
  cli:on("closed", function() closed.client = w:now() end)
  srv:on("closed", function() closed.server = w:now() end)
  cli:start()
  w:run{ limit = "10s" }
  local ci, si = cli:info(), srv:info()
  w:expect(ci.close_reason == "idle_timeout" and si.close_reason == "idle_timeout",
           "both ends time out", ci.close_reason .. "/" .. si.close_reason)
  -- (info() times are each endpoint's own clock; w:now() is virtual time.)
  w:expect(closed.client and closed.server and
           closed.client < closed.server - w:ms(700),
           "the fast client times out about 0.8 s earlier",
           tostring(closed.client) .. " vs " .. tostring(closed.server))
  w:log(("client closed %s (its clock: %s), server %s"):format(
        w:fmt(closed.client or 0), w:fmt(ci.closed_ns), w:fmt(closed.server or 0)))
  return
end

local offsets = { behind = "-2h", ahead = "40d", none = "0s" }
if offsets[case] == nil then error("unknown case '" .. case .. "'") end
local srv = w:tls_server{ pki = pki }
local cli = w:tls_client{ pki = pki, verify = "async",
                          clock_offset = offsets[case] }
local x509
cli:on("peer_certificate", function(c, ev) x509 = ev.x509_error end)
srv:accept(); cli:connect()
w:run{ limit = "5s" }
local want = { none = 0, behind = 9, ahead = 10 }
w:expect(x509 == want[case], "the client's clock decides the X.509 check",
         tostring(x509))
w:log(("case %s: X.509 error %s, client %s"):format(case, tostring(x509),
                                                     cli:outcome()))
