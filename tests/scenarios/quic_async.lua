-- quic_async: the client's certificate check through BoringSSL's
-- ssl_verify_retry (verify = "async"): the handshake pauses at the
-- server's Certificate until validation_complete, 100 ms later; meanwhile
-- the client's write is queued. --set reject=1 rejects instead: the client
-- closes with CRYPTO_ERROR 0x100 + bad_certificate (42).
-- --set corrupt=P adds bit-flip corruption on the link: AEAD drops the
-- damaged packets and retransmission repairs the loss.
local w = tlsim.world{ seed = arg.seed or 1 }
local corrupt = tonumber(arg.corrupt or 0)
w:link{ latency = "10ms", corrupt = corrupt, corrupt_bits = 2, dup = corrupt,
        reorder = corrupt, reorder_delay = "3ms" }
local pki = w:pki{}
local srv = w:quic_server{ pki = pki }
local cli = w:quic_client{ pki = pki, verify = "async" }
local reject = tostring(arg.reject) == "1"
local asked, peer_close
cli:on("peer_certificate", function(c, ev)
  asked = w:now()
  w:after("100ms", function() c:validation_complete(not reject) end)
  w:after("1ms", function() c:send("queued while pending", true) end)
  return "pending"
end)
srv:on("shutdown_by_peer", function(s, ev) peer_close = ev end)
srv:on("data", function(s, ev) if ev.fin == 1 then s:shutdown(0) end end)
cli:start()
w:run{ limit = "60s" }

if reject then
  w:expect(peer_close ~= nil and peer_close.error == 0x12a,
           "the client closes with CRYPTO_ERROR 0x12a (bad_certificate)",
           peer_close and ("0x%x"):format(peer_close.error) or "none")
else
  local ci = cli:info()
  w:expect(ci.connected_ns >= asked + w:ms(100),
           "the handshake completes only after the check",
           w:fmt(ci.connected_ns))
  w:expect(srv:received() == "queued while pending",
           "the queued data arrives byte-exact", srv:received())
  -- The server's close, or (if the link destroyed it) the idle timeout.
  w:expect(cli:state() == "closed", "the client ends", cli:state())
end
