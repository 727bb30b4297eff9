-- A wrong argument type to an API function.
local w = tlsim.world{}
w:after("5ms", "not a function")
