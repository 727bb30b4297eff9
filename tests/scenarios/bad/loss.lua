local w = tlsim.world{}
w:link{ latency = "20ms", loss = 1.5 }
