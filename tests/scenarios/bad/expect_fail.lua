local w = tlsim.world{}
w:link{ latency = "20ms" }
local srv = w:echo_server{}
local cli = w:echo_client{ count = 2 }
cli:start()
w:run{}
w:expect(cli:state() == "done", "client done")
w:expect(w:now() < w:ms(10), "finished within 10ms", w:fmt(w:now()))
