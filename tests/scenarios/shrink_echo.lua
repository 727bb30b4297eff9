-- shrink_echo: a fault-dependent failure for tests/cli/shrink.sh. Twenty
-- pings over a link with loss, jitter, duplication and reordering each
-- way; the expectation that all are echoed within 250 ms fails whenever a
-- loss forces a 100 ms retransmission timeout, so `tlsim shrink` must
-- find that one lost packet among dozens of random faults.
local w = tlsim.world{ seed = arg.seed or 1 }
w:link{ latency = "20ms", jitter = "5ms", loss = 0.08, dup = 0.05,
        reorder = 0.1, reorder_delay = "3ms" }
local srv = w:echo_server{}
local cli = w:echo_client{ count = 20, interval = "5ms", rto = "100ms",
                           max_retries = 8 }
local done_at
cli:on("done", function(c, ev) done_at = w:now() end)
cli:start()
w:run{ limit = "10s" }
w:expect(done_at ~= nil, "every ping is echoed")
w:expect(done_at ~= nil and done_at <= w:ms(250),
         "every ping is echoed within 250 ms",
         done_at and w:fmt(done_at) or "never")
