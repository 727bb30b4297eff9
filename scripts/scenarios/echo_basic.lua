-- echo_basic: ten pings over an ideal 20 ms link. Every ping is echoed once,
-- and each round trip takes exactly two link latencies.
local w = tlsim.world{ seed = arg.seed or 1 }
w:link{ latency = "20ms" }
local srv = w:echo_server{}
local cli = w:echo_client{ count = 10, interval = "10ms" }

local rtts = {}
cli:on("echo", function(c, ev) rtts[#rtts + 1] = ev.rtt_ns end)

cli:start()
local why = w:run{ limit = "10s" }

w:expect(why == "idle", "the run ends when nothing is left to do", why)
w:expect(cli:state() == "done", "the client is done", cli:state())
w:expect(#rtts == 10, "ten echoes", tostring(#rtts))
local exact = true
for _, rtt in ipairs(rtts) do exact = exact and rtt == w:ms(40) end
w:expect(exact, "every round trip is 40ms")
w:expect(cli:stats().retransmits == 0, "no retransmission on an ideal link")
