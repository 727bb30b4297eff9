-- quic_incomplete_chain: SCENARIOS.md section 3 over QUIC (aiortc/aioquic
-- issue 489, dotnet/runtime 100530). A server sending only its leaf and a
-- client trusting only the root: X.509 error 20, and the client closes
-- with CRYPTO_ERROR 0x100 + alert. BoringSSL's alert for error 20 is
-- unknown_ca (48), so tlsim's close code is 0x130; aioquic sends
-- bad_certificate (42), 0x12a.
--
--   --set chain=full|leaf   (default full: the fixed server)
--   --set trust=root|root+intermediate   (default root)
--   --set aia=DURATION   the client's AIA fetch of the intermediate
--                        completes at that virtual time: a check before
--                        it fails, one after it succeeds (a race)
--   variant=buggy is shorthand for chain=leaf trust=root
local w = tlsim.world{ seed = arg.seed or 1 }
local chain = arg.chain or (arg.variant == "buggy" and "leaf" or "full")
local trust = arg.trust or "root"
w:link{ latency = "10ms" }
local pki = w:pki{ alg = arg.alg or "p256" }
local srv = w:quic_server{ pki = pki, chain = chain }
local cli = w:quic_client{ pki = pki, trust = trust, verify = "async",
                          aia_fetch = arg.aia }
local x509, peer_close
cli:on("peer_certificate", function(c, ev) x509 = ev; return nil end)
srv:on("shutdown_by_peer", function(s, ev) peer_close = ev end)
cli:on("connected", function(c) c:send("hello", true) end)
srv:on("data", function(s, ev) if ev.fin == 1 then s:send("bye", true) end end)
cli:on("data", function(c, ev) if ev.fin == 1 then c:shutdown(0) end end)
cli:start()
w:run{ limit = "30s" }

w:expect(cli:info().connected_ns >= 0, "the handshake succeeds",
         cli:info().close_reason)
if chain == "leaf" and trust == "root" and arg.aia == nil then
  w:expect(x509 ~= nil and x509.x509_error == 20,
           "X.509 error 20: unable to get local issuer certificate",
           x509 and tostring(x509.x509_error) or "no check")
  w:expect(peer_close ~= nil and peer_close.error == 0x130 and
           peer_close.frame == 0x1c,
           "the client closes with CRYPTO_ERROR 0x130 (unknown_ca)",
           peer_close and ("0x%x"):format(peer_close.error) or "no close")
else
  w:expect(cli:received() == "bye", "data flows both ways", cli:received())
end
