local w = tlsim.world{}
local f = io.open("/etc/passwd")
