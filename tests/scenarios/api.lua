-- The Lua API's contracts: API calls enqueue and do not act at once;
-- world-level queue defaults; timers and cancel; run limits; durations.
local w = tlsim.world{ drain_max = 1 }
local l = w:link{ latency = "1ms", a_to_b = { loss = 1.0 } }
local srv = w:echo_server{}
local cli = w:echo_client{ count = 3, interval = "1ms", rto = "10ms",
                           max_retries = 1 }
cli:start()
w:expect(cli:state() == "idle", "start() only enqueues", cli:state())
w:expect(cli:queue().depth == 1, "one queued operation")

local fired, cancelled = false, false
local t1 = w:after("5ms", function() fired = true end)
local t2 = w:at("6ms", function() cancelled = true end)
w:expect(t2:cancel() == true, "a pending timer cancels")
w:expect(t2:cancel() == false, "a cancelled timer does not cancel twice")

local why = w:run{ deadline = "2ms" }
w:expect(why == "time_limit", "run{deadline} stops at the limit", why)
w:expect(w:now() == w:ms(2), "the clock is at the limit", w:fmt(w:now()))
w:expect(cli:state() == "running", "the client runs", cli:state())

why = w:run{ events = 1 }
w:expect(why == "event_limit", "run{events} stops after n events", why)

w:run{}
w:expect(fired and not cancelled, "timers: one fired, one cancelled")
w:expect(cli:state() == "failed", "a->b loses everything: the client fails",
         cli:state())
local st = l:stats("a->b")
w:expect(st.lost == st.submitted and st.submitted > 0, "every ping lost",
         st.lost .. "/" .. st.submitted)
w:expect(l:stats("b->a").submitted == 0, "the server never answered")
w:expect(cli:queue().max_depth >= 1 and cli:queue().processed >= 4,
         "the queue processed start, timers", cli:queue().processed)
w:expect(w:time("1.5s") == 1500000000, "durations parse")
w:expect(w:fmt(w:ms(1500)) == "1.5s", "durations format")
w:expect(os.time() == w:now() // 1000000000, "os.time is virtual")
local ok, err = pcall(w.link, w, { loss = 2 })
w:expect(not ok and err:find("loss must be in") ~= nil, "bad values raise",
         tostring(err))
ok, err = pcall(function() cli:call("fly") end)
w:expect(not ok and err:find("has no operation 'fly'") ~= nil,
         "unknown operations raise", tostring(err))
ok, err = pcall(function() w:at("1ms", function() end) end)
w:expect(not ok and err:find("in the past") ~= nil, "w:at refuses the past",
         tostring(err))
