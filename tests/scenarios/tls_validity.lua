-- tls_validity: certificates checked at virtual time. --set cert=expired
-- (the leaf expired a day before the epoch), future (valid from a day after
-- it), expiring (valid until 2 s into the run; the client connects at 3 s),
-- or ok.
local expired = { not_before = "-30d", not_after = "-1d" }
local future = { not_before = "1d", not_after = "30d" }
local expiring = { not_before = "-1h", not_after = "2s" }
local cert = arg.cert or "ok"
local epoch = 1767225600
local w = tlsim.world{ seed = arg.seed or 1, epoch = epoch }
w:link{ latency = "10ms" }
local opts = ({ expired = expired, future = future,
               expiring = expiring })[cert] or {}
local pki = w:pki(opts)
local srv = w:tls_server{ pki = pki }
local cli = w:tls_client{ pki = pki, verify = "async" }
local x509
cli:on("peer_certificate", function(c, ev) x509 = ev.x509_error end)
srv:accept()
if cert == "expiring" then
  w:after("3s", function() cli:connect() end)
else
  cli:connect()
end
w:run{ limit = "10s" }
local want = {
  ok = { 0, "open" },
  expired = { 10, "alert sent: certificate_expired(45)" },
  expiring = { 10, "alert sent: certificate_expired(45)" },
  future = { 9, "alert sent: certificate_expired(45)" },
}
w:expect(x509 == want[cert][1], "X.509 result " .. want[cert][1],
         tostring(x509))
w:expect(cli:outcome() == want[cert][2], "client: " .. want[cert][2],
         cli:outcome())
