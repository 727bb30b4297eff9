-- A timer that reschedules itself at the same virtual time forever.
local w = tlsim.world{}
local function spin() w:after(0, spin) end
w:after("5ms", spin)
w:run{}
