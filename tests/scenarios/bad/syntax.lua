local w = tlsim.world{}
w:link{ latency = "20ms" }
if then
