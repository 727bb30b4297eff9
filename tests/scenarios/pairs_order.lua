-- pairs() must visit keys in the same order in every process (Lua's own
-- order over string keys depends on a per-process hash seed).
local w = tlsim.world{}
local t = {}
for i = 1, 200 do t["key" .. (i * 7919 % 1000)] = i end
t[3] = "three"; t[1.5] = "x"; t[true] = 1; t[false] = 0
local order = {}
for k in pairs(t) do order[#order + 1] = tostring(k) end
w:log(table.concat(order, ","))
w:expect(order[1] == "1.5" and order[2] == "3", "numbers first", order[1])
w:expect(order[#order - 1] == "false" and order[#order] == "true",
         "booleans last")
local ok, err = pcall(pairs, { [{}] = 1 })
w:expect(not ok and err:find("no deterministic order") ~= nil,
         "table keys are refused", tostring(err))
