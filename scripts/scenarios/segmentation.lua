-- segmentation: control over how bytes and packets are cut.
--
--   case=split       the TLS client's stream is cut at data offsets 5 and
--                    100 (inside the ClientHello's record header, then in
--                    its body): three segments carry it; the handshake
--                    completes. --set at=N cuts at offset N instead, so
--                    a sweep over seeds cuts at every offset:
--                      tlsim sweep scripts/scenarios/segmentation.lua \
--                        --set case=split --seeds 1..300  (at = seed)
--   case=split_in    the TLS server's stream is cut N bytes into its
--                    Certificate (split_in = { msg = "Certificate",
--                    at = N }; N = --set at=, else the seed, else 100):
--                    the first segment of its flight ends there; a sweep
--                    cuts the Certificate (and what follows) at every
--                    offset:
--                      tlsim sweep scripts/scenarios/segmentation.lua \
--                        --set case=split_in --seeds 1..900
--   case=chunks      the TLS server is handed received bytes one at a
--                    time (read_chunk = 1): partial records everywhere;
--                    the handshake and a 2 kB request still complete
--   case=records     the TLS server writes records of at most 512 bytes
--                    (max_record = 512): its Certificate spans two
--                    records, the 2 kB response four; both complete
--   case=uncoalesced the QUIC server sends one QUIC packet per datagram
--                    (coalesce = false): its Initial and Handshake packets
--                    travel apart; the handshake completes
local w = tlsim.world{ seed = arg.seed or 1 }
local case = arg.case or "split"
w:link{ latency = "10ms" }
local pki = w:pki{}

if case == "uncoalesced" then
  local srv = w:quic_server{ pki = pki, coalesce = false }
  local cli = w:quic_client{ pki = pki }
  local ok
  cli:on("connected", function(c) ok = true; c:shutdown(0) end)
  cli:start()
  w:run{ limit = "5s" }
  w:expect(ok, "the handshake completes with one packet per datagram")
  return
end

local split = { 5, 100 }
if arg.at then split = { tonumber(arg.at) } elseif arg.seed and case == "split" then split = { arg.seed } end
local split_in
if case == "split_in" then
  split_in = { msg = "Certificate", at = tonumber(arg.at) or arg.seed or 100 }
end
local srv = w:tls_server{ pki = pki, read_chunk = case == "chunks" and 1 or 0,
                          max_record = case == "records" and 512 or nil,
                          split_in = split_in }
local cli = w:tls_client{ pki = pki, split_at = case == "split" and split or nil }
local request = ("x"):rep(2000)
local got = ""
srv:on("data", function(s, ev)
  got = got .. ev.data
  if got == request and case == "records" then s:write(request) end
end)
local back = ""
cli:on("data", function(c, ev) back = back .. ev.data end)
cli:on("handshake_done", function(c) c:write(request) end)
srv:accept(); cli:connect()
w:run{ limit = "5s" }
w:expect(cli:outcome() == "open" and srv:outcome() == "open",
         "the handshake completes", cli:outcome() .. "/" .. srv:outcome())
w:expect(got == request, "the request arrives byte-exact",
         #got .. " of " .. #request .. " bytes")
if case == "records" then
  w:expect(back == request, "the response arrives byte-exact",
           #back .. " of " .. #request .. " bytes")
end
