-- tls_async: the three asynchronous hooks as pending operations. The server
-- inspects the ClientHello (completed 50 ms later) and signs asynchronously
-- (30 ms later); the client checks the certificate asynchronously (100 ms
-- later). While the check is pending the client application writes; the
-- write is queued and goes out once the handshake is done.
--   --set reject=verify|sign|hello   one hook answers "no" instead
local w = tlsim.world{ seed = arg.seed or 1 }
local reject = arg.reject
w:link{ latency = "10ms" }
local pki = w:pki{ alg = arg.alg or "p256" }
local srv = w:tls_server{ pki = pki, acceptor = true, async_sign = true }
local cli = w:tls_client{ pki = pki, verify = "async" }
local seen = {}

srv:on("client_hello", function(s, ev)
  seen.hello = w:now()
  w:after("50ms", function() s:client_hello_complete(reject ~= "hello") end)
  return "pending"
end)
srv:on("sign", function(s, ev)
  seen.sign = w:now()
  seen.sigalg = ev.sigalg
  w:after("30ms", function() s:sign_complete(reject ~= "sign") end)
  return "pending"
end)
cli:on("peer_certificate", function(c, ev)
  seen.verify = w:now()
  seen.x509 = ev.x509_error
  w:after("100ms", function() c:validation_complete(reject ~= "verify") end)
  w:after("1ms", function() c:write("sent while pending") end)
  return "pending"
end)
srv:on("data", function(s, ev) seen.data = w:now() end)
cli:on("handshake_done", function(c) seen.done = w:now() end)

srv:accept()
cli:connect()
w:run{ limit = "10s" }

if reject == nil then
  -- SYN-ACK back at 20 ms, the ClientHello arrives at 30 ms; the server's
  -- flight leaves when the signature completes (30 + 50 + 30 ms).
  w:expect(seen.hello == w:ms(30), "ClientHello inspected on arrival",
           tostring(seen.hello))
  w:expect(seen.sign == w:ms(80), "signing starts after the inspection",
           tostring(seen.sign))
  w:expect(seen.verify == w:ms(120), "the client checks after the flight",
           tostring(seen.verify))
  w:expect(seen.x509 == 0, "the built-in verdict is ok")
  w:expect(seen.done == w:ms(220), "handshake done when the check completes",
           tostring(seen.done))
  w:expect(seen.data == w:ms(230), "the queued write arrives right after",
           tostring(seen.data))
  w:expect(srv:received() == "sent while pending", "byte-exact")
else
  local want = {
    verify = { cli = "alert sent: bad_certificate(42)" },
    -- BoringSSL sends no alert when the key operation fails.
    sign = { srv = "handshake failed: PRIVATE_KEY_OPERATION_FAILED" },
    hello = { srv = "alert sent: handshake_failure(40)" },
  }
  local row = want[reject]
  if row.cli then
    w:expect(cli:outcome() == row.cli, "client: " .. row.cli, cli:outcome())
  else
    w:expect(srv:outcome() == row.srv, "server: " .. row.srv, srv:outcome())
  end
  w:expect(cli:state() ~= "established", "no handshake", cli:state())
end
