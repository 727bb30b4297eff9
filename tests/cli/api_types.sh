# Wrong argument types to every API function: the method names come from
# sim/lua.c's luaL_Reg tables (so a new method is covered without editing
# this test); a generated scenario calls each on each kind of object with
# wrong self and with arguments of every wrong type, under pcall. Every
# call must return or raise a Lua error (a message, never a crash, a hang
# or an abort), and a wrong self must be refused as "bad argument #1".
. "$2/tests/lib.sh"
L="$SRC/sim/lua.c"
names() {
	awk "/static const luaL_Reg $1\\[\\] = \\{/,/^};/" "$L" |
		grep -o '{"[a-z_]*"' | tr -d '{"' | tr '\n' ' '
}
WORLD=$(names world_methods)
LINK=$(names link_methods)
EP=$(names ep_methods)
TIMER=$(names timer_methods)
CHECKS=$((CHECKS + 1))
n=$(echo $WORLD $LINK $EP $TIMER | wc -w)
[ "$n" -ge 40 ] || fail "found only $n API methods in $L"
list() {
	for m in "$@"; do printf '"%s", ' "$m"; done
}
cat >"$TMP/api_types.lua" <<LUA
local w = tlsim.world{ seed = 3 }
local l = w:link{ latency = "1ms" }
local p = w:pki{}
local objs = {
  { "world", w, { $(list $WORLD) } },
  { "link", l, { $(list $LINK) } },
  { "tls_client", w:tls_client{ pki = p }, { $(list $EP) } },
  { "tls_server", w:tls_server{ pki = p }, { $(list $EP) } },
  { "quic_client", w:quic_client{ pki = p, link = w:link{}, name = "qc" }, { $(list $EP) } },
  { "quic_server", w:quic_server{ pki = p, name = "qs" }, { $(list $EP) } },
  { "echo_client", w:echo_client{ link = w:link{}, name = "ec" }, { $(list $EP) } },
  { "echo_server", w:echo_server{ name = "es" }, { $(list $EP) } },
  { "timer", w:after("1ms", function() end), { $(list $TIMER) } },
}
local w2 = tlsim.world
local bad = { {}, "bogus", -1, 1e300, 0/0, true, function() end,
              string.rep("x", 10000), { a = { b = {} } }, -2^63 }
local calls, errors, selfs = 0, 0, 0
for _, o in ipairs(objs) do
  local kind, obj, methods = o[1], o[2], o[3]
  for _, m in ipairs(methods) do
    local f = obj[m]
    assert(type(f) == "function", kind .. ":" .. m .. " is not a method")
    -- wrong self
    local ok, err = pcall(f, "not an object", 1)
    calls = calls + 1
    if ok or not tostring(err):find("bad argument #1", 1, true) then
      error(kind .. ":" .. m .. " accepted a wrong self: " .. tostring(err))
    end
    selfs = selfs + 1
    for i, a in ipairs(bad) do
      for _, args in ipairs({ { a }, { a, a }, { "1ms", a }, { a, 1, a } }) do
        ok, err = pcall(f, obj, table.unpack(args))
        calls = calls + 1
        if not ok then
          errors = errors + 1
          assert(type(err) == "string" and #err > 0,
                 kind .. ":" .. m .. ": an error without a message")
        end
      end
    end
  end
end
-- A second world and bad constructor arguments.
for _, a in ipairs(bad) do
  local ok, err = pcall(w2, a)
  calls = calls + 1
  assert(not ok and type(err) == "string")
end
w:log(("%d calls, %d errors, %d wrong selves refused"):format(calls, errors, selfs))
w:expect(calls > 1000, "every method called with wrong arguments")
LUA
want=$(( $(echo $WORLD $LINK $TIMER | wc -w) + 6 * $(echo $EP | wc -w) ))
expect_run 0 "[0-9]+ calls, [0-9]+ errors, $want wrong selves refused" -- run "$TMP/api_types.lua" --max-time 10s
finish
