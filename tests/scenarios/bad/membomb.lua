local w = tlsim.world{}
local t = {}
local s = string.rep("x", 1024 * 1024)
for i = 1, 100000 do t[i] = s .. i end
