-- echo_partition: the link is cut from 100 ms to 5 s. With the default
-- retry budget the client outlasts the cut; with --set retries=2 it gives up
-- before the link heals (the expectation then fails: exit 1).
local w = tlsim.world{ seed = arg.seed or 1 }
local l = w:link{ latency = "10ms" }
l:partition{ from = "100ms", to = "5s" }
local srv = w:echo_server{}
local retries = tonumber(arg.retries or 6)
local cli = w:echo_client{ count = 20, interval = "10ms", rto = "100ms",
                           max_retries = retries }
local healed_at
cli:on("done", function() healed_at = w:now() end)
cli:start()
w:run{ limit = "120s" }
w:expect(cli:state() == "done", "the client survives the partition",
         cli:state())
w:expect(healed_at ~= nil and healed_at >= w:s(5),
         "the last echo comes after the link heals")
