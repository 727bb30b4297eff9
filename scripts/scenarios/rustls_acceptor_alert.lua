-- rustls_acceptor_alert: SCENARIOS.md section 2 (rustls issue 1792, fixed
-- by PR 1811). The server inspects the ClientHello first (rustls Acceptor;
-- BoringSSL's select-certificate callback here), then the handshake fails.
-- The fixed server writes the pending alert before closing; the buggy one
-- drops it with the connection, so the client sees only the transport
-- close.
--
--   --set variant=fixed|buggy         (default fixed)
--   --set failure=version|junk|truncated|group   (default version)
--   tlsim run scripts/scenarios/rustls_acceptor_alert.lua --set variant=buggy
--   sqlite3 t.db < scripts/queries/rustls_alert.sql
local w = tlsim.world{ seed = arg.seed or 1 }
local variant = arg.variant or "fixed"
local failure = arg.failure or "version"
w:link{ latency = "10ms" }
local pki = w:pki{}

local srv_opts = { pki = pki, acceptor = true,
                   acceptor_alert = variant == "buggy" and "drop" or "flush" }
local cli_opts = { pki = pki }
-- The alert each failure produces, as BoringSSL sends it.
local want = {
  version = "protocol_version(70)",
  group = "handshake_failure(40)",
  junk = "record_overflow(22)",
  truncated = "decode_error(50)",
}
if want[failure] == nil then error("unknown failure '" .. failure .. "'") end
if failure == "version" then
  srv_opts.min_version = "1.3"
  cli_opts.max_version = "1.2"
elseif failure == "group" then
  srv_opts.groups = "X25519"
  cli_opts.groups = "P-384"
end
local srv = w:tls_server(srv_opts)
local cli = w:tls_client(cli_opts)

srv:on("client_hello", function(s, ev)
  w:log(("server: ClientHello, tls13=%d sni=%s"):format(ev.tls13, ev.sni))
  return true -- the acceptor picks a configuration and goes on
end)
srv:accept()
cli:connect() -- send_raw below replaces the client's handshake
if failure == "junk" then
  -- A record header claiming 0x8000 bytes of handshake data.
  cli:send_raw("\22\3\1\128\0" .. ("\0"):rep(64))
elseif failure == "truncated" then
  -- A ClientHello whose body is one byte long.
  cli:send_raw("\22\3\1\0\5\1\0\0\1\3")
end
w:run{ limit = "30s" }

w:expect(cli:outcome() == "alert received: " .. want[failure],
         "the client learns why: " .. want[failure], cli:outcome())
w:expect(srv:state() == "failed", "the server's handshake failed", srv:state())
