-- An unknown policy name.
local w = tlsim.world{}
w:link{ latency = "10ms" }
local pki = w:pki{}
w:quic_client{ pki = pki, close_rule = "sometimes" }
