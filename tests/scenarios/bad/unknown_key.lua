local w = tlsim.world{}
w:link{ latency = "20ms", lossy = 0.1 }
