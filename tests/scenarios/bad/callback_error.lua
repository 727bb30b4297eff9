local w = tlsim.world{}
w:link{ latency = "1ms" }
local srv = w:echo_server{}
local cli = w:echo_client{ count = 3 }
cli:on("echo", function(c, ev) error("handler exploded at seq " .. ev.seq) end)
cli:start()
w:run{}
