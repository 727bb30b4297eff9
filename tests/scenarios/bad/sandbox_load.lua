local w = tlsim.world{}
local f = load("return 1")
