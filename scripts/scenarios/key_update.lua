-- key_update: a QUIC 1-RTT key update (RFC 9001 6) in the middle of a
-- transfer, with link faults aimed at the Key Phase bit.
--
-- The client uploads 49,008 bytes on stream 0 and the server echoes
-- every byte back. 100 ms after the handshake is confirmed the client sends the
-- first 16,000 bytes; 200 ms later 1008 more, then it updates its keys
-- (c:key_update(): its write keys move to phase 1) and sends the last
-- 32,000 with FIN. The server sees the flipped Key Phase bit, moves its
-- read keys on, answers with its own write keys in phase 1, keeps its
-- phase 0 read keys for 3 PTO and then discards them. The client closes
-- 1.8 s after confirmation. Two faults aim at the phase:
--   "first phase 1"  drops the first datagram the client protects with
--                    phase 1 keys: the server detects the update with
--                    the next one, the data comes again
--   "old phase"      holds the client's first phase 0 datagram sent from
--                    the update's moment on (just before the update)
--                    until 6 more have left, so it arrives behind phase 1
--                    datagrams: the server decrypts it with its previous
--                    keys (so may it others: datagrams that arrive at the
--                    same virtual time are taken in the seed's order)
-- The client also asks for an update before the handshake is confirmed
-- and a second one right after the first: both are refused, with the
-- reason in an "error" event.
--
-- Variants (--set):
--   update=call   c:key_update() 300 ms after confirmation (default)
--   update=every  key_update_every = 12 on the client, 7 on the server:
--                 each initiates whenever it is allowed (the seed decides
--                 which side gets there first), several times
--   update=none   no update: every 1-RTT packet is phase 0, the phase 1
--                 fault never fires
--   faults=0      no faults
--   old=late      delay the phase 0 datagram by 1 s instead: it arrives
--                 after the server discarded its phase 0 keys and is
--                 dropped; its bytes came again by retransmission
--   loss=P        random loss on top (default 0): a lost
--                 CONNECTION_CLOSE leaves the server to its idle timeout
--                 (5 s); every expectation holds for seeds 1..300 at
--                 loss=0.1, while at 0.2 some handshakes never complete
--
--   tlsim run scripts/scenarios/key_update.lua --trace t.db
--   sqlite3 t.db "SELECT src, pn, hs_state, fate, reason FROM packet WHERE ptype = '1rtt'"
--   sqlite3 t.db "SELECT time_ns, node, event, direction, code, detail FROM tls WHERE event LIKE 'key%'"
local w = tlsim.world{ seed = arg.seed or 1 }
local update = arg.update or "call"
local faults = (arg.faults or 1) ~= 0
local old = arg.old or "reorder"
if update ~= "call" and update ~= "every" and update ~= "none" then
  error("update must be call, every or none, got '" .. tostring(update) .. "'")
end
if old ~= "reorder" and old ~= "late" then
  error("old must be reorder or late, got '" .. tostring(old) .. "'")
end

local loss = tonumber(arg.loss or 0)
local l = w:link{ latency = "20ms", loss = loss }
local pki = w:pki{}
local every = update == "every"
local srv = w:quic_server{ pki = pki, idle_timeout = "5s",
                           key_update_every = every and 7 or 0 }
local cli = w:quic_client{ pki = pki, idle_timeout = "5s",
                           key_update_every = every and 12 or 0 }

-- |n| bytes in lines of 16: "a00000000000001\n"...
local function part(tag, n)
  local t = {}
  for i = 1, n // 16 do t[#t + 1] = ("%s%014d\n"):format(tag, i) end
  return table.concat(t)
end
local part1, part2, part3 = part("a", 16000), part("b", 1008),
                            part("c", 32000)
local upload = part1 .. part2 .. part3

if faults then
  l:fault{ name = "first phase 1", from = "client", key_phase = 1, nth = 1,
           action = "drop" }
end
-- Added just before the update, so that it takes a phase 0 datagram sent
-- from then on.
local function old_phase_fault()
  if not faults then return end
  if old == "late" then
    l:fault{ name = "old phase", from = "client", key_phase = 0,
             after = w:now(), nth = 1, action = "delay", by = "1s" }
  else
    l:fault{ name = "old phase", from = "client", key_phase = 0,
             after = w:now(), nth = 1, action = "reorder", behind = 6 }
  end
end

-- The server echoes the upload, FIN included.
srv:on("data", function(s, ev) s:send(ev.data, ev.fin == 1) end)
local echoed_at
cli:on("data", function(c, ev) if ev.fin == 1 then echoed_at = w:now() end end)
local refused = {}
cli:on("error", function(c, ev)
  if ev.op == "key_update" then refused[#refused + 1] = ev.reason end
end)
local updates = {}
for _, ep in ipairs{ cli, srv } do
  ep:on("key_updated", function(e, ev)
    updates[#updates + 1] = ("%s phase %d %s"):format(e:name(), ev.phase,
      ev.initiated == 1 and "initiated" or "answered")
  end)
end

local closing_at
cli:on("handshake_confirmed", function(c)
  w:after("100ms", function() c:send(part1) end)
  w:after("300ms", function()
    old_phase_fault()
    c:send(part2)
    if update == "call" then
      c:key_update()
      c:key_update() -- refused: the first not acknowledged yet
    end
    c:send(part3, true)
  end)
  w:after("1800ms", function() closing_at = w:now(); c:shutdown(0) end)
end)
cli:start()
if update == "call" then cli:key_update() end -- refused: not confirmed
w:run{ limit = "30s" }

local ci, si = cli:info(), srv:info()
w:log("key updates: " .. (#updates > 0 and table.concat(updates, ", ") or "none"))
w:log(("server: %d old phase packets, %d dropped"):format(si.old_phase_packets,
      si.packets_dropped))
w:expect(srv:received() == upload, "the server receives the upload byte-exact",
         #srv:received() .. " of " .. #upload .. " bytes")
w:expect(cli:received() == upload, "the echo arrives byte-exact",
         #cli:received() .. " of " .. #upload .. " bytes")
w:expect(echoed_at ~= nil and closing_at ~= nil and echoed_at < closing_at,
         "the echo completes before the client closes")
-- With loss the client's CONNECTION_CLOSE may be lost: the server then
-- ends at its idle timeout.
w:expect(cli:state() == "closed" and srv:state() == "closed" and
         ci.close_reason == "closed" and
         (si.close_app == 1 or (loss > 0 and si.close_reason == "idle_timeout")),
         "both end cleanly", cli:state() .. "/" .. srv:state() .. " " ..
         ci.close_reason .. "/" .. si.close_reason)
if update == "call" then
  w:expect(ci.key_updates_initiated == 1 and ci.key_updates == 1 and
           ci.key_phase == 1, "the client updated its keys once",
           ci.key_updates .. " updates, phase " .. ci.key_phase)
  w:expect(si.key_updates_initiated == 0 and si.key_updates == 1 and
           si.key_phase == 1, "the server answered the update",
           si.key_updates .. " updates, phase " .. si.key_phase)
  w:expect(#refused == 2 and refused[1] == "handshake not confirmed" and
           refused[2] == "previous key update not acknowledged",
           "the early and the second update are refused",
           table.concat(refused, "; "))
elseif update == "every" then
  w:expect(ci.key_updates >= 2 and si.key_updates >= 2 and
           ci.key_updates_initiated + si.key_updates_initiated >= 2,
           "the keys move on several times",
           ci.key_updates .. "/" .. si.key_updates .. " updates, " ..
           ci.key_updates_initiated .. "/" .. si.key_updates_initiated ..
           " initiated")
else
  w:expect(ci.key_updates == 0 and si.key_updates == 0 and
           ci.key_phase == 0 and si.key_phase == 0, "no key update")
end
if faults and update == "call" then
  if old == "late" then
    w:expect(si.packets_dropped >= 1,
             "the late phase 0 packet is dropped: its keys are gone",
             si.old_phase_packets .. " old, " .. si.packets_dropped .. " dropped")
  else
    w:expect(si.old_phase_packets >= 1,
             "the server decrypts the reordered phase 0 packet with its previous keys",
             si.old_phase_packets .. " packets")
  end
end
