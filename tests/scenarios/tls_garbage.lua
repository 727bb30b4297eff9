-- tls_garbage: hostile bytes must end in an alert or an error, never a
-- crash or a hang. The client sends random bytes (from the run's script
-- stream) instead of a ClientHello (--set when=before), or into the
-- established session (when=after); or the link corrupts, duplicates and
-- reorders segments while data flows (when=link), which the stream must
-- turn into retransmissions: the data arrives byte-exact.
local w = tlsim.world{ seed = arg.seed or 1 }
local when = arg.when or "after"
local link = w:link{ latency = "10ms" }
if when == "link" then
  link = nil
  w:link{ name = "lossy", latency = "10ms", jitter = "3ms", corrupt = 0.05,
          corrupt_bits = 3, dup = 0.05, reorder = 0.1, reorder_delay = "5ms" }
end
local pki = w:pki{}
local srv = w:tls_server{ pki = pki }
local cli = w:tls_client{ pki = pki }

local function garbage()
  local n = math.random(1, 3000)
  local t = {}
  for i = 1, n do t[i] = string.char(math.random(0, 255)) end
  -- Half the time, make it look like a TLS record header first.
  if math.random(2) == 1 then
    t[1], t[2], t[3] = string.char(math.random(20, 24)), "\3", "\3"
  end
  return table.concat(t)
end

local payload = ("tlsim"):rep(4000)
-- The garbage is followed by the transport's FIN, so that a prefix of a
-- record cannot leave the server waiting for the rest forever.
if when == "before" then
  cli:connect()
  cli:send_raw(garbage())
  cli:close_write()
elseif when == "after" then
  cli:on("handshake_done", function(c)
    c:send_raw(garbage())
    c:close_write()
  end)
  cli:connect()
else
  cli:on("handshake_done", function(c) c:write(payload) end)
  srv:on("data", function(s)
    if #s:received() == #payload then s:shutdown{} end
  end)
  cli:on("close_notify", function(c) c:shutdown{} end)
  cli:connect()
end
srv:accept()
local why = w:run{ limit = "300s" }

w:expect(why == "idle", "the run ends by itself", why)
if when == "link" then
  w:expect(srv:received() == payload, "the data arrives byte-exact",
           #srv:received() .. " bytes")
  local drops = srv:info().stream_dropped_corrupt + cli:info().stream_dropped_corrupt
  w:log("corrupted segments discarded: " .. drops)
else
  local o = srv:outcome()
  w:expect(o:match("^alert sent: ") or o:match("^handshake failed: ")
           or o:match("^error: ") or o:match("^eof")
           or o:match("^truncated: "),
           "the server ends with an alert or an error", o)
end
