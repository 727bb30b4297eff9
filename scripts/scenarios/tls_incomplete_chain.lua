-- tls_incomplete_chain: SCENARIOS.md section 3 over TLS (aioquic issue 489,
-- dotnet/runtime 100530). The server sends its leaf only (the intermediate
-- is missing); a strict client whose store holds only the root fails with
-- X.509 error 20, "unable to get local issuer certificate", and sends
-- BoringSSL's alert for it, unknown_ca (48) (aioquic sends
-- bad_certificate (42)). A client that has the intermediate cached (as
-- .NET fetches it via AIA) succeeds, as does any client given the full
-- chain.
--
--   --set chain=full|leaf   (default full: the fixed server)
--   --set trust=root|root+intermediate   (default root: a strict client)
--   --set alg=p256|ed25519
--   --set aia=DURATION   the client's AIA fetch of the intermediate
--                        completes at that virtual time: a check before
--                        it fails, one after it succeeds (a race)
--   variant=buggy is shorthand for chain=leaf, trust=root
local w = tlsim.world{ seed = arg.seed or 1 }
local chain = arg.chain or (arg.variant == "buggy" and "leaf" or "full")
local trust = arg.trust or "root"
w:link{ latency = "10ms" }
local pki = w:pki{ alg = arg.alg or "p256" }
local srv = w:tls_server{ pki = pki, chain = chain }
local cli = w:tls_client{ pki = pki, trust = trust, verify = "async",
                          aia_fetch = arg.aia }

local x509
cli:on("peer_certificate", function(c, ev)
  x509 = ev
  w:log(("client: %d certificate(s), X.509 result %d (%s)"):format(
    ev.certs, ev.x509_error, ev.x509_message))
  return nil -- keep the built-in verdict
end)
srv:accept()
cli:connect()
w:run{ limit = "30s" }

w:expect(cli:state() == "established", "the handshake succeeds",
         cli:outcome())
if chain == "leaf" and trust == "root" and arg.aia == nil then
  -- The buggy configuration: the expectation above fails; these say how.
  w:expect(x509 ~= nil and x509.x509_error == 20,
           "X.509 error 20: unable to get local issuer certificate",
           x509 and tostring(x509.x509_error) or "no check")
  w:expect(cli:outcome() == "alert sent: unknown_ca(48)",
           "the client closes with unknown_ca(48)", cli:outcome())
  w:expect(srv:outcome() == "alert received: unknown_ca(48)",
           "the server learns why", srv:outcome())
end
