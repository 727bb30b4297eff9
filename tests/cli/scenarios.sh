# Every scenario in scripts/scenarios/ passes with its defaults; the
# variants that must fail do.
. "$2/tests/lib.sh"
for s in "$SRC"/scripts/scenarios/*.lua; do
	expect_run 0 ": pass, " -- run "$s"
done
expect_run 0 "pass" -- run "$SRC/scripts/scenarios/echo_lossy.lua" --seed 99
expect_run 0 ": pass, 19/19" -- run "$SRC/tests/scenarios/api.lua"
expect_run 0 ": pass, 3/3" -- run "$SRC/tests/scenarios/pairs_order.lua"
expect_run 1 "the client survives the partition: failed" -- run "$SRC/scripts/scenarios/echo_partition.lua" --set retries=2
expect_run 0 "tlsim 0\.[0-9]+\.[0-9]+" -- --version
expect_run 0 "usage: tlsim COMMAND" -- --help
expect_run 0 "--trace FILE" -- run --help
finish
