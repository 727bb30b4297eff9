-- echo_lossy: the headline engine scenario. 50 pings over a link with 10%
-- loss each way, jitter, duplication and reordering; the client retransmits
-- until every ping is echoed. The fault draws come from the run seed, so
-- each seed is a different (and exactly repeatable) loss pattern.
--
--   tlsim run scripts/scenarios/echo_lossy.lua --seed 7 --trace t.db
--   sqlite3 t.db < scripts/queries/lost_packets.sql
local w = tlsim.world{ seed = arg.seed or 1 }
local loss = tonumber(arg.loss or 0.1)
w:link{ latency = "20ms", jitter = "5ms", loss = loss, dup = 0.02,
        reorder = 0.05, reorder_delay = "15ms" }
local srv = w:echo_server{}
local cli = w:echo_client{ count = 50, interval = "5ms", rto = "100ms",
                           max_retries = 8 }

local echoed = {}
cli:on("echo", function(c, ev)
  w:expect(not echoed[ev.seq], "each ping is reported once", "seq " .. ev.seq)
  echoed[ev.seq] = true
end)
cli:on("done", function(c, ev)
  w:log(("all %d pings echoed at %s after %d retransmissions"):format(
    ev.echoed, w:fmt(w:now()), ev.retransmits))
end)

cli:start()
w:run{ limit = "60s" }

local st = cli:stats()
w:expect(cli:state() == "done", "every ping is echoed despite the loss",
         cli:state())
w:expect(st.echoed == 50, "50 distinct echoes", tostring(st.echoed))
w:expect(st.rtt_min_ns >= w:ms(40), "no echo beats two latencies",
         w:fmt(st.rtt_min_ns))
