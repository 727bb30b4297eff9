-- flaky: a scenario whose seeds end every way a sweep records (used by
-- tests/cli/sweep.sh and sweep_batch.sh, which also crash seed 5 with the
-- TLSIM_TEST_CRASH_SEED hook): seed 2 fails before its world exists (exit
-- 2, no run), seed 4 after it (outcome error), multiples of 3 fail an
-- expectation, the rest pass.
if arg.seed == 2 then error("no world for seed 2") end
local w = tlsim.world{ seed = arg.seed }
if arg.seed == 4 then error("boom at seed 4") end
w:expect(arg.seed % 3 ~= 0, "seed not a multiple of 3")
