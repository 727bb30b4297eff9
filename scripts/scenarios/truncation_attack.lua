-- truncation_attack: the attack behind SCENARIOS.md section 5. An on-path
-- attacker forges a FIN (or RST) in the middle of the server's response,
-- at byte |offset| of the response's records, and blackholes the rest. The
-- reader must report truncation, never a clean end of stream, at every
-- offset.
--
--   variant=fixed  EOF without close_notify is reported as truncation
--   variant=buggy  the client ignores a missing close_notify (as
--                  SSL_OP_IGNORE_UNEXPECTED_EOF does) and is fooled
--   --set offset=N (default 100)  --set kind=fin|rst (default fin)
--   --set at=DURATION  forge the FIN/RST at that virtual time instead,
--                      with the server's next sequence number
local w = tlsim.world{ seed = arg.seed or 1 }
local variant = arg.variant or "fixed"
local offset = tonumber(arg.offset or 100)
local kind = arg.kind or "fin"
local at = arg.at
w:link{ latency = "10ms" }
local pki = w:pki{}
local srv = w:tls_server{ pki = pki }
local cli = w:tls_client{ pki = pki,
                          unexpected_eof = variant == "buggy" and "ignore"
                                           or "error" }
local body = ("0123456789abcdef"):rep(64) -- 1 KiB

if at then
  w:at(w:time(at), function() srv:attack{ kind = kind } end)
else
  srv:on("handshake_done", function(s)
    -- Everything from here on is the response's records.
    s:attack{ kind = kind, offset = s:info().stream_offset + offset }
  end)
end
srv:on("data", function(s)
  s:write(body)
  s:shutdown{ wait = false }
  s:close()
end)
cli:on("handshake_done", function(c) c:write("GET /") end)

srv:accept()
cli:connect()
w:run{ limit = "60s" }

local got = cli:received()
w:expect(#got < #body, "the attack cut the response", #got .. " bytes")
w:expect(got == body:sub(1, #got), "what arrived is a prefix of the response")
local o = cli:outcome()
w:expect(o == "truncated: EOF without close_notify" or o == "reset",
         "the client reports truncation, never a clean end", o)
