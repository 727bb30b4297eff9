local w = tlsim.world{}
w:link{ latency = "-1ms" }
