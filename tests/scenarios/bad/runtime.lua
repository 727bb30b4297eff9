local w = tlsim.world{}
local t = nil
print(t.field)
