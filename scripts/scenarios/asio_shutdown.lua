-- asio_shutdown: SCENARIOS.md section 5, the Boost.Asio close_notify
-- shutdown matrix. A is the client, B the server; after the handshake and
-- one exchange, each case plays one row of the table and asserts what both
-- sides see, in tlsim's words.
--
--   case 1: B closes the transport (no shutdown); A then calls shutdown()
--           A: truncated (Asio's "stream truncated", once "short read");
--           B: aborted (it closed without close_notify)
--   case 2: A calls shutdown() and waits; B closes the transport unanswered
--           A: truncated; B: aborted
--   case 3: A calls shutdown() and waits; B answers with shutdown()
--           A: clean (close_notify exchanged); B: clean
--   case 4: A calls shutdown() without waiting, a write then fails with
--           "protocol is shutdown", A closes; B calls shutdown() later
--           A: close_notify sent, not awaited (its own choice, still
--           clean); B: close_notify then EOF arrive first, and its
--           shutdown() then succeeds
--
--   tlsim run scripts/scenarios/asio_shutdown.lua --set case=2
local w = tlsim.world{ seed = arg.seed or 1 }
local case = tonumber(arg.case or 3)
w:link{ latency = "15ms", jitter = "1ms" }
local pki = w:pki{}
local B = w:tls_server{ pki = pki, name = "B",
                        close = (case == 1 or case == 2) and "transport"
                                or "notify" }
local A = w:tls_client{ pki = pki, name = "A" }

local write_error
A:on("handshake_done", function(a) a:write("ping") end)
B:on("data", function(b, ev)
  b:write("pong")
  if case == 1 then
    b:close() -- no shutdown: the transport just closes
  end
end)
A:on("data", function(a, ev)
  if case == 1 then
    w:after("50ms", function() a:shutdown{ wait = true } end)
  elseif case == 4 then
    a:shutdown{ wait = false }
    a:write("one more") -- fails: the protocol is shut down
  else
    a:shutdown{ wait = true }
  end
end)
A:on("error", function(a, ev)
  if ev.op == "write" then
    write_error = ev.reason
    a:close()
  end
end)
local b_shutdown
B:on("shutdown_done", function(b, ev) b_shutdown = ev.clean end)
B:on("close_notify", function(b)
  if case == 2 then
    b:close()
  elseif case == 3 then
    b:shutdown{}
  elseif case == 4 then
    w:after("30ms", function() b:shutdown{} end)
  end
end)

B:accept()
A:connect()
w:run{ limit = "30s" }

local want = {
  [1] = { A = "truncated: EOF without close_notify",
          B = "aborted: closed before close_notify" },
  [2] = { A = "truncated: EOF without close_notify",
          B = "aborted: closed before close_notify" },
  [3] = { A = "clean: close_notify exchanged",
          B = "clean: close_notify exchanged" },
  [4] = { A = "clean: close_notify sent, not awaited",
          B = "clean: close_notify received, then EOF" },
}
local row = want[case]
if row == nil then error("case must be 1, 2, 3 or 4") end
w:expect(A:outcome() == row.A, "A sees: " .. row.A, A:outcome())
w:expect(B:outcome() == row.B, "B sees: " .. row.B, B:outcome())
if case == 3 or case == 4 then
  w:expect(b_shutdown == 1, "B's shutdown succeeds (both close_notify)",
           tostring(b_shutdown))
end
if case == 4 then
  w:expect(write_error == "protocol is shutdown",
           "A's write after shutdown fails: protocol is shutdown",
           tostring(write_error))
end
